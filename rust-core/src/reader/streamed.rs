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
use super::options::ReadOptions;
use super::rows::RowIndex;
use super::shard::Shard;
use crate::format::{Index, INDEX_FILE};
use crate::storage::{dataset_folder, CacheOptions, RemoteStore};
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

    /// The dataset's URL, without credentials.
    pub fn url(&self) -> &str {
        self.store.url()
    }

    /// Hits, misses, evictions and bytes held of the decoded-batch cache
    /// its compressed shards share (see [`Dataset::batch_cache_stats`](super::Dataset::batch_cache_stats)).
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
