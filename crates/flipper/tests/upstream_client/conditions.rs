//! Conditions and bucketers (`TestAddCondition`, `TestSetBucketer`, `TestSetConditions`):
//! added conditions in the meta (typed and stored form), appending, replacing the whole list
//! (exact stored JSON), the bucketer in the meta, and the pre/post events of each, through a
//! listener and through an `EventSubscriber`.

use std::sync::{Arc, Mutex};

use flipper::events::{Event, EventSubscriber, EventType, Payload};
use flipper::store::StoreExt;
use flipper::{Bucketer, Condition, Percentage};

use super::{Fixture, calls, listen, setup, txt};

mod test_add_condition {
    use super::*;

    #[tokio::test]
    async fn test_condition_gets_included_in_meta() {
        let f = setup();
        let name = txt();
        let condition = Condition::new().eq(&txt(), true);
        f.client.create(&name, false, None).await.unwrap();
        f.client
            .add_condition(&name, condition.clone())
            .await
            .unwrap();
        let meta = f.client.get_meta(&name).await.unwrap();
        assert!(meta.conditions.contains(&condition));
        // In the stored form too (upstream compares dicts).
        let stored = meta.to_value();
        let stored = stored.as_object().unwrap()["conditions"].as_list().unwrap();
        assert!(stored.contains(&condition.to_value()));
    }

    #[tokio::test]
    async fn test_condition_gets_appended_to_meta() {
        let f = setup();
        let name = txt();
        let condition = Condition::new().eq(&txt(), true);
        f.client.create(&name, false, None).await.unwrap();
        f.client
            .add_condition(&name, condition.clone())
            .await
            .unwrap();
        f.client
            .add_condition(&name, condition.clone())
            .await
            .unwrap();
        let meta = f.client.get_meta(&name).await.unwrap();
        assert_eq!(meta.conditions, [condition.clone(), condition]);
    }

    #[tokio::test]
    async fn test_emits_pre_add_condition_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreAddCondition);
        let condition = Condition::new().eq(&txt(), true);
        f.store.create(&name, false, None).await.unwrap();
        f.client
            .add_condition(&name, condition.clone())
            .await
            .unwrap();
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PreAddCondition,
                &name,
                Payload::Condition(condition)
            )]
        );
    }

    #[tokio::test]
    async fn test_emits_post_add_condition_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostAddCondition);
        let condition = Condition::new().eq(&txt(), true);
        f.store.create(&name, false, None).await.unwrap();
        f.client
            .add_condition(&name, condition.clone())
            .await
            .unwrap();
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PostAddCondition,
                &name,
                Payload::Condition(condition)
            )]
        );
    }
}

mod test_set_bucketer {
    use super::*;

    fn bucketer() -> Bucketer {
        Bucketer::percentage(Percentage::fixed(0.1))
    }

    #[tokio::test]
    async fn test_bucketer_gets_included_in_meta() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.set_bucketer(&name, bucketer()).await.unwrap();
        let meta = f.client.get_meta(&name).await.unwrap();
        assert_eq!(meta.bucketer.to_value(), bucketer().to_value());
        assert_eq!(meta.bucketer, bucketer());
    }

    #[tokio::test]
    async fn test_emits_pre_set_bucketer_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreSetBucketer);
        f.store.create(&name, false, None).await.unwrap();
        f.client.set_bucketer(&name, bucketer()).await.unwrap();
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PreSetBucketer,
                &name,
                Payload::Bucketer(bucketer())
            )]
        );
    }

    #[tokio::test]
    async fn test_emits_post_set_bucketer_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostSetBucketer);
        f.store.create(&name, false, None).await.unwrap();
        f.client.set_bucketer(&name, bucketer()).await.unwrap();
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PostSetBucketer,
                &name,
                Payload::Bucketer(bucketer())
            )]
        );
    }
}

mod test_set_conditions {
    use super::*;

    /// Upstream's `TestSetConditions.Subscriber`.
    #[derive(Default)]
    struct Subscriber {
        events: Mutex<Vec<(String, String, Vec<Condition>)>>,
    }

    impl EventSubscriber for Subscriber {
        fn on_pre_set_conditions(&self, flag_name: &str, conditions: &[Condition]) {
            self.events.lock().unwrap().push((
                "pre_set_conditions".into(),
                flag_name.into(),
                conditions.to_vec(),
            ));
        }
        fn on_post_set_conditions(&self, flag_name: &str, conditions: &[Condition]) {
            self.events.lock().unwrap().push((
                "post_set_conditions".into(),
                flag_name.into(),
                conditions.to_vec(),
            ));
        }
    }

    /// `setUp`: the subscriber is registered on the client's own emitter.
    fn setup_with_subscriber() -> (Fixture, Arc<Subscriber>) {
        let f = setup();
        let subscriber = Arc::new(Subscriber::default());
        f.client.events().register_subscriber(subscriber.clone());
        (f, subscriber)
    }

    fn new_conditions() -> Vec<Condition> {
        vec![
            Condition::new().eq("new_value", true),
            Condition::new().is_in("id", vec![1, 2]),
        ]
    }

    #[tokio::test]
    async fn test_overrides_previous_conditions() {
        let (f, _subscriber) = setup_with_subscriber();
        let name = "FLAG";
        f.client.create(name, false, None).await.unwrap();
        f.client
            .add_condition(name, Condition::new().eq("value", true))
            .await
            .unwrap();
        f.client
            .set_conditions(name, new_conditions())
            .await
            .unwrap();
        let meta = f.client.get_meta(name).await.unwrap();
        let conditions_array =
            flipper_core::json::to_string(&meta.to_value().as_object().unwrap()["conditions"]);
        assert_eq!(
            conditions_array,
            r#"[{"new_value": [{"variable": "new_value", "value": true, "operator": null}]}, {"id": [{"variable": "id", "value": [1, 2], "operator": "in"}]}]"#
        );
    }

    #[tokio::test]
    async fn test_events_are_emitted() {
        let (f, subscriber) = setup_with_subscriber();
        let name = "FLAG";
        f.client.create(name, false, None).await.unwrap();
        f.client
            .set_conditions(name, new_conditions())
            .await
            .unwrap();
        assert_eq!(
            *subscriber.events.lock().unwrap(),
            [
                ("pre_set_conditions".into(), name.into(), new_conditions()),
                ("post_set_conditions".into(), name.into(), new_conditions()),
            ]
        );
    }
}
