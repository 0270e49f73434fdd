//! The commit history of a dataset: `log`, `diff`, `restore`, `vacuum`.
//!
//! Every commit makes a numbered version (0 for the first) whose record,
//! `_versions/<N>.json`, holds the full index of that version and what the
//! commit did ([`CommitInfo`]). Any kept version can be read
//! ([`Location::load_index_at`], `Dataset::open_version`); [`vacuum`]
//! decides which are kept. This module is also `mosaicrs::history`.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::Int64Array;
//! use arrow::datatypes::{DataType, Field, Schema};
//! use arrow::record_batch::RecordBatch;
//! use mosaicrs::history;
//! use mosaicrs::storage::Location;
//! use mosaicrs::writer::{write_batches, CommitOptions, SaveMode, WriteOptions};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
//! let batch = RecordBatch::try_new(schema.clone(),
//!     vec![Arc::new(Int64Array::from_iter_values(0..10))]).unwrap();
//! let location = Location::local(dir.path());
//! for mode in [SaveMode::ErrorIfExists, SaveMode::Append] {
//!     write_batches(&location, &schema, [Ok(batch.clone())], &WriteOptions::default(),
//!         mode, None).unwrap();
//! }
//! let log = history::log(&location).unwrap();
//! assert_eq!(log.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 0]);
//! assert_eq!(log[0].commit.operation, "append");
//! let restored = history::restore(&location, 0, &CommitOptions::default()).unwrap();
//! assert_eq!((restored.version, restored.total_rows), (Some(2), 10));
//! ```

use std::collections::HashSet;

use crate::format::{schema_difference, CommitInfo, Index, VersionSpec, WriteRecord};
use crate::storage::Location;
use crate::writer::commit::{
    commit_versioned, new_write_id, now_ms, push_write, Decision, NewVersion,
};
use crate::writer::{CommitOptions, CommitOutcome};
use crate::{Error, Result};

pub use crate::writer::commit::repair_head;
pub use crate::writer::vacuum::{vacuum_versions as vacuum, Retention, VacuumReport};

/// One version as [`log`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionInfo {
    /// The version number (0 for the first commit).
    pub version: u64,
    /// What the commit did, and who made it.
    pub commit: CommitInfo,
    /// Rows in this version.
    pub total_rows: u64,
    /// Bytes of this version's shards.
    pub total_bytes: u64,
    /// Shards this version lists.
    pub shards: u64,
}

impl VersionInfo {
    fn of(index: &Index) -> Self {
        VersionInfo {
            version: index.version,
            commit: commit_of(index),
            total_rows: index.total_rows,
            total_bytes: index.total_bytes,
            shards: index.shards.len() as u64,
        }
    }
}

/// What one version has that another has not ([`diff`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VersionDiff {
    /// The version compared from.
    pub from: u64,
    /// The version compared to.
    pub to: u64,
    /// Shards `to` lists and `from` does not, in `to`'s order.
    pub shards_added: Vec<String>,
    /// Shards `from` lists and `to` does not, in `from`'s order.
    pub shards_removed: Vec<String>,
    /// Rows of the added shards.
    pub rows_added: u64,
    /// Rows of the removed shards.
    pub rows_removed: u64,
    /// How the schema differs (`None`: the same schema).
    pub schema_change: Option<String>,
}

/// The commit record of `index`; a format 1 index has only its last write.
fn commit_of(index: &Index) -> CommitInfo {
    if let Some(commit) = &index.commit {
        return commit.clone();
    }
    let last = index.writes.last().cloned().unwrap_or(WriteRecord {
        write_id: String::new(),
        mode: String::new(),
        rows: 0,
        shards: 0,
        committed_at_ms: 0,
    });
    CommitInfo {
        operation: last.mode,
        committed_at_ms: last.committed_at_ms,
        write_id: last.write_id,
        rows_added: last.rows,
        shards_added: last.shards,
        ..CommitInfo::default()
    }
}

/// The kept versions of the dataset at `location`, newest first (one read
/// per version). A format 1 dataset has one: its head.
///
/// Fails with [`Error::NotADataset`] when there is no dataset.
pub fn log(location: &Location) -> Result<Vec<VersionInfo>> {
    let (_, newest) = crate::writer::commit::newest_version(location)?;
    let Some(newest) = newest else {
        return Err(Error::NotADataset {
            path: location.display_path(),
        });
    };
    let mut out = vec![VersionInfo::of(&newest)];
    for version in location.list_version_records()?.into_iter().rev() {
        if version >= newest.version {
            continue;
        }
        // A record removed by a vacuum running now is simply not listed.
        if let Some(index) = location.read_version_record(version)? {
            out.push(VersionInfo::of(&index));
        }
    }
    Ok(out)
}

/// How version `to` differs from version `from` (either may be the older).
///
/// ```
/// use mosaicrs::history::VersionDiff;
/// assert_eq!(VersionDiff::default().rows_added, 0);
/// ```
pub fn diff(location: &Location, from: u64, to: u64) -> Result<VersionDiff> {
    let a = location.load_index_at(&VersionSpec::Version(from))?;
    let b = location.load_index_at(&VersionSpec::Version(to))?;
    Ok(diff_indexes(&a, &b))
}

fn diff_indexes(a: &Index, b: &Index) -> VersionDiff {
    let in_a: HashSet<&str> = a.shards.iter().map(|s| s.path.as_str()).collect();
    let in_b: HashSet<&str> = b.shards.iter().map(|s| s.path.as_str()).collect();
    let added: Vec<_> = b
        .shards
        .iter()
        .filter(|s| !in_a.contains(s.path.as_str()))
        .collect();
    let removed: Vec<_> = a
        .shards
        .iter()
        .filter(|s| !in_b.contains(s.path.as_str()))
        .collect();
    let schema_change = match (a.arrow_schema(), b.arrow_schema()) {
        (Ok(sa), Ok(sb)) => schema_difference(&sa, &sb),
        _ if a.schema == b.schema => None,
        _ => Some("the schema cannot be decoded".to_string()),
    };
    VersionDiff {
        from: a.version,
        to: b.version,
        rows_added: added.iter().map(|s| s.rows).sum(),
        rows_removed: removed.iter().map(|s| s.rows).sum(),
        shards_added: added.into_iter().map(|s| s.path.clone()).collect(),
        shards_removed: removed.into_iter().map(|s| s.path.clone()).collect(),
        schema_change,
    }
}

/// Commits a new version whose content (schema and shards) is that of
/// kept version `version`; its commit records operation `restore` and
/// `restored_from`. It is a commit like any other: concurrent commits take
/// turns with it, and it lands on top of whatever is newest then.
///
/// Fails with [`Error::VersionNotFound`] when `version` is not kept.
pub fn restore(
    location: &Location,
    version: u64,
    options: &CommitOptions,
) -> Result<CommitOutcome> {
    let target = location.load_index_at(&VersionSpec::Version(version))?;
    let schema = target.arrow_schema()?;
    let write_id = new_write_id();
    commit_versioned(location, &write_id, None, |current, _changed| {
        let Some(current) = current else {
            return Err(Error::NotADataset {
                path: location.display_path(),
            });
        };
        let mut writes = current.writes.clone();
        push_write(
            &mut writes,
            WriteRecord {
                write_id: write_id.clone(),
                mode: "restore".into(),
                rows: 0,
                shards: 0,
                committed_at_ms: now_ms(),
            },
        );
        let index = Index::new(&schema, target.shards.clone(), writes)?;
        let mut new = NewVersion::of(index, Some(current), "restore", &write_id, options);
        if let Some(commit) = new.index.commit.as_mut() {
            commit.restored_from = Some(version);
            commit.schema_change = diff_indexes(current, &target).schema_change;
        }
        Ok(Decision::Publish(Box::new(new)))
    })
}
