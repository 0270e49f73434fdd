//! A remote dataset larger than the trainer's cache, read through it a
//! block of shards at a time.
//!
//! Nothing is downloaded when it is opened: a [`Loader`](crate::loader::Loader)
//! pins the shards of the blocks it is about to read ([`StreamedDataset::acquire`])
//! and unpins them once their samples are gathered, so the cache's LRU
//! eviction can take them for the next blocks.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::batch_cache::{BatchCache, BatchCacheStats};
use super::dataset::{column_indices, Dataset};
use super::rows::RowIndex;
use super::{ReadOptions, Shard};
use crate::format::{Index, INDEX_FILE};
use crate::loader::ShuffleMode;
use crate::storage::{dataset_folder, CacheOptions, Location, RemoteStore};
use crate::{Error, Result};

/// A remote dataset that streams through the cache. See the [module docs](self).
pub struct StreamedDataset {
    store: RemoteStore,
    index: Index,
    schema: SchemaRef,
    folder: PathBuf,
    cache: CacheOptions,
    read: ReadOptions,
    /// Decoded batches of the compressed (or `pread`) shards, shared by
    /// every shard and thread; kept across a shard's eviction from the
    /// disk cache, since a shard opened again holds the same batches.
    batch_cache: Arc<BatchCache>,
    /// Where each record batch starts, as far as the opened shards tell:
    /// a shard's batches are added when it is first opened.
    rows: RwLock<RowIndex>,
    slots: Mutex<Vec<Slot>>,
    downloaded: AtomicU64,
    shards_downloaded: AtomicU64,
    peak: AtomicU64,
}

/// A shard's residency: how many holders pin it, and the open shard.
#[derive(Default)]
struct Slot {
    users: u32,
    shard: Option<Arc<Shard>>,
    pin: Option<File>,
}

/// A dataset opened from a path or URL: mapped in place (local, or remote
/// and small enough to be cached whole), or streamed through the cache.
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
    Streamed(Arc<StreamedDataset>),
}

impl From<Arc<Dataset>> for DataSource {
    fn from(dataset: Arc<Dataset>) -> Self {
        DataSource::Mapped(dataset)
    }
}

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
    pub fn open_at(location: &Location, cache: &CacheOptions, read: &ReadOptions) -> Result<Self> {
        let store = match location {
            Location::Local(dir) => return Ok(Dataset::open_with(dir, read)?.into_source()),
            Location::Remote(store) => store,
        };
        let index = load_remote_index(store)?;
        if index.total_bytes <= cache.cache_limit {
            let dataset = Dataset::open_cached(store, index, cache, read)?;
            return Ok(dataset.into_source());
        }
        Ok(DataSource::Streamed(Arc::new(StreamedDataset::open(
            store, index, cache, read,
        )?)))
    }

    /// The parsed index.
    pub fn index(&self) -> &Index {
        match self {
            DataSource::Mapped(d) => d.index(),
            DataSource::Streamed(d) => d.index(),
        }
    }

    /// The Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        match self {
            DataSource::Mapped(d) => d.schema(),
            DataSource::Streamed(d) => d.schema(),
        }
    }

    /// Total rows.
    pub fn num_rows(&self) -> u64 {
        self.index().total_rows
    }

    /// Positions of the named columns, or [`Error::ColumnNotFound`].
    pub fn column_indices(&self, columns: &[&str]) -> Result<Vec<usize>> {
        column_indices(&self.schema(), columns)
    }

    /// Global row `row` as a one-row batch (a streamed dataset fetches its
    /// shard through the cache for the call).
    pub fn row(&self, row: u64) -> Result<RecordBatch> {
        match self {
            DataSource::Mapped(d) => d.row(row),
            DataSource::Streamed(d) => d.row(row),
        }
    }

    /// Bytes downloaded from the object store so far (0 for a local dataset).
    pub fn bytes_downloaded(&self) -> u64 {
        match self {
            DataSource::Mapped(d) => d.bytes_downloaded(),
            DataSource::Streamed(d) => d.bytes_downloaded(),
        }
    }

    /// The most bytes the cache held after a download of this reader (0 for
    /// a local dataset).
    pub fn peak_cache_bytes(&self) -> u64 {
        match self {
            DataSource::Mapped(d) => d.cache_usage_at_open(),
            DataSource::Streamed(d) => d.peak_cache_bytes(),
        }
    }

    /// True when the dataset streams through the cache.
    pub fn is_streamed(&self) -> bool {
        matches!(self, DataSource::Streamed(_))
    }
}

impl Dataset {
    /// This dataset as a [`DataSource`].
    pub fn into_source(self) -> DataSource {
        DataSource::Mapped(Arc::new(self))
    }
}

pub(super) fn load_remote_index(store: &RemoteStore) -> Result<Index> {
    let index_url = PathBuf::from(store.url_of(INDEX_FILE));
    match store.get_versioned(INDEX_FILE)? {
        Some((bytes, _)) => Index::parse(&bytes, &index_url),
        None => Err(Error::NotADataset {
            path: PathBuf::from(store.url()),
        }),
    }
}

impl StreamedDataset {
    /// Opens the dataset at `store` (whose index is `index`) for streaming
    /// through `cache`. Downloads nothing.
    pub fn open(
        store: &RemoteStore,
        index: Index,
        cache: &CacheOptions,
        read: &ReadOptions,
    ) -> Result<Self> {
        let folder = dataset_folder(cache, store.url());
        std::fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
        // The index beside the cached shards, as for a dataset cached whole.
        index.store_atomic(&folder)?;
        let schema = index.arrow_schema().map_err(|e| Error::InvalidIndex {
            path: PathBuf::from(store.url_of(INDEX_FILE)),
            reason: format!("the schema cannot be decoded: {e}"),
        })?;
        let rows = RwLock::new(RowIndex::unopened(&index));
        let read = ReadOptions {
            access: read.access.resolve(&folder),
            ..*read
        };
        let slots = (0..index.shards.len()).map(|_| Slot::default()).collect();
        let batch_cache = Arc::new(BatchCache::new(read.batch_cache_bytes)?);
        Ok(StreamedDataset {
            batch_cache,
            store: store.clone(),
            index,
            schema,
            folder,
            cache: cache.clone(),
            read,
            rows,
            slots: Mutex::new(slots),
            downloaded: AtomicU64::new(0),
            shards_downloaded: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        })
    }

    /// The parsed index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The Arrow schema.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Hits, misses, evictions and bytes held of the decoded-batch cache
    /// its compressed shards share (see [`Dataset::batch_cache_stats`]).
    pub fn batch_cache_stats(&self) -> BatchCacheStats {
        self.batch_cache.stats()
    }

    /// The dataset's folder in the cache.
    pub fn cache_folder(&self) -> &Path {
        &self.folder
    }

    /// The cache it streams through.
    pub fn cache_options(&self) -> &CacheOptions {
        &self.cache
    }

    /// Bytes downloaded so far, by every reader of this dataset object.
    pub fn bytes_downloaded(&self) -> u64 {
        self.downloaded.load(Ordering::Relaxed)
    }

    /// Shard downloads so far.
    pub fn shards_downloaded(&self) -> u64 {
        self.shards_downloaded.load(Ordering::Relaxed)
    }

    /// The most bytes the cache held right after one of this dataset's downloads.
    pub fn peak_cache_bytes(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// The smallest `cache_limit` that streams this dataset in `mode`:
    /// `(1 + prefetch_blocks) × shards per block × largest shard` (a block
    /// being read, the next ones fetched), and the whole dataset for a
    /// global shuffle.
    pub fn cache_needed(&self, mode: ShuffleMode) -> u64 {
        let per_block = match mode {
            ShuffleMode::Global => return self.index.total_bytes,
            ShuffleMode::Sequential => 1,
            ShuffleMode::BlockLocal { shards_per_block } => u64::from(shards_per_block.max(1)),
        };
        let largest = self.index.shards.iter().map(|s| s.bytes).max().unwrap_or(0);
        let blocks = 1 + u64::from(self.cache.prefetch_blocks);
        (blocks * per_block * largest).min(self.index.total_bytes)
    }

    /// Refuses a shuffle the cache is too small for, naming the size needed.
    pub fn check_cache_for(&self, mode: ShuffleMode) -> Result<()> {
        let needed = self.cache_needed(mode);
        if needed <= self.cache.cache_limit {
            return Ok(());
        }
        let reason = match mode {
            ShuffleMode::Global => format!(
                "a global shuffle reads the whole dataset ({needed} bytes) in random order, so \
                 it must all be in the cache; use block-local:K shuffle to stream it"
            ),
            _ => format!(
                "shuffle {mode} streams the dataset a block at a time and needs room for \
                 {} blocks (the one read and {} fetched ahead) of its largest shards",
                1 + self.cache.prefetch_blocks,
                self.cache.prefetch_blocks
            ),
        };
        Err(Error::CacheTooSmall {
            location: self.store.url().to_string(),
            limit: self.cache.cache_limit,
            needed,
            reason,
        })
    }

    /// The row index, with the record batches of every shard opened so far.
    pub(crate) fn row_index(&self) -> RwLockReadGuard<'_, RowIndex> {
        // Every update is one splice of owned vectors done after the checks
        // that can fail, so a poisoned lock still guards a consistent index.
        self.rows.read().unwrap_or_else(|p| p.into_inner())
    }

    fn slots(&self) -> MutexGuard<'_, Vec<Slot>> {
        // A panic while holding the lock leaves the slots consistent (each
        // update is one assignment), so a poisoned lock is still usable.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes shard `shard` present in the cache and pinned, and opens it;
    /// every call needs one [`release`](Self::release).
    pub(crate) fn acquire(&self, shard: usize) -> Result<()> {
        {
            let mut slots = self.slots();
            let slot = slots
                .get_mut(shard)
                .ok_or_else(|| Error::Internal(format!("shard {shard} does not exist")))?;
            if slot.users > 0 {
                slot.users += 1;
                return Ok(());
            }
        }
        let entry = &self.index.shards[shard];
        let pinned = crate::storage::fetch_one(&self.store, entry, &self.folder, &self.cache)?;
        if pinned.downloaded > 0 {
            self.downloaded
                .fetch_add(pinned.downloaded, Ordering::Relaxed);
            self.shards_downloaded.fetch_add(1, Ordering::Relaxed);
            self.peak.fetch_max(pinned.usage, Ordering::Relaxed);
        }
        let cache = (Arc::clone(&self.batch_cache), shard);
        let opened = Shard::open_cached(&self.folder, entry, &self.schema, &self.read, cache)?;
        // Before the shard is resident: a reader that finds it resident
        // (through the slots' lock) finds its record batches in the index.
        self.rows
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .open_shard(shard, opened.batch_row_offsets())?;
        let mut slots = self.slots();
        let slot = &mut slots[shard];
        slot.users += 1;
        if slot.shard.is_none() {
            slot.shard = Some(Arc::new(opened));
            slot.pin = Some(pinned.pin);
        }
        Ok(())
    }

    /// Drops one hold on `shard`; the last one unpins it.
    pub(crate) fn release(&self, shard: usize) {
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(shard) {
            slot.users = slot.users.saturating_sub(1);
            if slot.users == 0 {
                slot.shard = None;
                slot.pin = None;
            }
        }
    }

    /// The open shard `shard`, while it is acquired.
    pub(crate) fn resident(&self, shard: usize) -> Result<Arc<Shard>> {
        self.slots()
            .get(shard)
            .and_then(|s| s.shard.clone())
            .ok_or_else(|| {
                Error::Internal(format!(
                    "shard {shard} of {} is read while it is not fetched",
                    self.store.url()
                ))
            })
    }

    /// Global row `row` as a one-row batch; its shard is fetched through
    /// the cache for the call.
    pub fn row(&self, row: u64) -> Result<RecordBatch> {
        let shard = self.row_index().shard_of(row)?;
        self.acquire(shard)?;
        let result = self.row_index().locate(row).and_then(|at| {
            let batch = self.resident(at.shard)?.batch(at.batch)?;
            Ok(batch.slice(at.offset, 1))
        });
        self.release(shard);
        result
    }
}
