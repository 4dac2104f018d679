//! `rent_with_capacity`: empty buffers with a bucket's capacity, at every bucket edge, over
//! the maximum and at zero; appends within the capacity keep the bucket.

use std::io::Write;

use arraypool::{AllocReason, ArrayPool, PoolEvent, MIN_BUCKET_LEN};
use std::sync::{Arc, Mutex};

fn pool(max_len: usize) -> ArrayPool {
    ArrayPool::builder()
        .max_len(max_len)
        .per_bucket(4)
        .partitions(1)
        .idle_timeout(None)
        .build()
        .unwrap()
}

#[test]
fn the_capacity_is_the_bucket_rent_would_give_at_every_edge() {
    let pool = pool(1 << 20);
    let mut lengths = vec![1, 15, 16, 17];
    let mut len = 32;
    while len <= 1 << 20 {
        lengths.extend([len - 1, len, len + 1]);
        len *= 2;
    }
    // Under Miri, `rent(n)` of a fresh buffer zero-fills it byte by byte: stop at 64 KiB.
    let largest = if cfg!(miri) { 1 << 16 } else { 1 << 20 };
    lengths.retain(|&n| n <= largest);
    let step = if cfg!(miri) { 3 } else { 1 };
    for &n in lengths.iter().step_by(step) {
        let empty = pool.rent_with_capacity(n);
        let full = pool.rent(n);
        assert_eq!(empty.len(), 0, "n = {n}");
        assert_eq!(empty.capacity(), full.capacity(), "n = {n}");
        assert_eq!(
            empty.capacity(),
            n.next_power_of_two().max(MIN_BUCKET_LEN),
            "n = {n}"
        );
        pool.return_(empty);
        pool.return_(full);
    }
    let stats = pool.stats();
    let rents = 2 * lengths.iter().step_by(step).count() as u64;
    assert_eq!(stats.rented, rents, "every call counted as a rent");
    assert_eq!(stats.returned, rents, "every buffer kept");
    assert_eq!(stats.dropped_foreign, 0);
}

#[test]
fn a_held_buffer_comes_back_empty_whatever_it_held() {
    let pool = pool(4096);
    pool.return_(vec![0xab; 4096]);
    let buf = pool.rent_with_capacity(4096);
    assert_eq!((buf.len(), buf.capacity()), (0, 4096));
    let stats = pool.stats();
    assert_eq!((stats.rented, stats.allocated, stats.hits()), (1, 0, 1));
}

#[test]
fn over_the_maximum_the_capacity_is_exact_and_counted_as_rent_counts_it() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let pool = pool(1024);
    pool.add_listener(move |e: &PoolEvent| sink.lock().unwrap().push(*e));

    let big = pool.rent_with_capacity(1025);
    assert_eq!((big.len(), big.capacity()), (0, 1025));
    let small = pool.rent_with_capacity(1024);
    assert_eq!((small.len(), small.capacity()), (0, 1024));
    assert_eq!(pool.rent_with_capacity(0).capacity(), 0, "zero: Vec::new()");

    let stats = pool.stats();
    assert_eq!(
        (stats.rented, stats.allocated, stats.allocated_over_max),
        (2, 1, 1),
        "rent_with_capacity(0) is not counted"
    );
    let events = events.lock().unwrap();
    assert!(matches!(
        events[0],
        PoolEvent::Allocated {
            len: 1025,
            capacity: 1025,
            reason: AllocReason::OverMaxLength,
            ..
        }
    ));
    assert!(matches!(
        events[1],
        PoolEvent::Allocated {
            len: 1024,
            capacity: 1024,
            reason: AllocReason::PoolExhausted,
            ..
        }
    ));
}

#[test]
#[should_panic(expected = "capacity overflow")]
fn above_isize_max_it_panics_as_rent_does() {
    let _ = pool(1024).rent_with_capacity(isize::MAX as usize + 1);
}

#[test]
fn appends_within_the_capacity_keep_the_bucket_and_the_return_keeps_the_buffer() {
    let pool = pool(1 << 16);

    // io::Write, as a serializer writes.
    let mut buf = pool.rent_with_capacity(10_000);
    let addr = buf.as_ptr();
    while buf.len() + 100 <= buf.capacity() {
        writeln!(buf, "{:>99}", buf.len()).unwrap();
    }
    assert_eq!((buf.as_ptr(), buf.capacity()), (addr, 16384));
    pool.return_(buf);

    // extend_from_slice in read-sized chunks, as a read loop into spare capacity does
    // (`read_buf` itself: tests/tokio_lease.rs).
    let mut buf = pool.rent_with_capacity(10_000);
    assert_eq!(buf.as_ptr(), addr, "the same buffer, back from its bucket");
    let chunk = [0x5a; 1000];
    while buf.capacity() - buf.len() >= chunk.len() {
        buf.extend_from_slice(&chunk);
    }
    assert_eq!((buf.len(), buf.capacity()), (16_000, 16384));
    pool.return_(buf);

    let stats = pool.stats();
    assert_eq!(
        (
            stats.rented,
            stats.allocated,
            stats.returned,
            stats.dropped_foreign
        ),
        (2, 1, 2, 0)
    );
}

#[test]
fn the_same_appends_after_rent_reallocate_out_of_the_bucket() {
    // The trap `rent_with_capacity` exists for: `rent(n)` already has `len == n`, so appending
    // reallocates. A doubling lands in a larger bucket (the rented buffer itself is freed by
    // the reallocation); any other growth gives a capacity no bucket keeps.
    let pool = pool(1 << 16);
    let mut buf = pool.rent(10_000);
    buf.extend_from_slice(&[0; 10_000]);
    assert_eq!(buf.capacity(), 32768, "Vec doubled it");
    pool.return_(buf);
    assert_eq!(
        pool.bucket_stats()[11].held_buffers,
        1,
        "kept, one bucket up"
    );

    let mut buf = pool.rent(10_000);
    buf.extend_from_slice(&[0; 30_000]);
    assert_eq!(buf.capacity(), 40_000, "grown to what was needed");
    pool.return_(buf);
    assert_eq!(pool.stats().dropped_foreign, 1);
}
