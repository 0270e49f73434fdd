//! Checkpoints: model weights, optimiser state, loader state and the run's
//! settings, in `step-NNNNNNNNNN/` folders; `latest` names the newest and is
//! replaced atomically (temp file + rename), so a crash mid-save leaves the
//! previous checkpoint in force.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use mosaicrs::loader::LoaderState;
use serde::{Deserialize, Serialize};

use crate::model::{Adam, Mlp};

/// Settings a checkpoint must agree with to be resumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    pub features: Vec<String>,
    pub label: String,
    pub hidden: Vec<i64>,
    pub classes: i64,
    pub holdout: f64,
    pub seed: u64,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// Optimiser steps taken so far (this rank).
    pub global_step: u64,
}

impl Meta {
    /// Refuses a checkpoint made with other features, label, model or split.
    pub fn check_same_run(&self, other: &Meta) -> Result<()> {
        let pairs = [
            ("features", self.features != other.features),
            ("label", self.label != other.label),
            ("hidden layer sizes", self.hidden != other.hidden),
            ("holdout fraction", self.holdout != other.holdout),
            ("seed", self.seed != other.seed),
        ];
        if let Some((what, _)) = pairs.iter().find(|(_, differs)| *differs) {
            bail!(
                "cannot resume: the checkpoint was made with different {what}; \
                 use the same options or another --checkpoint-dir"
            );
        }
        Ok(())
    }
}

const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.ot";
const LOADER: &str = "loader_state.json";
const META: &str = "meta.json";
const LATEST: &str = "latest";
/// Checkpoints kept (the newest ones).
const KEEP: usize = 2;

/// Writes a checkpoint and points `latest` at it.
pub fn save(dir: &Path, model: &Mlp, adam: &Adam, state: &LoaderState, meta: &Meta) -> Result<()> {
    let name = format!("step-{:010}", meta.global_step);
    let target = dir.join(&name);
    let temp = dir.join(format!(".tmp-{name}"));
    let _ = fs::remove_dir_all(&temp);
    fs::create_dir_all(&temp).with_context(|| format!("creating {}", temp.display()))?;
    model
        .vs
        .save(temp.join(MODEL))
        .with_context(|| format!("saving the model to {}", temp.display()))?;
    adam.save(&temp.join(OPTIMIZER))?;
    write(&temp.join(LOADER), &state.to_json()?)?;
    write(&temp.join(META), &serde_json::to_string_pretty(meta)?)?;
    let _ = fs::remove_dir_all(&target);
    rename(&temp, &target)?;
    let latest_temp = dir.join(".latest.tmp");
    write(&latest_temp, &name)?;
    rename(&latest_temp, &dir.join(LATEST))?;
    prune(dir)
}

fn write(path: &Path, text: &str) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).with_context(|| format!("renaming {} to {}", from.display(), to.display()))
}

/// Deletes all but the newest [`KEEP`] checkpoints.
fn prune(dir: &Path) -> Result<()> {
    let mut steps: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("step-"))
        })
        .collect();
    steps.sort();
    let excess = steps.len().saturating_sub(KEEP);
    for old in &steps[..excess] {
        fs::remove_dir_all(old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

/// A checkpoint on disk.
pub struct Checkpoint {
    pub path: PathBuf,
    pub meta: Meta,
    pub state: LoaderState,
}

impl Checkpoint {
    /// The checkpoint that `latest` names, or an error saying there is none.
    pub fn latest(dir: &Path) -> Result<Checkpoint> {
        let latest = dir.join(LATEST);
        let name = fs::read_to_string(&latest).with_context(|| {
            format!(
                "--resume: no checkpoint in {} ({} not found)",
                dir.display(),
                latest.display()
            )
        })?;
        let path = dir.join(name.trim());
        let read = |file: &str| {
            fs::read_to_string(path.join(file))
                .with_context(|| format!("reading {}", path.join(file).display()))
        };
        let meta: Meta =
            serde_json::from_str(&read(META)?).with_context(|| format!("parsing {META}"))?;
        let state = LoaderState::from_json(&read(LOADER)?)?;
        Ok(Checkpoint { path, meta, state })
    }

    /// Loads the weights and optimiser state into `model` and `adam`.
    pub fn restore(&self, model: &mut Mlp, adam: &mut Adam) -> Result<()> {
        crate::model::load_weights(&mut model.vs, &self.path.join(MODEL))?;
        adam.load(&self.path.join(OPTIMIZER), model.vs.device())
    }
}
