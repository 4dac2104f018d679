//! Size classes: which bucket a length belongs to, and how long a bucket's buffers are.
//!
//! Buckets are powers of two from [`MIN_BUCKET_LEN`] (16 bytes) up. Bucket `i` holds buffers of
//! capacity `16 << i`. The mapping follows .NET's `Utilities.SelectBucketIndex`:
//! `log2((n - 1) | 15) - 3`, which sends 1..=16 to bucket 0, 17..=32 to bucket 1, and in
//! general `2^(k-1)+1 ..= 2^k` to bucket `k - 4`. These are pure functions; the pool checks the
//! range (`1 ..= max_len`) before calling them.

/// The smallest bucket: requests of 1..=16 bytes get a 16-byte buffer.
///
/// Sixteen is .NET's choice; below it the bookkeeping costs more than the bytes.
///
/// # Examples
///
/// ```
/// let buf = arraypool::ArrayPool::shared().rent(1);
/// assert_eq!(buf.capacity(), arraypool::MIN_BUCKET_LEN);
/// ```
pub const MIN_BUCKET_LEN: usize = 16;

/// `log2(MIN_BUCKET_LEN)`: bucket `i` has length `1 << (i + MIN_BUCKET_SHIFT)`.
const MIN_BUCKET_SHIFT: u32 = MIN_BUCKET_LEN.trailing_zeros();

/// The largest length any pool keeps: 2^30 bytes (1 GiB), the cap .NET uses since .NET 6
/// (dotnet/runtime PR #55621). A pool may be configured with a smaller maximum, never a larger
/// one; requests above a pool's maximum are allocated exactly and dropped on return.
///
/// # Examples
///
/// ```
/// use arraypool::{ArrayPool, MAX_POOLED_LEN};
///
/// // `create` lowers a larger maximum to the cap.
/// assert_eq!(ArrayPool::create(usize::MAX, 1).max_len(), MAX_POOLED_LEN);
/// ```
pub const MAX_POOLED_LEN: usize = 1 << 30;

/// How many buckets the largest pool has: 16 B, 32 B, … 2^30 B is 27 buckets.
pub(crate) const MAX_BUCKETS: usize = bucket_index(MAX_POOLED_LEN) + 1;

/// The bucket that serves a request of `n` bytes.
///
/// `n` must be at least 1; the pool rejects 0 before it gets here (`n - 1` would wrap, and the
/// wrapped value lands far outside any pool's range, so a slip would be caught by the range
/// check rather than serve a wrong bucket).
#[inline]
pub(crate) const fn bucket_index(n: usize) -> usize {
    debug_assert!(n >= 1);
    // `| 15` folds 1..=16 into one class; `ilog2` of the result is at least 3.
    (((n - 1) | (MIN_BUCKET_LEN - 1)).ilog2() + 1 - MIN_BUCKET_SHIFT) as usize
}

/// The bucket that serves a rent of `n` bytes from a pool whose largest bucket is `max_len`,
/// or `None` when `n` is 0 or above `max_len` (the pool does not pool those).
///
/// One wrapping comparison rejects both: `0 - 1` wraps to `usize::MAX`.
#[inline]
pub(crate) const fn pooled_bucket(n: usize, max_len: usize) -> Option<usize> {
    if n.wrapping_sub(1) < max_len {
        Some(bucket_index(n))
    } else {
        None
    }
}

/// The capacity of every buffer in bucket `index`.
#[inline]
pub(crate) const fn bucket_len(index: usize) -> usize {
    MIN_BUCKET_LEN << index
}

/// The bucket of a pool whose largest bucket is `max_len` that keeps buffers of exactly
/// `capacity` bytes, if any does: only exact powers of two from 16 to `max_len` qualify.
#[inline]
pub(crate) const fn bucket_of_capacity(capacity: usize, max_len: usize) -> Option<usize> {
    if capacity.is_power_of_two() && capacity >= MIN_BUCKET_LEN && capacity <= max_len {
        Some((capacity.trailing_zeros() - MIN_BUCKET_SHIFT) as usize)
    } else {
        None
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn small_lengths_share_the_first_bucket() {
        for n in 1..=16 {
            assert_eq!(bucket_index(n), 0, "n = {n}");
        }
        assert_eq!(bucket_index(17), 1);
    }

    #[test]
    fn every_bucket_edge_maps_to_the_right_bucket() {
        for i in 0..MAX_BUCKETS {
            let len = bucket_len(i);
            assert_eq!(bucket_index(len), i, "exact length {len}");
            if i > 0 {
                assert_eq!(
                    bucket_index(len / 2 + 1),
                    i,
                    "just above the previous bucket"
                );
                assert_eq!(bucket_index(len / 2), i - 1, "the previous bucket's length");
            }
            assert_eq!(bucket_index(len + 1), i + 1, "one past {len}");
        }
    }

    #[test]
    fn the_bucket_always_fits_the_request() {
        let samples = [
            1,
            2,
            15,
            16,
            17,
            100,
            1000,
            4095,
            4096,
            4097,
            10_000,
            100_000,
            1 << 20,
        ];
        for n in samples {
            let len = bucket_len(bucket_index(n));
            assert!(len >= n && len >= MIN_BUCKET_LEN, "n = {n}, len = {len}");
            assert!(
                len < 2 * n.max(MIN_BUCKET_LEN),
                "n = {n}: {len} wastes half or more"
            );
        }
    }

    #[test]
    fn the_largest_bucket_is_the_pooled_maximum() {
        assert_eq!(MAX_BUCKETS, 27);
        assert_eq!(bucket_len(MAX_BUCKETS - 1), MAX_POOLED_LEN);
        assert_eq!(bucket_index(MAX_POOLED_LEN + 1), MAX_BUCKETS);
    }

    #[test]
    fn only_exact_bucket_capacities_have_a_bucket() {
        let of = |capacity| bucket_of_capacity(capacity, MAX_POOLED_LEN);
        assert_eq!(of(0), None);
        assert_eq!(of(8), None);
        assert_eq!(of(15), None);
        assert_eq!(of(16), Some(0));
        assert_eq!(of(17), None);
        assert_eq!(of(100), None);
        assert_eq!(of(4096), Some(8));
        assert_eq!(of(MAX_POOLED_LEN), Some(MAX_BUCKETS - 1));
        assert_eq!(of(MAX_POOLED_LEN << 1), None);
        assert_eq!(of(usize::MAX), None);
        for i in 0..MAX_BUCKETS {
            assert_eq!(of(bucket_len(i)), Some(i));
        }
    }

    #[test]
    fn capacities_above_the_pools_maximum_have_no_bucket() {
        assert_eq!(bucket_of_capacity(4096, 4096), Some(8));
        assert_eq!(bucket_of_capacity(8192, 4096), None);
        assert_eq!(bucket_of_capacity(16, 16), Some(0));
    }

    #[test]
    fn only_lengths_from_one_to_the_maximum_are_pooled() {
        assert_eq!(pooled_bucket(0, 4096), None);
        assert_eq!(pooled_bucket(1, 4096), Some(0));
        assert_eq!(pooled_bucket(4096, 4096), Some(8));
        assert_eq!(pooled_bucket(4097, 4096), None);
        assert_eq!(pooled_bucket(usize::MAX, MAX_POOLED_LEN), None);
    }

    #[test]
    fn huge_lengths_fall_past_every_bucket() {
        assert!(bucket_index(usize::MAX) >= MAX_BUCKETS);
        assert!(bucket_index(isize::MAX as usize) >= MAX_BUCKETS);
    }
}
