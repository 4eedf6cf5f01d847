//! [`FeatureFlag`]: a handle on one flag by name (flipper-client's `FeatureFlag`).

use flipper_core::bucketing::Bucketer;
use flipper_core::condition::Condition;
use flipper_core::eval::Evaluation;
use flipper_core::{Checks, Meta, Object, Value};

use crate::client::FeatureFlagClient;
use crate::error::Result;

/// A flag, by name, bound to a client. Every method delegates to the client with this name;
/// making a handle reads nothing, so it may name a flag that does not exist (yet).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use flipper::{Checks, FeatureFlagClient, store::MemoryStore};
/// let client = FeatureFlagClient::new(MemoryStore::new());
/// let flag = client.get("beta");
/// assert!(!flag.exists().await?);
/// client.create("beta", false, None).await?;
/// flag.enable().await?;
/// assert!(flag.is_enabled(&Checks::new()).await);
/// # Ok::<(), flipper::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct FeatureFlag {
    name: String,
    client: FeatureFlagClient,
}

impl FeatureFlag {
    pub(crate) fn new(name: &str, client: FeatureFlagClient) -> Self {
        Self {
            name: name.to_owned(),
            client,
        }
    }

    /// The flag's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// See [`FeatureFlagClient::is_enabled`].
    pub async fn is_enabled(&self, checks: &Checks) -> bool {
        self.client.is_enabled(&self.name, checks).await
    }

    /// See [`FeatureFlagClient::is_enabled_or`].
    pub async fn is_enabled_or(&self, checks: &Checks, default: bool) -> bool {
        self.client.is_enabled_or(&self.name, checks, default).await
    }

    /// See [`FeatureFlagClient::evaluate`].
    ///
    /// # Errors
    /// The store's errors.
    pub async fn evaluate(&self, checks: &Checks, default: bool) -> Result<Evaluation> {
        self.client.evaluate(&self.name, checks, default).await
    }

    /// See [`FeatureFlagClient::exists`].
    ///
    /// # Errors
    /// The store's errors.
    pub async fn exists(&self) -> Result<bool> {
        self.client.exists(&self.name).await
    }

    /// See [`FeatureFlagClient::enable`].
    ///
    /// # Errors
    /// As the client's.
    pub async fn enable(&self) -> Result<()> {
        self.client.enable(&self.name).await
    }

    /// See [`FeatureFlagClient::disable`].
    ///
    /// # Errors
    /// As the client's.
    pub async fn disable(&self) -> Result<()> {
        self.client.disable(&self.name).await
    }

    /// See [`FeatureFlagClient::destroy`].
    ///
    /// # Errors
    /// As the client's.
    pub async fn destroy(&self) -> Result<()> {
        self.client.destroy(&self.name).await
    }

    /// See [`FeatureFlagClient::add_condition`].
    ///
    /// # Errors
    /// As the client's.
    pub async fn add_condition(&self, condition: Condition) -> Result<()> {
        self.client.add_condition(&self.name, condition).await
    }

    /// See [`FeatureFlagClient::set_conditions`].
    ///
    /// # Errors
    /// As the client's.
    pub async fn set_conditions(&self, conditions: Vec<Condition>) -> Result<()> {
        self.client.set_conditions(&self.name, conditions).await
    }

    /// See [`FeatureFlagClient::set_bucketer`].
    ///
    /// # Errors
    /// As the client's.
    pub async fn set_bucketer(&self, bucketer: Bucketer) -> Result<()> {
        self.client.set_bucketer(&self.name, bucketer).await
    }

    /// See [`FeatureFlagClient::set_client_data`].
    ///
    /// # Errors
    /// As the client's.
    pub async fn set_client_data(&self, client_data: Object) -> Result<()> {
        self.client.set_client_data(&self.name, client_data).await
    }

    /// See [`FeatureFlagClient::get_client_data`].
    ///
    /// # Errors
    /// As the client's.
    pub async fn get_client_data(&self) -> Result<Value> {
        self.client.get_client_data(&self.name).await
    }

    /// See [`FeatureFlagClient::get_meta`].
    ///
    /// # Errors
    /// As the client's.
    pub async fn get_meta(&self) -> Result<Meta> {
        self.client.get_meta(&self.name).await
    }
}
