//! Ten thousand short-lived threads leave no buffer stranded.
//!
//! - The shared pool flushes a thread's cache into its partitions when the thread exits, so
//!   after the threads are gone every buffer they kept is in the partitions (or was freed
//!   because they were full), and this thread can rent back exactly as many as the gauges say.
//! - A custom pool's thread caches belong to the pool, and each is flushed into the partitions
//!   when its thread exits (the emptied cache goes to the next thread given that
//!   `thread_local` id). So once the threads are gone the pool holds only what its partitions
//!   hold, and every held buffer is reachable by a later thread.
//!
//! This file has one test per pool kind; the shared pool's is the only user of the shared pool
//! in this process, so its counters are its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;

use arraypool::{ArrayPool, PoolEvent};

/// 10,000 threads, in batches that run at once. Under Miri, which runs threads some thousand
/// times slower, 3 batches of 4.
const BATCHES: usize = if cfg!(miri) { 3 } else { 250 };
const BATCH: usize = if cfg!(miri) { 4 } else { 40 };
/// What each thread rents and returns: one buffer of each of these lengths (buckets of 16,
/// 1024, 4096 and 16384 bytes).
const LENGTHS: [usize; 4] = [10, 700, 4000, 9000];

/// Runs `work` on `BATCHES × BATCH` threads, a batch at a time; the threads of a batch all rent
/// before any returns, so each batch holds `BATCH` distinct buffers of each length.
///
/// Each thread is joined explicitly: that waits for its thread-local destructors (the shared
/// pool's cache flush, the `thread_local` crate's id release). The implicit join at the end of
/// `thread::scope` waits only for the closures to return, and the next batch would race them.
fn run_batches(work: impl Fn(&Barrier) + Sync) {
    for _ in 0..BATCHES {
        let all_rented = Barrier::new(BATCH);
        thread::scope(|scope| {
            let threads: Vec<_> = (0..BATCH)
                .map(|_| scope.spawn(|| work(&all_rented)))
                .collect();
            for thread in threads {
                thread.join().expect("worker");
            }
        });
    }
}

fn rent_and_return(pool: &ArrayPool, all_rented: &Barrier) {
    let buffers: Vec<Vec<u8>> = LENGTHS
        .iter()
        .map(|&n| {
            let mut buffer = pool.rent(n);
            buffer.fill(0x5a);
            buffer
        })
        .collect();
    all_rented.wait();
    for buffer in buffers {
        pool.return_(buffer);
    }
}

/// Rents `n` until the pool has to allocate; returns how many came from the pool.
fn rent_until_empty(pool: &ArrayPool, n: usize, allocations: impl Fn() -> u64) -> usize {
    let mut kept = Vec::new();
    loop {
        let before = allocations();
        let buffer = pool.rent(n);
        if allocations() > before {
            return kept.len();
        }
        assert_eq!(buffer.capacity(), n.next_power_of_two().max(16));
        kept.push(buffer);
    }
}

#[test]
fn ten_thousand_threads_leave_no_buffer_stranded_in_the_shared_pool() {
    let pool = ArrayPool::shared();
    run_batches(|all_rented| rent_and_return(pool, all_rented));
    let threads = (BATCHES * BATCH) as u64;
    let stats = pool.stats();
    let kinds = LENGTHS.len() as u64;
    assert_eq!(stats.rented, threads * kinds, "{stats:?}");
    assert_eq!(
        stats.returned,
        threads * kinds,
        "every return kept: {stats:?}"
    );
    // Each thread's exit flushed its cache: the partitions take them until full, and the
    // gauges count exactly what is left.
    let partitions = thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let room = 32 * partitions;
    let per_length = (BATCH as u64).min(room);
    assert_eq!(
        stats.held_buffers,
        per_length * kinds,
        "one batch's buffers (or as many as fit) and no more: {stats:?}"
    );
    assert_eq!(
        stats.dropped_full,
        stats.returned - stats.hits() - stats.held_buffers,
        "whatever is not held was counted as freed: {stats:?}"
    );

    // And all of them can be rented back by this thread: none is stranded in a dead thread's
    // cache.
    let mut reused = 0;
    for n in LENGTHS {
        reused += rent_until_empty(pool, n, || pool.stats().allocated) as u64;
    }
    assert_eq!(reused, per_length * kinds);
    assert_eq!(pool.stats().held_buffers, 0);
}

#[test]
fn ten_thousand_threads_leave_no_buffer_stranded_in_a_custom_pools_caches() {
    let allocated = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&allocated);
    // Room in the partitions for one batch's buffers of each length.
    let per_bucket = BATCH;
    let pool = ArrayPool::builder()
        .max_len(1 << 14)
        .per_bucket(per_bucket)
        .thread_cache(true)
        .listener(move |event: &PoolEvent| {
            if let PoolEvent::Allocated { .. } = event {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()
        .unwrap();
    run_batches(|all_rented| rent_and_return(&pool, all_rented));
    let stats = pool.stats();
    let kinds = LENGTHS.len() as u64;
    let threads = (BATCHES * BATCH) as u64;
    assert_eq!(stats.rented, threads * kinds, "{stats:?}");
    assert_eq!(stats.allocated, allocated.load(Ordering::Relaxed));
    // Every exited thread's cache was flushed, and one batch's buffers fit the partitions:
    // they hold exactly one batch's worth, and later batches rented those instead of
    // allocating (a few more allocations where a thread's refill met a partition another
    // thread had just emptied).
    assert_eq!(
        stats.held_buffers,
        per_bucket as u64 * kinds,
        "nothing stranded in a dead thread's cache: {stats:?}"
    );
    assert_eq!(
        stats.dropped_full,
        stats.returned - stats.hits() - stats.held_buffers,
        "whatever is not held was counted as freed: {stats:?}"
    );
    assert!(
        stats.allocated <= 2 * kinds * BATCH as u64,
        "later threads reused the flushed buffers instead of allocating: {stats:?}"
    );

    // This thread gets back exactly what the gauges say is held.
    let held = stats.held_buffers;
    let mut reused = 0;
    for n in LENGTHS {
        reused += rent_until_empty(&pool, n, || allocated.load(Ordering::Relaxed)) as u64;
    }
    assert_eq!(reused, held, "{:?}", pool.stats());
}
