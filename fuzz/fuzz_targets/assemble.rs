//! A one-shard dataset through the loader: decode, gather, assemble batches.
#![no_main]

use std::sync::OnceLock;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temp folder"));
    mosaicrs::fuzz_targets::assemble(data, dir.path());
});
