//! The shard decoder: footer, record batch headers, buffers (raw, zstd, lz4).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mosaicrs::fuzz_targets::shard(data);
});
