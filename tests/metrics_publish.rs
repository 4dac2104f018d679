//! The `metrics` feature: `publish_metrics` sets every counter and gauge of its list, named
//! and labelled as documented, to the values of `stats()`.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arraypool::ArrayPool;
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

/// A series' name and its labels, sorted: `arraypool_dropped_total{pool=a,reason=full}`.
fn series_name(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

struct Value(AtomicU64);

impl CounterFn for Value {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::Relaxed);
    }
}

impl GaugeFn for Value {
    fn increment(&self, _: f64) {
        unreachable!("the pool sets its gauges")
    }
    fn decrement(&self, _: f64) {
        unreachable!("the pool sets its gauges")
    }
    fn set(&self, value: f64) {
        self.0.store(value as u64, Ordering::Relaxed);
    }
}

/// A recorder that keeps each series' value and each name's unit.
#[derive(Default)]
struct Captured {
    series: Mutex<BTreeMap<String, (&'static str, Arc<Value>)>>,
    units: Mutex<BTreeMap<String, Option<Unit>>>,
}

impl Captured {
    fn handle(&self, kind: &'static str, key: &Key) -> Arc<Value> {
        let mut series = self.series.lock().unwrap();
        let (_, value) = series
            .entry(series_name(key))
            .or_insert_with(|| (kind, Arc::new(Value(AtomicU64::new(0)))));
        Arc::clone(value)
    }

    fn values(&self) -> BTreeMap<String, (&'static str, u64)> {
        self.series
            .lock()
            .unwrap()
            .iter()
            .map(|(k, (kind, v))| (k.clone(), (*kind, v.0.load(Ordering::Relaxed))))
            .collect()
    }
}

impl Recorder for Captured {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.units.lock().unwrap().insert(key.as_str().into(), unit);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.units.lock().unwrap().insert(key.as_str().into(), unit);
    }
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {
        unreachable!("the pool has no histogram")
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.handle("counter", key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.handle("gauge", key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        unreachable!("the pool has no histogram")
    }
}

#[test]
fn publish_metrics_sets_every_documented_series_from_stats() {
    let pool = ArrayPool::builder()
        .name("frames")
        .max_len(4096)
        .per_bucket(1)
        .partitions(1)
        .idle_timeout(None)
        .build()
        .unwrap();
    let (a, b) = (pool.rent(1000), pool.rent(1000)); // 2 rents, 2 allocations
    pool.return_(a); // kept
    pool.return_(b); // full: dropped
    pool.return_(pool.rent(1000)); // a hit, kept
    pool.return_(pool.rent(9000)); // over the maximum, then not a bucket size
    let stats = pool.stats();

    let recorder = Captured::default();
    metrics::with_local_recorder(&recorder, || pool.publish_metrics());
    let expected: BTreeMap<String, (&str, u64)> = [
        ("arraypool_rented_total{pool=frames}", ("counter", 4)),
        (
            "arraypool_allocated_total{pool=frames,reason=pool_exhausted}",
            ("counter", 2),
        ),
        (
            "arraypool_allocated_total{pool=frames,reason=over_max_length}",
            ("counter", 1),
        ),
        ("arraypool_returned_total{pool=frames}", ("counter", 2)),
        (
            "arraypool_dropped_total{pool=frames,reason=full}",
            ("counter", 1),
        ),
        (
            "arraypool_dropped_total{pool=frames,reason=not_bucket_size}",
            ("counter", 1),
        ),
        (
            "arraypool_dropped_total{pool=frames,reason=still_shared}",
            ("counter", 0),
        ),
        ("arraypool_trimmed_total{pool=frames}", ("counter", 0)),
        ("arraypool_held_buffers{pool=frames}", ("gauge", 1)),
        ("arraypool_held_bytes{pool=frames}", ("gauge", 1024)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(recorder.values(), expected);
    assert_eq!(
        (stats.rented, stats.held_bytes),
        (4, 1024),
        "the values are stats()'s"
    );

    let units = recorder.units.lock().unwrap().clone();
    assert_eq!(units["arraypool_held_bytes"], Some(Unit::Bytes));
    assert_eq!(units["arraypool_rented_total"], Some(Unit::Count));
    assert_eq!(units.len(), 7, "every name described once");

    // Publishing again sets absolute values: nothing is counted twice.
    pool.trim();
    metrics::with_local_recorder(&recorder, || pool.publish_metrics());
    let values = recorder.values();
    assert_eq!(values["arraypool_rented_total{pool=frames}"].1, 4);
    assert_eq!(values["arraypool_trimmed_total{pool=frames}"].1, 1);
    assert_eq!(values["arraypool_held_bytes{pool=frames}"].1, 0);
}

#[test]
fn each_pool_publishes_under_its_own_name() {
    let custom = ArrayPool::create(64, 1);
    let recorder = Captured::default();
    metrics::with_local_recorder(&recorder, || {
        ArrayPool::shared().publish_metrics();
        custom.publish_metrics();
    });
    let values = recorder.values();
    assert!(values.contains_key("arraypool_rented_total{pool=shared}"));
    assert!(values.contains_key("arraypool_rented_total{pool=custom}"));
    assert_eq!(values.len(), 20, "ten series per pool");
}

#[test]
fn without_a_recorder_publishing_does_nothing_and_does_not_panic() {
    ArrayPool::create(64, 1).publish_metrics();
}
