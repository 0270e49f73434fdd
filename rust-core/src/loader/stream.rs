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
//! It never deadlocks when the budget holds the jobs of any single step:
//! the jobs pinned while the next one waits all start at or before it, and
//! every step before it can finish, so what stays pinned is what that one
//! step needs with it.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};

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

/// One block of shards needed by a run of this rank's steps.
struct Job {
    shards: Vec<usize>,
    bytes: u64,
}

/// What the prefetch thread and the workers share for one epoch.
pub(crate) struct Schedule {
    dataset: Arc<StreamedDataset>,
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
        let block_of = |position: u64| -> usize {
            blocks.partition_point(|b: &OrderBlock| b.positions.end <= position)
        };
        let index = dataset.index();
        let mut jobs: Vec<Job> = Vec::new();
        let mut job_block: Vec<usize> = Vec::new();
        let mut last_step: Vec<u64> = Vec::new();
        let mut remaining: Vec<u64> = Vec::new();
        // The open job of each block: (job, last step).
        let mut open: Vec<Option<usize>> = vec![None; blocks.len()];
        let mut step_starts = Vec::with_capacity(plan.steps as usize + 1);
        let mut step_jobs: Vec<u32> = Vec::new();
        let mut touched: Vec<usize> = Vec::new();
        for step in 0..plan.steps {
            step_starts.push(step_jobs.len());
            let positions = plan.positions(rank, step);
            touched.clear();
            let real_end = positions.end.min(plan.samples);
            if positions.start < real_end {
                touched.extend(block_of(positions.start)..=block_of(real_end - 1));
            }
            for p in positions.start.max(plan.samples)..positions.end {
                touched.push(block_of(plan.resolve(p)));
            }
            touched.sort_unstable();
            touched.dedup();
            for &b in &touched {
                let job = match open[b] {
                    Some(j) if last_step[j] + 1 >= step => j,
                    _ => {
                        let shards = blocks[b].shards.clone();
                        let bytes = shards.iter().map(|&s| index.shards[s].bytes).sum();
                        jobs.push(Job { shards, bytes });
                        job_block.push(b);
                        last_step.push(step);
                        remaining.push(0);
                        open[b] = Some(jobs.len() - 1);
                        jobs.len() - 1
                    }
                };
                last_step[job] = step;
                remaining[job] += 1;
                step_jobs.push(job as u32);
            }
        }
        step_starts.push(step_jobs.len());
        let cache = dataset.cache_options();
        let needed = (0..plan.steps as usize)
            .map(|s| {
                step_jobs[step_starts[s]..step_starts[s + 1]]
                    .iter()
                    .map(|&j| jobs[j as usize].bytes)
                    .sum::<u64>()
            })
            .max()
            .unwrap_or(0);
        if needed > cache.cache_limit {
            return Err(Error::CacheTooSmall {
                location: cache.cache_dir.display().to_string(),
                limit: cache.cache_limit,
                needed,
                reason: format!(
                    "a batch of {} samples spans blocks of shards that together take \
                     {needed} bytes",
                    plan.batch_size
                ),
            });
        }
        let largest = jobs.iter().map(|j| j.bytes).max().unwrap_or(0);
        let ahead = (1 + u64::from(cache.prefetch_blocks)).saturating_mul(largest);
        let budget = needed.max(ahead).min(cache.cache_limit);
        let n = jobs.len();
        Ok(Schedule {
            dataset,
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
            let mut held = 0;
            let result = job.shards.iter().try_for_each(|&s| {
                self.dataset.acquire(s)?;
                held += 1;
                Ok::<(), Error>(())
            });
            let mut progress = self.progress();
            match result {
                Ok(()) => progress.fetched[j] = true,
                Err(e) => {
                    for &s in &job.shards[..held] {
                        self.dataset.release(s);
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
                    location: self.dataset.cache_folder().display().to_string(),
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
        for &s in &self.jobs[j].shards {
            self.dataset.release(s);
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
