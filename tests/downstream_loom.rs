//! Regression (review B1): a downstream crate that runs its own loom tests the documented way,
//! `RUSTFLAGS="--cfg loom" cargo test`, builds this crate as a plain dependency. The pool must
//! then use `std`'s locks and work outside any loom model; it used to switch to loom's types
//! under a bare `cfg(loom)` and panic in `ArrayPool::create` ("cannot access Loom execution
//! state from outside a Loom model").
//!
//! CI runs this file with `--cfg loom` (`.ci/run`), exactly as such a user would; in a plain
//! `cargo test` it checks the same behaviour without the flag.

use arraypool::ArrayPool;

#[test]
fn every_kind_of_pool_works_outside_a_loom_model() {
    let custom = ArrayPool::create(4096, 4);
    custom.return_(custom.rent(100));
    assert_eq!(custom.stats().returned, 1);

    let cached = ArrayPool::builder().thread_cache(true).build().unwrap();
    cached.return_(cached.rent(100));
    assert_eq!(cached.stats().hits(), 0);
    let again = cached.rent(100);
    assert_eq!(cached.stats().hits(), 1);
    drop(again);

    let shared = ArrayPool::shared();
    let buffer = shared.rent(3000);
    assert_eq!(buffer.capacity(), 4096);
    shared.return_(buffer);
    assert!(shared.stats().returned >= 1);
}

/// A user's own loom model may use the pool too: it is ordinary `std` code to loom.
#[cfg(loom)]
#[test]
fn a_pool_works_inside_a_users_loom_model() {
    loom::model(|| {
        let pool = loom::sync::Arc::new(ArrayPool::create(64, 2));
        let other = {
            let pool = loom::sync::Arc::clone(&pool);
            loom::thread::spawn(move || pool.return_(pool.rent(10)))
        };
        pool.return_(pool.rent(20));
        other.join().unwrap();
        assert_eq!(pool.stats().rented, 2);
    });
}
