//! The loader's resumable state: small, JSON, and tied to one dataset.

use serde::{Deserialize, Serialize};

use super::order::{OrderAlgorithm, ShuffleMode};
use crate::{Error, Result};

/// Names the order algorithm of new loaders (generator, permutation,
/// seeding). A state written by an older algorithm that this version still
/// knows resumes with that algorithm; an unknown one is refused, never
/// resumed into a different order.
pub const ORDER_ALGORITHM: &str = OrderAlgorithm::CURRENT.name();

/// Where a loader stands: enough to continue the exact same sample stream.
///
/// `samples_consumed` counts positions of the *global* epoch order, so it
/// does not depend on the world size: after `k` steps with `world_size`
/// ranks of `batch_size` it is `k * world_size * batch_size`.
///
/// ```
/// use mosaicrs::loader::{LoaderState, ShuffleMode};
/// let s = LoaderState::new(7, "xxh3-64:00".into(), ShuffleMode::Global);
/// let back = LoaderState::from_json(&s.to_json().unwrap()).unwrap();
/// assert_eq!(back, s);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderState {
    /// [`ORDER_ALGORITHM`] of the writer.
    pub algorithm: String,
    pub seed: u64,
    pub epoch: u64,
    /// Positions of the epoch order already handed out (all ranks together).
    pub samples_consumed: u64,
    /// Fingerprint of the sample space (shards' rows and checksums, selection).
    pub dataset: String,
    pub shuffle: ShuffleMode,
    /// A mix's block length: the global batch of the run that started it,
    /// kept when the run resumes on another world size (absent for one
    /// dataset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix_block: Option<u64>,
    /// The dataset version the loader reads (absent for a mix and in states
    /// written before versions were recorded). Python's `load_state_dict`
    /// reopens this version when the loader was built from a path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

impl LoaderState {
    /// The state at the start of epoch 0.
    pub fn new(seed: u64, dataset: String, shuffle: ShuffleMode) -> Self {
        LoaderState {
            algorithm: ORDER_ALGORITHM.to_string(),
            seed,
            epoch: 0,
            samples_consumed: 0,
            dataset,
            shuffle,
            mix_block: None,
            version: None,
        }
    }

    /// The state as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map_err(|e| Error::Internal(format!("cannot serialise loader state: {e}")))
    }

    /// Parses a state written by [`LoaderState::to_json`].
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| Error::InvalidArgument(format!("loader state is not valid JSON: {e}")))
    }

    /// The order algorithm this state continues with.
    pub fn order_algorithm(&self) -> Result<OrderAlgorithm> {
        OrderAlgorithm::from_name(&self.algorithm)
    }

    /// Refuses a state that belongs to another dataset, seed or shuffle
    /// mode, names an order algorithm this version does not know, or points
    /// past the end of the epoch. A known older algorithm is accepted: the
    /// resumed loader keeps it.
    pub fn check_compatible(&self, expected: &LoaderState, samples: u64) -> Result<()> {
        self.order_algorithm()?;
        if self.dataset != expected.dataset {
            return Err(Error::ResumeMismatch(format!(
                "the state belongs to dataset {} but this dataset (and row selection) is {}",
                self.dataset, expected.dataset
            )));
        }
        if self.seed != expected.seed {
            return Err(Error::ResumeMismatch(format!(
                "the state was written with seed {} but the loader has seed {}",
                self.seed, expected.seed
            )));
        }
        if self.shuffle != expected.shuffle {
            return Err(Error::ResumeMismatch(format!(
                "the state was written with shuffle {} but the loader uses {}",
                self.shuffle, expected.shuffle
            )));
        }
        if self.samples_consumed > samples {
            return Err(Error::ResumeMismatch(format!(
                "the state has consumed {} samples but an epoch has only {samples}",
                self.samples_consumed
            )));
        }
        Ok(())
    }
}
