//! Inspecting allocation counters with dhat around your own code:
//! `cargo run --release --example dhat_counters`.
//!
//! Three steps:
//! 1. make `dhat::Alloc` the global allocator (in a test, in a file of its own: a binary has
//!    only one global allocator, and dhat counts every allocation in the process);
//! 2. start a profiler; `testing()` mode writes no `dhat-heap.json` at exit (drop it to get
//!    the file, and view it at <https://nnethercote.github.io/dh_view/dh_view.html>);
//! 3. read `dhat::HeapStats::get()` before and after the code you care about.
//!
//! In a test, assert on the difference with `dhat::assert_eq!`, which saves a profile of what
//! did allocate when it fails; see `tests/zero_alloc_shared.rs`.

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

use std::hint::black_box;

use arraypool::ArrayPool;

/// What a piece of code did to the heap.
struct HeapDelta {
    /// Allocations made.
    blocks: u64,
    /// Bytes allocated, in total.
    bytes: u64,
    /// Change in the bytes live on the heap (what it kept).
    live_bytes: i64,
}

/// Runs `f` and returns its result with what it did to the heap.
fn measure<R>(f: impl FnOnce() -> R) -> (R, HeapDelta) {
    let before = dhat::HeapStats::get();
    let result = f();
    let after = dhat::HeapStats::get();
    let delta = HeapDelta {
        blocks: after.total_blocks - before.total_blocks,
        bytes: after.total_bytes - before.total_bytes,
        live_bytes: after.curr_bytes as i64 - before.curr_bytes as i64,
    };
    (result, delta)
}

fn report(label: &str, delta: &HeapDelta) {
    println!(
        "{label:<44}{:>12}{:>14}{:>14}",
        delta.blocks, delta.bytes, delta.live_bytes
    );
}

/// Your code: decode `count` messages of varying length into a fresh `Vec` each, and sum them.
fn decode_with_vecs(count: usize) -> u64 {
    (0..count)
        .map(|i| {
            let mut message = vec![0u8; 1000 + i % 3000];
            message[0] = i as u8;
            black_box(&mut message);
            u64::from(message[0])
        })
        .sum()
}

/// The same with a rented buffer per message.
fn decode_with_pool(pool: &ArrayPool, count: usize) -> u64 {
    (0..count)
        .map(|i| {
            let mut message = pool.rent(1000 + i % 3000);
            message[0] = i as u8;
            black_box(&mut message);
            let first = u64::from(message[0]);
            pool.return_(message);
            first
        })
        .sum()
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let pool = ArrayPool::shared();
    let messages = 100_000;

    println!(
        "{:<44}{:>12}{:>14}{:>14}",
        "", "allocations", "bytes", "kept (bytes)"
    );
    let (plain, delta) = measure(|| decode_with_vecs(messages));
    report("100,000 messages, a fresh Vec each", &delta);

    let (cold, delta) = measure(|| decode_with_pool(pool, messages));
    report("100,000 messages, pooled (first run)", &delta);

    let (warm, delta) = measure(|| decode_with_pool(pool, messages));
    report("100,000 messages, pooled (warm)", &delta);
    assert_eq!(delta.blocks, 0, "a warm pool allocates nothing");
    assert_eq!(plain, cold);
    assert_eq!(cold, warm);

    // The first pooled run allocated the buffers the pool now keeps; its own counters agree.
    let stats = pool.stats();
    println!(
        "\nThe pool's own view: {} rents, {} allocations, {} bytes held.",
        stats.rented, stats.allocated, stats.held_bytes
    );
}
