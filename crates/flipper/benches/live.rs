//! Evaluation from live flags beside Unleash's engine (`unleash-yggdrasil` 0.21.7) on the same
//! logical flags, over 1,024 distinct contexts rotated one per call; `scripts/bench-live` runs
//! this and the real Python flipper-client on the same flags and prints the table.
//!
//! The flags are `benches/live_flags.json` (flipper-client's stored form); each is translated
//! to an Unleash feature here. Shapes, `flipper` / `yggdrasil`:
//!
//! * `static`: a flag switched on with no rule / a feature enabled with no strategy.
//! * `conditions_hash`: the two-conditions flag (`plan__in` pro, enterprise; `age__gte` 18)
//!   **and** the 50% consistent-hash flag on `user_id`, both evaluated per call (flipper-client
//!   skips a flag's bucketer when checks are given and the flag has conditions, so "conditions
//!   and a percentage" is two flags there: two lookups, two conditions, one SHA-1) / one
//!   feature with one constraint (`email` STR_ENDS_WITH `@example.com`) and a 50%
//!   flexibleRollout on `userId` (`conditions_hash-yggdrasil`), and with the same two
//!   constraints as flipper's (`plan` IN, `age` NUM_GTE) instead
//!   (`conditions_hash-yggdrasil_same_rules`). Every context passes the rules, so the hash
//!   always runs.
//! * `two_conditions`, `rollout`: the two halves of `conditions_hash`, alone.
//! * `rollout-flipper_fixed_clock`, `conditions_hash-flipper_fixed_clock`: analysis, not a
//!   shape: the same with a fixed clock (`LiveOptions::env`). A fixed percentage reads no
//!   clock (only a linear ramp does), so each should equal its case within the noise.
//! * `all_flags`: every one of 100 flags (60 on, 10 off, 15 two conditions, 15 consistent hash)
//!   for one context: `snapshot().evaluate_all` / `resolve_all` (Unleash's all-flags call,
//!   which builds a map); `_each` variants call `is_enabled` once per name instead.
//!
//! Inputs (names, the contexts) go through `black_box` once, outside the timed loop; the
//! answer of each call is returned to criterion (which `black_box`es it). With
//! `LIVE_BENCH_ANSWERS=PATH`, the number of contexts each shape answers `true` for is written
//! to PATH as JSON (the script compares flipper's with Python's).

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flipper::live::{LiveFlags, LiveOptions};
use flipper::store::{MemoryStore, Store};
use flipper::{Checks, Item};
use flipper_core::eval::FixedEnv;
use serde_json::{Value as Json, json};
use unleash_yggdrasil::{ClientFeatures, Context, EngineState};

const CONTEXTS: usize = 1024;

/// The fixture: (single flags, the 100 flags of `all_flags`), as JSON objects.
fn fixture() -> (Vec<Json>, Vec<Json>) {
    let text = include_str!("live_flags.json");
    let mut fixture: Json = serde_json::from_str(text).expect("live_flags.json parses");
    let mut list = |key: &str| match fixture[key].take() {
        Json::Array(items) => items,
        _ => panic!("live_flags.json: {key} is a list"),
    };
    (list("single"), list("all"))
}

/// Context `i`, as documented in `live_flags.json`.
fn attributes(i: usize) -> (String, String, &'static str, i64) {
    let plan = ["pro", "enterprise"][i % 2];
    (
        format!("user-{i}"),
        format!("user-{i}@example.com"),
        plan,
        18 + (i % 50) as i64,
    )
}

fn flipper_contexts() -> Vec<Checks> {
    (0..CONTEXTS)
        .map(|i| {
            let (user, email, plan, age) = attributes(i);
            Checks::new()
                .with("user_id", user)
                .with("email", email)
                .with("plan", plan)
                .with("age", age)
        })
        .collect()
}

fn unleash_contexts() -> Vec<Context> {
    (0..CONTEXTS)
        .map(|i| {
            let (user, email, plan, age) = attributes(i);
            serde_json::from_value(json!({
                "userId": user,
                "properties": {"email": email, "plan": plan, "age": age.to_string()},
            }))
            .expect("an Unleash context")
        })
        .collect()
}

/// Live flags over a memory store holding `items` (on a current-thread runtime, so that no
/// background thread runs while timing).
fn live(runtime: &tokio::runtime::Runtime, items: &[Json], options: LiveOptions) -> LiveFlags {
    let items: Vec<Item> = items
        .iter()
        .map(|i| Item::deserialize(i.to_string().as_bytes()).expect("a stored flag"))
        .collect();
    runtime.block_on(async {
        let store = Arc::new(MemoryStore::new());
        store.put_many(&items).await.expect("put");
        let live = LiveFlags::start(store, options).await;
        assert!(live.is_initialized());
        live
    })
}

/// The Unleash constraints for a flipper flag's conditions (the two shapes the fixture uses).
fn unleash_constraints(item: &Json) -> Vec<Json> {
    let mut out = Vec::new();
    for condition in item["meta"]["conditions"].as_array().expect("conditions") {
        for checks in condition.as_object().expect("a condition").values() {
            for check in checks.as_array().expect("checks") {
                let variable = check["variable"].as_str().expect("variable");
                out.push(match check["operator"].as_str() {
                    Some("in") => json!({
                        "contextName": variable, "operator": "IN", "inverted": false,
                        "caseInsensitive": false,
                        "values": check["value"].as_array().expect("a list").iter()
                            .map(|v| v.as_str().expect("a string")).collect::<Vec<_>>(),
                    }),
                    Some("gte") => json!({
                        "contextName": variable, "operator": "NUM_GTE", "inverted": false,
                        "caseInsensitive": false, "value": check["value"].to_string(),
                    }),
                    other => panic!("no Unleash translation for operator {other:?}"),
                });
            }
        }
    }
    out
}

/// The Unleash feature for a flipper flag: off; on with no strategy; conditions as
/// constraints of a default strategy; a 50% consistent hash on `user_id` as a flexibleRollout
/// on `userId` (with the constraints, if any).
fn unleash_feature(item: &Json) -> Json {
    let name = item["feature_name"].as_str().expect("name");
    let on = item["is_enabled"] == json!(true);
    let constraints = unleash_constraints(item);
    let bucketer = &item["meta"]["bucketer"];
    let strategies = match bucketer["type"].as_str() {
        Some("NoOpBucketer") if constraints.is_empty() => json!([]),
        Some("NoOpBucketer") => {
            json!([{"name": "default", "parameters": {}, "constraints": constraints}])
        }
        Some("ConsistentHashPercentageBucketer") => {
            assert_eq!(bucketer["key_whitelist"], json!(["user_id"]));
            let percent = bucketer["percentage"]["value"]
                .as_f64()
                .expect("a fixed share")
                * 100.0;
            json!([{
                "name": "flexibleRollout",
                "parameters": {"rollout": format!("{percent}"), "stickiness": "userId", "groupId": name},
                "constraints": constraints,
            }])
        }
        other => panic!("no Unleash translation for bucketer {other:?}"),
    };
    json!({"name": name, "type": "release", "enabled": on, "project": "default",
           "strategies": strategies})
}

fn engine(features: Vec<Json>) -> EngineState {
    let state: ClientFeatures = serde_json::from_value(json!({"version": 2, "features": features}))
        .expect("Unleash features");
    let engine = EngineState::default();
    let warnings = engine.apply_client_features(state);
    assert!(warnings.is_none(), "yggdrasil warnings: {warnings:?}");
    engine
}

/// The peers' shape (peers.md §2.2): one constraint, `email` ends with `@example.com`, and a
/// 50% rollout on the user.
fn peer_feature(name: &str) -> Json {
    json!({"name": name, "type": "release", "enabled": true, "project": "default", "strategies": [{
        "name": "flexibleRollout",
        "parameters": {"rollout": "50", "stickiness": "userId", "groupId": name},
        "constraints": [{"contextName": "email", "operator": "STR_ENDS_WITH", "inverted": false,
                         "caseInsensitive": false, "values": ["@example.com"]}],
    }]})
}

/// Runs `f` on each context in turn, one per call.
macro_rules! rotate {
    ($b:expr, $contexts:expr, |$c:ident| $body:expr) => {{
        let contexts = black_box($contexts);
        let mut i = 0usize;
        $b.iter(|| {
            let $c = &contexts[i];
            i = (i + 1) % CONTEXTS;
            $body
        })
    }};
}

fn count<C>(contexts: &[C], f: impl Fn(&C) -> usize) -> usize {
    contexts.iter().map(f).sum()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let (single, all) = fixture();
    let singles = live(&runtime, &single, LiveOptions::default());
    let everything = live(&runtime, &all, LiveOptions::default());
    let fixed_clock = LiveOptions::default().env(FixedEnv {
        now: 1_700_000_000.0,
        random: 0.5,
    });
    let singles_fixed_clock = live(&runtime, &single, fixed_clock);

    let mut features: Vec<Json> = single.iter().map(unleash_feature).collect();
    features.push(peer_feature("constraint_rollout"));
    // The same two rules as flipper's, on one feature with the rollout.
    let mut same_rules = unleash_feature(&single[2]);
    same_rules["name"] = json!("same_rules_rollout");
    same_rules["strategies"][0]["parameters"]["groupId"] = json!("same_rules_rollout");
    same_rules["strategies"][0]["constraints"] = json!(unleash_constraints(&single[1]));
    features.push(same_rules);
    let ygg = engine(features);
    let ygg_all = engine(all.iter().map(unleash_feature).collect());
    let all_names: Vec<String> = all
        .iter()
        .map(|i| i["feature_name"].as_str().expect("name").to_owned())
        .collect();

    let ours = flipper_contexts();
    let theirs = unleash_contexts();
    let none = None;

    // How many contexts each shape answers `true` for: the same logical flags must agree
    // in shape (flipper's must equal Python's; Unleash hashes differently).
    let on = |name: &str| count(&ours, |c| usize::from(singles.is_enabled(name, c)));
    let ygg_on = |name: &str| count(&theirs, |c| usize::from(ygg.is_enabled(name, c, &none)));
    let answers = json!({
        "static": {"flipper": on("static"), "yggdrasil": ygg_on("static")},
        "two_conditions": {"flipper": on("two_conditions")},
        "rollout": {"flipper": on("rollout_half"), "yggdrasil": ygg_on("rollout_half")},
        "conditions_hash": {
            "flipper": count(&ours, |c| usize::from(
                singles.is_enabled("two_conditions", c) & singles.is_enabled("rollout_half", c))),
            "yggdrasil": ygg_on("constraint_rollout"),
            "yggdrasil_same_rules": ygg_on("same_rules_rollout"),
        },
        "all_flags": {
            "flipper": count(&ours, |c| everything.snapshot().evaluate_all(c)
                .filter(|(_, e)| e.enabled).count()),
            "yggdrasil": count(&theirs, |c| ygg_all.resolve_all(c, &none)
                .expect("resolved").values().filter(|t| t.enabled).count()),
        },
    });
    assert!(
        answers["all_flags"]["flipper"]
            == count(&ours, |c| all_names
                .iter()
                .filter(|n| everything.is_enabled(n, c))
                .count()),
        "evaluate_all and is_enabled agree"
    );
    if let Ok(path) = std::env::var("LIVE_BENCH_ANSWERS") {
        std::fs::write(&path, answers.to_string()).expect("answers written");
    }

    let mut group = c.benchmark_group("live");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));

    let (static_flag, conditions, rollout) =
        black_box(("static", "two_conditions", "rollout_half"));
    let (peer, same) = black_box(("constraint_rollout", "same_rules_rollout"));
    // Flag handles (`LiveFlags::flag`), as a service keeps for the flags it checks on every
    // request; they answer as the calls by name do.
    let (static_handle, conditions_handle, rollout_handle) = (
        singles.flag(static_flag),
        singles.flag(conditions),
        singles.flag(rollout),
    );
    for (handle, name) in [
        (&static_handle, static_flag),
        (&conditions_handle, conditions),
        (&rollout_handle, rollout),
    ] {
        assert!(
            count(&ours, |c| usize::from(handle.is_enabled(c)))
                == count(&ours, |c| usize::from(singles.is_enabled(name, c))),
            "the handle of {name} answers as its name does"
        );
    }

    group.bench_function("static-flipper", |b| {
        rotate!(b, &ours, |c| singles.is_enabled(static_flag, c))
    });
    group.bench_function("static-flipper_handle", |b| {
        rotate!(b, &ours, |c| static_handle.is_enabled(c))
    });
    group.bench_function("static-yggdrasil", |b| {
        rotate!(b, &theirs, |c| ygg.is_enabled(static_flag, c, &none))
    });

    // Each fixed-clock variant runs right after the case it explains, so that both see the
    // same machine load.
    group.bench_function("conditions_hash-flipper", |b| {
        rotate!(b, &ours, |c| singles.is_enabled(conditions, c)
            & singles.is_enabled(rollout, c))
    });
    group.bench_function("conditions_hash-flipper_handle", |b| {
        rotate!(b, &ours, |c| conditions_handle.is_enabled(c)
            & rollout_handle.is_enabled(c))
    });
    group.bench_function("conditions_hash-flipper_fixed_clock", |b| {
        rotate!(b, &ours, |c| singles_fixed_clock.is_enabled(conditions, c)
            & singles_fixed_clock.is_enabled(rollout, c))
    });
    group.bench_function("conditions_hash-yggdrasil", |b| {
        rotate!(b, &theirs, |c| ygg.is_enabled(peer, c, &none))
    });
    group.bench_function("conditions_hash-yggdrasil_same_rules", |b| {
        rotate!(b, &theirs, |c| ygg.is_enabled(same, c, &none))
    });
    group.bench_function("two_conditions-flipper", |b| {
        rotate!(b, &ours, |c| singles.is_enabled(conditions, c))
    });
    group.bench_function("rollout-flipper", |b| {
        rotate!(b, &ours, |c| singles.is_enabled(rollout, c))
    });
    group.bench_function("rollout-flipper_fixed_clock", |b| {
        rotate!(b, &ours, |c| singles_fixed_clock.is_enabled(rollout, c))
    });
    group.bench_function("rollout-yggdrasil", |b| {
        rotate!(b, &theirs, |c| ygg.is_enabled(rollout, c, &none))
    });

    let names = black_box(&all_names);
    group.bench_function("all_flags-flipper", |b| {
        rotate!(b, &ours, |c| everything
            .snapshot()
            .evaluate_all(c)
            .filter(|(_, e)| e.enabled)
            .count())
    });
    group.bench_function("all_flags-flipper_each", |b| {
        rotate!(b, &ours, |c| names
            .iter()
            .filter(|n| everything.is_enabled(n, c))
            .count())
    });
    group.bench_function("all_flags-yggdrasil", |b| {
        rotate!(b, &theirs, |c| ygg_all.resolve_all(c, &none).map(
            |m: HashMap<_, _>| m.values().filter(|t| t.enabled).count()
        ))
    });
    group.bench_function("all_flags-yggdrasil_each", |b| {
        rotate!(b, &theirs, |c| names
            .iter()
            .filter(|n| ygg_all.is_enabled(n, c, &none))
            .count())
    });
    group.finish();
    drop(runtime);
}

criterion_group!(benches, bench);
criterion_main!(benches);
