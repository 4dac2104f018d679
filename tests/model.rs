//! Model-based tests: random op sequences against custom pools, checked step by step against
//! the model in `support/model.rs` (which the fuzz target in `fuzz/` runs too).
//!
//! Run more cases with `PROPTEST_CASES=10000 cargo test --release --test model`; a fuzzer crash
//! replays with `MODEL_REPLAY=fuzz/artifacts/model/<file> cargo test --test model the_fuzz_corpus`.

#[path = "support/model.rs"]
mod model;

use model::{Config, Mutation, Op, Size, BUDGETS, MAX_LENS};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence};

/// Cases per property unless `PROPTEST_CASES` says otherwise: few under Miri, which runs the
/// same code some 1000× slower, and fewer in debug builds than in release (CI's model step).
const CASES: u32 = if cfg!(miri) {
    2
} else if cfg!(debug_assertions) {
    64
} else {
    256
};
/// Longest op sequence.
const MAX_OPS: usize = if cfg!(miri) { 16 } else { 150 };

fn proptest_config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .map(|cases| cases.parse().expect("PROPTEST_CASES is a number"))
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        // Miri's isolation forbids the file system; elsewhere keep the regressions file.
        failure_persistence: if cfg!(miri) {
            None
        } else {
            Some(Box::new(FileFailurePersistence::WithSource("regressions")))
        },
        ..ProptestConfig::default()
    }
}

fn size() -> impl Strategy<Value = Size> {
    prop_oneof![
        1 => Just(Size::Zero),
        2 => any::<u8>().prop_map(Size::Small),
        3 => (any::<u8>(), -1i8..=1).prop_map(|(bucket, delta)| Size::Edge { bucket, delta }),
        3 => any::<u16>().prop_map(Size::InRange),
        1 => any::<u16>().prop_map(Size::OverMax),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => Just(Mutation::AsRented),
        1 => any::<u16>().prop_map(Mutation::Truncate),
        1 => any::<u16>().prop_map(Mutation::TruncateAndDeinit),
        1 => any::<u16>().prop_map(Mutation::ExtendWithinCapacity),
        1 => Just(Mutation::GrowByPush),
        1 => any::<u16>().prop_map(Mutation::GrowExact),
        1 => any::<u16>().prop_map(Mutation::Shrink),
        1 => Just(Mutation::ShrinkToNothing),
    ]
}

/// Mostly the harness's own thread; workers 1 and 2 now and then.
fn thread() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)]
}

/// Lengths of the two smallest buckets (16 and 32 bytes), which every budget caches: a run of
/// them deepens magazines, refills them in batches and spills them into full partitions.
fn few_sizes() -> impl Strategy<Value = Size> {
    prop_oneof![
        3 => (0u8..16).prop_map(Size::Small),
        2 => (16u8..32).prop_map(Size::Small),
        1 => (0u8..2, -1i8..=0).prop_map(|(bucket, delta)| Size::Edge { bucket, delta }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    op_of(size().boxed(), 1)
}

/// Ops on lengths from `size`; `drains` weighs [`Op::Drain`] (a burst of rents of one size on
/// one thread, then as many returns) against 21 for the others.
fn op_of(size: BoxedStrategy<Size>, drains: u32) -> impl Strategy<Value = Op> {
    let size = || size.clone();
    prop_oneof![
        6 => (thread(), size(), any::<bool>())
            .prop_map(|(thread, size, zeroed)| Op::Rent { thread, size, zeroed: zeroed && size_is_small(size) }),
        1 => (thread(), size()).prop_map(|(thread, size)| Op::TryRent { thread, size }),
        1 => (thread(), any::<u8>()).prop_map(|(thread, which)| Op::TryRentAbsurd { thread, which }),
        3 => (any::<u8>(), any::<u16>(), any::<u16>())
            .prop_map(|(slot, start, len)| Op::Write { slot, start, len }),
        6 => (thread(), any::<u8>(), mutation())
            .prop_map(|(thread, slot, how)| Op::Return { thread, slot, how }),
        1 => (thread(), size(), any::<u16>())
            .prop_map(|(thread, capacity, fill)| Op::ReturnForeign { thread, capacity, fill }),
        1 => any::<u8>().prop_map(|slot| Op::Forget { slot }),
        drains => (thread(), size()).prop_map(|(thread, size)| Op::Drain { thread, size }),
        1 => thread().prop_map(|thread| Op::Stats { thread }),
        1 => (1u8..=2).prop_map(|thread| Op::Restart { thread }),
    ]
}

/// `rent_zeroed` hides what a reused buffer held, so most rents keep their contents visible.
fn size_is_small(size: Size) -> bool {
    matches!(size, Size::Small(n) if n % 4 == 0)
}

/// A pool with a thread tier (of any of the budgets) or without one.
fn config(thread_cache: bool) -> impl Strategy<Value = Config> {
    config_of(thread_cache, 1..=4)
}

fn config_of(
    thread_cache: bool,
    per_bucket: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Config> {
    (0..MAX_LENS.len(), per_bucket, 1usize..=3, 0..BUDGETS.len()).prop_map(
        move |(m, per_bucket, partitions, budget)| Config {
            max_len: MAX_LENS[m],
            per_bucket,
            partitions,
            thread_cache: thread_cache.then_some(BUDGETS[budget]),
        },
    )
}

proptest! {
    #![proptest_config(proptest_config())]

    /// A custom pool without a thread cache: every rent and return goes to the partitions.
    #[test]
    fn a_custom_pool_agrees_with_the_model(
        config in config(false),
        ops in vec(op(), 1..=MAX_OPS),
    ) {
        model::run(config, &ops);
    }

    /// With a thread tier: magazines under small and default budgets, on threads that exit
    /// (flushing their caches) and new threads in their place.
    #[test]
    fn a_thread_cached_pool_agrees_with_the_model(
        config in config(true),
        ops in vec(op(), 1..=MAX_OPS),
    ) {
        model::run(config, &ops);
    }

    /// With a thread tier, on the two smallest sizes only and up to 6 buffers per bucket: deep
    /// magazines, batch refills, moves down that span partitions or find them full.
    #[test]
    fn a_thread_cached_pool_under_load_agrees_with_the_model(
        config in config_of(true, 1..=6),
        ops in vec(op_of(few_sizes().boxed(), 4), 1..=MAX_OPS),
    ) {
        model::run(config, &ops);
    }

    /// Random bytes through the fuzz target's decoder, so the normal suite runs that path too.
    #[test]
    fn fuzzer_inputs_agree_with_the_model(data in vec(any::<u8>(), 0..=4 * MAX_OPS)) {
        model::run_bytes(&data);
    }
}

/// Every input in the committed fuzz corpus still passes. `MODEL_REPLAY=<file or directory>`
/// replays other inputs instead, such as a crash the fuzzer saved in `fuzz/artifacts/model/`.
#[test]
fn the_fuzz_corpus_replays_cleanly() {
    if cfg!(miri) {
        // Miri's isolation forbids reading the directory; the properties above run under it.
        return;
    }
    let corpus = match std::env::var_os("MODEL_REPLAY") {
        Some(path) => std::path::PathBuf::from(path),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/model"),
    };
    let paths: Vec<_> = if corpus.is_file() {
        vec![corpus.clone()]
    } else {
        let Ok(entries) = std::fs::read_dir(&corpus) else {
            panic!("no fuzz corpus at {}", corpus.display());
        };
        entries
            .map(|entry| entry.expect("readable corpus entry").path())
            .collect()
    };
    let mut replayed = 0;
    for path in paths {
        let data = std::fs::read(&path).expect("readable corpus file");
        let outcome = std::panic::catch_unwind(|| model::run_bytes(&data));
        assert!(outcome.is_ok(), "corpus input {} fails", path.display());
        replayed += 1;
    }
    assert!(
        replayed > 0,
        "the fuzz corpus at {} is empty",
        corpus.display()
    );
}

/// Each kind of return, one by one, on a pool small enough to overflow.
#[test]
fn every_kind_of_return_on_a_tiny_pool() {
    let mutations = [
        Mutation::AsRented,
        Mutation::Truncate(3),
        Mutation::TruncateAndDeinit(0),
        Mutation::ExtendWithinCapacity(u16::MAX),
        Mutation::GrowByPush,
        Mutation::GrowExact(7),
        Mutation::Shrink(5),
        Mutation::ShrinkToNothing,
    ];
    let budgets = std::iter::once(None).chain(BUDGETS.map(Some));
    for thread_cache in budgets {
        for how in mutations {
            let mut ops = Vec::new();
            for thread in 0..3 {
                ops.push(Op::Rent {
                    thread,
                    size: Size::Small(20),
                    zeroed: false,
                });
                ops.push(Op::Write {
                    slot: 0,
                    start: 0,
                    len: u16::MAX,
                });
            }
            for thread in [2, 1, 0] {
                ops.push(Op::Return {
                    thread,
                    slot: 0,
                    how,
                });
            }
            ops.push(Op::Drain {
                thread: 0,
                size: Size::Small(20),
            });
            let config = Config {
                max_len: 64,
                per_bucket: 1,
                partitions: 1,
                thread_cache,
            };
            model::run(config, &ops);
        }
    }
}
