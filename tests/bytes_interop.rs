//! The `bytes` feature: `into_bytes` gives the buffer back when the last handle drops, on any
//! thread; `rent_bytes_mut` and `return_bytes_mut` copy nothing, and the one case that loses
//! the buffer is counted; no uninitialized byte is ever exposed.
#![cfg(feature = "bytes")]

use std::sync::{Arc, Mutex};

use arraypool::{ArrayPool, DropReason, PoolEvent};
use bytes::{BufMut, Bytes, BytesMut};

#[path = "support/exact_pool.rs"]
mod exact_pool;
use exact_pool::{flows, pool};

#[test]
fn into_bytes_returns_the_buffer_when_the_last_clone_drops_on_another_thread() {
    let pool = Arc::new(pool());
    let mut lease = Arc::clone(&pool).lease_with_capacity_owned(3000);
    lease.extend_from_slice(&[7; 3000]);
    let addr = lease.as_ptr();
    let bytes = lease.into_bytes();
    assert_eq!((bytes.len(), bytes.as_ptr()), (3000, addr), "zero-copy");

    let clones: Vec<Bytes> = (0..4).map(|i| bytes.slice(i * 100..i * 100 + 50)).collect();
    drop(bytes);
    assert_eq!(flows(pool.stats()), (1, 0, 0), "slices still hold it");
    let workers: Vec<_> = clones
        .into_iter()
        .map(|slice| {
            std::thread::spawn(move || {
                assert!(slice.iter().all(|&b| b == 7));
                drop(slice);
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    assert_eq!(
        flows(pool.stats()),
        (1, 1, 1),
        "returned once, by the last slice"
    );
    let again = pool.rent(3000);
    assert_eq!(again.as_ptr(), addr, "the very buffer");
    assert_eq!(Arc::strong_count(&pool), 1, "the Bytes let go of the pool");
}

#[test]
#[cfg_attr(
    miri,
    ignore = "the shared pool lives for the process, and Miri reports what it holds as leaked"
)]
fn a_shared_lease_becomes_bytes_and_comes_back_to_the_shared_pool() {
    let pool = ArrayPool::shared();
    let mut lease = pool.lease_with_capacity(5000);
    lease.put_slice(b"response body");
    let addr = lease.as_ptr();
    let bytes = lease.into_bytes();
    let clone = bytes.clone();
    std::thread::spawn(move || drop(clone)).join().unwrap();
    assert_eq!(&bytes[..], b"response body");
    drop(bytes); // the last handle, on this thread: into this thread's magazine
    let again = pool.rent_with_capacity(5000);
    assert_eq!(again.as_ptr(), addr);
    pool.return_(again);
}

#[test]
fn rent_bytes_mut_lends_the_pools_buffer_itself_and_return_takes_it_back() {
    let pool = pool();
    // A fresh buffer (zeroed to its capacity by the allocator) and a held one whose spare
    // capacity the pool never saw initialized: both lend the pool's own allocation.
    let mut first = pool.rent_bytes_mut(10_000);
    assert_eq!((first.len(), first.capacity()), (0, 16384));
    let addr = first.as_ptr();
    first.put_slice(&[1; 5000]);
    pool.return_bytes_mut(first);
    assert_eq!(flows(pool.stats()), (1, 1, 1));

    for round in 0..3 {
        let mut buf = pool.rent_bytes_mut(10_000);
        assert_eq!(
            (buf.len(), buf.capacity(), buf.as_ptr()),
            (0, 16384, addr),
            "round {round}: the same buffer, not a copy"
        );
        buf.put_slice(&[2; 16384]); // filled to its capacity: no reallocation
        assert_eq!(buf.as_ptr(), addr);
        pool.return_bytes_mut(buf);
    }
    let stats = pool.stats();
    assert_eq!(
        (
            stats.rented,
            stats.allocated,
            stats.returned,
            stats.dropped_shared
        ),
        (4, 1, 4, 0)
    );
}

#[test]
fn an_advanced_or_split_handle_that_is_the_last_brings_back_the_whole_buffer() {
    let pool = pool();
    let mut buf = pool.rent_bytes_mut(4096);
    let addr = buf.as_ptr();
    buf.put_slice(&[9; 4000]);
    let _ = buf.split_to(1000); // split off and dropped: buf is again the only handle
    bytes::Buf::advance(&mut buf, 500);
    assert_eq!(buf.capacity(), 4096 - 1500);
    pool.return_bytes_mut(buf);
    assert_eq!(flows(pool.stats()), (1, 1, 1));
    let again = pool.rent_with_capacity(4096);
    assert_eq!(
        (again.as_ptr(), again.capacity()),
        (addr, 4096),
        "the whole allocation, from its start"
    );
}

#[test]
fn a_still_shared_bytes_mut_is_counted_and_reported_and_nothing_is_copied() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let pool = pool();
    pool.add_listener(move |e: &PoolEvent| sink.lock().unwrap().push(*e));

    let mut buf = pool.rent_bytes_mut(4096);
    buf.put_slice(b"HEADERbody");
    let header = buf.split_to(6);
    let frozen: Bytes = header.freeze();
    pool.return_bytes_mut(buf); // `frozen` still shares the buffer
    let stats = pool.stats();
    assert_eq!(
        (stats.returned, stats.dropped_shared, stats.dropped_foreign),
        (0, 1, 0)
    );
    assert!(matches!(
        events.lock().unwrap().last(),
        Some(PoolEvent::Dropped {
            reason: DropReason::StillShared,
            capacity: 4090,
            ..
        })
    ));
    assert_eq!(&frozen[..], b"HEADER", "the other handle is untouched");
    drop(frozen); // bytes frees the buffer; the pool never sees it
    assert_eq!(flows(pool.stats()), (1, 0, 0));
    assert!(pool.stats().to_string().contains("dropped (still shared)"));
}

#[test]
fn bytes_muts_from_elsewhere_follow_the_rules_of_return() {
    let pool = pool();
    pool.return_bytes_mut(BytesMut::new()); // nothing
    pool.return_bytes_mut(BytesMut::with_capacity(1024)); // a bucket size: kept
    pool.return_bytes_mut(BytesMut::with_capacity(1000)); // not one: dropped
    let mut grown = pool.rent_bytes_mut(1 << 16);
    grown.put_slice(&vec![0; (1 << 16) + 1]); // reallocated past the maximum
    pool.return_bytes_mut(grown);
    let stats = pool.stats();
    assert_eq!(
        (stats.returned, stats.dropped_foreign, stats.dropped_shared),
        (1, 2, 0)
    );
}

#[test]
fn rent_bytes_mut_edges_and_contents() {
    let pool = pool();
    assert_eq!(pool.rent_bytes_mut(0).capacity(), 0);
    let big = pool.rent_bytes_mut(100_000);
    assert_eq!((big.len(), big.capacity()), (0, 100_000));
    drop(big);
    assert_eq!(pool.stats().allocated_over_max, 1);

    // What a rent can read after a BytesMut round trip is zeros (return_bytes_mut keeps
    // no contents) or what a renter wrote: never uninitialized memory (Miri checks).
    let mut buf = pool.rent_bytes_mut(64);
    buf.put_slice(&[0xee; 64]);
    pool.return_bytes_mut(buf);
    let read = pool.rent(64);
    assert_eq!(read, [0; 64]);
}
