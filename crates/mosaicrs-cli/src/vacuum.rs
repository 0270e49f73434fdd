//! `mosaicrs vacuum`: delete what failed or killed writes left, and the
//! versions (and the shards only they list) beyond a retention.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use mosaicrs::history::{vacuum, Retention};

use crate::store::StoreArgs;

#[derive(Args)]
pub struct VacuumArgs {
    /// Dataset folder or URL.
    path: String,
    /// Keep unlisted files younger than this many hours (a write may still be running).
    #[arg(long, default_value_t = 24.0)]
    grace_hours: f64,
    /// Keep the newest K versions (and every shard they list); older
    /// versions are removed. The newest version is always kept.
    #[arg(long, value_name = "K")]
    retain_versions: Option<u64>,
    /// Keep every version committed in the last H hours.
    #[arg(long, value_name = "H")]
    retain_hours: Option<f64>,
    /// Delete; without it, only list what would be deleted.
    #[arg(long, conflicts_with = "dry_run")]
    delete: bool,
    /// Only list what would be deleted (the default; the opposite of --delete).
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(args: &VacuumArgs) -> Result<ExitCode> {
    let location = args.store.location(&args.path)?;
    let grace = Duration::try_from_secs_f64(args.grace_hours * 3600.0)
        .ok()
        .context("--grace-hours must be a non-negative number")?;
    if args
        .retain_hours
        .is_some_and(|h| !(h >= 0.0 && h.is_finite()))
    {
        bail!("--retain-hours must be a non-negative number");
    }
    if args.retain_versions == Some(0) {
        bail!("--retain-versions must be at least 1 (the newest version is always kept)");
    }
    let retention = Retention {
        versions: args.retain_versions,
        hours: args.retain_hours,
        grace,
    };
    let report = vacuum(&location, &retention, !args.delete)?;
    let verb = if report.deleted {
        "deleted"
    } else {
        "would delete"
    };
    for (name, bytes) in &report.removable {
        println!("{verb} {name} ({bytes} bytes)");
    }
    for version in &report.versions_removed {
        println!("{verb} version {version}");
    }
    for (name, bytes) in &report.too_young {
        println!("kept {name} ({bytes} bytes): younger than the grace period");
    }
    let total: u64 = report.removable.iter().map(|f| f.1).sum();
    let kept = report
        .oldest_kept
        .map(|v| format!("; versions from {v} kept"))
        .unwrap_or_default();
    println!(
        "{location}: {} versions, {} files, {total} bytes {verb}{kept}{}",
        report.versions_removed.len(),
        report.removable.len(),
        if report.deleted {
            ""
        } else {
            " (dry run; pass --delete)"
        }
    );
    Ok(ExitCode::SUCCESS)
}
