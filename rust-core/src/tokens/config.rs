//! What a token loader packs, and the plan of an epoch's steps.

use std::sync::Arc;

use crate::loader::ShuffleMode;
use crate::{Error, Result};

/// How a [`TokenLoader`](super::TokenLoader) packs documents into sequences.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenConfig {
    /// The list-of-integers column that holds each document's token ids.
    pub column: String,
    /// Tokens per sequence (a row of a batch), `L`.
    pub seq_len: usize,
    /// Sequences per batch per rank, `B`.
    pub batch_size: usize,
    /// Appended after every document (and counted as its last token).
    pub eos_id: Option<i64>,
    /// Fills the rest of a partial sequence (default: `eos_id`, else 0).
    pub pad_id: Option<i64>,
    /// When given, every token must be in `[0, vocab_size)`.
    pub vocab_size: Option<u64>,
    /// Deliver only whole sequences and whole global steps (the rest of the
    /// epoch's stream is dropped and counted in the plan); otherwise pad.
    pub drop_last: bool,
    pub seed: u64,
    pub shuffle: ShuffleMode,
    /// This process's rank, `0..world_size`.
    pub rank: usize,
    pub world_size: usize,
    /// Dataset rows an epoch covers, strictly increasing (all when `None`).
    pub rows: Option<Arc<[u64]>>,
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig {
            column: "input_ids".into(),
            seq_len: 2048,
            batch_size: 8,
            eos_id: None,
            pad_id: None,
            vocab_size: None,
            drop_last: true,
            seed: 0,
            shuffle: ShuffleMode::Global,
            rank: 0,
            world_size: 1,
            rows: None,
        }
    }
}

impl TokenConfig {
    /// Checks every option, naming the bad one.
    ///
    /// ```
    /// use mosaicrs::tokens::TokenConfig;
    /// let config = TokenConfig { seq_len: 0, ..TokenConfig::default() };
    /// assert!(config.validate().unwrap_err().to_string().contains("seq_len"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("seq_len", self.seq_len),
            ("batch_size", self.batch_size),
            ("world_size", self.world_size),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(Error::InvalidArgument(format!(
                "token loader option {name} must be at least 1"
            )));
        }
        if self.rank >= self.world_size {
            return Err(Error::InvalidArgument(format!(
                "token loader rank {} must be below world_size {}",
                self.rank, self.world_size
            )));
        }
        if self.global_tokens().is_none() {
            return Err(Error::InvalidArgument(format!(
                "token loader seq_len {} * batch_size {} * world_size {} is too large",
                self.seq_len, self.batch_size, self.world_size
            )));
        }
        if self.vocab_size == Some(0) {
            return Err(Error::InvalidArgument(
                "token loader option vocab_size must be at least 1".into(),
            ));
        }
        for (name, id) in [("eos_id", self.eos_id), ("pad_id", self.pad_id)] {
            let Some(id) = id else { continue };
            let outside = match self.vocab_size {
                Some(v) => id < 0 || i128::from(id) >= i128::from(v),
                None => id < 0,
            };
            if outside {
                let range = self
                    .vocab_size
                    .map_or("non-negative".to_string(), |v| format!("in [0, {v})"));
                return Err(Error::InvalidArgument(format!(
                    "token loader option {name} = {id} must be {range}"
                )));
            }
        }
        self.shuffle.validate()
    }

    /// The value of padding tokens: `pad_id`, else `eos_id`, else 0.
    pub fn pad_value(&self) -> i64 {
        self.pad_id.or(self.eos_id).unwrap_or(0)
    }

    /// Sequences of one global step, `batch_size * world_size`.
    pub fn global_batch(&self) -> u64 {
        self.batch_size as u64 * self.world_size as u64
    }

    /// Tokens of one global step, when it fits in `u64`.
    fn global_tokens(&self) -> Option<u64> {
        (self.seq_len as u64)
            .checked_mul(self.batch_size as u64)?
            .checked_mul(self.world_size as u64)
    }
}

/// The steps of (the rest of) an epoch. Counts are global (all ranks
/// together) except `steps`, which every rank takes alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPlan {
    /// Batches each rank gets.
    pub steps: u64,
    /// Sequences delivered over all ranks, `steps * batch_size * world_size`.
    pub sequences: u64,
    /// Tokens of the stream no sequence delivers (`drop_last`).
    pub dropped_tokens: u64,
    /// Sequences holding padding (the last partial one and the all-padding
    /// rows that complete the last global step), without `drop_last`.
    pub padded_sequences: u64,
}

impl TokenPlan {
    /// The plan for a stream of `total` tokens from sequence `consumed` on.
    pub(crate) fn new(config: &TokenConfig, total: u64, consumed: u64) -> Self {
        let l = config.seq_len as u64;
        let g = config.global_batch();
        let start = consumed.saturating_mul(l).min(total);
        if config.drop_last {
            let whole = (total / l).saturating_sub(consumed);
            let steps = whole / g;
            let sequences = steps * g;
            TokenPlan {
                steps,
                sequences,
                dropped_tokens: total - start - sequences * l,
                padded_sequences: 0,
            }
        } else {
            let left = total.div_ceil(l).saturating_sub(consumed);
            let steps = left.div_ceil(g);
            let sequences = steps * g;
            let partial = u64::from(left > 0 && total % l != 0);
            TokenPlan {
                steps,
                sequences,
                dropped_tokens: 0,
                padded_sequences: sequences - left + partial,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_count_steps_drops_and_padding() {
        let config = TokenConfig {
            seq_len: 4,
            batch_size: 2,
            world_size: 2,
            ..TokenConfig::default()
        };
        // 37 tokens: 9 whole sequences, 2 whole global steps of 4.
        let plan = TokenPlan::new(&config, 37, 0);
        assert_eq!(
            plan,
            TokenPlan {
                steps: 2,
                sequences: 8,
                dropped_tokens: 5,
                padded_sequences: 0
            }
        );
        assert_eq!(TokenPlan::new(&config, 37, 4).steps, 1);
        assert_eq!(TokenPlan::new(&config, 37, 6).steps, 0);
        let pad = TokenConfig {
            drop_last: false,
            ..config
        };
        // 10 sequences (the last holds 1 token), 3 steps, 12 rows.
        let plan = TokenPlan::new(&pad, 37, 0);
        assert_eq!(
            plan,
            TokenPlan {
                steps: 3,
                sequences: 12,
                dropped_tokens: 0,
                padded_sequences: 3
            }
        );
        assert_eq!(TokenPlan::new(&pad, 36, 0).padded_sequences, 3);
        assert_eq!(TokenPlan::new(&pad, 36, 9).steps, 0);
        assert_eq!(TokenPlan::new(&pad, 0, 0).steps, 0);
    }
}
