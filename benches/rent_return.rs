//! Single-thread rent+return for every size, arraypool against the glibc allocator, the
//! thread-local floor and the peer crates, in the same run; then nested rents (two held at
//! once). The mimalloc baselines are in `rent_return_mimalloc.rs` (a binary has one global
//! allocator).
//!
//! Groups: `overhead` (rent and return only), `real_cycle` (rent, write one byte per page and
//! the last byte, return), `nested`. `tools/bench_report.py` turns the results into the tables
//! and charts of `docs/benchmarks.md`.
// `criterion_group!` defines a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::sync::OnceLock;

use common::{
    bench_pool_and_allocator, config, fit_group_to_size, floor_rent, floor_reset, floor_return,
    large_pool, pool_for, touch_uninit, use_buffer, Mode, SIZES,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use opool::PoolAllocator;
use zeropool::ZeroPool;

/// One zeropool for the whole binary: zeropool binds each thread's cache to one pool instance
/// and clears it when another instance is used, so a pool per size would defeat its cache.
fn zeropool() -> &'static ZeroPool {
    static POOL: OnceLock<ZeroPool> = OnceLock::new();
    POOL.get_or_init(ZeroPool::new)
}

/// opool's allocator for one size: a zeroed `Vec` of that length, so that the buffer can be
/// written as the real cycle does.
struct ZeroedVec(usize);

impl PoolAllocator<Vec<u8>> for ZeroedVec {
    fn allocate(&self) -> Vec<u8> {
        vec![0; self.0]
    }
}

/// How many buffers each peer pool keeps, where it asks: enough for the two held at once in
/// `nested`, as arraypool's partitions are.
const PEER_POOL_CAPACITY: usize = 32;

fn single_thread(c: &mut Criterion) {
    for mode in Mode::BOTH {
        let mut group = c.benchmark_group(mode.name());
        for size in SIZES {
            fit_group_to_size(&mut group, size);
            match mode {
                Mode::Overhead => {
                    bench_pool_and_allocator::<_, false>(&mut group, size);
                    bench_peers::<false>(&mut group, size);
                }
                Mode::RealCycle => {
                    bench_pool_and_allocator::<_, true>(&mut group, size);
                    bench_peers::<true>(&mut group, size);
                }
            }
        }
        group.finish();
    }
}

fn bench_peers<const REAL: bool>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    size: usize,
) {
    let pool = pool_for(size, large_pool());
    group.bench_with_input(
        BenchmarkId::new("arraypool_rent_zeroed", size),
        &size,
        |b, &n| {
            b.iter(|| {
                let mut buffer = pool.rent_zeroed(black_box(n));
                use_buffer::<REAL>(&mut buffer);
                pool.return_(black_box(buffer));
            })
        },
    );

    let zeropool = zeropool();
    drop(zeropool.alloc_uninit(size));
    group.bench_with_input(
        BenchmarkId::new("zeropool_alloc_uninit", size),
        &size,
        |b, &n| {
            b.iter(|| {
                let mut buffer = zeropool.alloc_uninit(black_box(n));
                if REAL {
                    touch_uninit(buffer.as_uninit_mut());
                }
                drop(black_box(buffer));
            })
        },
    );
    group.bench_with_input(BenchmarkId::new("zeropool_alloc", size), &size, |b, &n| {
        b.iter(|| {
            let mut buffer = zeropool.alloc(black_box(n));
            use_buffer::<REAL>(&mut buffer);
            drop(black_box(buffer));
        })
    });

    let objects = object_pool::Pool::new(1, || vec![0u8; size]);
    group.bench_with_input(BenchmarkId::new("object_pool", size), &size, |b, &n| {
        b.iter(|| {
            let (objects, mut buffer) = objects.pull(|| vec![0u8; n]).detach();
            use_buffer::<REAL>(&mut buffer);
            objects.attach(black_box(buffer));
        })
    });
    drop(objects);

    let opool = opool::Pool::new(PEER_POOL_CAPACITY, ZeroedVec(size));
    drop(opool.get());
    group.bench_with_input(BenchmarkId::new("opool", size), &size, |b, _| {
        b.iter(|| {
            let mut buffer = opool.get();
            use_buffer::<REAL>(&mut buffer);
            drop(black_box(buffer));
        })
    });
    drop(opool);

    let bufpool = bufpool::BufPool::new();
    drop(bufpool.allocate_uninitialised(size));
    group.bench_with_input(BenchmarkId::new("bufpool", size), &size, |b, &n| {
        b.iter(|| {
            // bufpool's only way to a buffer of length n without filling it; its bytes are
            // never read here.
            let mut buffer = bufpool.allocate_uninitialised(black_box(n));
            use_buffer::<REAL>(&mut buffer);
            drop(black_box(buffer));
        })
    });
    drop(bufpool);

    let bytes = byte_pool::BytePool::<Vec<u8>>::new();
    drop(bytes.alloc(size));
    group.bench_with_input(BenchmarkId::new("byte_pool", size), &size, |b, &n| {
        b.iter(|| {
            let mut buffer = bytes.alloc(black_box(n));
            use_buffer::<REAL>(&mut buffer);
            drop(black_box(buffer));
        })
    });
}

/// Two buffers of the same size held at once, then both returned in the order rented, as a
/// pipe's segments are (.NET's pipe benchmarks).
fn nested(c: &mut Criterion) {
    let mut group = c.benchmark_group("nested");
    for size in [4096, 65536] {
        let pool = pool_for(size, large_pool());
        let (first, second) = (pool.rent(size), pool.rent(size));
        pool.return_(first);
        pool.return_(second);
        group.bench_with_input(BenchmarkId::new("arraypool", size), &size, |b, &n| {
            b.iter(|| {
                let first = pool.rent(black_box(n));
                let second = pool.rent(black_box(n));
                pool.return_(black_box(first));
                pool.return_(black_box(second));
            })
        });

        floor_reset();
        group.bench_with_input(BenchmarkId::new("tls_stack_floor", size), &size, |b, &n| {
            b.iter(|| {
                let first = floor_rent(black_box(n));
                let second = floor_rent(black_box(n));
                floor_return(black_box(first));
                floor_return(black_box(second));
            })
        });
        floor_reset();

        group.bench_with_input(
            BenchmarkId::new("vec_with_capacity", size),
            &size,
            |b, &n| {
                b.iter(|| {
                    let first: Vec<u8> = Vec::with_capacity(black_box(n));
                    let second: Vec<u8> = Vec::with_capacity(black_box(n));
                    drop(black_box(first));
                    drop(black_box(second));
                })
            },
        );

        let zeropool = zeropool();
        group.bench_with_input(
            BenchmarkId::new("zeropool_alloc_uninit", size),
            &size,
            |b, &n| {
                b.iter(|| {
                    let first = zeropool.alloc_uninit(black_box(n));
                    let second = zeropool.alloc_uninit(black_box(n));
                    drop(black_box(first));
                    drop(black_box(second));
                })
            },
        );

        let objects = object_pool::Pool::new(2, || vec![0u8; size]);
        group.bench_with_input(BenchmarkId::new("object_pool", size), &size, |b, &n| {
            b.iter(|| {
                let (objects, first) = objects.pull(|| vec![0u8; n]).detach();
                let (_, second) = objects.pull(|| vec![0u8; n]).detach();
                objects.attach(black_box(first));
                objects.attach(black_box(second));
            })
        });

        let opool = opool::Pool::new_prefilled(PEER_POOL_CAPACITY, ZeroedVec(size));
        group.bench_with_input(BenchmarkId::new("opool", size), &size, |b, _| {
            b.iter(|| {
                let first = opool.get();
                let second = opool.get();
                drop(black_box(first));
                drop(black_box(second));
            })
        });

        let bufpool = bufpool::BufPool::new();
        group.bench_with_input(BenchmarkId::new("bufpool", size), &size, |b, &n| {
            b.iter(|| {
                let first = bufpool.allocate_uninitialised(black_box(n));
                let second = bufpool.allocate_uninitialised(black_box(n));
                drop(black_box(first));
                drop(black_box(second));
            })
        });

        let bytes = byte_pool::BytePool::<Vec<u8>>::new();
        group.bench_with_input(BenchmarkId::new("byte_pool", size), &size, |b, &n| {
            b.iter(|| {
                let first = bytes.alloc(black_box(n));
                let second = bytes.alloc(black_box(n));
                drop(black_box(first));
                drop(black_box(second));
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_thread, nested
}
criterion_main!(benches);
