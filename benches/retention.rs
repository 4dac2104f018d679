//! Burst and retention: rent 10,000 buffers of mixed sizes (1 B to 64 KiB, log-uniform), then
//! return them all. Times the burst (arraypool against `vec![0; n]` and drop), then reports
//! what each pool holds afterwards against its documented bound:
//!
//! - shared pool: per bucket, `partitions × 32` (the partitions), plus
//!   `DEFAULT_THREAD_CACHE_BYTES` for the one live thread's magazines, with the environment
//!   knobs unset;
//! - `ArrayPool::create(1 << 20, 50)`: per bucket, 50.
//!
//! The held figures go to stdout and to `<criterion dir>/burst/retention.json`, which
//! `tools/bench_report.py` puts in `docs/benchmarks.md`. A binary of its own, so that the
//! shared pool holds nothing but this burst's buffers.
// `criterion_group!` defines a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

mod common;

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use arraypool::{ArrayPool, PoolStats};
use common::{config, criterion_dir};
use criterion::{criterion_group, criterion_main, Criterion};

const BURST: usize = 10_000;
const LARGEST: usize = 1 << 16;
const CUSTOM_PER_BUCKET: usize = 50;
/// The shared pool's buffers per partition per bucket (`ARRAYPOOL_SHARED_PER_PARTITION`'s
/// default).
const SHARED_PER_PARTITION: u64 = 32;

/// The burst's lengths: a fixed pseudo-random sequence (xorshift64), log-uniform over
/// 1 ..= 64 KiB, so every run and every contender rents the same mix.
fn burst_sizes() -> Vec<usize> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..BURST)
        .map(|_| {
            let bits = 4 + next() % 13; // 2^4 ..= 2^16
            1 + (next() % (1 << bits)) as usize
        })
        .collect()
}

fn burst(c: &mut Criterion) {
    let sizes = burst_sizes();
    let shared = ArrayPool::shared();
    let custom = ArrayPool::create(LARGEST, CUSTOM_PER_BUCKET);
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(BURST);

    let mut group = c.benchmark_group("burst");
    group.sample_size(10);
    for (name, pool) in [("arraypool_shared", shared), ("arraypool_create", &custom)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                held.extend(sizes.iter().map(|&n| pool.rent(black_box(n))));
                held.drain(..).for_each(|buffer| pool.return_(buffer));
            })
        });
    }
    group.bench_function("vec_zeroed", |b| {
        b.iter(|| {
            held.extend(sizes.iter().map(|&n| vec![0u8; black_box(n)]));
            held.drain(..).for_each(drop);
        })
    });
    group.finish();

    let partitions = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let shared_bound = bound(&sizes, partitions * SHARED_PER_PARTITION)
        + arraypool::DEFAULT_THREAD_CACHE_BYTES as u64;
    let custom_bound = bound(&sizes, CUSTOM_PER_BUCKET as u64);
    report(&[
        ("arraypool_shared", shared.stats(), shared_bound),
        ("arraypool_create", custom.stats(), custom_bound),
    ]);
}

/// The most bytes a pool keeping `per_bucket` buffers of each size can hold after this burst:
/// `per_bucket` buffers of every bucket the burst used.
fn bound(sizes: &[usize], per_bucket: u64) -> u64 {
    let mut buckets: Vec<u64> = sizes
        .iter()
        .map(|&n| n.max(arraypool::MIN_BUCKET_LEN).next_power_of_two() as u64)
        .collect();
    buckets.sort_unstable();
    buckets.dedup();
    buckets.iter().map(|len| len * per_bucket).sum()
}

fn report(rows: &[(&str, PoolStats, u64)]) {
    let mut json = String::from("[\n");
    for (i, (name, stats, bound)) in rows.iter().enumerate() {
        println!(
            "burst/{name}: held {} buffers, {} bytes (bound {bound} bytes, {:.1}%); \
             rented {}, allocated {}, dropped_full {}",
            stats.held_buffers,
            stats.held_bytes,
            100.0 * stats.held_bytes as f64 / *bound as f64,
            stats.rented,
            stats.allocated,
            stats.dropped_full,
        );
        let _ = writeln!(
            json,
            "  {{\"pool\": \"{name}\", \"held_buffers\": {}, \"held_bytes\": {}, \
             \"bound_bytes\": {bound}, \"rented\": {}, \"allocated\": {}, \
             \"returned\": {}, \"dropped_full\": {}, \"burst\": {BURST}}}{}",
            stats.held_buffers,
            stats.held_bytes,
            stats.rented,
            stats.allocated,
            stats.returned,
            stats.dropped_full,
            if i + 1 < rows.len() { "," } else { "" },
        );
        assert!(
            stats.held_bytes <= *bound,
            "{name} holds more than its documented bound"
        );
    }
    json.push(']');
    let dir = criterion_dir().join("burst");
    if let Err(err) = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("retention.json"), json))
    {
        eprintln!("could not write {}: {err}", dir.display());
    }
}

criterion_group! {
    name = benches;
    config = config().measurement_time(Duration::from_secs(2));
    targets = burst
}
criterion_main!(benches);
