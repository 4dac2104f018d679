//! `trim()` makes the resident set fall: the freed buffers' pages go back to the system, not
//! just to the allocator's free lists (glibc keeps 64 KiB blocks on its heap, and only
//! `malloc_trim` returns them).
//!
//! One test per file: the resident set is the whole process's.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use arraypool::ArrayPool;

/// The process's resident set in bytes, from `/proc/self/statm` (its second field, in pages).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * page_size()
}

/// The kernel's page size, from the first mapping in `/proc/self/smaps` (4 KiB if absent).
fn page_size() -> u64 {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    smaps
        .lines()
        .find_map(|line| line.strip_prefix("KernelPageSize:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(4096, |kb| kb * 1024)
}

#[test]
#[cfg_attr(miri, ignore = "reads /proc")]
fn trim_gives_32_mib_of_64_kib_buffers_back_to_the_system() {
    const COUNT: usize = 512;
    const LEN: usize = 64 << 10; // below glibc's mmap threshold: these live on the heap
    let pool = ArrayPool::builder()
        .max_len(LEN)
        .per_bucket(COUNT)
        .idle_timeout(None)
        .build()
        .unwrap();
    let baseline = resident_bytes();
    let burst: Vec<Vec<u8>> = (0..COUNT)
        .map(|i| {
            let mut buffer = pool.rent(LEN);
            buffer.fill(i as u8); // touch every page
            buffer
        })
        .collect();
    for buffer in burst {
        pool.return_(buffer);
    }
    let held = resident_bytes();
    let pooled = (COUNT * LEN) as u64;
    assert_eq!(pool.stats().held_bytes, pooled);
    assert!(
        held >= baseline + pooled * 3 / 4,
        "the burst is resident: {baseline} -> {held}"
    );
    let started = std::time::Instant::now();
    pool.trim();
    let took = started.elapsed();
    let trimmed = resident_bytes();
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    eprintln!(
        "resident: {:.1} MiB before the burst, {:.1} MiB held, {:.1} MiB after trim() \
         ({:.1} MiB given back of {:.1} released, in {took:?})",
        mib(baseline),
        mib(held),
        mib(trimmed),
        mib(held.saturating_sub(trimmed)),
        mib(pooled),
    );
    assert_eq!(pool.stats().held_bytes, 0);
    assert!(
        trimmed + pooled * 3 / 4 <= held,
        "at least 24 of the 32 MiB went back: {held} -> {trimmed} (baseline {baseline})"
    );
}
