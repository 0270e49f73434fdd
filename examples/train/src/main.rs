//! `mosaicrs-train`: trains an MLP classifier from a mosaicrs dataset and
//! prints `accuracy=... data_wait_s=...` at the end.

use clap::Parser;
use mosaicrs_train::train::{run, TrainArgs};

fn main() -> anyhow::Result<()> {
    let args = TrainArgs::parse();
    let report = run(&args)?;
    if report.stopped_early {
        eprintln!(
            "stopped after {} steps (--stop-after-steps); resume with --resume",
            report.steps
        );
    }
    println!("{}", report.line());
    Ok(())
}
