//! Reading a dataset larger than the cache: the shards of each block of the
//! epoch order are fetched and pinned ahead of the batches that read them,
//! and unpinned once those batches are assembled.
//!
//! Per epoch, each block of the order (see [`epoch_blocks`]) becomes one or
//! more *jobs* for this rank: a block and the run of consecutive steps whose
//! samples fall in it (a block appears twice only when padding wraps to the
//! start of the order). A prefetch thread fetches the jobs in the order of
//! their first step, keeping the bytes it holds pinned within a budget; a
//! worker waits until the jobs of its step are fetched, gathers, assembles,
//! then counts the step done, and the last step of a job unpins its shards.
//!
//! A mix ([`Schedule::mixed`]) streams several sources through one cache:
//! its jobs are blocks of each streamed source's order (per pass, when a
//! source is read more than once an epoch), met in the order the mixed
//! order reads them (each global batch's share of a source is a run of the
//! source's own order), and share one budget.
//!
//! It never deadlocks when the budget holds the jobs of any single step:
//! the jobs pinned while the next one waits all start at or before it, and
//! every step before it can finish, so what stays pinned is what that one
//! step needs with it.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::mix::MixedOrder;
use super::order::{epoch_blocks, OrderBlock, ShuffleMode};
use super::plan::EpochPlan;
use super::space::SampleSpace;
use crate::reader::StreamedDataset;
use crate::{Error, Result};

/// The smallest `cache_limit` that streams `dataset` in `mode`:
/// `(1 + prefetch_blocks) × shards per block × largest shard` (a block
/// being read, the next ones fetched), and the whole dataset for a global
/// shuffle.
pub fn cache_needed(dataset: &StreamedDataset, mode: ShuffleMode) -> u64 {
    let index = dataset.index();
    let per_block = match mode {
        ShuffleMode::Global => return index.total_bytes,
        ShuffleMode::Sequential => 1,
        ShuffleMode::BlockLocal { shards_per_block } => u64::from(shards_per_block.max(1)),
    };
    let largest = index.shards.iter().map(|s| s.bytes).max().unwrap_or(0);
    let blocks = 1 + u64::from(dataset.cache_options().prefetch_blocks);
    (blocks * per_block * largest).min(index.total_bytes)
}

/// Refuses a shuffle of `dataset` that its cache is too small for, naming
/// the size needed ([`Error::CacheTooSmall`]).
pub fn check_cache_for(dataset: &StreamedDataset, mode: ShuffleMode) -> Result<()> {
    let needed = cache_needed(dataset, mode);
    let cache = dataset.cache_options();
    if needed <= cache.cache_limit {
        return Ok(());
    }
    let reason = match mode {
        ShuffleMode::Global => format!(
            "a global shuffle reads the whole dataset ({needed} bytes) in random order, so \
             it must all be in the cache; use block-local:K shuffle to stream it"
        ),
        _ => format!(
            "shuffle {mode} streams the dataset a block at a time and needs room for \
             {} blocks (the one read and {} fetched ahead) of its largest shards",
            1 + cache.prefetch_blocks,
            cache.prefetch_blocks
        ),
    };
    Err(Error::CacheTooSmall {
        location: dataset.url().to_string(),
        limit: cache.cache_limit,
        needed,
        reason,
    })
}

/// The smallest `cache_limit` that streams the streamed sources of a mix
/// together through one cache: the sum of what each needs alone
/// ([`cache_needed`] with its shuffle mode), plus `held`, the bytes of the
/// mix's other remote sources, cached whole in the same cache and pinned
/// while the loader reads them.
pub fn mix_cache_needed(streamed: &[(&StreamedDataset, ShuffleMode)], held: u64) -> u64 {
    streamed
        .iter()
        .map(|&(dataset, mode)| cache_needed(dataset, mode))
        .fold(held, u64::saturating_add)
}

/// Refuses a mix whose streamed sources (with `held` bytes of its other
/// sources cached whole) do not fit the cache together, naming every
/// streamed source and the size needed ([`Error::CacheTooSmall`]).
pub(crate) fn check_mix_cache(
    streamed: &[(&StreamedDataset, ShuffleMode)],
    held: u64,
) -> Result<()> {
    let Some(&(first, _)) = streamed.first() else {
        return Ok(());
    };
    let needed = mix_cache_needed(streamed, held);
    let limit = first.cache_options().cache_limit;
    if needed <= limit {
        return Ok(());
    }
    let shares: Vec<String> = streamed
        .iter()
        .map(|&(dataset, mode)| {
            format!(
                "{} bytes for {} ({mode})",
                cache_needed(dataset, mode),
                dataset.url()
            )
        })
        .collect();
    let held = if held > 0 {
        format!(", plus {held} bytes of the sources cached whole")
    } else {
        String::new()
    };
    Err(Error::CacheTooSmall {
        location: streamed
            .iter()
            .map(|(d, _)| d.url())
            .collect::<Vec<_>>()
            .join(", "),
        limit,
        needed,
        reason: format!(
            "a mix streams its sources through one cache, each with room for {} blocks \
             (the one read and {} fetched ahead) of its largest shards: {}{held}",
            1 + first.cache_options().prefetch_blocks,
            first.cache_options().prefetch_blocks,
            shares.join(", ")
        ),
    })
}

/// A block of shards of one streamed dataset: (dataset, pass, block of
/// that pass's order).
type BlockKey = (usize, u64, usize);

/// Which blocks of shards the positions of an epoch read.
trait StepBlocks {
    /// Adds the blocks that `positions` (a range of the epoch order) read.
    fn touch(&mut self, positions: std::ops::Range<u64>, out: &mut Vec<BlockKey>);
    /// The shards of block `key` (one that [`touch`](Self::touch) gave).
    fn shards(&self, key: BlockKey) -> &[usize];
}

/// One streamed dataset: its epoch order's blocks.
struct SingleBlocks {
    blocks: Vec<OrderBlock>,
}

impl StepBlocks for SingleBlocks {
    fn touch(&mut self, positions: std::ops::Range<u64>, out: &mut Vec<BlockKey>) {
        if positions.is_empty() {
            return;
        }
        let block_of = |position: u64| -> usize {
            self.blocks
                .partition_point(|b: &OrderBlock| b.positions.end <= position)
        };
        out.extend((block_of(positions.start)..=block_of(positions.end - 1)).map(|b| (0, 0, b)));
    }

    fn shards(&self, key: BlockKey) -> &[usize] {
        self.blocks.get(key.2).map_or(&[], |b| &b.shards)
    }
}

/// The streamed sources of a mix: each mix block's samples of a source are
/// a range of that source's epoch samples, which lie in blocks of its passes.
struct MixBlocks<'a> {
    order: &'a MixedOrder,
    /// The dataset number of each streamed source.
    dataset_of: Vec<Option<usize>>,
    /// The source of each dataset number.
    source_of: Vec<usize>,
    /// The blocks of each (source, pass) met so far.
    passes: HashMap<(usize, u64), Vec<OrderBlock>>,
}

impl StepBlocks for MixBlocks<'_> {
    fn touch(&mut self, positions: std::ops::Range<u64>, out: &mut Vec<BlockKey>) {
        if positions.is_empty() {
            return;
        }
        // Every rank holds the shards of the whole mix block (the global
        // batch) of each source: the ranks read them together.
        let block = self.order.block().max(1);
        for k in positions.start / block..=(positions.end - 1) / block {
            for (i, u) in self.order.block_samples(k).into_iter().enumerate() {
                let Some(j) = self.dataset_of.get(i).copied().flatten() else {
                    continue;
                };
                if u.is_empty() {
                    continue;
                }
                let rows = self.order.sources()[i].space.len().max(1);
                for pass in u.start / rows..=(u.end - 1) / rows {
                    let lo = u.start.max(pass * rows) - pass * rows;
                    let hi = u.end.min((pass + 1) * rows) - pass * rows;
                    let order = self.order;
                    let blocks = self
                        .passes
                        .entry((i, pass))
                        .or_insert_with(|| order.pass_blocks(i, pass));
                    let first = blocks.partition_point(|b| b.positions.end <= lo);
                    let last = blocks.partition_point(|b| b.positions.end < hi);
                    out.extend((first..=last).map(|b| (j, pass, b)));
                }
            }
        }
    }

    fn shards(&self, (j, pass, b): BlockKey) -> &[usize] {
        self.source_of
            .get(j)
            .and_then(|&i| self.passes.get(&(i, pass)))
            .and_then(|blocks| blocks.get(b))
            .map_or(&[], |b| &b.shards)
    }
}

/// One block of shards needed by a run of this rank's steps.
struct Job {
    /// The dataset (its number in [`Schedule::datasets`]).
    dataset: usize,
    shards: Vec<usize>,
    bytes: u64,
}

/// What the prefetch thread and the workers share for one epoch.
pub(crate) struct Schedule {
    datasets: Vec<Arc<StreamedDataset>>,
    jobs: Vec<Job>,
    /// Jobs of step `s`: `step_jobs[step_starts[s]..step_starts[s + 1]]`.
    step_starts: Vec<usize>,
    step_jobs: Vec<u32>,
    /// Most bytes the prefetch thread keeps pinned.
    budget: u64,
    state: Mutex<Progress>,
    changed: Condvar,
}

#[derive(Default)]
struct Progress {
    fetched: Vec<bool>,
    released: Vec<bool>,
    /// Steps of each job not yet done.
    remaining: Vec<u64>,
    pinned_bytes: u64,
    /// The prefetch failure, reported to every waiting worker.
    failed: Option<String>,
    cancelled: bool,
}

impl Schedule {
    /// Plans the jobs of `rank` for `plan`, or refuses a cache too small
    /// for the largest set of blocks one step reads.
    pub(crate) fn new(
        dataset: Arc<StreamedDataset>,
        space: &SampleSpace,
        order_len: u64,
        plan: &EpochPlan,
        rank: u64,
        seed: u64,
        mode: ShuffleMode,
    ) -> Result<Self> {
        let blocks = epoch_blocks(space, seed, plan.epoch, mode);
        debug_assert_eq!(blocks.last().map_or(0, |b| b.positions.end), order_len);
        Self::plan(vec![dataset], SingleBlocks { blocks }, plan, rank, 0)
    }

    /// Plans the jobs of `rank` for `plan` over a mix's `order`, whose
    /// sources `streamed` (source number, dataset) stream through one
    /// cache that also holds `held` bytes of its other sources; a job is a
    /// block of one source's order, fetched ahead in the order the mix
    /// reads it.
    pub(crate) fn mixed(
        order: &MixedOrder,
        streamed: &[(usize, Arc<StreamedDataset>)],
        plan: &EpochPlan,
        rank: u64,
        held: u64,
    ) -> Result<Self> {
        let mut dataset_of = vec![None; order.sources().len()];
        for (j, (i, _)) in streamed.iter().enumerate() {
            if let Some(slot) = dataset_of.get_mut(*i) {
                *slot = Some(j);
            }
        }
        let blocks = MixBlocks {
            order,
            dataset_of,
            source_of: streamed.iter().map(|(i, _)| *i).collect(),
            passes: HashMap::new(),
        };
        let datasets = streamed.iter().map(|(_, d)| Arc::clone(d)).collect();
        Self::plan(datasets, blocks, plan, rank, held)
    }

    fn plan(
        datasets: Vec<Arc<StreamedDataset>>,
        mut blocks: impl StepBlocks,
        plan: &EpochPlan,
        rank: u64,
        held: u64,
    ) -> Result<Self> {
        let mut jobs: Vec<Job> = Vec::new();
        let mut last_step: Vec<u64> = Vec::new();
        let mut remaining: Vec<u64> = Vec::new();
        // The open job of each block.
        let mut open: HashMap<BlockKey, usize> = HashMap::new();
        let mut step_starts = Vec::with_capacity(plan.steps as usize + 1);
        let mut step_jobs: Vec<u32> = Vec::new();
        let mut touched: Vec<BlockKey> = Vec::new();
        for step in 0..plan.steps {
            step_starts.push(step_jobs.len());
            let positions = plan.positions(rank, step);
            touched.clear();
            blocks.touch(
                positions.start..positions.end.min(plan.samples),
                &mut touched,
            );
            for p in positions.start.max(plan.samples)..positions.end {
                let at = plan.resolve(p);
                blocks.touch(at..at + 1, &mut touched);
            }
            touched.sort_unstable();
            touched.dedup();
            for &key in &touched {
                let job = match open.get(&key) {
                    Some(&j) if last_step[j] + 1 >= step => j,
                    _ => {
                        let shards = blocks.shards(key).to_vec();
                        let index = datasets
                            .get(key.0)
                            .ok_or_else(|| Error::Internal("a block of no dataset".into()))?
                            .index();
                        let bytes = shards.iter().map(|&s| index.shards[s].bytes).sum();
                        jobs.push(Job {
                            dataset: key.0,
                            shards,
                            bytes,
                        });
                        last_step.push(step);
                        remaining.push(0);
                        open.insert(key, jobs.len() - 1);
                        jobs.len() - 1
                    }
                };
                last_step[job] = step;
                remaining[job] += 1;
                step_jobs.push(job as u32);
            }
        }
        step_starts.push(step_jobs.len());
        let Some(cache) = datasets.first().map(|d| d.cache_options().clone()) else {
            return Err(Error::Internal("a streamed epoch has no dataset".into()));
        };
        let room = cache.cache_limit.saturating_sub(held);
        let (needed, worst) = (0..plan.steps as usize)
            .map(|s| {
                let bytes = step_jobs[step_starts[s]..step_starts[s + 1]]
                    .iter()
                    .map(|&j| jobs[j as usize].bytes)
                    .sum::<u64>();
                (bytes, s)
            })
            .max()
            .unwrap_or((0, 0));
        if needed > room {
            let location = if datasets.len() == 1 {
                cache.cache_dir.display().to_string()
            } else {
                let mut urls: Vec<&str> = step_jobs[step_starts[worst]..step_starts[worst + 1]]
                    .iter()
                    .map(|&j| datasets[jobs[j as usize].dataset].url())
                    .collect();
                urls.dedup();
                urls.join(", ")
            };
            return Err(Error::CacheTooSmall {
                location,
                limit: cache.cache_limit,
                needed: needed.saturating_add(held),
                reason: format!(
                    "a batch of {} samples spans blocks of shards that together take \
                     {needed} bytes",
                    plan.batch_size
                ),
            });
        }
        // Room to fetch each dataset's blocks ahead of the one being read.
        let mut largest = vec![0u64; datasets.len()];
        for job in &jobs {
            largest[job.dataset] = largest[job.dataset].max(job.bytes);
        }
        let ahead = (1 + u64::from(cache.prefetch_blocks))
            .saturating_mul(largest.iter().fold(0u64, |a, &b| a.saturating_add(b)));
        let budget = needed.max(ahead).min(room);
        let n = jobs.len();
        Ok(Schedule {
            datasets,
            jobs,
            step_starts,
            step_jobs,
            budget,
            state: Mutex::new(Progress {
                fetched: vec![false; n],
                released: vec![false; n],
                remaining,
                ..Progress::default()
            }),
            changed: Condvar::new(),
        })
    }

    fn progress(&self) -> MutexGuard<'_, Progress> {
        // Every update is a plain assignment, so a poisoned lock is consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn jobs_of(&self, step: u64) -> &[u32] {
        let s = step as usize;
        match (self.step_starts.get(s), self.step_starts.get(s + 1)) {
            (Some(&a), Some(&b)) => &self.step_jobs[a..b],
            _ => &[],
        }
    }

    /// The prefetch thread: fetches every job in order within the budget.
    pub(crate) fn prefetch(&self) {
        for (j, job) in self.jobs.iter().enumerate() {
            {
                let mut progress = self.progress();
                while !progress.cancelled
                    && progress.pinned_bytes > 0
                    && progress.pinned_bytes + job.bytes > self.budget
                {
                    progress = self
                        .changed
                        .wait(progress)
                        .unwrap_or_else(|p| p.into_inner());
                }
                if progress.cancelled {
                    return;
                }
                progress.pinned_bytes += job.bytes;
            }
            let dataset = &self.datasets[job.dataset];
            let mut held = 0;
            let result = job.shards.iter().try_for_each(|&s| {
                dataset.acquire(s)?;
                held += 1;
                Ok::<(), Error>(())
            });
            let mut progress = self.progress();
            match result {
                Ok(()) => progress.fetched[j] = true,
                Err(e) => {
                    for &s in &job.shards[..held] {
                        dataset.release(s);
                    }
                    progress.pinned_bytes -= job.bytes;
                    progress.failed = Some(e.to_string());
                    self.changed.notify_all();
                    return;
                }
            }
            self.changed.notify_all();
        }
    }

    /// Blocks until every shard `step` reads is fetched.
    pub(crate) fn wait(&self, step: u64) -> Result<()> {
        let jobs = self.jobs_of(step);
        let mut progress = self.progress();
        loop {
            if let Some(message) = &progress.failed {
                return Err(Error::Storage {
                    location: match self.datasets.as_slice() {
                        [one] => one.cache_folder().display().to_string(),
                        _ => self.datasets[0]
                            .cache_options()
                            .cache_dir
                            .display()
                            .to_string(),
                    },
                    message: format!("fetching the shards of step {step} failed: {message}"),
                });
            }
            if progress.cancelled {
                return Err(Error::Internal("the epoch was stopped".into()));
            }
            if jobs.iter().all(|&j| progress.fetched[j as usize]) {
                return Ok(());
            }
            progress = self
                .changed
                .wait(progress)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Counts `step` done; the last step of a job unpins its shards.
    pub(crate) fn done(&self, step: u64) {
        let mut progress = self.progress();
        for &j in self.jobs_of(step) {
            let j = j as usize;
            progress.remaining[j] = progress.remaining[j].saturating_sub(1);
            if progress.remaining[j] == 0 && progress.fetched[j] && !progress.released[j] {
                self.release_job(&mut progress, j);
            }
        }
        self.changed.notify_all();
    }

    fn release_job(&self, progress: &mut Progress, j: usize) {
        let dataset = &self.datasets[self.jobs[j].dataset];
        for &s in &self.jobs[j].shards {
            dataset.release(s);
        }
        progress.released[j] = true;
        progress.pinned_bytes -= self.jobs[j].bytes;
    }

    /// Stops the prefetch thread and the waiting workers.
    pub(crate) fn cancel(&self) {
        self.progress().cancelled = true;
        self.changed.notify_all();
    }

    /// Unpins whatever is still pinned (after the threads have stopped).
    pub(crate) fn release_all(&self) {
        let mut progress = self.progress();
        for j in 0..self.jobs.len() {
            if progress.fetched[j] && !progress.released[j] {
                self.release_job(&mut progress, j);
            }
        }
    }
}
