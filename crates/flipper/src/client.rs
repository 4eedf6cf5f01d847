//! [`FeatureFlagClient`]: flipper-client's client API over any [`Store`].

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use flipper_core::bucketing::Bucketer;
use flipper_core::condition::Condition;
use flipper_core::eval::{Env, Evaluation, evaluate_or_default};
use flipper_core::{Checks, Item, Meta, Object, Value};

use crate::error::{Error, Result};
use crate::events::{Event, EventEmitter, EventType, FlipperEventEmitter, Payload};
use crate::flag::FeatureFlag;
use crate::store::{PutMode, Store, StoreExt, Versioned};

/// The real clock and a thread-local random generator: the [`Env`] clients use by default.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnv;

impl Env for SystemEnv {
    fn now(&self) -> f64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        }
    }
    fn random(&self) -> f64 {
        fastrand::f64()
    }
}

/// Reads, evaluates and changes flags in a store: flipper-client's `FeatureFlagClient`.
///
/// Every method of the Python client is here, async because stores are. Methods that need an
/// existing flag fail with [`Error::FlagDoesNotExist`]. Changes to a flag's metadata are
/// compare-and-swap loops ([`StoreExt::update`]): concurrent writers never lose each other's
/// changes. Each write emits flipper-client's pre/post [`events`](crate::events).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use flipper::{Checks, Condition, FeatureFlagClient, store::MemoryStore};
/// let client = FeatureFlagClient::new(MemoryStore::new());
/// let flag = client.create("beta", true, None).await?;
/// flag.add_condition(Condition::new().gte("age", 18)).await?;
/// assert!(client.is_enabled("beta", &Checks::new().with("age", 21)).await);
/// assert!(!client.is_enabled("beta", &Checks::new().with("age", 12)).await);
/// assert!(!client.is_enabled("unknown", &Checks::new()).await);
/// # Ok::<(), flipper::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct FeatureFlagClient {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    events: RwLock<Arc<dyn EventEmitter>>,
    env: Arc<dyn Env + Send + Sync>,
}

impl FeatureFlagClient {
    /// A client over `store`, with the system clock and a fresh [`FlipperEventEmitter`].
    pub fn new(store: impl Store) -> Self {
        Self::from_arc(Arc::new(store))
    }

    /// A client over a shared store.
    pub fn from_arc(store: Arc<dyn Store>) -> Self {
        Self::with_env(store, SystemEnv)
    }

    /// A client with its own clock and random source (for tests and reproducible evaluation).
    pub fn with_env(store: Arc<dyn Store>, env: impl Env + Send + Sync + 'static) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                events: RwLock::new(Arc::new(FlipperEventEmitter::new())),
                env: Arc::new(env),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The event emitter (flipper-client's `client.events`).
    pub fn events(&self) -> Arc<dyn EventEmitter> {
        Arc::clone(&self.inner.events.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Replaces the event emitter.
    pub fn set_events(&self, emitter: Arc<dyn EventEmitter>) {
        *self.inner.events.write().unwrap_or_else(|e| e.into_inner()) = emitter;
    }

    fn emit(&self, event_type: EventType, name: &str, payload: Payload) {
        self.events().emit(&Event::with(event_type, name, payload));
    }

    /// Whether the flag is on for these checks; `false` when the flag is missing, evaluation
    /// hits an error (where Python raises `TypeError`) or the store fails (logged).
    pub async fn is_enabled(&self, name: &str, checks: &Checks) -> bool {
        self.is_enabled_or(name, checks, false).await
    }

    /// [`Self::is_enabled`] with the answer for a missing flag (flipper-client's `default=`).
    /// A store failure also gives `default`, and is logged.
    pub async fn is_enabled_or(&self, name: &str, checks: &Checks, default: bool) -> bool {
        match self.evaluate(name, checks, default).await {
            Ok(e) => e.enabled,
            Err(error) => {
                tracing::warn!(flag = name, %error, "cannot read flag; answering with the default");
                default
            }
        }
    }

    /// The answer with its reason ([`flipper_core::eval::Reason`]), or the store's error.
    ///
    /// # Errors
    /// The store's errors (a missing flag is not an error: it gives `default`).
    pub async fn evaluate(&self, name: &str, checks: &Checks, default: bool) -> Result<Evaluation> {
        let stored = self.inner.store.get(name).await?;
        Ok(evaluate_or_default(
            stored.as_ref().map(|v| &v.item),
            checks,
            default,
            &*self.inner.env,
        ))
    }

    /// Creates a flag, **overwriting** an existing one with the same name (conditions, bucketer,
    /// client data and `created_date` all reset), exactly as flipper-client does.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn create(
        &self,
        name: &str,
        is_enabled: bool,
        client_data: Option<Object>,
    ) -> Result<FeatureFlag> {
        self.create_with(name, is_enabled, client_data, PutMode::Overwrite)
            .await
    }

    /// Creates a flag only if no flag has this name (not in flipper-client, which always
    /// overwrites). On a store with conditional writes the check and the write are one atomic
    /// step; on other stores a flag created concurrently by someone else may be overwritten.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use flipper::{FeatureFlagClient, store::MemoryStore};
    /// let client = FeatureFlagClient::new(MemoryStore::new());
    /// client.create_new("beta", true, None).await?;
    /// assert!(client.create_new("beta", false, None).await.is_err());
    /// # Ok::<(), flipper::Error>(())
    /// # }).unwrap();
    /// ```
    ///
    /// # Errors
    /// [`Error::AlreadyExists`] when the flag exists (nothing is written and, unless another
    /// writer created it in the meantime, no event is emitted); the store's errors.
    pub async fn create_new(
        &self,
        name: &str,
        is_enabled: bool,
        client_data: Option<Object>,
    ) -> Result<FeatureFlag> {
        if self.exists(name).await? {
            return Err(Error::AlreadyExists {
                name: name.to_owned(),
            });
        }
        let mode = if self.inner.store.capabilities().conditional_put {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        self.create_with(name, is_enabled, client_data, mode).await
    }

    async fn create_with(
        &self,
        name: &str,
        is_enabled: bool,
        client_data: Option<Object>,
        mode: PutMode,
    ) -> Result<FeatureFlag> {
        let payload = Payload::Create {
            is_enabled,
            client_data: client_data.clone(),
        };
        self.emit(EventType::PreCreate, name, payload.clone());
        let mut item = Item::new(name, is_enabled, self.now_secs());
        if let Some(data) = client_data {
            item.meta.client_data = Value::from(data);
        }
        self.inner.store.put(&item, mode).await?;
        self.emit(EventType::PostCreate, name, payload);
        Ok(self.get(name))
    }

    fn now_secs(&self) -> i64 {
        // int(datetime.now().timestamp()): truncation toward zero.
        self.inner.env.now().trunc() as i64
    }

    /// Whether the flag exists.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        Ok(self.inner.store.get(name).await?.is_some())
    }

    /// A handle on a flag (which need not exist; nothing is read).
    pub fn get(&self, name: &str) -> FeatureFlag {
        FeatureFlag::new(name, self.clone())
    }

    /// Handles on the flags in the store's order, skipping `offset`, at most `limit`.
    ///
    /// # Errors
    /// The store's errors, or [`Error::Corrupt`] for an unreadable flag.
    pub async fn list(&self, limit: Option<usize>, offset: usize) -> Result<Vec<FeatureFlag>> {
        Ok(self
            .inner
            .store
            .items(limit, offset)
            .await?
            .into_iter()
            .map(|item| self.get(&item.feature_name))
            .collect())
    }

    async fn must_exist(&self, name: &str) -> Result<Versioned> {
        self.inner
            .store
            .get(name)
            .await?
            .ok_or_else(|| Error::FlagDoesNotExist {
                name: name.to_owned(),
            })
    }

    /// Switches a flag on.
    ///
    /// # Errors
    /// [`Error::FlagDoesNotExist`]; the store's errors.
    pub async fn enable(&self, name: &str) -> Result<()> {
        self.switch(name, true, EventType::PreEnable, EventType::PostEnable)
            .await
    }

    /// Switches a flag off.
    ///
    /// # Errors
    /// [`Error::FlagDoesNotExist`]; the store's errors.
    pub async fn disable(&self, name: &str) -> Result<()> {
        self.switch(name, false, EventType::PreDisable, EventType::PostDisable)
            .await
    }

    async fn switch(&self, name: &str, on: bool, pre: EventType, post: EventType) -> Result<()> {
        let current = self.must_exist(name).await?;
        self.emit(pre, name, Payload::None);
        self.inner
            .store
            .update_from(name, Some(current), |item| {
                item.is_enabled = Value::Bool(on);
                Ok(())
            })
            .await?;
        self.emit(post, name, Payload::None);
        Ok(())
    }

    /// Deletes a flag.
    ///
    /// # Errors
    /// [`Error::FlagDoesNotExist`]; the store's errors.
    pub async fn destroy(&self, name: &str) -> Result<()> {
        self.must_exist(name).await?;
        self.emit(EventType::PreDestroy, name, Payload::None);
        self.inner.store.delete(name).await?;
        self.emit(EventType::PostDestroy, name, Payload::None);
        Ok(())
    }

    /// Appends a condition (duplicates are appended too, as in flipper-client).
    ///
    /// # Errors
    /// [`Error::FlagDoesNotExist`]; [`Error::InvalidFlag`] for a check flipper-client could not
    /// read back; the store's errors.
    pub async fn add_condition(&self, name: &str, condition: Condition) -> Result<()> {
        let payload = Payload::Condition(condition.clone());
        self.change_meta(
            name,
            (EventType::PreAddCondition, EventType::PostAddCondition),
            payload,
            move |meta| {
                meta.conditions.push(condition.clone());
                Ok(())
            },
        )
        .await
    }

    /// Replaces all conditions.
    ///
    /// # Errors
    /// As [`Self::add_condition`].
    pub async fn set_conditions(&self, name: &str, conditions: Vec<Condition>) -> Result<()> {
        let payload = Payload::Conditions(conditions.clone());
        self.change_meta(
            name,
            (EventType::PreSetConditions, EventType::PostSetConditions),
            payload,
            move |meta| {
                meta.conditions.clone_from(&conditions);
                Ok(())
            },
        )
        .await
    }

    /// Replaces the bucketer (set [`Bucketer::NoOp`] to remove it).
    ///
    /// # Errors
    /// [`Error::FlagDoesNotExist`]; the store's errors.
    pub async fn set_bucketer(&self, name: &str, bucketer: Bucketer) -> Result<()> {
        let payload = Payload::Bucketer(bucketer.clone());
        self.change_meta(
            name,
            (EventType::PreSetBucketer, EventType::PostSetBucketer),
            payload,
            move |meta| {
                meta.bucketer = bucketer.clone();
                Ok(())
            },
        )
        .await
    }

    /// Shallow-merges `client_data` into the flag's client data (keys are added or replaced,
    /// never removed; nested objects are replaced whole). The events carry the merged data.
    ///
    /// # Errors
    /// [`Error::FlagDoesNotExist`]; [`Error::InvalidFlag`] when the stored client data is not
    /// an object (flipper-client would crash); the store's errors.
    pub async fn set_client_data(&self, name: &str, client_data: Object) -> Result<()> {
        let merge = |meta: &mut Meta| -> Result<()> {
            let Value::Object(existing) = &mut meta.client_data else {
                return Err(Error::InvalidFlag {
                    name: name.to_owned(),
                    message: format!(
                        "stored client_data is a {}, not an object: cannot merge into it",
                        meta.client_data.type_name()
                    ),
                });
            };
            for (k, v) in &client_data {
                existing.insert(k.clone(), v.clone());
            }
            Ok(())
        };
        // The events carry the merged data, which is only known after reading the flag.
        let current = self.must_exist(name).await?;
        let mut preview = current.item.meta.clone();
        merge(&mut preview)?;
        self.emit(
            EventType::PreSetClientData,
            name,
            Payload::ClientData(preview.client_data),
        );
        let written = self
            .inner
            .store
            .update_from(name, Some(current), |item| merge(&mut item.meta))
            .await?;
        self.emit(
            EventType::PostSetClientData,
            name,
            Payload::ClientData(written.item.meta.client_data),
        );
        Ok(())
    }

    /// The flag's client data.
    ///
    /// # Errors
    /// [`Error::FlagDoesNotExist`]; the store's errors.
    pub async fn get_client_data(&self, name: &str) -> Result<Value> {
        Ok(self.get_meta(name).await?.client_data)
    }

    /// The flag's metadata (client data, `created_date`, conditions, bucketer).
    ///
    /// # Errors
    /// [`Error::FlagDoesNotExist`]; the store's errors.
    pub async fn get_meta(&self, name: &str) -> Result<Meta> {
        Ok(self.must_exist(name).await?.item.meta)
    }

    /// Checks existence, emits `pre`, applies `change` in a compare-and-swap loop, emits `post`.
    async fn change_meta(
        &self,
        name: &str,
        (pre, post): (EventType, EventType),
        payload: Payload,
        mut change: impl FnMut(&mut Meta) -> Result<()> + Send,
    ) -> Result<()> {
        // Validate before announcing the write: a rejected change emits nothing.
        let current = self.must_exist(name).await?;
        let mut preview = current.item.clone();
        change(&mut preview.meta)?;
        preview.validate().map_err(|e| Error::InvalidFlag {
            name: name.to_owned(),
            message: e.to_string(),
        })?;
        self.emit(pre, name, payload.clone());
        // The existence check's read is the first attempt's read: one read, one write.
        self.inner
            .store
            .update_from(name, Some(current), |item| change(&mut item.meta))
            .await?;
        self.emit(post, name, payload);
        Ok(())
    }
}

impl fmt::Debug for FeatureFlagClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FeatureFlagClient")
            .field("store", &self.inner.store.to_string())
            .finish_non_exhaustive()
    }
}
