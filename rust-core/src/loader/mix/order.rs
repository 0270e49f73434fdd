//! The mixed order of one epoch: position → (source, sample), computed per
//! position from (seed, epoch, block) and each source's own [`EpochOrder`].

use std::sync::Arc;

use super::super::order::{epoch_blocks, EpochOrder, OrderAlgorithm, OrderBlock, ShuffleMode};
use super::super::rng::{mix64, SplitMix64};
use super::super::space::SampleSpace;
use super::alloc::{golden_stride, Allocation, BlockCounts};

/// Passes (fresh permutations) of a source built when the order is made;
/// later ones (a source upsampled more than this) are built when read.
const BUILT_PASSES: u64 = 64;

/// One source of a mix, as the order needs it.
#[derive(Debug, Clone)]
pub struct MixSource {
    pub space: Arc<SampleSpace>,
    pub shuffle: ShuffleMode,
    /// Samples this source gives the epoch.
    pub count: u64,
}

/// The global order of one epoch of a mix, a pure function of
/// (seed, epoch, block, sources): which source fills each position, and
/// which of that source's samples.
///
/// Position `p` lies in block `k = p / block`; the block's per-source counts
/// come from the allocation (each whole block within one sample of every
/// source's share; see `docs/LOADER.md`, "Mixing"). Inside the block, slot
/// `s` reads `t = (g·s + o_k) mod len` of the block's sources laid end to
/// end (`g` coprime to the block length, `o_k` drawn per block), so each
/// source's samples are spread over the block and over every rank's slice of
/// it. The `j`-th sample of source `i` in block `k` is the source's
/// `before_i(k) + j`-th sample of the epoch: pass `u / rows` (a fresh
/// permutation of the source per pass, the last one partial: a random
/// subset), entry `u mod rows` of that pass's [`EpochOrder`].
#[derive(Debug, Clone)]
pub struct MixedOrder {
    sources: Vec<MixSource>,
    alloc: Allocation,
    seed: u64,
    epoch: u64,
    algorithm: OrderAlgorithm,
    key: u64,
    /// The first passes of each source.
    passes: Vec<Vec<EpochOrder>>,
    len: u64,
}

impl MixedOrder {
    /// The order of `epoch` in blocks of `block` positions.
    pub fn new(
        sources: Vec<MixSource>,
        seed: u64,
        epoch: u64,
        block: u64,
        algorithm: OrderAlgorithm,
    ) -> Self {
        let counts: Vec<u64> = sources.iter().map(|s| s.count).collect();
        let key = SplitMix64::from_words(&[seed, epoch, block, 0x006d_6978]).next_u64();
        let alloc = Allocation::new(&counts, block, key);
        let passes = sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let n = s.count.div_ceil(s.space.len().max(1)).min(BUILT_PASSES);
                (0..n)
                    .map(|pass| pass_order(s, seed, epoch, i, pass, algorithm))
                    .collect()
            })
            .collect();
        MixedOrder {
            len: counts.iter().sum(),
            sources,
            alloc,
            seed,
            epoch,
            algorithm,
            key,
            passes,
        }
    }

    /// Positions in the epoch.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for an epoch without samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The block length the allocation uses.
    pub fn block(&self) -> u64 {
        self.alloc.block()
    }

    /// Whole blocks in the epoch (a partial one may follow).
    pub fn whole_blocks(&self) -> u64 {
        self.alloc.whole_blocks()
    }

    /// The sources.
    pub fn sources(&self) -> &[MixSource] {
        &self.sources
    }

    /// `(source, dataset row)` at `position` (`position < len`; past the
    /// end the result means nothing).
    pub fn get(&self, position: u64) -> (usize, u64) {
        let mut out = (0, position);
        self.each_pick([position], &mut MixCursor::default(), |i, row| {
            out = (i as usize, row)
        });
        out
    }

    /// `(source, dataset row)` of each position of `positions` (each below
    /// `len`), computing each block's counts once. A position that follows
    /// the one before it in the same block (a batch reads runs of them)
    /// steps to its slot with an addition, not a division.
    pub fn picks(&self, positions: impl IntoIterator<Item = u64>) -> Vec<(usize, u64)> {
        let positions = positions.into_iter();
        let mut out = Vec::with_capacity(positions.size_hint().0);
        self.each_pick(positions, &mut MixCursor::default(), |i, row| {
            out.push((i as usize, row))
        });
        out
    }

    /// [`picks`](Self::picks) appended to `sources` and `rows`, starting
    /// from the block `cursor` read last (a worker reads blocks in order:
    /// the counts of its next block are a few additions away).
    pub(crate) fn picks_into(
        &self,
        positions: impl IntoIterator<Item = u64>,
        cursor: &mut MixCursor,
        sources: &mut Vec<u32>,
        rows: &mut Vec<u64>,
    ) {
        self.each_pick(positions, cursor, |i, row| {
            sources.push(i);
            rows.push(row);
        });
    }

    /// Calls `f(source, dataset row)` for each position, in order.
    fn each_pick(
        &self,
        positions: impl IntoIterator<Item = u64>,
        cursor: &mut MixCursor,
        mut f: impl FnMut(u32, u64),
    ) {
        let block = self.alloc.block();
        // Per source: its rows, its first pass and its sample space, looked
        // up once per call: most samples lie in the first pass, whose row
        // then costs no bounds check, division or pass lookup.
        let first: Vec<(u64, Option<&EpochOrder>, &SampleSpace)> = self
            .sources
            .iter()
            .zip(&self.passes)
            .map(|(s, passes)| (s.space.len(), passes.first(), &*s.space))
            .collect();
        let mut view = cursor.view.take();
        // The end of the current block and the last position read with its
        // line value `t`.
        let mut end = 0;
        let mut last: Option<(u64, u64)> = None;
        for p in positions {
            let (v, t) = match (&view, last) {
                (Some(v), Some((q, t))) if q.checked_add(1) == Some(p) && p < end => (v, v.next(t)),
                _ => {
                    let k = p / block;
                    end = k.saturating_add(1).saturating_mul(block);
                    let v = self.view_at(&mut view, k);
                    (v, v.line(p - k * block))
                }
            };
            last = Some((p, t));
            match v.sample_of(t) {
                // Fewer than 2^32 sources: they come from a Vec of tables.
                Some((i, u)) => {
                    let row = match first.get(i) {
                        Some(&(rows, Some(order), space)) if u < rows => space.row(order.get(u)),
                        _ => self.sample(i, u),
                    };
                    f(i as u32, row)
                }
                // Past the end of the epoch: no source to read.
                None => f(0, t),
            }
        }
        cursor.view = view;
    }

    /// The view of block `k`, moved there from the block `view` holds.
    fn view_at<'a>(&self, view: &'a mut Option<BlockView>, k: u64) -> &'a BlockView {
        let v = match view.take() {
            Some(v) if v.k == k => v,
            Some(mut v) => {
                self.alloc.advance(&mut v.counts, v.k, k);
                self.refresh(&mut v, k);
                v
            }
            None => {
                let mut v = BlockView {
                    k,
                    len: 0,
                    stride: 0,
                    offset: 0,
                    counts: self.alloc.block_counts(k),
                    ends: Vec::new(),
                    shift: Vec::new(),
                };
                self.refresh(&mut v, k);
                v
            }
        };
        view.insert(v)
    }

    /// Sets `v`'s slot permutation and runs from its counts (of block `k`).
    fn refresh(&self, v: &mut BlockView, k: u64) {
        let len = v.counts.len.max(1);
        if len != v.len {
            v.stride = golden_stride(v.counts.len);
        }
        v.k = k;
        v.len = len;
        v.offset = mix64(self.key ^ mix64(k.wrapping_add(1))) % len;
        v.ends.clear();
        v.shift.clear();
        let mut at = 0u64;
        for (&c, &b) in v.counts.counts.iter().zip(&v.counts.before) {
            // Source `i` fills line values `at..at + c`, its samples
            // `b..b + c` of the epoch.
            v.shift.push(b.wrapping_sub(at));
            at += c;
            v.ends.push(at);
        }
    }

    /// Source `i`'s samples of the epoch as whole passes over its rows and
    /// the dataset rows (sorted) of its partial last pass: `(passes, rows)`.
    /// The sum of a per-row quantity over the source's share is `passes`
    /// times its sum over all rows plus its sum over `rows`.
    pub fn source_share(&self, i: usize) -> (u64, Vec<u64>) {
        let Some(s) = self.sources.get(i) else {
            return (0, Vec::new());
        };
        let rows = s.space.len();
        if rows == 0 {
            return (0, Vec::new());
        }
        let (passes, rest) = (s.count / rows, s.count % rows);
        if rest == 0 {
            return (passes, Vec::new());
        }
        let built;
        let order = match self.passes[i].get(passes as usize) {
            Some(order) => order,
            None => {
                built = pass_order(s, self.seed, self.epoch, i, passes, self.algorithm);
                &built
            }
        };
        let mut picked: Vec<u64> = (0..rest).map(|u| s.space.row(order.get(u))).collect();
        picked.sort_unstable();
        (passes, picked)
    }

    /// Samples of each source in block `k` (for tests and inspection).
    pub fn block_counts(&self, k: u64) -> Vec<u64> {
        self.alloc.block_counts(k).counts
    }

    /// Per source, the range of its epoch samples `u` that block `k` reads
    /// (empty when it has none there): what a streamed source must hold
    /// while the block is read.
    pub(crate) fn block_samples(&self, k: u64) -> Vec<std::ops::Range<u64>> {
        let BlockCounts { counts, before, .. } = self.alloc.block_counts(k);
        before
            .iter()
            .zip(&counts)
            .map(|(&b, &c)| b..b + c)
            .collect()
    }

    /// The blocks of source `i`'s order in pass `pass` (see
    /// [`epoch_blocks`]): which shards its samples `pass·rows + q` come
    /// from, `q` being a position of the pass.
    pub(crate) fn pass_blocks(&self, i: usize, pass: u64) -> Vec<OrderBlock> {
        let Some(s) = self.sources.get(i) else {
            return Vec::new();
        };
        let (seed, key) = pass_seed(self.seed, self.epoch, i, pass);
        epoch_blocks(&s.space, seed, key, s.shuffle)
    }

    /// Dataset row of source `i`'s `u`-th sample of the epoch.
    fn sample(&self, i: usize, u: u64) -> u64 {
        let s = &self.sources[i];
        let rows = s.space.len().max(1);
        // Most sources give an epoch at most their rows: no division.
        let (pass, at) = if u < rows {
            (0, u)
        } else {
            (u / rows, u % rows)
        };
        let sample = match self.passes[i].get(pass as usize) {
            Some(order) => order.get(at),
            None => pass_order(s, self.seed, self.epoch, i, pass, self.algorithm).get(at),
        };
        s.space.row(sample)
    }
}

/// Where a reader of a [`MixedOrder`] is: the block it read last, whose
/// counts the next block's are computed from.
#[derive(Debug, Clone, Default)]
pub(crate) struct MixCursor {
    view: Option<BlockView>,
}

/// One block's counts with its slot permutation.
#[derive(Debug, Clone)]
struct BlockView {
    /// The block's number.
    k: u64,
    len: u64,
    stride: u64,
    offset: u64,
    counts: BlockCounts,
    /// Cumulative counts: source `i` fills line values
    /// `ends[i] - counts[i]..ends[i]`.
    ends: Vec<u64>,
    /// Per source, its epoch sample at line value `t` is `t + shift[i]`
    /// (wrapping).
    shift: Vec<u64>,
}

impl BlockView {
    /// `(source, epoch sample of that source)` at line value `t`.
    #[inline]
    fn sample_of(&self, t: u64) -> Option<(usize, u64)> {
        // The source is the number of runs that end at or before `t`:
        // counted without branches for a few sources (which one comes next
        // is random), searched for many.
        let i = if self.ends.len() <= 8 {
            self.ends.iter().map(|&end| usize::from(end <= t)).sum()
        } else {
            self.ends.partition_point(|&end| end <= t)
        };
        // The runs cover `0..len`, so `t` is in one of them unless the
        // position is past the epoch.
        let shift = self.shift.get(i)?;
        Some((i, t.wrapping_add(*shift)))
    }

    /// The line value `t = (stride·slot + offset) mod len` of `slot`.
    fn line(&self, slot: u64) -> u64 {
        match self
            .stride
            .checked_mul(slot)
            .and_then(|x| x.checked_add(self.offset))
        {
            Some(x) => x % self.len,
            // u128: stride, slot and offset are below the block length, a u64.
            None => {
                ((u128::from(self.stride) * u128::from(slot) + u128::from(self.offset))
                    % u128::from(self.len)) as u64
            }
        }
    }

    /// The line value of the slot after the one of `t` (`t < len`).
    fn next(&self, t: u64) -> u64 {
        // `stride < len` (or both 0 and 1), so one subtraction wraps it,
        // and `len - stride` keeps the sum from overflowing.
        let room = self.len - self.stride;
        if t >= room {
            t - room
        } else {
            t + self.stride
        }
    }
}

/// Source `i`'s order of pass `pass` of `epoch`: pass 0 is the source's own
/// epoch order for this seed; each further pass a fresh permutation.
fn pass_order(
    s: &MixSource,
    seed: u64,
    epoch: u64,
    i: usize,
    pass: u64,
    algorithm: OrderAlgorithm,
) -> EpochOrder {
    let (source_seed, key) = pass_seed(seed, epoch, i, pass);
    EpochOrder::new(&s.space, source_seed, key, s.shuffle, algorithm)
}

/// The seed and epoch key of source `i`'s pass `pass`: the source's own
/// seed, and the epoch for pass 0 (a fresh key for each further pass).
fn pass_seed(seed: u64, epoch: u64, i: usize, pass: u64) -> (u64, u64) {
    let source_seed = SplitMix64::from_words(&[seed, i as u64]).next_u64();
    let key = if pass == 0 {
        epoch
    } else {
        SplitMix64::from_words(&[epoch, pass]).next_u64()
    };
    (source_seed, key)
}
