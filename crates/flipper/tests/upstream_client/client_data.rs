//! Client data and meta (`TestSetClientData`, `TestGetClientData`, `TestGetMeta`): the single
//! write `set_client_data` makes (observed on the store's change stream), merging and
//! overriding, missing flags, pre/post events; reading client data and meta back.

use flipper::events::{Event, EventType, Payload};
use flipper::store::{Store, StoreExt};
use flipper::{Meta, Object, Value};

use super::{Fixture, NOW, assert_flag_missing, calls, listen, object, setup, single_write, txt};

mod test_set_client_data {
    use super::*;

    /// Creates a flag, then watches the store while `set_client_data` runs; returns the flag
    /// written (upstream's `set_meta` call), checking there was exactly one write.
    async fn written_by_set_client_data(f: &Fixture, name: &str, data: &Object) -> flipper::Item {
        f.client.create(name, false, None).await.unwrap();
        let mut changes = f.store.watch().expect("the memory store can be watched");
        f.client.set_client_data(name, data.clone()).await.unwrap();
        single_write(&mut changes)
    }

    #[tokio::test]
    async fn test_calls_backend_with_correct_feature_name() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        let written = written_by_set_client_data(&f, &name, &data).await;
        assert_eq!(written.feature_name, name);
    }

    #[tokio::test]
    async fn test_calls_backend_with_instance_of_meta() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        let written = written_by_set_client_data(&f, &name, &data).await;
        // The whole meta is written: the new client data and everything else as it was.
        let mut expected = Meta::new(NOW);
        expected.client_data = Value::from(data);
        assert_eq!(written.meta, expected);
        assert_eq!(written.is_enabled, Value::Bool(false));
    }

    #[tokio::test]
    async fn test_calls_backend_with_correct_meta_client_data() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        let written = written_by_set_client_data(&f, &name, &data).await;
        assert_eq!(written.meta.client_data, Value::from(data));
    }

    #[tokio::test]
    async fn test_calls_backend_with_non_null_meta_created_date() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        let written = written_by_set_client_data(&f, &name, &data).await;
        // Not just non-null: the creation time, kept.
        assert_eq!(written.meta.created_date_secs(), Some(NOW));
    }

    #[tokio::test]
    async fn test_calls_backend_exactly_once() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        // `single_write` fails unless the store saw exactly one write.
        let written = written_by_set_client_data(&f, &name, &data).await;
        assert_eq!(written.meta.client_data, Value::from(data));
    }

    #[tokio::test]
    async fn test_merges_new_values_with_existing() {
        let f = setup();
        let name = txt();
        let existing = object([("existing_key", txt())]);
        f.store
            .create(&name, false, Some(existing.clone()))
            .await
            .unwrap();
        let new = object([("new_key", txt())]);
        f.client.set_client_data(&name, new.clone()).await.unwrap();
        let item = f.store.get(&name).await.unwrap().unwrap().item;
        let mut merged = existing;
        merged.extend(new);
        assert_eq!(item.meta.client_data, Value::from(merged));
    }

    #[tokio::test]
    async fn test_can_override_existing_values() {
        let f = setup();
        let name = txt();
        let existing = object([("existing_key", txt())]);
        f.store
            .create(&name, false, Some(existing.clone()))
            .await
            .unwrap();
        let new = object([("existing_key", txt()), ("new_key", txt())]);
        f.client.set_client_data(&name, new.clone()).await.unwrap();
        let item = f.store.get(&name).await.unwrap().unwrap().item;
        assert_eq!(item.meta.client_data, Value::from(new));
        // Deviation: no dict aliasing. Python's memory store keeps the caller's dict and
        // merges into it; here `existing` is the caller's own copy and stays as it was.
        assert_eq!(existing.len(), 1);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        assert_flag_missing(f.client.set_client_data(&name, data).await, &name);
    }

    #[tokio::test]
    async fn test_emits_pre_set_client_data_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreSetClientData);
        let existing = object([("existing_key", txt())]);
        f.client.create(&name, false, Some(existing)).await.unwrap();
        let new = object([("existing_key", txt()), ("new_key", txt())]);
        f.client.set_client_data(&name, new.clone()).await.unwrap();
        // The merged data, which here equals `new`.
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PreSetClientData,
                &name,
                Payload::ClientData(Value::from(new))
            )]
        );
    }

    #[tokio::test]
    async fn test_emits_post_set_client_data_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostSetClientData);
        let existing = object([("existing_key", txt())]);
        f.client.create(&name, false, Some(existing)).await.unwrap();
        let new = object([("existing_key", txt()), ("new_key", txt())]);
        f.client.set_client_data(&name, new.clone()).await.unwrap();
        assert_eq!(
            calls(&log),
            [Event::with(
                EventType::PostSetClientData,
                &name,
                Payload::ClientData(Value::from(new))
            )]
        );
    }
}

mod test_get_client_data {
    use super::*;

    #[tokio::test]
    async fn test_gets_expected_key_value_pairs() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        f.client
            .create(&name, false, Some(data.clone()))
            .await
            .unwrap();
        assert_eq!(
            f.client.get_client_data(&name).await.unwrap(),
            Value::from(data)
        );
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        assert_flag_missing(f.client.get_client_data(&name).await, &name);
    }
}

mod test_get_meta {
    use super::*;

    #[tokio::test]
    async fn test_includes_created_date() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        f.client.create(&name, false, Some(data)).await.unwrap();
        let meta = f.client.get_meta(&name).await.unwrap();
        // Upstream: `"created_date" in meta`. With the clock pinned, it is known.
        assert_eq!(meta.created_date_secs(), Some(NOW));
    }

    #[tokio::test]
    async fn test_includes_client_data() {
        let f = setup();
        let name = txt();
        let data = object([(txt(), txt())]);
        f.client
            .create(&name, false, Some(data.clone()))
            .await
            .unwrap();
        let meta = f.client.get_meta(&name).await.unwrap();
        assert_eq!(meta.client_data, Value::from(data));
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        assert_flag_missing(f.client.get_meta(&name).await, &name);
    }
}
