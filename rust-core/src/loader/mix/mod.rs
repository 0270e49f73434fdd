//! Mixing several datasets in one loader, in exact proportions.
//!
//! - [`Stream`]: one source (a dataset) with at most one [`Weighting`]
//!   (`weight`, `repeat` or `choose`, as MosaicML Streaming's `Stream`) and
//!   optionally its own shuffle mode.
//! - [`sample_counts`]: how many samples each source gives an epoch, and so
//!   the epoch's length ([`MixConfig::epoch_size`], [`Exhausted`]).
//! - [`MixedOrder`]: which source and row fill each position of the epoch, a
//!   pure function of (seed, epoch, block, sources) computed per position:
//!   every whole global batch holds each source's share to within one
//!   sample, and each source's samples follow the source's own permutation.
//!
//! [`Loader::mixed`](super::Loader::mixed) reads a mix; its
//! [`LoaderState`](super::LoaderState) is the single-source state plus the
//! block length, so it stays small, resumes exactly mid-epoch and on another
//! world size. `docs/LOADER.md` ("Mixing") states the rule and guarantees.

mod alloc;
mod order;
mod weights;

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

pub(crate) use order::MixCursor;
pub use order::{MixSource, MixedOrder};
pub use weights::{sample_counts, Exhausted, Weighting};

use super::order::ShuffleMode;
use super::space::SampleSpace;
use crate::{Error, Result};

/// One source of a mix: a dataset (anything a [`Loader`](super::Loader)
/// reads) and how much of each epoch it gives.
///
/// ```
/// use mosaicrs::loader::mix::{Stream, Weighting};
/// let s = Stream::new("web").weight(0.6);
/// assert_eq!(s.weighting, Weighting::Weight(0.6));
/// ```
#[derive(Debug, Clone)]
pub struct Stream<S> {
    pub source: S,
    pub weighting: Weighting,
    /// This source's shuffle mode (the loader's when `None`).
    pub shuffle: Option<ShuffleMode>,
}

impl<S> Stream<S> {
    /// Each row once per epoch (or a share by rows with an epoch size).
    pub fn new(source: S) -> Self {
        Stream {
            source,
            weighting: Weighting::Natural,
            shuffle: None,
        }
    }

    /// A relative share of the epoch.
    pub fn weight(mut self, weight: f64) -> Self {
        self.weighting = Weighting::Weight(weight);
        self
    }

    /// A multiple of the source's rows (fractional allowed).
    pub fn repeat(mut self, repeat: f64) -> Self {
        self.weighting = Weighting::Repeat(repeat);
        self
    }

    /// An absolute number of samples per epoch.
    pub fn choose(mut self, samples: u64) -> Self {
        self.weighting = Weighting::Choose(samples);
        self
    }

    /// This source's own shuffle mode.
    pub fn shuffle(mut self, shuffle: ShuffleMode) -> Self {
        self.shuffle = Some(shuffle);
        self
    }
}

/// The options of a mix that are not per source.
#[derive(Debug, Clone, Copy, Default)]
pub struct MixConfig {
    /// Samples per epoch with relative weights (default: all rows).
    pub epoch_size: Option<u64>,
    pub exhausted: Exhausted,
    /// Positions per allocation block (default: the global batch,
    /// `batch_size * world_size`). Recorded in the loader state, so that a
    /// run resumed on another world size keeps the same order.
    pub block: Option<u64>,
}

/// The sources of a mix: each source's sample space and shuffle mode with
/// the samples its weighting gives an epoch ([`sample_counts`]).
pub(crate) fn sources_of(
    spaces: Vec<Arc<SampleSpace>>,
    shuffles: Vec<ShuffleMode>,
    weightings: &[Weighting],
    mix: &MixConfig,
) -> Result<Vec<MixSource>> {
    let rows: Vec<u64> = spaces.iter().map(|s| s.len()).collect();
    let counts = sample_counts(weightings, &rows, mix.epoch_size, mix.exhausted)?;
    Ok(spaces
        .into_iter()
        .zip(shuffles)
        .zip(counts)
        .map(|((space, shuffle), count)| MixSource {
            space,
            shuffle,
            count,
        })
        .collect())
}

/// Samples each source of a mix gives one epoch (empty without a mix).
pub(crate) fn counts_of(sources: Option<&[MixSource]>) -> Vec<u64> {
    sources
        .map(|s| s.iter().map(|s| s.count).collect())
        .unwrap_or_default()
}

/// The block length of a mix: `mix.block`, or the global batch
/// `batch_size * world_size`.
pub(crate) fn block_of(mix: &MixConfig, batch_size: usize, world_size: usize) -> Result<u64> {
    match mix.block {
        Some(0) => Err(Error::InvalidArgument(
            "mix option block must be at least 1".into(),
        )),
        Some(b) => Ok(b),
        None => Ok((batch_size as u64).saturating_mul(world_size as u64)),
    }
}

/// The fingerprint of a mix: its sources' sample spaces, shuffle modes and
/// sample counts (so a state of another mix is refused).
pub(crate) fn fingerprint(sources: &[MixSource]) -> String {
    let mut hasher = Xxh3::new();
    hasher.update(b"mosaicrs-mix-v1");
    hasher.update(&(sources.len() as u64).to_le_bytes());
    for s in sources {
        hasher.update(s.space.fingerprint().as_bytes());
        hasher.update(&[0]);
        hasher.update(s.shuffle.to_string().as_bytes());
        hasher.update(&[0]);
        hasher.update(&s.count.to_le_bytes());
    }
    format!("mix-xxh3-64:{:016x}", hasher.digest())
}

#[cfg(test)]
mod tests;

/// What an epoch of a mix looks like in global batches of `block`
/// positions, for inspection (`mosaicrs mix --plan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MixPlan {
    /// Samples in the epoch.
    pub epoch_len: u64,
    /// Whole global batches (a partial one of `epoch_len mod block` follows).
    pub whole_batches: u64,
    /// Per source: the fewest and most samples it has in a whole batch.
    pub per_batch: Vec<(u64, u64)>,
    /// Per source: its samples in the partial last batch.
    pub tail: Vec<u64>,
}

impl MixPlan {
    /// The plan of sources giving `counts` samples each, in global batches
    /// of `block` positions.
    ///
    /// ```
    /// use mosaicrs::loader::mix::MixPlan;
    /// let plan = MixPlan::new(&[600, 300, 100], 16);
    /// assert_eq!((plan.epoch_len, plan.whole_batches), (1000, 62));
    /// assert_eq!(plan.per_batch, vec![(9, 10), (4, 5), (1, 2)]);
    /// assert_eq!(plan.tail.iter().sum::<u64>(), 8);
    /// ```
    pub fn new(counts: &[u64], block: u64) -> Self {
        let a = alloc::Allocation::new(counts, block, 0);
        let whole = a.whole_blocks();
        let tail = a.block_counts(whole).counts;
        let per_batch = counts
            .iter()
            .zip(&tail)
            .map(|(n, r)| {
                let m = n - r;
                match whole {
                    0 => (0, 0),
                    k => (m / k, m.div_ceil(k)),
                }
            })
            .collect();
        MixPlan {
            epoch_len: counts.iter().sum(),
            whole_batches: whole,
            per_batch,
            tail,
        }
    }
}
