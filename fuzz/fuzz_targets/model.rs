//! The op-sequence model of `tests/support/model.rs` as a libFuzzer target: the input's first
//! byte picks the pool (max_len, per_bucket, partitions, thread cache), a second byte the thread
//! cache's budget when it has one, and the rest decodes to ops.
//! Run: `cargo +nightly fuzz run model` (see docs/reliability.md).
#![no_main]

#[path = "../../tests/support/model.rs"]
mod model;

libfuzzer_sys::fuzz_target!(|data: &[u8]| model::run_bytes(data));
