//! `mosaicrs validate`.

use std::process::ExitCode;

use anyhow::Result;
use mosaicrs::format::VersionSpec;
use mosaicrs::reader::{validate_index, Dataset, ReadOptions};
use mosaicrs::storage::Location;

use crate::store::StoreArgs;

pub fn run(path: &str, version: &VersionSpec, store: &StoreArgs) -> Result<ExitCode> {
    let location = store.location(path)?;
    // A remote dataset is checked in the cache, after every shard's download
    // was verified against the index's checksum.
    let (folder, index, _open) = match &location {
        Location::Local(dir) => (dir.clone(), location.load_index_at(version)?, None),
        Location::Remote(_) => {
            let dataset = Dataset::open_version(
                &location,
                &store.cache()?,
                &ReadOptions::default(),
                version,
            )?;
            let index = dataset.index().clone();
            (dataset.path().to_path_buf(), index, Some(dataset))
        }
    };
    let report = validate_index(&folder, &index)?;
    for problem in &report.problems {
        eprintln!("BAD {}: {}", problem.path.display(), problem.error);
    }
    // Only a local folder is the dataset itself; a cache folder holds what the cache put there.
    if !report.unlisted.is_empty() && matches!(location, Location::Local(_)) {
        let bytes: u64 = report.unlisted.iter().map(|(_, b)| b).sum();
        println!(
            "{} files ({bytes} bytes) in the folder are listed by no kept version (not part of \
             the dataset; leftovers of failed writes are removed by vacuum):",
            report.unlisted.len()
        );
        for (file, bytes) in &report.unlisted {
            println!("  UNLISTED {} ({bytes} bytes)", file.display());
        }
    }
    if report.is_ok() {
        println!(
            "OK {} (version {}): {} shards, {} rows, {} bytes verified",
            location, index.version, report.shards_checked, report.rows_ok, report.bytes_checked
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
