//! Reading flags (`TestIsEnabled`, `TestGet`, `TestExists`, `TestList`): `is_enabled` on
//! enabled, disabled and missing flags, with conditions and with bucketers (pinned random
//! draws, consistent-hash scores); `get` handles; `exists`; `list` with its paging and the
//! handles it returns.

use flipper::{Bucketer, Checks, Condition, Percentage, Reason};

use super::{no_checks, setup, setup_with_random, txt};

mod test_is_enabled {
    use super::*;

    #[tokio::test]
    async fn test_returns_true_when_feature_enabled() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client.enable(&name).await.unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_false_when_feature_disabled() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client.disable(&name).await.unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_false_when_feature_does_not_exist() {
        let f = setup();
        let name = txt();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
        // `default=` is what a missing flag answers.
        assert!(f.client.is_enabled_or(&name, &no_checks(), true).await);
    }

    #[tokio::test]
    async fn test_returns_true_if_condition_specifies() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client
            .add_condition(&name, Condition::new().eq("foo", true))
            .await
            .unwrap();
        assert!(
            f.client
                .is_enabled(&name, &Checks::new().with("foo", true))
                .await
        );
    }

    #[tokio::test]
    async fn test_returns_false_if_condition_specifies() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client
            .add_condition(&name, Condition::new().eq("foo", true))
            .await
            .unwrap();
        assert!(
            !f.client
                .is_enabled(&name, &Checks::new().with("foo", false))
                .await
        );
    }

    #[tokio::test]
    async fn test_returns_false_if_feature_disabled_despite_condition() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        f.client
            .add_condition(&name, Condition::new().eq("foo", true))
            .await
            .unwrap();
        assert!(
            !f.client
                .is_enabled(&name, &Checks::new().with("foo", true))
                .await
        );
    }

    #[tokio::test]
    async fn test_returns_false_if_bucketer_check_returns_false() {
        // A 50% random bucketer with the draw pinned at 0.6: `check` is False.
        let f = setup_with_random(0.6);
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client
            .set_bucketer(&name, Bucketer::percentage(Percentage::fixed(0.5)))
            .await
            .unwrap();
        assert!(!f.client.is_enabled(&name, &no_checks()).await);
        let e = f.client.evaluate(&name, &no_checks(), false).await.unwrap();
        assert_eq!(e.reason, Reason::BucketedOut);
    }

    #[tokio::test]
    async fn test_returns_true_if_bucketer_check_returns_true() {
        // A 50% random bucketer with the draw pinned at 0.4: `check` is True.
        let f = setup_with_random(0.4);
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client
            .set_bucketer(&name, Bucketer::percentage(Percentage::fixed(0.5)))
            .await
            .unwrap();
        assert!(f.client.is_enabled(&name, &no_checks()).await);
        let e = f.client.evaluate(&name, &no_checks(), false).await.unwrap();
        assert_eq!(e.reason, Reason::BucketedIn);
    }

    #[tokio::test]
    async fn test_forwards_conditions_to_bucketer() {
        // A consistent-hash bucketer hashes the checks it receives: no checks score 0.32,
        // `foo=True` scores 0.43. At 40% the answer tells which checks reached it.
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        f.client
            .set_bucketer(
                &name,
                Bucketer::consistent_hash(Percentage::fixed(0.4), Vec::<String>::new()),
            )
            .await
            .unwrap();
        let foo = Checks::new().with("foo", true);
        assert!(
            !f.client.is_enabled(&name, &foo).await,
            "foo=True scores 0.43"
        );
        assert!(
            f.client.is_enabled(&name, &no_checks()).await,
            "[] scores 0.32"
        );
        f.client
            .set_bucketer(
                &name,
                Bucketer::consistent_hash(Percentage::fixed(0.43), Vec::<String>::new()),
            )
            .await
            .unwrap();
        assert!(f.client.is_enabled(&name, &foo).await, "0.43 <= 0.43");
    }
}

mod test_get {
    use super::*;

    #[tokio::test]
    async fn test_returns_instance_of_feature_flag_class() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        let flag = f.client.get(&name);
        // The handle acts on the stored flag.
        assert!(flag.exists().await.unwrap());
        assert!(flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_flag_with_correct_name() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        assert_eq!(f.client.get(&name).name(), name);
    }
}

mod test_exists {
    use super::*;

    #[tokio::test]
    async fn test_exists_is_false_when_feature_does_not_exist() {
        let f = setup();
        assert!(!f.client.exists(&txt()).await.unwrap());
    }

    #[tokio::test]
    async fn test_exists_is_true_when_feature_does_exist() {
        let f = setup();
        let name = txt();
        f.client.create(&name, false, None).await.unwrap();
        assert!(f.client.exists(&name).await.unwrap());
    }
}

mod test_list {
    use super::*;

    #[tokio::test]
    async fn test_calls_backend_with_correct_args() {
        // Upstream mocks `store.list` and checks it got limit=10, offset=25. Here the store
        // is real and holds 40 flags: only that page can come back.
        let f = setup();
        let mut names: Vec<String> = (0..40).map(|_| txt()).collect();
        for name in &names {
            f.client.create(name, false, None).await.unwrap();
        }
        names.sort();
        let (limit, offset) = (10, 25);
        let listed: Vec<String> = f
            .client
            .list(Some(limit), offset)
            .await
            .unwrap()
            .iter()
            .map(|flag| flag.name().to_owned())
            .collect();
        assert_eq!(listed, names[offset..offset + limit]);
    }

    #[tokio::test]
    async fn test_returns_flag_objects() {
        let f = setup();
        let name = txt();
        f.client.create(&name, true, None).await.unwrap();
        let flag = f.client.list(None, 0).await.unwrap().remove(0);
        // A handle bound to the client.
        assert!(flag.is_enabled(&no_checks()).await);
    }

    #[tokio::test]
    async fn test_returns_correct_flag_objects() {
        let f = setup();
        let name = txt();
        let expected = f.client.create(&name, false, None).await.unwrap();
        let actual = f.client.list(None, 0).await.unwrap().remove(0);
        assert_eq!(expected.name(), actual.name());
    }

    #[tokio::test]
    async fn test_returns_correct_count_of_flag_objects() {
        let f = setup();
        for _ in 0..10 {
            f.client.create(&txt(), false, None).await.unwrap();
        }
        assert_eq!(f.client.list(None, 0).await.unwrap().len(), 10);
    }
}
