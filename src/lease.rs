//! [`Lease`] and [`OwnedLease`]: a rented buffer that returns itself to its pool when dropped.
//!
//! A lease is a `Vec<u8>` beside the pool it came from: a reference for [`Lease`] (no
//! allocation, no reference count; `Lease<'static>` on the shared pool), an `Arc` for
//! [`OwnedLease`], after tokio's `Semaphore::acquire` and `acquire_owned`. Its `Drop` is the
//! `return_`, so the buffer comes back at the end of a scope, on `?` and on unwinding alike.
//! It adds no `unsafe`: [`Lease::into_vec`] moves the `Vec` out of a `ManuallyDrop` (the only
//! other field is a reference); [`OwnedLease::into_vec`] leaves an empty `Vec` behind, whose
//! return is nothing, so that its `Drop` still lets go of the pool's `Arc`.

use std::fmt;
use std::mem::{self, ManuallyDrop};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::pool::ArrayPool;

/// A buffer rented from a pool, given back to it when the lease is dropped.
///
/// Made by [`ArrayPool::lease`] (length `n`, as [`rent`](ArrayPool::rent)) or
/// [`ArrayPool::lease_with_capacity`] (empty, as
/// [`rent_with_capacity`](ArrayPool::rent_with_capacity)). It derefs to the `Vec<u8>`, so
/// everything a `Vec` does works on it; when it drops (at the end of its scope, on an early
/// `?`, or while a panic unwinds) it [`return_`](ArrayPool::return_)s whatever `Vec` it holds
/// then. [`into_vec`](Self::into_vec) takes the buffer out for good.
///
/// `Lease` borrows its pool: it costs nothing beyond the rent, no allocation and no reference
/// count. On the shared pool it is a `Lease<'static>`, which can be held across `.await` and
/// moved into `tokio::spawn`; for a custom pool in an `Arc`, [`ArrayPool::lease_owned`] gives an
/// [`OwnedLease`] that can too. It is `Send` and `Sync`.
///
/// The rules of [`return_`](ArrayPool::return_) apply to what it gives back: a buffer
/// reallocated by pushing past its capacity (easy with a `lease(n)`, whose `len` is already
/// `n`) comes back one bucket up, or of a capacity no bucket keeps, which is freed and counted
/// in [`dropped_foreign`](crate::PoolStats::dropped_foreign). To fill a buffer by appending,
/// lease it with [`lease_with_capacity`](ArrayPool::lease_with_capacity).
///
/// Dropping a lease runs the pool's listeners for what the return raises, as `return_` does: a
/// listener that panics while another panic unwinds aborts the process.
///
/// # Examples
///
/// ```
/// use arraypool::ArrayPool;
///
/// fn parse(pool: &ArrayPool, input: &[u8]) -> Result<usize, String> {
///     let mut scratch = pool.lease(input.len());
///     scratch.copy_from_slice(input);
///     if scratch.first() != Some(&b'{') {
///         return Err("not an object".into()); // the lease returns the buffer here too
///     }
///     Ok(scratch.len())
/// }
///
/// let pool = ArrayPool::create(4096, 4);
/// assert!(parse(&pool, b"[1]").is_err());
/// assert_eq!(parse(&pool, b"{}"), Ok(2));
/// assert_eq!(pool.stats().returned, 2, "both buffers came back");
/// ```
#[must_use = "a lease returns its buffer as soon as it is dropped"]
pub struct Lease<'a> {
    pool: &'a ArrayPool,
    buffer: Vec<u8>,
}

impl<'a> Lease<'a> {
    /// Takes the buffer out of the lease, which then returns nothing: the `Vec` is the
    /// caller's, as if rented with [`rent`](ArrayPool::rent), to give back with
    /// [`return_`](ArrayPool::return_) or to keep.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = arraypool::ArrayPool::create(64, 1);
    /// let kept: Vec<u8> = pool.lease(10).into_vec();
    /// assert_eq!((kept.len(), kept.capacity()), (10, 16));
    /// assert_eq!(pool.stats().returned, 0, "detached: nothing came back");
    /// ```
    #[must_use = "the buffer is freed at once if not used"]
    pub fn into_vec(self) -> Vec<u8> {
        let mut this = ManuallyDrop::new(self);
        mem::take(&mut this.buffer) // `this.pool` is a reference: nothing else to drop
    }
}

impl Drop for Lease<'_> {
    #[inline]
    fn drop(&mut self) {
        self.pool.return_(mem::take(&mut self.buffer));
    }
}

impl Deref for Lease<'_> {
    type Target = Vec<u8>;

    #[inline]
    fn deref(&self) -> &Vec<u8> {
        &self.buffer
    }
}

impl DerefMut for Lease<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }
}

impl AsRef<[u8]> for Lease<'_> {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl AsMut<[u8]> for Lease<'_> {
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buffer
    }
}

/// Shows the buffer's length and capacity, not its bytes.
impl fmt::Debug for Lease<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("len", &self.buffer.len())
            .field("capacity", &self.buffer.capacity())
            .field("pool", &self.pool.name())
            .finish_non_exhaustive()
    }
}

/// A buffer rented from a pool held in an [`Arc`], given back to it when dropped: the
/// [`Lease`] that owns a handle on its pool, so it is `'static` whatever the pool.
///
/// Made by [`ArrayPool::lease_owned`] and [`ArrayPool::lease_with_capacity_owned`], after
/// tokio's `Semaphore::acquire_owned`: it can move into `tokio::spawn` or a `Bytes`
/// (`into_bytes`, feature `bytes`). It behaves as [`Lease`] in every other way (it derefs to
/// the `Vec<u8>`, and [`into_vec`](Self::into_vec) detaches the buffer), and costs one `Arc`
/// clone more. The pool lives as long as its last lease: dropping the last lease of a pool
/// whose other handles are gone returns the buffer, then drops the pool with it.
///
/// # Examples
///
/// ```
/// use arraypool::ArrayPool;
/// use std::sync::Arc;
///
/// let pool = Arc::new(ArrayPool::create(1 << 16, 8));
/// let lease = Arc::clone(&pool).lease_owned(50_000);
/// let worker = std::thread::spawn(move || lease.len()); // `'static`: it can leave the scope
/// assert_eq!(worker.join().unwrap(), 50_000);
/// assert_eq!(pool.stats().returned, 1, "returned on the worker's thread");
/// ```
#[must_use = "a lease returns its buffer as soon as it is dropped"]
pub struct OwnedLease {
    pool: Arc<ArrayPool>,
    buffer: Vec<u8>,
}

impl OwnedLease {
    /// Takes the buffer out of the lease, which then returns nothing, and lets go of its pool
    /// handle; see [`Lease::into_vec`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let pool = Arc::new(arraypool::ArrayPool::create(64, 1));
    /// let kept = Arc::clone(&pool).lease_owned(10).into_vec();
    /// assert_eq!(kept.len(), 10);
    /// assert_eq!((pool.stats().returned, Arc::strong_count(&pool)), (0, 1));
    /// ```
    #[must_use = "the buffer is freed at once if not used"]
    pub fn into_vec(mut self) -> Vec<u8> {
        // The lease's `Drop` then returns an empty `Vec`, which is nothing (capacity 0), and
        // drops the pool handle as it must.
        mem::take(&mut self.buffer)
    }
}

impl Drop for OwnedLease {
    #[inline]
    fn drop(&mut self) {
        self.pool.return_(mem::take(&mut self.buffer));
    }
}

impl Deref for OwnedLease {
    type Target = Vec<u8>;

    #[inline]
    fn deref(&self) -> &Vec<u8> {
        &self.buffer
    }
}

impl DerefMut for OwnedLease {
    #[inline]
    fn deref_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }
}

impl AsRef<[u8]> for OwnedLease {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl AsMut<[u8]> for OwnedLease {
    #[inline]
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buffer
    }
}

/// Shows the buffer's length and capacity, not its bytes.
impl fmt::Debug for OwnedLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedLease")
            .field("len", &self.buffer.len())
            .field("capacity", &self.buffer.capacity())
            .field("pool", &self.pool.name())
            .finish_non_exhaustive()
    }
}

impl ArrayPool {
    /// Rents a buffer of length `n`, as [`rent`](Self::rent), in a [`Lease`] that returns it
    /// to this pool when dropped.
    ///
    /// The lease borrows the pool, which costs nothing: no allocation, no reference count. On
    /// [`ArrayPool::shared`] it is a `Lease<'static>`, free to cross `.await` and
    /// `tokio::spawn`. For a custom pool held in an `Arc`, [`lease_owned`](Self::lease_owned)
    /// gives the same with `'static`, as tokio's `acquire_owned` does for `acquire`.
    ///
    /// # Panics
    ///
    /// If `n` is above `isize::MAX`, as [`rent`](Self::rent).
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::create(4096, 4);
    /// {
    ///     let mut buf = pool.lease(1500);
    ///     assert_eq!((buf.len(), buf.capacity()), (1500, 2048));
    ///     buf[..4].copy_from_slice(b"GET ");
    /// } // returned here
    /// assert_eq!(pool.stats().held_buffers, 1);
    ///
    /// let _: arraypool::Lease<'static> = ArrayPool::shared().lease(100);
    /// ```
    #[inline]
    pub fn lease(&self, n: usize) -> Lease<'_> {
        Lease {
            pool: self,
            buffer: self.rent(n),
        }
    }

    /// Rents an empty buffer with room for `n` bytes, as
    /// [`rent_with_capacity`](Self::rent_with_capacity), in a [`Lease`] that returns it when
    /// dropped: the buffer to fill with `extend_from_slice`, `io::Write` (through
    /// `&mut *lease`), `bytes::BufMut` or `read_buf`, and still keep its bucket.
    ///
    /// # Panics
    ///
    /// If `n` is above `isize::MAX`, as [`rent`](Self::rent).
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    /// use std::io::Write;
    ///
    /// let pool = ArrayPool::create(4096, 4);
    /// let mut body = pool.lease_with_capacity(4000);
    /// write!(&mut *body, "{}", "x".repeat(4000))?;
    /// assert_eq!((body.len(), body.capacity()), (4000, 4096));
    /// drop(body);
    /// assert_eq!(pool.stats().returned, 1, "kept: it never left its bucket");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[inline]
    pub fn lease_with_capacity(&self, n: usize) -> Lease<'_> {
        Lease {
            pool: self,
            buffer: self.rent_with_capacity(n),
        }
    }

    /// Rents a buffer of length `n`, as [`rent`](Self::rent), in an [`OwnedLease`] that holds
    /// this `Arc` and returns the buffer when dropped: a lease that is `'static` for any pool,
    /// after tokio's `Semaphore::acquire_owned`. Call it on a clone
    /// (`Arc::clone(&pool).lease_owned(n)`) to keep your handle.
    ///
    /// # Panics
    ///
    /// If `n` is above `isize::MAX`, as [`rent`](Self::rent).
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::{ArrayPool, OwnedLease};
    /// use std::sync::Arc;
    ///
    /// let pool = Arc::new(ArrayPool::builder().name("frames").max_len(8 << 20).build()?);
    /// let frame: OwnedLease = Arc::clone(&pool).lease_owned(6_000_000);
    /// assert_eq!(frame.capacity(), 8 << 20);
    /// drop(frame);
    /// assert_eq!(pool.stats().returned, 1);
    /// # Ok::<(), arraypool::BuildError>(())
    /// ```
    pub fn lease_owned(self: Arc<Self>, n: usize) -> OwnedLease {
        let buffer = self.rent(n);
        OwnedLease { pool: self, buffer }
    }

    /// Rents an empty buffer with room for `n` bytes, as
    /// [`rent_with_capacity`](Self::rent_with_capacity), in an [`OwnedLease`]: the owned
    /// [`lease_with_capacity`](Self::lease_with_capacity) (tokio's `acquire_many_owned` is
    /// named the same way).
    ///
    /// # Panics
    ///
    /// If `n` is above `isize::MAX`, as [`rent`](Self::rent).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// let pool = Arc::new(arraypool::ArrayPool::create(1 << 16, 4));
    /// let mut chunk = Arc::clone(&pool).lease_with_capacity_owned(40_000);
    /// chunk.extend_from_slice(&[7; 40_000]);
    /// assert_eq!((chunk.len(), chunk.capacity()), (40_000, 1 << 16));
    /// ```
    pub fn lease_with_capacity_owned(self: Arc<Self>, n: usize) -> OwnedLease {
        let buffer = self.rent_with_capacity(n);
        OwnedLease { pool: self, buffer }
    }
}
