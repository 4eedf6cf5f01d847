//! The real flipper-client 1.3.2 (PyPI, with its generated `flipper_thrift` code and the
//! `thrift` package) against this crate's Thrift server, through `tests/python/thrift_client.py`:
//! a scripted session of every store method (create, get, set, set_meta with conditions and a
//! bucketer, list, delete, a missing flag) checked against the server's store; and flags
//! changed by Python seen by a Rust `ThriftStore` and by live flags over it, evaluating as
//! Python evaluates them. Also what Python clients see of grouped conditions.
//!
//! Without python3 and flipper-client the tests skip with a loud message, unless
//! `FLIPPER_TEST_REQUIRE_SERVICES=1`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{MemoryStore, PutMode, Store, ThriftServer, ThriftServerOptions, ThriftStore};
use flipper::{Bucketer, Checks, Condition, Item, Percentage, Reason, Value};
use serde_json::json;

/// The Python client (`tests/python/thrift_client.py`), one command at a time.
struct Python(flipper_testkit::PythonProcess);

impl Python {
    fn start(addr: SocketAddr, framing: &str) -> Option<Self> {
        let script = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/thrift_client.py"
        ));
        let (ip, port) = (addr.ip().to_string(), addr.port().to_string());
        flipper_testkit::PythonProcess::start(
            script,
            &[&ip, &port, framing],
            &["flipper.contrib.thrift", "flipper_thrift", "thrift"],
        )
        .map(Self)
    }

    /// The answer to `cmd`: `Ok(value)` or `Err("ExceptionClass: message")`.
    fn run(&mut self, cmd: serde_json::Value) -> Result<serde_json::Value, String> {
        // Python's calls reach the server, which needs this runtime: block off its workers.
        let answer = tokio::task::block_in_place(|| self.0.call(&cmd));
        match (answer.get("ok"), answer.get("error")) {
            (Some(v), _) => Ok(v.clone()),
            (_, Some(e)) => Err(e.as_str().unwrap_or_default().to_owned()),
            _ => panic!("python answered {answer}"),
        }
    }

    fn ok(&mut self, cmd: serde_json::Value) -> serde_json::Value {
        self.run(cmd.clone())
            .unwrap_or_else(|e| panic!("python failed {cmd}: {e}"))
    }
}

async fn server(backing: Arc<dyn Store>) -> ThriftServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    ThriftServer::start(listener, backing, ThriftServerOptions::default()).unwrap()
}

/// The stored form of a flag, as JSON.
fn stored(item: &Item) -> serde_json::Value {
    serde_json::from_str(&item.to_json()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipper_clients_thrift_store_drives_the_rust_server() {
    let backing = Arc::new(MemoryStore::new());
    let server = server(backing.clone()).await;
    let Some(mut py) = Python::start(server.local_addr(), "buffered") else {
        return;
    };
    let get = async |name: &str| backing.get(name).await.unwrap().map(|v| v.item);

    // A missing flag.
    assert_eq!(py.ok(json!({"op": "get", "name": "py"})), json!(null));

    // create
    let created = py.ok(json!({"op": "create", "name": "py", "is_enabled": true, "client_data": {"owner": "py", "n": 1}}));
    let item = get("py").await.expect("created");
    assert_eq!(created, stored(&item));
    assert_eq!(
        created["meta"]["client_data"],
        json!({"owner": "py", "n": 1})
    );
    let now = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let created_date = item.meta.created_date.as_i64().unwrap();
    assert!((now - created_date).abs() < 60, "{created_date}");
    assert_eq!(py.ok(json!({"op": "get", "name": "py"})), created);

    // set: switches, and creates a missing flag.
    py.ok(json!({"op": "set", "name": "py", "is_enabled": false}));
    assert!(!get("py").await.unwrap().switched_on());
    py.ok(json!({"op": "set", "name": "new", "is_enabled": true}));
    assert!(get("new").await.unwrap().switched_on());

    // set_meta with conditions and a bucketer: Python sends each condition grouped.
    let meta = json!({
        "client_data": {"k": "é", "ratio": 0.1, "nested": {"b": [1, null]}},
        "created_date": 1_700_000_000,
        "conditions": [
            {"is_admin": [{"variable": "is_admin", "value": true, "operator": null}],
             "plan": [{"variable": "plan", "value": ["pro", "enterprise"], "operator": "in"}]},
            {"age": [{"variable": "age", "value": 18, "operator": "gte"},
                     {"variable": "age", "value": 65, "operator": "lt"}]}
        ],
        "bucketer": {"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.5}, "key_whitelist": ["user_id"]}
    });
    py.ok(json!({"op": "set_meta", "name": "py", "meta": meta}));
    let item = get("py").await.unwrap();
    let mut want = Item::new("py", false, 1_700_000_000);
    want.meta.client_data = flipper_core::json::parse(&meta["client_data"].to_string()).unwrap();
    want.meta.conditions = vec![
        Condition::new()
            .eq("is_admin", true)
            .is_in("plan", vec!["pro", "enterprise"]),
        Condition::new().gte("age", 18).lt("age", 65),
    ];
    want.meta.bucketer = Bucketer::consistent_hash(Percentage::fixed(0.5), ["user_id"]);
    assert_eq!(
        item.serialize(),
        want.serialize(),
        "stored grouped, byte for byte"
    );
    // Python reads every check back as a condition of its own.
    let back = py.ok(json!({"op": "get", "name": "py"}));
    assert_eq!(
        back["meta"]["conditions"],
        json!([
            {"is_admin": [{"variable": "is_admin", "value": true, "operator": null}]},
            {"plan": [{"variable": "plan", "value": ["pro", "enterprise"], "operator": "in"}]},
            {"age": [{"variable": "age", "value": 18, "operator": "gte"}]},
            {"age": [{"variable": "age", "value": 65, "operator": "lt"}]}
        ])
    );
    assert_eq!(back["meta"]["bucketer"], meta["bucketer"]);
    assert_eq!(back["meta"]["created_date"], json!(1_700_000_000));

    // set_meta of a missing flag: flipper-client's FlagDoesNotExistError (from NOT_FOUND).
    let err = py
        .run(json!({"op": "set_meta", "name": "missing", "meta": meta}))
        .unwrap_err();
    assert_eq!(err, "FlagDoesNotExistError: Feature missing does not exist");
    assert!(get("missing").await.is_none());

    // list: name order, offset then limit, no limit by default.
    let names = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| i["feature_name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(py.ok(json!({"op": "list"}))), ["new", "py"]);
    assert_eq!(
        names(py.ok(json!({"op": "list", "limit": 1, "offset": 1}))),
        ["py"]
    );
    assert_eq!(
        names(py.ok(json!({"op": "list", "offset": 5}))),
        Vec::<String>::new()
    );

    // delete, and delete of a missing flag.
    py.ok(json!({"op": "delete", "name": "new"}));
    assert!(get("new").await.is_none());
    py.ok(json!({"op": "delete", "name": "new"}));
    assert_eq!(py.ok(json!({"op": "get", "name": "new"})), json!(null));

    // The client's read-modify-write (add_condition: get, then set_meta) writes the split
    // conditions back: after it, the grouping is gone for everyone.
    py.ok(json!({"op": "add_condition", "name": "py", "checks": {"country__in": ["fr", "de"]}}));
    let item = get("py").await.unwrap();
    assert_eq!(item.meta.conditions.len(), 5);
    assert!(item.meta.conditions.iter().all(|c| c.len() == 1));

    // A Python client on a framed connection to the same port.
    let Some(mut framed) = Python::start(server.local_addr(), "framed") else {
        return;
    };
    assert_eq!(
        framed.ok(json!({"op": "get", "name": "py"}))["feature_name"],
        "py"
    );
    framed.ok(json!({"op": "create", "name": "framed"}));
    assert!(get("framed").await.is_some());
    drop((py, framed));
    assert!(server.shutdown(Duration::from_secs(10)).await);
}

/// Contexts to evaluate a flag with, in Python and in Rust.
fn contexts() -> Vec<serde_json::Value> {
    let mut all = vec![json!({})];
    for age in [12, 18, 30, 70] {
        for admin in [true, false] {
            for plan in ["pro", "free"] {
                all.push(json!({"age": age, "is_admin": admin, "plan": plan}));
            }
        }
    }
    for user in 0..40 {
        all.push(json!({"user_id": user}));
        all.push(json!({"user_id": format!("u{user}"), "age": 40}));
    }
    all.push(json!({"age": "not a number"}));
    all
}

fn checks(context: &serde_json::Value) -> Checks {
    let Value::Object(object) = flipper_core::json::parse(&context.to_string()).unwrap() else {
        panic!("{context}");
    };
    object
        .into_iter()
        .fold(Checks::new(), |checks, (k, v)| checks.with(k, v))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_changed_by_python_reach_rust_and_evaluate_identically() {
    let backing: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let server = server(backing).await;
    let url = format!("thrift://{}?poll_interval=100ms", server.local_addr());
    let store = ThriftStore::from_url(&url).unwrap();
    let live = LiveFlags::start(Arc::new(store.clone()), LiveOptions::default()).await;
    let Some(mut py) = Python::start(server.local_addr(), "buffered") else {
        return;
    };
    let flag = "rollout";
    let mut steps: Vec<serde_json::Value> = vec![
        json!({"op": "create", "name": flag, "is_enabled": true, "client_data": {"team": "py"}}),
        json!({"op": "add_condition", "name": flag, "checks": {"age__gte": 18, "is_admin": true}}),
        json!({"op": "set_bucketer", "name": flag, "bucketer": {"type": "ConsistentHashPercentageBucketer", "percentage": {"type": "Percentage", "value": 0.3}, "key_whitelist": ["user_id"]}}),
        json!({"op": "add_condition", "name": flag, "checks": {"plan__in": ["pro"]}}),
        json!({"op": "set", "name": flag, "is_enabled": false}),
    ];
    // A flag with a grouped condition written by Rust, evaluated by both.
    let mut grouped = Item::new("grouped", true, 1);
    grouped.meta.conditions = vec![Condition::new().gte("age", 18).eq("is_admin", false)];
    store.put(&grouped, PutMode::Overwrite).await.unwrap();
    steps.insert(0, json!({"op": "get", "name": "grouped"}));
    let contexts = contexts();
    for step in steps {
        py.ok(step.clone());
        for name in [flag, "grouped"] {
            // Rust sees what Python wrote: the store at once, the live flags by polling.
            let Some(current) = store.get(name).await.unwrap() else {
                continue;
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while live.get(name).map(|i| (*i).clone()) != Some(current.item.clone()) {
                assert!(
                    Instant::now() < deadline,
                    "live flags never saw {name} after {step}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let python = py.ok(json!({"op": "is_enabled", "name": name, "contexts": contexts}));
            let rust: Vec<serde_json::Value> = contexts
                .iter()
                .map(|c| {
                    let answer = live.evaluate(name, &checks(c), false);
                    match answer.reason {
                        Reason::Error(e) => json!(format!("raises {}", e.kind.as_str())),
                        _ => json!(answer.enabled),
                    }
                })
                .collect();
            assert_eq!(python, json!(rust), "{name} after {step}");
        }
    }
    drop(py);
    drop(live);
    assert!(server.shutdown(Duration::from_secs(10)).await);
}
