//! `mosaicrs.Dataset`: a committed dataset, opened as the Rust loader opens
//! it ([`DataSource::open_at`]): a local folder is mapped in place; a remote
//! dataset that fits in `cache_limit` is downloaded whole into the cache
//! and mapped from there; a larger one streams through the cache. pyarrow,
//! Polars and DuckDB read it through the Arrow PyCapsule interface, and
//! `mosaicrs.torch.Loader` reads it through [`PyDataset::source`].

use std::sync::Arc;

use arrow::array::RecordBatchReader;
use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ffi::FFI_ArrowSchema;
use arrow::ffi_stream::FFI_ArrowArrayStream;
use arrow::record_batch::RecordBatch;
use arrow_pyarrow::{IntoPyArrow, ToPyArrow};
use mosaicrs::reader::{DataSource, ReadOptions, Shard, StreamedDataset};
use mosaicrs::storage::Location;
use mosaicrs::Error;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors::{IntoPy, InvalidInputError, RowOutOfRangeError};
use crate::history::version_spec;
use crate::location::open_located;

/// A committed mosaicrs dataset, read-only: mapped, fetched whole into the
/// cache, or (remote and larger than `cache_limit`) streamed through it.
#[pyclass(module = "mosaicrs._native", name = "Dataset", frozen)]
pub struct PyDataset {
    source: DataSource,
    /// Where it was opened: a streamed dataset reads whole shards from it.
    location: Location,
    /// The path or URL it was opened from (a URL without credentials).
    shown: String,
}

impl PyDataset {
    /// What the loader reads: the dataset as a [`DataSource`] (a cheap
    /// clone that shares the mapping or the streamed dataset).
    pub(crate) fn source(&self) -> DataSource {
        self.source.clone()
    }
}

#[pymethods]
impl PyDataset {
    #[new]
    #[pyo3(signature = (
        path, storage_options=None, *, cache_dir=None, cache_limit=None, version=None, as_of=None
    ))]
    #[allow(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn new(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        storage_options: Option<&Bound<'_, PyAny>>,
        cache_dir: Option<&Bound<'_, PyAny>>,
        cache_limit: Option<&Bound<'_, PyAny>>,
        version: Option<&Bound<'_, PyAny>>,
        as_of: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let spec = version_spec(version, as_of)?;
        let ((source, location), shown) = open_located(
            py,
            path,
            storage_options,
            cache_dir,
            cache_limit,
            |at, cache| {
                let source = DataSource::open_version(at, cache, &ReadOptions::default(), &spec)?;
                Ok((source, at.clone()))
            },
        )?;
        Ok(PyDataset {
            source,
            location,
            shown,
        })
    }

    fn __len__(&self) -> usize {
        self.source.num_rows() as usize
    }

    /// Rows in the dataset.
    #[getter]
    fn num_rows(&self) -> u64 {
        self.source.num_rows()
    }

    /// The version read (0 for the first commit; see `mosaicrs.log`).
    #[getter]
    fn version(&self) -> u64 {
        self.source.version()
    }

    /// Shards (Arrow IPC files) in the dataset.
    #[getter]
    fn num_shards(&self) -> usize {
        self.source.index().shards.len()
    }

    /// The path or URL the dataset was opened from (a URL without
    /// credentials).
    #[getter]
    fn path(&self) -> String {
        self.shown.clone()
    }

    /// The local folder of its files: the dataset's own folder, or its
    /// folder in the shard cache for a remote dataset (where a streamed
    /// dataset holds only the shards it is reading).
    #[getter]
    fn local_path(&self) -> String {
        match &self.source {
            DataSource::Mapped(d) => d.path().display().to_string(),
            DataSource::Streamed(d) => d.cache_folder().display().to_string(),
        }
    }

    /// The Arrow schema as a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.source.schema().as_ref().to_pyarrow(py)
    }

    /// True when the dataset streams through a cache smaller than itself
    /// (remote, and larger than `cache_limit`).
    #[getter]
    fn is_streamed(&self) -> bool {
        self.source.is_streamed()
    }

    /// Bytes downloaded from the object store so far (0 for a local dataset).
    #[getter]
    fn bytes_downloaded(&self) -> u64 {
        self.source.bytes_downloaded()
    }

    /// The most bytes the cache held after a download (0 for a local dataset).
    #[getter]
    fn peak_cache_bytes(&self) -> u64 {
        self.source.peak_cache_bytes()
    }

    /// The rows at `indices` (in that order) as a `pyarrow.Table`, optionally
    /// only `columns`. A streamed dataset fetches each row's shard through
    /// the cache, row by row: fine for samples, slow for millions of rows.
    #[pyo3(signature = (indices, columns=None))]
    fn take<'py>(
        &self,
        py: Python<'py>,
        indices: Vec<i64>,
        columns: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let rows = indices
            .iter()
            .map(|&i| {
                u64::try_from(i).map_err(|_| {
                    RowOutOfRangeError::new_err(format!("take: row index {i} is negative"))
                })
            })
            .collect::<PyResult<Vec<u64>>>()?;
        let projection = match &columns {
            Some(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                Some(self.source.column_indices(&names).py_err()?)
            }
            None => None,
        };
        let source = self.source.clone();
        let batch = py
            .detach(move || match &source {
                DataSource::Mapped(d) => d.take(&rows, projection.as_deref()),
                DataSource::Streamed(d) => take_streamed(d, &rows, projection.as_deref()),
            })
            .py_err()?;
        let table = arrow_pyarrow::Table::try_new(vec![batch.clone()], batch.schema())
            .map_err(|e| InvalidInputError::new_err(format!("take: {e}")))?;
        table.into_pyarrow(py)
    }

    /// Arrow PyCapsule interface: the schema.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = FFI_ArrowSchema::try_from(self.source.schema().as_ref())
            .map_err(|e| InvalidInputError::new_err(format!("cannot export the schema: {e}")))?;
        PyCapsule::new_with_value(py, schema, c"arrow_schema")
    }

    /// Arrow PyCapsule interface: every record batch of every shard, in
    /// dataset order: zero-copy views of the mapped files (uncompressed
    /// shards), or, for a streamed dataset, one shard at a time downloaded
    /// into memory and checked against its checksum (the cache is not
    /// used). `requested_schema` is accepted and ignored, as the protocol
    /// allows.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let reader = DatasetBatches {
            source: self.source.clone(),
            location: self.location.clone(),
            schema: self.source.schema(),
            shard: 0,
            batch: 0,
            open: None,
        };
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    /// Checks every shard against its checksum in the index (a streamed
    /// dataset downloads each shard once for it, one at a time).
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        let source = self.source.clone();
        let location = self.location.clone();
        py.detach(move || match &source {
            DataSource::Mapped(d) => d.verify(),
            DataSource::Streamed(d) => {
                for entry in &d.index().shards {
                    // A remote shard read whole is always checked.
                    Shard::open_at(&location, entry, &d.schema(), &ReadOptions::default())?;
                }
                Ok(())
            }
        })
        .py_err()
    }

    fn __repr__(&self) -> String {
        format!(
            "mosaicrs.Dataset({:?}, version={}, rows={}, shards={}{})",
            self.shown,
            self.source.version(),
            self.source.num_rows(),
            self.source.index().shards.len(),
            if self.source.is_streamed() {
                ", streamed"
            } else {
                ""
            }
        )
    }
}

/// [`Dataset::take`](mosaicrs::reader::Dataset::take) for a streamed dataset: each row through
/// [`StreamedDataset::row`], which pins its shard in the cache for the call.
fn take_streamed(
    dataset: &StreamedDataset,
    rows: &[u64],
    projection: Option<&[usize]>,
) -> mosaicrs::Result<RecordBatch> {
    let schema = dataset.schema();
    let picked = rows
        .iter()
        .map(|&row| dataset.row(row))
        .collect::<mosaicrs::Result<Vec<_>>>()?;
    let batch = concat_batches(&schema, &picked).map_err(|e| Error::arrow("gathering rows", e))?;
    match projection {
        Some(columns) => batch
            .project(columns)
            .map_err(|e| Error::arrow("projecting columns", e)),
        None => Ok(batch),
    }
}

/// The record batches of a dataset in order, for the C stream interface.
struct DatasetBatches {
    source: DataSource,
    location: Location,
    schema: SchemaRef,
    shard: usize,
    batch: usize,
    /// The shard being read of a streamed dataset, in memory.
    open: Option<Shard>,
}

impl DatasetBatches {
    /// Record batch `self.batch` of shard `self.shard`.
    fn read(&mut self) -> mosaicrs::Result<RecordBatch> {
        let dataset: &Arc<StreamedDataset> = match &self.source {
            DataSource::Mapped(d) => return d.record_batch(self.shard, self.batch),
            DataSource::Streamed(d) => d,
        };
        let shard = match self.open.take() {
            Some(open) => open,
            None => Shard::open_at(
                &self.location,
                &dataset.index().shards[self.shard],
                &self.schema,
                &ReadOptions::default(),
            )?,
        };
        let batch = shard.batch(self.batch);
        // Kept for the shard's next batch; dropped at its last.
        if self.batch + 1 < shard.num_batches() {
            self.open = Some(shard);
        }
        batch
    }
}

impl Iterator for DatasetBatches {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let batches = |source: &DataSource, shard: usize| source.index().shards[shard].batches;
        while self.shard < self.source.index().shards.len() {
            if self.batch < batches(&self.source, self.shard) as usize {
                let result = self.read();
                self.batch += 1;
                return Some(result.map_err(|e| ArrowError::ExternalError(Box::new(e))));
            }
            self.shard += 1;
            self.batch = 0;
            self.open = None;
        }
        None
    }
}

impl RecordBatchReader for DatasetBatches {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
