//! `PoolStats` counters and gauges, and `PoolEvent`s delivered to listeners.
//!
//! Counts are checked exactly, step by step, on custom pools. The shared pool is process-wide
//! and the tests of this binary run in parallel, so exactly one test here touches its listener,
//! and it looks only at events for a length no other code rents.

use std::cell::Cell;
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex, Weak};
use std::thread;
use std::time::Duration;

use arraypool::{AllocReason, ArrayPool, DropReason, PoolEvent, PoolStats};

/// A snapshot's figures in a fixed order (`PoolStats` is `#[non_exhaustive]`, so tests cannot
/// build one to compare with): rented, allocated, allocated_over_max, returned, dropped_full,
/// dropped_foreign, held_buffers, held_bytes.
fn figures(pool: &ArrayPool) -> [u64; 8] {
    let s = pool.stats();
    [
        s.rented,
        s.allocated,
        s.allocated_over_max,
        s.returned,
        s.dropped_full,
        s.dropped_foreign,
        s.held_buffers,
        s.held_bytes,
    ]
}

/// An event as the tests compare it: `PoolEvent`'s variants are `#[non_exhaustive]`, so code
/// outside the crate can match them but not build them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Allocated {
        len: usize,
        capacity: usize,
        reason: AllocReason,
    },
    Dropped {
        capacity: usize,
        reason: DropReason,
    },
}

impl Seen {
    fn of(event: &PoolEvent) -> Self {
        match *event {
            PoolEvent::Allocated {
                len,
                capacity,
                reason,
                ..
            } => Seen::Allocated {
                len,
                capacity,
                reason,
            },
            PoolEvent::Dropped {
                capacity, reason, ..
            } => Seen::Dropped { capacity, reason },
            _ => panic!("an event this test does not know: {event:?}"),
        }
    }
}

/// A listener that records every event, and the recording.
fn recorder() -> (
    Arc<Mutex<Vec<Seen>>>,
    impl Fn(&PoolEvent) + Send + Sync + 'static,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    (events, move |event: &PoolEvent| {
        sink.lock().unwrap().push(Seen::of(event))
    })
}

fn exhausted(len: usize, capacity: usize) -> Seen {
    Seen::Allocated {
        len,
        capacity,
        reason: AllocReason::PoolExhausted,
    }
}

fn over_max(len: usize) -> Seen {
    Seen::Allocated {
        len,
        capacity: len,
        reason: AllocReason::OverMaxLength,
    }
}

fn full(capacity: usize) -> Seen {
    Seen::Dropped {
        capacity,
        reason: DropReason::Full,
    }
}

fn not_bucket_size(capacity: usize) -> Seen {
    Seen::Dropped {
        capacity,
        reason: DropReason::NotBucketSize,
    }
}

/// Runs `body` on another thread and fails if it has not finished within a minute: a listener
/// that deadlocks the pool must fail the test, not hang it.
fn within_a_minute(body: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let worker = thread::spawn(move || {
        body();
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(worker.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("deadlock: still running after 60 s"),
    }
}

// ----- counters -----------------------------------------------------------------------------

#[test]
fn counters_follow_a_sequence_of_operations_exactly() {
    let pool = ArrayPool::create(1024, 2);
    assert_eq!(figures(&pool), [0; 8]);
    //                                        rent alloc over  ret full forgn held bytes
    let a = pool.rent(100);
    assert_eq!(figures(&pool), [1, 1, 0, 0, 0, 0, 0, 0], "fresh 128");
    let b = pool.rent(128);
    assert_eq!(figures(&pool), [2, 2, 0, 0, 0, 0, 0, 0], "fresh 128");
    let _ = pool.rent(0);
    assert_eq!(
        figures(&pool),
        [2, 2, 0, 0, 0, 0, 0, 0],
        "rent(0) is not counted"
    );
    let c = pool.rent(5000);
    assert_eq!(figures(&pool), [3, 2, 1, 0, 0, 0, 0, 0], "over max");
    pool.return_(a);
    assert_eq!(figures(&pool), [3, 2, 1, 1, 0, 0, 1, 128], "kept");
    pool.return_(b);
    assert_eq!(figures(&pool), [3, 2, 1, 2, 0, 0, 2, 256], "kept");
    pool.return_(Vec::with_capacity(128));
    assert_eq!(figures(&pool), [3, 2, 1, 2, 1, 0, 2, 256], "full");
    pool.return_(c);
    assert_eq!(
        figures(&pool),
        [3, 2, 1, 2, 1, 1, 2, 256],
        "not a bucket size"
    );
    pool.return_(Vec::new());
    assert_eq!(
        figures(&pool),
        [3, 2, 1, 2, 1, 1, 2, 256],
        "capacity 0 is a no-op"
    );
    let d = pool.rent(120);
    assert_eq!(figures(&pool), [4, 2, 1, 2, 1, 1, 1, 128], "hit");
    let e = pool.rent_zeroed(10);
    assert_eq!(figures(&pool), [5, 3, 1, 2, 1, 1, 1, 128], "fresh 16");
    assert!(pool.try_rent(usize::MAX).is_err());
    assert_eq!(
        figures(&pool),
        [5, 3, 1, 2, 1, 1, 1, 128],
        "a failed try_rent"
    );
    let f = pool.try_rent(2000).unwrap();
    assert_eq!(figures(&pool), [6, 3, 2, 2, 1, 1, 1, 128], "over max");
    pool.return_(e);
    assert_eq!(figures(&pool), [6, 3, 2, 3, 1, 1, 2, 144], "kept");
    let g = pool.try_rent(16).unwrap();
    assert_eq!(figures(&pool), [7, 3, 2, 3, 1, 1, 1, 128], "hit");
    assert_eq!(pool.stats().hits(), 2);
    drop((d, f, g));
    assert_eq!(
        figures(&pool),
        [7, 3, 2, 3, 1, 1, 1, 128],
        "dropping is not returning"
    );
}

#[test]
fn counters_of_a_thread_cache_pool_follow_a_sequence_exactly() {
    // A 512-byte budget: the 128-byte magazine holds two.
    let pool = ArrayPool::builder()
        .max_len(1024)
        .per_bucket(1)
        .partitions(1)
        .thread_cache_bytes(512)
        .build()
        .unwrap();
    //                                        rent alloc over  ret full forgn held bytes
    let (a, b, c, d) = (
        pool.rent(100),
        pool.rent(100),
        pool.rent(100),
        pool.rent(100),
    );
    assert_eq!(figures(&pool), [4, 4, 0, 0, 0, 0, 0, 0]);
    pool.return_(a);
    assert_eq!(
        figures(&pool),
        [4, 4, 0, 1, 0, 0, 1, 128],
        "into the magazine"
    );
    pool.return_(b);
    assert_eq!(figures(&pool), [4, 4, 0, 2, 0, 0, 2, 256], "it grew to two");
    pool.return_(c);
    assert_eq!(
        figures(&pool),
        [4, 4, 0, 3, 0, 0, 3, 384],
        "full at its limit: the oldest moved down to the partition"
    );
    pool.return_(d);
    assert_eq!(
        figures(&pool),
        [4, 4, 0, 4, 1, 0, 3, 384],
        "the next oldest found the partition full"
    );
    let e = pool.rent(128);
    assert_eq!(
        figures(&pool),
        [5, 4, 0, 4, 1, 0, 2, 256],
        "from the magazine"
    );
    let f = pool.rent(128);
    assert_eq!(
        figures(&pool),
        [6, 4, 0, 4, 1, 0, 1, 128],
        "from the magazine"
    );
    let g = pool.rent(128);
    assert_eq!(
        figures(&pool),
        [7, 4, 0, 4, 1, 0, 0, 0],
        "refilled from the partition"
    );
    let h = pool.rent(128);
    assert_eq!(figures(&pool), [8, 5, 0, 4, 1, 0, 0, 0], "empty: fresh");
    pool.return_(vec![0; 1000]);
    assert_eq!(
        figures(&pool),
        [8, 5, 0, 4, 1, 1, 0, 0],
        "not a bucket size"
    );
    drop((e, f, g, h));
}

#[test]
fn gauges_stay_exact_when_buffers_enter_and_leave_through_different_threads() {
    // A 4 KiB budget: 64-byte buffers are cached, 4 KiB and 64 KiB ones go to the partitions.
    let pool = ArrayPool::builder()
        .max_len(1 << 16)
        .per_bucket(8)
        .thread_cache_bytes(4096)
        .build()
        .unwrap();
    let (returned, checked) = (Barrier::new(2), Barrier::new(2));
    let seen = thread::scope(|s| {
        s.spawn(|| {
            for capacity in [64, 64, 4096, 1 << 16] {
                pool.return_(Vec::with_capacity(capacity));
            }
            returned.wait();
            // Stay alive while the other thread looks, so that its cache stays its own.
            checked.wait();
        });
        returned.wait();
        let mut seen = vec![pool.stats()];
        // The 4 KiB buffer is in the partitions: this thread rents it. The 64-byte ones are
        // out of reach in the other thread's cache: this one allocates.
        let (small, big) = (pool.rent(64), pool.rent(4096));
        seen.push(pool.stats());
        pool.return_(small);
        pool.return_(big);
        seen.push(pool.stats());
        checked.wait();
        seen
    });
    let held: Vec<_> = seen
        .iter()
        .map(|s| (s.held_buffers, s.held_bytes))
        .collect();
    assert_eq!(
        held,
        [
            (4, 64 + 64 + 4096 + (1 << 16)),
            (3, 64 + 64 + (1 << 16)),
            (5, 64 * 3 + 4096 + (1 << 16)),
        ]
    );
    assert_eq!((seen[1].hits(), seen[1].allocated), (1, 1));
}

#[test]
fn counters_are_exact_after_many_threads_count_at_once() {
    let pool = ArrayPool::builder()
        .max_len(4096)
        .per_bucket(64)
        .thread_cache(true)
        .build()
        .unwrap();
    let (threads, rounds) = (8u64, if cfg!(miri) { 20 } else { 10_000 });
    thread::scope(|s| {
        for t in 0..threads {
            let pool = &pool;
            s.spawn(move || {
                for i in 0..rounds {
                    let buf = pool.rent(100 + (i % 3) as usize * 1000 + t as usize);
                    pool.return_(buf);
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.rented, threads * rounds, "{stats:?}");
    assert_eq!(stats.returned, threads * rounds, "{stats:?}");
    assert_eq!(stats.dropped_full, 0, "{stats:?}");
    // Three buckets, each thread holding at most one of each (same-thread reuse).
    assert!(stats.allocated <= 3 * threads, "{stats:?}");
    assert_eq!(
        stats.held_buffers, stats.allocated,
        "all returned: {stats:?}"
    );
}

// ----- events ---------------------------------------------------------------------------

#[test]
fn the_listener_receives_each_slow_path_event_with_its_reason_and_sizes() {
    let (events, listener) = recorder();
    let pool = ArrayPool::builder()
        .max_len(1024)
        .per_bucket(1)
        .partitions(1)
        .listener(listener)
        .build()
        .unwrap();

    let a = pool.rent(100);
    let b = pool.rent(2000);
    pool.return_(a); // kept: no event
    pool.return_(Vec::with_capacity(128)); // full
    pool.return_(b); // over max: not a bucket size
    pool.return_(Vec::with_capacity(1000));
    let hit = pool.rent(128); // from the pool: no event
    let _ = pool.rent(0);
    pool.return_(Vec::new());
    assert!(pool.try_rent(usize::MAX).is_err());
    let zeroed = pool.rent_zeroed(3000);
    let tried = pool.try_rent(50).unwrap();
    let zeroed_in_range = pool.rent_zeroed(600);

    assert_eq!(
        *events.lock().unwrap(),
        [
            exhausted(100, 128),
            over_max(2000),
            full(128),
            not_bucket_size(2000),
            not_bucket_size(1000),
            over_max(3000),
            exhausted(50, 64),
            exhausted(600, 1024),
        ]
    );
    drop((hit, zeroed, tried, zeroed_in_range));
}

#[test]
fn a_thread_cache_pool_reports_the_displaced_buffer_it_drops() {
    let (events, listener) = recorder();
    let pool = ArrayPool::builder()
        .max_len(1024)
        .per_bucket(1)
        .partitions(1)
        .thread_cache_bytes(512) // a 256-byte magazine holds one
        .listener(listener)
        .build()
        .unwrap();
    for _ in 0..3 {
        pool.return_(Vec::with_capacity(256));
    }
    assert_eq!(*events.lock().unwrap(), [full(256)]);
}

#[test]
fn listeners_are_added_beside_each_other_and_removed_one_by_one() {
    let (first, first_listener) = recorder();
    let (second, second_listener) = recorder();
    let (third, third_listener) = recorder();
    let pool = ArrayPool::builder()
        .max_len(64)
        .listener(first_listener)
        .listener(second_listener)
        .build()
        .unwrap();
    drop(pool.rent(100));
    let third_id = pool.add_listener(third_listener);
    drop(pool.rent(200));
    assert!(pool.remove_listener(third_id));
    assert!(!pool.remove_listener(third_id), "removed once only");
    drop(pool.rent(300));
    assert_eq!(
        *first.lock().unwrap(),
        [over_max(100), over_max(200), over_max(300)]
    );
    assert_eq!(*second.lock().unwrap(), *first.lock().unwrap());
    assert_eq!(*third.lock().unwrap(), [over_max(200)]);
    assert_eq!(
        pool.stats().allocated_over_max,
        3,
        "counted with or without a listener"
    );
}

/// The only test in this binary that touches the shared pool's listener.
#[test]
fn the_shared_pool_takes_and_drops_a_listener() {
    let shared = ArrayPool::shared();
    // A length above the maximum that nothing else rents, so its events are ours.
    let ours = shared.max_len() + 7919;
    let mine = |events: &Mutex<Vec<Seen>>| -> Vec<Seen> {
        let events = events.lock().unwrap();
        let is_ours = |e: &&Seen| match **e {
            Seen::Allocated { len, .. } => len == ours || len == ours + 1,
            Seen::Dropped { capacity, .. } => capacity == ours || capacity == ours + 1,
        };
        events.iter().filter(is_ours).copied().collect()
    };
    let over_max_before = shared.stats().allocated_over_max;

    let (first, first_listener) = recorder();
    let first_id = shared.add_listener(first_listener);
    let buf = shared.rent(ours);
    shared.return_(buf);

    let (second, second_listener) = recorder();
    let second_id = shared.add_listener(second_listener);
    assert!(shared.remove_listener(first_id));
    let buf = shared.rent_zeroed(ours + 1);
    shared.return_(buf);

    assert!(shared.remove_listener(second_id));
    let buf = shared.rent(ours);
    shared.return_(buf);

    assert_eq!(mine(&first), [over_max(ours), not_bucket_size(ours)]);
    assert_eq!(
        mine(&second),
        [over_max(ours + 1), not_bucket_size(ours + 1)]
    );
    assert!(shared.stats().allocated_over_max >= over_max_before + 3);
}

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// A listener may use the pool that called it: rent and return (hits and fresh allocations),
/// cause a nested event, read the stats, and add or remove listeners. None of it may deadlock,
/// since the pool calls listeners with no lock held.
#[test]
fn a_listener_that_uses_its_own_pool_does_not_deadlock() {
    within_a_minute(|| {
        let pool = Arc::new(ArrayPool::create(1024, 4));
        let (events, record) = recorder();
        let weak: Weak<ArrayPool> = Arc::downgrade(&pool);
        pool.add_listener(move |event| {
            record(event);
            let Some(pool) = weak.upgrade() else { return };
            let depth = DEPTH.get();
            if depth == 0 {
                DEPTH.set(1);
                let hit_or_fresh = pool.rent(64);
                pool.return_(hit_or_fresh);
                // Over the maximum: raises a nested event on this same thread.
                let nested = pool.rent(4000);
                pool.return_(nested);
                let _ = pool.stats();
                DEPTH.set(0);
            }
        });

        pool.return_(Vec::with_capacity(1000)); // the outer event
        let figures_after = figures(&pool);
        assert_eq!(
            *events.lock().unwrap(),
            [
                not_bucket_size(1000),
                exhausted(64, 64),
                over_max(4000),
                not_bucket_size(4000),
            ]
        );
        assert_eq!(figures_after, [2, 1, 1, 1, 0, 2, 1, 64]);
    });
}

#[test]
fn a_listener_that_replaces_or_removes_itself_does_not_deadlock() {
    within_a_minute(|| {
        let pool = Arc::new(ArrayPool::create(64, 1));
        let (later, later_listener) = recorder();
        let later_listener = Arc::new(later_listener);
        let weak = Arc::downgrade(&pool);
        let own_id = Arc::new(Mutex::new(None));
        let own = Arc::clone(&own_id);
        let first = pool.add_listener(move |_| {
            if let Some(pool) = weak.upgrade() {
                let next = Arc::clone(&later_listener);
                pool.add_listener(move |event| next(event));
                let me = own.lock().unwrap().take();
                if let Some(me) = me {
                    assert!(pool.remove_listener(me), "it removes itself");
                }
            }
        });
        *own_id.lock().unwrap() = Some(first);
        drop(pool.rent(100)); // the first listener runs, installs the second, removes itself
        drop(pool.rent(200));
        assert_eq!(*later.lock().unwrap(), [over_max(200)]);
        assert_eq!(pool.stats().allocated_over_max, 2);
    });
}

/// Regression (review B3): the old listener was dropped under the write lock, so a listener
/// whose captured state adds a listener when dropped deadlocked its own removal.
#[test]
fn a_listener_whose_drop_adds_a_listener_does_not_deadlock() {
    struct AddsOnDrop(Weak<ArrayPool>);
    impl Drop for AddsOnDrop {
        fn drop(&mut self) {
            if let Some(pool) = self.0.upgrade() {
                pool.add_listener(|_| {});
            }
        }
    }
    within_a_minute(|| {
        let pool = Arc::new(ArrayPool::create(64, 1));
        let state = AddsOnDrop(Arc::downgrade(&pool));
        let id = pool.add_listener(move |_| {
            let _ = &state;
        });
        assert!(pool.remove_listener(id)); // drops `state`, which adds a listener
        assert!(format!("{pool:?}").contains("listeners: true"));
    });
}

#[test]
fn listeners_run_on_the_thread_that_caused_the_event() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let pool = ArrayPool::builder()
        .max_len(64)
        .listener(move |_| sink.lock().unwrap().push(thread::current().id()))
        .build()
        .unwrap();
    let other = thread::scope(|s| {
        s.spawn(|| {
            drop(pool.rent(100));
            thread::current().id()
        })
        .join()
        .unwrap()
    });
    drop(pool.rent(100));
    assert_eq!(*seen.lock().unwrap(), [other, thread::current().id()]);
}

// ----- how they print ---------------------------------------------------------------------

#[test]
fn pool_stats_display_as_a_table_naming_every_figure() {
    let pool = ArrayPool::create(1024, 1);
    let a = pool.rent(100);
    let (b, c) = (pool.rent(100), pool.rent(5000));
    pool.return_(a);
    pool.return_(b);
    pool.return_(c);
    pool.return_(Vec::with_capacity(3));
    let reused = pool.rent(128);
    pool.return_(reused);
    let stats = pool.stats();
    assert_eq!(figures(&pool), [4, 2, 1, 2, 1, 2, 1, 128]);

    let table = stats.to_string();
    let rows: Vec<(&str, u64)> = table
        .lines()
        .map(|line| {
            let (label, value) = line.trim_end().rsplit_once(' ').expect("label and value");
            (label.trim(), value.parse().expect("a number"))
        })
        .collect();
    let value_of = |needle: &str| -> u64 {
        let matches: Vec<_> = rows.iter().filter(|(l, _)| l.contains(needle)).collect();
        assert_eq!(matches.len(), 1, "one row mentions {needle:?}:\n{table}");
        matches[0].1
    };
    assert_eq!(value_of("rented"), stats.rented);
    assert_eq!(value_of("served from the pool"), stats.hits());
    assert_eq!(value_of("exhausted"), stats.allocated);
    assert_eq!(value_of("over max"), stats.allocated_over_max);
    assert_eq!(value_of("returned"), stats.returned);
    assert_eq!(value_of("full"), stats.dropped_full);
    assert_eq!(value_of("not a bucket size"), stats.dropped_foreign);
    assert_eq!(value_of("buffers"), stats.held_buffers);
    assert_eq!(value_of("bytes"), stats.held_bytes);
    let widths: Vec<usize> = table.lines().map(str::len).collect();
    assert!(
        widths.windows(2).all(|w| w[0] == w[1]),
        "the values line up:\n{table}"
    );
    assert_eq!(PoolStats::default().hits(), 0);
}

#[test]
fn events_display_their_sizes_and_reason() {
    let texts = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&texts);
    let pool = ArrayPool::builder()
        .max_len(256)
        .per_bucket(1)
        .partitions(1)
        .listener(move |event: &PoolEvent| sink.lock().unwrap().push(event.to_string()))
        .build()
        .unwrap();
    drop(pool.rent(5000)); // over the maximum
    let (a, b) = (pool.rent(100), pool.rent(100)); // two fresh 128-byte buffers
    pool.return_(a);
    pool.return_(b); // no room: dropped
    let texts = texts.lock().unwrap();
    let [over, fresh, _, full] = &texts[..] else {
        panic!("four events: {texts:?}")
    };
    assert!(
        over.contains("5000") && over.contains("OverMaxLength"),
        "{over}"
    );
    assert!(fresh.contains("100") && fresh.contains("128"), "{fresh}");
    assert!(full.contains("128") && full.contains("Full"), "{full}");
}
