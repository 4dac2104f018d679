//! Regressions: a custom pool with a thread cache used from a user's thread-local destructor,
//! in the two registration orders the first fix (`return_from_thread_local_destructor.rs`)
//! missed. Either one aborted the process ("thread local panicked on drop"): a panic in a
//! thread-local destructor cannot unwind.
//!
//! Thread-local destructors run in reverse order of registration; the `thread_local` crate's
//! per-thread guard is registered when the thread first gets a `thread_local` id, which
//! `ThreadLocal::get` (the rent path) never does and `ThreadLocal::get_or` (the return path)
//! does.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::thread;

use arraypool::ArrayPool;
use thread_local::ThreadLocal;

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

/// Returns its buffer to its pool when the thread exits.
struct ReturnsOnDrop(RefCell<Option<(&'static ArrayPool, Vec<u8>)>>);

impl Drop for ReturnsOnDrop {
    fn drop(&mut self) {
        if let Some((pool, buffer)) = self.0.borrow_mut().take() {
            pool.return_(buffer);
        }
    }
}

thread_local! {
    static HOLDER: ReturnsOnDrop = const { ReturnsOnDrop(RefCell::new(None)) };
}

/// Bug: the first rent armed the pool's sentinel before the thread had a `thread_local` id;
/// the first return then registered the crate's guard after the sentinel *and* after the
/// user's thread-local, so at exit the guard died first and the user's return, still seeing
/// the sentinel armed, called `get_or` without a guard.
#[test]
fn a_rent_before_the_first_return_armed_the_sentinel_before_the_guard() {
    static POOL: OnceLock<ArrayPool> = OnceLock::new();
    let pool = thread_cached_pool(&POOL);
    thread::spawn(move || {
        let stash = pool.rent(100); // first use: a rent
        HOLDER.with(|h| *h.0.borrow_mut() = Some((pool, stash))); // the user's thread-local, next
        pool.return_(pool.rent(200)); // first return: gives the thread its id
    })
    .join()
    .expect("the thread exits cleanly");
    let stats = pool.stats();
    assert_eq!(stats.returned, 2, "both buffers are kept: {stats:?}");
}

/// Bug: a thread whose first use of any thread-cached pool is a return from a thread-local
/// destructor, after some other `ThreadLocal` user gave it an id and that crate's guard died.
#[test]
fn a_first_return_from_a_destructor_after_another_users_guard_died() {
    static POOL: OnceLock<ArrayPool> = OnceLock::new();
    static OTHER_USER: ThreadLocal<u8> = ThreadLocal::new();
    let pool = thread_cached_pool(&POOL);
    thread::spawn(move || {
        HOLDER.with(|h| *h.0.borrow_mut() = Some((pool, vec![7; 64])));
        OTHER_USER.get_or(|| 1); // registers the crate's guard after the holder
    })
    .join()
    .expect("the thread exits cleanly");
    let stats = pool.stats();
    assert_eq!(
        (stats.returned, stats.held_buffers),
        (1, 1),
        "kept in the partitions: {stats:?}"
    );
}
