//! `Lease` and `OwnedLease`: every way a lease ends returns its buffer exactly once, except
//! `into_vec`, which returns none.
//!
//! The pools here have no thread cache and one partition, so `stats()` is exact and a rent
//! after a return gets the very buffer back.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use arraypool::{ArrayPool, Lease, OwnedLease};

#[path = "support/exact_pool.rs"]
mod exact_pool;
use exact_pool::{flows, pool};

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Lease<'static>>();
    send_sync::<Lease<'_>>();
    send_sync::<OwnedLease>();
};

/// `'static` leases from the shared pool and from `lease_owned`, checked at compile time.
fn _static_leases() -> (Lease<'static>, OwnedLease) {
    (
        ArrayPool::shared().lease(1),
        Arc::new(pool()).lease_owned(1),
    )
}

#[test]
fn a_lease_returns_its_buffer_at_the_end_of_its_scope() {
    let pool = pool();
    let addr = {
        let mut lease = pool.lease(1000);
        assert_eq!((lease.len(), lease.capacity()), (1000, 1024));
        lease[0] = 7;
        assert_eq!(flows(pool.stats()), (1, 0, 0));
        lease.as_ptr()
    };
    assert_eq!(flows(pool.stats()), (1, 1, 1));
    let again = pool.rent(1000);
    assert_eq!(again.as_ptr(), addr, "the same buffer, back in its bucket");
    assert_eq!(again[0], 7, "its bytes were kept, as return_ keeps them");
}

fn early_exit(pool: &ArrayPool, fail: bool) -> Result<usize, String> {
    let lease = pool.lease(100);
    let value: Result<usize, String> = if fail {
        Err("early".into())
    } else {
        Ok(lease.len())
    };
    let len = value?; // the `?` under test
    Ok(len + lease.capacity())
}

#[test]
fn a_lease_returns_its_buffer_on_an_early_question_mark() {
    let pool = pool();
    assert_eq!(early_exit(&pool, true), Err("early".into()));
    assert_eq!(flows(pool.stats()), (1, 1, 1));
    assert_eq!(early_exit(&pool, false), Ok(100 + 128));
    assert_eq!(
        flows(pool.stats()),
        (2, 2, 1),
        "the same buffer, rented twice"
    );
}

#[test]
#[cfg_attr(panic = "abort", ignore = "needs unwinding")]
fn a_lease_returns_its_buffer_while_a_panic_unwinds() {
    let pool = pool();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let mut lease = pool.lease(5000);
        lease[4999] = 1;
        panic!("a bug between rent and return");
    }));
    assert!(result.is_err());
    assert_eq!(flows(pool.stats()), (1, 1, 1));

    let owned = Arc::new(pool);
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        let _lease = Arc::clone(&owned).lease_with_capacity_owned(5000);
        panic!("again, with an owned lease");
    }));
    assert!(result.is_err());
    assert_eq!(flows(owned.stats()), (2, 2, 1));
    assert_eq!(Arc::strong_count(&owned), 1, "the lease let go of its pool");
}

#[test]
fn into_vec_detaches_the_buffer_and_returns_nothing() {
    let pool = pool();
    let vec = pool.lease(300).into_vec();
    assert_eq!((vec.len(), vec.capacity()), (300, 512));
    assert_eq!(flows(pool.stats()), (1, 0, 0), "nothing came back");
    pool.return_(vec);
    assert_eq!(
        flows(pool.stats()),
        (1, 1, 1),
        "until the caller returned it"
    );

    let owned = Arc::new(pool);
    let vec = Arc::clone(&owned).lease_owned(300).into_vec();
    assert_eq!(vec.capacity(), 512);
    assert_eq!(flows(owned.stats()), (2, 1, 0));
    assert_eq!(
        Arc::strong_count(&owned),
        1,
        "into_vec dropped the pool handle"
    );
    let stats = owned.stats();
    assert_eq!(
        (stats.dropped_foreign, stats.dropped_full),
        (0, 0),
        "detaching returns not even an empty Vec that would count"
    );
}

#[test]
fn lease_with_capacity_fills_by_appending_and_keeps_its_bucket() {
    use std::io::Write;

    let pool = pool();
    {
        let mut body = pool.lease_with_capacity(4000);
        assert_eq!((body.len(), body.capacity()), (0, 4096));
        write!(&mut *body, "{:>4000}", "x").unwrap();
        body.extend_from_slice(&[b'!'; 96]);
        assert_eq!((body.len(), body.capacity()), (4096, 4096));
    }
    let stats = pool.stats();
    assert_eq!((stats.returned, stats.dropped_foreign), (1, 0));
}

#[test]
fn a_lease_grown_past_its_bucket_is_dropped_and_counted_as_return_would() {
    let pool = pool();
    {
        let mut lease = pool.lease(1 << 16);
        lease.push(0); // len was already the maximum: this reallocates past it
    }
    let stats = pool.stats();
    assert_eq!((stats.returned, stats.dropped_foreign), (0, 1));
}

#[test]
fn a_lease_returns_whatever_vec_it_holds_when_it_drops() {
    let pool = pool();
    {
        let mut lease = pool.lease(10);
        *lease = Vec::with_capacity(2048); // the leased buffer is freed; this one comes back
    }
    assert_eq!(
        pool.bucket_stats()[7].held_buffers,
        1,
        "the 2048-byte bucket"
    );
    {
        let mut lease = pool.lease(10);
        std::mem::take(&mut *lease); // an empty Vec comes back: nothing
    }
    assert_eq!(flows(pool.stats()), (2, 1, 1));
}

#[test]
fn leases_deref_and_convert_like_the_vec_they_hold() {
    let pool = pool();
    let mut lease = pool.lease(4);
    lease.as_mut().copy_from_slice(b"abcd");
    assert_eq!(lease.as_ref(), b"abcd");
    assert_eq!(&lease[1..3], b"bc");
    let as_vec: &Vec<u8> = &lease;
    assert_eq!(as_vec.len(), 4);
    assert_eq!(
        format!("{lease:?}"),
        r#"Lease { len: 4, capacity: 16, pool: "custom", .. }"#
    );

    drop(lease);
    let owned = Arc::new(pool).lease_with_capacity_owned(20);
    assert_eq!(
        format!("{owned:?}"),
        r#"OwnedLease { len: 0, capacity: 32, pool: "custom", .. }"#
    );
    assert!(owned.as_ref().is_empty());
}

#[test]
fn an_owned_lease_keeps_its_pool_alive_and_returns_into_it_from_another_thread() {
    let pool = Arc::new(pool());
    drop(pool.lease(60_000));
    let lease = Arc::clone(&pool).lease_owned(60_000);
    let weak = Arc::downgrade(&pool);
    drop(pool);
    let worker = std::thread::spawn(move || {
        assert_eq!(lease.capacity(), 1 << 16);
        let pool = weak.upgrade().expect("the lease keeps the pool alive");
        drop(lease);
        pool.stats()
    });
    let stats = worker.join().unwrap();
    assert_eq!(flows(stats), (2, 2, 1));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "the shared pool lives for the process, and Miri reports what it holds as leaked"
)]
fn leases_on_the_shared_pool_come_back_to_this_threads_cache() {
    let pool = ArrayPool::shared();
    let addr = pool.lease(3000).as_ptr();
    let again = pool.lease_with_capacity(3000);
    assert_eq!(again.as_ptr(), addr, "the thread's magazine kept it");
    assert_eq!(again.capacity(), 4096);
}

#[test]
fn zero_and_over_max_leases_behave_as_their_rents() {
    let pool = pool();
    assert_eq!(pool.lease(0).capacity(), 0);
    assert_eq!(pool.lease_with_capacity(0).capacity(), 0);
    let big = pool.lease_with_capacity(100_000);
    assert_eq!((big.len(), big.capacity()), (0, 100_000));
    drop(big);
    let stats = pool.stats();
    assert_eq!(
        (
            stats.rented,
            stats.allocated_over_max,
            stats.dropped_foreign
        ),
        (1, 1, 1),
        "rented over the maximum, dropped on return, zero-length leases not counted"
    );
}
