//! Rents and returns from inside thread-local destructors, on the shared pool and on a custom
//! pool with a thread cache.
//!
//! Thread-local destructors run in reverse order of registration, and a panic in one cannot
//! unwind: it aborts the process. A user's thread-local that holds a buffer and returns it from
//! its destructor may run after the pool's own per-thread state, and after the `thread_local`
//! crate's per-thread guard, is destroyed. That must neither panic nor lose count.
//!
//! The `thread_local` crate's guard is registered when the thread first gets a `thread_local`
//! id, which `ThreadLocal::get` (the rent path) never does and `ThreadLocal::get_or` (the
//! return path) does; the two regressions at the end are the registration orders the first fix
//! missed.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::thread;

use arraypool::ArrayPool;
use thread_local::ThreadLocal;

/// The custom pool under test: one per test, so that each test's counts are its own.
fn thread_cached_pool(cell: &'static OnceLock<ArrayPool>) -> &'static ArrayPool {
    cell.get_or_init(|| {
        ArrayPool::builder()
            .max_len(4096)
            .per_bucket(8)
            .thread_cache(true)
            .build()
            .unwrap()
    })
}

/// Returns its buffer to its pool when the thread exits, then rents and returns once more
/// (a rent from a destructor must not panic either).
struct ReturnsOnDrop(RefCell<Option<(&'static ArrayPool, Vec<u8>)>>);

impl ReturnsOnDrop {
    fn hold(&self, pool: &'static ArrayPool, buffer: Vec<u8>) {
        *self.0.borrow_mut() = Some((pool, buffer));
    }
}

impl Drop for ReturnsOnDrop {
    fn drop(&mut self) {
        if let Some((pool, buffer)) = self.0.borrow_mut().take() {
            pool.return_(buffer);
            let late = pool.rent(300);
            pool.return_(late);
        }
    }
}

thread_local! {
    static HOLDER: ReturnsOnDrop = const { ReturnsOnDrop(RefCell::new(None)) };
}

/// On a new thread: registers the user's thread-local first, then uses `pool` (which
/// registers its own state), and leaves a 1000-byte buffer in the thread-local for its
/// destructor to return.
fn hold_a_buffer_past_the_pools_state(pool: &'static ArrayPool) {
    thread::spawn(move || {
        HOLDER.with(|h| {
            let _ = h.0.borrow().is_some();
        });
        let first = pool.rent(1000);
        pool.return_(first);
        HOLDER.with(|h| h.hold(pool, pool.rent(1000)));
    })
    .join()
    .expect("the thread exits cleanly: no panic in a thread-local destructor");
}

#[test]
fn a_custom_pool_with_a_thread_cache_accepts_returns_from_late_destructors() {
    static POOL: OnceLock<ArrayPool> = OnceLock::new();
    let pool = thread_cached_pool(&POOL);
    hold_a_buffer_past_the_pools_state(pool);
    let stats = pool.stats();
    assert_eq!(stats.rented, 3, "{stats:?}");
    assert_eq!(stats.returned, 3, "{stats:?}");
    assert_eq!(
        stats.held_buffers, 2,
        "two buffers (1024 and 512 bytes) stay pooled: {stats:?}"
    );
}

#[test]
fn the_shared_pool_accepts_returns_from_late_destructors() {
    // The shared pool is process-wide, so only check that the thread exited cleanly and that
    // the returned buffers can be found again.
    hold_a_buffer_past_the_pools_state(ArrayPool::shared());
    assert!(ArrayPool::shared().stats().held_buffers >= 2);
}

/// Regression: the first rent armed the pool's sentinel before the thread had a
/// `thread_local` id; the first return then registered the crate's guard after the sentinel
/// *and* after the user's thread-local, so at exit the guard died first and the user's return,
/// still seeing the sentinel armed, called `get_or` without a guard (an abort).
#[test]
fn a_rent_before_the_first_return_armed_the_sentinel_before_the_guard() {
    static POOL: OnceLock<ArrayPool> = OnceLock::new();
    let pool = thread_cached_pool(&POOL);
    thread::spawn(move || {
        let stash = pool.rent(100); // first use: a rent
        HOLDER.with(|h| h.hold(pool, stash)); // the user's thread-local, next
        pool.return_(pool.rent(200)); // first return: gives the thread its id
    })
    .join()
    .expect("the thread exits cleanly");
    let stats = pool.stats();
    assert_eq!(stats.returned, 3, "every buffer is kept: {stats:?}");
}

/// Regression: a thread whose first use of any thread-cached pool is a return from a
/// thread-local destructor, after some other `ThreadLocal` user gave it an id and that crate's
/// guard died (an abort).
#[test]
fn a_first_return_from_a_destructor_after_another_users_guard_died() {
    static POOL: OnceLock<ArrayPool> = OnceLock::new();
    static OTHER_USER: ThreadLocal<u8> = ThreadLocal::new();
    let pool = thread_cached_pool(&POOL);
    thread::spawn(move || {
        HOLDER.with(|h| h.hold(pool, vec![7; 64]));
        OTHER_USER.get_or(|| 1); // registers the crate's guard after the holder
    })
    .join()
    .expect("the thread exits cleanly");
    let stats = pool.stats();
    assert_eq!(
        (stats.returned, stats.held_buffers),
        (2, 2),
        "kept in the partitions: {stats:?}"
    );
}
