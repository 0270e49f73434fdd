//! The tensor assembler: a shard decoded in memory, its rows gathered in a
//! shuffled order and converted into typed buffers, column by column.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mosaicrs::fuzz_targets::assemble(data);
});
