//! The redb store's own tests: layout, durability (a child killed with SIGKILL mid-write),
//! versions and locking.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt;

use super::*;
use crate::store::StoreExt;

fn temp_store() -> (tempfile::TempDir, RedbStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(dir.path().join("flipper.redb")).unwrap();
    (dir, store)
}

mod conformance {
    // A fresh database file per case, in a temp dir removed when the case ends.
    crate::store_conformance_tests!(guarded: super::temp_store());
}

/// Writes `bytes` as the stored value of `name`, bypassing the store.
fn write_raw(store: &RedbStore, name: &str, bytes: &[u8]) {
    let txn = store.inner.db.begin_write().unwrap();
    txn.open_table(FLAGS).unwrap().insert(name, bytes).unwrap();
    txn.commit().unwrap();
}

/// The stored bytes of `name`, read with redb directly.
fn read_raw(db: &Database, name: &str) -> Option<Vec<u8>> {
    let txn = db.begin_read().unwrap();
    let flags = txn.open_table(FLAGS).unwrap();
    flags.get(name).unwrap().map(|g| g.value().to_vec())
}

/// The name of a test in this module, as libtest's `--exact` wants it.
fn test_name(function: &str) -> String {
    let module = module_path!();
    let module = module.split_once("::").map_or(module, |(_, rest)| rest);
    format!("{module}::{function}")
}

/// Runs this test binary's test `function` as a child process with `var=value`, its stdin
/// and stdout piped.
fn spawn_child(function: &str, var: &str, value: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            &test_name(function),
            "--nocapture",
            "--test-threads=1",
        ])
        .env(var, value)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Marks the child's messages in its stdout, which libtest shares (it prints
/// `test NAME ... ` without a newline before running the test).
const MARK: &str = "@child: ";

/// The messages the child prints after [`MARK`], read on a thread so that the parent can
/// time out.
fn child_messages(child: &mut std::process::Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some((_, message)) = line.split_once(MARK) else {
                continue;
            };
            if tx.send(message.to_owned()).is_err() {
                break;
            }
        }
    });
    rx
}

#[tokio::test]
async fn stores_exactly_the_serialized_bytes() {
    let (_dir, store) = temp_store();
    let mut item = Item::new("é😀 x", true, 1_700_000_000);
    item.meta.client_data = [("big", flipper_core::Value::from(1.5e16))]
        .into_iter()
        .collect();
    store.put(&item, PutMode::Overwrite).await.unwrap();
    assert_eq!(
        read_raw(&store.inner.db, "é😀 x").unwrap(),
        item.serialize()
    );
}

#[tokio::test]
async fn versions_grow_and_are_never_reused() {
    let (dir, store) = temp_store();
    let v1 = store.create("a", true, None).await.unwrap().version;
    let v2 = store.set("a", false).await.unwrap().version;
    store.delete("a").await.unwrap();
    let v3 = store.create("a", true, None).await.unwrap().version;
    assert_eq!(
        [v1, v2, v3.clone()],
        [1, 2, 3].map(Version::from_seq),
        "one counter for every write"
    );
    // The counter is stored: a reopened database goes on from it.
    drop(store);
    let store = RedbStore::open(dir.path().join("flipper.redb")).unwrap();
    assert_eq!(store.get("a").await.unwrap().unwrap().version, v3);
    let v4 = store.create("b", true, None).await.unwrap().version;
    assert_eq!(v4, Version::from_seq(4));
    let err = store
        .put(
            &Item::new("a", false, 1),
            PutMode::Update(Version::from_seq(1)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
}

#[tokio::test]
async fn unreadable_bytes_are_corrupt_not_fatal() {
    let (_dir, store) = temp_store();
    store.create("a", true, None).await.unwrap();
    store.create("c", true, None).await.unwrap();
    write_raw(&store, "b", b"\xff{not json");
    // Readable JSON, but the flag inside names another flag.
    write_raw(&store, "d", &Item::new("other", true, 1).serialize());

    let err = store.get("b").await.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { name, source: ItemError::Json(_), .. } if name == "b"),
        "{err}"
    );
    assert!(err.to_string().contains("redb:"), "{err}");
    let err = store.get("d").await.unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { source: ItemError::Format { path, .. }, .. }
            if path == "feature_name"),
        "{err}"
    );

    let listed = store.list(None, 0).await.unwrap();
    let summary: Vec<String> = listed
        .iter()
        .map(|e| match e {
            Ok(v) => format!("ok {}", v.item.feature_name),
            Err(c) => format!("corrupt {}", c.key),
        })
        .collect();
    assert_eq!(summary, ["ok a", "corrupt b", "ok c", "corrupt d"]);
    // Paging counts corrupt entries like the others.
    let page = store.list(Some(1), 1).await.unwrap();
    assert!(matches!(&page[..], [Err(CorruptEntry { key, .. })] if key == "b"));

    // A corrupt flag can be overwritten or deleted.
    store.create("b", false, None).await.unwrap();
    assert!(store.get("b").await.unwrap().is_some());
    assert!(store.delete("d").await.unwrap());
}

async fn next(changes: &mut ChangeStream) -> Change {
    tokio::time::timeout(Duration::from_secs(10), changes.next())
        .await
        .expect("a change within 10 s")
        .expect("stream open")
}

#[tokio::test]
async fn watchers_see_only_committed_changes() {
    let (_dir, store) = temp_store();
    let mut changes = store.watch().unwrap();
    store.create("a", true, None).await.unwrap();
    // A failed precondition and a delete of nothing commit nothing and report nothing.
    let err = store.put(&Item::new("a", false, 1), PutMode::Create).await;
    assert!(matches!(err, Err(Error::AlreadyExists { .. })));
    assert!(!store.delete("missing").await.unwrap());
    // A clone shares the database and the watchers.
    store.clone().delete("a").await.unwrap();
    let first = next(&mut changes).await;
    assert!(matches!(first, Change::Put { ref item, ref version }
        if item.feature_name == "a" && *version == Version::from_seq(1)));
    let second = next(&mut changes).await;
    assert_eq!(second, Change::Delete { name: "a".into() });
    assert!(
        tokio::time::timeout(Duration::from_millis(100), changes.next())
            .await
            .is_err()
    );
}

#[test]
fn open_reports_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("flipper.redb");
    let err = RedbStore::open(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Io { action: "cannot open", path: p, source }
            if *p == path && source.kind() == io::ErrorKind::NotFound),
        "{err}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn open_refuses_a_file_that_is_not_a_redb_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.json");
    let text = format!("[{}]\n", Item::new("a", true, 1).to_json());
    std::fs::write(&path, &text).unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidFile { path: p, .. } if *p == path),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a redb database"), "{message}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        text,
        "left untouched"
    );
}

#[test]
fn open_refuses_a_redb_database_of_another_layout() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.redb");
    {
        let db = Database::create(&foreign).unwrap();
        let txn = db.begin_write().unwrap();
        let table: TableDefinition<'_, u64, u64> = TableDefinition::new("flags");
        txn.open_table(table).unwrap().insert(1, 2).unwrap();
        txn.commit().unwrap();
    }
    let err = RedbStore::open(&foreign).unwrap_err();
    assert!(matches!(err, Error::InvalidFile { .. }), "{err}");
    assert!(err.to_string().contains("not a flipper database"), "{err}");

    let newer = dir.path().join("newer.redb");
    drop(RedbStore::open(&newer).unwrap());
    {
        let db = Database::create(&newer).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(SCHEMA_KEY, SCHEMA + 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = RedbStore::open(&newer).unwrap_err();
    assert!(err.to_string().contains("newer flipper"), "{err}");
}

/// Two stores on one file in one process: the second open fails clearly; clones share.
#[tokio::test]
async fn a_second_open_in_this_process_fails_clearly() {
    let (dir, store) = temp_store();
    let path = dir.path().join("flipper.redb");
    store.create("a", true, None).await.unwrap();
    let err = RedbStore::open(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Io { action: "cannot lock", path: p, source }
            if *p == path && source.kind() == io::ErrorKind::WouldBlock),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("open in another process"), "{message}");

    // The first store is unaffected, and a clone shares it.
    let clone = store.clone();
    clone.set("a", false).await.unwrap();
    assert!(!store.get("a").await.unwrap().unwrap().item.switched_on());

    // Once every clone is gone, the file opens again, with its flags.
    drop((store, clone));
    let store = RedbStore::open(&path).unwrap();
    assert!(store.get("a").await.unwrap().is_some());
}

const HOLD_VAR: &str = "FLIPPER_REDB_TEST_HOLD";

/// Another process holding the file open locks it; its death releases the lock.
#[test]
fn a_file_open_in_another_process_is_refused() {
    if let Some(path) = std::env::var_os(HOLD_VAR) {
        // The child: open, say so, hold the file until stdin closes.
        let _store = RedbStore::open(PathBuf::from(path)).unwrap();
        println!("{MARK}open");
        let _ = io::stdin().lines().count();
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flipper.redb");
    let mut child = spawn_child("a_file_open_in_another_process_is_refused", HOLD_VAR, &path);
    let lines = child_messages(&mut child);
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the child opens the database");
        if line == "open" {
            break;
        }
    }
    let err = RedbStore::open(&path).unwrap_err();
    assert!(
        matches!(&err, Error::Io { action: "cannot lock", source, .. }
            if source.kind() == io::ErrorKind::WouldBlock),
        "{err}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    RedbStore::open(&path).expect("the lock died with the child");
}

const CRASH_VAR: &str = "FLIPPER_REDB_TEST_CRASH";
/// How many acknowledged writes the parent waits for before killing the writer.
const ACKED_BEFORE_KILL: usize = 200;

fn crash_item(i: u64) -> Item {
    let mut item = Item::new(
        format!("f{i}"),
        i.is_multiple_of(2),
        1_700_000_000 + i as i64,
    );
    item.meta.client_data = [
        ("i", flipper_core::Value::from(i as i64)),
        (
            "pad",
            flipper_core::Value::from("é".repeat(64 + (i % 200) as usize)),
        ),
    ]
    .into_iter()
    .collect();
    item
}

/// Acknowledged writes survive SIGKILL of the writer at an arbitrary point.
#[test]
fn acknowledged_writes_survive_sigkill() {
    if let Some(path) = std::env::var_os(CRASH_VAR) {
        // The child: write f0, f1, ... and acknowledge each after `put` returned Ok, until
        // killed (or, should the parent vanish, a bound or a closed stdout stops it).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let store = RedbStore::open(PathBuf::from(path)).unwrap();
            let mut out = io::stdout();
            for i in 0..100_000 {
                store.put(&crash_item(i), PutMode::Overwrite).await.unwrap();
                if writeln!(out, "{MARK}ack f{i}")
                    .and_then(|()| out.flush())
                    .is_err()
                {
                    return;
                }
            }
        });
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flipper.redb");
    let mut child = spawn_child("acknowledged_writes_survive_sigkill", CRASH_VAR, &path);
    let lines = child_messages(&mut child);
    let mut acked = Vec::new();
    while acked.len() < ACKED_BEFORE_KILL {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .expect("the child acknowledges writes");
        if let Some(name) = line.strip_prefix("ack ") {
            acked.push(name.to_owned());
        }
    }
    // A random pause lands the kill at a different point of a write each run.
    std::thread::sleep(Duration::from_micros(fastrand::u64(0..3_000)));
    child.kill().unwrap(); // SIGKILL: no destructor, no flush, no unlock but the kernel's.
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished: {status}");
    // Acknowledgements that were in the pipe when the child died count too.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(5)) {
        if let Some(name) = line.strip_prefix("ack ") {
            acked.push(name.to_owned());
        }
    }

    let store = RedbStore::open(&path).expect("the database reopens after a crash");
    for (i, name) in acked.iter().enumerate() {
        assert_eq!(*name, format!("f{i}"));
        let expected = String::from_utf8(crash_item(i as u64).serialize()).unwrap();
        let raw = read_raw(&store.inner.db, name).map(|b| String::from_utf8_lossy(&b).into_owned());
        assert_eq!(raw, Some(expected), "{name} lost or damaged");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let stored = runtime.block_on(async {
        let listed = store.list(None, 0).await.unwrap();
        assert!(listed.iter().all(Result::is_ok), "no corrupt entries");
        // At most the write in flight when the child died is there unacknowledged.
        assert!(
            (acked.len()..=acked.len() + 1).contains(&listed.len()),
            "{} acked, {} stored",
            acked.len(),
            listed.len()
        );
        let last = format!("f{}", acked.len() - 1);
        assert_eq!(
            store.get(&last).await.unwrap().unwrap().item.serialize(),
            crash_item(acked.len() as u64 - 1).serialize()
        );
        listed.len()
    });
    eprintln!(
        "crash test: {} writes acknowledged before SIGKILL, all present; {stored} stored",
        acked.len()
    );
}
