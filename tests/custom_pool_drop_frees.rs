//! dhat: dropping a custom pool frees every buffer it holds, including those in the thread
//! caches of threads that are still alive.
//!
//! One test per file: dhat is this binary's global allocator and counts every allocation in
//! the process, so nothing else may run beside it.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

use std::sync::{Arc, Barrier};
use std::thread;

#[path = "support/steady_state.rs"]
mod steady_state;

use arraypool::ArrayPool;

const THREADS: usize = 4;
const LENGTHS: [usize; 4] = [16, 3000, 70_000, 1 << 20];

fn thread_cache_pool() -> ArrayPool {
    ArrayPool::builder()
        .max_len(1 << 20)
        .per_bucket(3)
        .partitions(2)
        .thread_cache(true)
        .build()
        .unwrap()
}

/// Rents two of each length at once and returns them: one lands in this thread's cache, the
/// other in the partitions (or is dropped when they are full).
fn fill(pool: &ArrayPool) {
    for n in LENGTHS {
        let (a, b) = (pool.rent(n), pool.rent(n));
        pool.return_(a);
        pool.return_(b);
    }
}

#[test]
#[cfg_attr(miri, ignore = "dhat's allocator is not for Miri")]
fn dropping_a_thread_cache_pool_frees_what_live_threads_cached() {
    let _profiler = steady_state::profiler("custom_pool_drop_frees");

    // Everything the threads and the synchronisation need is allocated before the baseline:
    // the threads themselves, and their first use of a thread-cache pool (a throwaway one).
    let slot: Arc<std::sync::Mutex<Option<Arc<ArrayPool>>>> = Arc::default();
    let warmed = Arc::new(Barrier::new(THREADS + 1));
    let filled = Arc::new(Barrier::new(THREADS + 1));
    let pool_dropped = Arc::new(Barrier::new(THREADS + 1));
    let go = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let slot = Arc::clone(&slot);
            let [warmed, go, filled, pool_dropped] =
                [&warmed, &go, &filled, &pool_dropped].map(Arc::clone);
            thread::spawn(move || {
                fill(&thread_cache_pool());
                warmed.wait();
                go.wait();
                let pool = slot.lock().unwrap().clone().expect("the pool is there");
                fill(&pool);
                drop(pool);
                // Stay alive, with buffers in this thread's cache, while the pool is dropped.
                filled.wait();
                pool_dropped.wait();
            })
        })
        .collect();
    fill(&thread_cache_pool());
    warmed.wait();
    let baseline = dhat::HeapStats::get();

    let pool = Arc::new(thread_cache_pool());
    *slot.lock().unwrap() = Some(Arc::clone(&pool));
    go.wait();
    fill(&pool);
    filled.wait();
    slot.lock().unwrap().take();
    let pool = Arc::try_unwrap(pool).expect("the threads dropped their handles");
    let stats = pool.stats();
    // Each thread (and this one) cached one buffer of each length; the partitions kept up to
    // three more of each (fewer when a thread rented one back).
    let cached = ((THREADS + 1) * LENGTHS.len()) as u64;
    assert!(stats.held_buffers >= cached, "{stats:?}");
    assert!(
        stats.held_buffers <= cached + 3 * LENGTHS.len() as u64,
        "{stats:?}"
    );
    let held = dhat::HeapStats::get();
    dhat::assert!(held.curr_bytes as u64 >= baseline.curr_bytes as u64 + stats.held_bytes);

    drop(pool);
    let after = dhat::HeapStats::get();
    dhat::assert_eq!(after.curr_bytes, baseline.curr_bytes);
    dhat::assert_eq!(after.curr_blocks, baseline.curr_blocks);

    pool_dropped.wait();
    for handle in handles {
        handle.join().unwrap();
    }
}
