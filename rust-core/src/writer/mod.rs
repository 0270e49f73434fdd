//! Writing datasets: shards first, then one atomic commit of the index.
//!
//! A write has two phases, matching Spark's commit protocol:
//!
//! 1. Each task attempt runs a [`ShardWriter`], which seals its shards under
//!    names unique to the attempt and returns their [`ShardEntry`]s. Nothing
//!    is visible to readers yet.
//! 2. One [`commit`] call (the Spark driver, or the CLI) writes the new index
//!    atomically and removes what failed or duplicate attempts left behind.
//!
//! [`write_batches`] runs both phases for a stream of batches in one process
//! (the CLI's `convert`, Python's `write`), and [`WriteOptions`] parses the
//! options every entry point takes by name.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::Int64Array;
//! use arrow::datatypes::{DataType, Field, Schema};
//! use arrow::record_batch::RecordBatch;
//! use mosaicrs::writer::{commit, SaveMode, ShardWriter, WriterOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
//! let batch = RecordBatch::try_new(schema.clone(),
//!     vec![Arc::new(Int64Array::from_iter_values(0..100))]).unwrap();
//!
//! let mut writer = ShardWriter::create(dir.path(), schema.clone(), "w1", 0, 0,
//!     WriterOptions::default()).unwrap();
//! writer.write(&batch).unwrap();
//! let shards = writer.finish().unwrap();
//! let outcome = commit(dir.path(), &schema, "w1", shards, SaveMode::ErrorIfExists).unwrap();
//! assert_eq!(outcome.total_rows, 100);
//! ```
//!
//! [`ShardEntry`]: crate::format::ShardEntry

mod column_layout;
mod commit;
pub mod history;
mod options;
mod pipeline;
mod shard_writer;
mod vacuum;

pub use column_layout::{
    layout_hint, packed_columns, ColumnLayout, LayoutPlan, FIXED_LENGTH_OPTION, PACKED_COLUMNS_KEY,
    PACK_OPTION,
};
pub use commit::{
    abort_write, abort_write_at, check_append_schema, check_append_schema_at, check_save_mode_at,
    check_save_mode_with, commit, commit_at, commit_at_with, commit_from, dataset_version,
    dataset_version_at, new_write_id, repair_head, CommitOptions, CommitOutcome, SaveMode,
    WRITES_KEPT,
};
pub use options::{
    WriteOptions, WriterOptions, BATCH_ROWS_OPTION, COMPRESSION_OPTION, DEFAULT_BATCH_ROWS,
    DEFAULT_COMPRESSED_BATCH_ROWS, DEFAULT_SPARK_BATCH_ROWS, MERGE_SCHEMA_OPTION, METADATA_OPTION,
    SHARD_SIZE_OPTION,
};
pub use pipeline::{write_batches, WriteProgress, WriteReport};
pub use shard_writer::ShardWriter;
pub use vacuum::{is_writer_file, vacuum, vacuum_versions, Retention, VacuumReport};
