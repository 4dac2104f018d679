//! Single-thread rent+return for every size, arraypool against the glibc allocator, the
//! thread-local floor and the peer crates, in the same run; then nested rents (two, and four,
//! held at once). The mimalloc baselines are in `rent_return_mimalloc.rs` (a binary has one
//! global allocator).
//!
//! Groups: `overhead` (rent and return only), `real_cycle` (rent, write one byte per page and
//! the last byte, return), `nested_2` and `nested_4`, `custom_pool_hot_pair` (the hot pair for
//! the shared pool, a builder pool with a thread cache, `create()`, and a bare thread-local and
//! a bare locked stack). `tools/bench_report.py` turns the results into the tables and charts
//! of `docs/benchmarks.md`.
// `criterion_group!` defines a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

mod common;

use std::hint::black_box;
use std::sync::{Mutex, PoisonError};

use arraypool::ArrayPool;

use common::{
    bench_held, bench_pool_and_allocator, config, fit_group_to_size, floor_rent, floor_reset,
    floor_return, large_pool, pool_for, touch_uninit, use_buffer, zeropool, Mode, SIZES,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use opool::PoolAllocator;

/// opool's allocator for one size: a zeroed `Vec` of that length, so that the buffer can be
/// written as the real cycle does.
struct ZeroedVec(usize);

impl PoolAllocator<Vec<u8>> for ZeroedVec {
    fn allocate(&self) -> Vec<u8> {
        vec![0; self.0]
    }
}

/// How many buffers each peer pool keeps, where it asks: enough for the four held at once in
/// `nested_4`, as arraypool's partitions are.
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

/// Nested rents at depth 2 and 4: groups `nested_2` and `nested_4`.
fn nested(c: &mut Criterion) {
    nested_at_depth::<2>(c);
    nested_at_depth::<4>(c);
}

/// `DEPTH` buffers of the same size held at once, then all returned in the order rented, as a
/// pipe's segments are (.NET's pipe benchmarks): what a thread tier of one buffer per bucket
/// cannot serve alone. Every contender goes through the same loop (`bench_held`); the floor is
/// the bare thread-local stack doing the same `DEPTH` pops and `DEPTH` pushes.
fn nested_at_depth<const DEPTH: usize>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("nested_{DEPTH}"));
    for size in [4096, 65536] {
        let id = |name: &str| BenchmarkId::new(name, size);

        let pool = pool_for(size, large_pool());
        bench_held::<DEPTH, _, _>(
            &mut group,
            id("arraypool"),
            size,
            |n| pool.rent(n),
            |buffer| pool.return_(buffer),
        );

        floor_reset();
        bench_held::<DEPTH, _, _>(
            &mut group,
            id("tls_stack_floor"),
            size,
            floor_rent,
            floor_return,
        );
        floor_reset();

        bench_held::<DEPTH, _, _>(
            &mut group,
            id("vec_with_capacity"),
            size,
            Vec::<u8>::with_capacity,
            drop,
        );

        let zeropool = zeropool();
        bench_held::<DEPTH, _, _>(
            &mut group,
            id("zeropool_alloc_uninit"),
            size,
            |n| zeropool.alloc_uninit(n),
            drop,
        );

        let objects = object_pool::Pool::new(DEPTH, || vec![0u8; size]);
        bench_held::<DEPTH, _, _>(
            &mut group,
            id("object_pool"),
            size,
            |n| objects.pull(|| vec![0u8; n]).detach().1,
            |buffer| objects.attach(buffer),
        );

        let opool = opool::Pool::new_prefilled(PEER_POOL_CAPACITY, ZeroedVec(size));
        bench_held::<DEPTH, _, _>(&mut group, id("opool"), size, |_| opool.get(), drop);

        let bufpool = bufpool::BufPool::new();
        bench_held::<DEPTH, _, _>(
            &mut group,
            id("bufpool"),
            size,
            |n| bufpool.allocate_uninitialised(n),
            drop,
        );

        let bytes = byte_pool::BytePool::<Vec<u8>>::new();
        bench_held::<DEPTH, _, _>(&mut group, id("byte_pool"), size, |n| bytes.alloc(n), drop);
    }
    group.finish();
}

/// The hot pair (rent then return one 4 KiB buffer on one thread) for each kind of pool a user
/// can make, against the two floors: the bare thread-local stack (what a thread tier could
/// cost at least) and a bare `Mutex<Vec<Vec<u8>>>` stack doing pop + push (what a locked
/// partition could cost at least). Group `custom_pool_hot_pair`.
fn custom_pool_hot_pair(c: &mut Criterion) {
    const SIZE: usize = 4096;
    /// The custom pools' bound: the shared pool's default maximum length.
    const MAX_LEN: usize = 1 << 20;
    let mut group = c.benchmark_group("custom_pool_hot_pair");
    let id = |name: &str| BenchmarkId::new(name, SIZE);

    let shared = ArrayPool::shared();
    bench_held::<1, _, _>(
        &mut group,
        id("arraypool_shared"),
        SIZE,
        |n| shared.rent(n),
        |buffer| shared.return_(buffer),
    );

    let cached = ArrayPool::builder()
        .max_len(MAX_LEN)
        .thread_cache(true)
        .build()
        .expect("a valid configuration");
    bench_held::<1, _, _>(
        &mut group,
        id("arraypool_builder_thread_cache"),
        SIZE,
        |n| cached.rent(n),
        |buffer| cached.return_(buffer),
    );

    // Partitions only: every rent and return takes a partition's lock.
    let create = ArrayPool::create(MAX_LEN, 64);
    bench_held::<1, _, _>(
        &mut group,
        id("arraypool_create"),
        SIZE,
        |n| create.rent(n),
        |buffer| create.return_(buffer),
    );

    let locked: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    let lock = || locked.lock().unwrap_or_else(PoisonError::into_inner);
    bench_held::<1, _, _>(
        &mut group,
        id("mutex_stack_floor"),
        SIZE,
        |n| lock().pop().unwrap_or_else(|| vec![0; n]),
        |buffer| lock().push(buffer),
    );

    floor_reset();
    bench_held::<1, _, _>(
        &mut group,
        id("tls_stack_floor"),
        SIZE,
        floor_rent,
        floor_return,
    );
    floor_reset();
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_thread, nested, custom_pool_hot_pair
}
criterion_main!(benches);
