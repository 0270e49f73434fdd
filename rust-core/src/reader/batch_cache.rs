//! The decoded-batch cache of an open dataset.
//!
//! A record batch of a compressed shard (or of any shard read with
//! positioned reads) must be decoded into owned memory before a row of it
//! can be read. Random access and global shuffles come back to the same
//! batches again and again, so an open [`Dataset`](super::Dataset) keeps
//! decoded batches in one cache shared by all its shards and by every
//! loader thread, keyed by (shard, batch) and bounded by the bytes the
//! batches hold. Mapped uncompressed shards never go through it: their
//! batches are views into the mapping and cost no memory.
//!
//! The cache is [`quick_cache`]'s concurrent cache rather than a hand-made
//! sharded LRU: it is maintained, weighs entries (here in bytes), evicts
//! with a scan-resistant CLOCK-Pro policy (a sequential scan does not flush
//! the batches a shuffle keeps reusing), and its placeholders make a miss
//! single-flight: threads asking for a batch that another thread is
//! decoding wait for that decode instead of repeating it.
//!
//! The same cache, under the same byte limit, also keeps *row blocks*: a
//! copy of some columns of one record batch in another form, built by the
//! layer above (the assembler's row-major copy of a plan's feature columns,
//! see `docs/LOADER.md`, "Row-major blocks"). A row block is keyed by its
//! batch and a [`RowLayout`] id, and is dropped like a decoded batch when
//! the limit needs room; a build that finds the batch unsuitable (nulls,
//! say) is remembered as `None` so that it is not tried again.

use std::any::{Any, TypeId};
use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{Array, ArrayData};
use arrow::record_batch::RecordBatch;
use quick_cache::sync::{Cache, GuardResult};
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use crate::{Error, Result};

/// Bytes of decoded record batches a dataset keeps by default: 256 MiB,
/// room for about a hundred 4,096-row batches of a few hundred bytes per
/// row, the working set of a global shuffle over a few GiB of data with a
/// loader batch of thousands of rows (see BENCHMARKS.md).
pub const DEFAULT_BATCH_CACHE_BYTES: u64 = 256 << 20;

/// The smallest part of the limit that one internal shard of [`quick_cache`]
/// gets. Each internal shard holds an equal part and refuses a batch larger
/// than its part, so parts are kept at 64 MiB or more (a 256 MiB cache has
/// 4, a smaller one 1): a large record batch still fits, and a few parts
/// are enough for a loader's handful of threads.
const MIN_PART_BYTES: u64 = 64 << 20;

/// (shard position in the index, record batch within the shard, what of
/// it: [`DECODED`] for the decoded batch, a [`RowLayout`] id for a row block).
type Key = (usize, usize, u32);

/// The third part of the key of a decoded batch.
const DECODED: u32 = 0;

/// A row block: a form of one record batch's values that the layer above
/// builds and reads (the cache only weighs and keeps it).
pub(crate) type RowBlock = Arc<dyn Any + Send + Sync>;

/// A row block lookup's answer.
pub(crate) enum Built {
    /// The block (`None`: its batch cannot take the layout).
    Ready(Option<RowBlock>),
    /// Another thread is building it.
    Busy,
}

/// What a row block holds: these columns (numbers in the shards' schema) of
/// a record batch, as the Rust type `element`. One id per layout and cache
/// ([`BatchCache::layout_id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowLayout {
    pub(crate) columns: Vec<usize>,
    pub(crate) element: TypeId,
}

/// An entry and the bytes it holds, weighed once when inserted.
#[derive(Clone)]
struct Cached {
    value: Entry,
    bytes: u64,
}

#[derive(Clone)]
enum Entry {
    /// Shared, so that a hit costs one reference count, not one per column.
    Batch(Arc<RecordBatch>),
    /// `None`: the batch cannot take this layout (remembered, not retried).
    Rows(Option<RowBlock>),
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<Key, Cached> for ByBytes {
    fn weight(&self, _key: &Key, value: &Cached) -> u64 {
        // quick_cache never evicts an entry of weight 0; an empty batch
        // still weighs one byte.
        value.bytes.max(1)
    }
}

/// Counts evictions; the evicted batches are dropped once the cache's lock
/// is released (the request state is dropped after it), not under it.
#[derive(Clone)]
struct CountEvictions(Arc<AtomicU64>);

impl Lifecycle<Key, Cached> for CountEvictions {
    type RequestState = Vec<Cached>;

    fn on_evict(&self, state: &mut Self::RequestState, _key: Key, value: Cached) {
        self.0.fetch_add(1, Ordering::Relaxed);
        state.push(value);
    }
}

/// What a [`BatchCache`] has done since its dataset was opened.
///
/// ```
/// use mosaicrs::reader::BatchCacheStats;
/// let stats = BatchCacheStats { hits: 3, misses: 1, ..Default::default() };
/// assert_eq!(stats.hit_rate(), 0.75);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BatchCacheStats {
    /// Reads served by a batch already decoded (or being decoded by
    /// another thread, which was waited for).
    pub hits: u64,
    /// Reads that decoded their batch.
    pub misses: u64,
    /// Batches dropped to stay within the limit, including those too large
    /// to be kept at all.
    pub evictions: u64,
    /// Row blocks served from the cache (see the [module docs](self)).
    pub row_block_hits: u64,
    /// Row blocks built.
    pub row_block_misses: u64,
    /// Bytes the cached batches and row blocks hold now.
    pub bytes: u64,
    /// Batches cached now.
    pub entries: u64,
    /// The limit on `bytes`.
    pub capacity_bytes: u64,
}

/// One line for reports: `99.8% hits (238055 hits, 489 misses, 0
/// evictions), 144.0 of 268.4 MB held`.
impl std::fmt::Display for BatchCacheStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.1}% hits ({} hits, {} misses, {} evictions), {:.1} of {:.1} MB held",
            100.0 * self.hit_rate(),
            self.hits,
            self.misses,
            self.evictions,
            self.bytes as f64 / 1e6,
            self.capacity_bytes as f64 / 1e6
        )
    }
}

impl BatchCacheStats {
    /// Hits over all reads through the cache; 0 before any read.
    pub fn hit_rate(&self) -> f64 {
        let reads = self.hits + self.misses;
        if reads == 0 {
            0.0
        } else {
            self.hits as f64 / reads as f64
        }
    }
}

/// Decoded record batches shared by every shard of an open dataset and by
/// every thread reading it. See the [module docs](self).
pub struct BatchCache {
    /// `None` when the limit is 0: every read decodes.
    cache: Option<Cache<Key, Cached, ByBytes, DefaultHashBuilder, CountEvictions>>,
    capacity: u64,
    hits: AtomicU64,
    misses: AtomicU64,
    row_hits: AtomicU64,
    row_misses: AtomicU64,
    evictions: Arc<AtomicU64>,
    /// Row layouts by id - 1; a loader has one or two.
    layouts: Mutex<Vec<RowLayout>>,
}

impl std::fmt::Debug for BatchCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl BatchCache {
    /// A cache holding at most `capacity` bytes of decoded batches; 0 turns
    /// caching off.
    pub(crate) fn new(capacity: u64) -> Result<Self> {
        let evictions = Arc::new(AtomicU64::new(0));
        let cache = if capacity == 0 {
            None
        } else {
            // A power of two, so that the parts split the limit exactly.
            let parts = (capacity / MIN_PART_BYTES).clamp(1, 16);
            let parts = 1usize << parts.ilog2();
            let options = OptionsBuilder::new()
                .shards(parts)
                .weight_capacity(capacity)
                // Only sizes the hash tables; batches of about 1 MiB.
                .estimated_items_capacity(((capacity >> 20) as usize).clamp(16, 4096))
                .build()
                .map_err(|e| {
                    Error::InvalidArgument(format!(
                        "a batch cache of {capacity} bytes cannot be built: {e}"
                    ))
                })?;
            Some(Cache::with_options(
                options,
                ByBytes,
                DefaultHashBuilder::default(),
                CountEvictions(Arc::clone(&evictions)),
            ))
        };
        Ok(BatchCache {
            cache,
            capacity,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            row_hits: AtomicU64::new(0),
            row_misses: AtomicU64::new(0),
            evictions,
            layouts: Mutex::new(Vec::new()),
        })
    }

    /// The limit on the bytes held; 0 when caching is off.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Batch `batch` of shard `shard`: the cached one, or `decode`'s result,
    /// weighed without the bytes of `mapped` (the shard's mapping, which
    /// costs no memory of its own) and kept. A failed decode is not cached.
    pub(crate) fn get_or_decode(
        &self,
        shard: usize,
        batch: usize,
        mapped: Option<NonNull<u8>>,
        decode: impl FnOnce() -> Result<RecordBatch>,
    ) -> Result<Arc<RecordBatch>> {
        let Some(cache) = &self.cache else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return decode().map(Arc::new);
        };
        match cache.get_value_or_guard(&(shard, batch, DECODED), None) {
            GuardResult::Value(Cached {
                value: Entry::Batch(batch),
                ..
            }) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Ok(batch)
            }
            GuardResult::Value(_) => Err(Error::Internal(format!(
                "the batch cache holds a row block under batch {batch} of shard {shard}"
            ))),
            GuardResult::Guard(guard) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                let decoded = Arc::new(decode()?);
                let bytes = held_bytes(&decoded, mapped);
                // Err only when the entry was replaced meanwhile; the batch
                // read is the same either way.
                let _ = guard.insert(Cached {
                    value: Entry::Batch(Arc::clone(&decoded)),
                    bytes,
                });
                Ok(decoded)
            }
            // Only a wait with a timeout can time out; decode without caching.
            GuardResult::Timeout => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                decode().map(Arc::new)
            }
        }
    }

    /// The id of `layout` in this cache (the same for equal layouts), for
    /// [`row_block`](Self::row_block).
    pub(crate) fn layout_id(&self, layout: &RowLayout) -> Result<u32> {
        // A panic elsewhere cannot leave the list half-changed.
        let mut layouts = self.layouts.lock().unwrap_or_else(|e| e.into_inner());
        let at = match layouts.iter().position(|l| l == layout) {
            Some(at) => at,
            None => {
                layouts.push(layout.clone());
                layouts.len() - 1
            }
        };
        u32::try_from(at + 1)
            .map_err(|_| Error::Internal("more row layouts than a u32 numbers".into()))
    }

    /// The row block of layout `layout` (an id from
    /// [`layout_id`](Self::layout_id)) of batch `batch` of shard `shard`:
    /// the cached one, or `build`'s, kept with the bytes it reports. `build`
    /// returns `None` for a batch that cannot take the layout; that answer is
    /// kept too (weighing one byte). Caching off: `build` runs every time.
    ///
    /// When another thread is building the block, this waits for it, or
    /// with `wait` false answers [`Built::Busy`] at once (and `build` does
    /// not run): threads that need many blocks at once then build different
    /// ones side by side instead of queueing on each other's.
    pub(crate) fn row_block(
        &self,
        shard: usize,
        batch: usize,
        layout: u32,
        wait: bool,
        build: impl FnOnce() -> Result<Option<(RowBlock, u64)>>,
    ) -> Result<Built> {
        let Some(cache) = &self.cache else {
            self.row_misses.fetch_add(1, Ordering::Relaxed);
            return Ok(Built::Ready(build()?.map(|(block, _)| block)));
        };
        let timeout = (!wait).then_some(std::time::Duration::ZERO);
        Ok(Built::Ready(
            match cache.get_value_or_guard(&(shard, batch, layout), timeout) {
                GuardResult::Value(Cached {
                    value: Entry::Rows(block),
                    ..
                }) => {
                    self.row_hits.fetch_add(1, Ordering::Relaxed);
                    block
                }
                GuardResult::Value(_) => {
                    return Err(Error::Internal(format!(
                        "the batch cache holds a decoded batch under row layout {layout}"
                    )))
                }
                GuardResult::Guard(guard) => {
                    self.row_misses.fetch_add(1, Ordering::Relaxed);
                    let (block, bytes) = match build()? {
                        Some((block, bytes)) => (Some(block), bytes),
                        None => (None, 1),
                    };
                    // Err only when the entry was replaced meanwhile.
                    let _ = guard.insert(Cached {
                        value: Entry::Rows(block.clone()),
                        bytes,
                    });
                    block
                }
                GuardResult::Timeout => return Ok(Built::Busy),
            },
        ))
    }

    /// Counts `n` row blocks served without a lookup here (from a loader's
    /// own table of the blocks it has read).
    pub(crate) fn count_row_hits(&self, n: u64) {
        if n > 0 {
            self.row_hits.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Hits, misses, evictions and bytes held so far.
    pub fn stats(&self) -> BatchCacheStats {
        let (bytes, entries) = self
            .cache
            .as_ref()
            .map_or((0, 0), |c| (c.weight(), c.len() as u64));
        BatchCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            row_block_hits: self.row_hits.load(Ordering::Relaxed),
            row_block_misses: self.row_misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            bytes,
            entries,
            capacity_bytes: self.capacity,
        }
    }
}

/// The bytes `batch`'s buffers keep allocated, each allocation counted once
/// and those inside `mapped` not at all.
///
/// [`RecordBatch::get_array_memory_size`] adds each buffer's whole
/// allocation for every buffer that uses it, which is right for buffers
/// that own their memory but not for an IPC batch: the IPC reader keeps a
/// buffer stored without compression (one that zstd or lz4 could not make
/// smaller, such as random floats) as a slice of the bytes it read. Counted
/// that way, a batch of a mapped shard would weigh the whole file once per
/// such buffer, and one read with `pread` its whole message once per buffer.
pub(crate) fn held_bytes(batch: &RecordBatch, mapped: Option<NonNull<u8>>) -> u64 {
    let mut seen = HashSet::new();
    if let Some(mapping) = mapped {
        seen.insert(mapping);
    }
    let mut bytes = 0u64;
    for column in batch.columns() {
        add_buffers(&column.to_data(), &mut seen, &mut bytes);
    }
    bytes
}

fn add_buffers(data: &ArrayData, seen: &mut HashSet<NonNull<u8>>, bytes: &mut u64) {
    let nulls = data.nulls().map(|n| n.buffer());
    for buffer in data.buffers().iter().chain(nulls) {
        if seen.insert(buffer.data_ptr()) {
            *bytes += buffer.capacity() as u64;
        }
    }
    for child in data.child_data() {
        add_buffers(child, seen, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::buffer::Buffer;
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n))]).unwrap()
    }

    #[test]
    fn shared_allocations_count_once_and_mapped_ones_not_at_all() {
        let whole = Buffer::from_vec((0..1024i64).collect::<Vec<_>>());
        let a = Int64Array::new(whole.slice_with_length(0, 4096).into(), None);
        let b = Int64Array::new(whole.slice_with_length(4096, 4096).into(), None);
        let names = StringArray::from(vec!["a", "bc"]);
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Int64, false),
        ]));
        let two = RecordBatch::try_new(schema, vec![Arc::new(a), Arc::new(b)]).unwrap();
        // Two slices of one 8 KiB allocation: 8 KiB, not 16.
        assert_eq!(held_bytes(&two, None), whole.capacity() as u64);
        assert_eq!(held_bytes(&two, Some(whole.data_ptr())), 0);
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, false)]));
        let strings = RecordBatch::try_new(schema, vec![Arc::new(names)]).unwrap();
        assert!(held_bytes(&strings, None) > 0);
    }

    #[test]
    fn hits_misses_and_the_limit() {
        let one = held_bytes(&batch(1000), None);
        // Room for two batches of 1,000 rows in its single part.
        let cache = BatchCache::new(one * 2 + one / 2).unwrap();
        let read = |b: usize| cache.get_or_decode(0, b, None, || Ok(batch(1000))).unwrap();
        read(0);
        read(0);
        read(1);
        read(1);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (2, 2));
        assert_eq!(stats.entries, 2);
        for b in 2..10 {
            read(b);
            assert!(cache.stats().bytes <= cache.stats().capacity_bytes);
        }
        let stats = cache.stats();
        assert_eq!(stats.misses, 10);
        assert!(stats.evictions >= 8, "{stats:?}");
    }

    #[test]
    fn a_failed_decode_is_not_cached_and_zero_turns_caching_off() {
        let cache = BatchCache::new(1 << 20).unwrap();
        let failed = cache.get_or_decode(0, 0, None, || Err(Error::Internal("bad".into())));
        assert!(failed.is_err());
        assert_eq!(cache.stats().entries, 0);
        assert_eq!(
            cache
                .get_or_decode(0, 0, None, || Ok(batch(3)))
                .unwrap()
                .num_rows(),
            3
        );
        let off = BatchCache::new(0).unwrap();
        off.get_or_decode(0, 0, None, || Ok(batch(3))).unwrap();
        off.get_or_decode(0, 0, None, || Ok(batch(3))).unwrap();
        let stats = off.stats();
        assert_eq!((stats.hits, stats.misses, stats.bytes), (0, 2, 0));
    }
}
