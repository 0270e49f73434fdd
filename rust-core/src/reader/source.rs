//! What a dataset is read as: mapped in place, or streamed through the
//! cache. Above both dataset kinds, so that neither names the other.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::dataset::Dataset;
#[cfg(unix)]
use super::options::ReadOptions;
#[cfg(unix)]
use super::streamed::StreamedDataset;
#[cfg(unix)]
use crate::format::VersionSpec;
use crate::format::{column_indices, Index};
#[cfg(unix)]
use crate::storage::{CacheOptions, Location};
use crate::Result;

/// A dataset opened from a path or URL: mapped in place (local, or remote
/// and small enough to be cached whole), or (on Unix) streamed through the
/// cache.
///
/// ```
/// use std::sync::Arc;
/// use mosaicrs::reader::DataSource;
/// use mosaicrs::storage::{CacheOptions, Location, StorageOptions};
/// let dir = tempfile::tempdir().unwrap();
/// let location = Location::parse(dir.path().to_str().unwrap(), &StorageOptions::default()).unwrap();
/// // No index yet, so not a dataset.
/// assert!(DataSource::open_at(&location, &CacheOptions::default(), &Default::default()).is_err());
/// ```
#[derive(Clone)]
pub enum DataSource {
    /// Every shard mapped: a local dataset, or a remote one fetched whole.
    Mapped(Arc<Dataset>),
    /// A remote dataset larger than the cache.
    #[cfg(unix)]
    Streamed(Arc<StreamedDataset>),
}

impl From<Arc<Dataset>> for DataSource {
    fn from(dataset: Arc<Dataset>) -> Self {
        DataSource::Mapped(dataset)
    }
}

#[cfg(unix)]
impl From<Arc<StreamedDataset>> for DataSource {
    fn from(dataset: Arc<StreamedDataset>) -> Self {
        DataSource::Streamed(dataset)
    }
}

impl DataSource {
    /// Opens `location`: a local folder is mapped in place; a remote dataset
    /// whose shards fit in `cache.cache_limit` is downloaded whole (what is
    /// missing) and mapped from the cache, as [`Dataset::open_at_with`]; a
    /// larger one is opened for streaming, downloading nothing yet.
    #[cfg(unix)]
    pub fn open_at(location: &Location, cache: &CacheOptions, read: &ReadOptions) -> Result<Self> {
        let store = match location {
            Location::Local(dir) => return Ok(Dataset::open_with(dir, read)?.into_source()),
            Location::Remote(store) => store,
        };
        let index = location.load_index()?;
        Self::from_remote(store, index, cache, read)
    }

    /// [`DataSource::open_at`] of version `version` (see
    /// [`Location::load_index_at`]); fails with
    /// [`Error::VersionNotFound`](crate::Error::VersionNotFound) when that
    /// version is not kept.
    #[cfg(unix)]
    pub fn open_version(
        location: &Location,
        cache: &CacheOptions,
        read: &ReadOptions,
        version: &VersionSpec,
    ) -> Result<Self> {
        match location {
            Location::Local(_) => {
                Ok(Dataset::open_version(location, cache, read, version)?.into_source())
            }
            Location::Remote(store) => {
                let index = location.load_index_at(version)?;
                Self::from_remote(store, index, cache, read)
            }
        }
    }

    /// A remote dataset of `index`: cached whole when it fits, else streamed.
    #[cfg(unix)]
    fn from_remote(
        store: &crate::storage::RemoteStore,
        index: Index,
        cache: &CacheOptions,
        read: &ReadOptions,
    ) -> Result<Self> {
        if index.total_bytes <= cache.cache_limit {
            let dataset = Dataset::open_cached(store, index, cache, read)?;
            return Ok(dataset.into_source());
        }
        Ok(DataSource::Streamed(Arc::new(StreamedDataset::open(
            store, index, cache, read,
        )?)))
    }

    /// The version of the dataset this is (0 for the first commit).
    pub fn version(&self) -> u64 {
        self.index().version
    }

    /// The parsed index.
    pub fn index(&self) -> &Index {
        match self {
            DataSource::Mapped(d) => d.index(),
            #[cfg(unix)]
            DataSource::Streamed(d) => d.index(),
        }
    }

    /// The Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        match self {
            DataSource::Mapped(d) => d.schema(),
            #[cfg(unix)]
            DataSource::Streamed(d) => d.schema(),
        }
    }

    /// Total rows.
    pub fn num_rows(&self) -> u64 {
        self.index().total_rows
    }

    /// Positions of the named columns, or [`Error::ColumnNotFound`](crate::Error::ColumnNotFound).
    pub fn column_indices(&self, columns: &[&str]) -> Result<Vec<usize>> {
        column_indices(&self.schema(), columns)
    }

    /// Global row `row` as a one-row batch (a streamed dataset fetches its
    /// shard through the cache for the call).
    pub fn row(&self, row: u64) -> Result<RecordBatch> {
        match self {
            DataSource::Mapped(d) => d.row(row),
            #[cfg(unix)]
            DataSource::Streamed(d) => d.row(row),
        }
    }

    /// Bytes downloaded from the object store so far (0 for a local dataset).
    pub fn bytes_downloaded(&self) -> u64 {
        match self {
            DataSource::Mapped(d) => d.bytes_downloaded(),
            #[cfg(unix)]
            DataSource::Streamed(d) => d.bytes_downloaded(),
        }
    }

    /// The most bytes the cache held after a download of this reader (0 for
    /// a local dataset).
    pub fn peak_cache_bytes(&self) -> u64 {
        match self {
            DataSource::Mapped(d) => d.cache_usage_at_open(),
            #[cfg(unix)]
            DataSource::Streamed(d) => d.peak_cache_bytes(),
        }
    }

    /// True when the dataset streams through the cache.
    pub fn is_streamed(&self) -> bool {
        match self {
            DataSource::Mapped(_) => false,
            #[cfg(unix)]
            DataSource::Streamed(_) => true,
        }
    }

    /// The streamed dataset, when the shards stream through the cache.
    #[cfg(unix)]
    pub(crate) fn as_streamed(&self) -> Option<&Arc<StreamedDataset>> {
        match self {
            DataSource::Mapped(_) => None,
            DataSource::Streamed(d) => Some(d),
        }
    }
}

impl Dataset {
    /// This dataset as a [`DataSource`].
    pub fn into_source(self) -> DataSource {
        DataSource::Mapped(Arc::new(self))
    }
}
