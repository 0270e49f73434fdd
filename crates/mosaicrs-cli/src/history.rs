//! The history commands: `mosaicrs log`, `diff` and `restore`, and the
//! `--version` / `--as-of` options that pick a version to read.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Args;
use mosaicrs::format::{parse_timestamp_ms, CommitInfo, VersionSpec};
use mosaicrs::history::{self, VersionInfo};
use mosaicrs::writer::CommitOptions;
use serde_json::json;

use crate::store::StoreArgs;

/// Which version of a dataset a command reads.
#[derive(Args, Clone, Debug, Default)]
pub struct VersionArgs {
    /// Read this version (see `mosaicrs log`) instead of the newest.
    #[arg(long, value_name = "N", conflicts_with = "as_of")]
    version: Option<u64>,
    /// Read the version that was the newest at this time (RFC 3339, e.g.
    /// 2026-12-07T18:00:00Z).
    #[arg(long, value_name = "TIMESTAMP")]
    as_of: Option<String>,
}

impl VersionArgs {
    /// The version these options name: the newest when neither is given.
    pub fn spec(&self) -> Result<VersionSpec> {
        Ok(match (self.version, &self.as_of) {
            (Some(n), _) => VersionSpec::Version(n),
            (None, Some(time)) => match parse_timestamp_ms(time) {
                Ok(ms) => VersionSpec::AsOfTimestampMs(ms),
                Err(e) => bail!(
                    "--as-of {time:?} is not a timestamp ({e}); give one like \
                     2026-12-07T18:00:00Z, or a version number with --version"
                ),
            },
            (None, None) => VersionSpec::Latest,
        })
    }
}

#[derive(Args)]
pub struct LogArgs {
    /// Dataset folder or URL.
    path: String,
    /// Print JSON (newest first) instead of a table.
    #[arg(long)]
    json: bool,
    /// Show only the newest N versions.
    #[arg(short = 'n', long, value_name = "N")]
    limit: Option<usize>,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
pub struct DiffArgs {
    /// Dataset folder or URL.
    path: String,
    /// The older version.
    from: u64,
    /// The newer version.
    to: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// Dataset folder or URL.
    path: String,
    /// The version whose content becomes the newest version.
    version: u64,
    /// Record KEY=VALUE with the commit (repeatable), as `log` shows it.
    #[arg(long, value_name = "KEY=VALUE")]
    metadata: Vec<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// What a commit by the command line records as its writer.
pub fn cli_writer() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("engine".to_string(), "cli".to_string()),
        ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ])
}

pub use mosaicrs::format::format_timestamp_ms as format_time;

fn pairs(map: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
    items.join(" ")
}

fn commit_json(commit: &CommitInfo) -> serde_json::Value {
    let mut out = serde_json::to_value(commit).unwrap_or_else(|_| json!({}));
    out["committed_at"] = json!(format_time(commit.committed_at_ms));
    out
}

pub fn log(args: &LogArgs) -> Result<ExitCode> {
    let location = args.store.location(&args.path)?;
    let mut versions: Vec<VersionInfo> = history::log(&location)?;
    if let Some(n) = args.limit {
        versions.truncate(n);
    }
    if args.json {
        let out: Vec<_> = versions
            .iter()
            .map(|v| {
                json!({
                    "version": v.version,
                    "rows": v.total_rows,
                    "bytes": v.total_bytes,
                    "shards": v.shards,
                    "commit": commit_json(&v.commit),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>7}  {:<24}  {:<9}  {:>10}  {:>10}  {:>10}  writer / metadata",
        "version", "committed (UTC)", "operation", "+rows", "-rows", "rows"
    );
    for v in &versions {
        let c = &v.commit;
        let mut notes = vec![pairs(&c.writer)];
        if !c.metadata.is_empty() {
            notes.push(format!("metadata: {}", pairs(&c.metadata)));
        }
        if let Some(from) = c.restored_from {
            notes.push(format!("restored from version {from}"));
        }
        if let Some(change) = &c.schema_change {
            notes.push(change.clone());
        }
        println!(
            "{:>7}  {:<24}  {:<9}  {:>10}  {:>10}  {:>10}  {}",
            v.version,
            format_time(c.committed_at_ms),
            c.operation,
            c.rows_added,
            c.rows_removed,
            v.total_rows,
            notes.join("; ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn diff(args: &DiffArgs) -> Result<ExitCode> {
    let location = args.store.location(&args.path)?;
    let diff = history::diff(&location, args.from, args.to)?;
    if args.json {
        let out = json!({
            "from": diff.from,
            "to": diff.to,
            "rows_added": diff.rows_added,
            "rows_removed": diff.rows_removed,
            "shards_added": diff.shards_added,
            "shards_removed": diff.shards_removed,
            "schema_change": diff.schema_change,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{location}: version {} -> {}", args.from, args.to);
    println!("rows         +{} -{}", diff.rows_added, diff.rows_removed);
    for shard in &diff.shards_added {
        println!("  + {shard}");
    }
    for shard in &diff.shards_removed {
        println!("  - {shard}");
    }
    println!(
        "shards       +{} -{}",
        diff.shards_added.len(),
        diff.shards_removed.len()
    );
    if let Some(change) = &diff.schema_change {
        println!("schema       {change}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restore(args: &RestoreArgs) -> Result<ExitCode> {
    let location = args.store.location(&args.path)?;
    let mut options = CommitOptions {
        writer: cli_writer(),
        ..CommitOptions::default()
    };
    for item in &args.metadata {
        let Some((key, value)) = item.split_once('=').filter(|(k, _)| !k.trim().is_empty()) else {
            bail!("--metadata {item:?}: give KEY=VALUE");
        };
        options
            .metadata
            .insert(key.trim().to_string(), value.to_string());
    }
    let outcome = history::restore(&location, args.version, &options)?;
    let made = outcome
        .version
        .map_or_else(|| "?".to_string(), |v| v.to_string());
    println!(
        "{location}: restored version {} as version {made} ({} rows)",
        args.version, outcome.total_rows
    );
    Ok(ExitCode::SUCCESS)
}
