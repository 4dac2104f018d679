//! Custom pools: the `per_bucket` bound (exact, from one thread or several, however it is
//! partitioned), the optional thread cache, and pool lifetime versus the buffers it lent out.

use std::sync::{Arc, Barrier};
use std::thread;

use arraypool::{ArrayPool, PoolStats};

/// Returns `count` fresh buffers of `capacity` bytes to `pool`, each marked with its number.
fn return_fresh(pool: &ArrayPool, capacity: usize, count: usize) {
    for i in 0..count {
        let mut buf = Vec::with_capacity(capacity);
        buf.push(i as u8);
        pool.return_(buf);
    }
}

fn kept(stats: &PoolStats) -> (u64, u64, u64) {
    (stats.held_buffers, stats.returned, stats.dropped_full)
}

/// A pool of buffers up to 4 KiB with no thread cache, its bound split over `partitions`.
fn partitioned(per_bucket: usize, partitions: usize) -> ArrayPool {
    ArrayPool::builder()
        .max_len(4096)
        .per_bucket(per_bucket)
        .partitions(partitions)
        .build()
        .unwrap()
}

// ----- the per_bucket bound ---------------------------------------------------------------

#[test]
fn exactly_per_bucket_buffers_are_kept_from_one_thread() {
    for per_bucket in [1, 2, 3, 5, 8, 13] {
        for extra in [0, 1, 7] {
            let pool = ArrayPool::create(4096, per_bucket);
            return_fresh(&pool, 1024, per_bucket + extra);
            let stats = pool.stats();
            let p = per_bucket as u64;
            assert_eq!(
                kept(&stats),
                (p, p, extra as u64),
                "per_bucket {per_bucket}, {extra} extra: {stats:?}"
            );
            assert_eq!(stats.held_bytes, p * 1024);
        }
    }
}

#[test]
fn exactly_per_bucket_buffers_are_kept_with_partitions_not_dividing_it() {
    for (per_bucket, partitions) in [(7, 3), (10, 3), (2, 3), (1, 3), (5, 4), (9, 2)] {
        let pool = partitioned(per_bucket, partitions);
        return_fresh(&pool, 256, per_bucket + 4);
        let p = per_bucket as u64;
        assert_eq!(
            kept(&pool.stats()),
            (p, p, 4),
            "per_bucket {per_bucket}, partitions {partitions}"
        );
        // Every kept buffer can be rented again (the probe reaches every partition), and then
        // the pool is empty.
        let rented: Vec<_> = (0..per_bucket).map(|_| pool.rent(256)).collect();
        assert!(rented.iter().all(|b| b.capacity() == 256));
        let stats = pool.stats();
        assert_eq!((stats.hits(), stats.allocated), (p, 0), "{stats:?}");
        assert_eq!(stats.held_buffers, 0);
        let one_more = pool.rent(256);
        assert_eq!(pool.stats().allocated, 1, "the pool was empty");
        drop((rented, one_more));
    }
}

#[test]
fn the_bound_is_per_bucket_not_per_pool() {
    let pool = ArrayPool::create(4096, 2);
    for capacity in [16, 32, 64, 4096] {
        return_fresh(&pool, capacity, 3);
    }
    assert_eq!(kept(&pool.stats()), (8, 8, 4));
    assert_eq!(pool.stats().held_bytes, 2 * (16 + 32 + 64 + 4096));
}

#[test]
fn exactly_per_bucket_buffers_are_kept_when_several_threads_return_at_once() {
    let threads = 4;
    let each = if cfg!(miri) { 5 } else { 50 };
    for (per_bucket, partitions) in [(10, 3), (7, 2), (1, 4), (16, 4)] {
        let pool = partitioned(per_bucket, partitions);
        let start = Barrier::new(threads);
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    start.wait();
                    return_fresh(&pool, 2048, each);
                });
            }
        });
        let total = (threads * each) as u64;
        let p = per_bucket as u64;
        assert_eq!(
            kept(&pool.stats()),
            (p, p, total - p),
            "per_bucket {per_bucket}, partitions {partitions}"
        );

        // Renting them back from several threads at once finds every one of them.
        let rented_per_thread = per_bucket.div_ceil(threads);
        thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..rented_per_thread {
                        drop(pool.rent(2048));
                    }
                });
            }
        });
        let stats = pool.stats();
        assert_eq!(stats.hits(), p, "{stats:?}");
        assert_eq!(
            stats.allocated,
            (threads * rented_per_thread) as u64 - p,
            "{stats:?}"
        );
    }
}

// ----- the thread cache -------------------------------------------------------------------

fn cached_pool(per_bucket: usize) -> ArrayPool {
    ArrayPool::builder()
        .max_len(1 << 16)
        .per_bucket(per_bucket)
        .partitions(2)
        .thread_cache(true)
        .build()
        .unwrap()
}

#[test]
fn a_thread_cache_serves_the_same_thread_the_buffer_it_returned() {
    let pool = cached_pool(4);
    let buf = pool.rent(5000);
    let ptr = buf.as_ptr();
    pool.return_(buf);
    for _ in 0..10 {
        let again = pool.rent(8000);
        assert_eq!(again.as_ptr(), ptr);
        pool.return_(again);
    }
    let stats = pool.stats();
    assert_eq!((stats.rented, stats.allocated, stats.returned), (11, 1, 11));
    assert_eq!((stats.held_buffers, stats.held_bytes), (1, 8192));
}

/// A pool with a thread cache of `budget` bytes per thread and one partition.
fn budgeted_pool(per_bucket: usize, budget: usize) -> ArrayPool {
    ArrayPool::builder()
        .max_len(1 << 16)
        .per_bucket(per_bucket)
        .partitions(1)
        .thread_cache_bytes(budget)
        .build()
        .unwrap()
}

/// Returns `count` fresh buffers of every size from 16 B to 4 KiB.
fn return_every_size(pool: &ArrayPool, count: usize) {
    for shift in 4..=12 {
        return_fresh(pool, 1 << shift, count);
    }
}

/// Bytes of one buffer of every size from 16 B to 4 KiB.
const EVERY_SIZE: u64 = (1 << 13) - 16;

#[test]
fn a_thread_cache_adds_at_most_its_budget_per_live_thread_to_the_bound() {
    let (per_bucket, budget) = (2, 16 << 10);
    let pool = budgeted_pool(per_bucket, budget);
    let partitions_bound = per_bucket as u64 * EVERY_SIZE;
    return_every_size(&pool, 20);
    let stats = pool.stats();
    assert!(
        stats.held_bytes <= partitions_bound + budget as u64,
        "this thread holds at most its budget: {stats:?}"
    );
    assert!(
        stats.held_bytes > partitions_bound,
        "and does cache: {stats:?}"
    );
    // Each return is kept (and perhaps freed later, when a full magazine moves it down to
    // full partitions) or refused at once.
    assert!(stats.returned <= 9 * 20 && stats.returned + stats.dropped_full >= 9 * 20);

    // Explicit joins, not a scope: a scope's end does not wait for thread-exit flushes.
    let pool = Arc::new(pool);
    let threads = 4;
    let start = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (pool, start) = (Arc::clone(&pool), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                return_every_size(&pool, 20);
                // Stay alive until every thread has returned: each keeps its own cache.
                start.wait();
                let stats = pool.stats();
                assert!(
                    stats.held_bytes <= partitions_bound + (threads as u64 + 1) * budget as u64,
                    "each live thread holds at most its budget: {stats:?}"
                );
                start.wait();
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let stats = pool.stats();
    assert!(stats.returned <= 5 * 9 * 20 && stats.returned + stats.dropped_full >= 5 * 9 * 20);
    assert!(
        stats.held_bytes <= partitions_bound + budget as u64,
        "the four threads exited and flushed; only this thread's cache remains: {stats:?}"
    );
}

#[test]
fn a_thread_cache_flushes_into_the_partitions_when_its_thread_exits() {
    let pool = cached_pool(2);
    let exited = thread::spawn({
        let pool = Arc::new(pool);
        move || {
            let inner = Arc::clone(&pool);
            thread::spawn(move || inner.return_(vec![9; 1024]))
                .join()
                .unwrap();
            pool
        }
    })
    .join()
    .unwrap();
    let stats = exited.stats();
    assert_eq!(
        (stats.held_buffers, stats.held_bytes, stats.returned),
        (1, 1024, 1),
        "the exited thread's buffer moved to the partitions (no leak, no loss): {stats:?}"
    );
    let reused = exited.rent(1024);
    assert_eq!(reused[0], 9, "another thread gets it");
    assert_eq!(exited.stats().hits(), 1);
}

#[test]
fn a_full_magazine_moves_its_oldest_buffers_to_the_partitions_for_other_threads() {
    // 1 KiB of budget: a magazine of two 256-byte buffers.
    let pool = budgeted_pool(4, 1024);
    let first = vec![1u8; 256];
    let first_ptr = first.as_ptr();
    pool.return_(first);
    pool.return_(vec![2u8; 256]);
    pool.return_(vec![3u8; 256]); // the magazine is full: `first` moves down
    let from_other_thread = thread::scope(|s| s.spawn(|| pool.rent(256)).join().unwrap());
    assert_eq!(from_other_thread.as_ptr(), first_ptr);
    assert_eq!(from_other_thread[0], 1);
    assert_eq!(
        pool.rent(256)[0],
        3,
        "this thread's magazine serves its newest"
    );
    assert_eq!(pool.rent(256)[0], 2);
}

#[test]
fn nested_rents_on_one_thread_are_served_from_its_magazine() {
    let pool = cached_pool(4);
    let held: Vec<_> = (0..4).map(|_| pool.rent(4096)).collect();
    for buffer in held {
        pool.return_(buffer);
    }
    let before = pool.stats();
    for _ in 0..100 {
        let held: Vec<_> = (0..4).map(|_| pool.rent(4096)).collect();
        for buffer in held {
            pool.return_(buffer);
        }
    }
    let after = pool.stats();
    assert_eq!(
        after.allocated, before.allocated,
        "no allocation: {after:?}"
    );
    assert_eq!(after.hits() - before.hits(), 400);
    assert_eq!(after.held_buffers, 4);
}

// ----- pool lifetime ----------------------------------------------------------------------

/// The pool is dropped while other threads still hold buffers rented from it; those stay
/// ordinary, valid `Vec`s.
#[test]
fn buffers_outlive_a_pool_dropped_while_other_threads_hold_them() {
    for thread_cache in [false, true] {
        let pool = Arc::new(
            ArrayPool::builder()
                .max_len(1 << 16)
                .per_bucket(4)
                .thread_cache(thread_cache)
                .build()
                .unwrap(),
        );
        let threads = 4;
        let rented = Arc::new(Barrier::new(threads + 1));
        let dropped = Arc::new(Barrier::new(threads + 1));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (pool, rented, dropped) =
                    (Arc::clone(&pool), Arc::clone(&rented), Arc::clone(&dropped));
                thread::spawn(move || {
                    // Leave something in the pool (and this thread's cache) as well.
                    pool.return_(pool.rent(1000));
                    let mut mine = pool.rent(3000 + t);
                    drop(pool);
                    rented.wait();
                    dropped.wait();
                    mine.fill(t as u8);
                    mine.extend_from_slice(&[t as u8; 5000]);
                    assert!(mine.iter().all(|&b| b == t as u8));
                    mine.len()
                })
            })
            .collect();
        rented.wait();
        let pool = Arc::try_unwrap(pool).expect("the threads gave their handles back");
        assert!(pool.stats().held_buffers >= 1);
        drop(pool);
        dropped.wait();
        for (t, handle) in handles.into_iter().enumerate() {
            assert_eq!(handle.join().unwrap(), 3000 + t + 5000);
        }
    }
}

/// Threads that cached buffers in a pool's thread cache keep running (and exit) after the pool
/// is gone, and go on using another pool.
#[test]
fn threads_outlive_a_thread_cache_pool_they_used() {
    let threads = 2;
    let other = Arc::new(cached_pool(2));
    let pool = Arc::new(cached_pool(2));
    let cached = Arc::new(Barrier::new(threads + 1));
    let pool_gone = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (pool, other) = (Arc::clone(&pool), Arc::clone(&other));
            let (cached, pool_gone) = (Arc::clone(&cached), Arc::clone(&pool_gone));
            thread::spawn(move || {
                pool.return_(pool.rent(700));
                drop(pool);
                cached.wait();
                pool_gone.wait();
                other.return_(other.rent(700));
            })
        })
        .collect();
    cached.wait();
    let pool = Arc::try_unwrap(pool).expect("the threads gave their handles back");
    assert_eq!(
        pool.stats().held_buffers,
        threads as u64,
        "one in each thread's cache"
    );
    drop(pool);
    pool_gone.wait();
    for handle in handles {
        handle.join().unwrap();
    }
    assert_eq!(other.stats().returned, threads as u64);
}
