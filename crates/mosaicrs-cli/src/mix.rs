//! `mosaicrs mix --plan`: what an epoch of a mix of datasets holds.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use mosaicrs::loader::mix::{sample_counts, Exhausted, MixPlan, Weighting};
use serde_json::json;

use crate::store::StoreArgs;

#[derive(clap::Args)]
pub struct MixArgs {
    /// Sources: a dataset folder or URL, optionally followed by
    /// `#weight=W`, `#repeat=R` or `#choose=N` (e.g. `web#weight=0.6`).
    #[arg(required = true)]
    sources: Vec<String>,
    /// Print the plan of one epoch (what this command does).
    #[arg(long)]
    plan: bool,
    /// Samples per rank per batch.
    #[arg(long, default_value_t = 256)]
    batch_size: u64,
    /// Ranks (the global batch is batch_size times world_size).
    #[arg(long, default_value_t = 1)]
    world_size: u64,
    /// Samples per epoch with relative weights (default: all rows).
    #[arg(long)]
    epoch_size: Option<u64>,
    /// When a source's share exceeds its rows: cycle or stop.
    #[arg(long, default_value = "cycle")]
    exhausted: Exhausted,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

/// `path#kind=value` split into the path and its weighting.
fn parse_source(spec: &str) -> Result<(String, Weighting)> {
    let Some((path, weighting)) = spec.rsplit_once('#') else {
        return Ok((spec.to_string(), Weighting::Natural));
    };
    let Some((kind, value)) = weighting.split_once('=') else {
        bail!("source {spec:?}: expected PATH#weight=W, PATH#repeat=R or PATH#choose=N");
    };
    let number = |v: &str| -> Result<f64> {
        v.parse()
            .with_context(|| format!("source {spec:?}: {kind} {v:?} is not a number"))
    };
    let w =
        match kind {
            "weight" => Weighting::Weight(number(value)?),
            "repeat" => Weighting::Repeat(number(value)?),
            "choose" => Weighting::Choose(value.parse().with_context(|| {
                format!("source {spec:?}: choose {value:?} is not a whole number")
            })?),
            _ => bail!("source {spec:?}: {kind:?} is not weight, repeat or choose"),
        };
    Ok((path.to_string(), w))
}

fn describe(w: Weighting) -> String {
    match w {
        Weighting::Natural => "rows".into(),
        Weighting::Weight(v) => format!("weight {v}"),
        Weighting::Repeat(v) => format!("repeat {v}"),
        Weighting::Choose(n) => format!("choose {n}"),
    }
}

pub fn run(args: &MixArgs) -> Result<ExitCode> {
    if !args.plan {
        bail!("mix prints a plan: add --plan");
    }
    if args.batch_size == 0 || args.world_size == 0 {
        bail!("--batch-size and --world-size must be at least 1");
    }
    let mut paths = Vec::new();
    let mut weightings = Vec::new();
    let mut rows = Vec::new();
    for spec in &args.sources {
        let (path, w) = parse_source(spec)?;
        // The index alone gives the rows: nothing else is read.
        let location = args.store.location(&path)?;
        let index = location.load_index()?;
        paths.push(location.to_string());
        weightings.push(w);
        rows.push(index.total_rows);
    }
    let counts = sample_counts(&weightings, &rows, args.epoch_size, args.exhausted)?;
    let block = args.batch_size * args.world_size;
    let plan = MixPlan::new(&counts, block);
    let seen = |i: usize| match rows[i] {
        0 => 0.0,
        r => counts[i] as f64 / r as f64,
    };
    if args.json {
        let sources: Vec<_> = (0..paths.len())
            .map(|i| {
                json!({
                    "path": paths[i],
                    "weighting": describe(weightings[i]),
                    "rows": rows[i],
                    "samples_per_epoch": counts[i],
                    "share": counts[i] as f64 / plan.epoch_len.max(1) as f64,
                    "per_batch_min": plan.per_batch[i].0,
                    "per_batch_max": plan.per_batch[i].1,
                    "last_batch": plan.tail[i],
                    "times_seen": seen(i),
                })
            })
            .collect();
        let out = json!({
            "epoch_len": plan.epoch_len,
            "global_batch": block,
            "whole_batches": plan.whole_batches,
            "last_batch": plan.epoch_len - plan.whole_batches * block,
            "sources": sources,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("epoch        {} samples", plan.epoch_len);
    println!(
        "batches      {} of {} ({} x {} ranks), then {} samples",
        plan.whole_batches,
        block,
        args.batch_size,
        args.world_size,
        plan.epoch_len - plan.whole_batches * block
    );
    println!(
        "{:<4} {:>12} {:>14} {:>12} {:>7} {:>10} {:>9}  source",
        "#", "weighting", "rows", "per epoch", "share", "per batch", "seen"
    );
    for i in 0..paths.len() {
        let (lo, hi) = plan.per_batch[i];
        let per_batch = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        };
        println!(
            "{:<4} {:>12} {:>14} {:>12} {:>6.2}% {:>10} {:>8.3}x  {}",
            i,
            describe(weightings[i]),
            rows[i],
            counts[i],
            100.0 * counts[i] as f64 / plan.epoch_len.max(1) as f64,
            per_batch,
            seen(i),
            paths[i]
        );
    }
    Ok(ExitCode::SUCCESS)
}
