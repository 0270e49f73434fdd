//! The token loader's resumable state: small, JSON, world-size independent.

use serde::{Deserialize, Serialize};

use crate::loader::{OrderAlgorithm, ShuffleMode, ORDER_ALGORITHM};
use crate::{Error, Result};

/// Where a token loader stands in the global token stream: enough to
/// continue it exactly, on any world size or batch size.
///
/// The cursor names the next global sequence's first token by the position
/// of its document in the epoch order and the tokens of that document
/// (its `eos_id` included) already consumed, so resuming reads no document
/// before it: the state is O(1) whatever the dataset's size.
///
/// ```
/// use mosaicrs::loader::ShuffleMode;
/// use mosaicrs::tokens::TokenState;
/// let s = TokenState::new(7, "xxh3-64:00".into(), ShuffleMode::Global, "input_ids".into(), 512, Some(2));
/// let back = TokenState::from_json(&s.to_json().unwrap()).unwrap();
/// assert_eq!(back, s);
/// assert_eq!((back.epoch, back.sequences_consumed, back.cursor_document), (0, 0, 0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenState {
    /// The order algorithm ([`ORDER_ALGORITHM`] for new loaders).
    pub algorithm: String,
    pub seed: u64,
    pub epoch: u64,
    /// Global sequences of this epoch already handed out (all ranks).
    pub sequences_consumed: u64,
    /// Position in the epoch order of the document where the next global
    /// sequence starts (the number of documents once the stream is over).
    pub cursor_document: u64,
    /// Tokens of that document, its `eos_id` included, already consumed
    /// (always below its length).
    pub cursor_token: u64,
    /// Fingerprint of the sample space (shards' rows and checksums, selection).
    pub dataset: String,
    pub shuffle: ShuffleMode,
    /// The token column.
    pub column: String,
    pub seq_len: u64,
    pub eos_id: Option<i64>,
    /// A mix's allocation block (documents), kept when the run resumes on
    /// another world size (absent for one dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix_block: Option<u64>,
}

impl TokenState {
    /// The state at the start of epoch 0.
    pub fn new(
        seed: u64,
        dataset: String,
        shuffle: ShuffleMode,
        column: String,
        seq_len: u64,
        eos_id: Option<i64>,
    ) -> Self {
        TokenState {
            algorithm: ORDER_ALGORITHM.to_string(),
            seed,
            epoch: 0,
            sequences_consumed: 0,
            cursor_document: 0,
            cursor_token: 0,
            dataset,
            shuffle,
            column,
            seq_len,
            eos_id,
            mix_block: None,
        }
    }

    /// The state as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("cannot serialise token loader state: {e}")))
    }

    /// Parses a state written by [`TokenState::to_json`].
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| {
            Error::InvalidArgument(format!("token loader state is not valid JSON: {e}"))
        })
    }

    /// The order algorithm this state continues with.
    pub fn order_algorithm(&self) -> Result<OrderAlgorithm> {
        OrderAlgorithm::from_name(&self.algorithm)
    }

    /// Moves to the start of `epoch`.
    pub(crate) fn start_epoch(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.sequences_consumed = 0;
        self.cursor_document = 0;
        self.cursor_token = 0;
    }

    /// Refuses a state of another dataset (or mix), seed, shuffle mode,
    /// column, `seq_len` or `eos_id`, a mix's state without its block (or
    /// the reverse), or of an unknown order algorithm
    /// ([`Error::ResumeMismatch`]).
    pub(crate) fn check_compatible(&self, expected: &TokenState) -> Result<()> {
        self.order_algorithm()?;
        let mismatch = |what: &str, found: String, ours: String| {
            Err(Error::ResumeMismatch(format!(
                "the token state was written with {what} {found} but this loader has {ours}"
            )))
        };
        if self.dataset != expected.dataset {
            return mismatch(
                "dataset (and row selection)",
                self.dataset.clone(),
                expected.dataset.clone(),
            );
        }
        if self.seed != expected.seed {
            return mismatch("seed", self.seed.to_string(), expected.seed.to_string());
        }
        if self.shuffle != expected.shuffle {
            return mismatch(
                "shuffle",
                self.shuffle.to_string(),
                expected.shuffle.to_string(),
            );
        }
        if self.column != expected.column {
            return mismatch(
                "column",
                format!("{:?}", self.column),
                format!("{:?}", expected.column),
            );
        }
        if self.seq_len != expected.seq_len {
            return mismatch(
                "seq_len",
                self.seq_len.to_string(),
                expected.seq_len.to_string(),
            );
        }
        if self.eos_id != expected.eos_id {
            return mismatch(
                "eos_id",
                format!("{:?}", self.eos_id),
                format!("{:?}", expected.eos_id),
            );
        }
        match (self.mix_block, expected.mix_block) {
            (None | Some(0), Some(_)) => Err(Error::ResumeMismatch(
                "the state of a mix has no block length (mix_block)".into(),
            )),
            (Some(_), None) => Err(Error::ResumeMismatch(
                "the state is a mix's (it has mix_block) but this loader reads one dataset".into(),
            )),
            _ => Ok(()),
        }
    }
}
