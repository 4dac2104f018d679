//! The allocator baselines of `rent_return.rs` under mimalloc: `Vec::with_capacity`,
//! `vec![0; n]`, the thread-local floor and arraypool itself, all with mimalloc as the global
//! allocator (a binary of its own, since a binary has one). Groups `mimalloc_overhead` and
//! `mimalloc_real_cycle`.
// `criterion_group!` defines a `pub fn` that cannot carry a doc comment.
#![allow(missing_docs)]

mod common;

use common::{bench_pool_and_allocator, config, fit_group_to_size, Mode, SIZES};
use criterion::{criterion_group, criterion_main, Criterion};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn single_thread_mimalloc(c: &mut Criterion) {
    for mode in Mode::BOTH {
        let mut group = c.benchmark_group(format!("mimalloc_{}", mode.name()));
        for size in SIZES {
            fit_group_to_size(&mut group, size);
            match mode {
                Mode::Overhead => bench_pool_and_allocator::<_, false>(&mut group, size),
                Mode::RealCycle => bench_pool_and_allocator::<_, true>(&mut group, size),
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = single_thread_mimalloc
}
criterion_main!(benches);
