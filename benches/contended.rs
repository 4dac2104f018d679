//! Contention: each of `T` threads rents and returns 4 KiB buffers in a tight loop, started
//! together on a `Barrier`, timing only the concurrent part (sharded-slab's pattern). Each
//! thread does `iters` rent+return pairs; the figure is the slowest thread's time, so it is the
//! cost per operation *per thread*: with perfect scaling, 2 threads take as long as 1.
//! `tools/bench_report.py` reports the 2-thread ÷ 1-thread ratio.
// `criterion_group!` defines a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use arraypool::ArrayPool;
use common::{config, floor_rent, floor_return, zeropool};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

const SIZE: usize = 4096;

/// Runs `op` `iters` times on each of `threads` threads at once and returns the slowest
/// thread's time, measured from the barrier.
fn concurrently(threads: usize, iters: u64, op: impl Fn() + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    // One round before the barrier: thread start-up (caches, counter shards,
                    // the allocator's per-thread arena) is not what is measured.
                    op();
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op();
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().expect("a benchmark thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

fn contention(c: &mut Criterion) {
    let mut group = c.benchmark_group("contention");
    let shared = ArrayPool::shared();
    // A custom pool as `create` makes it: no thread cache, so every operation takes a
    // partition's lock; this shows what the per-CPU partitions alone give.
    let custom = ArrayPool::create(1 << 20, 64);
    let zeropool = zeropool();
    for threads in [1usize, 2] {
        group.bench_with_input(
            BenchmarkId::new("arraypool_shared", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    concurrently(t, iters, || {
                        shared.return_(black_box(shared.rent(black_box(SIZE))));
                    })
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("arraypool_create_no_thread_cache", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    concurrently(t, iters, || {
                        custom.return_(black_box(custom.rent(black_box(SIZE))));
                    })
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("tls_stack_floor", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    concurrently(t, iters, || {
                        floor_return(black_box(floor_rent(black_box(SIZE))));
                    })
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("vec_with_capacity", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    concurrently(t, iters, || {
                        drop(black_box(Vec::<u8>::with_capacity(black_box(SIZE))));
                    })
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("zeropool_alloc_uninit", threads),
            &threads,
            |b, &t| {
                b.iter_custom(|iters| {
                    concurrently(t, iters, || {
                        drop(black_box(zeropool.alloc_uninit(black_box(SIZE))));
                    })
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config().sample_size(10).measurement_time(Duration::from_millis(600));
    targets = contention
}
criterion_main!(benches);
