//! Every lock, atomic and thread-local the pool shares between threads: from `std`, or from
//! `loom` when this crate's own unit tests are built with `--cfg loom`.
//!
//! The gate is `all(test, loom)`, as in bytes' `src/loom.rs`: a downstream crate that builds
//! its own loom tests with `RUSTFLAGS="--cfg loom"` compiles this crate as a plain dependency
//! (not under `test`), so it gets `std` types and a pool that works outside a loom model
//! (`tests/downstream_loom.rs`). Thread-locals are routed through here too, as in
//! sharded-slab's `src/sync.rs`, so that the loom models drive the real thread-exit flush of
//! `thread_cache.rs`.

#[cfg(all(test, loom))]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Mutex, MutexGuard, RwLock,
};

#[cfg(not(all(test, loom)))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Mutex, MutexGuard, RwLock,
};

/// Declares a thread-local with a `const` initializer: `std`'s `thread_local!` with
/// `const { … }` (no lazy-init check on access), or loom's, which takes a plain expression.
macro_rules! const_thread_local {
    ($(#[$attr:meta])* static $name:ident: $t:ty = $init:expr;) => {
        #[cfg(all(test, loom))]
        loom::thread_local! {
            $(#[$attr])* static $name: $t = $init;
        }
        #[cfg(not(all(test, loom)))]
        std::thread_local! {
            $(#[$attr])* static $name: $t = const { $init };
        }
    };
}
pub(crate) use const_thread_local;

/// Locks `mutex`, ignoring poison.
///
/// No user code runs under a pool lock: listeners are called, and dropped, with no lock held
/// (`event.rs`), and what the pool does under its own locks (moving buffers between vectors,
/// adding to counters, a fallible `try_reserve`) cannot panic. A poisoned pool lock would need
/// a panic that cannot happen; were it to happen anyway, the data it guards is a list of
/// buffers that is consistent between any two statements, so the pool keeps using it.
#[inline]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
