//! Leases in tokio: a `Lease<'static>` of the shared pool and an `OwnedLease` cross
//! `tokio::spawn` and `.await`, and `read_buf` fills a `lease_with_capacity` within its bucket.
//!
//! Not under Miri (tokio's runtime is slow there and adds nothing the other lease tests do not
//! check) nor loom (tokio is no dev-dependency under `--cfg loom`).
#![cfg(not(loom))]

use std::sync::Arc;
use std::time::Duration;

use arraypool::{ArrayPool, Lease, OwnedLease};
use tokio::io::AsyncReadExt;

fn pool() -> ArrayPool {
    ArrayPool::builder()
        .max_len(1 << 16)
        .per_bucket(16)
        .partitions(1)
        .idle_timeout(None)
        .build()
        .unwrap()
}

#[test]
#[cfg_attr(
    miri,
    ignore = "tokio's runtime under Miri is slow and covered elsewhere"
)]
fn a_shared_lease_crosses_spawn_and_await_on_a_multi_thread_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let lengths = runtime.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..16 {
            let mut lease: Lease<'static> = ArrayPool::shared().lease_with_capacity(4000);
            tasks.push(tokio::spawn(async move {
                lease.extend_from_slice(&[i as u8; 100]);
                tokio::time::sleep(Duration::from_millis(1)).await; // held across an await
                tokio::task::yield_now().await;
                lease.extend_from_slice(&[i as u8; 100]);
                assert!(lease.iter().all(|&b| b == i as u8));
                (lease.len(), lease.capacity())
            }));
        }
        let mut lengths = Vec::new();
        for task in tasks {
            lengths.push(task.await.unwrap());
        }
        lengths
    });
    assert!(lengths.iter().all(|&l| l == (200, 4096)));
}

#[test]
#[cfg_attr(
    miri,
    ignore = "tokio's runtime under Miri is slow and covered elsewhere"
)]
fn owned_leases_of_a_custom_pool_return_from_spawned_tasks() {
    let pool = Arc::new(pool());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let mut lease: OwnedLease = Arc::clone(&pool).lease_owned(1000);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    lease[999] = 1;
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    drop(runtime);
    let stats = pool.stats();
    assert_eq!(
        (stats.rented, stats.returned, stats.held_buffers),
        (8, 8, 8)
    );
    assert_eq!(
        Arc::strong_count(&pool),
        1,
        "every lease let go of the pool"
    );
}

#[test]
#[cfg_attr(
    miri,
    ignore = "tokio's runtime under Miri is slow and covered elsewhere"
)]
fn read_buf_fills_a_lease_with_capacity_within_its_bucket() {
    let pool = pool();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let source = vec![0x42u8; 20_000];
    runtime.block_on(async {
        for _ in 0..3 {
            let mut reader: &[u8] = &source[..16_000];
            let mut buf = pool.lease_with_capacity(16_000);
            let addr = buf.as_ptr();
            // `read_buf` appends into the spare capacity, as it does from a socket.
            while reader.read_buf(&mut *buf).await.unwrap() > 0 {}
            assert_eq!((buf.len(), buf.capacity()), (16_000, 16384));
            assert_eq!(buf.as_ptr(), addr, "no reallocation");
        }
    });
    let stats = pool.stats();
    assert_eq!(
        (
            stats.rented,
            stats.allocated,
            stats.returned,
            stats.dropped_foreign
        ),
        (3, 1, 3, 0),
        "one buffer, rented three times, kept each time"
    );
}
