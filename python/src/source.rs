//! `mosaicrs._native.Source`: what the loader reads, opened the way the Rust
//! loader opens a location. A local folder is mapped in place; a remote
//! dataset that fits in `cache_limit` is downloaded whole and mapped; a
//! larger one streams through the cache a block of shards at a time.

use arrow_pyarrow::ToPyArrow;
use mosaicrs::reader::{DataSource, ReadOptions};
use pyo3::prelude::*;

use crate::dataset::PyDataset;
use crate::location::open_located;

/// A dataset opened for the loader (see the module docs).
#[pyclass(module = "mosaicrs._native", name = "Source", frozen)]
pub struct PySource {
    pub(crate) inner: DataSource,
    /// The path or URL it was opened from (a URL without credentials).
    shown: String,
}

#[pymethods]
impl PySource {
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
            |at, cache| DataSource::open_at(at, cache, &ReadOptions::default()),
        )?;
        Ok(PySource { inner, shown })
    }

    /// Rows in the dataset.
    #[getter]
    fn num_rows(&self) -> u64 {
        self.inner.num_rows()
    }

    /// The Arrow schema as a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.inner.schema().as_ref().to_pyarrow(py)
    }

    /// True when the dataset streams through a cache smaller than itself.
    #[getter]
    fn is_streamed(&self) -> bool {
        self.inner.is_streamed()
    }

    /// Bytes downloaded from the object store so far (0 for a local dataset).
    #[getter]
    fn bytes_downloaded(&self) -> u64 {
        self.inner.bytes_downloaded()
    }

    /// The most bytes the cache held after a download (0 for a local dataset).
    #[getter]
    fn peak_cache_bytes(&self) -> u64 {
        self.inner.peak_cache_bytes()
    }

    /// The path or URL it was opened from (a URL without credentials).
    #[getter]
    fn path(&self) -> String {
        self.shown.clone()
    }

    fn __len__(&self) -> usize {
        self.inner.num_rows() as usize
    }

    fn __repr__(&self) -> String {
        format!(
            "mosaicrs.Source({:?}, rows={}, streamed={})",
            self.shown,
            self.inner.num_rows(),
            self.inner.is_streamed()
        )
    }
}

/// What `NativeLoader` takes: a `Dataset` (mapped) or a `Source`.
#[derive(FromPyObject)]
pub(crate) enum LoaderInput<'py> {
    Dataset(PyRef<'py, PyDataset>),
    Source(PyRef<'py, PySource>),
}

impl LoaderInput<'_> {
    pub(crate) fn source(&self) -> DataSource {
        match self {
            LoaderInput::Dataset(d) => DataSource::from(std::sync::Arc::clone(&d.inner)),
            LoaderInput::Source(s) => s.inner.clone(),
        }
    }
}
