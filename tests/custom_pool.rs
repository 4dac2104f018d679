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

#[test]
fn a_thread_cache_adds_one_buffer_per_thread_to_the_bound() {
    let per_bucket = 3;
    let pool = cached_pool(per_bucket);
    return_fresh(&pool, 512, 10);
    // One in this thread's cache, `per_bucket` in the partitions; each later return displaced
    // one down, and the partitions refused the last six of those.
    assert_eq!(kept(&pool.stats()), (4, 10, 6));

    let threads = 4;
    let start = Barrier::new(threads);
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                start.wait();
                return_fresh(&pool, 512, 5);
                // Stay alive until every thread has returned: each keeps its own cache slot.
                start.wait();
            });
        }
    });
    let stats = pool.stats();
    assert_eq!(
        stats.held_buffers,
        (per_bucket + 1 + threads) as u64,
        "partitions full, plus one cached by this thread and by each other thread: {stats:?}"
    );
    assert_eq!(stats.returned, 10 + 20);
    assert_eq!(stats.dropped_full, 30 - stats.held_buffers);
}

#[test]
fn a_thread_cache_keeps_buffers_of_a_thread_that_exited() {
    let pool = cached_pool(2);
    thread::scope(|s| {
        s.spawn(|| pool.return_(vec![9; 1024])).join().unwrap();
    });
    let stats = pool.stats();
    assert_eq!(
        (stats.held_buffers, stats.held_bytes, stats.returned),
        (1, 1024, 1),
        "the exited thread's slot still holds its buffer (no leak, no loss): {stats:?}"
    );
}

#[test]
fn a_thread_cache_pool_moves_displaced_buffers_to_the_partitions_for_other_threads() {
    let pool = cached_pool(4);
    let first = vec![1u8; 256];
    let second = vec![2u8; 256];
    let first_ptr = first.as_ptr();
    pool.return_(first);
    pool.return_(second); // displaces `first` into the partitions
    let from_other_thread = thread::scope(|s| s.spawn(|| pool.rent(256)).join().unwrap());
    assert_eq!(from_other_thread.as_ptr(), first_ptr);
    assert_eq!(from_other_thread[0], 1);
    assert_eq!(
        pool.rent(256)[0],
        2,
        "this thread's cache still has `second`"
    );
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
