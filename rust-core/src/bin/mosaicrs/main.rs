//! `mosaicrs`: inspect, validate, convert and benchmark mosaicrs datasets.

mod bench;
mod convert;
mod head;
mod inspect;
mod validate;

use std::path::PathBuf;
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
        /// Dataset folder.
        path: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Also list every shard.
        #[arg(long)]
        shards: bool,
    },
    /// Check the structure and checksum of every shard; exits 1 naming each bad file.
    Validate {
        /// Dataset folder.
        path: PathBuf,
    },
    /// Convert a CSV, Parquet or Arrow IPC file into a dataset.
    Convert(convert::ConvertArgs),
    /// Print the first rows as a table.
    Head {
        /// Dataset folder.
        path: PathBuf,
        /// Number of rows.
        #[arg(short = 'n', long, default_value_t = 10)]
        rows: u64,
        /// Only these columns (comma-separated).
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
        #[command(flatten)]
        read: ReadArgs,
    },
    /// Measure write, scan and random-access speed against memcpy.
    Bench(bench::BenchArgs),
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
}

impl ReadArgs {
    fn options(&self) -> mosaicrs::reader::ReadOptions {
        mosaicrs::reader::ReadOptions {
            verify_checksums: self.verify,
            access: self.access,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { path, json, shards } => inspect::run(&path, json, shards),
        Command::Validate { path } => validate::run(&path),
        Command::Convert(args) => convert::run(&args),
        Command::Head {
            path,
            rows,
            columns,
            read,
        } => head::run(&path, rows, &columns, &read.options()),
        Command::Bench(args) => bench::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
