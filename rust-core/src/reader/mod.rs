//! Reading datasets: memory-mapped shards, zero-copy record batches, random
//! access by global row, and checksum verification.
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow::array::{Array, Int64Array};
//! # use arrow::datatypes::{DataType, Field, Schema};
//! # use arrow::record_batch::RecordBatch;
//! # use mosaicrs::writer::{commit, SaveMode, ShardWriter, WriterOptions};
//! use mosaicrs::reader::Dataset;
//! # let dir = tempfile::tempdir().unwrap();
//! # let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
//! # let batch = RecordBatch::try_new(schema.clone(),
//! #     vec![Arc::new(Int64Array::from_iter_values(0..10))]).unwrap();
//! # let mut w = ShardWriter::create(dir.path(), schema.clone(), "w", 0, 0, WriterOptions::default()).unwrap();
//! # w.write(&batch).unwrap();
//! # commit(dir.path(), &schema, "w", w.finish().unwrap(), SaveMode::Append).unwrap();
//! let dataset = Dataset::open(dir.path()).unwrap();
//! assert_eq!(dataset.num_rows(), 10);
//! let row = dataset.row(7).unwrap();
//! let ids = row.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
//! assert_eq!(ids.value(0), 7);
//! ```

mod batch_cache;
mod dataset;
mod footer;
mod message;
mod options;
mod row_arena;
mod rows;
mod shard;
mod source;
#[cfg(unix)]
mod streamed;
mod validate;

pub use batch_cache::{BatchCache, BatchCacheStats, DEFAULT_BATCH_CACHE_BYTES};
pub(crate) use batch_cache::{Built, RowBlock, RowLayout};
pub use dataset::Dataset;
pub use message::DECODED_BATCH_LIMIT;
pub use options::{is_remote_file_system, Access, ReadOptions};
pub(crate) use row_arena::{Piece, RowArena};
pub use rows::RowLocation;
pub(crate) use rows::{pick_mixed, Picks};
pub(crate) use shard::panic_message;
pub use shard::Shard;
pub use source::DataSource;
#[cfg(unix)]
pub use streamed::StreamedDataset;
pub use validate::{validate, validate_index, ShardProblem, ValidationReport};
