//! Evaluating a flag already in memory: the three shapes of `benches/flags.json`, which
//! `scripts/bench-python` also runs through the real Python flipper-client.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use flipper_core::bucketing::OneKeyHasher;
use flipper_core::eval::FixedEnv;
use flipper_core::{Checks, Item, Value, json};

fn cases() -> Vec<(String, Item, Checks)> {
    let text = include_str!("flags.json");
    let Value::List(cases) = json::parse(text).expect("flags.json parses") else {
        panic!("flags.json is a list");
    };
    cases
        .iter()
        .map(|case| {
            let case = case.as_object().expect("case object");
            let name = case["name"].as_str().expect("name").to_owned();
            let item = Item::from_value(&case["item"]).expect("item");
            let checks = Checks::from(case["checks"].as_object().expect("checks").clone());
            (name, item, checks)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let env = FixedEnv {
        now: 1_700_000_000.0,
        random: 0.5,
    };
    let mut group = c.benchmark_group("evaluate");
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for (name, item, checks) in cases() {
        let e = item.evaluate(&checks, &env);
        assert!(e.error_detail().is_none(), "{name}: {:?}", e.reason);
        group.bench_function(&name, |b| {
            b.iter(|| black_box(&item).is_enabled(black_box(&checks), &env));
        });
    }
    // The floor under the two-conditions case: the same two checks against the same two
    // stored values, matched by the simplest loop that can express them (no Python semantics,
    // no errors): what a flag with conditions costs on this machine at the very least.
    let stored: [(&str, Value); 2] = [("is_admin", Value::Bool(true)), ("age", Value::from(18))];
    let runtime: [(&str, Value); 2] = [("is_admin", Value::Bool(true)), ("age", Value::from(30))];
    group.bench_function("two_conditions_floor", |b| {
        b.iter(|| {
            let (stored, runtime) = (black_box(&stored), black_box(&runtime));
            stored.iter().enumerate().all(|(i, (var, want))| {
                runtime.iter().all(|(name, got)| {
                    name != var
                        || match (got, want) {
                            (Value::Bool(a), Value::Bool(b)) => a == b,
                            (Value::Int(a), Value::Int(b)) if i == 1 => a >= b,
                            _ => false,
                        }
                })
            })
        });
    });
    // The floor under the consistent-hash case: one SHA-1 compression of one block.
    let block = sha1::digest::generic_array::GenericArray::from([0u8; 64]);
    group.bench_function("sha1_block_floor", |b| {
        b.iter(|| {
            let mut state = [
                0x6745_2301,
                0xEFCD_AB89,
                0x98BA_DCFE,
                0x1032_5476,
                0xC3D2_E1F0,
            ];
            sha1::compress(&mut state, std::slice::from_ref(black_box(&block)));
            state
        });
    });
    // The prepared one-name consistent hash live flags use, over 1,024 ids rotated one per
    // call (strings `user-N`, then integers): compare with `sha1_block_floor`.
    let strings: Vec<Checks> = (0..1024)
        .map(|i| Checks::new().with("user_id", format!("user-{i}")))
        .collect();
    let ints: Vec<Checks> = (0..1024_i64)
        .map(|i| Checks::new().with("user_id", i * 7919))
        .collect();
    let hasher = OneKeyHasher::new("user_id").expect("a plain name");
    for (name, contexts) in [
        ("one_key_hash_strings", &strings),
        ("one_key_hash_ints", &ints),
    ] {
        group.bench_function(name, |b| {
            let (hasher, contexts) = (black_box(&hasher), black_box(contexts));
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % contexts.len();
                hasher.bucket(&contexts[i])
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
