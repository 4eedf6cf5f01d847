//! A flag's life (`TestCreate`, `TestDestroy`, `TestEnable`, `TestDisable`): create (name,
//! initial state, pre/post events with their arguments), destroy, enable and disable, each on
//! a missing flag too (`FlagDoesNotExist`, nothing created) and with its pre/post events.

use flipper::events::{Event, EventType, Payload};
use flipper::store::Store;

use super::{assert_flag_missing, calls, listen, no_checks, object, setup, txt};

mod test_create {
    use super::*;

    #[tokio::test]
    async fn test_creates_and_returns_instance_of_feature_flag_class() {
        let f = setup();
        let name = txt();
        let flag = f.client.create(&name, false, None).await.unwrap();
        assert_eq!(flag.name(), name);
        assert!(flag.exists().await.unwrap());
    }

    #[tokio::test]
    async fn test_creates_flag_with_correct_name() {
        let f = setup();
        let name = txt();
        let flag = f.client.create(&name, false, None).await.unwrap();
        assert_eq!(flag.name(), name);
        let stored = f.store.get(&name).await.unwrap().unwrap();
        assert_eq!(stored.item.feature_name, name);
    }

    #[tokio::test]
    async fn test_is_enabled_defaults_to_false() {
        // Rust has no default arguments: `false` is Python's default for `is_enabled`.
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_flag_can_be_enabled_on_create() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_emits_pre_create_event_with_correct_args() {
        let f = setup();
        let log = listen(&f.client, EventType::PreCreate);
        let name = txt();
        let client_data = object([("x", 10)]);
        f.client
            .create(&name, true, Some(client_data.clone()))
            .await
            .unwrap();
        let last = calls(&log).pop().expect("the listener was called");
        assert_eq!(
            last,
            Event::with(
                EventType::PreCreate,
                &name,
                Payload::Create {
                    is_enabled: true,
                    client_data: Some(client_data),
                },
            )
        );
    }

    #[tokio::test]
    async fn test_emits_post_create_event_with_correct_args() {
        let f = setup();
        let log = listen(&f.client, EventType::PostCreate);
        let name = txt();
        let client_data = object([("x", 10)]);
        f.client
            .create(&name, true, Some(client_data.clone()))
            .await
            .unwrap();
        let last = calls(&log).pop().expect("the listener was called");
        assert_eq!(
            last,
            Event::with(
                EventType::PostCreate,
                &name,
                Payload::Create {
                    is_enabled: true,
                    client_data: Some(client_data),
                },
            )
        );
    }
}

mod test_destroy {
    use super::*;

    #[tokio::test]
    async fn test_get_will_return_instance_of_flag() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.destroy(&name).await.unwrap();
        // `get` still hands out a handle (it reads nothing), on a flag that is gone.
        let flag = f.client.get(&name);
        assert_eq!(flag.name(), name);
        assert!(!flag.exists().await.unwrap());
    }

    #[tokio::test]
    async fn test_status_switches_to_disabled() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
        f.client.destroy(&name).await.unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        assert_flag_missing(f.client.destroy(&name).await, &name);
    }

    #[tokio::test]
    async fn test_emits_pre_destroy_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreDestroy);
        f.client.create(&name, false, None).await.unwrap();
        f.client.destroy(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PreDestroy, &name)]);
    }

    #[tokio::test]
    async fn test_emits_post_destroy_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostDestroy);
        f.client.create(&name, false, None).await.unwrap();
        f.client.destroy(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PostDestroy, &name)]);
    }
}

mod test_enable {
    use super::*;

    #[tokio::test]
    async fn test_is_enabled_will_be_true() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_is_enabled_will_be_true_if_disable_was_called_earlier() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.disable(&name).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        assert_flag_missing(f.client.enable(&name).await, &name);
        // Unlike `store.set`, the client does not create it.
        assert!(!f.client.exists(&name).await.unwrap());
    }

    #[tokio::test]
    async fn test_emits_pre_enable_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreEnable);
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PreEnable, &name)]);
    }

    #[tokio::test]
    async fn test_emits_post_enable_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostEnable);
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PostEnable, &name)]);
    }
}

mod test_disable {
    use super::*;

    #[tokio::test]
    async fn test_is_enabled_will_be_false() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client.disable(&name).await.unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_is_enabled_will_be_false_if_enable_was_called_earlier() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        f.client.disable(&name).await.unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_raises_for_nonexistent_flag() {
        let f = setup();
        let name = txt();
        assert_flag_missing(f.client.disable(&name).await, &name);
        assert!(!f.client.exists(&name).await.unwrap());
    }

    #[tokio::test]
    async fn test_emits_pre_disable_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PreDisable);
        f.client.create(&name, false, None).await.unwrap();
        f.client.disable(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PreDisable, &name)]);
    }

    #[tokio::test]
    async fn test_emits_post_disable_event() {
        let f = setup();
        let name = txt();
        let log = listen(&f.client, EventType::PostDisable);
        f.client.create(&name, false, None).await.unwrap();
        f.client.disable(&name).await.unwrap();
        assert_eq!(calls(&log), [Event::new(EventType::PostDisable, &name)]);
    }
}
