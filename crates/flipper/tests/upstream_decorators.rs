//! Port of flipper-client's `tests/test_decorators.py` (4 upstream cases, 4 Rust tests).
//!
//! The `@decorators.is_enabled(client, name, redirect=...)` decorator is [`Guard`]:
//! `client.guard(name).run(f)` calls `f` when the flag is on (`None` otherwise, the decorator's
//! bare `return`), `run_or(f, redirect)` calls `redirect` instead when it is off. The wrapped
//! function's arguments are what the closures capture; a `MagicMock` is a recorder of the
//! arguments each call received. The async forms (`run_async`, `run_async_or`) are checked
//! alongside.

use std::sync::{Arc, Mutex};

use flipper::store::MemoryStore;
use flipper::{FeatureFlag, FeatureFlagClient, Guard};

/// Records each call's arguments (upstream's `MagicMock`).
#[derive(Clone, Default)]
struct Mock(Arc<Mutex<Vec<Vec<i32>>>>);

impl Mock {
    fn call(&self, args: &[i32]) -> usize {
        let mut calls = self.0.lock().unwrap();
        calls.push(args.to_vec());
        calls.len()
    }
    fn calls(&self) -> Vec<Vec<i32>> {
        self.0.lock().unwrap().clone()
    }
}

/// `BaseTest.setUp`: a client over a memory store and a flag created with the defaults
/// (disabled).
async fn setup() -> (FeatureFlagClient, FeatureFlag, Guard) {
    let client = FeatureFlagClient::new(MemoryStore::new());
    let name = format!("{:032x}", fastrand::u128(..));
    let flag = client.create(&name, false, None).await.unwrap();
    let guard = client.guard(&name);
    (client, flag, guard)
}

const ARGS: [i32; 3] = [1, 2, 3];

mod test_is_enabled {
    use super::*;

    #[tokio::test]
    async fn test_calls_method_when_is_enabled_is_true() {
        let (_client, flag, guard) = setup().await;
        let mock = Mock::default();
        flag.enable().await.unwrap();

        let result = guard.run(|| mock.call(&ARGS)).await;

        assert_eq!(
            result,
            Some(1),
            "the method's return value is passed through"
        );
        assert_eq!(mock.calls(), [ARGS.to_vec()]);
        // The async form behaves the same.
        let result = guard.run_async(|| async { mock.call(&ARGS) }).await;
        assert_eq!(result, Some(2));
    }

    #[tokio::test]
    async fn test_method_not_called_when_is_enabled_is_false() {
        let (_client, flag, guard) = setup().await;
        let mock = Mock::default();
        flag.disable().await.unwrap();

        assert_eq!(guard.run(|| mock.call(&[])).await, None);
        assert_eq!(guard.run_async(|| async { mock.call(&[]) }).await, None);

        assert!(mock.calls().is_empty());
    }

    #[tokio::test]
    async fn test_redirects_when_feature_disabled_and_redirect_supplied() {
        let (_client, flag, guard) = setup().await;
        let method = Mock::default();
        let redirect_to = Mock::default();
        flag.disable().await.unwrap();

        guard
            .run_or(|| method.call(&ARGS), || redirect_to.call(&ARGS))
            .await;

        assert_eq!(redirect_to.calls(), [ARGS.to_vec()]);
        assert!(method.calls().is_empty());
        guard
            .run_async_or(
                || async { method.call(&ARGS) },
                || async { redirect_to.call(&ARGS) },
            )
            .await;
        assert_eq!(redirect_to.calls().len(), 2);
        assert!(method.calls().is_empty());
    }

    #[tokio::test]
    async fn test_does_not_redirect_when_feature_enabled() {
        let (_client, flag, guard) = setup().await;
        let method = Mock::default();
        let redirect_to = Mock::default();
        flag.enable().await.unwrap();

        guard
            .run_or(|| method.call(&[]), || redirect_to.call(&[]))
            .await;
        guard
            .run_async_or(
                || async { method.call(&[]) },
                || async { redirect_to.call(&[]) },
            )
            .await;

        assert!(redirect_to.calls().is_empty());
        assert_eq!(method.calls().len(), 2);
    }
}
