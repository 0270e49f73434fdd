//! Whole-dataset validation that reports every bad shard, not just the first.

use std::path::{Path, PathBuf};

use super::options::{Access, ReadOptions};
use super::shard::Shard;
use crate::format::{Index, INDEX_FILE, VERSIONS_DIR};
use crate::storage::Location;
use crate::{Error, Result};

/// One shard that failed validation.
#[derive(Debug)]
pub struct ShardProblem {
    /// The shard's file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub error: Error,
}

/// What [`validate`] found.
#[derive(Debug)]
pub struct ValidationReport {
    /// Shards checked.
    pub shards_checked: usize,
    /// Rows in the shards that passed.
    pub rows_ok: u64,
    /// Bytes hashed.
    pub bytes_checked: u64,
    /// Every shard that failed, in index order.
    pub problems: Vec<ShardProblem>,
    /// Files in the dataset folder that no kept version lists (leftovers
    /// of failed or killed writes, or unrelated files), with their sizes.
    /// They are not part of the dataset and do not fail validation.
    pub unlisted: Vec<(PathBuf, u64)>,
}

impl ValidationReport {
    /// True when no shard failed.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the index and every shard it lists: presence, size, checksum, magic,
/// footer, schema, batch and row counts, compression, and that every record
/// batch decodes. Also lists the files in the folder that the index does not.
///
/// An unreadable index is an `Err`; problems with shards are collected in the
/// report so that all bad files are named at once.
///
/// ```no_run
/// let report = mosaicrs::reader::validate(std::path::Path::new("data/train")).unwrap();
/// for p in &report.problems {
///     eprintln!("{}: {}", p.path.display(), p.error);
/// }
/// ```
pub fn validate(dir: &Path) -> Result<ValidationReport> {
    validate_index(dir, &Index::load(dir)?)
}

/// [`validate`] for a given index of the dataset in `dir` (a version read
/// with [`Location::load_index_at`](crate::storage::Location::load_index_at)).
pub fn validate_index(dir: &Path, index: &Index) -> Result<ValidationReport> {
    let schema = index.arrow_schema()?;
    let mut report = ValidationReport {
        shards_checked: 0,
        rows_ok: 0,
        bytes_checked: 0,
        problems: Vec::new(),
        unlisted: Vec::new(),
    };
    // The checksum first (it is verified as the shard is opened): for
    // damaged bytes it is the precise diagnosis, where a structural error
    // would only be a symptom.
    let options = ReadOptions {
        verify_checksums: true,
        access: Access::Auto.resolve(dir),
        // Each batch is decoded once here: nothing to keep.
        batch_cache_bytes: 0,
    };
    for entry in &index.shards {
        report.shards_checked += 1;
        let path = dir.join(&entry.path);
        let checked = Shard::open_with(dir, entry, &schema, &options).and_then(|shard| {
            for b in 0..shard.num_batches() {
                shard.batch(b)?;
            }
            Ok(shard.num_rows())
        });
        match checked {
            Ok(rows) => {
                report.rows_ok += rows;
                report.bytes_checked += entry.bytes;
            }
            Err(error) => report.problems.push(ShardProblem { path, error }),
        }
    }
    report.unlisted = unlisted_files(dir, index)?;
    Ok(report)
}

/// Files in `dir` that are neither the index, the version records nor a
/// shard that the head or a kept version lists, with their sizes (of the
/// entry itself: links are not followed), sorted by name.
fn unlisted_files(dir: &Path, index: &Index) -> Result<Vec<(PathBuf, u64)>> {
    let mut listed: std::collections::HashSet<String> =
        index.shards.iter().map(|s| s.path.clone()).collect();
    let location = Location::local(dir);
    for version in location.list_version_records()? {
        if let Some(kept) = location.read_version_record(version)? {
            listed.extend(kept.shards.into_iter().map(|s| s.path));
        }
    }
    let mut found = Vec::new();
    for item in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let item = item.map_err(|e| Error::io(dir, e))?;
        let name = item.file_name();
        let name_str = name.to_string_lossy();
        if name_str == INDEX_FILE || name_str == VERSIONS_DIR || listed.contains(name_str.as_ref())
        {
            continue;
        }
        let bytes = item.metadata().map(|m| m.len()).unwrap_or(0);
        found.push((item.path(), bytes));
    }
    found.sort();
    Ok(found)
}
