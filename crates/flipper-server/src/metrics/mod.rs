//! Prometheus metrics, served at `GET /metrics`.
//!
//! Each [`AppState`](crate::AppState) has its own registry ([`prometheus_client`]): nothing is
//! process-global, so several servers in one process (tests, or a host application mounting
//! the router) keep separate numbers, and a host application's own `metrics` recorder is left
//! alone. The exposition is Prometheus' text format (0.0.4), or OpenMetrics when the scraper
//! asks for it (`Accept: application/openmetrics-text`), which is what Prometheus does.
//!
//! | series | labels | what |
//! |---|---|---|
//! | `flipper_http_requests_total` | `method`, `route`, `status` | requests; `route` is the matched route template (`/api/v1/flags/{name}`), or `<unmatched>` |
//! | `flipper_http_request_duration_seconds` | `method`, `route`, `status` | time until the response head (histogram) |
//! | `flipper_evaluations_total` | `api`, `flag`, `enabled`, `reason` | evaluations of existing flags by `POST /api/v1/evaluate` (`api="evaluate"`) and OFREP (`api="ofrep"`); `reason` is flipper's reason code |
//! | `flipper_evaluations_flag_missing_total` | `api` | evaluations of a flag that does not exist (its name is not a label) |
//! | `flipper_stream_subscribers` | | open change-stream connections |
//! | `flipper_store_operation_duration_seconds` | `operation` | `get`, `put`, `delete`, `list` on the store (histogram) |
//! | `flipper_store_operation_errors_total` | `operation`, `error` | failed store operations; `error` is `conflict`, `already_exists`, `corrupt`, `unavailable` or `other` |
//! | `flipper_store_changes_total` | `kind` | changes reported by the store's watch (`put`, `delete`, `resync`) |
//! | `flipper_snapshot_flags`, `flipper_snapshot_version` | | the in-memory flags: how many, and their version |
//! | `flipper_store_cache_hits_total`, `..._cache_misses_total`, `..._cache_loads_total`, `..._cache_evictions_total` | | the cache in front of the store (`--cache-size`, `--cache-ttl`) |
//! | `flipper_store_replica_failures_total` | `replica` | writes a replica failed or did not finish in time (`--replica`) |
//!
//! Cardinality is bounded: evaluation contexts never become labels, a flag name becomes a
//! label only while the flag exists (series of deleted flags are dropped), methods outside the
//! standard ones are counted as `other`, and routes are templates.

mod eval;
mod http;
mod store;
mod text;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::http::Method;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub(crate) use eval::Api;
use eval::Evaluations;
pub(crate) use store::InstrumentedStore;

use flipper::live::{FlagSet, LiveFlags, WeakLiveFlags};

/// Latency buckets, in seconds: 50 µs (an evaluation from memory) to 10 s (a stuck store).
const LATENCY_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabels {
    operation: &'static str,
    error: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ChangeLabels {
    kind: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric of one server. Cheap to share (`Arc`); recording never blocks on I/O.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    /// The live flags, once started (weakly: they own the store, which holds these metrics).
    flags: Arc<OnceLock<WeakLiveFlags>>,
    http: Arc<http::HttpRequests>,
    evaluations: Arc<Evaluations>,
    stream_subscribers: Gauge,
    store_duration: HistogramFamily<OperationLabels>,
    store_errors: Family<ErrorLabels, Counter>,
    store_changes: Family<ChangeLabels, Counter>,
}

impl Metrics {
    /// The metrics of a server; [`Metrics::follow`] gives them its flags.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("flipper");
        let http = Arc::new(http::HttpRequests::new());
        registry.register_collector(Box::new(Arc::clone(&http)));
        let evaluations = Arc::new(Evaluations::default());
        registry.register_collector(Box::new(Arc::clone(&evaluations)));
        let stream_subscribers = Gauge::default();
        registry.register(
            "stream_subscribers",
            "Open change-stream connections",
            stream_subscribers.clone(),
        );
        let store_duration =
            HistogramFamily::<OperationLabels>::new_with_constructor(latency_histogram);
        registry.register(
            "store_operation_duration_seconds",
            "Store operations (get, put, delete, list) by duration",
            store_duration.clone(),
        );
        let store_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "store_operation_errors",
            "Failed store operations by operation and kind of error",
            store_errors.clone(),
        );
        let store_changes = Family::<ChangeLabels, Counter>::default();
        registry.register(
            "store_changes",
            "Changes reported by the store's watch, by kind",
            store_changes.clone(),
        );
        let flags = Arc::new(OnceLock::new());
        registry.register_collector(Box::new(SnapshotGauges(Arc::clone(&flags))));
        registry.register_collector(Box::new(StoreCounters(Arc::clone(&flags))));
        Self {
            registry,
            flags,
            http,
            evaluations,
            stream_subscribers,
            store_duration,
            store_errors,
            store_changes,
        }
    }

    /// Reports on `live` (the flags count and version, and which flags' series to keep).
    pub(crate) fn follow(&self, live: &LiveFlags) {
        let _ = self.flags.set(live.downgrade());
    }

    fn current_flags(&self) -> Option<Arc<FlagSet>> {
        current_flags(&self.flags)
    }

    /// One HTTP request: `route` is the matched template (or `<unmatched>`).
    pub(crate) fn http_request(
        &self,
        method: &Method,
        route: &'static str,
        status: u16,
        took: Duration,
    ) {
        let labels = HttpLabels {
            method: method_label(method),
            route,
            status,
        };
        self.http.record(labels, took);
    }

    /// One evaluation of `name` by `api`: a flag of `flags` (whose series are kept), or, with
    /// the reason [`flipper::Reason::FlagMissing`], a name asked for that is counted without
    /// the name.
    pub(crate) fn evaluation(
        &self,
        api: Api,
        flags: &FlagSet,
        name: &str,
        e: &flipper::Evaluation,
    ) {
        self.evaluations.record(api, flags, name, e);
    }

    /// An evaluation of a flag that does not exist.
    pub(crate) fn evaluation_of_missing_flag(&self, api: Api) {
        self.evaluations.record_missing(api);
    }

    /// Counts one open change-stream connection until the returned guard is dropped: keep it
    /// alive as long as the connection (move it into the response stream).
    pub(crate) fn stream_subscriber(&self) -> StreamSubscriber {
        self.stream_subscribers.inc();
        StreamSubscriber(self.stream_subscribers.clone())
    }

    fn store_operation(
        &self,
        operation: &'static str,
        took: Duration,
        error: Option<&flipper::Error>,
    ) {
        self.store_duration
            .get_or_create(&OperationLabels { operation })
            .observe(took.as_secs_f64());
        if let Some(error) = error {
            let labels = ErrorLabels {
                operation,
                error: error_label(error),
            };
            self.store_errors.get_or_create(&labels).inc();
        }
    }

    fn store_change(&self, change: &flipper::store::Change) {
        use flipper::store::Change;
        let kind = match change {
            Change::Put { .. } => "put",
            Change::Delete { .. } => "delete",
            _ => "resync",
        };
        self.store_changes
            .get_or_create(&ChangeLabels { kind })
            .inc();
    }

    /// The exposition: OpenMetrics when `openmetrics`, else Prometheus' text format 0.0.4.
    ///
    /// # Errors
    /// Only if encoding fails, which writing to a `String` does not.
    pub(crate) fn render(&self, openmetrics: bool) -> Result<String, std::fmt::Error> {
        if let Some(flags) = self.current_flags() {
            self.evaluations.forget_deleted(&flags);
        }
        let mut out = String::with_capacity(8192);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(if openmetrics {
            out
        } else {
            text::to_prometheus(&out)
        })
    }
}

/// Holds one count of `flipper_stream_subscribers`; dropping it gives the count back.
#[derive(Debug)]
#[must_use = "the subscriber is counted only while this guard lives"]
pub(crate) struct StreamSubscriber(Gauge);

impl Drop for StreamSubscriber {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn current_flags(flags: &OnceLock<WeakLiveFlags>) -> Option<Arc<FlagSet>> {
    Some(flags.get()?.upgrade()?.flags())
}

/// `flipper_snapshot_flags` and `flipper_snapshot_version`, read at scrape time.
#[derive(Debug)]
struct SnapshotGauges(Arc<OnceLock<WeakLiveFlags>>);

impl Collector for SnapshotGauges {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let (len, version) = current_flags(&self.0).map_or((0, 0), |flags| {
            (
                i64::try_from(flags.len()).unwrap_or(i64::MAX),
                i64::try_from(flags.version()).unwrap_or(i64::MAX),
            )
        });
        for (name, help, value) in [
            (
                "snapshot_flags",
                "Flags in memory (what evaluation reads)",
                len,
            ),
            (
                "snapshot_version",
                "Version of the flags in memory (moves on with each change)",
                version,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

/// What the store and its wrappers count (`Store::counters`: cache hits, replica failures),
/// read at scrape time as `flipper_store_NAME_total`.
#[derive(Debug)]
struct StoreCounters(Arc<OnceLock<WeakLiveFlags>>);

impl Collector for StoreCounters {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        use prometheus_client::metrics::counter::ConstCounter;
        let Some(live) = self.0.get().and_then(WeakLiveFlags::upgrade) else {
            return Ok(());
        };
        let Some(store) = live.store() else {
            return Ok(());
        };
        let mut counters = store.counters();
        // One descriptor per name, its label sets after it (a stable sort keeps their order).
        counters.sort_by_key(|c| c.name);
        for group in counters.chunk_by(|a, b| a.name == b.name) {
            let first = &group[0];
            let name = format!("store_{}", first.name);
            let mut family = encoder.encode_descriptor(
                &name,
                first.help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for counter in group {
                if counter.labels.is_empty() {
                    // One series per name: with two caches stacked, the outer one's.
                    ConstCounter::new(counter.value).encode(family)?;
                    break;
                }
                let labels: Vec<(&str, &str)> = counter
                    .labels
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .collect();
                let metric = family.encode_family(&labels)?;
                ConstCounter::new(counter.value).encode(metric)?;
            }
        }
        Ok(())
    }
}

/// The standard methods by name; anything else is `other` (a method is any token, so it
/// cannot be a label as sent).
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::TRACE, "TRACE"),
        (Method::CONNECT, "CONNECT"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, name)| name)
}

/// A small, fixed set of error kinds.
fn error_label(e: &flipper::Error) -> &'static str {
    use flipper::Error as E;
    match e {
        E::Conflict { .. } | E::TooManyConflicts { .. } => "conflict",
        E::AlreadyExists { .. } => "already_exists",
        E::Corrupt { .. } => "corrupt",
        E::Io { .. } | E::InvalidFile { .. } | E::Backend { .. } => "unavailable",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "other");
    }

    #[test]
    fn subscribers_are_counted_while_the_guard_lives() {
        let metrics = Metrics::new();
        let a = metrics.stream_subscriber();
        let b = metrics.stream_subscriber();
        assert_eq!(metrics.stream_subscribers.get(), 2);
        drop(a);
        assert_eq!(metrics.stream_subscribers.get(), 1);
        drop(b);
        let text = metrics.render(false).unwrap();
        assert!(text.contains("\nflipper_stream_subscribers 0\n"), "{text}");
    }
}
