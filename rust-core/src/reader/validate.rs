//! Whole-dataset validation that reports every bad shard, not just the first.

use std::path::{Path, PathBuf};

use super::shard::{check_checksum, map_shard_file};
use super::Shard;
use crate::format::Index;
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
}

impl ValidationReport {
    /// True when no shard failed.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the index and every shard it lists: presence, size, checksum, magic,
/// footer, schema, row count, and that every record batch decodes.
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
    let index = Index::load(dir)?;
    let schema = index.arrow_schema()?;
    let mut report = ValidationReport {
        shards_checked: 0,
        rows_ok: 0,
        bytes_checked: 0,
        problems: Vec::new(),
    };
    for entry in &index.shards {
        report.shards_checked += 1;
        let path = dir.join(&entry.path);
        // The checksum first: for damaged bytes it is the precise diagnosis,
        // where a structural error would only be a symptom.
        let checked = map_shard_file(&path, entry)
            .and_then(|bytes| check_checksum(&path, entry, bytes.as_slice()))
            .and_then(|()| Shard::open(dir, entry, &schema))
            .and_then(|shard| {
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
    Ok(report)
}
