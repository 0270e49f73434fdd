//! Writing datasets from Python: a whole Arrow stream in one call
//! ([`write_stream`]), or the two phases of a distributed write
//! ([`PartitionWriter`] per task attempt, then [`commit`] on the driver).

use std::sync::{Arc, Mutex};

use arrow::datatypes::Schema;
use arrow::ffi_stream::RecordBatchStreamReader;
use arrow::record_batch::RecordBatch;
use arrow_pyarrow::{FromPyArrow, PyArrowType};
use mosaicrs::format::{Compression, ShardEntry};
use mosaicrs::storage::Location;
use mosaicrs::units::parse_byte_size;
use mosaicrs::writer::{
    abort_write_at, check_save_mode_at, commit_at, dataset_version_at, new_write_id, ColumnLayout,
    CommitOutcome, DatasetVersion, LayoutPlan, SaveMode, ShardWriter, WriterOptions,
};
use mosaicrs::Error;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::IntoPy;
use crate::location::location;

/// Writer options from Python values: `shard_size` (bytes or "64m"),
/// `batch_rows`, `compression`; `None` keeps the default.
fn writer_options(
    shard_size: Option<&Bound<'_, PyAny>>,
    batch_rows: Option<usize>,
    compression: Option<&str>,
) -> PyResult<WriterOptions> {
    let mut options = WriterOptions::default();
    if let Some(size) = shard_size.filter(|s| !s.is_none()) {
        options.max_shard_bytes = match size.extract::<u64>() {
            Ok(n) => n,
            Err(_) => {
                let text: String = size.str()?.extract()?;
                parse_byte_size(&text).py_err()?
            }
        };
    }
    if let Some(rows) = batch_rows {
        options.max_batch_rows = Some(rows);
    }
    if let Some(c) = compression {
        options.compression = c.parse::<Compression>().py_err()?;
    }
    options.validate().py_err()?;
    Ok(options)
}

/// The column layout from its writer options (`("pack.features", "a,b")`,
/// `("fixedLength.emb", "128")`), as `mosaicrs.write` and the Spark data
/// source pass them; another key is a ValueError naming it.
fn column_layout(layout: Option<Vec<(String, String)>>) -> PyResult<ColumnLayout> {
    let mut out = ColumnLayout::default();
    for (key, value) in layout.unwrap_or_default() {
        if !out.set_option(&key, &value).py_err()? {
            return Err(PyValueError::new_err(format!(
                "{key:?} is not a column layout option (pack.<name> or fixedLength.<column>)"
            )));
        }
    }
    Ok(out)
}

fn outcome_dict<'py>(
    py: Python<'py>,
    outcome: &CommitOutcome,
    write_id: &str,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("committed", outcome.committed)?;
    d.set_item("total_rows", outcome.total_rows)?;
    d.set_item("removed", outcome.removed.clone())?;
    d.set_item("write_id", write_id)?;
    Ok(d)
}

/// Writes every batch of an Arrow stream (any object with
/// `__arrow_c_stream__`) as a new dataset write and commits it.
#[pyfunction]
#[pyo3(signature = (data, path, mode="error", shard_size=None, batch_rows=None, compression=None, storage_options=None, layout=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_stream<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    path: &Bound<'py, PyAny>,
    mode: &str,
    shard_size: Option<&Bound<'py, PyAny>>,
    batch_rows: Option<usize>,
    compression: Option<&str>,
    storage_options: Option<&Bound<'py, PyAny>>,
    layout: Option<Vec<(String, String)>>,
) -> PyResult<Bound<'py, PyDict>> {
    let dir = location(path, storage_options, "dataset path")?;
    let mode: SaveMode = mode.parse().py_err()?;
    let options = writer_options(shard_size, batch_rows, compression)?;
    let layout = column_layout(layout)?;
    let reader = RecordBatchStreamReader::from_pyarrow_bound(data)?;
    let write_id = new_write_id();
    let outcome = py
        .detach(|| write_all(&dir, reader, &write_id, mode, options, &layout))
        .py_err()?;
    outcome_dict(py, &outcome, &write_id)
}

fn write_all(
    dir: &Location,
    reader: RecordBatchStreamReader,
    write_id: &str,
    mode: SaveMode,
    options: WriterOptions,
    layout: &ColumnLayout,
) -> mosaicrs::Result<CommitOutcome> {
    use arrow::array::RecordBatchReader;
    let input_schema = reader.schema();
    let rows_schema = without_view_types(&input_schema);
    let layout = layout.plan(&rows_schema)?;
    let schema = layout.schema().clone();
    // The version the commit compares against: a commit by another writer
    // from now on is either re-applied under (append) or refused.
    let base = dataset_version_at(dir)?;
    check_save_mode_at(dir, &schema, mode)?;
    let mut writer = ShardWriter::create_at(dir, schema.clone(), write_id, 0, 0, options)?;
    for batch in reader {
        let written = batch
            .map_err(|e| Error::arrow("reading the input stream", e))
            .and_then(|b| cast_to(&b, &rows_schema))
            .and_then(|b| layout.apply(&b, writer.rows_written()))
            .and_then(|b| writer.write(&b));
        if let Err(e) = written {
            let _ = writer.abort();
            let _ = abort_write_at(dir, write_id);
            return Err(e);
        }
    }
    let shards = match writer.finish() {
        Ok(s) => s,
        Err(e) => {
            let _ = abort_write_at(dir, write_id);
            return Err(e);
        }
    };
    commit_at(dir, &schema, write_id, shards, mode, Some(&base)).inspect_err(|_| {
        // A failed commit (a full disk, a lost race) leaves nothing of this write behind.
        let _ = abort_write_at(dir, write_id);
    })
}

/// `schema` with Arrow's view types (`Utf8View`, `BinaryView`, `ListView`,
/// which Polars exports for strings) replaced by the format's offset-based
/// types: shards hold only types that every Arrow reader, and ours, reads.
fn without_view_types(schema: &arrow::datatypes::SchemaRef) -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, FieldRef};
    fn field(f: &FieldRef) -> FieldRef {
        let data_type = match f.data_type() {
            DataType::Utf8View => DataType::Utf8,
            DataType::BinaryView => DataType::Binary,
            DataType::ListView(child) | DataType::List(child) => DataType::List(field(child)),
            DataType::LargeListView(child) | DataType::LargeList(child) => {
                DataType::LargeList(field(child))
            }
            DataType::FixedSizeList(child, n) => DataType::FixedSizeList(field(child), *n),
            DataType::Struct(children) => DataType::Struct(children.iter().map(field).collect()),
            other => other.clone(),
        };
        Arc::new(
            Field::new(f.name(), data_type, f.is_nullable()).with_metadata(f.metadata().clone()),
        )
    }
    let fields: Vec<FieldRef> = schema.fields().iter().map(field).collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` with every column cast to `schema`'s type (a no-op where equal).
fn cast_to(
    batch: &RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
) -> mosaicrs::Result<RecordBatch> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| arrow::compute::cast(column, field.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::arrow("converting view types to the format's types", e))?;
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::arrow("converting view types to the format's types", e))
}

/// The shard writer of one task attempt in a distributed write. Its shards
/// stay invisible until the driver's [`commit`] lists them.
#[pyclass(module = "mosaicrs._native", name = "PartitionWriter")]
pub(crate) struct PartitionWriter {
    dir: Location,
    write_id: String,
    /// Turns the task's batches into the stored ones.
    layout: Arc<LayoutPlan>,
    inner: Arc<Mutex<Option<ShardWriter>>>,
}

#[pymethods]
impl PartitionWriter {
    #[new]
    #[pyo3(signature = (path, schema, write_id, partition, attempt, shard_size=None, batch_rows=None, compression=None, storage_options=None, layout=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        schema: PyArrowType<Schema>,
        write_id: &str,
        partition: u32,
        attempt: u64,
        shard_size: Option<&Bound<'_, PyAny>>,
        batch_rows: Option<usize>,
        compression: Option<&str>,
        storage_options: Option<&Bound<'_, PyAny>>,
        layout: Option<Vec<(String, String)>>,
    ) -> PyResult<Self> {
        let dir = location(path, storage_options, "dataset path")?;
        let options = writer_options(shard_size, batch_rows, compression)?;
        let layout = column_layout(layout)?.plan(&Arc::new(schema.0)).py_err()?;
        let stored = layout.schema().clone();
        let writer = py
            .detach(|| ShardWriter::create_at(&dir, stored, write_id, partition, attempt, options))
            .py_err()?;
        Ok(PartitionWriter {
            dir,
            write_id: write_id.to_string(),
            layout: Arc::new(layout),
            inner: Arc::new(Mutex::new(Some(writer))),
        })
    }

    /// Appends a `pyarrow.RecordBatch` (or anything with `__arrow_c_array__`).
    fn write(&self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<()> {
        let batch = RecordBatch::from_pyarrow_bound(batch)?;
        let inner = Arc::clone(&self.inner);
        let layout = Arc::clone(&self.layout);
        py.detach(move || {
            let mut guard = inner
                .lock()
                .map_err(|_| Error::Internal("a partition writer panicked".into()))?;
            match guard.as_mut() {
                Some(w) => w.write(&layout.apply(&batch, w.rows_written())?),
                None => Err(Error::InvalidArgument(
                    "this partition writer is already finished or aborted".into(),
                )),
            }
        })
        .py_err()
    }

    /// Rows written so far.
    fn rows_written(&self) -> PyResult<u64> {
        let guard = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("a partition writer panicked"))?;
        Ok(guard.as_ref().map_or(0, ShardWriter::rows_written))
    }

    /// Seals the last shard; returns the shard entries as one JSON string
    /// (the task's commit message for the driver).
    fn finish(&self, py: Python<'_>) -> PyResult<String> {
        let inner = Arc::clone(&self.inner);
        let shards = py
            .detach(move || {
                let writer = inner
                    .lock()
                    .map_err(|_| Error::Internal("a partition writer panicked".into()))?
                    .take();
                match writer {
                    Some(w) => w.finish(),
                    None => Err(Error::InvalidArgument(
                        "this partition writer is already finished or aborted".into(),
                    )),
                }
            })
            .py_err()?;
        serde_json::to_string(&shards)
            .map_err(|e| PyRuntimeError::new_err(format!("cannot encode shard entries: {e}")))
    }

    /// Removes what this attempt wrote. Idempotent.
    fn abort(&self, py: Python<'_>) -> PyResult<()> {
        let inner = Arc::clone(&self.inner);
        py.detach(move || {
            let writer = inner.lock().ok().and_then(|mut g| g.take());
            match writer {
                Some(w) => w.abort(),
                None => Ok(()),
            }
        })
        .py_err()
    }

    fn __repr__(&self) -> String {
        format!(
            "mosaicrs.PartitionWriter({:?}, write_id={:?})",
            self.dir.to_string(),
            self.write_id
        )
    }
}

/// Publishes the shards of a distributed write (one JSON list per task, as
/// returned by `PartitionWriter.finish`) in one atomic index write.
#[pyfunction]
#[pyo3(signature = (path, schema, write_id, messages, mode="error", storage_options=None))]
pub(crate) fn commit<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    schema: PyArrowType<Schema>,
    write_id: &str,
    messages: Vec<String>,
    mode: &str,
    storage_options: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let dir = location(path, storage_options, "dataset path")?;
    let mode: SaveMode = mode.parse().py_err()?;
    let mut shards: Vec<ShardEntry> = Vec::new();
    for m in &messages {
        let list: Vec<ShardEntry> = serde_json::from_str(m).map_err(|e| {
            PyValueError::new_err(format!("a task's commit message is not shard entries: {e}"))
        })?;
        shards.extend(list);
    }
    let schema = schema.0;
    let outcome = py
        .detach(|| commit_at(&dir, &schema, write_id, shards, mode, None))
        .py_err()?;
    outcome_dict(py, &outcome, write_id)
}

/// Deletes every file of write `write_id` (a failed job); returns their names.
#[pyfunction]
#[pyo3(signature = (path, write_id, storage_options=None))]
pub(crate) fn abort_write(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    write_id: &str,
    storage_options: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<String>> {
    let dir = location(path, storage_options, "dataset path")?;
    py.detach(|| abort_write_at(&dir, write_id)).py_err()
}

/// Applies the commit's save-mode rules to a write of `schema` in `mode` at
/// `path` before anything is written: `error` over a dataset raises
/// FileExistsError, an `append` of another schema ValueError. Returns whether
/// a dataset exists there (so an `ignore` write knows it has nothing to do).
#[pyfunction]
#[pyo3(signature = (path, schema, mode, storage_options=None))]
pub(crate) fn check_save_mode(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    schema: PyArrowType<Schema>,
    mode: &str,
    storage_options: Option<&Bound<'_, PyAny>>,
) -> PyResult<bool> {
    let dir = location(path, storage_options, "dataset path")?;
    let mode: SaveMode = mode.parse().py_err()?;
    let version = py
        .detach(|| check_save_mode_at(&dir, &schema.0, mode))
        .py_err()?;
    Ok(version != DatasetVersion::Absent)
}

/// The schema a dataset stores for rows of `schema` under the column
/// layout options `layout` (ValueError naming a column the layout cannot
/// apply to).
#[pyfunction]
#[pyo3(signature = (schema, layout=None))]
pub(crate) fn stored_schema(
    schema: PyArrowType<Schema>,
    layout: Option<Vec<(String, String)>>,
) -> PyResult<PyArrowType<Schema>> {
    let plan = column_layout(layout)?.plan(&Arc::new(schema.0)).py_err()?;
    Ok(PyArrowType(plan.schema().as_ref().clone()))
}

/// A fresh write id.
#[pyfunction]
pub(crate) fn write_id() -> String {
    new_write_id()
}

/// Checks writer options (raises ValueError naming a bad one) and returns
/// the rows per record batch they give: `batch_rows`, or the writer's
/// default for the compression when it is `None`.
#[pyfunction]
#[pyo3(signature = (shard_size=None, batch_rows=None, compression=None))]
pub(crate) fn validate_writer_options(
    shard_size: Option<&Bound<'_, PyAny>>,
    batch_rows: Option<usize>,
    compression: Option<&str>,
) -> PyResult<usize> {
    writer_options(shard_size, batch_rows, compression).map(|o| o.batch_rows())
}
