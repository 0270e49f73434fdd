//! A whole dataset: the index plus every shard, mapped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::compute::{concat_batches, interleave};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::batch_cache::{BatchCache, BatchCacheStats};
use super::options::ReadOptions;
use super::rows::{RowIndex, RowLocation};
use super::shard::Shard;
use crate::format::{column_indices, Index, VersionSpec};
#[cfg(unix)]
use crate::storage::{CacheOptions, Location};
use crate::{Error, Result};

/// An open dataset. Cheap to share across threads behind an `Arc`.
pub struct Dataset {
    path: PathBuf,
    index: Index,
    schema: SchemaRef,
    shards: Vec<Shard>,
    /// Where each record batch starts.
    rows: RowIndex,
    /// Decoded batches of the compressed (or `pread`) shards, shared by
    /// every shard and every thread.
    batch_cache: Arc<BatchCache>,
    /// Shared locks on the cached shards of a remote dataset: while the
    /// dataset is open, the cache never evicts them.
    _pins: Vec<std::fs::File>,
    /// Bytes downloaded to open a remote dataset (0 when all were cached).
    downloaded: u64,
    /// Bytes the cache held once a remote dataset was open.
    cache_usage: u64,
}

impl Dataset {
    /// Opens the dataset in `path`: reads the index, maps every shard and
    /// checks each one's size, magic, schema and row count against the index.
    /// Checksums are not read here; see [`Dataset::verify`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &ReadOptions::default())
    }

    /// Opens the dataset in `path` as `options` say: with every shard's
    /// checksum verified as it is opened, and mapped or read with
    /// positioned reads ([`Access`](super::Access)).
    ///
    /// ```no_run
    /// use mosaicrs::reader::{Dataset, ReadOptions};
    /// let options = ReadOptions { verify_checksums: true, ..Default::default() };
    /// let dataset = Dataset::open_with("data/train", &options)?;
    /// # Ok::<(), mosaicrs::Error>(())
    /// ```
    pub fn open_with(path: impl AsRef<Path>, options: &ReadOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let index = Index::load(&path)?;
        Self::from_index(path, index, options)
    }

    /// Opens a dataset at a path or URL (see [`Location::parse`]).
    ///
    /// A local location is mapped in place, as [`Dataset::open`]. A remote
    /// one is read through the cache in `cache`: missing shards are
    /// downloaded with parallel range requests, verified against the
    /// index's size and checksum, then mapped from the cache; they stay
    /// pinned there while the dataset is open. A `cache_limit` smaller than
    /// the dataset is refused before anything is downloaded.
    ///
    /// ```
    /// use mosaicrs::reader::Dataset;
    /// use mosaicrs::storage::{CacheOptions, Location, StorageOptions};
    /// let dir = tempfile::tempdir().unwrap();
    /// let location = Location::parse(dir.path().to_str().unwrap(), &StorageOptions::default()).unwrap();
    /// assert!(Dataset::open_at(&location, &CacheOptions::default()).is_err()); // no index yet
    /// ```
    #[cfg(unix)]
    pub fn open_at(location: &Location, cache: &CacheOptions) -> Result<Self> {
        Self::open_at_with(location, cache, &ReadOptions::default())
    }

    /// [`Dataset::open_at`] with [`ReadOptions`] for the local or cached
    /// shards. Downloaded shards are always verified once, when they arrive.
    #[cfg(unix)]
    pub fn open_at_with(
        location: &Location,
        cache: &CacheOptions,
        options: &ReadOptions,
    ) -> Result<Self> {
        let store = match location {
            Location::Local(dir) => return Self::open_with(dir, options),
            Location::Remote(store) => store,
        };
        let index = location.load_index()?;
        Self::open_cached(store, index, cache, options)
    }

    /// Opens version `version` of the dataset at `location` (see
    /// [`Location::load_index_at`]); otherwise as [`Dataset::open_at_with`].
    ///
    /// Fails with [`Error::VersionNotFound`] when that version is not kept.
    ///
    /// ```
    /// use mosaicrs::format::VersionSpec;
    /// use mosaicrs::reader::Dataset;
    /// use mosaicrs::storage::Location;
    /// let dir = tempfile::tempdir().unwrap();
    /// let spec: VersionSpec = "3".parse().unwrap();
    /// let opened = Dataset::open_version(&Location::local(dir.path()), &Default::default(),
    ///     &Default::default(), &spec);
    /// assert!(opened.is_err()); // no dataset here
    /// ```
    #[cfg(unix)]
    pub fn open_version(
        location: &Location,
        cache: &CacheOptions,
        options: &ReadOptions,
        version: &VersionSpec,
    ) -> Result<Self> {
        let index = location.load_index_at(version)?;
        match location {
            Location::Local(dir) => Self::from_index(dir.clone(), index, options),
            Location::Remote(store) => Self::open_cached(store, index, cache, options),
        }
    }

    /// Downloads what is missing of the dataset at `store` into the cache,
    /// pins it all and maps it.
    #[cfg(unix)]
    pub(crate) fn open_cached(
        store: &crate::storage::RemoteStore,
        index: Index,
        cache: &CacheOptions,
        options: &ReadOptions,
    ) -> Result<Self> {
        let cached = crate::storage::fetch_all(store, &index, cache)?;
        let mut dataset = Self::from_index(cached.folder, index, options)?;
        dataset._pins = cached.pins;
        dataset.downloaded = cached.downloaded;
        dataset.cache_usage = cached.usage;
        Ok(dataset)
    }

    /// Bytes downloaded from the object store to open this dataset.
    pub fn bytes_downloaded(&self) -> u64 {
        self.downloaded
    }

    /// Bytes the cache held once this remote dataset was open (0 for a
    /// local one).
    pub fn cache_usage_at_open(&self) -> u64 {
        self.cache_usage
    }

    fn from_index(path: PathBuf, index: Index, options: &ReadOptions) -> Result<Self> {
        let schema = index.arrow_schema().map_err(|e| Error::InvalidIndex {
            path: Index::path_in(&path),
            reason: format!("the schema cannot be decoded: {e}"),
        })?;
        // One statfs for the folder, not one per shard.
        let options = ReadOptions {
            access: options.access.resolve(&path),
            ..*options
        };
        let batch_cache = Arc::new(BatchCache::new(options.batch_cache_bytes)?);
        let shards = index
            .shards
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                let cache = (Arc::clone(&batch_cache), i);
                Shard::open_cached(&path, entry, &schema, &options, cache)
            })
            .collect::<Result<Vec<_>>>()?;
        let rows = RowIndex::opened(shards.iter().map(Shard::batch_row_offsets));
        Ok(Dataset {
            path,
            index,
            schema,
            shards,
            rows,
            batch_cache,
            _pins: Vec::new(),
            downloaded: 0,
            cache_usage: 0,
        })
    }

    /// Hits, misses, evictions and bytes held of the decoded-batch cache
    /// that the compressed (or `pread`) shards share
    /// ([`ReadOptions::batch_cache_bytes`]). Reads of mapped uncompressed
    /// shards do not pass through it.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::Int64Array;
    /// # use arrow::datatypes::{DataType, Field, Schema};
    /// # use arrow::record_batch::RecordBatch;
    /// # use mosaicrs::format::Compression;
    /// # use mosaicrs::writer::{commit, SaveMode, ShardWriter, WriterOptions};
    /// use mosaicrs::reader::Dataset;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    /// # let batch = RecordBatch::try_new(schema.clone(),
    /// #     vec![Arc::new(Int64Array::from_iter_values(0..10))]).unwrap();
    /// # let options = WriterOptions { compression: Compression::Zstd, ..Default::default() };
    /// # let mut w = ShardWriter::create(dir.path(), schema.clone(), "w", 0, 0, options).unwrap();
    /// # w.write(&batch).unwrap();
    /// # commit(dir.path(), &schema, "w", w.finish().unwrap(), SaveMode::Append).unwrap();
    /// let dataset = Dataset::open(dir.path()).unwrap(); // zstd shards
    /// dataset.row(3).unwrap();
    /// dataset.row(4).unwrap();
    /// let stats = dataset.batch_cache_stats();
    /// assert_eq!((stats.misses, stats.hits), (1, 1)); // one batch, decoded once
    /// assert!(stats.bytes <= stats.capacity_bytes);
    /// ```
    pub fn batch_cache_stats(&self) -> BatchCacheStats {
        self.batch_cache.stats()
    }

    /// The decoded-batch cache, which also keeps the loader's row blocks.
    pub(crate) fn batch_cache(&self) -> &Arc<BatchCache> {
        &self.batch_cache
    }

    /// The dataset folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The version of the dataset this is (0 for the first commit).
    pub fn version(&self) -> u64 {
        self.index.version
    }

    /// The parsed index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The Arrow schema of every batch.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Total rows.
    pub fn num_rows(&self) -> u64 {
        self.index.total_rows
    }

    /// Number of shards.
    pub fn num_shards(&self) -> usize {
        self.shards.len()
    }

    /// The mapped shards, in index order.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// First global row of each shard, then the total row count.
    pub fn shard_row_offsets(&self) -> &[u64] {
        self.rows.shard_starts()
    }

    /// The row index: every record batch's first global row.
    pub(crate) fn row_index(&self) -> &RowIndex {
        &self.rows
    }

    /// Positions of the named columns, or [`Error::ColumnNotFound`].
    pub fn column_indices(&self, columns: &[&str]) -> Result<Vec<usize>> {
        column_indices(&self.schema, columns)
    }

    /// Record batch `batch` of shard `shard` (zero-copy for uncompressed shards).
    pub fn record_batch(&self, shard: usize, batch: usize) -> Result<RecordBatch> {
        self.shard(shard)?.batch(batch)
    }

    /// Like [`record_batch`](Self::record_batch), shared (see
    /// [`Shard::shared_batch`]).
    pub fn shared_record_batch(&self, shard: usize, batch: usize) -> Result<Arc<RecordBatch>> {
        self.shard(shard)?.shared_batch(batch)
    }

    fn shard(&self, shard: usize) -> Result<&Shard> {
        self.shards
            .get(shard)
            .ok_or_else(|| Error::Internal(format!("shard {shard} does not exist")))
    }

    /// Every record batch in dataset order.
    pub fn batches(&self) -> impl Iterator<Item = Result<RecordBatch>> + '_ {
        self.shards
            .iter()
            .flat_map(|shard| (0..shard.num_batches()).map(move |b| shard.batch(b)))
    }

    /// Every record batch in dataset order, with only the named columns.
    pub fn batches_projected(
        &self,
        columns: &[&str],
    ) -> Result<impl Iterator<Item = Result<RecordBatch>> + '_> {
        let indices = self.column_indices(columns)?;
        Ok(self.batches().map(move |batch| {
            batch?
                .project(&indices)
                .map_err(|e| Error::arrow("projecting columns", e))
        }))
    }

    /// Finds the shard, batch and offset of global row `row`.
    pub fn locate(&self, row: u64) -> Result<RowLocation> {
        self.rows.locate(row)
    }

    /// Global row `row` as a one-row batch.
    pub fn row(&self, row: u64) -> Result<RecordBatch> {
        let loc = self.locate(row)?;
        Ok(self
            .record_batch(loc.shard, loc.batch)?
            .slice(loc.offset, 1))
    }

    /// Rows `start..start + len` as one batch (copied only when the range
    /// spans record batches).
    pub fn slice(&self, start: u64, len: u64) -> Result<RecordBatch> {
        let end = start.checked_add(len).ok_or(Error::RowOutOfRange {
            row: u64::MAX,
            rows: self.num_rows(),
        })?;
        if end > self.num_rows() {
            return Err(Error::RowOutOfRange {
                row: end - 1,
                rows: self.num_rows(),
            });
        }
        let mut pieces = Vec::new();
        let mut row = start;
        while row < end {
            let loc = self.locate(row)?;
            let batch = self.record_batch(loc.shard, loc.batch)?;
            let take = ((batch.num_rows() - loc.offset) as u64).min(end - row) as usize;
            pieces.push(batch.slice(loc.offset, take));
            row += take as u64;
        }
        match pieces.len() {
            0 => Ok(RecordBatch::new_empty(self.schema())),
            1 => Ok(pieces.remove(0)),
            _ => concat_batches(&self.schema, &pieces)
                .map_err(|e| Error::arrow("concatenating a row range", e)),
        }
    }

    /// Gathers arbitrary rows, in the given order, optionally projected to
    /// the columns at `projection`.
    pub fn take(&self, rows: &[u64], projection: Option<&[usize]>) -> Result<RecordBatch> {
        let columns: Vec<usize> = match projection {
            Some(p) => p.to_vec(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let schema = Arc::new(
            self.schema
                .project(&columns)
                .map_err(|e| Error::arrow("projecting columns", e))?,
        );
        let picked = self.rows.pick(rows)?;
        let sources = picked
            .batches
            .iter()
            .map(|&(shard, batch)| self.record_batch(shard, batch))
            .collect::<Result<Vec<_>>>()?;
        if rows.is_empty() {
            return Ok(RecordBatch::new_empty(schema));
        }
        let arrays = columns
            .iter()
            .map(|&c| {
                let parts: Vec<&dyn arrow::array::Array> =
                    sources.iter().map(|b| b.column(c).as_ref()).collect();
                interleave(&parts, &picked.picks).map_err(|e| Error::arrow("gathering rows", e))
            })
            .collect::<Result<Vec<ArrayRef>>>()?;
        RecordBatch::try_new(schema, arrays).map_err(|e| Error::arrow("gathering rows", e))
    }

    /// Checks every shard's checksum; the first mismatch is the error.
    /// [`validate`](super::validate) reports every problem instead.
    pub fn verify(&self) -> Result<()> {
        self.shards.iter().try_for_each(Shard::verify_checksum)
    }
}
