//! The one-shot write: a stream of record batches into a dataset, in one
//! commit. The CLI's `convert` and Python's `mosaicrs.write` are this
//! pipeline; a Spark write runs its pieces apart (a [`ShardWriter`] per task
//! attempt, one [`commit_at_with`] on the driver).

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::storage::Location;
use crate::writer::commit::{abort_write_at, check_save_mode_with, commit_at_with, new_write_id};
use crate::writer::{CommitOutcome, SaveMode, ShardWriter, WriteOptions};
use crate::Result;

/// Where a write stands after one more input batch, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteProgress {
    /// Rows written so far, this batch's included.
    pub rows: u64,
    /// Rows of the input batch just written.
    pub batch_rows: usize,
    /// Memory of the input batch just written, in bytes.
    pub batch_bytes: usize,
}

/// What a one-shot write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReport {
    /// The write's id (its shards' names carry it).
    pub write_id: String,
    /// Rows this write wrote.
    pub rows: u64,
    /// Shards this write wrote.
    pub shards: usize,
    /// Bytes of those shards.
    pub bytes: u64,
    /// The commit: whether it published (`Ignore` over a dataset does not),
    /// the dataset's rows after it, the files it removed.
    pub outcome: CommitOutcome,
}

/// Writes every batch of `batches` (rows of `schema`) to the dataset at
/// `location` under `options` (shard size, compression, rows per batch,
/// column layout, whether an append may add columns), and commits them in
/// `mode`.
///
/// The save mode is checked, and the dataset's version read, once before
/// anything is written; the layout is planned once. The commit publishes
/// only against that version (an append re-applies itself to a newer
/// index). Any error (from the input, the layout, the writer or the commit)
/// deletes what this write left and is returned; the dataset is as it was.
/// `progress` is called after each input batch.
///
/// ```
/// use std::sync::Arc;
/// use arrow::array::Int64Array;
/// use arrow::datatypes::{DataType, Field, Schema};
/// use arrow::record_batch::RecordBatch;
/// use mosaicrs::storage::Location;
/// use mosaicrs::writer::{write_batches, SaveMode, WriteOptions};
///
/// let dir = tempfile::tempdir().unwrap();
/// let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
/// let batch = RecordBatch::try_new(schema.clone(),
///     vec![Arc::new(Int64Array::from_iter_values(0..100))]).unwrap();
/// let options = WriteOptions::from_options([("shardSize", "1m")]).unwrap();
/// let report = write_batches(&Location::local(dir.path()), &schema, [Ok(batch)], &options,
///     SaveMode::ErrorIfExists, None).unwrap();
/// assert_eq!((report.rows, report.shards, report.outcome.total_rows), (100, 1, 100));
/// ```
pub fn write_batches<I>(
    location: &Location,
    schema: &SchemaRef,
    batches: I,
    options: &WriteOptions,
    mode: SaveMode,
    mut progress: Option<&mut dyn FnMut(WriteProgress)>,
) -> Result<WriteReport>
where
    I: IntoIterator<Item = Result<RecordBatch>>,
{
    let layout = options.layout.plan(schema)?;
    let stored = layout.schema().clone();
    let commit_options = options.commit_options();
    // The version the commit compares against: a commit by another writer
    // from now on is either re-applied under (append) or refused.
    let base = check_save_mode_with(location, &stored, mode, &commit_options)?;
    let write_id = new_write_id();
    let mut writer =
        ShardWriter::create_at(location, stored.clone(), &write_id, 0, 0, options.writer)?;
    for batch in batches {
        let written = batch.and_then(|b| {
            writer.write(&layout.apply(&b, writer.rows_written())?)?;
            Ok(b)
        });
        match written {
            Ok(b) => {
                if let Some(report) = progress.as_mut() {
                    report(WriteProgress {
                        rows: writer.rows_written(),
                        batch_rows: b.num_rows(),
                        batch_bytes: b.get_array_memory_size(),
                    });
                }
            }
            Err(e) => {
                // The input's error is the one to report, not a failed clean-up.
                let _ = writer.abort();
                return Err(e);
            }
        }
    }
    let rows = writer.rows_written();
    // A failed finish removes the writer's own files.
    let shards = writer.finish()?;
    let (count, bytes) = (shards.len(), shards.iter().map(|s| s.bytes).sum());
    let outcome = commit_at_with(
        location,
        &stored,
        &write_id,
        shards,
        mode,
        Some(&base),
        &commit_options,
    )
    .inspect_err(|_| {
        // A failed commit (a full disk, a lost race) leaves nothing of this write behind.
        let _ = abort_write_at(location, &write_id);
    })?;
    Ok(WriteReport {
        write_id,
        rows,
        shards: count,
        bytes,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float32Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::format::Index;
    use crate::Error;

    fn batch(from: i64, rows: i64) -> RecordBatch {
        let values = from..from + rows;
        RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(Int64Array::from_iter_values(values.clone())) as _,
            ),
            (
                "a",
                Arc::new(Float32Array::from_iter_values(
                    values.clone().map(|v| v as f32),
                )) as _,
            ),
            (
                "b",
                Arc::new(Float32Array::from_iter_values(values.map(|v| -v as f32))) as _,
            ),
        ])
        .unwrap()
    }

    fn files(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_packs_reports_progress_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::local(dir.path());
        let options = WriteOptions::from_options([
            ("shardSize", "1k"),
            ("batchRows", "100"),
            ("pack.features", "a,b"),
        ])
        .unwrap();
        let input = (0..5).map(|i| Ok(batch(i * 300, 300)));
        let mut seen = Vec::new();
        let mut record = |p: WriteProgress| seen.push((p.rows, p.batch_rows));
        let report = write_batches(
            &location,
            &batch(0, 1).schema(),
            input,
            &options,
            SaveMode::ErrorIfExists,
            Some(&mut record),
        )
        .unwrap();
        assert_eq!(
            seen,
            [(300, 300), (600, 300), (900, 300), (1200, 300), (1500, 300)]
        );
        assert_eq!(report.rows, 1500);
        assert!(report.outcome.committed);
        assert_eq!(report.outcome.total_rows, 1500);
        let index = Index::load(dir.path()).unwrap();
        assert_eq!(index.shards.len(), report.shards);
        assert!(report.shards > 1);
        assert_eq!(index.total_bytes, report.bytes);
        assert!(index.shards.iter().all(|s| s.write_id == report.write_id));
        let schema = index.arrow_schema().unwrap();
        assert_eq!(schema.field(1).name(), "features");

        // Appending adds rows; ignore keeps the dataset and writes nothing that stays.
        let ten_more = |mode| {
            write_batches(
                &location,
                &batch(0, 1).schema(),
                [Ok(batch(0, 10))],
                &options,
                mode,
                None,
            )
            .unwrap()
        };
        assert_eq!(ten_more(SaveMode::Append).outcome.total_rows, 1510);
        let before = files(dir.path());
        assert!(!ten_more(SaveMode::Ignore).outcome.committed);
        assert_eq!(files(dir.path()), before);
    }

    #[test]
    fn a_failing_input_or_a_refused_mode_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::local(dir.path());
        let options = WriteOptions::from_options([("shardSize", "1k")]).unwrap();
        let input = (0..4).map(|i| {
            if i == 3 {
                Err(Error::InvalidArgument("the source broke".into()))
            } else {
                Ok(batch(i * 500, 500))
            }
        });
        let schema = batch(0, 1).schema();
        let err = write_batches(
            &location,
            &schema,
            input,
            &options,
            SaveMode::Overwrite,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("the source broke"), "{err}");
        assert_eq!(files(dir.path()), Vec::<String>::new());

        let five =
            |mode| write_batches(&location, &schema, [Ok(batch(0, 5))], &options, mode, None);
        five(SaveMode::ErrorIfExists).unwrap();
        let before = files(dir.path());
        let exists = five(SaveMode::ErrorIfExists).unwrap_err();
        assert!(matches!(exists, Error::AlreadyExists { .. }), "{exists}");
        let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        let mismatch =
            write_batches(&location, &other, [], &options, SaveMode::Append, None).unwrap_err();
        assert!(
            matches!(mismatch, Error::SchemaMismatch { .. }),
            "{mismatch}"
        );
        assert_eq!(files(dir.path()), before);
    }
}
