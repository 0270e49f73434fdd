//! The global sample order of an epoch.
//!
//! The order is a function of (seed, epoch, sample space, shuffle mode) only,
//! never of the rank, world size or worker count, so any partitioning of it
//! covers each sample exactly once and a run can resume on another number of
//! GPUs. See `docs/LOADER.md` for the trade-off between the modes.

use serde::{Deserialize, Serialize};

use super::permutation::Permutation;
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

/// The algorithm that turns (seed, epoch, sample space, mode) into an order.
/// Its name is recorded in every [`LoaderState`](super::LoaderState), and a
/// resumed loader keeps the algorithm its state names, so a run continues in
/// the order it started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAlgorithm {
    /// Each position computed on demand by keyed permutations
    /// ([`Permutation`]): the whole dataset (global) or each block
    /// (block-local). Constant memory. Used by new loaders.
    Feistel,
    /// A stored Fisher-Yates shuffle, 8 bytes per sample. Kept only so that
    /// a state written with it resumes into the same order.
    FisherYates,
}

impl OrderAlgorithm {
    /// The algorithm of new loaders.
    pub const CURRENT: OrderAlgorithm = OrderAlgorithm::Feistel;

    /// The name stored in loader states.
    ///
    /// ```
    /// use mosaicrs::loader::OrderAlgorithm;
    /// let name = OrderAlgorithm::CURRENT.name();
    /// assert_eq!(OrderAlgorithm::from_name(name).unwrap(), OrderAlgorithm::CURRENT);
    /// assert!(OrderAlgorithm::from_name("something-else").is_err());
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            OrderAlgorithm::Feistel => "splitmix64-feistel-v2",
            OrderAlgorithm::FisherYates => "splitmix64-lemire-fisher-yates-v1",
        }
    }

    /// The algorithm named `name`, or [`Error::ResumeMismatch`] naming the
    /// known ones.
    pub fn from_name(name: &str) -> Result<Self> {
        [OrderAlgorithm::Feistel, OrderAlgorithm::FisherYates]
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| {
                Error::ResumeMismatch(format!(
                    "the state was written with order algorithm {name:?}, which this version \
                     does not know (it knows {:?} and {:?}); resume it with the mosaicrs \
                     version that wrote it",
                    OrderAlgorithm::Feistel.name(),
                    OrderAlgorithm::FisherYates.name()
                ))
            })
    }
}

/// The sample order of one epoch: position → sample index (a position into
/// the [`SampleSpace`]). With [`OrderAlgorithm::Feistel`] it is computed per
/// position and takes memory per block of shards, not per sample.
///
/// ```
/// use mosaicrs::loader::{EpochOrder, OrderAlgorithm, SampleSpace, ShuffleMode};
/// let space = SampleSpace::new(&[], None).unwrap();
/// let order = EpochOrder::new(&space, 1, 0, ShuffleMode::Global, OrderAlgorithm::CURRENT);
/// assert!(order.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct EpochOrder {
    len: u64,
    kind: OrderKind,
}

#[derive(Debug, Clone)]
enum OrderKind {
    Sequential,
    Global(Permutation),
    /// Blocks in order, each permuted on its own.
    Blocks(Vec<PermutedBlock>),
    Stored(Vec<u64>),
}

#[derive(Debug, Clone)]
struct PermutedBlock {
    /// First position of the block in the epoch order.
    start: u64,
    permutation: Permutation,
    /// `(offset in the block, first sample)` of each shard of the block,
    /// in block order; offsets increase from 0.
    pieces: Vec<(u64, u64)>,
}

impl EpochOrder {
    /// The order of `epoch`.
    pub fn new(
        space: &SampleSpace,
        seed: u64,
        epoch: u64,
        mode: ShuffleMode,
        algorithm: OrderAlgorithm,
    ) -> Self {
        let len = space.len();
        let kind = match (algorithm, mode) {
            (_, ShuffleMode::Sequential) => OrderKind::Sequential,
            (OrderAlgorithm::FisherYates, _) => {
                OrderKind::Stored(fisher_yates_order(space, seed, epoch, mode))
            }
            (OrderAlgorithm::Feistel, ShuffleMode::Global) => OrderKind::Global(Permutation::new(
                len,
                &mut order_rng(space, seed, epoch, mode),
            )),
            (OrderAlgorithm::Feistel, ShuffleMode::BlockLocal { .. }) => {
                let bounds = space.shard_bounds();
                let blocks = epoch_blocks(space, seed, epoch, mode)
                    .into_iter()
                    .enumerate()
                    .map(|(i, block)| {
                        let mut offset = 0;
                        let pieces = block
                            .shards
                            .iter()
                            .map(|&s| {
                                let piece = (offset, bounds[s]);
                                offset += bounds[s + 1] - bounds[s];
                                piece
                            })
                            .collect();
                        // Each block has its own key, so blocks are
                        // independent of each other and of their count.
                        let mut rng = SplitMix64::from_words(&[
                            seed,
                            epoch,
                            space.fingerprint_word(),
                            mode.code(),
                            i as u64,
                        ]);
                        PermutedBlock {
                            start: block.positions.start,
                            permutation: Permutation::new(offset, &mut rng),
                            pieces,
                        }
                    })
                    .collect();
                OrderKind::Blocks(blocks)
            }
        };
        EpochOrder { len, kind }
    }

    /// Number of positions (samples in the epoch).
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an epoch without samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sample at `position` (`position < len`; larger positions are
    /// returned unchanged).
    #[inline]
    pub fn get(&self, position: u64) -> u64 {
        if position >= self.len {
            return position;
        }
        match &self.kind {
            OrderKind::Sequential => position,
            OrderKind::Global(permutation) => permutation.apply(position),
            // `position < len == stored.len()`, which fits in usize.
            OrderKind::Stored(order) => order[position as usize],
            OrderKind::Blocks(blocks) => {
                // The blocks cover `0..len` from position 0, so the block
                // found starts at or before `position`.
                let b = blocks
                    .partition_point(|block| block.start <= position)
                    .saturating_sub(1);
                let block = &blocks[b];
                let j = block.permutation.apply(position - block.start);
                let piece = block
                    .pieces
                    .partition_point(|&(offset, _)| offset <= j)
                    .saturating_sub(1);
                let (offset, first) = block.pieces[piece];
                first + (j - offset)
            }
        }
    }

    /// The whole order, materialised (8 bytes per sample: for tests and
    /// inspection, not for the loader's hot path).
    pub fn to_vec(&self) -> Vec<u64> {
        (0..self.len).map(|p| self.get(p)).collect()
    }
}

/// The order of one epoch with the current algorithm, materialised: 8 bytes
/// per sample. The loader itself uses [`EpochOrder`], which stores nothing
/// per sample.
///
/// ```
/// use mosaicrs::loader::{epoch_order, SampleSpace, ShuffleMode};
/// let space = SampleSpace::new(&[], None).unwrap();
/// assert!(epoch_order(&space, 1, 0, ShuffleMode::Global).is_empty());
/// ```
pub fn epoch_order(space: &SampleSpace, seed: u64, epoch: u64, mode: ShuffleMode) -> Vec<u64> {
    EpochOrder::new(space, seed, epoch, mode, OrderAlgorithm::CURRENT).to_vec()
}

/// [`OrderAlgorithm::FisherYates`]: the stored permutation of the first
/// order algorithm, unchanged so that its states resume exactly.
fn fisher_yates_order(space: &SampleSpace, seed: u64, epoch: u64, mode: ShuffleMode) -> Vec<u64> {
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
