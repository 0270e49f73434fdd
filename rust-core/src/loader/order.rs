//! The global sample order of an epoch.
//!
//! The order is a function of (seed, epoch, sample space, shuffle mode) only,
//! never of the rank, world size or worker count, so any partitioning of it
//! covers each sample exactly once and a run can resume on another number of
//! GPUs. See `docs/LOADER.md` for the trade-off between the modes.

use serde::{Deserialize, Serialize};

use super::rng::SplitMix64;
use super::space::SampleSpace;
use crate::{Error, Result};

/// How samples are ordered within an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ShuffleMode {
    /// A uniform random permutation of all samples: best randomness, random
    /// access across the whole dataset.
    Global,
    /// Shuffle the shard order, then shuffle samples within consecutive
    /// blocks of `shards_per_block` shards: reads stay within a few shards at
    /// a time (page cache and disk friendly) at the cost of randomness.
    BlockLocal { shards_per_block: u32 },
    /// Dataset order, no shuffle (evaluation, debugging).
    Sequential,
}

impl ShuffleMode {
    /// A stable number per mode, mixed into the seed so modes differ.
    fn code(self) -> u64 {
        match self {
            ShuffleMode::Global => 1,
            ShuffleMode::BlockLocal { shards_per_block } => {
                (2u64 << 32) | u64::from(shards_per_block)
            }
            ShuffleMode::Sequential => 3,
        }
    }

    /// Checks the mode's parameters.
    pub fn validate(self) -> Result<()> {
        match self {
            ShuffleMode::BlockLocal {
                shards_per_block: 0,
            } => Err(Error::InvalidArgument(
                "shuffle block-local needs shards_per_block >= 1".into(),
            )),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Display for ShuffleMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShuffleMode::Global => f.write_str("global"),
            ShuffleMode::BlockLocal { shards_per_block } => {
                write!(f, "block-local:{shards_per_block}")
            }
            ShuffleMode::Sequential => f.write_str("sequential"),
        }
    }
}

impl std::str::FromStr for ShuffleMode {
    type Err = Error;

    /// Parses `global`, `sequential`, `block-local` (4 shards per block) or
    /// `block-local:K`.
    ///
    /// ```
    /// use mosaicrs::loader::ShuffleMode;
    /// assert_eq!("global".parse::<ShuffleMode>().unwrap(), ShuffleMode::Global);
    /// assert_eq!(
    ///     "block-local:8".parse::<ShuffleMode>().unwrap(),
    ///     ShuffleMode::BlockLocal { shards_per_block: 8 }
    /// );
    /// assert!("random".parse::<ShuffleMode>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        let lower = s.to_ascii_lowercase();
        let mode = match lower.split_once(':') {
            None if lower == "global" => ShuffleMode::Global,
            None if lower == "sequential" || lower == "none" => ShuffleMode::Sequential,
            None if lower == "block-local" => ShuffleMode::BlockLocal {
                shards_per_block: 4,
            },
            Some(("block-local", k)) => ShuffleMode::BlockLocal {
                shards_per_block: k.parse().map_err(|_| {
                    Error::InvalidArgument(format!(
                        "shuffle {s:?}: shards per block {k:?} is not a positive integer"
                    ))
                })?,
            },
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "shuffle mode {s:?} is not supported; use global, block-local[:K] or sequential"
                )))
            }
        };
        mode.validate()?;
        Ok(mode)
    }
}

/// The permutation of sample indices (positions into `space`) for one epoch.
///
/// Memory: 8 bytes per sample (a 100 M sample epoch takes 800 MB).
///
/// ```
/// use mosaicrs::loader::{epoch_order, SampleSpace, ShuffleMode};
/// let space = SampleSpace::new(&[], None).unwrap();
/// assert!(epoch_order(&space, 1, 0, ShuffleMode::Global).is_empty());
/// ```
pub fn epoch_order(space: &SampleSpace, seed: u64, epoch: u64, mode: ShuffleMode) -> Vec<u64> {
    let mut order: Vec<u64> = (0..space.len()).collect();
    let mut rng = order_rng(space, seed, epoch, mode);
    match mode {
        ShuffleMode::Sequential => {}
        ShuffleMode::Global => rng.shuffle(&mut order),
        ShuffleMode::BlockLocal { shards_per_block } => {
            let bounds = space.shard_bounds();
            let shards = shuffled_shards(&mut rng, bounds);
            let per_block = (shards_per_block as usize).max(1);
            let mut at = 0usize;
            for block in shards.chunks(per_block) {
                let start = at;
                for &s in block {
                    for i in bounds[s]..bounds[s + 1] {
                        order[at] = i;
                        at += 1;
                    }
                }
                rng.shuffle(&mut order[start..at]);
            }
        }
    }
    order
}

fn order_rng(space: &SampleSpace, seed: u64, epoch: u64, mode: ShuffleMode) -> SplitMix64 {
    SplitMix64::from_words(&[seed, epoch, space.fingerprint_word(), mode.code()])
}

/// The block-local shard order: the first draws of the epoch's generator.
fn shuffled_shards(rng: &mut SplitMix64, bounds: &[u64]) -> Vec<usize> {
    let mut shards: Vec<usize> = (0..bounds.len().saturating_sub(1)).collect();
    rng.shuffle(&mut shards);
    shards
}

/// A run of the epoch order drawn from a set of shards only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBlock {
    /// Positions in the epoch order.
    pub positions: std::ops::Range<u64>,
    /// Shards (index positions) whose samples fill those positions.
    pub shards: Vec<usize>,
}

/// The blocks of an epoch's order, in order, without empty ones: one per
/// block of shards (block-local), one per shard (sequential), or one of
/// every shard (global). This is what a streaming reader must hold at once.
///
/// ```
/// use mosaicrs::loader::{epoch_blocks, SampleSpace, ShuffleMode};
/// let space = SampleSpace::new(&[], None).unwrap();
/// assert!(epoch_blocks(&space, 1, 0, ShuffleMode::Sequential).is_empty());
/// ```
pub fn epoch_blocks(
    space: &SampleSpace,
    seed: u64,
    epoch: u64,
    mode: ShuffleMode,
) -> Vec<OrderBlock> {
    let bounds = space.shard_bounds();
    let all: Vec<usize> = (0..bounds.len().saturating_sub(1)).collect();
    let groups: Vec<Vec<usize>> = match mode {
        ShuffleMode::Global => vec![all],
        ShuffleMode::Sequential => all.into_iter().map(|s| vec![s]).collect(),
        ShuffleMode::BlockLocal { shards_per_block } => {
            let mut rng = order_rng(space, seed, epoch, mode);
            let shards = shuffled_shards(&mut rng, bounds);
            let per_block = (shards_per_block as usize).max(1);
            shards.chunks(per_block).map(<[usize]>::to_vec).collect()
        }
    };
    let mut at = 0u64;
    let mut blocks = Vec::with_capacity(groups.len());
    for shards in groups {
        let shards: Vec<usize> = shards
            .into_iter()
            .filter(|&s| bounds[s + 1] > bounds[s])
            .collect();
        let len: u64 = shards.iter().map(|&s| bounds[s + 1] - bounds[s]).sum();
        if len > 0 {
            blocks.push(OrderBlock {
                positions: at..at + len,
                shards,
            });
            at += len;
        }
    }
    blocks
}
