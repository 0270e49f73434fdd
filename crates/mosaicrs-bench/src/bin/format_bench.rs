//! `mosaicrs-format-bench`: see `mosaicrs_bench::format`.

use std::process::ExitCode;

use clap::Parser;
use mosaicrs_bench::format::{run, BenchArgs};

fn main() -> anyhow::Result<ExitCode> {
    run(&BenchArgs::parse())
}
