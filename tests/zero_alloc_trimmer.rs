//! dhat: the trimmer's ticks (reading memory pressure, sighting and releasing idle buffers,
//! sleeping and waking) allocate nothing, so the zero-allocation promise holds with it running.
//!
//! One test per file: dhat is this binary's global allocator and counts every allocation in
//! the process, so nothing else may run beside it.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[path = "support/steady_state.rs"]
mod steady_state;

use std::time::{Duration, Instant};

use arraypool::ArrayPool;

/// Returns every buffer of `held` to the pool and waits until the trimmer has released them
/// all (after 40 ms and a few ticks, 10 ms apart). The returns take microseconds, so the
/// trimmer never releases part of them while they arrive, and each partition's slot vector
/// grows to hold all of them in the warm-up.
fn give_back_and_wait(pool: &ArrayPool, held: &mut Vec<Vec<u8>>) {
    let target = pool.stats().trimmed + held.len() as u64;
    for buffer in held.drain(..) {
        pool.return_(buffer);
    }
    let start = Instant::now();
    while pool.stats().trimmed < target {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the trimmer never came"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
#[cfg_attr(miri, ignore = "dhat's allocator is not for Miri")]
fn trimmer_ticks_allocate_nothing() {
    let _profiler = steady_state::profiler("zero_alloc_trimmer");
    let pool = ArrayPool::builder()
        .max_len(1 << 20)
        .per_bucket(1000)
        // One partition: with two, a return after this thread moved CPU would grow the other
        // partition's slot vector, which is warm-up but not the trimmer's.
        .partitions(1)
        .idle_timeout(Duration::from_millis(40))
        .build()
        .unwrap();
    let lengths = [16, 4096, 1 << 17]; // bucket sizes, so `vec!` makes pool-sized buffers
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(300);
    // Warm-up: the trimmer thread starts, and each partition's slot vector grows, once.
    for &len in &lengths {
        held.extend((0..100).map(|_| vec![7u8; len]));
    }
    give_back_and_wait(&pool, &mut held);

    let mut fresh: Vec<Vec<u8>> = lengths
        .iter()
        .flat_map(|&len| (0..100).map(move |_| vec![9u8; len]))
        .collect();
    let before = dhat::HeapStats::get();
    for _ in 0..3 {
        // Only the first round has buffers to return; the next two watch the trimmer tick
        // (and fall asleep) with nothing to do.
        held.append(&mut fresh);
        give_back_and_wait(&pool, &mut held);
        std::thread::sleep(Duration::from_millis(30));
    }
    let after = dhat::HeapStats::get();
    dhat::assert_eq!(
        after.total_blocks - before.total_blocks,
        0,
        "the trimmer allocated while it worked"
    );
    assert_eq!(pool.stats().trimmed, 600);
}
