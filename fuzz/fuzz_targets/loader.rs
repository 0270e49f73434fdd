//! A one-shard dataset on disk through the loader: open, decode, shuffle,
//! gather on worker threads.
#![no_main]

use std::sync::OnceLock;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temp folder"));
    mosaicrs::fuzz_targets::loader(data, dir.path());
});
