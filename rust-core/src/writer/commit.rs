//! The commit: one atomic index write that makes a write's shards visible.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use arrow::datatypes::Schema;

use crate::format::{
    is_temp_name, schema_difference, unique_token, Index, ShardEntry, ShardName, WriteRecord,
    SHARD_EXTENSION, TEMP_PREFIX,
};
use crate::writer::shard_writer::validate_write_id;
use crate::{Error, Result};

/// What to do when the target folder already holds a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveMode {
    /// Fail with [`Error::AlreadyExists`] (Spark's default).
    #[default]
    ErrorIfExists,
    /// Add the new shards to the existing index; the schema must match.
    Append,
    /// Replace the index; the old shards are deleted after the commit.
    Overwrite,
    /// Keep the existing dataset and discard the new shards.
    Ignore,
}

impl std::str::FromStr for SaveMode {
    type Err = Error;

    /// Parses Spark's names for save modes (case-insensitive).
    ///
    /// ```
    /// use mosaicrs::writer::SaveMode;
    /// assert_eq!("Append".parse::<SaveMode>().unwrap(), SaveMode::Append);
    /// assert_eq!("errorifexists".parse::<SaveMode>().unwrap(), SaveMode::ErrorIfExists);
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "error" | "errorifexists" | "default" => Ok(SaveMode::ErrorIfExists),
            "append" => Ok(SaveMode::Append),
            "overwrite" => Ok(SaveMode::Overwrite),
            "ignore" => Ok(SaveMode::Ignore),
            other => Err(Error::InvalidArgument(format!(
                "save mode {other:?} is not one of error, append, overwrite, ignore"
            ))),
        }
    }
}

/// The result of [`commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutcome {
    /// False when `Ignore` found an existing dataset and changed nothing.
    pub committed: bool,
    /// Rows in the dataset after the commit.
    pub total_rows: u64,
    /// Files deleted afterwards: replaced shards and leftovers of failed attempts.
    pub removed: Vec<String>,
}

/// A fresh write id (32 hex digits, see [`unique_token`]).
///
/// Spark passes its own (the query id); the CLI uses this.
pub fn new_write_id() -> String {
    unique_token()
}

/// Checks, before any data is written, that `schema` can be appended to the
/// dataset in `dir` (true when there is no dataset yet).
pub fn check_append_schema(dir: &Path, schema: &Schema) -> Result<()> {
    if !Index::exists_in(dir) {
        return Ok(());
    }
    let existing = Index::load(dir)?.arrow_schema()?;
    match schema_difference(&existing, schema) {
        None => Ok(()),
        Some(detail) => Err(Error::SchemaMismatch {
            path: dir.to_path_buf(),
            detail: format!("cannot append: {detail}"),
        }),
    }
}

/// Makes `shards` (all from write `write_id`) visible in the dataset at `dir`.
///
/// The new index is written atomically. Afterwards every file of `write_id`
/// that the index does not list is deleted: shards of failed or speculative
/// attempts and temp files. `Overwrite` also deletes the replaced shards.
pub fn commit(
    dir: &Path,
    schema: &Schema,
    write_id: &str,
    shards: Vec<ShardEntry>,
    mode: SaveMode,
) -> Result<CommitOutcome> {
    validate_write_id(write_id)?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for shard in &shards {
        check_shard_on_disk(dir, write_id, shard)?;
    }
    let existing = match Index::load(dir) {
        Ok(index) => Some(index),
        Err(Error::NotADataset { .. }) => None,
        Err(e) => return Err(e),
    };

    let (mode_name, old_shards, previous_writes) = match (mode, existing) {
        (SaveMode::ErrorIfExists, Some(_)) => {
            abort_write(dir, write_id)?;
            return Err(Error::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        (SaveMode::Ignore, Some(index)) => {
            let removed = abort_write(dir, write_id)?;
            return Ok(CommitOutcome {
                committed: false,
                total_rows: index.total_rows,
                removed,
            });
        }
        (SaveMode::Append, Some(index)) => {
            check_append_schema(dir, schema)?;
            ("append", index.shards, index.writes)
        }
        (SaveMode::Overwrite, Some(index)) => ("overwrite", Vec::new(), index.writes),
        (_, None) => ("create", Vec::new(), Vec::new()),
    };

    let record = WriteRecord {
        write_id: write_id.to_string(),
        mode: mode_name.to_string(),
        rows: shards.iter().map(|s| s.rows).sum(),
        shards: shards.len() as u64,
        committed_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    };
    let mut all_shards = old_shards;
    all_shards.extend(shards);
    let mut writes = previous_writes;
    writes.push(record);
    let index = Index::new(schema, all_shards, writes)?;
    index.store_atomic(dir)?;

    // The commit point has passed: what follows only removes garbage, so a
    // failure here must not be reported as a failed commit.
    let listed: HashSet<&str> = index.shards.iter().map(|s| s.path.as_str()).collect();
    let removed = if mode == SaveMode::Overwrite {
        remove_unlisted(dir, &listed, |_| true)
    } else {
        remove_unlisted(dir, &listed, |name| belongs_to_write(name, write_id))
    }
    .unwrap_or_default();
    Ok(CommitOutcome {
        committed: true,
        total_rows: index.total_rows,
        removed,
    })
}

/// Deletes every file of write `write_id` that the current index does not
/// list (a job abort), returning the deleted names.
pub fn abort_write(dir: &Path, write_id: &str) -> Result<Vec<String>> {
    validate_write_id(write_id)?;
    let index = match Index::load(dir) {
        Ok(index) => Some(index),
        Err(Error::NotADataset { .. }) => None,
        Err(e) => return Err(e),
    };
    let listed: HashSet<&str> = index
        .iter()
        .flat_map(|i| i.shards.iter().map(|s| s.path.as_str()))
        .collect();
    remove_unlisted(dir, &listed, |name| belongs_to_write(name, write_id))
}

fn belongs_to_write(name: &str, write_id: &str) -> bool {
    let prefix = ShardName::write_prefix(write_id);
    name.strip_prefix(TEMP_PREFIX)
        .unwrap_or(name)
        .starts_with(&prefix)
}

/// Removes shard files (and temp shard files) in `dir` that `listed` does not
/// contain and `selected` accepts.
fn remove_unlisted(
    dir: &Path,
    listed: &HashSet<&str>,
    selected: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let suffix = format!(".{SHARD_EXTENSION}");
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let base = name.strip_prefix(TEMP_PREFIX).unwrap_or(&name);
        let is_shard_file = base.starts_with("part-") && base.ends_with(&suffix);
        if !is_shard_file || listed.contains(name.as_str()) || !selected(&name) {
            continue;
        }
        let path = entry.path();
        match fs::remove_file(&path) {
            Ok(()) => removed.push(name),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    removed.sort();
    Ok(removed)
}

/// A shard handed to commit must be a sealed file of this write with the
/// size the writer reported.
fn check_shard_on_disk(dir: &Path, write_id: &str, shard: &ShardEntry) -> Result<()> {
    if shard.write_id != write_id || !belongs_to_write(&shard.path, write_id) {
        return Err(Error::InvalidArgument(format!(
            "shard {} does not belong to write {write_id}",
            shard.path
        )));
    }
    if is_temp_name(&shard.path) {
        return Err(Error::InvalidArgument(format!(
            "shard {} is not sealed",
            shard.path
        )));
    }
    let path = dir.join(&shard.path);
    match fs::metadata(&path) {
        Ok(meta) if meta.len() == shard.bytes => Ok(()),
        Ok(meta) => Err(Error::CorruptShard {
            path,
            reason: format!(
                "the writer reported {} bytes, the file has {}",
                shard.bytes,
                meta.len()
            ),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::MissingShard { path }),
        Err(e) => Err(Error::io(&path, e)),
    }
}
