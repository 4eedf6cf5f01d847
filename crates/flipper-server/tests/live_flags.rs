//! The library's live flags over a flipper server (the HTTP store and its change stream): the
//! server's changes reach them; the server stops (reads go on, every answer the last known
//! one) and a change is made to its store meanwhile; once a server is back on the same port,
//! the change arrives.

mod live;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{HttpStore, MemoryStore, Store, StoreExt};
use flipper::{Checks, Condition, Reason};
use live::{ADMIN, PATIENCE, SDK, Server};

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_servers_changes_reach_live_flags_and_survive_its_outage() {
    let memory = Arc::new(MemoryStore::new());
    memory.create_at("steady", true, None, 1).await.unwrap();
    let server = Server::start(Arc::clone(&memory) as Arc<dyn Store>, |_| {}).await;
    let addr = server.addr;
    let reader = HttpStore::new(&server.base).unwrap().with_token(SDK);
    let live = LiveFlags::start(
        Arc::new(reader),
        LiveOptions::default().retry(Duration::from_millis(20), Duration::from_millis(200)),
    )
    .await;
    assert!(live.is_initialized() && live.status().following);
    assert!(live.is_enabled("steady", &Checks::new()));

    // Writes through the server's API (another client).
    let admin = HttpStore::new(&server.base).unwrap().with_token(ADMIN);
    admin.create_at("beta", true, None, 1).await.unwrap();
    eventually("a create", || live.is_enabled("beta", &Checks::new())).await;
    admin
        .update("beta", |item| {
            item.meta.conditions.push(Condition::new().gte("age", 18));
            Ok(())
        })
        .await
        .unwrap();
    eventually("a change", || {
        !live.is_enabled("beta", &Checks::new().with("age", 12))
    })
    .await;
    // Direct writes to the server's store, which the server's stream relays.
    memory.delete("beta").await.unwrap();
    eventually("a delete", || live.get("beta").is_none()).await;

    // Read your writes through the server, then someone else's write on top: it shows well
    // within the grace period (the stream reports our write under the ETag the write got).
    let writer = LiveFlags::start(
        Arc::new(HttpStore::new(&server.base).unwrap().with_token(ADMIN)),
        LiveOptions::default(),
    )
    .await;
    writer.client().create("own", true, None).await.unwrap();
    assert!(writer.is_enabled("own", &Checks::new()));
    memory.set("own", false).await.unwrap();
    let started = tokio::time::Instant::now();
    eventually("a write on top of ours", || {
        !writer.is_enabled("own", &Checks::new())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(writer);

    // The outage, under a read load.
    let stop = Arc::new(AtomicBool::new(false));
    let (count, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (live, stop, count, failures) = (
                live.clone(),
                Arc::clone(&stop),
                Arc::clone(&count),
                Arc::clone(&failures),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let e = live.evaluate("steady", &Checks::new(), false);
                    if !e.enabled
                        || matches!(e.reason, Reason::FlagMissing | Reason::NotInitialized)
                    {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                    std::thread::yield_now();
                }
            })
        })
        .collect();
    server.stop().await.unwrap();
    // Made while no server answers.
    memory
        .create_at("made_during_outage", true, None, 1)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(live.is_enabled("steady", &Checks::new()));
    assert!(live.get("made_during_outage").is_none());

    // A new server process on the same port, over the same store.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let restarted = Server::start_on(listener, Arc::clone(&memory) as Arc<dyn Store>, |_| {}).await;
    eventually("the change made during the outage", || {
        live.is_enabled("made_during_outage", &Checks::new())
    })
    .await;
    eventually("following again", || live.status().following).await;
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    let (count, failures) = (
        count.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    assert!(count > 100, "{count} evaluations");
    assert_eq!(failures, 0, "failed evaluations out of {count}");
    memory.set("steady", false).await.unwrap();
    eventually("a later change", || {
        !live.is_enabled("steady", &Checks::new())
    })
    .await;
    restarted.stop().await.unwrap();
}
