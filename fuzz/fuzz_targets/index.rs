//! `index.json` parsing and checking.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mosaicrs::fuzz_targets::index(data);
});
