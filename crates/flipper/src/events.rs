//! Events around every write the client makes: flipper-client's 16 pre/post events.
//!
//! A pre-event fires after the client has checked the flag exists and computed the change,
//! right before the store write; its post-event fires only after the write succeeded. Reads
//! (`is_enabled`, `get`, `list`, ...) fire nothing.
//!
//! Listen to one event type with a closure ([`EventEmitter::on`]) or to all of them with an
//! [`EventSubscriber`]; both give back a [`ListenerId`] to remove them with. The emitter is a
//! trait: replace it with [`crate::FeatureFlagClient::set_events`].
//!
//! ```
//! use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
//! use flipper::events::{EventEmitter, EventType, FlipperEventEmitter};
//! let emitter = FlipperEventEmitter::new();
//! let enables = Arc::new(AtomicUsize::new(0));
//! let seen = Arc::clone(&enables);
//! let id = emitter.on(EventType::PostEnable, Arc::new(move |_event| {
//!     seen.fetch_add(1, Ordering::Relaxed);
//! }));
//! emitter.emit(&flipper::events::Event::new(EventType::PostEnable, "beta"));
//! assert_eq!(enables.load(Ordering::Relaxed), 1);
//! assert!(emitter.remove_listener(id));
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use flipper_core::bucketing::Bucketer;
use flipper_core::condition::Condition;
use flipper_core::{Object, Value};

/// The 16 event types, named as flipper-client's `EventType` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum EventType {
    PreCreate,
    PostCreate,
    PreEnable,
    PostEnable,
    PreDisable,
    PostDisable,
    PreDestroy,
    PostDestroy,
    PreAddCondition,
    PostAddCondition,
    PreSetConditions,
    PostSetConditions,
    PreSetClientData,
    PostSetClientData,
    PreSetBucketer,
    PostSetBucketer,
}

impl EventType {
    /// Every event type.
    pub const ALL: [Self; 16] = [
        Self::PreCreate,
        Self::PostCreate,
        Self::PreEnable,
        Self::PostEnable,
        Self::PreDisable,
        Self::PostDisable,
        Self::PreDestroy,
        Self::PostDestroy,
        Self::PreAddCondition,
        Self::PostAddCondition,
        Self::PreSetConditions,
        Self::PostSetConditions,
        Self::PreSetClientData,
        Self::PostSetClientData,
        Self::PreSetBucketer,
        Self::PostSetBucketer,
    ];

    /// flipper-client's value (`pre_create`, ...), also the subscriber method suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreCreate => "pre_create",
            Self::PostCreate => "post_create",
            Self::PreEnable => "pre_enable",
            Self::PostEnable => "post_enable",
            Self::PreDisable => "pre_disable",
            Self::PostDisable => "post_disable",
            Self::PreDestroy => "pre_destroy",
            Self::PostDestroy => "post_destroy",
            Self::PreAddCondition => "pre_add_condition",
            Self::PostAddCondition => "post_add_condition",
            Self::PreSetConditions => "pre_set_conditions",
            Self::PostSetConditions => "post_set_conditions",
            Self::PreSetClientData => "pre_set_client_data",
            Self::PostSetClientData => "post_set_client_data",
            Self::PreSetBucketer => "pre_set_bucketer",
            Self::PostSetBucketer => "post_set_bucketer",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an event carries besides the flag name (flipper-client's emit arguments).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Payload {
    /// enable, disable, destroy.
    None,
    /// create: the arguments as given (`client_data` may be absent).
    Create {
        /// The requested state.
        is_enabled: bool,
        /// The client data, as passed.
        client_data: Option<Object>,
    },
    /// add_condition: the added condition.
    Condition(Condition),
    /// set_conditions: the new conditions.
    Conditions(Vec<Condition>),
    /// set_client_data: the *merged* client data that will be stored.
    ClientData(Value),
    /// set_bucketer: the new bucketer.
    Bucketer(Bucketer),
}

/// One event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Which event.
    pub event_type: EventType,
    /// The flag.
    pub flag_name: String,
    /// The arguments.
    pub payload: Payload,
}

impl Event {
    /// An event without payload.
    pub fn new(event_type: EventType, flag_name: impl Into<String>) -> Self {
        Self::with(event_type, flag_name, Payload::None)
    }

    /// An event with a payload.
    pub fn with(event_type: EventType, flag_name: impl Into<String>, payload: Payload) -> Self {
        Self {
            event_type,
            flag_name: flag_name.into(),
            payload,
        }
    }
}

/// A closure listening to one event type.
pub type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// Identifies a registered listener or subscriber, to remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenerId(u64);

/// Receives every event; override the methods you need (each defaults to doing nothing).
/// Method names and arguments are flipper-client's `FlipperEventSubscriber`'s.
#[allow(unused_variables, missing_docs)]
pub trait EventSubscriber: Send + Sync {
    fn on_pre_create(&self, flag_name: &str, is_enabled: bool, client_data: Option<&Object>) {}
    fn on_post_create(&self, flag_name: &str, is_enabled: bool, client_data: Option<&Object>) {}
    fn on_pre_enable(&self, flag_name: &str) {}
    fn on_post_enable(&self, flag_name: &str) {}
    fn on_pre_disable(&self, flag_name: &str) {}
    fn on_post_disable(&self, flag_name: &str) {}
    fn on_pre_destroy(&self, flag_name: &str) {}
    fn on_post_destroy(&self, flag_name: &str) {}
    fn on_pre_add_condition(&self, flag_name: &str, condition: &Condition) {}
    fn on_post_add_condition(&self, flag_name: &str, condition: &Condition) {}
    fn on_pre_set_conditions(&self, flag_name: &str, conditions: &[Condition]) {}
    fn on_post_set_conditions(&self, flag_name: &str, conditions: &[Condition]) {}
    fn on_pre_set_client_data(&self, flag_name: &str, client_data: &Value) {}
    fn on_post_set_client_data(&self, flag_name: &str, client_data: &Value) {}
    fn on_pre_set_bucketer(&self, flag_name: &str, bucketer: &Bucketer) {}
    fn on_post_set_bucketer(&self, flag_name: &str, bucketer: &Bucketer) {}
}

/// Calls the subscriber method matching `event`.
pub fn dispatch(subscriber: &dyn EventSubscriber, event: &Event) {
    use EventType as T;
    let name = event.flag_name.as_str();
    match (event.event_type, &event.payload) {
        (
            T::PreCreate,
            Payload::Create {
                is_enabled,
                client_data,
            },
        ) => {
            subscriber.on_pre_create(name, *is_enabled, client_data.as_ref());
        }
        (
            T::PostCreate,
            Payload::Create {
                is_enabled,
                client_data,
            },
        ) => {
            subscriber.on_post_create(name, *is_enabled, client_data.as_ref());
        }
        (T::PreEnable, _) => subscriber.on_pre_enable(name),
        (T::PostEnable, _) => subscriber.on_post_enable(name),
        (T::PreDisable, _) => subscriber.on_pre_disable(name),
        (T::PostDisable, _) => subscriber.on_post_disable(name),
        (T::PreDestroy, _) => subscriber.on_pre_destroy(name),
        (T::PostDestroy, _) => subscriber.on_post_destroy(name),
        (T::PreAddCondition, Payload::Condition(c)) => subscriber.on_pre_add_condition(name, c),
        (T::PostAddCondition, Payload::Condition(c)) => subscriber.on_post_add_condition(name, c),
        (T::PreSetConditions, Payload::Conditions(c)) => {
            subscriber.on_pre_set_conditions(name, c);
        }
        (T::PostSetConditions, Payload::Conditions(c)) => {
            subscriber.on_post_set_conditions(name, c);
        }
        (T::PreSetClientData, Payload::ClientData(d)) => {
            subscriber.on_pre_set_client_data(name, d);
        }
        (T::PostSetClientData, Payload::ClientData(d)) => {
            subscriber.on_post_set_client_data(name, d);
        }
        (T::PreSetBucketer, Payload::Bucketer(b)) => subscriber.on_pre_set_bucketer(name, b),
        (T::PostSetBucketer, Payload::Bucketer(b)) => subscriber.on_post_set_bucketer(name, b),
        // An event whose payload does not match its type has no subscriber method.
        _ => {}
    }
}

/// Emits events to listeners; flipper-client's `IEventEmitter` (plus `register_subscriber`).
pub trait EventEmitter: Send + Sync + fmt::Debug {
    /// Calls every listener of `event`'s type and every subscriber, synchronously, in
    /// registration order. Returns whether anyone was called.
    fn emit(&self, event: &Event) -> bool;
    /// Adds a listener for one event type.
    fn on(&self, event_type: EventType, listener: Listener) -> ListenerId;
    /// Removes a listener; returns whether it was registered.
    fn remove_listener(&self, id: ListenerId) -> bool;
    /// Adds a subscriber to every event type.
    fn register_subscriber(&self, subscriber: Arc<dyn EventSubscriber>) -> ListenerId;
    /// Removes a subscriber; returns whether it was registered.
    fn remove_subscriber(&self, id: ListenerId) -> bool;
}

#[derive(Clone)]
enum Handler {
    Listener(EventType, Listener),
    Subscriber(Arc<dyn EventSubscriber>),
}

/// The default [`EventEmitter`].
///
/// Listeners run on the emitting task, outside the emitter's lock, so a listener may add or
/// remove listeners. A panicking listener propagates to the caller like any panic; it cannot
/// veto a write (flipper-client lets a raising pre-handler abort the write: a documented
/// deviation).
#[derive(Default)]
pub struct FlipperEventEmitter {
    handlers: RwLock<Vec<(ListenerId, Handler)>>,
    next_id: AtomicU64,
}

impl FlipperEventEmitter {
    /// An emitter with no listeners.
    pub fn new() -> Self {
        Self::default()
    }

    fn add(&self, handler: Handler) -> ListenerId {
        let id = ListenerId(self.next_id.fetch_add(1, Ordering::Relaxed));
        self.handlers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, handler));
        id
    }

    fn remove(&self, id: ListenerId, subscriber: bool) -> bool {
        let mut handlers = self.handlers.write().unwrap_or_else(|e| e.into_inner());
        let before = handlers.len();
        handlers.retain(|(hid, h)| *hid != id || matches!(h, Handler::Subscriber(_)) != subscriber);
        handlers.len() != before
    }
}

impl fmt::Debug for FlipperEventEmitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.handlers.read().map(|h| h.len()).unwrap_or_default();
        f.debug_struct("FlipperEventEmitter")
            .field("handlers", &n)
            .finish()
    }
}

impl EventEmitter for FlipperEventEmitter {
    fn emit(&self, event: &Event) -> bool {
        let snapshot: Vec<Handler> = self
            .handlers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, h)| match h {
                Handler::Listener(t, _) => *t == event.event_type,
                Handler::Subscriber(_) => true,
            })
            .map(|(_, h)| h.clone())
            .collect();
        for handler in &snapshot {
            match handler {
                Handler::Listener(_, f) => f(event),
                Handler::Subscriber(s) => dispatch(s.as_ref(), event),
            }
        }
        !snapshot.is_empty()
    }

    fn on(&self, event_type: EventType, listener: Listener) -> ListenerId {
        self.add(Handler::Listener(event_type, listener))
    }

    fn remove_listener(&self, id: ListenerId) -> bool {
        self.remove(id, false)
    }

    fn register_subscriber(&self, subscriber: Arc<dyn EventSubscriber>) -> ListenerId {
        self.add(Handler::Subscriber(subscriber))
    }

    fn remove_subscriber(&self, id: ListenerId) -> bool {
        self.remove(id, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);
    impl EventSubscriber for Recorder {
        fn on_pre_create(&self, flag_name: &str, is_enabled: bool, client_data: Option<&Object>) {
            self.0.lock().unwrap().push(format!(
                "pre_create {flag_name} {is_enabled} {}",
                client_data.is_some()
            ));
        }
        fn on_post_set_bucketer(&self, flag_name: &str, bucketer: &Bucketer) {
            self.0.lock().unwrap().push(format!(
                "post_set_bucketer {flag_name} {}",
                bucketer.type_name()
            ));
        }
    }

    #[test]
    fn event_type_names_match_python() {
        let names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names.len(), 16);
        assert_eq!(names[0], "pre_create");
        assert_eq!(names[15], "post_set_bucketer");
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), 16);
    }

    #[test]
    fn subscribers_get_every_event_until_removed() {
        let emitter = FlipperEventEmitter::new();
        let rec = Arc::new(Recorder::default());
        let id = emitter.register_subscriber(rec.clone());
        let create = Event::with(
            EventType::PreCreate,
            "f",
            Payload::Create {
                is_enabled: true,
                client_data: None,
            },
        );
        assert!(emitter.emit(&create));
        assert!(emitter.emit(&Event::with(
            EventType::PostSetBucketer,
            "f",
            Payload::Bucketer(Bucketer::NoOp)
        )));
        // An event the recorder does not override still counts as delivered.
        assert!(emitter.emit(&Event::new(EventType::PreEnable, "f")));
        assert!(
            !emitter.remove_listener(id),
            "a subscriber id is not a listener id"
        );
        assert!(emitter.remove_subscriber(id));
        assert!(!emitter.emit(&create));
        assert_eq!(
            *rec.0.lock().unwrap(),
            [
                "pre_create f true false",
                "post_set_bucketer f NoOpBucketer"
            ]
        );
    }

    #[test]
    fn listeners_fire_in_order_for_their_type_only() {
        let emitter = FlipperEventEmitter::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        for tag in ["first", "second"] {
            let log = Arc::clone(&log);
            emitter.on(
                EventType::PostEnable,
                Arc::new(move |e| log.lock().unwrap().push(format!("{tag} {}", e.flag_name))),
            );
        }
        assert!(!emitter.emit(&Event::new(EventType::PreEnable, "x")));
        emitter.emit(&Event::new(EventType::PostEnable, "x"));
        assert_eq!(*log.lock().unwrap(), ["first x", "second x"]);
    }
}
