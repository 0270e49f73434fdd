//! Synthetic datasets written with the real writer, and loaders run to the
//! end of an epoch, for the tests, benches and examples of every crate
//! (cargo feature `testing`). These helpers panic on failure: they are test
//! support, not library code.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let dataset = mosaicrs::testing::write_dataset(dir.path(), 100, 2, 16, Default::default());
//! assert_eq!(dataset.num_rows(), 100);
//! # Ok::<(), std::io::Error>(())
//! ```

#[cfg(unix)]
pub mod moto;

use std::path::Path;
use std::sync::Arc;

use crate::format::Compression;
use crate::loader::{LoadedBatch, Loader, LoaderConfig, ShuffleMode, TailPolicy};
use crate::reader::Dataset;
use crate::storage::Location;
use crate::writer::{commit, SaveMode, ShardWriter, WriterOptions};
use arrow::array::{Array, Float32Array, Int64Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

/// Writes `n` rows (`id` = row number, `x` = id / 2) as `parts` write
/// partitions (one or more shards each) with record batches of at most
/// `batch_rows` rows, and opens the dataset.
pub fn write_dataset(
    dir: &Path,
    n: u64,
    parts: u64,
    batch_rows: usize,
    compression: Compression,
) -> Arc<Dataset> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float32, false),
    ]));
    let options = WriterOptions {
        max_batch_rows: batch_rows,
        compression,
        ..WriterOptions::default()
    };
    let mut shards = Vec::new();
    let per_part = n.div_ceil(parts.max(1));
    for p in 0..parts {
        let start = p * per_part;
        let end = ((p + 1) * per_part).min(n);
        let mut w =
            ShardWriter::create(dir, schema.clone(), "test", p as u32, 0, options).expect("writer");
        if end > start {
            let ids = Int64Array::from_iter_values(start as i64..end as i64);
            let xs = Float32Array::from_iter_values((start..end).map(|i| i as f32 / 2.0));
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(xs)]).unwrap();
            w.write(&batch).expect("write");
        }
        shards.extend(w.finish().expect("finish"));
    }
    commit(dir, &schema, "test", shards, SaveMode::ErrorIfExists).expect("commit");
    Arc::new(Dataset::open(dir).expect("open"))
}

/// A loader configuration for tests.
pub fn config(batch_size: usize, world_size: usize, rank: usize, workers: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size,
        seed: 42,
        shuffle: ShuffleMode::Global,
        tail: TailPolicy::DropLast,
        rank,
        world_size,
        workers,
        prefetch: 2,
        columns: None,
        rows: None,
    }
}

/// The `id` column of a delivered batch.
pub fn ids(batch: &LoadedBatch<RecordBatch>) -> Vec<u64> {
    let col = batch.data.column_by_name("id").expect("id column");
    let ids = col.as_any().downcast_ref::<Int64Array>().expect("int64");
    assert_eq!(ids.null_count(), 0);
    ids.values().iter().map(|&v| v as u64).collect()
}

/// Runs the rest of the current epoch; returns each batch's (position, rows),
/// after checking that the gathered ids equal the reported rows.
pub fn run_epoch(loader: &mut Loader) -> Vec<(u64, Vec<u64>, usize)> {
    run_steps(loader, usize::MAX)
}

/// Runs at most `steps` batches of the current epoch.
pub fn run_steps(loader: &mut Loader, steps: usize) -> Vec<(u64, Vec<u64>, usize)> {
    let mut out = Vec::new();
    for batch in loader.epoch().expect("epoch").take(steps) {
        let batch = batch.expect("batch");
        assert_eq!(ids(&batch), batch.rows, "gathered ids differ from the rows");
        let x = batch.data.column_by_name("x").expect("x column");
        let x = x.as_any().downcast_ref::<Float32Array>().expect("f32");
        for (i, &row) in batch.rows.iter().enumerate() {
            assert_eq!(x.value(i), row as f32 / 2.0);
        }
        out.push((batch.position, batch.rows, batch.padding));
    }
    out
}

/// Writes `batches` to `location` as write `write_id` (one write task),
/// uncommitted; returns its shards.
pub fn write_at(
    location: &Location,
    write_id: &str,
    batches: &[RecordBatch],
    options: WriterOptions,
) -> Vec<crate::format::ShardEntry> {
    let schema = batches.first().expect("at least one batch").schema();
    let mut w = ShardWriter::create_at(location, schema, write_id, 0, 0, options).expect("create");
    for b in batches {
        w.write(b).expect("write");
    }
    w.finish().expect("finish")
}

/// Writes `batches` to `location` and commits them with `mode`; returns the
/// committed shards.
pub fn publish_at(
    location: &Location,
    write_id: &str,
    batches: &[RecordBatch],
    options: WriterOptions,
    mode: SaveMode,
) -> Vec<crate::format::ShardEntry> {
    let shards = write_at(location, write_id, batches, options);
    let schema = batches[0].schema();
    crate::writer::commit_at(location, &schema, write_id, shards.clone(), mode, None)
        .expect("commit");
    shards
}

/// One of two racing writers: reads the dataset's version at `location`,
/// writes `batch` as write `write_id`, waits for the other writer at
/// `barrier`, then commits with `mode` against the version it read.
pub fn racing_commit(
    location: &Location,
    write_id: &str,
    batch: &RecordBatch,
    mode: SaveMode,
    barrier: &std::sync::Barrier,
) -> crate::Result<crate::writer::CommitOutcome> {
    let base = crate::writer::dataset_version_at(location).expect("version");
    let shards = write_at(
        location,
        write_id,
        std::slice::from_ref(batch),
        Default::default(),
    );
    barrier.wait();
    crate::writer::commit_at(
        location,
        &batch.schema(),
        write_id,
        shards,
        mode,
        Some(&base),
    )
}

/// Publishes each batch as its own committed write (`w00`, `w01`, ...;
/// the first creates the dataset, the others append), so the dataset at
/// `location` has one shard per batch, in order.
pub fn publish_each_at(location: &Location, batches: impl IntoIterator<Item = RecordBatch>) {
    for (i, batch) in batches.into_iter().enumerate() {
        let mode = if i == 0 {
            SaveMode::ErrorIfExists
        } else {
            SaveMode::Append
        };
        publish_at(
            location,
            &format!("w{i:02}"),
            &[batch],
            Default::default(),
            mode,
        );
    }
}
