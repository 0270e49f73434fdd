//! `mosaicrs.Dataset`: a committed dataset, readable by pyarrow, Polars and
//! DuckDB through the Arrow PyCapsule interface.

use std::sync::Arc;

use arrow::array::RecordBatchReader;
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::ffi::FFI_ArrowSchema;
use arrow::ffi_stream::FFI_ArrowArrayStream;
use arrow::record_batch::RecordBatch;
use arrow_pyarrow::{IntoPyArrow, ToPyArrow};
use mosaicrs::reader::{Dataset, ReadOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::errors::IntoPy;
use crate::location::open_located;

/// A committed mosaicrs dataset (memory-mapped, read-only). A dataset in an
/// object store is read through the local shard cache and mapped from there.
#[pyclass(module = "mosaicrs._native", name = "Dataset", frozen)]
pub struct PyDataset {
    pub(crate) inner: Arc<Dataset>,
    /// The path or URL it was opened from (a URL without credentials).
    shown: String,
}

#[pymethods]
impl PyDataset {
    #[new]
    #[pyo3(signature = (path, storage_options=None, *, cache_dir=None, cache_limit=None))]
    fn new(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        storage_options: Option<&Bound<'_, PyAny>>,
        cache_dir: Option<&Bound<'_, PyAny>>,
        cache_limit: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let (inner, shown) = open_located(
            py,
            path,
            storage_options,
            cache_dir,
            cache_limit,
            |at, cache| Dataset::open_at_with(at, cache, &ReadOptions::default()),
        )?;
        Ok(PyDataset {
            inner: Arc::new(inner),
            shown,
        })
    }

    fn __len__(&self) -> usize {
        self.inner.num_rows() as usize
    }

    /// Rows in the dataset.
    #[getter]
    fn num_rows(&self) -> u64 {
        self.inner.num_rows()
    }

    /// Shards (Arrow IPC files) in the dataset.
    #[getter]
    fn num_shards(&self) -> usize {
        self.inner.num_shards()
    }

    /// The path or URL the dataset was opened from (a URL without
    /// credentials).
    #[getter]
    fn path(&self) -> String {
        self.shown.clone()
    }

    /// The local folder whose files are mapped: the dataset's own folder,
    /// or its folder in the shard cache for a remote dataset.
    #[getter]
    fn local_path(&self) -> String {
        self.inner.path().display().to_string()
    }

    /// The Arrow schema as a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.inner.schema().as_ref().to_pyarrow(py)
    }

    /// The rows at `indices` (in that order) as a `pyarrow.Table`, optionally
    /// only `columns`.
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
                u64::try_from(i)
                    .map_err(|_| PyValueError::new_err(format!("take: row index {i} is negative")))
            })
            .collect::<PyResult<Vec<u64>>>()?;
        let projection = match &columns {
            Some(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                Some(self.inner.column_indices(&names).py_err()?)
            }
            None => None,
        };
        let inner = Arc::clone(&self.inner);
        let batch = py
            .detach(move || inner.take(&rows, projection.as_deref()))
            .py_err()?;
        let table = arrow_pyarrow::Table::try_new(vec![batch.clone()], batch.schema())
            .map_err(|e| PyValueError::new_err(format!("take: {e}")))?;
        table.into_pyarrow(py)
    }

    /// Arrow PyCapsule interface: the schema.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        let schema = FFI_ArrowSchema::try_from(self.inner.schema().as_ref())
            .map_err(|e| PyValueError::new_err(format!("cannot export the schema: {e}")))?;
        PyCapsule::new_with_value(py, schema, c"arrow_schema")
    }

    /// Arrow PyCapsule interface: every record batch of every shard, in
    /// dataset order, as zero-copy views of the mapped files (uncompressed
    /// shards). `requested_schema` is accepted and ignored, as the protocol
    /// allows.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let reader = DatasetBatches {
            dataset: Arc::clone(&self.inner),
            schema: self.inner.schema(),
            shard: 0,
            batch: 0,
        };
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
    }

    /// Checks every shard against its checksum in the index.
    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        let inner = Arc::clone(&self.inner);
        py.detach(move || inner.verify()).py_err()
    }

    fn __repr__(&self) -> String {
        format!(
            "mosaicrs.Dataset({:?}, rows={}, shards={})",
            self.shown,
            self.inner.num_rows(),
            self.inner.num_shards()
        )
    }
}

/// The record batches of a dataset in order, for the C stream interface.
struct DatasetBatches {
    dataset: Arc<Dataset>,
    schema: SchemaRef,
    shard: usize,
    batch: usize,
}

impl Iterator for DatasetBatches {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        let shards = &self.dataset.index().shards;
        while self.shard < shards.len() {
            if self.batch < shards[self.shard].batches as usize {
                let result = self.dataset.record_batch(self.shard, self.batch);
                self.batch += 1;
                return Some(result.map_err(|e| ArrowError::ExternalError(Box::new(e))));
            }
            self.shard += 1;
            self.batch = 0;
        }
        None
    }
}

impl RecordBatchReader for DatasetBatches {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}
