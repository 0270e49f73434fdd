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
mod state;

use std::sync::Arc;

pub use config::{TokenConfig, TokenPlan};
pub use state::TokenState;

use docs::{check_column_type, count_tokens, doc_len_at, DocSource, Window};
use fill::{Bounds, Out, Ramp};

use crate::assemble::{ElementKind, ElementsMut};
use crate::loader::{EpochOrder, GatherTable, OrderAlgorithm, SampleSpace};
use crate::reader::DataSource;
use crate::{Error, Result};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatchInfo {
    pub epoch: u64,
    /// The global step: global sequences consumed before it, divided by
    /// `batch_size * world_size`.
    pub step: u64,
    /// Dataset rows of the documents this rank's batch holds tokens of, in
    /// order, each once.
    pub documents: Vec<u64>,
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

/// Packs one dataset's documents into batches of sequences for one rank.
/// See the [module docs](self).
pub struct TokenLoader {
    table: GatherTable,
    space: SampleSpace,
    config: TokenConfig,
    state: TokenState,
    /// The order algorithm: the current one, or a restored state's.
    algorithm: OrderAlgorithm,
    /// The order of `order_key`'s epoch and algorithm.
    order: EpochOrder,
    order_key: (u64, OrderAlgorithm),
    window: Window,
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
        let dataset = match &source {
            DataSource::Mapped(dataset) => Arc::clone(dataset),
            #[cfg(unix)]
            DataSource::Streamed(_) => {
                return Err(Error::InvalidArgument(
                    "token packing reads mapped datasets (local, or remote and no larger than \
                     cache_limit); this one streams through the cache: raise cache_limit to \
                     the dataset's size"
                        .into(),
                ))
            }
        };
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
        let total_tokens = tokens.checked_add(separators).ok_or_else(|| {
            Error::InvalidArgument("the dataset holds more than 2^64 tokens".into())
        })?;
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
            table,
            ramp: Ramp::new(config.seq_len),
            space,
            config,
            state,
            algorithm,
            order,
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

    /// Tokens of one epoch's stream, separators included.
    pub fn total_tokens(&self) -> u64 {
        self.total_tokens
    }

    /// Documents of one epoch.
    pub fn documents(&self) -> u64 {
        self.space.len()
    }

    /// Refuses a state this loader cannot continue: another dataset (or row
    /// selection), seed, shuffle mode, column, `seq_len` or `eos_id`
    /// ([`Error::ResumeMismatch`]), an unknown order algorithm, or a cursor
    /// that is not in the epoch's stream. Batch size and world size may differ.
    pub fn check_state(&self, state: &TokenState) -> Result<()> {
        let expected = TokenState::new(
            self.config.seed,
            self.space.fingerprint().to_string(),
            self.config.shuffle,
            self.config.column.clone(),
            self.config.seq_len as u64,
            self.config.eos_id,
        );
        state.check_compatible(&expected)?;
        let documents = self.space.len();
        let bad = |why: String| Err(Error::ResumeMismatch(why));
        if state
            .sequences_consumed
            .saturating_mul(self.config.seq_len as u64)
            > self
                .total_tokens
                .next_multiple_of(self.config.seq_len as u64)
        {
            return bad(format!(
                "the state has consumed {} sequences of {} tokens but an epoch holds {} tokens",
                state.sequences_consumed, self.config.seq_len, self.total_tokens
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
            let order = EpochOrder::new(
                &self.space,
                state.seed,
                state.epoch,
                state.shuffle,
                state.order_algorithm()?,
            );
            let row = self.space.row(order.get(state.cursor_document));
            let len = doc_len_at(&self.table, &self.config.column, row)? + self.separator_len();
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
            self.total_tokens,
            self.state.sequences_consumed,
        ))
    }

    /// The plan of a whole epoch (the same for every epoch).
    pub fn epoch_plan(&self) -> Result<TokenPlan> {
        Ok(TokenPlan::new(&self.config, self.total_tokens, 0))
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
            return Ok(None);
        }
        let plan = self.plan()?;
        if plan.steps == 0 {
            self.state.start_epoch(self.state.epoch + 1);
            return Ok(None);
        }
        self.ensure_order();

        let eos_len = self.separator_len() as usize;
        let eos = self.config.eos_id.unwrap_or(0);
        let bounds = Bounds::new(self.config.vocab_size, ids.range());
        let kind = ids.kind();
        let documents_total = self.space.len();
        let at = DocSource {
            table: &self.table,
            space: &self.space,
            order: &self.order,
            epoch: self.state.epoch,
            column: &self.config.column,
        };
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
        let mut documents = Vec::new();
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
                    if let Some(next) = window.peek(at.epoch, cur.position + 1) {
                        window.values(next.source).prefetch(next.start);
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
                if documents.last() != Some(&doc.row) {
                    documents.push(doc.row);
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
        let info = TokenBatchInfo {
            epoch: self.state.epoch,
            step: self.state.sequences_consumed / global,
            documents,
        };
        if plan.steps == 1 {
            self.state.start_epoch(self.state.epoch + 1);
            self.end_pending = true;
        } else {
            self.state.sequences_consumed += global;
            self.state.cursor_document = cur.position;
            self.state.cursor_token = cur.token;
        }
        Ok(Some(info))
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

    /// Makes `order` the current epoch's (in the current algorithm).
    fn ensure_order(&mut self) {
        let key = (self.state.epoch, self.algorithm);
        if self.order_key != key {
            self.order = EpochOrder::new(
                &self.space,
                self.config.seed,
                key.0,
                self.config.shuffle,
                key.1,
            );
            self.order_key = key;
            self.window.clear();
        }
    }
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
