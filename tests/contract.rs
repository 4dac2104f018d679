//! The rent/return contract, case by case, for the shared pool and for custom pools.
//!
//! Every row of the contract table in the crate docs has a test here, and so does every bad
//! input: each gets its documented outcome (a panic naming the problem, an `Err`, or a counted
//! drop). The shared pool is process-wide and the tests of this file run in parallel, so its
//! tests check only what a single test can attribute to itself (lengths, capacities, contents,
//! pointers); exact counts are checked on custom pools.

use std::mem::MaybeUninit;

use arraypool::{
    ArrayPool, BuildError, PoolStats, MAX_PARTITIONS, MAX_PER_BUCKET, MAX_POOLED_LEN,
    MIN_BUCKET_LEN,
};

/// The pools every case runs against: the shared pool, a custom pool without a thread cache and
/// one with, each with a maximum small enough that Miri can walk every bucket.
fn pools() -> Vec<(&'static str, PoolRef)> {
    vec![
        ("shared", PoolRef::Shared),
        (
            "create(4096, 3)",
            PoolRef::Owned(ArrayPool::create(4096, 3)),
        ),
        (
            "builder thread_cache",
            PoolRef::Owned(
                ArrayPool::builder()
                    .max_len(1 << 16)
                    .per_bucket(2)
                    .thread_cache(true)
                    .build()
                    .unwrap(),
            ),
        ),
    ]
}

enum PoolRef {
    Shared,
    Owned(ArrayPool),
}

impl std::ops::Deref for PoolRef {
    type Target = ArrayPool;
    fn deref(&self) -> &ArrayPool {
        match self {
            Self::Shared => ArrayPool::shared(),
            Self::Owned(pool) => pool,
        }
    }
}

/// `(n, expected capacity)` at every bucket edge of a pool whose maximum is `max_len`:
/// 1, 15, 16, 17, each 2^k and 2^k + 1, `max_len` and `max_len + 1` (which is over the maximum
/// and so gets exactly `n`).
fn bucket_edges(max_len: usize) -> Vec<(usize, usize)> {
    let mut edges: Vec<_> = [(1, 16), (15, 16), (16, 16), (17, 32)]
        .into_iter()
        .filter(|&(n, _)| n <= max_len)
        .collect();
    let mut k = MIN_BUCKET_LEN;
    while k <= max_len {
        edges.push((k, k));
        if k < max_len {
            edges.push((k + 1, 2 * k));
        }
        k *= 2;
    }
    edges.push((max_len, max_len));
    edges.push((max_len + 1, max_len + 1));
    if cfg!(miri) {
        // Miri fills a fresh buffer byte by byte: keep to small buckets (and over-max rents,
        // which the allocator zeroes) so that a run takes seconds, not hours.
        edges.retain(|&(n, _)| n <= 4096 || n > max_len);
    }
    edges
}

fn assert_all_zero(buf: &[u8], what: &str) {
    if let Some(i) = buf.iter().position(|&b| b != 0) {
        panic!("{what}: byte {i} of {} is {:#x}, not 0", buf.len(), buf[i]);
    }
}

// ----- rent: lengths and capacities -------------------------------------------------------

#[test]
fn rent_gives_len_n_and_the_bucket_capacity_at_every_bucket_edge() {
    for (name, pool) in pools() {
        for (n, capacity) in bucket_edges(pool.max_len()) {
            let buf = pool.rent(n);
            assert_eq!(
                (buf.len(), buf.capacity()),
                (n, capacity),
                "{name}: rent({n}), max_len {}",
                pool.max_len()
            );
            pool.return_(buf);
            // The second time the buffer comes from the pool: same capacity, same length.
            let again = pool.rent(n);
            assert_eq!(
                (again.len(), again.capacity()),
                (n, capacity),
                "{name}: n = {n} again"
            );
            pool.return_(again);
        }
    }
}

#[test]
fn rent_zeroed_and_try_rent_follow_the_same_size_rules() {
    for (name, pool) in pools() {
        for (n, capacity) in bucket_edges(pool.max_len()) {
            let zeroed = pool.rent_zeroed(n);
            assert_eq!(
                (zeroed.len(), zeroed.capacity()),
                (n, capacity),
                "{name}: rent_zeroed({n})"
            );
            pool.return_(zeroed);
            if cfg!(miri) && n > 4096 {
                continue; // a fresh try_rent zero-fills byte by byte under Miri: too slow
            }
            let tried = pool.try_rent(n).expect("a small size is always available");
            assert_eq!(
                (tried.len(), tried.capacity()),
                (n, capacity),
                "{name}: try_rent({n})"
            );
            pool.return_(tried);
        }
    }
}

#[test]
fn custom_pools_of_every_small_max_len_size_their_buckets_exactly() {
    for max_len in [16, 32, 128, 1024] {
        let pool = ArrayPool::create(max_len, 1);
        assert_eq!(pool.max_len(), max_len);
        for (n, capacity) in bucket_edges(max_len) {
            let buf = pool.rent(n);
            assert_eq!(
                (buf.len(), buf.capacity()),
                (n, capacity),
                "max_len {max_len}, n {n}"
            );
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "a 1 MiB zero-fill takes minutes under Miri")]
fn the_shared_pool_serves_up_to_its_max_len_from_buckets() {
    let pool = ArrayPool::shared();
    let max_len = pool.max_len();
    assert!(max_len.is_power_of_two() && max_len >= MIN_BUCKET_LEN);
    let top = pool.rent(max_len);
    assert_eq!(top.capacity(), max_len);
    let past = pool.rent(max_len + 1);
    assert_eq!((past.len(), past.capacity()), (max_len + 1, max_len + 1));
    assert_all_zero(&past, "a fresh over-max buffer");
    pool.return_(top);
    pool.return_(past);
}

#[test]
fn rent_of_zero_is_an_empty_vec_and_is_not_counted() {
    for (name, pool) in pools() {
        let empty = pool.rent(0);
        assert_eq!((empty.len(), empty.capacity()), (0, 0), "{name}: rent(0)");
        let zeroed = pool.rent_zeroed(0);
        assert_eq!(zeroed.capacity(), 0, "{name}: rent_zeroed(0)");
        let tried = pool.try_rent(0).unwrap();
        assert_eq!(tried.capacity(), 0, "{name}: try_rent(0)");
        pool.return_(empty);
    }
    let pool = ArrayPool::create(64, 1);
    let _ = (pool.rent(0), pool.rent_zeroed(0), pool.try_rent(0));
    pool.return_(Vec::new());
    assert_eq!(pool.stats(), PoolStats::default(), "nothing happened");
}

#[test]
fn rent_over_max_len_is_exact_zeroed_and_counted() {
    let pool = ArrayPool::create(1024, 4);
    let over = pool.rent(1025);
    assert_eq!((over.len(), over.capacity()), (1025, 1025));
    assert_all_zero(&over, "rent(1025)");
    let zeroed = pool.rent_zeroed(3000);
    assert_eq!((zeroed.len(), zeroed.capacity()), (3000, 3000));
    assert_all_zero(&zeroed, "rent_zeroed(3000)");
    let tried = pool.try_rent(5000).unwrap();
    assert_eq!((tried.len(), tried.capacity()), (5000, 5000));
    assert_all_zero(&tried, "try_rent(5000)");

    let stats = pool.stats();
    assert_eq!(stats.rented, 3, "{stats:?}");
    assert_eq!(stats.allocated_over_max, 3, "{stats:?}");
    assert_eq!(stats.allocated, 0, "{stats:?}");
    assert_eq!(stats.hits(), 0, "{stats:?}");

    // On return they are not bucket sizes of this pool: freed and counted.
    for buf in [over, zeroed, tried] {
        pool.return_(buf);
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.dropped_foreign, stats.returned, stats.held_buffers),
        (3, 0, 0)
    );
}

// ----- impossible sizes -------------------------------------------------------------------

#[test]
#[should_panic(expected = "capacity overflow")]
fn rent_of_usize_max_panics_with_capacity_overflow_on_the_shared_pool() {
    let _ = ArrayPool::shared().rent(usize::MAX);
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn rent_of_usize_max_panics_with_capacity_overflow_on_a_custom_pool() {
    let _ = ArrayPool::create(1024, 1).rent(usize::MAX);
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn rent_just_above_isize_max_panics_with_capacity_overflow() {
    let _ = ArrayPool::create(1024, 1).rent(isize::MAX as usize + 1);
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn rent_zeroed_of_usize_max_panics_with_capacity_overflow() {
    let _ = ArrayPool::shared().rent_zeroed(usize::MAX);
}

#[test]
fn try_rent_of_impossible_sizes_is_an_error_and_counts_nothing() {
    for (name, pool) in pools() {
        assert!(pool.try_rent(usize::MAX).is_err(), "{name}: usize::MAX");
        assert!(
            pool.try_rent(isize::MAX as usize + 1).is_err(),
            "{name}: isize::MAX + 1"
        );
    }
    let pool = ArrayPool::create(1024, 1);
    assert!(pool.try_rent(usize::MAX).is_err());
    assert!(pool.try_rent(isize::MAX as usize + 1).is_err());
    assert_eq!(pool.stats(), PoolStats::default());
}

/// 2^62 bytes fits `isize` but no machine has it: the allocator says no, and `try_rent` must
/// pass that on as an `Err` rather than abort the process as `Vec::with_capacity` would.
#[test]
#[cfg_attr(
    miri,
    ignore = "Miri stops at an allocation this large instead of failing it"
)]
fn try_rent_of_an_absurd_size_within_isize_is_an_error_not_an_abort() {
    for (name, pool) in pools() {
        assert!(pool.try_rent(1 << 62).is_err(), "{name}");
    }
    let pool = ArrayPool::create(1024, 1);
    assert!(pool.try_rent(1 << 62).is_err());
    assert_eq!(pool.stats().allocated_over_max, 0, "nothing was allocated");
}

// ----- contents ---------------------------------------------------------------------------

#[test]
fn fresh_buffers_read_as_zero() {
    let pool = ArrayPool::create(1 << 16, 2);
    let lengths: &[usize] = if cfg!(miri) {
        &[1, 16, 17, 1000, 4096, 4097]
    } else {
        &[1, 16, 17, 1000, 4096, 1 << 16, (1 << 16) + 1]
    };
    for &n in lengths {
        assert_all_zero(&pool.rent(n), &format!("rent({n})"));
        assert_all_zero(&pool.try_rent(n).unwrap(), &format!("try_rent({n})"));
    }
}

#[test]
fn rent_zeroed_zeroes_a_dirty_buffer() {
    for (name, pool) in pools() {
        let dirty = vec![0xff; 4096];
        let ptr = dirty.as_ptr();
        pool.return_(dirty);
        let buf = pool.rent_zeroed(4000);
        assert_eq!(buf.as_ptr(), ptr, "{name}: the dirty buffer came back");
        assert_eq!(buf.len(), 4000);
        assert_all_zero(&buf, name);
        pool.return_(buf);

        // Shorter than the dirty length, and longer than it: zero either way.
        let mut dirty = vec![0xee; 2048];
        dirty.truncate(100);
        pool.return_(dirty);
        let short = pool.rent_zeroed(50);
        assert_all_zero(&short, name);
        pool.return_(short);
        pool.return_(vec![0xdd; 1024]);
        let long = pool.rent_zeroed(1024);
        assert_all_zero(&long, name);
    }
}

/// A buffer comes back with a shorter length and spare capacity that safe code made dirty, or
/// even uninitialized (`MaybeUninit::uninit()` is a safe write). The next renter must see the
/// returned length's bytes (an earlier renter's data, as documented) and zeros after them, and
/// never a byte the pool could not prove initialized (Miri checks that last part).
#[test]
fn bytes_beyond_the_returned_len_come_back_zero() {
    for (name, pool) in pools() {
        let mut buf = pool.rent(200); // capacity 256
        buf.fill(0xab);
        buf.truncate(10);
        for (i, slot) in buf.spare_capacity_mut().iter_mut().enumerate() {
            if i % 2 == 0 {
                slot.write(0xcd);
            } else {
                *slot = MaybeUninit::uninit();
            }
        }
        let ptr = buf.as_ptr();
        pool.return_(buf);

        let again = pool.rent(256);
        assert_eq!(again.as_ptr(), ptr, "{name}: the same buffer came back");
        assert_eq!(
            &again[..10],
            &[0xab; 10],
            "{name}: the returned length is kept"
        );
        assert_all_zero(&again[10..], name);
        pool.return_(again);
    }
}

#[test]
fn a_buffer_returned_empty_reads_as_zero_however_it_was_written() {
    let pool = ArrayPool::create(4096, 1);
    let mut buf = pool.rent(4096);
    buf.fill(0x5a);
    buf.clear();
    pool.return_(buf);
    assert_all_zero(&pool.rent(4096), "cleared before return");

    let mut never_written = Vec::with_capacity(4096);
    never_written.spare_capacity_mut()[7].write(0x77);
    pool.return_(never_written);
    assert_all_zero(&pool.rent(3000), "Vec::with_capacity(4096)");
}

#[test]
fn try_rent_of_a_pooled_buffer_follows_the_contents_rule() {
    let pool = ArrayPool::create(1024, 1);
    let mut buf = vec![0x11; 1024];
    buf.truncate(4);
    buf.spare_capacity_mut()[0].write(0x22);
    pool.return_(buf);
    let again = pool.try_rent(1000).unwrap();
    assert_eq!(&again[..4], &[0x11; 4]);
    assert_all_zero(&again[4..], "try_rent");
}

// ----- return -----------------------------------------------------------------------------

#[test]
fn return_of_capacity_zero_is_a_no_op() {
    let pool = ArrayPool::create(4096, 2);
    pool.return_(Vec::new());
    pool.return_(Vec::with_capacity(0));
    assert_eq!(pool.stats(), PoolStats::default());
    ArrayPool::shared().return_(Vec::new());
}

/// Each buffer here has a capacity that is not one of the pool's bucket sizes; each is freed and
/// counted once, and none is kept.
#[test]
fn return_of_a_foreign_capacity_drops_and_counts_it() {
    let pool = ArrayPool::create(4096, 8);

    let mut grown = pool.rent(16);
    grown.extend_from_slice(&[1; 100]); // past 2 × 16, so the new capacity is what was needed
    let mut shrunk = pool.rent(4096);
    shrunk.truncate(1000);
    shrunk.shrink_to(1000);
    let mut doubled_past_max = pool.rent(4096);
    doubled_past_max.push(1); // 4096 → 8192: a power of two, but over this pool's maximum

    let foreign = vec![
        ("with_capacity(1000)", Vec::with_capacity(1000)),
        ("with_capacity(4097)", Vec::with_capacity(4097)),
        ("with_capacity(15)", Vec::with_capacity(15)),
        ("with_capacity(8)", Vec::with_capacity(8)),
        ("over max: 8192", vec![0; 8192]),
        ("over max: 5000", pool.rent(5000)),
        ("grown past its bucket", grown),
        ("shrunk with shrink_to", shrunk),
        ("doubled past max_len", doubled_past_max),
    ];
    let stats_before = pool.stats();
    for (i, (what, buf)) in foreign.into_iter().enumerate() {
        let capacity = buf.capacity();
        assert!(
            !(capacity.is_power_of_two() && (16..=4096).contains(&capacity)),
            "{what}: the premise is a non-bucket capacity, got {capacity}"
        );
        pool.return_(buf);
        let stats = pool.stats();
        assert_eq!(
            stats.dropped_foreign,
            stats_before.dropped_foreign + i as u64 + 1,
            "{what}"
        );
        assert_eq!((stats.returned, stats.held_buffers), (0, 0), "{what}");
    }
    assert_eq!(pool.stats().dropped_full, 0);
}

#[test]
fn a_buffer_grown_by_doubling_into_another_bucket_is_kept() {
    let pool = ArrayPool::create(4096, 2);
    let mut buf = pool.rent(64);
    buf.push(1); // 64 → 128: a bucket size of this pool
    assert_eq!(buf.capacity(), 128);
    let ptr = buf.as_ptr();
    pool.return_(buf);
    assert_eq!(
        (pool.stats().returned, pool.stats().dropped_foreign),
        (1, 0)
    );
    let again = pool.rent(100);
    assert_eq!(again.as_ptr(), ptr, "kept in the 128-byte bucket");
}

#[test]
fn vec_with_capacity_4096_is_accepted() {
    for (name, pool) in pools() {
        let buf: Vec<u8> = Vec::with_capacity(4096);
        let ptr = buf.as_ptr();
        pool.return_(buf);
        let again = pool.rent(4096);
        assert_eq!(again.as_ptr(), ptr, "{name}");
        assert_eq!((again.len(), again.capacity()), (4096, 4096));
        assert_all_zero(&again, name);
        pool.return_(again);
    }
    let pool = ArrayPool::create(4096, 1);
    pool.return_(Vec::with_capacity(4096));
    let stats = pool.stats();
    assert_eq!(
        (stats.returned, stats.held_buffers, stats.held_bytes),
        (1, 1, 4096)
    );
}

#[test]
fn a_buffer_from_another_pool_is_accepted_when_its_capacity_fits() {
    let small = ArrayPool::create(4096, 1);
    let large = ArrayPool::create(1 << 16, 1);
    let buf = small.rent(3000);
    let ptr = buf.as_ptr();
    large.return_(buf);
    assert_eq!(large.stats().returned, 1);
    let again = large.rent(4096);
    assert_eq!(again.as_ptr(), ptr);

    // The other way, it is over the smaller pool's maximum: dropped, counted.
    small.return_(large.rent(8192));
    assert_eq!(small.stats().dropped_foreign, 1);

    // Between the shared pool and a custom one.
    let shared_buf = ArrayPool::shared().rent(1000);
    small.return_(shared_buf);
    assert_eq!(small.stats().returned, 1);
}

#[test]
fn return_never_panics_whatever_it_is_given() {
    let pool = ArrayPool::create(16, 1);
    for capacity in [0, 1, 15, 16, 17, 31, 32, 64, 1000, 4096] {
        pool.return_(Vec::with_capacity(capacity));
        ArrayPool::shared().return_(Vec::with_capacity(capacity));
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.returned, stats.dropped_full),
        (1, 0),
        "only one 16 fits"
    );
    assert_eq!(stats.dropped_foreign, 8);
}

// ----- create and the builder -------------------------------------------------------------

#[test]
#[should_panic(expected = "`max_len`")]
fn create_with_max_len_zero_panics_naming_max_len() {
    let _ = ArrayPool::create(0, 1);
}

#[test]
#[should_panic(expected = "`per_bucket`")]
fn create_with_per_bucket_zero_panics_naming_per_bucket() {
    let _ = ArrayPool::create(1024, 0);
}

/// Regression (review B2): `create(4096, 1 << 40)` used to succeed and then abort the process
/// at the first `return_` (reserving 13 TB of slot vectors); `usize::MAX` panicked there with
/// "capacity overflow", though `return_` promises never to panic. The bound is now refused up
/// front, naming the argument.
#[test]
#[should_panic(expected = "`per_bucket` must be at most")]
fn create_with_a_per_bucket_beyond_any_memory_panics_naming_per_bucket() {
    let pool = ArrayPool::create(4096, 1 << 40);
    pool.return_(vec![0; 4096]);
}

#[test]
#[should_panic(expected = "`per_bucket` must be at most")]
fn create_with_per_bucket_usize_max_panics_naming_per_bucket() {
    let pool = ArrayPool::create(4096, usize::MAX);
    pool.return_(vec![0; 4096]);
}

/// The largest bounds the builder accepts cost memory only for what the pool holds: returns
/// into such a pool neither panic nor reserve slots for buffers that never came.
#[test]
fn a_pool_at_the_largest_bounds_returns_without_panicking() {
    // Under Miri, 64 partitions: summing 1024 partitions' counts for `stats()` takes Miri two
    // minutes, and the largest partition count is checked natively.
    let partitions = if cfg!(miri) { 64 } else { MAX_PARTITIONS };
    let pool = ArrayPool::builder()
        .max_len(4096)
        .per_bucket(MAX_PER_BUCKET)
        .partitions(partitions)
        .build()
        .unwrap();
    let count = if cfg!(miri) { 10 } else { 3000 };
    for _ in 0..count {
        pool.return_(Vec::with_capacity(4096));
    }
    let stats = pool.stats();
    assert_eq!((stats.returned, stats.held_buffers), (count, count));
    assert!(format!("{pool:?}").contains(&format!("per_bucket: {MAX_PER_BUCKET}")));
}

#[test]
fn create_accepts_the_largest_per_bucket() {
    let pool = ArrayPool::create(64, MAX_PER_BUCKET);
    pool.return_(vec![0; 64]);
    assert_eq!(pool.stats().held_buffers, 1);
}

#[test]
fn create_rounds_max_len_up_to_a_power_of_two_of_at_least_16() {
    for (asked, got) in [
        (1, 16),
        (15, 16),
        (16, 16),
        (17, 32),
        (100, 128),
        (4096, 4096),
        (4097, 8192),
        (MAX_POOLED_LEN - 1, MAX_POOLED_LEN),
        (MAX_POOLED_LEN, MAX_POOLED_LEN),
    ] {
        assert_eq!(
            ArrayPool::create(asked, 1).max_len(),
            got,
            "create({asked}, 1)"
        );
        let built = ArrayPool::builder().max_len(asked).build().unwrap();
        assert_eq!(built.max_len(), got, "builder().max_len({asked})");
    }
}

#[test]
fn create_clamps_max_len_above_max_pooled_len() {
    for asked in [MAX_POOLED_LEN + 1, MAX_POOLED_LEN * 2, usize::MAX] {
        let pool = ArrayPool::create(asked, 1);
        assert_eq!(pool.max_len(), MAX_POOLED_LEN, "create({asked}, 1)");
    }
    if !cfg!(miri) {
        // Lengths above the cap are served exactly, like any over-max rent (1 GiB of zeros
        // from calloc is untouched pages here, but real memory under Miri).
        let pool = ArrayPool::create(usize::MAX, 1);
        let over = pool.rent(MAX_POOLED_LEN + 1);
        assert_eq!(over.capacity(), MAX_POOLED_LEN + 1);
        assert_eq!(pool.stats().allocated_over_max, 1);
    }
}

#[test]
fn builder_refuses_every_bad_option_naming_it() {
    let cases = [
        (
            ArrayPool::builder().max_len(0).build(),
            BuildError::ZeroMaxLen,
            "max_len",
        ),
        (
            ArrayPool::builder().max_len(MAX_POOLED_LEN + 1).build(),
            BuildError::MaxLenTooLarge {
                max_len: MAX_POOLED_LEN + 1,
            },
            "max_len",
        ),
        (
            ArrayPool::builder().max_len(usize::MAX).build(),
            BuildError::MaxLenTooLarge {
                max_len: usize::MAX,
            },
            "max_len",
        ),
        (
            ArrayPool::builder().per_bucket(0).build(),
            BuildError::ZeroPerBucket,
            "per_bucket",
        ),
        (
            ArrayPool::builder().per_bucket(MAX_PER_BUCKET + 1).build(),
            BuildError::PerBucketTooLarge {
                per_bucket: MAX_PER_BUCKET + 1,
            },
            "per_bucket",
        ),
        (
            ArrayPool::builder().per_bucket(usize::MAX).build(),
            BuildError::PerBucketTooLarge {
                per_bucket: usize::MAX,
            },
            "per_bucket",
        ),
        (
            ArrayPool::builder().partitions(0).build(),
            BuildError::ZeroPartitions,
            "partitions",
        ),
        (
            ArrayPool::builder().partitions(MAX_PARTITIONS + 1).build(),
            BuildError::TooManyPartitions {
                partitions: MAX_PARTITIONS + 1,
            },
            "partitions",
        ),
        (
            ArrayPool::builder()
                .partitions(0)
                .thread_cache(true)
                .build(),
            BuildError::ZeroPartitions,
            "partitions",
        ),
    ];
    for (result, expected, option) in cases {
        let err = result.expect_err(option);
        assert_eq!(err, expected);
        let message = err.to_string();
        assert!(message.contains(option), "{message:?} names {option}");
        let _: &dyn std::error::Error = &err;
    }
}

#[test]
fn builder_accepts_the_edges_of_every_option() {
    let pool = ArrayPool::builder()
        .max_len(MAX_POOLED_LEN)
        .per_bucket(1)
        .partitions(1)
        .build()
        .unwrap();
    assert_eq!(pool.max_len(), MAX_POOLED_LEN);
    // More partitions than buffers: clamped, the bound still holds.
    let pool = ArrayPool::builder()
        .max_len(64)
        .per_bucket(2)
        .partitions(64)
        .build()
        .unwrap();
    for _ in 0..5 {
        pool.return_(Vec::with_capacity(64));
    }
    assert_eq!(pool.stats().held_buffers, 2);
}

// ----- Debug and thread safety ------------------------------------------------------------

#[test]
fn debug_formats_a_pool_and_names_its_max_len() {
    let pool = ArrayPool::create(100, 3);
    let text = format!("{pool:?}");
    assert!(text.starts_with("ArrayPool"), "{text}");
    assert!(text.contains("max_len: 128"), "{text}");
    let shared = format!("{:?}", ArrayPool::shared());
    assert!(
        shared.contains(&format!("max_len: {}", ArrayPool::shared().max_len())),
        "{shared}"
    );
    let builder = format!("{:?}", ArrayPool::builder().max_len(77));
    assert!(builder.contains("max_len: 77"), "{builder}");
}

/// `Debug` takes no lock, so it may run while the pool is in the middle of a slow path on the
/// same thread (here: from inside its own listener).
#[test]
fn debug_works_from_inside_a_listener() {
    use std::sync::{Arc, Mutex};
    let text = Arc::new(Mutex::new(String::new()));
    let pool = Arc::new(ArrayPool::create(64, 1));
    let (sink, weak) = (Arc::clone(&text), Arc::downgrade(&pool));
    pool.add_listener(move |_| {
        if let Some(pool) = weak.upgrade() {
            *sink.lock().unwrap() = format!("{pool:?}");
        }
    });
    drop(pool.rent(1000));
    assert!(text.lock().unwrap().contains("max_len: 64"));
}

/// `ArrayPool` is `Send + Sync`: checked at compile time.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ArrayPool>();
    assert_send_sync::<PoolStats>();
    assert_send_sync::<BuildError>();
    assert_send_sync::<arraypool::PoolEvent>();
    assert_send_sync::<arraypool::ArrayPoolBuilder>();
    assert_send_sync::<arraypool::ListenerId>();
};
