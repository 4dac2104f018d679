//! The `tracing` feature: each `PoolEvent` reaches a subscriber as a `tracing` event with
//! target `arraypool`, level INFO and fields `pool`, `len`, `capacity` and `reason`; rents and
//! returns that hit the pool raise none.
#![cfg(feature = "tracing")]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use arraypool::ArrayPool;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One event as the subscriber saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    name: &'static str,
    target: String,
    level: Level,
    fields: BTreeMap<&'static str, String>,
}

/// A subscriber that records every event and has no spans.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut BTreeMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_owned());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name(), value.to_string());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let meta = event.metadata();
        self.0.lock().unwrap().push(Seen {
            name: meta.name(),
            target: meta.target().to_owned(),
            level: *meta.level(),
            fields,
        });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Recorder {
    fn seen(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

fn seen(name: &'static str, fields: &[(&'static str, &str)]) -> Seen {
    Seen {
        name,
        target: "arraypool".into(),
        level: Level::INFO,
        fields: fields.iter().map(|&(k, v)| (k, v.to_owned())).collect(),
    }
}

#[test]
fn every_pool_event_is_a_tracing_event_with_target_level_and_fields() {
    let recorder = Recorder::default();
    // No idle timeout: no event comes from the trimmer's thread, outside this subscriber.
    let pool = ArrayPool::builder()
        .name("frames")
        .max_len(4096)
        .per_bucket(1)
        .partitions(1)
        .idle_timeout(None)
        .build()
        .unwrap();
    tracing::subscriber::with_default(recorder.clone(), || {
        let a = pool.rent(3000); // allocated: the pool is empty
        let b = pool.rent(3000); // allocated
        pool.return_(a); // kept: no event
        pool.return_(b); // full: dropped
        pool.return_(pool.rent(3000)); // a hit and a keep: no event
        drop(pool.rent(5000)); // over the maximum
        pool.return_(Vec::with_capacity(100)); // not a bucket size
        pool.trim(); // releases the one buffer held
    });
    assert_eq!(
        recorder.seen(),
        [
            seen(
                "buffer_allocated",
                &[
                    ("message", "buffer allocated"),
                    ("pool", "frames"),
                    ("len", "3000"),
                    ("capacity", "4096"),
                    ("reason", "pool_exhausted"),
                ],
            ),
            seen(
                "buffer_allocated",
                &[
                    ("message", "buffer allocated"),
                    ("pool", "frames"),
                    ("len", "3000"),
                    ("capacity", "4096"),
                    ("reason", "pool_exhausted"),
                ],
            ),
            seen(
                "buffer_dropped",
                &[
                    ("message", "buffer dropped"),
                    ("pool", "frames"),
                    ("capacity", "4096"),
                    ("reason", "full"),
                ],
            ),
            seen(
                "buffer_allocated",
                &[
                    ("message", "buffer allocated"),
                    ("pool", "frames"),
                    ("len", "5000"),
                    ("capacity", "5000"),
                    ("reason", "over_max_length"),
                ],
            ),
            seen(
                "buffer_dropped",
                &[
                    ("message", "buffer dropped"),
                    ("pool", "frames"),
                    ("capacity", "100"),
                    ("reason", "not_bucket_size"),
                ],
            ),
            seen(
                "buffer_trimmed",
                &[
                    ("message", "buffer trimmed"),
                    ("pool", "frames"),
                    ("capacity", "4096"),
                    ("reason", "explicit"),
                ],
            ),
        ]
    );
}

#[test]
fn listeners_and_tracing_see_the_same_events() {
    let recorder = Recorder::default();
    let heard = Arc::new(Mutex::new(0));
    let count = Arc::clone(&heard);
    let pool = ArrayPool::builder()
        .max_len(64)
        .idle_timeout(None)
        .listener(move |_| *count.lock().unwrap() += 1)
        .build()
        .unwrap();
    tracing::subscriber::with_default(recorder.clone(), || {
        for n in [10, 100, 1000] {
            pool.return_(pool.rent(n));
        }
    });
    let events = recorder.seen();
    assert_eq!(events.len(), 5, "3 allocations, 2 over-max buffers dropped");
    assert_eq!(*heard.lock().unwrap(), events.len());
    assert!(events.iter().all(|e| e.fields["pool"] == "custom"));
}

#[test]
fn a_subscriber_above_info_sees_nothing() {
    #[derive(Clone, Default)]
    struct WarnOnly(Recorder);
    impl Subscriber for WarnOnly {
        fn enabled(&self, meta: &Metadata<'_>) -> bool {
            *meta.level() <= Level::WARN
        }
        fn new_span(&self, a: &Attributes<'_>) -> Id {
            self.0.new_span(a)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            self.0.event(event)
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
    let subscriber = WarnOnly::default();
    let pool = ArrayPool::builder().idle_timeout(None).build().unwrap();
    tracing::subscriber::with_default(subscriber.clone(), || drop(pool.rent(100)));
    assert!(subscriber.0.seen().is_empty());
}
