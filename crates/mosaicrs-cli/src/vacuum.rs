//! `mosaicrs vacuum`: delete what failed or killed writes left.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use mosaicrs::writer::vacuum;

use crate::store::StoreArgs;

#[derive(Args)]
pub struct VacuumArgs {
    /// Dataset folder or URL.
    path: String,
    /// Keep unlisted files younger than this many hours (a write may still be running).
    #[arg(long, default_value_t = 24.0)]
    grace_hours: f64,
    /// Delete; without it, only list what would be deleted.
    #[arg(long)]
    delete: bool,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(args: &VacuumArgs) -> Result<ExitCode> {
    let location = args.store.location(&args.path)?;
    let grace = Duration::try_from_secs_f64(args.grace_hours * 3600.0)
        .ok()
        .context("--grace-hours must be a non-negative number")?;
    let report = vacuum(&location, grace, !args.delete)?;
    let verb = if report.deleted {
        "deleted"
    } else {
        "would delete"
    };
    for (name, bytes) in &report.removable {
        println!("{verb} {name} ({bytes} bytes)");
    }
    for (name, bytes) in &report.too_young {
        println!("kept {name} ({bytes} bytes): younger than the grace period");
    }
    let total: u64 = report.removable.iter().map(|f| f.1).sum();
    println!(
        "{location}: {} files, {total} bytes {verb}{}",
        report.removable.len(),
        if report.deleted {
            ""
        } else {
            " (dry run; pass --delete)"
        }
    );
    Ok(ExitCode::SUCCESS)
}
