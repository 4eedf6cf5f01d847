//! `flipper_evaluations_total` and `flipper_evaluations_flag_missing_total`: counts per flag,
//! kept in atomics and encoded at scrape time.
//!
//! A flag's name becomes a label only when an existing flag is evaluated, and its series are
//! dropped once the flag is gone, so the series are bounded by the flags in the store (the
//! names callers ask for are not: a missing flag is counted without its name).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock};

use flipper::Evaluation;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use flipper::live::FlagSet;

/// Which evaluation API answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `POST /api/v1/evaluate`.
    Evaluate,
    /// `/ofrep/v1/evaluate/flags[/{key}]`.
    Ofrep,
}

const APIS: [(Api, &str); 2] = [(Api::Evaluate, "evaluate"), (Api::Ofrep, "ofrep")];

impl Api {
    fn index(self) -> usize {
        match self {
            Self::Evaluate => 0,
            Self::Ofrep => 1,
        }
    }
}

/// flipper's reason codes ([`flipper::Reason::code`]), in slot order.
const REASONS: [&str; 9] = [
    "enabled",
    "disabled",
    "conditions_matched",
    "conditions_failed",
    "bucketed_in",
    "bucketed_out",
    "error",
    "flag_missing",
    "not_initialized",
];

/// Slots per API: one per reason and answer.
const SLOTS: usize = REASONS.len() * 2;

/// One flag's counts: `[api][reason * 2 + enabled]`.
type FlagCounts = [[AtomicU64; SLOTS]; APIS.len()];

/// How many flags beyond the current ones may keep series until the next cleanup.
const SLACK: usize = 64;

/// The counts of every evaluated flag.
#[derive(Default)]
pub(super) struct Evaluations {
    by_flag: RwLock<HashMap<Box<str>, FlagCounts>>,
    missing: [AtomicU64; APIS.len()],
}

impl fmt::Debug for Evaluations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flags = self
            .by_flag
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Evaluations")
            .field("flags", &flags)
            .finish_non_exhaustive()
    }
}

fn slot(e: &Evaluation) -> Option<usize> {
    let code = e.reason.code();
    let reason = REASONS.iter().position(|r| *r == code)?;
    Some(reason * 2 + usize::from(e.enabled))
}

impl Evaluations {
    /// Counts `e`, the evaluation of `name`: a flag of `flags`, unless the reason is
    /// [`flipper::Reason::FlagMissing`].
    pub(super) fn record(&self, api: Api, flags: &FlagSet, name: &str, e: &Evaluation) {
        if matches!(e.reason, flipper::Reason::FlagMissing) {
            self.record_missing(api);
            return;
        }
        let Some(slot) = slot(e) else {
            return;
        };
        let bump = |counts: &FlagCounts| counts[api.index()][slot].fetch_add(1, Ordering::Relaxed);
        {
            let map = self.by_flag.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(counts) = map.get(name) {
                bump(counts);
                return;
            }
        }
        let mut map = self.by_flag.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= flags.len() + SLACK {
            map.retain(|name, _| flags.get(name).is_some());
        }
        bump(map.entry(name.into()).or_default());
    }

    /// Counts an evaluation of a flag that does not exist.
    pub(super) fn record_missing(&self, api: Api) {
        self.missing[api.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Drops the series of flags that no longer exist.
    pub(super) fn forget_deleted(&self, flags: &FlagSet) {
        let mut map = self.by_flag.write().unwrap_or_else(PoisonError::into_inner);
        map.retain(|name, _| flags.get(name).is_some());
    }
}

impl Collector for Evaluations {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        {
            let mut metric = encoder.encode_descriptor(
                "evaluations",
                "Evaluations of existing flags by API, flag, answer and flipper reason code.",
                None,
                MetricType::Counter,
            )?;
            let map = self.by_flag.read().unwrap_or_else(PoisonError::into_inner);
            let mut names: Vec<&str> = map.keys().map(|k| &**k).collect();
            names.sort_unstable();
            for name in names {
                let Some(counts) = map.get(name) else {
                    continue;
                };
                for (api, api_name) in APIS {
                    for (slot, count) in counts[api.index()].iter().enumerate() {
                        let n = count.load(Ordering::Relaxed);
                        if n == 0 {
                            continue;
                        }
                        let enabled = if slot % 2 == 1 { "true" } else { "false" };
                        let labels = [
                            ("api", api_name),
                            ("flag", name),
                            ("enabled", enabled),
                            ("reason", REASONS[slot / 2]),
                        ];
                        ConstCounter::new(n).encode(metric.encode_family(&labels)?)?;
                    }
                }
            }
        }
        let mut metric = encoder.encode_descriptor(
            "evaluations_flag_missing",
            "Evaluations of flags that do not exist, by API (the names asked for are not labels).",
            None,
            MetricType::Counter,
        )?;
        for (api, api_name) in APIS {
            let n = self.missing[api.index()].load(Ordering::Relaxed);
            ConstCounter::new(n).encode(metric.encode_family(&[("api", api_name)])?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use flipper::{Checks, Reason, SystemEnv};

    use super::*;

    #[tokio::test]
    async fn series_exist_only_for_existing_flags() {
        use flipper::live::{LiveFlags, LiveOptions};
        use flipper::store::{MemoryStore, Store, StoreExt};
        let store = Arc::new(MemoryStore::new());
        store.create("on", true, None).await.unwrap();
        store.create("off", false, None).await.unwrap();
        let live =
            LiveFlags::start(Arc::clone(&store) as Arc<dyn Store>, LiveOptions::default()).await;
        let flags = live.flags();
        let evaluations = Evaluations::default();
        for name in ["on", "off", "on"] {
            let item = flags.get(name).map(Arc::clone).unwrap();
            let e = flipper_core::eval::evaluate(&item, &Checks::new(), &SystemEnv);
            evaluations.record(Api::Ofrep, &flags, name, &e);
        }
        let missing = Evaluation {
            enabled: true,
            reason: Reason::FlagMissing,
        };
        evaluations.record(Api::Evaluate, &flags, "nope", &missing);
        {
            let map = evaluations.by_flag.read().unwrap();
            let on = &map["on"][Api::Ofrep.index()];
            assert_eq!(
                on[slot(&Evaluation {
                    enabled: true,
                    reason: Reason::Enabled
                })
                .unwrap()]
                .load(Ordering::Relaxed),
                2
            );
            assert!(!map.contains_key("nope"));
        }
        assert_eq!(evaluations.missing[0].load(Ordering::Relaxed), 1);
        live.client().destroy("off").await.unwrap();
        evaluations.forget_deleted(&live.flags());
        assert!(!evaluations.by_flag.read().unwrap().contains_key("off"));
    }
}
