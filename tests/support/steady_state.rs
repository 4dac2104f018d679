//! The dhat harness of the zero-allocation tests: a profiler writing into the target
//! directory, and the before/after check of a warm loop.
//!
//! Each test binary that uses it installs dhat as its global allocator and holds one test: dhat
//! counts every allocation in the process, so nothing else may run beside it.
#![allow(dead_code)]

/// A testing-mode dhat profiler whose report goes to `<target tmpdir>/<name>.json`.
pub fn profiler(name: &str) -> dhat::Profiler {
    dhat::Profiler::builder()
        .testing()
        .file_name(format!("{}/{name}.json", env!("CARGO_TARGET_TMPDIR")))
        .build()
}

/// Runs `cycle(i)` for a few warm-up rounds, then `rounds` times while dhat counts, and
/// asserts that the counted rounds allocated nothing and left the heap as they found it.
pub fn assert_no_allocation_in_steady_state(
    what: &str,
    rounds: usize,
    mut cycle: impl FnMut(usize),
) {
    for i in 0..3 {
        cycle(i);
    }
    settle();
    let before = dhat::HeapStats::get();
    for i in 0..rounds {
        cycle(i);
    }
    let after = dhat::HeapStats::get();
    dhat::assert_eq!(
        after.total_blocks - before.total_blocks,
        0,
        "{} allocations: {}",
        after.total_blocks - before.total_blocks,
        what
    );
    dhat::assert_eq!(after.total_bytes - before.total_bytes, 0, "{}", what);
    dhat::assert_eq!(after.curr_bytes, before.curr_bytes, "{}", what);
}

/// Waits (at most a second) until no thread of the process has allocated for 10 ms.
///
/// dhat counts every thread's allocations, and the test's own thread is not the only one:
/// libtest's main thread spawns it and then blocks on a channel, and blocking allocates the
/// channel's waiting context (two blocks, four with more than one test thread). On a loaded
/// machine the main thread can get there milliseconds after the test has started counting;
/// that made these tests fail about one run in two when run as plain binaries on the 2-core
/// CI machine (and rarely under `cargo test`), at a random round, with 2 or 4 allocations.
fn settle() {
    let mut last = dhat::HeapStats::get().total_blocks;
    for _ in 0..100 {
        std::thread::sleep(std::time::Duration::from_millis(10));
        let now = dhat::HeapStats::get().total_blocks;
        if now == last {
            return;
        }
        last = now;
    }
}
