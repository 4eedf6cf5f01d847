//! `flipper_http_requests_total` and `flipper_http_request_duration_seconds`, counted in
//! per-thread shards and summed at scrape time.
//!
//! Every request is counted, on whichever worker thread answers it. A shared counter or
//! histogram would make the workers take turns on one lock and one cache line per request;
//! here each thread counts into its own shard (plain atomics only it writes), and its shard's
//! lock is contended only by a scrape.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use super::{HttpLabels, LATENCY_BUCKETS};

/// Buckets of a series: one per upper bound of [`LATENCY_BUCKETS`], then `+Inf`.
const BUCKETS: usize = LATENCY_BUCKETS.len() + 1;

/// The requests of one server.
#[derive(Debug)]
pub(super) struct HttpRequests {
    /// Tells this server's shards from other servers' in a thread's list.
    id: u64,
    /// Every thread's shard, for scrapes.
    shards: Mutex<Vec<Arc<Shard>>>,
}

/// One thread's counts: a series per label set.
#[derive(Debug, Default)]
struct Shard {
    series: Mutex<Vec<(HttpLabels, Series)>>,
}

/// One label set's counts, in one shard.
#[derive(Debug, Default)]
struct Series {
    /// Requests by latency bucket (not cumulative).
    buckets: [AtomicU64; BUCKETS],
    /// Total latency, in nanoseconds.
    nanos: AtomicU64,
}

/// How many servers' shards one thread keeps at most; past that (tests start many servers
/// in one process) the list starts over, and a server that comes back gets a new shard.
const SHARDS_PER_THREAD: usize = 16;

thread_local! {
    /// This thread's shard of each server it answered for.
    static SHARDS: RefCell<Vec<(u64, Arc<Shard>)>> = const { RefCell::new(Vec::new()) };
}

impl HttpRequests {
    pub(super) fn new() -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shards: Mutex::new(Vec::new()),
        }
    }

    /// Counts one request.
    pub(super) fn record(&self, labels: HttpLabels, took: Duration) {
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&upper| took.as_secs_f64() <= upper)
            .unwrap_or(LATENCY_BUCKETS.len());
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let count = |shard: &Shard| {
            let mut series = shard.series.lock().unwrap_or_else(PoisonError::into_inner);
            let i = match series.iter().position(|(l, _)| *l == labels) {
                Some(i) => i,
                None => {
                    series.push((labels, Series::default()));
                    series.len() - 1
                }
            };
            let s = &series[i].1;
            s.buckets[bucket].fetch_add(1, Ordering::Relaxed);
            s.nanos.fetch_add(nanos, Ordering::Relaxed);
        };
        let counted = SHARDS.try_with(|shards| {
            let mut shards = shards.borrow_mut();
            if let Some((_, shard)) = shards.iter().find(|(id, _)| *id == self.id) {
                return count(shard);
            }
            if shards.len() >= SHARDS_PER_THREAD {
                shards.clear();
            }
            let shard = Arc::new(Shard::default());
            self.shards
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::clone(&shard));
            count(&shard);
            shards.push((self.id, shard));
        });
        if counted.is_err() {
            // The thread is exiting: count into a shard of its own.
            let shard = Arc::new(Shard::default());
            count(&shard);
            self.shards
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(shard);
        }
    }

    /// Every label set's counts, summed over the shards, in label order.
    fn totals(&self) -> BTreeMap<(&'static str, &'static str, u16), ([u64; BUCKETS], u64)> {
        let mut totals = BTreeMap::new();
        let shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        for shard in shards.iter() {
            let series = shard.series.lock().unwrap_or_else(PoisonError::into_inner);
            for (labels, s) in series.iter() {
                let key = (labels.method, labels.route, labels.status);
                let (buckets, nanos) = totals.entry(key).or_insert(([0; BUCKETS], 0));
                for (total, count) in buckets.iter_mut().zip(&s.buckets) {
                    *total += count.load(Ordering::Relaxed);
                }
                *nanos += s.nanos.load(Ordering::Relaxed);
            }
        }
        totals
    }
}

impl Collector for HttpRequests {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let totals = self.totals();
        let labels = |&(method, route, status): &(&'static str, &'static str, u16)| HttpLabels {
            method,
            route,
            status,
        };
        {
            let mut metric = encoder.encode_descriptor(
                "http_requests",
                "HTTP requests by method, route template and status",
                None,
                MetricType::Counter,
            )?;
            for (key, (buckets, _)) in &totals {
                let count: u64 = buckets.iter().sum();
                ConstCounter::new(count).encode(metric.encode_family(&labels(key))?)?;
            }
        }
        let mut metric = encoder.encode_descriptor(
            "http_request_duration_seconds",
            "Time until the response head, by method, route template and status",
            None,
            MetricType::Histogram,
        )?;
        for (key, (buckets, nanos)) in &totals {
            let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
            let buckets: Vec<(f64, u64)> = bounds.zip(buckets.iter().copied()).collect();
            let count = buckets.iter().map(|(_, n)| n).sum();
            let sum = Duration::from_nanos(*nanos).as_secs_f64();
            metric
                .encode_family(&labels(key))?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(route: &'static str, status: u16) -> HttpLabels {
        HttpLabels {
            method: "POST",
            route,
            status,
        }
    }

    #[test]
    fn every_thread_s_requests_are_counted_once() {
        let requests = Arc::new(HttpRequests::new());
        let other = HttpRequests::new();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let (requests, other) = (Arc::clone(&requests), &other);
                scope.spawn(move || {
                    for i in 0..1000u64 {
                        let route = if i % 2 == 0 { "/a" } else { "/b" };
                        // i µs and a half: never on a bucket's bound.
                        let took = Duration::from_nanos(i * 1000 + 500);
                        requests.record(labels(route, 200), took);
                        other.record(labels(route, 200), took);
                    }
                    requests.record(labels("/a", 404), Duration::from_secs(20));
                });
            }
        });
        let totals = requests.totals();
        let a = &totals[&("POST", "/a", 200)];
        assert_eq!(a.0.iter().sum::<u64>(), 4 * 500);
        // Latencies 0.5, 2.5 ... 998.5 µs: 25 under 50 µs, 25 more under 100 µs.
        assert_eq!((a.0[0], a.0[1]), (4 * 25, 4 * 25));
        let micros: u64 = (0..1000).step_by(2).sum();
        assert_eq!(a.1, 4 * (micros * 1000 + 500 * 500));
        // Over the last bound: the `+Inf` bucket.
        assert_eq!(totals[&("POST", "/a", 404)].0[BUCKETS - 1], 4);
        assert_eq!(totals.len(), 3);
        assert_eq!(
            other.totals()[&("POST", "/b", 200)].0.iter().sum::<u64>(),
            4 * 500
        );
    }
}
