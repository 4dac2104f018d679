//! What the pool asks of the operating system and the C library: which CPU a thread runs on,
//! how many CPUs the process may use, and to give freed memory back.
//!
//! All platform-specific code and every `unsafe` block of the crate live in this module (one
//! FFI call), each with a `// SAFETY:` comment. Everything else is `#![deny(unsafe_code)]`
//! through the crate's lint table.
#![allow(unsafe_code)]

/// The CPU the calling thread is running on (or a stable per-thread number where the platform
/// cannot say), as of one of its last few calls. Callers reduce it modulo their partition
/// count.
///
/// The answer is a hint: the thread may migrate right after reading it, which costs at most a
/// visit to another partition, never correctness. So, as .NET's `ProcessorIdCache` does, the
/// number is read from the OS once every [`CPU_REFRESH`] calls and served from a thread-local
/// in between: `sched_getcpu` costs about 3.7 ns here (glibc 2.36 on KVM, the vDSO path), two
/// per rent and return on a partition path, where the thread-local costs a load and a store.
#[inline]
pub(crate) fn current_cpu() -> usize {
    CACHED_CPU
        .try_with(|cached| {
            let (cpu, uses_left) = cached.get();
            if uses_left == 0 {
                let cpu = os_cpu();
                cached.set((cpu, CPU_REFRESH - 1));
                cpu
            } else {
                cached.set((cpu, uses_left - 1));
                cpu
            }
        })
        .unwrap_or_else(|_| os_cpu())
}

/// How many calls of [`current_cpu`] one reading of the OS serves: a thread that migrates
/// keeps its old home for at most this many partition visits.
const CPU_REFRESH: u32 = 64;

std::thread_local! {
    /// `(cpu, calls left before the next reading)`. No destructor, so it stays usable during
    /// thread exit.
    static CACHED_CPU: std::cell::Cell<(usize, u32)> = const { std::cell::Cell::new((0, 0)) };
}

/// The OS's answer, or the fallback.
#[inline(never)]
fn os_cpu() -> usize {
    #[cfg(all(target_os = "linux", not(miri), not(all(test, loom))))]
    {
        // SAFETY: `sched_getcpu` takes no arguments, touches no memory of ours and is
        // thread-safe; glibc serves it from rseq or the vDSO. It returns -1 on failure,
        // which the `try_from` below turns into the fallback.
        let cpu = unsafe { libc::sched_getcpu() };
        if let Ok(cpu) = usize::try_from(cpu) {
            return cpu;
        }
    }
    fallback::thread_number()
}

/// Asks the allocator to return freed memory to the operating system, after a trim released
/// buffers.
///
/// glibc keeps freed chunks below its mmap threshold (128 KiB by default) in its heap, and a
/// heap's memory goes back to the system only from its top, so freeing buffers alone often
/// leaves the resident set where it was. `malloc_trim(0)` releases every free page of every
/// arena (`madvise(MADV_DONTNEED)`), which is what makes a trim visible in the resident set
/// (`docs/decisions.md`, `tests/trim_resident_set.rs`). Elsewhere (musl, other systems, Miri)
/// it does nothing: those allocators return memory on their own terms.
pub(crate) fn release_free_memory() {
    #[cfg(all(
        target_os = "linux",
        target_env = "gnu",
        not(miri),
        not(all(test, loom))
    ))]
    {
        // SAFETY: `malloc_trim` takes a byte count and touches only the allocator's own state,
        // under the allocator's own locks; it is safe to call from any thread at any time. Its
        // return value (whether memory was released) is not needed.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// How many CPUs this process may run on (affinity and cgroup quota included), at least 1.
pub(crate) fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Where the OS gives no CPU number (or under Miri and loom, which model threads, not CPUs),
/// threads are numbered round-robin on first use, so concurrent threads still spread over the
/// partitions.
mod fallback {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static NEXT: AtomicUsize = AtomicUsize::new(0);

    std::thread_local! {
        static NUMBER: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    #[cfg_attr(
        all(target_os = "linux", not(miri), not(all(test, loom))),
        allow(dead_code)
    )]
    pub(super) fn thread_number() -> usize {
        NUMBER
            .try_with(|number| {
                if number.get() == usize::MAX {
                    number.set(NEXT.fetch_add(1, Ordering::Relaxed) % (usize::MAX / 2));
                }
                number.get()
            })
            .unwrap_or(0)
    }
}
