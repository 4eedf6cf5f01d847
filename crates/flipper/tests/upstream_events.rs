//! Port of flipper-client's `tests/events/test_emitter.py`: 2 test functions parametrized over
//! the 16 `EventType`s, 32 upstream cases. Each Rust test loops over [`EventType::ALL`]
//! (asserting there are 16), with a fresh emitter and subscriber per event type as pytest
//! gives each parameter.
//!
//! Deviation: Python emits a bare `events.emit(event_type)` and its `DummySubscriber` takes
//! `*args`. Our events are typed, and a subscriber method receives the payload its event
//! carries, so each event is emitted with the payload the client would send (an event whose
//! payload does not fit its type reaches no subscriber method). `remove_subscriber` takes the
//! [`ListenerId`](flipper::events::ListenerId) `register_subscriber` returned, not the
//! subscriber object.

use std::sync::{Arc, Mutex};

use flipper::events::{
    Event, EventEmitter, EventSubscriber, EventType, FlipperEventEmitter, Payload,
};
use flipper::{Bucketer, Condition, Object, Percentage, Value};

/// Upstream's `DummySubscriber`: records every method call with its arguments.
#[derive(Default)]
struct DummySubscriber {
    calls: Mutex<Vec<String>>,
}

impl DummySubscriber {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl EventSubscriber for DummySubscriber {
    fn on_pre_create(&self, flag_name: &str, is_enabled: bool, client_data: Option<&Object>) {
        self.record(format!(
            "on_pre_create({flag_name}, {is_enabled}, {client_data:?})"
        ));
    }
    fn on_post_create(&self, flag_name: &str, is_enabled: bool, client_data: Option<&Object>) {
        self.record(format!(
            "on_post_create({flag_name}, {is_enabled}, {client_data:?})"
        ));
    }
    fn on_pre_enable(&self, flag_name: &str) {
        self.record(format!("on_pre_enable({flag_name})"));
    }
    fn on_post_enable(&self, flag_name: &str) {
        self.record(format!("on_post_enable({flag_name})"));
    }
    fn on_pre_disable(&self, flag_name: &str) {
        self.record(format!("on_pre_disable({flag_name})"));
    }
    fn on_post_disable(&self, flag_name: &str) {
        self.record(format!("on_post_disable({flag_name})"));
    }
    fn on_pre_destroy(&self, flag_name: &str) {
        self.record(format!("on_pre_destroy({flag_name})"));
    }
    fn on_post_destroy(&self, flag_name: &str) {
        self.record(format!("on_post_destroy({flag_name})"));
    }
    fn on_pre_add_condition(&self, flag_name: &str, condition: &Condition) {
        self.record(format!("on_pre_add_condition({flag_name}, {condition:?})"));
    }
    fn on_post_add_condition(&self, flag_name: &str, condition: &Condition) {
        self.record(format!("on_post_add_condition({flag_name}, {condition:?})"));
    }
    fn on_pre_set_conditions(&self, flag_name: &str, conditions: &[Condition]) {
        self.record(format!(
            "on_pre_set_conditions({flag_name}, {conditions:?})"
        ));
    }
    fn on_post_set_conditions(&self, flag_name: &str, conditions: &[Condition]) {
        self.record(format!(
            "on_post_set_conditions({flag_name}, {conditions:?})"
        ));
    }
    fn on_pre_set_client_data(&self, flag_name: &str, client_data: &Value) {
        self.record(format!(
            "on_pre_set_client_data({flag_name}, {client_data:?})"
        ));
    }
    fn on_post_set_client_data(&self, flag_name: &str, client_data: &Value) {
        self.record(format!(
            "on_post_set_client_data({flag_name}, {client_data:?})"
        ));
    }
    fn on_pre_set_bucketer(&self, flag_name: &str, bucketer: &Bucketer) {
        self.record(format!("on_pre_set_bucketer({flag_name}, {bucketer:?})"));
    }
    fn on_post_set_bucketer(&self, flag_name: &str, bucketer: &Bucketer) {
        self.record(format!("on_post_set_bucketer({flag_name}, {bucketer:?})"));
    }
}

const FLAG: &str = "flag";

/// The event the client emits for `event_type`, and the subscriber call it must produce.
fn sample(event_type: EventType) -> (Event, String) {
    use EventType as T;
    let condition = Condition::new().gte("age", 18);
    let client_data: Object = [("k".to_owned(), Value::from(1))].into_iter().collect();
    let bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
    let (payload, args) = match event_type {
        T::PreCreate | T::PostCreate => (
            Payload::Create {
                is_enabled: true,
                client_data: Some(client_data.clone()),
            },
            format!("{FLAG}, true, {:?}", Some(&client_data)),
        ),
        T::PreEnable
        | T::PostEnable
        | T::PreDisable
        | T::PostDisable
        | T::PreDestroy
        | T::PostDestroy => (Payload::None, FLAG.to_owned()),
        T::PreAddCondition | T::PostAddCondition => (
            Payload::Condition(condition.clone()),
            format!("{FLAG}, {condition:?}"),
        ),
        T::PreSetConditions | T::PostSetConditions => (
            Payload::Conditions(vec![condition.clone()]),
            format!("{FLAG}, {:?}", [condition]),
        ),
        T::PreSetClientData | T::PostSetClientData => {
            let data = Value::from(client_data);
            (
                Payload::ClientData(data.clone()),
                format!("{FLAG}, {data:?}"),
            )
        }
        T::PreSetBucketer | T::PostSetBucketer => (
            Payload::Bucketer(bucketer.clone()),
            format!("{FLAG}, {bucketer:?}"),
        ),
    };
    (
        Event::with(event_type, FLAG, payload),
        format!("on_{}({args})", event_type.as_str()),
    )
}

mod test_register_subscriber {
    use super::*;

    #[test]
    fn test_all_listeners_get_registered() {
        assert_eq!(
            EventType::ALL.len(),
            16,
            "pytest collects one case per EventType"
        );
        for event_type in EventType::ALL {
            let subscriber = Arc::new(DummySubscriber::default());
            let events = FlipperEventEmitter::new();
            events.register_subscriber(subscriber.clone());
            let (event, expected_call) = sample(event_type);

            assert!(events.emit(&event), "{event_type}: a handler ran");

            // `getattr(mock, "on_%s" % event_type.value).assert_called_once_with(...)`, and
            // no other method was called.
            assert_eq!(subscriber.calls(), [expected_call], "{event_type}");
        }
    }
}

mod test_remove_subscriber {
    use super::*;

    #[test]
    fn test_all_listeners_get_removed() {
        assert_eq!(
            EventType::ALL.len(),
            16,
            "pytest collects one case per EventType"
        );
        for event_type in EventType::ALL {
            let subscriber = Arc::new(DummySubscriber::default());
            let events = FlipperEventEmitter::new();
            let id = events.register_subscriber(subscriber.clone());
            assert!(events.remove_subscriber(id), "{event_type}: was registered");
            let (event, _) = sample(event_type);

            assert!(!events.emit(&event), "{event_type}: no handler left");

            assert!(subscriber.calls().is_empty(), "{event_type}");
        }
    }
}
