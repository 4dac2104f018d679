//! With the `bytes` feature: pooled buffers in and out of `bytes::Bytes` and `BytesMut`.
//!
//! What each conversion costs, read from bytes 1.9–1.12's source:
//!
//! | conversion | data copied | allocation | the buffer comes back |
//! |---|---|---|---|
//! | [`Lease::into_bytes`], [`OwnedLease::into_bytes`] | none | one small box for the owner (`Bytes::from_owner`'s reference count) | when the last clone or slice drops, on its thread |
//! | [`ArrayPool::rent_bytes_mut`] | none | none if the buffer is initialized to its capacity (always for a fresh one); else (always for one that came back as a `BytesMut`) bytes' 24-byte header, freed again at once | n/a |
//! | [`ArrayPool::return_bytes_mut`], unique buffer | none | none | at once (if its capacity is still a bucket size) |
//! | [`ArrayPool::return_bytes_mut`], buffer still shared | none | none | never: counted in [`PoolStats::dropped_shared`](crate::PoolStats::dropped_shared) |
//!
//! Why: bytes has no public `Vec<u8>` → `BytesMut` conversion (it keeps the right to change
//! its representation), so a rented `Vec` goes `Vec` → `Bytes` → `BytesMut`. `Bytes::from(Vec)`
//! takes a full `Vec` as a boxed slice for free but needs a shared header for one with spare
//! capacity; `BytesMut::from(Bytes)` of a unique `Bytes` rebuilds the `Vec` and frees the
//! header. Back, `Vec::from(BytesMut)` recovers the whole original allocation when the handle
//! is unique (after `advance` or a dropped `split`, too) and otherwise copies the view into a
//! new `Vec`; the pool clears the handle first, so that copy is of zero bytes and allocates
//! nothing, and the lost buffer is counted. A `Bytes` made by `from_owner` never converts to a
//! `BytesMut` or `Vec` without a copy (bytes' rule), which is why a leased buffer handed out as
//! `Bytes` comes back through its owner's `Drop`, not through a conversion.

use bytes::{Bytes, BytesMut};

use crate::lease::{Lease, OwnedLease};
use crate::pool::ArrayPool;

impl Lease<'static> {
    /// Hands the buffer to a [`Bytes`] without copying it; the buffer goes back to the pool
    /// when the last clone or slice of that `Bytes` is dropped, on whatever thread that is.
    ///
    /// This is how a leased buffer becomes a hyper, axum or tonic body: render into a
    /// [`lease_with_capacity`](ArrayPool::lease_with_capacity), then give `into_bytes()` to
    /// the framework, which drops it after writing it out. The `Bytes` covers the buffer's
    /// `len` bytes. It costs one small allocation, `Bytes::from_owner`'s box for the lease and
    /// a reference count (`Bytes::from(vec)` of a buffer with spare capacity allocates one
    /// too, and loses the buffer to the allocator).
    ///
    /// Only a `Lease<'static>` (from [`ArrayPool::shared`], or a pool in a `static`) can become
    /// a `Bytes`, which may live anywhere; for a custom pool in an `Arc`, use
    /// [`OwnedLease::into_bytes`]. The `Bytes` cannot be turned back into a `BytesMut` or a
    /// `Vec` without a copy: bytes never gives up an owner's buffer.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::shared();
    /// let mut body = pool.lease_with_capacity(1000);
    /// body.extend_from_slice(b"hello, world");
    /// let addr = body.as_ptr();
    ///
    /// let bytes = body.into_bytes();
    /// let hello = bytes.slice(..5);
    /// assert_eq!((&*hello, hello.as_ptr()), (&b"hello"[..], addr), "no copy");
    /// drop(bytes);
    /// drop(hello); // the last handle: the buffer is back in the pool
    /// let again = pool.rent_with_capacity(1000);
    /// assert_eq!(again.as_ptr(), addr, "the same buffer, from this thread's cache");
    /// # pool.return_(again);
    /// ```
    #[must_use = "the buffer goes back to the pool at once if the `Bytes` is not used"]
    pub fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl OwnedLease {
    /// Hands the buffer to a [`Bytes`] without copying it; the buffer goes back to the lease's
    /// pool when the last clone or slice drops (see [`Lease::into_bytes`]). The `Bytes` keeps
    /// the pool alive until then.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    /// use std::sync::Arc;
    ///
    /// let pool = Arc::new(ArrayPool::builder().name("bodies").build()?);
    /// let mut body = Arc::clone(&pool).lease_with_capacity_owned(64);
    /// body.extend_from_slice(b"{}");
    /// let bytes = body.into_bytes();
    /// let clone = bytes.clone();
    /// std::thread::spawn(move || drop(clone)).join().unwrap();
    /// assert_eq!(pool.stats().returned, 0, "one handle is left");
    /// drop(bytes);
    /// assert_eq!(pool.stats().returned, 1);
    /// # Ok::<(), arraypool::BuildError>(())
    /// ```
    #[must_use = "the buffer goes back to the pool at once if the `Bytes` is not used"]
    pub fn into_bytes(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl ArrayPool {
    /// Rents an empty [`BytesMut`] with room for at least `n` bytes: `len() == 0`,
    /// `capacity()` the bucket size, as
    /// [`rent_with_capacity`](Self::rent_with_capacity) (and counted the same way). Give it
    /// back with [`return_bytes_mut`](Self::return_bytes_mut).
    ///
    /// The `BytesMut` owns the pooled buffer itself, not a copy. When the pool's buffer has
    /// bytes it never saw initialized (its spare capacity), bytes needs its 24-byte shared
    /// header for the conversion, allocated and freed again here; a fresh buffer comes zeroed
    /// to its capacity from the allocator and needs none. A buffer that came back through
    /// [`return_bytes_mut`](Self::return_bytes_mut) is empty, so in a steady
    /// `rent_bytes_mut`/`return_bytes_mut` loop each rent pays that small allocation (and
    /// no copy, no zero-fill); [`rent_with_capacity`](Self::rent_with_capacity) pays none.
    /// Nothing is zero-filled by the pool, and the spare capacity is `BytesMut`'s to write,
    /// never to read.
    ///
    /// `n > max_len()` gives a fresh `BytesMut` of capacity `n`, counted in
    /// [`allocated_over_max`](crate::PoolStats::allocated_over_max); `n == 0`, `BytesMut::new()`.
    ///
    /// # Panics
    ///
    /// If `n` is above `isize::MAX` ("capacity overflow").
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    /// use bytes::BufMut;
    ///
    /// let pool = ArrayPool::create(1 << 16, 4);
    /// let mut frame = pool.rent_bytes_mut(9000);
    /// assert_eq!((frame.len(), frame.capacity()), (0, 16384));
    /// frame.put_u32(0xcafe);
    /// frame.put_slice(b"payload");
    /// pool.return_bytes_mut(frame);
    /// assert_eq!(pool.stats().returned, 1);
    /// ```
    #[must_use = "a rented buffer should be used and then given back with `return_bytes_mut`"]
    pub fn rent_bytes_mut(&self, n: usize) -> BytesMut {
        if n == 0 {
            return BytesMut::new();
        }
        let buffer = self.rent_initialized(n);
        // A `Vec` with `len == capacity` becomes a boxed slice, and a `BytesMut` over it, with
        // no allocation; one with spare capacity goes through bytes' shared header, which the
        // conversion to `BytesMut` frees again (the `Bytes` is unique).
        let mut bytes = BytesMut::from(Bytes::from(buffer));
        bytes.clear();
        bytes
    }

    /// Gives a [`BytesMut`] back: its buffer is returned as [`return_`](Self::return_) returns
    /// a `Vec`, without copying it, and its contents are not kept (the next renter sees zeros).
    ///
    /// The whole original buffer comes back even if the handle was advanced or split, as long
    /// as it is the only handle left on it. If other `BytesMut` or `Bytes` handles still share
    /// the buffer (a `split_to` whose half is still alive, say, or a `freeze`d clone), the pool
    /// cannot take it: the buffer stays with them and is freed by bytes when the last goes.
    /// That return is counted in [`dropped_shared`](crate::PoolStats::dropped_shared) and
    /// reported as [`DropReason::StillShared`](crate::DropReason::StillShared), and nothing is
    /// copied. Return the last handle instead (drop or return the others first) to keep the
    /// buffer.
    ///
    /// Any `BytesMut` is welcome: one grown past its bucket by `reserve` or `put` comes back
    /// with its new capacity and is kept if that is a bucket size, else dropped and counted, as
    /// `return_` does. An empty `BytesMut::new()` is nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use arraypool::ArrayPool;
    ///
    /// let pool = ArrayPool::create(4096, 4);
    /// let mut buf = pool.rent_bytes_mut(4096);
    /// buf.extend_from_slice(b"HEADERbody");
    /// let header = buf.split_to(6); // `buf` and `header` now share the buffer
    /// pool.return_bytes_mut(buf); // not the last handle: counted, nothing copied
    /// assert_eq!(pool.stats().dropped_shared, 1);
    ///
    /// let mut buf = pool.rent_bytes_mut(4096);
    /// buf.extend_from_slice(b"HEADERbody");
    /// let header = buf.split_to(6);
    /// drop(buf);
    /// pool.return_bytes_mut(header); // the last handle: the whole buffer comes back
    /// assert_eq!(pool.stats().returned, 1);
    /// ```
    pub fn return_bytes_mut(&self, mut bytes: BytesMut) {
        let capacity = bytes.capacity();
        // Cleared, the conversion copies nothing even when it cannot reclaim the buffer: its
        // copy of an empty view is `Vec::new()`.
        bytes.clear();
        let buffer = Vec::from(bytes);
        if buffer.capacity() == 0 && capacity > 0 {
            self.note_still_shared(capacity);
        } else {
            self.return_(buffer);
        }
    }
}
