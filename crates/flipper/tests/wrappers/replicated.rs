//! `ReplicatedStore`'s own behaviour: synchronous replicas equal to the primary after each
//! write, asynchronous ones converging in the primary's order, replicas written in parallel,
//! one timeout at most for slow replicas, failing replicas reported (events, per-call reports,
//! counts) rather than hidden, primary failures leaving replicas untouched, `create` returning
//! the flag for a cache over replicas, and per-flag ordering under concurrency.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use flipper::store::{
    CachedStore, PutMode, ReplicaOperation, ReplicatedStore, Replication, Store, StoreExt,
};
use flipper::{Checks, Error, FeatureFlagClient, Meta};

use crate::common::{Faulty, eventually, item, items, json_file, memory};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_replicas_equal_the_primary_after_each_write() {
    let primary = memory();
    let (_dir, file) = json_file();
    let replicas = vec![memory(), file];
    let store = ReplicatedStore::new(Arc::clone(&primary), replicas.clone());
    let same = || async {
        let expected = items(&*primary).await;
        for replica in &replicas {
            assert_eq!(items(&**replica).await, expected, "{replica}");
        }
    };
    store.create("a", true, None).await.unwrap();
    same().await;
    store.set("a", false).await.unwrap();
    same().await;
    store.set_meta("a", Meta::new(7)).await.unwrap();
    same().await;
    store
        .put_many(&[item("b", true), item("c", false)])
        .await
        .unwrap();
    same().await;
    let v = store.get("b").await.unwrap().unwrap().version;
    store
        .put(&item("b", false), PutMode::Update(v))
        .await
        .unwrap();
    same().await;
    store.delete("a").await.unwrap();
    same().await;
    assert_eq!(items(&*primary).await.len(), 2);
    assert_eq!(
        store.replica_failures(),
        [("memory:".to_owned(), 0), (replicas[1].to_string(), 0)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_replicas_become_equal_in_the_primarys_order() {
    let primary = memory();
    let replica: Arc<dyn Store> =
        Arc::new(Faulty::new("jittery:").jittery_writes(Duration::from_millis(60)));
    let store = ReplicatedStore::new(Arc::clone(&primary), vec![Arc::clone(&replica)])
        .with_replication(Replication::Asynchronous {
            timeout: Duration::from_secs(10),
        });
    // Many quick writes of one flag: each replica write takes a random time, yet the replica
    // must end with the primary's last state, not whichever write finished last.
    let started = Instant::now();
    for i in 0..20 {
        store.set("f", i % 2 == 0).await.unwrap();
        store.create(&format!("g{i}"), true, None).await.unwrap();
    }
    store.set("f", false).await.unwrap();
    store.delete("g3").await.unwrap();
    assert!(
        // Waiting for the replica would take 42 × 30 ms on average.
        started.elapsed() < Duration::from_millis(600),
        "asynchronous writes do not wait for the replica: {:?}",
        started.elapsed()
    );
    let expected = items(&*primary).await;
    eventually("the replica equals the primary", || async {
        items(&*replica).await == expected
    })
    .await;
    assert_eq!(store.replica_failures()[0].1, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_written_in_parallel() {
    let slow = || -> Arc<dyn Store> {
        Arc::new(Faulty::new("slow:").slow_writes(Duration::from_millis(500)))
    };
    let replicas = vec![slow(), slow()];
    let store = ReplicatedStore::new(memory(), replicas.clone());
    let started = Instant::now();
    store
        .put(&item("f", true), PutMode::Overwrite)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(
        took < Duration::from_millis(900),
        "two 500 ms replicas took {took:?} (one after the other would be 1 s)"
    );
    for replica in &replicas {
        assert!(replica.get("f").await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_replicas_delay_a_synchronous_write_by_one_timeout_at_most() {
    let slow =
        || -> Arc<dyn Store> { Arc::new(Faulty::new("slow:").slow_writes(Duration::from_secs(3))) };
    let store = ReplicatedStore::new(memory(), vec![slow(), slow()]).with_replication(
        Replication::Synchronous {
            timeout: Duration::from_millis(500),
        },
    );
    let mut events = store.subscribe();
    let started = Instant::now();
    let written = store
        .put_with_report(&item("f", true), PutMode::Overwrite)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(
        took < Duration::from_millis(900),
        "one timeout for all replicas, not one each (1 s): {took:?}"
    );
    assert_eq!(written.failures.len(), 2);
    assert!(written.failures.iter().all(|f| f.timed_out));
    for _ in 0..2 {
        let event = events.try_recv().unwrap();
        assert!(
            event.timed_out && event.error.contains("500ms"),
            "{event:?}"
        );
    }
    assert_eq!(
        store.replica_failures(),
        [("slow:".to_owned(), 1), ("slow:".to_owned(), 1)]
    );
    // The primary has it.
    assert!(store.get("f").await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_replica_is_reported_not_hidden() {
    let good = memory();
    let bad: Arc<dyn Store> = Arc::new(Faulty::new("redis://replica-2").failing_writes());
    let primary = memory();
    let store = ReplicatedStore::new(
        Arc::clone(&primary),
        vec![Arc::clone(&good), Arc::clone(&bad)],
    );
    let mut events = store.subscribe();

    let created = store.create("f", true, None).await.unwrap();
    assert_eq!(primary.get("f").await.unwrap().unwrap().item, created.item);
    assert_eq!(good.get("f").await.unwrap().unwrap().item, created.item);
    assert!(bad.get("f").await.unwrap().is_none());

    let event = events.try_recv().unwrap();
    assert_eq!(event.replica, "redis://replica-2");
    assert_eq!(event.index, 1);
    assert_eq!(event.operation, ReplicaOperation::Put);
    assert_eq!(event.flags, ["f"]);
    assert!(event.error.contains("injected failure"), "{}", event.error);
    assert!(!event.timed_out);
    assert_eq!(
        store.replica_failures(),
        [
            ("memory:".to_owned(), 0),
            ("redis://replica-2".to_owned(), 1)
        ]
    );

    // The per-call report, and the other operations.
    let report = store.delete_with_report("f").await.unwrap();
    assert!(report.value);
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].operation, ReplicaOperation::Delete);
    let report = store
        .put_many_with_report(&[item("b", true), item("a", true)])
        .await
        .unwrap();
    assert_eq!(report.failures[0].flags, ["a", "b"]);
    assert_eq!(store.replica_failures()[1].1, 3);
    assert_eq!(
        events.try_recv().unwrap().operation,
        ReplicaOperation::Delete
    );
    assert_eq!(
        events.try_recv().unwrap().operation,
        ReplicaOperation::PutMany
    );

    // Asynchronous mode reports through the same channels.
    let store =
        ReplicatedStore::new(memory(), vec![bad]).with_replication(Replication::Asynchronous {
            timeout: Duration::from_secs(1),
        });
    let mut events = store.subscribe();
    store.set("g", true).await.unwrap();
    let event = tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .expect("an event within 5 s")
        .unwrap();
    assert_eq!(event.flags, ["g"]);
    assert_eq!(store.replica_failures()[0].1, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_failure_leaves_the_replicas_untouched() {
    let primary = Arc::new(Faulty::new("primary:"));
    let replica = memory();
    let store = ReplicatedStore::new(primary.clone(), vec![Arc::clone(&replica)]);
    store.create("f", false, None).await.unwrap();
    let before = items(&*replica).await;

    // A precondition that fails on the primary.
    let err = store
        .put(&item("f", true), PutMode::Create)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    // A primary that fails outright.
    primary.fail_writes.store(true, Ordering::SeqCst);
    let mut events = store.subscribe();
    assert!(store.set("f", true).await.is_err());
    assert!(store.delete("f").await.is_err());
    assert!(store.put_many(&[item("g", true)]).await.is_err());
    assert!(store.create("h", true, None).await.is_err());

    assert_eq!(items(&*replica).await, before);
    assert!(
        events.try_recv().is_err(),
        "a primary failure is the caller's error, not a replica's"
    );
    assert_eq!(store.replica_failures()[0].1, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_returns_the_flag_so_a_cache_over_replicas_works() {
    let store = ReplicatedStore::new(memory(), vec![memory()]);
    let created = store.create("f", true, None).await.unwrap();
    assert_eq!(created.item.feature_name, "f");
    assert_eq!(store.get("f").await.unwrap(), Some(created));

    // flipper-client: enable() right after create() raised FlagDoesNotExistError here.
    let client = FeatureFlagClient::new(CachedStore::new(ReplicatedStore::new(
        memory(),
        vec![memory()],
    )));
    let flag = client.create("beta", false, None).await.unwrap();
    flag.enable().await.unwrap();
    assert!(flag.is_enabled(&Checks::new()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_one_flag_reach_each_replica_in_order_under_concurrency() {
    let primary = memory();
    let replica: Arc<dyn Store> =
        Arc::new(Faulty::new("jittery:").jittery_writes(Duration::from_millis(10)));
    let store = Arc::new(ReplicatedStore::new(
        Arc::clone(&primary),
        vec![Arc::clone(&replica)],
    ));
    store.create("f", false, None).await.unwrap();
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for j in 0..5 {
                    store.set("f", (i + j) % 2 == 0).await.unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(items(&*replica).await, items(&*primary).await);
}
