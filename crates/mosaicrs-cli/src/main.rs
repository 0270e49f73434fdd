//! `mosaicrs`: inspect, validate, convert and print mosaicrs datasets, and
//! plan mixes of them.

mod cache;
mod convert;
mod head;
mod history;
mod inspect;
mod mix;
mod store;
mod vacuum;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "mosaicrs",
    version,
    about = "Arrow IPC datasets for training loops"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show a dataset's schema, rows, shards, bytes and compression.
    Inspect {
        /// Dataset folder or URL (s3://, gs://, az://, https://).
        path: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also list every shard.
        #[arg(long)]
        shards: bool,
        #[command(flatten)]
        version: history::VersionArgs,
        #[command(flatten)]
        store: store::StoreArgs,
    },
    /// Check the structure and checksum of every shard; exits 1 naming each bad file.
    Validate {
        /// Dataset folder or URL (a remote dataset is downloaded into the cache and verified).
        path: String,
        #[command(flatten)]
        version: history::VersionArgs,
        #[command(flatten)]
        store: store::StoreArgs,
    },
    /// Convert a CSV, Parquet or Arrow IPC file into a dataset.
    Convert(convert::ConvertArgs),
    /// Print the first rows as a table.
    Head {
        /// Dataset folder or URL.
        path: String,
        /// Number of rows.
        #[arg(short = 'n', long, default_value_t = 10)]
        rows: u64,
        /// Only these columns (comma-separated).
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        #[command(flatten)]
        version: history::VersionArgs,
        #[command(flatten)]
        store: store::StoreArgs,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Show the cache of remote shards, or clear it.
    Cache {
        /// Remove every cached shard that no open reader uses.
        #[arg(long)]
        clear: bool,
        #[command(flatten)]
        store: store::StoreArgs,
    },
    /// List the versions of a dataset, newest first: time, operation, rows
    /// added and removed, writer and metadata.
    Log(history::LogArgs),
    /// Show what changed between two versions: shards and rows added and
    /// removed, columns added.
    Diff(history::DiffArgs),
    /// Commit a new version whose content is an older version's.
    Restore(history::RestoreArgs),
    /// Delete files that no kept version lists (left by failed or killed
    /// writes, or listed only by versions beyond --retain-versions /
    /// --retain-hours).
    Vacuum(vacuum::VacuumArgs),
    /// Plan a mix of datasets: epoch length, each source's samples per
    /// epoch and per global batch, and how often its rows are seen.
    Mix(mix::MixArgs),
}

/// How a command reads shards.
#[derive(clap::Args)]
struct ReadArgs {
    /// Verify each shard's checksum against the index as it is opened.
    #[arg(long)]
    verify: bool,
    /// auto (mmap locally, positioned reads on network and FUSE file
    /// systems), mmap or pread.
    #[arg(long, default_value = "auto")]
    access: mosaicrs::reader::Access,
    /// Memory for decoded record batches of compressed shards, shared by
    /// all shards, e.g. 256m or 1g (0: decode every read).
    #[arg(long, default_value = "256m", value_parser = parse_size)]
    batch_cache: u64,
}

fn parse_size(text: &str) -> Result<u64, String> {
    mosaicrs::units::parse_byte_size(text).map_err(|e| e.to_string())
}

impl ReadArgs {
    fn options(&self) -> mosaicrs::reader::ReadOptions {
        mosaicrs::reader::ReadOptions {
            verify_checksums: self.verify,
            access: self.access,
            batch_cache_bytes: self.batch_cache,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect {
            path,
            json,
            shards,
            version,
            store,
        } => version
            .spec()
            .and_then(|v| inspect::run(&path, json, shards, &v, &store)),
        Command::Validate {
            path,
            version,
            store,
        } => version
            .spec()
            .and_then(|v| validate::run(&path, &v, &store)),
        Command::Convert(args) => convert::run(&args),
        Command::Head {
            path,
            rows,
            columns,
            version,
            store,
            read,
        } => version
            .spec()
            .and_then(|v| head::run(&path, rows, &columns, &v, &store, &read.options())),
        Command::Cache { clear, store } => cache::run(clear, &store),
        Command::Log(args) => history::log(&args),
        Command::Diff(args) => history::diff(&args),
        Command::Restore(args) => history::restore(&args),
        Command::Vacuum(args) => vacuum::run(&args),
        Command::Mix(args) => mix::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
