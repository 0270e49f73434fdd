//! Writing datasets from Python: a whole Arrow stream in one call
//! ([`write_stream`]), or the two phases of a distributed write
//! ([`PartitionWriter`] per task attempt, then [`commit`] on the driver).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatchReader;
use arrow::datatypes::Schema;
use arrow::ffi_stream::RecordBatchStreamReader;
use arrow::record_batch::RecordBatch;
use arrow_pyarrow::{FromPyArrow, PyArrowType};
use mosaicrs::format::ShardEntry;
use mosaicrs::storage::{DatasetVersion, Location};
use mosaicrs::writer::{
    abort_write_at, check_save_mode_with, commit_at_with, new_write_id, write_batches,
    ColumnLayout, CommitOptions, CommitOutcome, LayoutPlan, SaveMode, ShardWriter, WriteOptions,
    WriteReport, BATCH_ROWS_OPTION, COMPRESSION_OPTION, SHARD_SIZE_OPTION,
};
use mosaicrs::Error;
use pyo3::exceptions::{PyKeyError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::errors::IntoPy;
use crate::location::location;

/// The write options from the keywords of `write` and `PartitionWriter`
/// (`shard_size`: bytes or "64m", `batch_rows`, `compression`; `None` keeps
/// the default) and named options as Spark's `.option(...)` takes them,
/// which come after the keywords. One parser reads both:
/// [`WriteOptions::from_options`].
fn write_options(
    shard_size: Option<&Bound<'_, PyAny>>,
    batch_rows: Option<usize>,
    compression: Option<&str>,
    named: Option<Vec<(String, String)>>,
) -> PyResult<WriteOptions> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    if let Some(size) = shard_size.filter(|s| !s.is_none()) {
        pairs.push((SHARD_SIZE_OPTION.into(), size.str()?.extract()?));
    }
    if let Some(rows) = batch_rows {
        pairs.push((BATCH_ROWS_OPTION.into(), rows.to_string()));
    }
    if let Some(c) = compression {
        pairs.push((COMPRESSION_OPTION.into(), c.into()));
    }
    pairs.extend(named.unwrap_or_default());
    WriteOptions::from_options(pairs).py_err()
}

/// How a write lays out columns on disk: numeric columns packed row-major
/// into one fixed-size-list column (`pack={"features": ["x0", "x1"]}`), and
/// list columns whose rows all hold one length stored as fixed-size lists
/// (`fixed_lengths={"emb": 128}`). Checked when made (ValueError naming the
/// bad entry) and again against the rows' schema when a write starts.
#[pyclass(
    module = "mosaicrs._native",
    name = "ColumnLayout",
    frozen,
    eq,
    skip_from_py_object
)]
#[derive(Clone, PartialEq)]
pub(crate) struct PyColumnLayout {
    inner: ColumnLayout,
}

#[pymethods]
impl PyColumnLayout {
    #[new]
    #[pyo3(signature = (pack=None, fixed_lengths=None))]
    fn new(
        pack: Option<&Bound<'_, PyAny>>,
        fixed_lengths: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for item in mapping_items(pack)? {
            let (name, columns): (String, Bound<'_, PyAny>) = item.extract()?;
            if columns.is_instance_of::<PyString>() {
                return Err(PyValueError::new_err(format!(
                    "pack[{name:?}] must be a list of column names, not a string"
                )));
            }
            let columns: Vec<String> = columns.extract()?;
            pairs.push((format!("pack.{name}"), columns.join(",")));
        }
        for item in mapping_items(fixed_lengths)? {
            let (column, length): (String, i64) = item.extract()?;
            pairs.push((format!("fixedLength.{column}"), length.to_string()));
        }
        Self::from_options(pairs)
    }

    /// The layout of named options (`("pack.features", "a,b")`,
    /// `("fixedLength.emb", "128")`), as Spark's `.option(...)` takes them.
    #[staticmethod]
    fn from_options(options: Vec<(String, String)>) -> PyResult<Self> {
        let mut inner = ColumnLayout::default();
        for (key, value) in options {
            if !inner.set_option(&key, &value).py_err()? {
                return Err(PyValueError::new_err(format!(
                    "{key:?} is not a column layout option (pack.<name> or fixedLength.<column>)"
                )));
            }
        }
        Ok(PyColumnLayout { inner })
    }

    /// Packed column name to the columns it holds, in order.
    #[getter]
    fn pack(&self) -> BTreeMap<String, Vec<String>> {
        self.inner.packed.clone()
    }

    /// List column name to the length of every row.
    #[getter]
    fn fixed_lengths(&self) -> BTreeMap<String, usize> {
        self.inner.fixed_lengths.clone()
    }

    /// The layout as named options, the form the Spark writers take.
    fn options(&self) -> Vec<(String, String)> {
        self.inner.to_options()
    }

    fn __bool__(&self) -> bool {
        !self.inner.is_empty()
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let pack = self.inner.packed.clone().into_pyobject(py)?.repr()?;
        let fixed = self.inner.fixed_lengths.clone().into_pyobject(py)?.repr()?;
        Ok(format!(
            "mosaicrs.ColumnLayout(pack={pack}, fixed_lengths={fixed})"
        ))
    }
}

/// `mapping.items()`, or nothing for `None`.
fn mapping_items<'py>(mapping: Option<&Bound<'py, PyAny>>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    match mapping.filter(|m| !m.is_none()) {
        None => Ok(Vec::new()),
        Some(m) => m.call_method0("items")?.try_iter()?.collect(),
    }
}

/// What a write did: the rows, shards and bytes it wrote and its commit.
/// Items can also be read by name (`result["total_rows"]`).
#[pyclass(module = "mosaicrs._native", name = "WriteResult", frozen, get_all)]
pub(crate) struct WriteResult {
    /// False when mode `ignore` found a dataset and kept it as it was.
    committed: bool,
    /// Rows this write wrote.
    rows: u64,
    /// Shards this write wrote.
    shards: usize,
    /// Bytes of those shards.
    bytes: u64,
    /// Rows in the dataset after the commit.
    total_rows: u64,
    /// Files the commit deleted (replaced shards, leftovers of failed attempts).
    removed: Vec<String>,
    /// The write's id, which its shards' names carry.
    write_id: String,
}

impl WriteResult {
    /// The result of committing `written` (its rows, shards and bytes are
    /// taken before the commit consumes the entries).
    fn of(written: &[ShardEntry]) -> impl FnOnce(&str, CommitOutcome) -> Self {
        let rows = written.iter().map(|s| s.rows).sum();
        let bytes = written.iter().map(|s| s.bytes).sum();
        let shards = written.len();
        move |write_id, outcome| WriteResult {
            committed: outcome.committed,
            rows,
            shards,
            bytes,
            total_rows: outcome.total_rows,
            removed: outcome.removed,
            write_id: write_id.to_string(),
        }
    }
}

impl From<WriteReport> for WriteResult {
    fn from(report: WriteReport) -> Self {
        WriteResult {
            committed: report.outcome.committed,
            rows: report.rows,
            shards: report.shards,
            bytes: report.bytes,
            total_rows: report.outcome.total_rows,
            removed: report.outcome.removed,
            write_id: report.write_id,
        }
    }
}

#[pymethods]
impl WriteResult {
    fn __getitem__<'py>(slf: &Bound<'py, Self>, key: &str) -> PyResult<Bound<'py, PyAny>> {
        const FIELDS: [&str; 7] = [
            "committed",
            "rows",
            "shards",
            "bytes",
            "total_rows",
            "removed",
            "write_id",
        ];
        if !FIELDS.contains(&key) {
            return Err(PyKeyError::new_err(key.to_string()));
        }
        slf.getattr(key)
    }

    fn __repr__(&self) -> String {
        format!(
            "mosaicrs.WriteResult(committed={}, rows={}, shards={}, bytes={}, total_rows={}, \
             write_id='{}')",
            if self.committed { "True" } else { "False" },
            self.rows,
            self.shards,
            self.bytes,
            self.total_rows,
            self.write_id
        )
    }
}

/// Writes every batch of an Arrow stream (any object with
/// `__arrow_c_stream__`) as a new dataset write and commits it.
#[pyfunction]
#[pyo3(signature = (data, path, mode="error", shard_size=None, batch_rows=None, compression=None, storage_options=None, layout=None, merge_schema=false, metadata=None))]
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
    layout: Option<PyRef<'py, PyColumnLayout>>,
    merge_schema: bool,
    metadata: Option<BTreeMap<String, String>>,
) -> PyResult<WriteResult> {
    let dir = location(path, storage_options, "dataset path")?;
    let mode: SaveMode = mode.parse().py_err()?;
    let mut options = write_options(shard_size, batch_rows, compression, None)?;
    if let Some(layout) = layout {
        options.layout = layout.inner.clone();
    }
    options.merge_schema = merge_schema;
    options.metadata = metadata.unwrap_or_default();
    options.committer = python_writer();
    let reader = RecordBatchStreamReader::from_pyarrow_bound(data)?;
    let rows_schema = without_view_types(&reader.schema());
    let report = py
        .detach(|| {
            let batches = reader.map(|batch| {
                batch
                    .map_err(|e| Error::arrow("reading the input stream", e))
                    .and_then(|b| cast_to(&b, &rows_schema))
            });
            write_batches(&dir, &rows_schema, batches, &options, mode, None)
        })
        .py_err()?;
    Ok(report.into())
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
    #[pyo3(signature = (path, schema, write_id, partition, attempt, shard_size=None, batch_rows=None, compression=None, storage_options=None, layout=None, options=None))]
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
        layout: Option<PyRef<'_, PyColumnLayout>>,
        options: Option<Vec<(String, String)>>,
    ) -> PyResult<Self> {
        let dir = location(path, storage_options, "dataset path")?;
        let mut parsed = write_options(shard_size, batch_rows, compression, options)?;
        if let Some(layout) = layout {
            parsed.layout = layout.inner.clone();
        }
        let layout = parsed.layout.plan(&Arc::new(schema.0)).py_err()?;
        let stored = layout.schema().clone();
        let writer = py
            .detach(|| {
                ShardWriter::create_at(&dir, stored, write_id, partition, attempt, parsed.writer)
            })
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

/// What a commit allows by the write's named options (`mergeSchema`), read
/// by the one parser.
fn commit_options(options: Option<Vec<(String, String)>>) -> PyResult<CommitOptions> {
    let parsed = WriteOptions::from_options(options.unwrap_or_default()).py_err()?;
    Ok(parsed.commit_options())
}

/// What a write from Python records as its writer.
fn python_writer() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("engine".to_string(), "python".to_string()),
        (
            "mosaicrs".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ])
}

/// Publishes the shards of a distributed write (one JSON list per task, as
/// returned by `PartitionWriter.finish`) in one atomic index write. The
/// commit records `writer` (who wrote) and the `metadata.<key>` entries of
/// `options` (the write's options, checked as `PartitionWriter` checks them).
#[pyfunction]
#[pyo3(signature = (path, schema, write_id, messages, mode="error", storage_options=None, options=None, writer=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn commit<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    schema: PyArrowType<Schema>,
    write_id: &str,
    messages: Vec<String>,
    mode: &str,
    storage_options: Option<&Bound<'py, PyAny>>,
    options: Option<Vec<(String, String)>>,
    writer: Option<BTreeMap<String, String>>,
) -> PyResult<WriteResult> {
    let dir = location(path, storage_options, "dataset path")?;
    let mode: SaveMode = mode.parse().py_err()?;
    let mut options = WriteOptions::from_options(options.unwrap_or_default()).py_err()?;
    options.committer = writer.unwrap_or_else(python_writer);
    let commit_options = options.commit_options();
    let mut shards: Vec<ShardEntry> = Vec::new();
    for m in &messages {
        let list: Vec<ShardEntry> = serde_json::from_str(m).map_err(|e| {
            PyValueError::new_err(format!("a task's commit message is not shard entries: {e}"))
        })?;
        shards.extend(list);
    }
    let schema = schema.0;
    let result = WriteResult::of(&shards);
    let outcome = py
        .detach(|| commit_at_with(&dir, &schema, write_id, shards, mode, None, &commit_options))
        .py_err()?;
    Ok(result(write_id, outcome))
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
/// FileExistsError, an `append` of another schema ValueError (unless the
/// named `options` set `mergeSchema` and it only adds nullable columns).
/// Returns whether a dataset exists there (so an `ignore` write knows it has
/// nothing to do).
#[pyfunction]
#[pyo3(signature = (path, schema, mode, storage_options=None, options=None))]
pub(crate) fn check_save_mode(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    schema: PyArrowType<Schema>,
    mode: &str,
    storage_options: Option<&Bound<'_, PyAny>>,
    options: Option<Vec<(String, String)>>,
) -> PyResult<bool> {
    let dir = location(path, storage_options, "dataset path")?;
    let mode: SaveMode = mode.parse().py_err()?;
    let options = commit_options(options)?;
    let version = py
        .detach(|| check_save_mode_with(&dir, &schema.0, mode, &options))
        .py_err()?;
    Ok(version != DatasetVersion::Absent)
}

/// The schema a dataset stores for rows of `schema` under the named write
/// options `options` (only the layout ones, `pack.<name>` and
/// `fixedLength.<column>`, change it): ValueError naming a bad option or a
/// column the layout cannot apply to.
#[pyfunction]
#[pyo3(signature = (schema, options=None))]
pub(crate) fn stored_schema(
    schema: PyArrowType<Schema>,
    options: Option<Vec<(String, String)>>,
) -> PyResult<PyArrowType<Schema>> {
    let options = WriteOptions::from_options(options.unwrap_or_default()).py_err()?;
    let plan = options.layout.plan(&Arc::new(schema.0)).py_err()?;
    Ok(PyArrowType(plan.schema().as_ref().clone()))
}

/// A fresh write id.
#[pyfunction]
pub(crate) fn write_id() -> String {
    new_write_id()
}

/// Checks the named options of a Spark write (`shardSize`, `compression`,
/// `batchRows`, `mergeSchema`, `pack.<name>`, `fixedLength.<column>`; ValueError naming
/// the first unknown one, as an option of data source `source`, or bad
/// value) and returns the rows per record batch a Spark task writes:
/// `batchRows`, or the Spark default for the compression.
#[pyfunction]
#[pyo3(signature = (options, source="mosaicrs"))]
pub(crate) fn spark_batch_rows(options: Vec<(String, String)>, source: &str) -> PyResult<usize> {
    let options = WriteOptions::from_options_of(source, options).py_err()?;
    Ok(options.spark_batch_rows())
}
