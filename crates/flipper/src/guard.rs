//! [`Guard`]: run code only when a flag is on (flipper-client's `@is_enabled` decorator).

use std::future::Future;

use flipper_core::Checks;

use crate::client::FeatureFlagClient;

/// Runs a closure when a flag is on, or a fallback ("redirect") when it is off.
///
/// Like flipper-client's decorator, the flag is evaluated with no checks, so conditions are
/// skipped and only `is_enabled` and the bucketer decide; [`Guard::with_checks`] adds checks
/// (which the decorator cannot). A missing flag counts as off.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use flipper::{FeatureFlagClient, store::MemoryStore};
/// let client = FeatureFlagClient::new(MemoryStore::new());
/// client.create("new_checkout", true, None).await?;
/// let total = client.guard("new_checkout").run_or(|| 42, || 0).await;
/// assert_eq!(total, 42);
/// assert_eq!(client.guard("missing").run(|| "ran").await, None);
/// let page = client.guard("new_checkout").run_async(|| async { "new page" }).await;
/// assert_eq!(page, Some("new page"));
/// # Ok::<(), flipper::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct Guard {
    client: FeatureFlagClient,
    flag: String,
    checks: Checks,
}

impl FeatureFlagClient {
    /// A guard on `flag`.
    pub fn guard(&self, flag: &str) -> Guard {
        Guard {
            client: self.clone(),
            flag: flag.to_owned(),
            checks: Checks::new(),
        }
    }
}

impl Guard {
    /// Evaluates with these checks instead of none.
    #[must_use]
    pub fn with_checks(mut self, checks: Checks) -> Self {
        self.checks = checks;
        self
    }

    /// Whether the guarded code would run.
    pub async fn is_open(&self) -> bool {
        self.client.is_enabled(&self.flag, &self.checks).await
    }

    /// Runs `f` when the flag is on; `None` when it is off (the decorator's `None`).
    pub async fn run<T>(&self, f: impl FnOnce() -> T) -> Option<T> {
        if self.is_open().await {
            Some(f())
        } else {
            None
        }
    }

    /// Runs `f` when the flag is on, else `redirect`.
    pub async fn run_or<T>(&self, f: impl FnOnce() -> T, redirect: impl FnOnce() -> T) -> T {
        if self.is_open().await {
            f()
        } else {
            redirect()
        }
    }

    /// Awaits `f()` when the flag is on; `None` when it is off.
    pub async fn run_async<F: Future>(&self, f: impl FnOnce() -> F) -> Option<F::Output> {
        if self.is_open().await {
            Some(f().await)
        } else {
            None
        }
    }

    /// Awaits `f()` when the flag is on, else `redirect()`.
    pub async fn run_async_or<T, F, R>(
        &self,
        f: impl FnOnce() -> F,
        redirect: impl FnOnce() -> R,
    ) -> T
    where
        F: Future<Output = T>,
        R: Future<Output = T>,
    {
        if self.is_open().await {
            f().await
        } else {
            redirect().await
        }
    }
}
