//! LLM token packing: the documents of a list-of-integers column, in the
//! loader's epoch order, concatenated into one token stream and cut into
//! fixed-length sequences.
//!
//! - The stream of an epoch: for each position of the [`EpochOrder`] (a
//!   function of seed, epoch, dataset and shuffle mode), the document's
//!   tokens, then `eos_id` when given. Global sequence `k` is the stream's
//!   tokens `[k * L, (k + 1) * L)`.
//! - Global step `s` holds sequences `[s * B * W, (s + 1) * B * W)`; rank `r`
//!   takes `B` of them from `s * B * W + r * B`. Every rank walks the same
//!   stream by document lengths and copies only its own tokens, so the union
//!   of the ranks is the single-rank stream, whatever the world size.
//! - [`TokenState`] names the next sequence by a cursor (document position,
//!   token within it): resuming reads nothing before it, also on another
//!   world size or batch size. No memory per document is kept.
//! - `position_ids` restart at 0 at each document start and at each row start.
//!
//! `docs/LOADER.md` ("Token packing") describes the rank split, `drop_last`
//! and padding.
//!
//! ```
//! # use std::sync::Arc;
//! # use arrow::array::{Int32Builder, ListBuilder};
//! # use arrow::record_batch::RecordBatch;
//! # use mosaicrs::testing::write_batches;
//! use mosaicrs::loader::ShuffleMode;
//! use mosaicrs::reader::Dataset;
//! use mosaicrs::tokens::{TokenConfig, TokenLoader};
//! # let dir = tempfile::tempdir().unwrap();
//! # let mut docs = ListBuilder::new(Int32Builder::new());
//! # for doc in [&[1, 2, 3][..], &[4, 5], &[6, 7, 8, 9]] {
//! #     docs.append_value(doc.iter().map(|&t| Some(t)));
//! # }
//! # let batch = RecordBatch::try_from_iter([("input_ids", Arc::new(docs.finish()) as _)]).unwrap();
//! # write_batches(dir.path(), &[batch], Default::default()).unwrap();
//! // Three documents: [1, 2, 3], [4, 5], [6, 7, 8, 9].
//! let dataset = Arc::new(Dataset::open(dir.path()).unwrap());
//! let config = TokenConfig {
//!     seq_len: 4,
//!     batch_size: 2,
//!     eos_id: Some(0),
//!     shuffle: ShuffleMode::Sequential,
//!     ..TokenConfig::default()
//! };
//! let mut loader = TokenLoader::new(dataset, config).unwrap();
//! assert_eq!(loader.total_tokens(), 12); // 9 tokens and 3 separators
//! let batch = loader.next_batch().unwrap().unwrap();
//! assert_eq!(batch.input_ids, [1, 2, 3, 0, 4, 5, 0, 6]);
//! assert_eq!(batch.position_ids, [0, 1, 2, 3, 0, 1, 2, 0]);
//! assert_eq!(batch.info.documents, [0, 1, 2]);
//! // The rest (7, 8, 9, 0) is not a whole step: dropped.
//! assert!(loader.next_batch().unwrap().is_none());
//! assert_eq!(loader.state().epoch, 1);
//! ```

mod config;
mod docs;
mod fill;
mod segments;
mod state;

use std::sync::{Arc, Mutex, PoisonError};

pub use config::{TokenConfig, TokenPlan};
pub use segments::segment_starts;
pub use state::TokenState;

use docs::{check_column_type, count_tokens, doc_len_at, DocOrder, DocSource, Window};
use fill::{Bounds, Out, Ramp};

use crate::assemble::{ElementKind, ElementsMut};
use crate::loader::mix::{self, MixConfig, MixSource, MixedOrder, Stream};
use crate::loader::{EpochOrder, GatherTable, OrderAlgorithm, SampleSpace};
use crate::reader::{DataSource, Dataset};
use crate::{Error, Result};

/// How many documents ahead of the one being copied the first bytes of a
/// document are prefetched ([`fill::PREFETCH_BYTES`]): one document (about
/// 500 tokens) is copied in less time than a load from memory takes to
/// arrive.
const PREFETCH_AHEAD: u64 = 2;

/// The buffers one batch is written into, each row-major `[B, L]`.
#[derive(Debug)]
pub struct TokenBatchMut<'a> {
    /// Token ids, int64 or int32.
    pub input_ids: ElementsMut<'a>,
    /// Positions within each document piece, int64 or int32.
    pub position_ids: ElementsMut<'a>,
    /// Real tokens of each row (`B`); the rest of the row is padding.
    pub lengths: &'a mut [i64],
}

/// What a batch holds besides its tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenBatchInfo {
    pub epoch: u64,
    /// The global step: global sequences consumed before it, divided by
    /// `batch_size * world_size`.
    pub step: u64,
    /// Dataset rows of the documents this rank's batch holds tokens of, in
    /// order, each once.
    pub documents: Vec<u64>,
    /// The mix source of each of `documents` (all 0 for one dataset).
    pub sources: Vec<u32>,
}

/// One batch in owned int64 vectors ([`TokenLoader::next_batch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    /// `[B, L]`, row-major.
    pub input_ids: Vec<i64>,
    /// `[B, L]`, row-major.
    pub position_ids: Vec<i64>,
    /// `[B]`: real tokens per row.
    pub lengths: Vec<i64>,
    pub info: TokenBatchInfo,
}

/// Where the walk of the stream stands: the document at `position` of the
/// epoch order, `token` tokens of it (separator included) consumed.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    position: u64,
    token: u64,
}

/// Packs one dataset's documents (or a mix's: [`TokenLoader::mixed`]) into
/// batches of sequences for one rank. See the [module docs](self).
pub struct TokenLoader {
    /// The dataset, or each source of a mix.
    tables: Vec<GatherTable>,
    /// The dataset's sample space (a mix's first source's).
    space: SampleSpace,
    /// The sources of a mix.
    mix: Option<TokenMix>,
    config: TokenConfig,
    state: TokenState,
    /// The order algorithm: the current one, or a restored state's.
    algorithm: OrderAlgorithm,
    /// The order of `order_key`'s epoch and algorithm.
    order: Walk,
    order_key: (u64, OrderAlgorithm),
    window: Window,
    /// Tokens of the epoch of `order` (every epoch's for one dataset).
    total_tokens: u64,
    ramp: Ramp,
    /// The last batch of an epoch was delivered: the next call reports the
    /// end (the state already points at the next epoch).
    end_pending: bool,
}

impl TokenLoader {
    /// A loader at the start of epoch 0. Counts the epoch's tokens once
    /// (reading the column's offsets, not its tokens), which also finds
    /// empty and null documents.
    ///
    /// The dataset must be mapped (local, or remote and within the cache);
    /// the column must be a list (or large list) of any integer type.
    pub fn new(source: impl Into<DataSource>, config: TokenConfig) -> Result<Self> {
        config.validate()?;
        let source = source.into();
        let dataset = mapped(&source)?;
        let schema = source.schema();
        let index = source.column_indices(&[config.column.as_str()])?[0];
        check_column_type(&config.column, schema.field(index).data_type())?;
        let space = SampleSpace::new(&source.index().shards, config.rows.clone())?;
        let tokens = count_tokens(&dataset, index, &config.column, config.rows.as_deref())?;
        let separators = if config.eos_id.is_some() {
            space.len()
        } else {
            0
        };
        let total_tokens = tokens.checked_add(separators).ok_or_else(too_many)?;
        let table = GatherTable::new(source, vec![index])?;
        let state = TokenState::new(
            config.seed,
            space.fingerprint().to_string(),
            config.shuffle,
            config.column.clone(),
            config.seq_len as u64,
            config.eos_id,
        );
        let algorithm = OrderAlgorithm::CURRENT;
        let order = EpochOrder::new(&space, config.seed, 0, config.shuffle, algorithm);
        Ok(TokenLoader {
            tables: vec![table],
            ramp: Ramp::new(config.seq_len),
            space,
            mix: None,
            config,
            state,
            algorithm,
            order: Walk::One(order),
            order_key: (0, algorithm),
            window: Window::default(),
            total_tokens,
            end_pending: false,
        })
    }

    /// A loader over several datasets mixed in the proportions their
    /// [`Stream`]s give, at the start of epoch 0: the document stream is the
    /// mixed order's documents ([`MixedOrder`]: every allocation block of
    /// `mix.block` documents, default `batch_size * world_size`, holds each
    /// source's share to within one document, and each source's documents
    /// follow its own permutation), packed as for one dataset. Every source
    /// must be mapped and have `config.column` as a list of integers (a
    /// mismatch names the source). The state adds the block length, so a
    /// run resumes exactly, also on another world size or batch size.
    /// `config.rows` is not supported with a mix.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use arrow::array::{Int32Builder, ListBuilder};
    /// # use arrow::record_batch::RecordBatch;
    /// # use mosaicrs::testing::write_batches;
    /// use mosaicrs::loader::mix::{MixConfig, Stream};
    /// use mosaicrs::reader::Dataset;
    /// use mosaicrs::tokens::{TokenConfig, TokenLoader};
    /// # let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    /// # for (i, d) in dirs.iter().enumerate() {
    /// #     let mut docs = ListBuilder::new(Int32Builder::new());
    /// #     for r in 0..100 { docs.append_value([Some(i as i32), Some(r)]); }
    /// #     let batch = RecordBatch::try_from_iter([("input_ids", Arc::new(docs.finish()) as _)]).unwrap();
    /// #     write_batches(d.path(), &[batch], Default::default()).unwrap();
    /// # }
    /// let open = |i: usize| Arc::new(Dataset::open(dirs[i].path()).unwrap());
    /// let streams = vec![
    ///     Stream::new(open(0)).weight(0.6),
    ///     Stream::new(open(1)).weight(0.3),
    ///     Stream::new(open(2)).weight(0.1),
    /// ];
    /// let config = TokenConfig { seq_len: 10, batch_size: 2, ..TokenConfig::default() };
    /// let mut loader = TokenLoader::mixed(streams, MixConfig::default(), config).unwrap();
    /// assert_eq!(loader.documents(), 300); // 180, 90 and 30 documents of 2 tokens
    /// let batch = loader.next_batch().unwrap().unwrap();
    /// assert_eq!(batch.info.documents.len(), batch.info.sources.len());
    /// ```
    pub fn mixed<S: Into<DataSource>>(
        streams: Vec<Stream<S>>,
        mix: MixConfig,
        config: TokenConfig,
    ) -> Result<Self> {
        config.validate()?;
        if config.rows.is_some() {
            return Err(Error::InvalidArgument(
                "token loader option rows selects rows of one dataset; it is not supported \
                 with a mix"
                    .into(),
            ));
        }
        if streams.is_empty() {
            return Err(Error::InvalidArgument(
                "a mix needs at least one source".into(),
            ));
        }
        let separator = u64::from(config.eos_id.is_some());
        let mut tables = Vec::with_capacity(streams.len());
        let mut datasets = Vec::with_capacity(streams.len());
        let mut spaces = Vec::with_capacity(streams.len());
        let mut shuffles = Vec::with_capacity(streams.len());
        let mut weightings = Vec::with_capacity(streams.len());
        let mut tokens = Vec::with_capacity(streams.len());
        for (i, stream) in streams.into_iter().enumerate() {
            let in_source = |e: Error| match e {
                Error::InvalidArgument(m) => Error::InvalidArgument(format!("mix source {i}: {m}")),
                Error::ColumnNotFound { name, available } => Error::InvalidArgument(format!(
                    "mix source {i}: column {name:?} is not in its schema (it has {available})"
                )),
                Error::UnsupportedColumn {
                    name,
                    data_type,
                    reason,
                } => Error::UnsupportedColumn {
                    name: format!("{name} (mix source {i})"),
                    data_type,
                    reason,
                },
                e => e,
            };
            let shuffle = stream.shuffle.unwrap_or(config.shuffle);
            shuffle.validate()?;
            let source: DataSource = stream.source.into();
            let dataset = mapped(&source).map_err(in_source)?;
            let index = source
                .column_indices(&[config.column.as_str()])
                .map_err(in_source)?[0];
            check_column_type(&config.column, source.schema().field(index).data_type())
                .map_err(in_source)?;
            let space = SampleSpace::new(&source.index().shards, None)?;
            let n = count_tokens(&dataset, index, &config.column, None).map_err(in_source)?;
            tokens.push(
                n.checked_add(separator * space.len())
                    .ok_or_else(too_many)?,
            );
            spaces.push(Arc::new(space));
            shuffles.push(shuffle);
            weightings.push(stream.weighting);
            tables.push(GatherTable::new(source, vec![index])?);
            datasets.push((dataset, index));
        }
        let sources = mix::sources_of(spaces, shuffles, &weightings, &mix)?;
        let block = mix::block_of(&mix, config.batch_size, config.world_size)?;
        let fingerprint = mix::fingerprint(&sources);
        let mut state = TokenState::new(
            config.seed,
            fingerprint,
            config.shuffle,
            config.column.clone(),
            config.seq_len as u64,
            config.eos_id,
        );
        state.mix_block = Some(block);
        let space = SampleSpace::clone(&sources[0].space);
        let token_mix = TokenMix {
            datasets,
            sources,
            tokens,
            separator,
            cache: Mutex::new(None),
        };
        let algorithm = OrderAlgorithm::CURRENT;
        let (order, total_tokens) = token_mix.epoch(config.seed, 0, algorithm, block)?;
        Ok(TokenLoader {
            tables,
            ramp: Ramp::new(config.seq_len),
            space,
            mix: Some(token_mix),
            config,
            state,
            algorithm,
            order: Walk::Mixed(order),
            order_key: (0, algorithm),
            window: Window::default(),
            total_tokens,
            end_pending: false,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TokenConfig {
        &self.config
    }

    /// The position: checkpoint it after the training step on the last
    /// batch.
    pub fn state(&self) -> &TokenState {
        &self.state
    }

    /// Tokens of one epoch's stream, separators included. For a mix whose
    /// sources take part of a pass over their rows (fractional `repeat`,
    /// weights), the epoch of the latest batch or plan: each epoch takes
    /// another subset.
    pub fn total_tokens(&self) -> u64 {
        self.total_tokens
    }

    /// Documents of one epoch.
    pub fn documents(&self) -> u64 {
        match &self.mix {
            Some(m) => m.sources.iter().map(|s| s.count).sum(),
            None => self.space.len(),
        }
    }

    /// Documents each source of a mix gives one epoch (empty for one
    /// dataset).
    pub fn mix_counts(&self) -> Vec<u64> {
        mix::counts_of(self.mix.as_ref().map(|m| &m.sources[..]))
    }

    /// The mixed order of `epoch` (`None` for one dataset): `(source, row)`
    /// per document position.
    pub fn mixed_order(&self, epoch: u64) -> Result<Option<Arc<MixedOrder>>> {
        match &self.mix {
            Some(m) => Ok(Some(
                m.epoch(self.config.seed, epoch, self.algorithm, self.block())?
                    .0,
            )),
            None => Ok(None),
        }
    }

    /// The mix's allocation block (the state's; 1 for one dataset).
    fn block(&self) -> u64 {
        self.state.mix_block.unwrap_or(1)
    }

    /// Refuses a state this loader cannot continue: another dataset (or row
    /// selection), seed, shuffle mode, column, `seq_len` or `eos_id`
    /// ([`Error::ResumeMismatch`]), an unknown order algorithm, or a cursor
    /// that is not in the epoch's stream. Batch size and world size may differ.
    pub fn check_state(&self, state: &TokenState) -> Result<()> {
        let dataset = match &self.mix {
            Some(m) => mix::fingerprint(&m.sources),
            None => self.space.fingerprint().to_string(),
        };
        let mut expected = TokenState::new(
            self.config.seed,
            dataset,
            self.config.shuffle,
            self.config.column.clone(),
            self.config.seq_len as u64,
            self.config.eos_id,
        );
        expected.mix_block = self.mix.as_ref().map(|_| 1);
        state.check_compatible(&expected)?;
        let algorithm = state.order_algorithm()?;
        let (mixed, total_tokens) = match &self.mix {
            Some(m) => {
                let block = state.mix_block.unwrap_or(1);
                let (order, total) = m.epoch(state.seed, state.epoch, algorithm, block)?;
                (Some(order), total)
            }
            None => (None, self.total_tokens),
        };
        let documents = self.documents();
        let bad = |why: String| Err(Error::ResumeMismatch(why));
        if state
            .sequences_consumed
            .saturating_mul(self.config.seq_len as u64)
            > total_tokens.next_multiple_of(self.config.seq_len as u64)
        {
            return bad(format!(
                "the state has consumed {} sequences of {} tokens but an epoch holds {} tokens",
                state.sequences_consumed, self.config.seq_len, total_tokens
            ));
        }
        if state.cursor_document > documents
            || (state.cursor_document == documents && state.cursor_token != 0)
        {
            return bad(format!(
                "the state's cursor (document {}, token {}) is past the {documents} documents \
                 of an epoch",
                state.cursor_document, state.cursor_token
            ));
        }
        if state.cursor_document < documents {
            let (source, row) = match &mixed {
                Some(order) => order.get(state.cursor_document),
                None => {
                    let order = EpochOrder::new(
                        &self.space,
                        state.seed,
                        state.epoch,
                        state.shuffle,
                        algorithm,
                    );
                    (0, self.space.row(order.get(state.cursor_document)))
                }
            };
            let table = self
                .tables
                .get(source)
                .ok_or_else(|| Error::Internal(format!("the mixed order names source {source}")))?;
            let len = doc_len_at(table, &self.config.column, row)? + self.separator_len();
            if state.cursor_token >= len {
                return bad(format!(
                    "the state's cursor is at token {} of document {} (dataset row {row}), \
                     which holds {len}",
                    state.cursor_token, state.cursor_document
                ));
            }
        }
        Ok(())
    }

    /// Moves the loader to `state` (checked as by
    /// [`check_state`](Self::check_state)), for example the checkpoint of a
    /// run on another world size. Nothing is read before the cursor.
    pub fn restore(&mut self, state: TokenState) -> Result<()> {
        self.check_state(&state)?;
        self.algorithm = state.order_algorithm()?;
        self.state = state;
        self.end_pending = false;
        Ok(())
    }

    /// Moves to the start of `epoch`.
    pub fn set_epoch(&mut self, epoch: u64) {
        self.state.start_epoch(epoch);
        self.end_pending = false;
    }

    /// The plan from the current state to the end of its epoch.
    pub fn plan(&self) -> Result<TokenPlan> {
        Ok(TokenPlan::new(
            &self.config,
            self.epoch_tokens()?,
            self.state.sequences_consumed,
        ))
    }

    /// The plan of the current epoch from its start (the same for every
    /// epoch, but for a mix that takes part of a source's rows).
    pub fn epoch_plan(&self) -> Result<TokenPlan> {
        Ok(TokenPlan::new(&self.config, self.epoch_tokens()?, 0))
    }

    /// Tokens of the current epoch's stream.
    fn epoch_tokens(&self) -> Result<u64> {
        match &self.mix {
            Some(m) => Ok(m
                .epoch(
                    self.config.seed,
                    self.state.epoch,
                    self.algorithm,
                    self.block(),
                )?
                .1),
            None => Ok(self.total_tokens),
        }
    }

    /// Fills this rank's next batch into `out` (`input_ids` and
    /// `position_ids` of `batch_size * seq_len` elements, `lengths` of
    /// `batch_size`) and moves the state past it. Returns `None` once at the
    /// end of the epoch; the state then points at the start of the next
    /// epoch, which the following call begins.
    ///
    /// On an error (a token outside the vocabulary, a bad buffer) the state
    /// does not move; the buffers may hold part of the batch.
    pub fn next_into(&mut self, out: TokenBatchMut<'_>) -> Result<Option<TokenBatchInfo>> {
        let mut info = TokenBatchInfo::default();
        Ok(self.next_into_info(out, &mut info)?.then_some(info))
    }

    /// [`next_into`](Self::next_into), writing what the batch holds into
    /// `info` (its vectors cleared and reused, so that a caller that keeps
    /// one `info` allocates nothing per batch). Returns `false` at the end of
    /// the epoch, `info` untouched; on an error `info` may hold part of the
    /// batch's documents.
    pub fn next_into_info(
        &mut self,
        out: TokenBatchMut<'_>,
        info: &mut TokenBatchInfo,
    ) -> Result<bool> {
        let b = self.config.batch_size;
        let l = self.config.seq_len;
        let n = b.checked_mul(l).ok_or_else(|| {
            Error::InvalidArgument(format!("batch_size {b} * seq_len {l} is too large"))
        })?;
        let mut ids = Out::new(out.input_ids, n, "input_ids")?;
        let mut pos = Out::new(out.position_ids, n, "position_ids")?;
        if out.lengths.len() != b {
            return Err(Error::InvalidArgument(format!(
                "the lengths buffer holds {} elements but a batch has batch_size = {b} rows",
                out.lengths.len()
            )));
        }
        let (lo, hi) = ids.range();
        let pad = self.config.pad_value();
        for (name, v) in [("eos_id", self.config.eos_id.unwrap_or(0)), ("pad_id", pad)] {
            if i128::from(v) < lo || i128::from(v) > hi {
                return Err(Error::InvalidArgument(format!(
                    "{name} {v} does not fit in {} input_ids",
                    ids.kind()
                )));
            }
        }
        if (l as i128 - 1) > pos.range().1 {
            return Err(Error::InvalidArgument(format!(
                "seq_len {l} does not fit in {} position_ids",
                pos.kind()
            )));
        }
        if self.end_pending {
            self.end_pending = false;
            return Ok(false);
        }
        self.ensure_order()?;
        let plan = self.plan()?;
        if plan.steps == 0 {
            self.state.start_epoch(self.state.epoch + 1);
            return Ok(false);
        }

        let eos_len = self.separator_len() as usize;
        let eos = self.config.eos_id.unwrap_or(0);
        let bounds = Bounds::new(self.config.vocab_size, ids.range());
        let kind = ids.kind();
        let at = DocSource {
            tables: &self.tables,
            order: match &self.order {
                Walk::One(order) => DocOrder::One {
                    space: &self.space,
                    order,
                },
                Walk::Mixed(order) => DocOrder::Mixed(order),
            },
            epoch: self.state.epoch,
            column: &self.config.column,
        };
        let documents_total = at.order.len();
        let window = &mut self.window;
        let ramp = &self.ramp;
        let (r, w) = (self.config.rank as u64, self.config.world_size as u64);
        let row_tokens = (b as u64) * (l as u64);
        let mut cur = Cursor {
            position: self.state.cursor_document,
            token: self.state.cursor_token,
        };
        skip(
            window,
            &at,
            &mut cur,
            r * row_tokens,
            eos_len,
            documents_total,
        )?;
        let documents = &mut info.documents;
        let sources = &mut info.sources;
        documents.clear();
        sources.clear();
        for (i, length) in out.lengths.iter_mut().enumerate() {
            let row_start = i * l;
            let mut filled = 0usize;
            while filled < l && cur.position < documents_total {
                let doc = window.doc(&at, cur.position)?;
                let doc_len = doc.len + eos_len;
                // Below `doc_len`, which is a usize.
                let t = cur.token as usize;
                let take = (doc_len - t).min(l - filled);
                let token_end = (t + take).min(doc.len);
                let copied = token_end.saturating_sub(t);
                if t == 0 {
                    if let Some(ahead) = window.peek(at.epoch, cur.position + PREFETCH_AHEAD) {
                        window.values(ahead.source).prefetch(ahead.start);
                    }
                }
                if copied > 0 {
                    ids.copy(
                        row_start + filled,
                        window.values(doc.source),
                        doc.start + t,
                        copied,
                        bounds,
                    )
                    .map_err(|value| token_error(&self.config, doc.row, value, kind))?;
                }
                if copied < take {
                    // The one separator after the document's last token.
                    ids.fill(row_start + filled + copied, take - copied, eos);
                }
                pos.ramp(row_start + filled, take, ramp);
                if documents.last() != Some(&doc.row) || sources.last() != Some(&doc.stream) {
                    documents.push(doc.row);
                    sources.push(doc.stream);
                }
                filled += take;
                if t + take == doc_len {
                    cur.position += 1;
                    cur.token = 0;
                } else {
                    cur.token += take as u64;
                }
            }
            *length = filled as i64;
            if filled < l {
                ids.fill(row_start + filled, l - filled, pad);
                pos.ramp(row_start + filled, l - filled, ramp);
            }
        }
        skip(
            window,
            &at,
            &mut cur,
            (w - r - 1) * row_tokens,
            eos_len,
            documents_total,
        )?;

        let global = self.config.global_batch();
        info.epoch = self.state.epoch;
        info.step = self.state.sequences_consumed / global;
        if plan.steps == 1 {
            self.state.start_epoch(self.state.epoch + 1);
            self.end_pending = true;
        } else {
            self.state.sequences_consumed += global;
            self.state.cursor_document = cur.position;
            self.state.cursor_token = cur.token;
        }
        Ok(true)
    }

    /// [`next_into`](Self::next_into) into new int64 vectors.
    pub fn next_batch(&mut self) -> Result<Option<TokenBatch>> {
        let n = self.config.batch_size * self.config.seq_len;
        let mut input_ids = vec![0i64; n];
        let mut position_ids = vec![0i64; n];
        let mut lengths = vec![0i64; self.config.batch_size];
        let info = self.next_into(TokenBatchMut {
            input_ids: ElementsMut::I64(&mut input_ids),
            position_ids: ElementsMut::I64(&mut position_ids),
            lengths: &mut lengths,
        })?;
        Ok(info.map(|info| TokenBatch {
            input_ids,
            position_ids,
            lengths,
            info,
        }))
    }

    /// 1 when documents end with `eos_id`, else 0.
    fn separator_len(&self) -> u64 {
        u64::from(self.config.eos_id.is_some())
    }

    /// Makes `order` the current epoch's (in the current algorithm and, for
    /// a mix, the state's block).
    fn ensure_order(&mut self) -> Result<()> {
        let key = (self.state.epoch, self.algorithm);
        if let Some(m) = &self.mix {
            let (order, total) = m.epoch(self.config.seed, key.0, key.1, self.block())?;
            let same = matches!(&self.order, Walk::Mixed(o) if Arc::ptr_eq(o, &order));
            if !same {
                self.order = Walk::Mixed(order);
                self.total_tokens = total;
                self.order_key = key;
                self.window.clear();
            }
            return Ok(());
        }
        if self.order_key != key {
            self.order = Walk::One(EpochOrder::new(
                &self.space,
                self.config.seed,
                key.0,
                self.config.shuffle,
                key.1,
            ));
            self.order_key = key;
            self.window.clear();
        }
        Ok(())
    }
}

/// The document order of the current epoch.
enum Walk {
    One(EpochOrder),
    Mixed(Arc<MixedOrder>),
}

/// A token loader's mix: its sources and the order of the latest epoch.
struct TokenMix {
    /// Each source's dataset and token column.
    datasets: Vec<(Arc<Dataset>, usize)>,
    sources: Vec<MixSource>,
    /// Tokens of each source's rows, separators included.
    tokens: Vec<u64>,
    /// 1 when documents end with `eos_id`, else 0.
    separator: u64,
    /// (epoch, algorithm, block) with its order and stream tokens.
    cache: Mutex<Option<MixEpoch>>,
}

type MixEpoch = ((u64, OrderAlgorithm, u64), Arc<MixedOrder>, u64);

impl TokenMix {
    /// The mixed order of `epoch` and the tokens of its stream: per source,
    /// its whole passes' tokens and those of its partial pass's documents
    /// (offsets read, no token). Kept for the latest epoch.
    fn epoch(
        &self,
        seed: u64,
        epoch: u64,
        algorithm: OrderAlgorithm,
        block: u64,
    ) -> Result<(Arc<MixedOrder>, u64)> {
        let key = (epoch, algorithm, block);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((k, order, total)) = &*cache {
            if *k == key {
                return Ok((Arc::clone(order), *total));
            }
        }
        let order = Arc::new(MixedOrder::new(
            self.sources.clone(),
            seed,
            epoch,
            block,
            algorithm,
        ));
        let mut total = 0u64;
        for (i, ((dataset, index), tokens)) in self.datasets.iter().zip(&self.tokens).enumerate() {
            let (passes, rows) = order.source_share(i);
            let column = dataset.schema().field(*index).name().clone();
            let part = if rows.is_empty() {
                0
            } else {
                count_tokens(dataset, *index, &column, Some(&rows))?
                    + self.separator * rows.len() as u64
            };
            total = passes
                .checked_mul(*tokens)
                .and_then(|t| t.checked_add(part))
                .and_then(|t| t.checked_add(total))
                .ok_or_else(too_many)?;
        }
        *cache = Some((key, Arc::clone(&order), total));
        Ok((order, total))
    }
}

/// The dataset of a mapped source; a streamed one is refused.
fn mapped(source: &DataSource) -> Result<Arc<Dataset>> {
    match source {
        DataSource::Mapped(dataset) => Ok(Arc::clone(dataset)),
        #[cfg(unix)]
        DataSource::Streamed(_) => Err(Error::InvalidArgument(
            "token packing reads mapped datasets (local, or remote and no larger than \
             cache_limit); this one streams through the cache: raise cache_limit to the \
             dataset's size"
                .into(),
        )),
    }
}

fn too_many() -> Error {
    Error::InvalidArgument("the dataset holds more than 2^64 tokens".into())
}

/// Moves `cur` on by `tokens` tokens of the stream (by document lengths,
/// reading no token), stopping at the end of the stream.
fn skip(
    window: &mut Window,
    at: &DocSource<'_>,
    cur: &mut Cursor,
    mut tokens: u64,
    eos_len: usize,
    documents: u64,
) -> Result<()> {
    while tokens > 0 && cur.position < documents {
        let doc = window.doc(at, cur.position)?;
        let left = (doc.len + eos_len) as u64 - cur.token;
        if tokens < left {
            cur.token += tokens;
            return Ok(());
        }
        tokens -= left;
        cur.position += 1;
        cur.token = 0;
    }
    Ok(())
}

/// A token outside the vocabulary or the buffer type.
fn token_error(config: &TokenConfig, row: u64, value: i128, kind: ElementKind) -> Error {
    let column = &config.column;
    match config.vocab_size {
        Some(vocab) if value < 0 || value >= i128::from(vocab) => Error::InvalidArgument(format!(
            "column {column:?} holds token {value} at dataset row {row}, outside \
             [0, vocab_size = {vocab})"
        )),
        _ => Error::InvalidArgument(format!(
            "column {column:?} holds token {value} at dataset row {row}, which does not fit \
             in {kind} input_ids"
        )),
    }
}
