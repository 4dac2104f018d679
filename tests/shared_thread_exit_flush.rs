//! Thread exit moves a thread's cached buffers to the shared pool's partitions, counted
//! exactly. One test in this file, so that the process-wide shared pool's counters are its own
//! (`tests/concurrency.rs` checks the same behaviour by content, beside other tests).

use std::sync::{Arc, Barrier};
use std::thread;

use arraypool::ArrayPool;

#[test]
fn many_short_lived_threads_leave_their_buffers_reusable() {
    let pool = ArrayPool::shared();
    let (waves, width) = if cfg!(miri) { (3, 4) } else { (25, 8) };
    let threads = (waves * width) as u64;
    for _ in 0..waves {
        // All of a wave rent before any returns, so a wave holds `width` distinct buffers; each
        // thread's return lands in its own cache, and its exit must move it to the partitions.
        let all_rented = Arc::new(Barrier::new(width));
        let handles: Vec<_> = (0..width)
            .map(|_| {
                let all_rented = Arc::clone(&all_rented);
                thread::spawn(move || {
                    let buf = pool.rent(4096);
                    all_rented.wait();
                    pool.return_(buf);
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
    }
    let stats = pool.stats();
    assert_eq!(stats.rented, threads, "{stats:?}");
    assert_eq!(
        stats.allocated, width as u64,
        "only the first wave allocated: {stats:?}"
    );
    assert_eq!(stats.hits(), threads - width as u64, "{stats:?}");
    assert_eq!(
        (stats.returned, stats.dropped_full),
        (threads, 0),
        "{stats:?}"
    );
    assert_eq!(
        (stats.held_buffers, stats.held_bytes),
        (width as u64, width as u64 * 4096),
        "the last wave's buffers, none lost and none leaked: {stats:?}"
    );

    // This thread reuses all of them, and then the pool is empty.
    let reused: Vec<_> = (0..width).map(|_| pool.rent(4096)).collect();
    let stats = pool.stats();
    assert_eq!(
        (stats.hits(), stats.held_buffers),
        (threads, 0),
        "{stats:?}"
    );
    let fresh = pool.rent(4096);
    assert_eq!(pool.stats().allocated, width as u64 + 1);
    drop((reused, fresh));
}
