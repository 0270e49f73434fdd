//! `mosaicrs validate`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use mosaicrs::reader::validate;

pub fn run(path: &Path) -> Result<ExitCode> {
    let report = validate(path)?;
    for problem in &report.problems {
        eprintln!("BAD {}: {}", problem.path.display(), problem.error);
    }
    if !report.unlisted.is_empty() {
        let bytes: u64 = report.unlisted.iter().map(|(_, b)| b).sum();
        println!(
            "{} files ({bytes} bytes) in the folder are not listed in the index (not part of \
             the dataset; leftovers of failed writes are removed by vacuum):",
            report.unlisted.len()
        );
        for (file, bytes) in &report.unlisted {
            println!("  UNLISTED {} ({bytes} bytes)", file.display());
        }
    }
    if report.is_ok() {
        println!(
            "OK {}: {} shards, {} rows, {} bytes verified",
            path.display(),
            report.shards_checked,
            report.rows_ok,
            report.bytes_checked
        );
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} of {} shards failed validation",
            report.problems.len(),
            report.shards_checked
        );
        Ok(ExitCode::from(1))
    }
}
