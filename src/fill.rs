//! How a buffer gets the length a renter asked for without exposing a byte the pool has not
//! seen initialized.
//!
//! A `Vec<u8>` guarantees `[0, len)` initialized and nothing beyond: safe code may write
//! `MaybeUninit::uninit()` into its spare capacity. So a pooled buffer's own length is what the
//! pool trusts: a rent of `n` keeps (truncates) within it and zero-fills beyond it. This needs
//! no `unsafe`.

use std::collections::TryReserveError;

/// Sets a pooled buffer's length to `n`: truncated within its initialized length, zero-filled
/// beyond it.
#[inline]
pub(crate) fn fit_len(mut buffer: Vec<u8>, n: usize) -> Vec<u8> {
    if n <= buffer.len() {
        buffer.truncate(n);
        buffer
    } else {
        zero_extend(buffer, n)
    }
}

/// `fit_len`'s growing side, out of line: a `memset` call has no place in the inlined path.
#[inline(never)]
fn zero_extend(mut buffer: Vec<u8>, n: usize) -> Vec<u8> {
    buffer.resize(n, 0);
    buffer
}

/// Sets a pooled buffer's length to `n`, every byte zero.
#[inline]
pub(crate) fn zeroed(mut buffer: Vec<u8>, n: usize) -> Vec<u8> {
    buffer.clear();
    buffer.resize(n, 0);
    buffer
}

/// A fresh zeroed buffer of length `len` and capacity exactly `capacity` (`len <= capacity`).
///
/// When the two are equal, `vec![0; len]` asks the allocator for zeroed memory (calloc), which
/// for large sizes is fresh pages the kernel has already zeroed, so nothing is written up
/// front.
///
/// # Panics
///
/// If `capacity` is above `isize::MAX`, as `Vec` does; a failed allocation aborts.
pub(crate) fn fresh(capacity: usize, len: usize) -> Vec<u8> {
    debug_assert!(len <= capacity);
    if capacity == len {
        vec![0; len]
    } else {
        let mut buffer = Vec::with_capacity(capacity);
        buffer.resize(len, 0);
        buffer
    }
}

/// [`fresh`], returning the allocator's refusal instead of panicking or aborting.
///
/// `std` has no fallible zeroed allocation, so this one writes the `len` zeros itself.
pub(crate) fn try_fresh(capacity: usize, len: usize) -> Result<Vec<u8>, TryReserveError> {
    debug_assert!(len <= capacity);
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(capacity)?;
    buffer.resize(len, 0);
    Ok(buffer)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_shorter_rent_keeps_what_the_buffer_held() {
        let buffer = fit_len(vec![7; 10], 4);
        assert_eq!(buffer, [7; 4]);
    }

    #[test]
    fn a_longer_rent_zero_fills_past_the_initialized_length() {
        let mut buffer = Vec::with_capacity(16);
        buffer.extend_from_slice(&[9, 9]);
        let buffer = fit_len(buffer, 5);
        assert_eq!(buffer, [9, 9, 0, 0, 0]);
        assert_eq!(buffer.capacity(), 16);
    }

    #[test]
    fn zeroed_clears_what_the_buffer_held() {
        assert_eq!(zeroed(vec![5; 8], 6), [0; 6]);
    }

    #[test]
    fn fresh_buffers_have_the_exact_capacity() {
        let buffer = fresh(64, 10);
        assert_eq!((buffer.len(), buffer.capacity()), (10, 64));
        assert!(buffer.iter().all(|&b| b == 0));
        assert_eq!(fresh(10, 10).capacity(), 10);
        let buffer = try_fresh(64, 3).unwrap();
        assert_eq!((buffer.len(), buffer.capacity()), (3, 64));
        assert!(try_fresh(usize::MAX, 0).is_err());
    }
}
