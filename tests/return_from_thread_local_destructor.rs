//! Regression: a buffer held in a user's thread-local and returned from its destructor.
//!
//! Thread-local destructors run in reverse order of registration. A user's thread-local that is
//! registered before the pool's first use on a thread is destroyed *after* the pool's own
//! per-thread state (and after the `thread_local` crate's guard). Returning a buffer from there
//! must neither panic (a panic in a thread-local destructor aborts the process) nor lose count.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::thread;

use arraypool::ArrayPool;

struct ReturnsOnDrop {
    pool: fn() -> &'static ArrayPool,
    buffer: RefCell<Option<Vec<u8>>>,
}

impl Drop for ReturnsOnDrop {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.borrow_mut().take() {
            (self.pool)().return_(buffer);
        }
        // And a rent from a destructor, which must not panic either.
        let late = (self.pool)().rent(300);
        (self.pool)().return_(late);
    }
}

fn custom_pool() -> &'static ArrayPool {
    static POOL: OnceLock<ArrayPool> = OnceLock::new();
    POOL.get_or_init(|| {
        ArrayPool::builder()
            .max_len(4096)
            .per_bucket(8)
            .thread_cache(true)
            .build()
            .unwrap()
    })
}

thread_local! {
    static HOLDER: ReturnsOnDrop = ReturnsOnDrop { pool: custom_pool, buffer: RefCell::new(None) };
    static SHARED_HOLDER: ReturnsOnDrop =
        ReturnsOnDrop { pool: ArrayPool::shared, buffer: RefCell::new(None) };
}

fn exercise(
    holder: &'static std::thread::LocalKey<ReturnsOnDrop>,
    pool: fn() -> &'static ArrayPool,
) {
    thread::spawn(move || {
        // Register the user's thread-local first, then use the pool (which registers its own).
        holder.with(|h| {
            let _ = h.buffer.borrow().is_some();
        });
        let first = pool().rent(1000);
        pool().return_(first);
        let held = pool().rent(1000);
        holder.with(|h| *h.buffer.borrow_mut() = Some(held));
    })
    .join()
    .expect("the thread exits cleanly: no panic in a thread-local destructor");
}

#[test]
fn a_custom_pool_with_a_thread_cache_accepts_returns_from_late_destructors() {
    exercise(&HOLDER, custom_pool);
    let stats = custom_pool().stats();
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
    // the returned buffer can be found again.
    exercise(&SHARED_HOLDER, ArrayPool::shared);
    let before = ArrayPool::shared().stats();
    assert!(before.held_buffers >= 1, "{before:?}");
}
