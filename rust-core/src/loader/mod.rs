//! Shuffled, partitioned, resumable batches from a mapped dataset.
//!
//! - [`EpochOrder`]: one global sample order per epoch, a function of
//!   (seed, epoch, dataset, shuffle mode) only, computed per position by
//!   keyed permutations ([`Permutation`]) so that it takes no memory per
//!   sample.
//! - [`EpochPlan`]: rank `r` of `world_size` takes slice `r` of every global
//!   batch of `world_size * batch_size` positions; the tail is dropped or
//!   padded ([`TailPolicy`]) and the counts are reported.
//! - [`LoaderState`]: seed, epoch and samples consumed (globally), as JSON;
//!   resuming continues the exact order, also on another world size.
//! - [`Loader`]: built once per dataset and configuration; worker threads
//!   gather batches ahead of the consumer through bounded channels and
//!   deliver them in step order whatever their number. The same loader plans
//!   any epoch, lists its order, and moves to any compatible state
//!   ([`Loader::restore`]) without building anything again.
//!
//! `docs/LOADER.md` explains the design and the shuffle trade-off.
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow::array::Int64Array;
//! # use arrow::datatypes::{DataType, Field, Schema};
//! # use arrow::record_batch::RecordBatch;
//! # use mosaicrs::writer::{commit, SaveMode, ShardWriter, WriterOptions};
//! use mosaicrs::loader::{Loader, LoaderConfig};
//! use mosaicrs::reader::Dataset;
//! # let dir = tempfile::tempdir().unwrap();
//! # let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
//! # let batch = RecordBatch::try_new(schema.clone(),
//! #     vec![Arc::new(Int64Array::from_iter_values(0..10))]).unwrap();
//! # let mut w = ShardWriter::create(dir.path(), schema.clone(), "w", 0, 0, WriterOptions::default()).unwrap();
//! # w.write(&batch).unwrap();
//! # commit(dir.path(), &schema, "w", w.finish().unwrap(), SaveMode::ErrorIfExists).unwrap();
//! let dataset = Arc::new(Dataset::open(dir.path()).unwrap());
//! let config = LoaderConfig { batch_size: 4, seed: 7, ..LoaderConfig::default() };
//! let mut loader = Loader::new(dataset, config).unwrap();
//! let mut seen = Vec::new();
//! for batch in loader.epoch().unwrap() {
//!     let batch = batch.unwrap();
//!     assert_eq!(batch.data.num_rows(), 4);
//!     seen.extend(batch.rows);
//! }
//! assert_eq!(seen.len(), 8); // two full batches; 2 samples dropped (reported in the plan)
//! assert_eq!(loader.state().epoch, 1);
//! ```

mod gather;
pub mod mix;
mod order;
mod permutation;
mod plan;
mod rng;
mod space;
mod state;
#[cfg(unix)]
mod stream;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use crossbeam_channel::{bounded, Receiver, Sender};

pub use gather::Gathered;
pub use order::{epoch_blocks, epoch_order, EpochOrder, OrderAlgorithm, OrderBlock, ShuffleMode};
pub use permutation::Permutation;
pub use plan::{EpochPlan, TailPolicy};
pub use rng::{mix64, SplitMix64};
pub use space::SampleSpace;
pub use state::{LoaderState, ORDER_ALGORITHM};
#[cfg(unix)]
pub use stream::{cache_needed, check_cache_for, mix_cache_needed};

pub(crate) use gather::GatherTable;

use crate::reader::{DataSource, Dataset};
use crate::{Error, Result};
use mix::{MixConfig, MixCursor, MixSource, MixedOrder, Stream};

/// What a loader reads: a mapped [`Dataset`] or any [`DataSource`] (on
/// Unix, a remote dataset larger than the cache streams through it).
pub trait IntoLoaderSource {
    #[doc(hidden)]
    fn into_table(self, config: &LoaderConfig) -> Result<LoaderSource>;
}

#[doc(hidden)]
pub struct LoaderSource {
    table: GatherTable,
    shards: Vec<crate::format::ShardEntry>,
    /// The dataset version read (recorded in the loader's state).
    version: u64,
}

fn projection_of(schema: &SchemaRef, config: &LoaderConfig) -> Result<Vec<usize>> {
    match &config.columns {
        Some(names) => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            crate::format::column_indices(schema, &names)
        }
        None => Ok((0..schema.fields().len()).collect()),
    }
}

impl IntoLoaderSource for Arc<Dataset> {
    fn into_table(self, config: &LoaderConfig) -> Result<LoaderSource> {
        DataSource::Mapped(self).into_table(config)
    }
}

impl IntoLoaderSource for DataSource {
    fn into_table(self, config: &LoaderConfig) -> Result<LoaderSource> {
        // Refused before anything is downloaded.
        #[cfg(unix)]
        if let DataSource::Streamed(dataset) = &self {
            stream::check_cache_for(dataset, config.shuffle)?;
        }
        let projection = projection_of(&self.schema(), config)?;
        let shards = self.index().shards.clone();
        let version = self.version();
        let table = GatherTable::new(self, projection)?.with_row_blocks(config.shuffle);
        Ok(LoaderSource {
            table,
            shards,
            version,
        })
    }
}

impl IntoLoaderSource for &DataSource {
    fn into_table(self, config: &LoaderConfig) -> Result<LoaderSource> {
        self.clone().into_table(config)
    }
}

/// The schema of a mix's batches: the first source's projected columns,
/// nullable where any source's is. Every source must have the same data
/// type in each column.
fn mixed_schema(tables: &[Arc<GatherTable>]) -> Result<SchemaRef> {
    let Some(first) = tables.first() else {
        return Err(Error::InvalidArgument(
            "a mix needs at least one source".into(),
        ));
    };
    let first = first.schema();
    let mut fields: Vec<arrow::datatypes::Field> =
        first.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (i, table) in tables.iter().enumerate().skip(1) {
        for (field, other) in fields.iter_mut().zip(table.schema().fields()) {
            if field.data_type() != other.data_type() {
                return Err(Error::InvalidArgument(format!(
                    "mix source {i}: column {:?} has type {} but source 0 has {}",
                    field.name(),
                    other.data_type(),
                    field.data_type()
                )));
            }
            if other.is_nullable() {
                field.set_nullable(true);
            }
        }
    }
    Ok(Arc::new(arrow::datatypes::Schema::new_with_metadata(
        fields,
        first.metadata().clone(),
    )))
}

/// How a [`Loader`] reads.
#[derive(Debug, Clone)]
pub struct LoaderConfig {
    /// Samples per batch per rank.
    pub batch_size: usize,
    pub seed: u64,
    pub shuffle: ShuffleMode,
    pub tail: TailPolicy,
    /// This process's rank, `0..world_size`.
    pub rank: usize,
    pub world_size: usize,
    /// Worker threads that assemble batches.
    pub workers: usize,
    /// Batches assembled ahead of the consumer (rounded up to a multiple of
    /// `workers`); with the batches being assembled, at most
    /// `prefetch + 2 * workers` batches exist at once.
    pub prefetch: usize,
    /// Columns to read (all when `None`).
    pub columns: Option<Vec<String>>,
    /// Dataset rows an epoch covers, strictly increasing (all when `None`).
    pub rows: Option<Arc<[u64]>>,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = cores.clamp(1, 4);
        LoaderConfig {
            batch_size: 256,
            seed: 0,
            shuffle: ShuffleMode::Global,
            tail: TailPolicy::DropLast,
            rank: 0,
            world_size: 1,
            workers,
            prefetch: 2 * workers,
            columns: None,
            rows: None,
        }
    }
}

impl LoaderConfig {
    /// Checks every option, naming the bad one.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("batch_size", self.batch_size),
            ("world_size", self.world_size),
            ("workers", self.workers),
            ("prefetch", self.prefetch),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::InvalidArgument(format!(
                "loader option {name} must be at least 1"
            )));
        }
        if self.rank >= self.world_size {
            return Err(Error::InvalidArgument(format!(
                "loader rank {} must be below world_size {}",
                self.rank, self.world_size
            )));
        }
        self.shuffle.validate()
    }

    /// Batches queued ahead of the consumer: `prefetch` rounded up to a
    /// multiple of `workers` (each worker queues `prefetch / workers`
    /// batches, rounded up, in a channel of its own).
    pub fn prefetch_depth(&self) -> usize {
        self.channel_capacity() * self.workers
    }

    /// Batch buffers a consumer that recycles them (a ring) needs so that no
    /// worker ever waits for one: the at most `prefetch + 2 * workers`
    /// batches queued or being assembled, plus the batch the consumer is
    /// reading and the one it is handing back.
    ///
    /// ```
    /// use mosaicrs::loader::LoaderConfig;
    /// let config = LoaderConfig { workers: 2, prefetch: 4, ..LoaderConfig::default() };
    /// assert_eq!(config.prefetch_depth(), 4);
    /// assert_eq!(config.ring_size(), 10);
    /// ```
    pub fn ring_size(&self) -> usize {
        self.prefetch + 2 * self.workers + 2
    }

    /// Batches each worker's channel holds.
    fn channel_capacity(&self) -> usize {
        self.prefetch.div_ceil(self.workers.max(1)).max(1)
    }
}

/// One batch for this rank.
#[derive(Debug)]
pub struct LoadedBatch<T> {
    pub epoch: u64,
    /// Step of this epoch's plan: 0 at the start of the epoch, or at the
    /// resume point when the loader was resumed mid-epoch.
    pub step: u64,
    /// Position in the global epoch order of this batch's first sample.
    pub position: u64,
    /// Dataset row of each sample, in batch order (the row of its own
    /// source in a mix).
    pub rows: Vec<u64>,
    /// Index of each sample's source in a mix (all 0 for one dataset).
    pub sources: Vec<u32>,
    /// Trailing samples that are padding (repeats), see [`TailPolicy::Pad`].
    pub padding: usize,
    /// What the assembler made of the rows.
    pub data: T,
    /// The loader state once this batch is consumed: checkpoint it after
    /// the training step on this batch.
    pub state: LoaderState,
}

/// Reads batches of a dataset for one rank. See the [module docs](self).
///
/// Built once per dataset and configuration: the gather table, the sample
/// space and the order of the latest epoch are kept across epochs, and the
/// position can be moved ([`restore`](Self::restore),
/// [`set_epoch`](Self::set_epoch)) without building anything again.
pub struct Loader {
    table: Arc<GatherTable>,
    space: Arc<SampleSpace>,
    config: LoaderConfig,
    state: LoaderState,
    /// The order algorithm: the current one, or a restored state's.
    algorithm: OrderAlgorithm,
    /// The order of the most recent epoch, reused across calls (a stored
    /// Fisher-Yates order costs 8 bytes per sample to build).
    order_cache: Mutex<Option<(u64, OrderAlgorithm, Arc<EpochOrder>)>>,
    /// The sources of a mix ([`Loader::mixed`]); `table` and `space` are
    /// then its first source's.
    mix: Option<Arc<MixSet>>,
    /// The mixed order of the most recent (epoch, algorithm, block).
    mix_cache: Mutex<Option<MixCacheEntry>>,
}

type MixCacheEntry = (u64, OrderAlgorithm, u64, Arc<MixedOrder>);

/// The sources of a mixed loader.
struct MixSet {
    tables: Vec<Arc<GatherTable>>,
    /// Every source's resident batches, when all sources have them.
    resident: Option<gather::ResidentSet>,
    sources: Vec<MixSource>,
    schema: SchemaRef,
    fingerprint: String,
    len: u64,
    /// The sources streamed through the cache: (source, dataset).
    #[cfg(unix)]
    streamed: Vec<(usize, Arc<crate::reader::StreamedDataset>)>,
    /// Bytes of the other sources held whole in the streamed sources' cache.
    #[cfg(unix)]
    held: u64,
}

/// The streamed sources of a mix and the bytes its other sources hold in
/// their cache (remote sources cached whole stay pinned while the loader
/// reads them), checked against the cache before anything is downloaded:
/// the cache's limit covers every source.
#[cfg(unix)]
type StreamedSources = (Vec<(usize, Arc<crate::reader::StreamedDataset>)>, u64);

#[cfg(unix)]
fn streamed_sources(
    tables: &[Arc<GatherTable>],
    shuffles: &[ShuffleMode],
) -> Result<StreamedSources> {
    let streamed: Vec<(usize, Arc<crate::reader::StreamedDataset>)> = tables
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.streamed_dataset().map(|d| (i, Arc::clone(d))))
        .collect();
    let Some((_, first)) = streamed.first() else {
        return Ok((streamed, 0));
    };
    let cache_dir = &first.cache_options().cache_dir;
    let held = tables
        .iter()
        .filter_map(|t| t.mapped_dataset())
        .filter(|d| d.path().parent() == Some(cache_dir.as_path()))
        .map(|d| d.index().total_bytes)
        .sum();
    let needs: Vec<(&crate::reader::StreamedDataset, ShuffleMode)> =
        streamed.iter().map(|(i, d)| (&**d, shuffles[*i])).collect();
    stream::check_mix_cache(&needs, held)?;
    Ok((streamed, held))
}

impl Loader {
    /// A loader at the start of epoch 0, over an `Arc<Dataset>` or a
    /// [`DataSource`](crate::reader::DataSource). A streamed source is
    /// checked against the cache first: a `cache_limit` too small for
    /// `config.shuffle` is refused with [`Error::CacheTooSmall`], which names
    /// the size needed.
    pub fn new(dataset: impl IntoLoaderSource, config: LoaderConfig) -> Result<Self> {
        config.validate()?;
        let LoaderSource {
            table,
            shards,
            version,
        } = dataset.into_table(&config)?;
        let space = SampleSpace::new(&shards, config.rows.clone())?;
        let mut state =
            LoaderState::new(config.seed, space.fingerprint().to_string(), config.shuffle);
        state.version = Some(version);
        Ok(Loader {
            table: Arc::new(table),
            space: Arc::new(space),
            config,
            state,
            algorithm: OrderAlgorithm::CURRENT,
            order_cache: Mutex::new(None),
            mix: None,
            mix_cache: Mutex::new(None),
        })
    }

    /// A loader over several datasets mixed in the proportions their
    /// [`Stream`]s give, at the start of epoch 0. Every source must have the
    /// loader's columns (`config.columns`, or the first source's columns)
    /// with the same data types: a mismatch is an error naming the source
    /// and the column, before any batch. Each batch's
    /// [`LoadedBatch::sources`] names the source of each sample. A source
    /// may be a [`DataSource`] streamed through a cache smaller than it: the
    /// streamed sources share the cache, whose limit must hold what each
    /// needs ([`cache_needed`] for its shuffle mode) plus the other remote
    /// sources cached whole, else [`Error::CacheTooSmall`] names the
    /// streamed sources and the size ([`mix_cache_needed`]) before anything
    /// is downloaded; their shards are fetched ahead in the order the mix
    /// reads them. A row selection (`config.rows`) is not supported. See
    /// the [`mix`] module and `docs/LOADER.md` ("Mixing").
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::Int64Array;
    /// # use arrow::datatypes::{DataType, Field, Schema};
    /// # use arrow::record_batch::RecordBatch;
    /// # use mosaicrs::writer::{commit, SaveMode, ShardWriter, WriterOptions};
    /// use mosaicrs::loader::mix::{MixConfig, Stream};
    /// use mosaicrs::loader::{Loader, LoaderConfig};
    /// use mosaicrs::reader::Dataset;
    /// # let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    /// # for (d, n) in dirs.iter().zip([600i64, 300, 100]) {
    /// #     let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    /// #     let batch = RecordBatch::try_new(schema.clone(),
    /// #         vec![Arc::new(Int64Array::from_iter_values(0..n))]).unwrap();
    /// #     let mut w = ShardWriter::create(d.path(), schema.clone(), "w", 0, 0, WriterOptions::default()).unwrap();
    /// #     w.write(&batch).unwrap();
    /// #     commit(d.path(), &schema, "w", w.finish().unwrap(), SaveMode::ErrorIfExists).unwrap();
    /// # }
    /// let open = |i: usize| Arc::new(Dataset::open(dirs[i].path()).unwrap());
    /// let streams = vec![
    ///     Stream::new(open(0)).weight(0.6),
    ///     Stream::new(open(1)).weight(0.3),
    ///     Stream::new(open(2)).weight(0.1),
    /// ];
    /// let config = LoaderConfig { batch_size: 10, ..LoaderConfig::default() };
    /// let mut loader = Loader::mixed(streams, MixConfig::default(), config).unwrap();
    /// for batch in loader.epoch().unwrap() {
    ///     let batch = batch.unwrap();
    ///     let web = batch.sources.iter().filter(|&&s| s == 0).count();
    ///     assert_eq!(web, 6); // 60% of every batch of 10
    /// }
    /// ```
    pub fn mixed<S: IntoLoaderSource>(
        streams: Vec<Stream<S>>,
        mix: MixConfig,
        config: LoaderConfig,
    ) -> Result<Self> {
        config.validate()?;
        if config.rows.is_some() {
            return Err(Error::InvalidArgument(
                "loader option rows selects rows of one dataset; it is not supported with a mix"
                    .into(),
            ));
        }
        if streams.is_empty() {
            return Err(Error::InvalidArgument(
                "a mix needs at least one source".into(),
            ));
        }
        let mut tables = Vec::with_capacity(streams.len());
        let mut spaces = Vec::with_capacity(streams.len());
        let mut shuffles = Vec::with_capacity(streams.len());
        let mut weightings = Vec::with_capacity(streams.len());
        let mut columns = config.columns.clone();
        for (i, stream) in streams.into_iter().enumerate() {
            let shuffle = stream.shuffle.unwrap_or(config.shuffle);
            shuffle.validate()?;
            let source_config = LoaderConfig {
                shuffle,
                columns: columns.clone(),
                ..config.clone()
            };
            let LoaderSource { table, shards, .. } = stream
                .source
                .into_table(&source_config)
                .map_err(|e| match e {
                    Error::ColumnNotFound { name, available } => Error::InvalidArgument(format!(
                        "mix source {i}: column {name:?} is not in its schema (it has {available})"
                    )),
                    e => e,
                })?;
            if columns.is_none() {
                let names = table.schema().fields().iter().map(|f| f.name().clone());
                columns = Some(names.collect());
            }
            spaces.push(Arc::new(SampleSpace::new(&shards, None)?));
            shuffles.push(shuffle);
            weightings.push(stream.weighting);
            tables.push(Arc::new(table));
        }
        let schema = mixed_schema(&tables)?;
        #[cfg(unix)]
        let (streamed, held) = streamed_sources(&tables, &shuffles)?;
        let sources = mix::sources_of(spaces, shuffles, &weightings, &mix)?;
        let fingerprint = mix::fingerprint(&sources);
        let block = mix::block_of(&mix, config.batch_size, config.world_size)?;
        let mut state = LoaderState::new(config.seed, fingerprint.clone(), config.shuffle);
        state.mix_block = Some(block);
        let len = sources.iter().map(|s| s.count).sum();
        let table = Arc::clone(&tables[0]);
        let space = Arc::clone(&sources[0].space);
        let set = MixSet {
            resident: gather::ResidentSet::new(tables.iter().map(|t| &**t)),
            tables,
            sources,
            schema,
            fingerprint,
            len,
            #[cfg(unix)]
            streamed,
            #[cfg(unix)]
            held,
        };
        Ok(Loader {
            table,
            space,
            config,
            state,
            algorithm: OrderAlgorithm::CURRENT,
            order_cache: Mutex::new(None),
            mix: Some(Arc::new(set)),
            mix_cache: Mutex::new(None),
        })
    }

    /// A loader that continues from `state`, which must come from the same
    /// dataset (and row selection), seed and shuffle mode
    /// ([`Error::ResumeMismatch`] otherwise). Batch size and world size may differ.
    pub fn resume(
        dataset: impl IntoLoaderSource,
        config: LoaderConfig,
        state: LoaderState,
    ) -> Result<Self> {
        let mut loader = Loader::new(dataset, config)?;
        loader.restore(state)?;
        Ok(loader)
    }

    /// A mixed loader ([`mixed`](Self::mixed)) that continues from `state`,
    /// which must come from the same mix (sources, weightings, seed and
    /// shuffle). Batch size and world size may differ: the state keeps the
    /// mix's block length, so the order is the same.
    pub fn resume_mixed<S: IntoLoaderSource>(
        streams: Vec<Stream<S>>,
        mix: MixConfig,
        config: LoaderConfig,
        state: LoaderState,
    ) -> Result<Self> {
        let mut loader = Loader::mixed(streams, mix, config)?;
        loader.restore(state)?;
        Ok(loader)
    }

    /// Refuses a state that this loader cannot continue from: another
    /// dataset (or row selection), seed or shuffle mode, an unknown order
    /// algorithm, or a position past the end of an epoch
    /// ([`Error::ResumeMismatch`] or [`Error::InvalidArgument`]).
    pub fn check_state(&self, state: &LoaderState) -> Result<()> {
        let fingerprint = match &self.mix {
            Some(mix) => mix.fingerprint.clone(),
            None => self.space.fingerprint().to_string(),
        };
        let expected = LoaderState::new(self.config.seed, fingerprint, self.config.shuffle);
        state.check_compatible(&expected, self.epoch_len())?;
        match (&self.mix, state.mix_block) {
            (Some(_), None | Some(0)) => Err(Error::ResumeMismatch(
                "the state of a mix has no block length (mix_block)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Samples (positions) in one epoch: the rows of the dataset (or its
    /// selection), or the sum of a mix's sources' samples.
    pub fn epoch_len(&self) -> u64 {
        match &self.mix {
            Some(mix) => mix.len,
            None => self.space.len(),
        }
    }

    /// Samples each source of a mix gives one epoch (empty for one dataset).
    pub fn mix_counts(&self) -> Vec<u64> {
        mix::counts_of(self.mix.as_ref().map(|m| &m.sources[..]))
    }

    /// The mixed order of `epoch` (`None` for one dataset): `(source, row)`
    /// per position, computed per position.
    pub fn mixed_order(&self, epoch: u64) -> Option<Arc<MixedOrder>> {
        let mix = self.mix.as_ref()?;
        let block = self.state.mix_block.unwrap_or(1);
        let mut cache = self
            .mix_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*cache {
            Some((e, a, b, order)) if *e == epoch && *a == self.algorithm && *b == block => {
                Some(Arc::clone(order))
            }
            _ => {
                let order = Arc::new(MixedOrder::new(
                    mix.sources.clone(),
                    self.config.seed,
                    epoch,
                    block,
                    self.algorithm,
                ));
                *cache = Some((epoch, self.algorithm, block, Arc::clone(&order)));
                Some(order)
            }
        }
    }

    /// Moves the loader to `state` (checked as by [`check_state`](Self::check_state)),
    /// for example a checkpoint of a loader with another batch or world size,
    /// or the state of the last batch taken from a
    /// [`detached_epoch_with`](Self::detached_epoch_with) epoch. A state of
    /// an older order algorithm that this version knows continues in that
    /// algorithm. Nothing is built again.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::Int64Array;
    /// # use arrow::datatypes::{DataType, Field, Schema};
    /// # use arrow::record_batch::RecordBatch;
    /// # use mosaicrs::writer::{commit, SaveMode, ShardWriter, WriterOptions};
    /// use mosaicrs::loader::{Loader, LoaderConfig};
    /// use mosaicrs::reader::Dataset;
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    /// # let batch = RecordBatch::try_new(schema.clone(),
    /// #     vec![Arc::new(Int64Array::from_iter_values(0..10))]).unwrap();
    /// # let mut w = ShardWriter::create(dir.path(), schema.clone(), "w", 0, 0, WriterOptions::default()).unwrap();
    /// # w.write(&batch).unwrap();
    /// # commit(dir.path(), &schema, "w", w.finish().unwrap(), SaveMode::ErrorIfExists).unwrap();
    /// let dataset = Arc::new(Dataset::open(dir.path()).unwrap());
    /// let config = LoaderConfig { batch_size: 2, seed: 7, ..LoaderConfig::default() };
    /// let mut loader = Loader::new(dataset, config).unwrap();
    /// let checkpoint = loader.epoch().unwrap().next().unwrap().unwrap().state;
    /// let rest: Vec<u64> = loader.epoch().unwrap().flat_map(|b| b.unwrap().rows).collect();
    /// loader.restore(checkpoint).unwrap();
    /// let again: Vec<u64> = loader.epoch().unwrap().skip(1).flat_map(|b| b.unwrap().rows).collect();
    /// assert_eq!(rest.len(), 8);
    /// assert_eq!(again, rest[2..]);
    /// ```
    pub fn restore(&mut self, state: LoaderState) -> Result<()> {
        self.check_state(&state)?;
        self.algorithm = state.order_algorithm()?;
        // The state names the version this loader reads: the same rows
        // (the fingerprint matched) may be the content of another version.
        let version = self.state.version;
        self.state = state;
        self.state.version = version;
        Ok(())
    }

    /// Moves to the start of `epoch`, unless the loader is already in it: a
    /// run restored mid-epoch that sets the epoch at the top of each epoch
    /// (as `DistributedSampler.set_epoch` is used) keeps its position.
    pub fn set_epoch(&mut self, epoch: u64) {
        if self.state.epoch != epoch {
            self.state.epoch = epoch;
            self.state.samples_consumed = 0;
        }
    }

    /// Where the loader stands (after the last delivered batch).
    pub fn state(&self) -> &LoaderState {
        &self.state
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// Schema of the assembled batches (the projected columns).
    pub fn schema(&self) -> &SchemaRef {
        match &self.mix {
            Some(mix) => &mix.schema,
            None => self.table.schema(),
        }
    }

    /// The sample space (rows per epoch, fingerprint); a mix's first
    /// source's (see [`epoch_len`](Self::epoch_len)).
    pub fn space(&self) -> &SampleSpace {
        &self.space
    }

    /// Batches queued ahead of the consumer, see [`LoaderConfig::prefetch_depth`].
    pub fn prefetch_depth(&self) -> usize {
        self.config.prefetch_depth()
    }

    /// Batch buffers a consumer that recycles them needs, see
    /// [`LoaderConfig::ring_size`].
    pub fn ring_size(&self) -> usize {
        self.config.ring_size()
    }

    /// The plan for the rest of the current epoch.
    pub fn plan(&self) -> Result<EpochPlan> {
        self.plan_from(self.state.epoch, self.state.samples_consumed)
    }

    /// The plan of the whole of `epoch`, from its start (the steps, dropped
    /// and padded samples every epoch has).
    pub fn epoch_plan(&self, epoch: u64) -> Result<EpochPlan> {
        self.plan_from(epoch, 0)
    }

    fn plan_from(&self, epoch: u64, start: u64) -> Result<EpochPlan> {
        EpochPlan::new(
            epoch,
            self.epoch_len(),
            start,
            self.config.batch_size as u64,
            self.config.world_size as u64,
            self.config.tail,
        )
    }

    /// The dataset rows of `epoch` in global order (the same for every
    /// rank), materialised: 8 bytes per sample, for tests and inspection.
    pub fn order(&self, epoch: u64) -> Vec<u64> {
        self.rows(epoch).collect()
    }

    /// The dataset rows of `epoch` in global order, computed as they are
    /// iterated (nothing stored per sample).
    pub fn rows(&self, epoch: u64) -> EpochRows {
        let order = self.cached_order(epoch);
        let mixed = self.mixed_order(epoch);
        EpochRows {
            end: mixed.as_ref().map_or(order.len(), |m| m.len()),
            order,
            mixed,
            space: Arc::clone(&self.space),
            next: 0,
        }
    }

    /// The order of `epoch` as sample positions, computed per position, in
    /// the loader's order algorithm.
    pub fn epoch_order(&self, epoch: u64) -> EpochOrder {
        EpochOrder::new(
            &self.space,
            self.config.seed,
            epoch,
            self.config.shuffle,
            self.algorithm,
        )
    }

    fn cached_order(&self, epoch: u64) -> Arc<EpochOrder> {
        // A poisoned cache only means a panic while it was replaced: rebuild.
        let mut cache = self
            .order_cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*cache {
            Some((e, a, order)) if *e == epoch && *a == self.algorithm => Arc::clone(order),
            _ => {
                let order = Arc::new(self.epoch_order(epoch));
                *cache = Some((epoch, self.algorithm, Arc::clone(&order)));
                order
            }
        }
    }

    /// The rest of the current epoch as Arrow record batches.
    pub fn epoch(&mut self) -> Result<Epoch<'_, RecordBatch>> {
        self.epoch_with(|g: &Gathered| g.to_record_batch())
    }

    /// The rest of the current epoch, each batch made by `assemble` on a
    /// worker thread (for example straight into tensors). The epoch moves
    /// the loader's state batch by batch; dropped early, it leaves the state
    /// after the last delivered batch.
    pub fn epoch_with<T, F>(&mut self, assemble: F) -> Result<Epoch<'_, T>>
    where
        T: Send + 'static,
        F: Fn(&Gathered) -> Result<T> + Send + Sync + 'static,
    {
        let workers = self.launch(assemble)?;
        Ok(workers.into_epoch(EpochState::Borrowed(&mut self.state)))
    }

    /// Like [`epoch_with`](Self::epoch_with), but the epoch borrows nothing
    /// and advances its own copy of the state, so that it can be kept across
    /// calls (a foreign-language iterator that pulls one batch per call)
    /// next to the loader. The loader does not move: hand it each batch's
    /// [`LoadedBatch::state`] (or the epoch's [`Epoch::state`] at its end)
    /// with [`restore`](Self::restore).
    pub fn detached_epoch_with<T, F>(&self, assemble: F) -> Result<Epoch<'static, T>>
    where
        T: Send + 'static,
        F: Fn(&Gathered) -> Result<T> + Send + Sync + 'static,
    {
        let workers = self.launch(assemble)?;
        Ok(workers.into_epoch(EpochState::Owned(self.state.clone())))
    }

    /// Starts the worker threads of the rest of the current epoch.
    fn launch<T, F>(&self, assemble: F) -> Result<Launched<T>>
    where
        T: Send + 'static,
        F: Fn(&Gathered) -> Result<T> + Send + Sync + 'static,
    {
        let plan = self.plan()?;
        let order = self.cached_order(plan.epoch);
        let mixed = match &self.mix {
            Some(set) if plan.steps > 0 => self
                .mixed_order(plan.epoch)
                .map(|order| (order, Arc::clone(set))),
            _ => None,
        };
        #[cfg(unix)]
        let schedule = match (&mixed, self.table.streamed_dataset()) {
            (Some((order, set)), _) if !set.streamed.is_empty() => Some(stream::Schedule::mixed(
                order,
                &set.streamed,
                &plan,
                self.config.rank as u64,
                set.held,
            )?),
            (None, Some(dataset)) if self.mix.is_none() && plan.steps > 0 => {
                Some(stream::Schedule::new(
                    Arc::clone(dataset),
                    &self.space,
                    order.len(),
                    &plan,
                    self.config.rank as u64,
                    self.config.seed,
                    self.config.shuffle,
                )?)
            }
            _ => None,
        };
        #[cfg(unix)]
        let (schedule, prefetcher) = match schedule {
            Some(schedule) => {
                let schedule = Arc::new(schedule);
                let run = Arc::clone(&schedule);
                let handle = std::thread::Builder::new()
                    .name("mosaicrs-fetch".into())
                    .spawn(move || run.prefetch())
                    .map_err(|e| {
                        Error::Internal(format!("cannot start the shard prefetch thread: {e}"))
                    })?;
                (Some(schedule), Some(handle))
            }
            None => (None, None),
        };
        let assemble = Arc::new(assemble);
        // An epoch with nothing left starts no threads.
        let workers = if plan.steps == 0 {
            0
        } else {
            self.config.workers
        };
        let capacity = self.config.channel_capacity();
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = bounded(capacity);
            let job = WorkerJob {
                first_step: w as u64,
                stride: workers as u64,
                rank: self.config.rank as u64,
                plan: plan.clone(),
                order: Arc::clone(&order),
                space: Arc::clone(&self.space),
                table: Arc::clone(&self.table),
                mixed: mixed.clone(),
                state: self.state.clone(),
                #[cfg(unix)]
                schedule: schedule.clone(),
            };
            let assemble = Arc::clone(&assemble);
            let handle = std::thread::Builder::new()
                .name(format!("mosaicrs-ld-{w}"))
                .spawn(move || job.run(&*assemble, &tx))
                .map_err(|e| Error::Internal(format!("cannot start a loader worker: {e}")))?;
            receivers.push(rx);
            handles.push(handle);
        }
        Ok(Launched {
            plan,
            receivers,
            handles,
            #[cfg(unix)]
            schedule,
            #[cfg(unix)]
            prefetcher,
        })
    }
}

/// The dataset rows of one epoch in global order, computed as they are
/// iterated ([`Loader::rows`]).
#[derive(Debug, Clone)]
pub struct EpochRows {
    order: Arc<EpochOrder>,
    mixed: Option<Arc<MixedOrder>>,
    space: Arc<SampleSpace>,
    next: u64,
    end: u64,
}

impl Iterator for EpochRows {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.next >= self.end {
            return None;
        }
        let row = match &self.mixed {
            Some(mixed) => mixed.get(self.next).1,
            None => self.space.row(self.order.get(self.next)),
        };
        self.next += 1;
        Some(row)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.end - self.next).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

impl ExactSizeIterator for EpochRows {}

/// The worker threads of an epoch, before a state is attached.
struct Launched<T> {
    plan: EpochPlan,
    receivers: Vec<Receiver<Result<LoadedBatch<T>>>>,
    handles: Vec<JoinHandle<()>>,
    #[cfg(unix)]
    schedule: Option<Arc<stream::Schedule>>,
    #[cfg(unix)]
    prefetcher: Option<JoinHandle<()>>,
}

impl<T> Launched<T> {
    fn into_epoch(self, state: EpochState<'_>) -> Epoch<'_, T> {
        Epoch {
            state,
            plan: self.plan,
            next_step: 0,
            receivers: self.receivers,
            handles: self.handles,
            finished: false,
            #[cfg(unix)]
            schedule: self.schedule,
            #[cfg(unix)]
            prefetcher: self.prefetcher,
        }
    }
}

/// The state an [`Epoch`] advances: its loader's, or its own.
enum EpochState<'a> {
    Borrowed(&'a mut LoaderState),
    Owned(LoaderState),
}

impl std::ops::Deref for EpochState<'_> {
    type Target = LoaderState;

    fn deref(&self) -> &LoaderState {
        match self {
            EpochState::Borrowed(s) => s,
            EpochState::Owned(s) => s,
        }
    }
}

impl std::ops::DerefMut for EpochState<'_> {
    fn deref_mut(&mut self) -> &mut LoaderState {
        match self {
            EpochState::Borrowed(s) => s,
            EpochState::Owned(s) => s,
        }
    }
}

/// What one worker thread does: steps `first_step`, `first_step + stride`, ...
struct WorkerJob {
    first_step: u64,
    stride: u64,
    rank: u64,
    plan: EpochPlan,
    order: Arc<EpochOrder>,
    space: Arc<SampleSpace>,
    table: Arc<GatherTable>,
    /// The order and sources of a mix.
    mixed: Option<(Arc<MixedOrder>, Arc<MixSet>)>,
    state: LoaderState,
    #[cfg(unix)]
    schedule: Option<Arc<stream::Schedule>>,
}

impl WorkerJob {
    fn run<T, F>(&self, assemble: &F, tx: &Sender<Result<LoadedBatch<T>>>)
    where
        F: Fn(&Gathered) -> Result<T>,
    {
        let mut step = self.first_step;
        // The mix block this worker read last.
        let mut cursor = MixCursor::default();
        while step < self.plan.steps {
            // A panic in a worker would take the training job down where an
            // error serves: it becomes one, naming the step.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.batch(step, assemble, &mut cursor)
            }))
            .unwrap_or_else(|panic| {
                Err(Error::Internal(format!(
                    "loader worker failed at step {step}: {}",
                    crate::reader::panic_message(&*panic)
                )))
            });
            let failed = result.is_err();
            // A closed channel means the consumer dropped the epoch: stop.
            if tx.send(result).is_err() || failed {
                return;
            }
            step += self.stride;
        }
    }

    fn batch<T, F>(&self, step: u64, assemble: &F, cursor: &mut MixCursor) -> Result<LoadedBatch<T>>
    where
        F: Fn(&Gathered) -> Result<T>,
    {
        let positions = self.plan.positions(self.rank, step);
        let position = positions.start;
        let padding = positions
            .clone()
            .filter(|&p| p >= self.plan.samples)
            .count();
        let (data, rows, sources) = match &self.mixed {
            Some((order, set)) => {
                let n = usize::try_from(positions.end - positions.start).unwrap_or(0);
                let (mut sources, mut rows) = (Vec::with_capacity(n), Vec::with_capacity(n));
                let positions = positions.map(|p| self.plan.resolve(p));
                order.picks_into(positions, cursor, &mut sources, &mut rows);
                let (data, rows) =
                    self.scheduled(step, || gather_mixed(set, &sources, rows, assemble))?;
                (data, rows, sources)
            }
            None => {
                let rows: Vec<u64> = positions
                    .map(|p| self.space.row(self.order.get(self.plan.resolve(p))))
                    .collect();
                let sources = vec![0; rows.len()];
                let (data, rows) = self.gather_assemble(step, rows, assemble)?;
                (data, rows, sources)
            }
        };
        Ok(LoadedBatch {
            epoch: self.plan.epoch,
            step,
            position,
            rows,
            sources,
            padding,
            data,
            // Filled in by the consumer, which owns the live state.
            state: self.state.clone(),
        })
    }

    /// The assembled `rows` and the rows themselves (see [`scheduled`](Self::scheduled)).
    fn gather_assemble<T, F>(
        &self,
        step: u64,
        rows: Vec<u64>,
        assemble: &F,
    ) -> Result<(T, Vec<u64>)>
    where
        F: Fn(&Gathered) -> Result<T>,
    {
        #[cfg(unix)]
        if self.table.streamed_dataset().is_some() && self.schedule.is_none() {
            return Err(Error::Internal("a streamed epoch has no schedule".into()));
        }
        self.scheduled(step, || {
            let gathered = self.table.gather(rows)?;
            let data = assemble(&gathered)?;
            Ok((data, gathered.into_rows()))
        })
    }

    /// Runs `read` (the gather and assembly of `step`); when shards stream
    /// through the cache, first waits until the step's shards are fetched,
    /// and counts the step done once read, when the batch no longer reads
    /// them.
    fn scheduled<R>(&self, step: u64, read: impl FnOnce() -> Result<R>) -> Result<R> {
        #[cfg(unix)]
        if let Some(schedule) = &self.schedule {
            schedule.wait(step)?;
            let result = read();
            if result.is_ok() {
                schedule.done(step);
            }
            return result;
        }
        let _ = step;
        read()
    }
}

/// Gathers row `rows[j]` of source `sources[j]` of a mix, for each `j`, and
/// assembles them as one batch, in that order. Sources whose batches are
/// all resident are gathered in one pass; others one gather per source
/// present, merged.
fn gather_mixed<T, F>(
    set: &MixSet,
    sources: &[u32],
    rows: Vec<u64>,
    assemble: &F,
) -> Result<(T, Vec<u64>)>
where
    F: Fn(&Gathered) -> Result<T>,
{
    if let Some(resident) = set.resident.as_ref().filter(|r| r.gathers()) {
        let gathered = resident.gather(&set.schema, sources, rows)?;
        let data = assemble(&gathered)?;
        return Ok((data, gathered.into_rows()));
    }
    let mut part_of = vec![usize::MAX; set.tables.len()];
    let mut part_sources = Vec::new();
    let mut part_rows: Vec<Vec<u64>> = Vec::new();
    let mut at = Vec::with_capacity(rows.len());
    for (&source, &row) in sources.iter().zip(&rows) {
        let source = source as usize;
        if part_of[source] == usize::MAX {
            part_of[source] = part_rows.len();
            part_sources.push(source);
            part_rows.push(Vec::new());
        }
        let part = part_of[source];
        at.push((part, part_rows[part].len()));
        part_rows[part].push(row);
    }
    let parts = part_sources
        .iter()
        .zip(part_rows)
        .map(|(&source, rows)| set.tables[source].gather(rows))
        .collect::<Result<Vec<_>>>()?;
    let resident = set.resident.as_ref().map(|r| (r, part_sources.as_slice()));
    let gathered = Gathered::merge(Arc::clone(&set.schema), &parts, &at, resident)?;
    let data = assemble(&gathered)?;
    Ok((data, gathered.into_rows()))
}

/// The batches of the rest of one epoch, in step order. Dropping it early
/// stops the workers; the loader's state then reflects the batches delivered.
pub struct Epoch<'a, T> {
    state: EpochState<'a>,
    plan: EpochPlan,
    next_step: u64,
    receivers: Vec<Receiver<Result<LoadedBatch<T>>>>,
    handles: Vec<JoinHandle<()>>,
    finished: bool,
    /// The shards to fetch, for a dataset streamed through the cache.
    #[cfg(unix)]
    schedule: Option<Arc<stream::Schedule>>,
    #[cfg(unix)]
    prefetcher: Option<JoinHandle<()>>,
}

impl<T> Epoch<'_, T> {
    /// The plan of this epoch (steps, dropped and padded samples).
    pub fn plan(&self) -> &EpochPlan {
        &self.plan
    }

    /// The position after the last delivered batch (the next epoch's start
    /// once the epoch is complete).
    pub fn state(&self) -> &LoaderState {
        &self.state
    }

    fn advance(&mut self) {
        self.next_step += 1;
        if self.next_step >= self.plan.steps {
            self.state.epoch += 1;
            self.state.samples_consumed = 0;
        } else {
            self.state.samples_consumed = self.plan.position_after(self.next_step);
        }
    }
}

impl<T> Iterator for Epoch<'_, T> {
    type Item = Result<LoadedBatch<T>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        if self.next_step >= self.plan.steps {
            self.finished = true;
            if self.plan.steps == 0 {
                // Nothing left to deliver in this epoch: move on.
                self.state.epoch += 1;
                self.state.samples_consumed = 0;
            }
            return None;
        }
        // Step s is assembled by worker s % workers (counted from the plan start).
        let rx = &self.receivers[(self.next_step % self.receivers.len() as u64) as usize];
        match rx.recv() {
            Ok(Ok(mut batch)) => {
                self.advance();
                batch.state = LoaderState::clone(&self.state);
                Some(Ok(batch))
            }
            Ok(Err(e)) => {
                self.finished = true;
                Some(Err(e))
            }
            Err(_) => {
                self.finished = true;
                Some(Err(Error::Internal(
                    "a loader worker stopped without a result (it panicked)".into(),
                )))
            }
        }
    }
}

impl<T> Drop for Epoch<'_, T> {
    fn drop(&mut self) {
        // Closing the channels first unblocks workers waiting to send.
        self.receivers.clear();
        #[cfg(unix)]
        if let Some(schedule) = &self.schedule {
            schedule.cancel();
        }
        for handle in self.handles.drain(..) {
            // A worker panic was already reported through its channel.
            let _ = handle.join();
        }
        #[cfg(unix)]
        if let Some(handle) = self.prefetcher.take() {
            // Its failure reached the workers through the schedule.
            let _ = handle.join();
        }
        #[cfg(unix)]
        if let Some(schedule) = self.schedule.take() {
            schedule.release_all();
        }
    }
}
