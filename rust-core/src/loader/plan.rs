//! Partitioning an epoch's order across ranks, and the tail policy.
//!
//! Step `s` of the epoch takes the next `world_size * batch_size` positions
//! of the global order (a "global batch"); rank `r` gets the `r`-th slice of
//! `batch_size` positions. Every rank therefore runs the same number of steps
//! (no rank waits forever in the last collective), and the position reached
//! after `k` steps is `start + k * world_size * batch_size` whatever the world
//! size, which is what makes resuming on another world size exact.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What to do with the samples that do not fill a last global batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TailPolicy {
    /// Skip them this epoch (a new shuffle next epoch puts other samples last).
    #[default]
    DropLast,
    /// Fill the last global batch by repeating samples from the start of the
    /// order; every sample is seen at least once, a few twice.
    Pad,
}

impl std::str::FromStr for TailPolicy {
    type Err = Error;

    /// Parses `drop` / `drop-last` or `pad`.
    ///
    /// ```
    /// use mosaicrs::loader::TailPolicy;
    /// assert_eq!("pad".parse::<TailPolicy>().unwrap(), TailPolicy::Pad);
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "drop" | "drop-last" | "drop_last" => Ok(TailPolicy::DropLast),
            "pad" => Ok(TailPolicy::Pad),
            _ => Err(Error::InvalidArgument(format!(
                "tail policy {s:?} is not supported; use drop-last or pad"
            ))),
        }
    }
}

/// The rest of one epoch as every rank will run it, with what the tail policy
/// did. Never silent: `dropped` and `padded` are the exact sample counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochPlan {
    pub epoch: u64,
    /// Samples in the epoch order.
    pub samples: u64,
    /// Position in the order where this plan starts (non-zero after a resume).
    pub start: u64,
    pub batch_size: u64,
    pub world_size: u64,
    /// Steps (batches per rank) from `start` to the end of the epoch.
    pub steps: u64,
    /// Samples at the end of the order that no rank will see this epoch.
    pub dropped: u64,
    /// Extra samples (repeats from the start of the order) added to fill the
    /// last global batch.
    pub padded: u64,
    pub tail: TailPolicy,
}

impl EpochPlan {
    /// Plans the remainder of an epoch of `samples` samples from position `start`.
    ///
    /// ```
    /// use mosaicrs::loader::{EpochPlan, TailPolicy};
    /// let p = EpochPlan::new(0, 10, 0, 3, 2, TailPolicy::DropLast).unwrap();
    /// assert_eq!((p.steps, p.dropped, p.padded), (1, 4, 0));
    /// let p = EpochPlan::new(0, 10, 0, 3, 2, TailPolicy::Pad).unwrap();
    /// assert_eq!((p.steps, p.dropped, p.padded), (2, 0, 2));
    /// ```
    pub fn new(
        epoch: u64,
        samples: u64,
        start: u64,
        batch_size: u64,
        world_size: u64,
        tail: TailPolicy,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::InvalidArgument(
                "batch size must be at least 1".into(),
            ));
        }
        if world_size == 0 {
            return Err(Error::InvalidArgument(
                "world size must be at least 1".into(),
            ));
        }
        if start > samples {
            return Err(Error::ResumeMismatch(format!(
                "the state has consumed {start} samples but the epoch has only {samples}"
            )));
        }
        let global = batch_size.checked_mul(world_size).ok_or_else(|| {
            Error::InvalidArgument("batch size times world size overflows".into())
        })?;
        let remaining = samples - start;
        let (steps, dropped, padded) = match tail {
            TailPolicy::DropLast => {
                let steps = remaining / global;
                (steps, remaining - steps * global, 0)
            }
            TailPolicy::Pad => {
                let steps = remaining.div_ceil(global);
                (steps, 0, steps * global - remaining)
            }
        };
        Ok(EpochPlan {
            epoch,
            samples,
            start,
            batch_size,
            world_size,
            steps,
            dropped,
            padded,
            tail,
        })
    }

    /// Samples in one global batch (all ranks together).
    pub fn global_batch(&self) -> u64 {
        self.batch_size * self.world_size
    }

    /// Positions in the epoch order of `rank`'s batch at `step`. Positions
    /// at or past `samples` are padding: position `samples + i` stands for
    /// position `i % samples`.
    pub fn positions(&self, rank: u64, step: u64) -> Range<u64> {
        let first = self.start + step * self.global_batch() + rank * self.batch_size;
        first..first + self.batch_size
    }

    /// The order position that `position` reads (wrapping padding around).
    pub fn resolve(&self, position: u64) -> u64 {
        if position < self.samples {
            position
        } else {
            (position - self.samples) % self.samples.max(1)
        }
    }

    /// The global position reached after `steps_done` steps of this plan.
    pub fn position_after(&self, steps_done: u64) -> u64 {
        (self.start + steps_done * self.global_batch()).min(self.samples)
    }
}
