//! Panicking shorthands over `mosaicrs::testing` for the integration tests.
#![allow(dead_code, unused_imports)]

use std::path::Path;

use arrow::record_batch::RecordBatch;
use mosaicrs::format::ShardEntry;
pub use mosaicrs::testing::{all_types_batch, files_in, simple_batch, simple_schema, write_shards};
use mosaicrs::writer::WriterOptions;

/// Writes and commits `batches` as a new dataset.
pub fn write_dataset(dir: &Path, batches: &[RecordBatch], options: WriterOptions) {
    mosaicrs::testing::write_batches(dir, batches, options).expect("write");
}
