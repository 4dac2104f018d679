//! Placeholder until the benchmark suite lands (same commit series).
fn main() {}
