//! The commit: one atomic index write that makes a write's shards visible.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::datatypes::Schema;

use crate::format::{
    added_columns, is_temp_name, schema_difference, unique_token, Index, ShardEntry, ShardName,
    WriteRecord, INDEX_FILE, SHARD_EXTENSION, TEMP_PREFIX,
};
use crate::storage::{DatasetVersion, Location};
use crate::writer::column_layout::layout_hint;
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

/// What a commit records and allows beyond its shards and save mode.
///
/// ```
/// use mosaicrs::writer::CommitOptions;
/// let mut options = CommitOptions::default();
/// options.metadata.insert("run".into(), "nightly".into());
/// assert!(!options.merge_schema);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommitOptions {
    /// Who wrote: the engine and its identifiers (for Spark the application
    /// id and the query), recorded with the commit.
    pub writer: BTreeMap<String, String>,
    /// The user's `metadata.<key>` options, recorded with the commit.
    pub metadata: BTreeMap<String, String>,
    /// An append may add nullable columns (`mergeSchema`).
    pub merge_schema: bool,
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
    check_append_schema_at(&Location::local(dir), schema)
}

/// [`check_append_schema`] for any [`Location`].
pub fn check_append_schema_at(location: &Location, schema: &Schema) -> Result<()> {
    check_save_mode_at(location, schema, SaveMode::Append).map(drop)
}

/// Checks, before any data is written, that a write of `schema` in `mode`
/// could commit to `location` now, and returns the version it starts from
/// (for [`commit_at`]).
///
/// It applies the commit's own rules: `ErrorIfExists` over a dataset fails
/// with [`Error::AlreadyExists`], `Append` of a different schema with
/// [`Error::SchemaMismatch`]. The commit checks again, against the index as
/// it is then.
///
/// ```
/// use mosaicrs::storage::{DatasetVersion, Location};
/// use mosaicrs::writer::{check_save_mode_at, SaveMode};
/// use arrow::datatypes::{DataType, Field, Schema};
/// let dir = tempfile::tempdir().unwrap();
/// let schema = Schema::new(vec![Field::new("x", DataType::Int64, false)]);
/// let base = check_save_mode_at(&Location::local(dir.path()), &schema, SaveMode::ErrorIfExists);
/// assert_eq!(base.unwrap(), DatasetVersion::Absent);
/// ```
pub fn check_save_mode_at(
    location: &Location,
    schema: &Schema,
    mode: SaveMode,
) -> Result<DatasetVersion> {
    check_save_mode_with(location, schema, mode, &CommitOptions::default())
}

/// [`check_save_mode_at`] for a commit with `options`: with
/// [`CommitOptions::merge_schema`] an append may add nullable columns.
pub fn check_save_mode_with(
    location: &Location,
    schema: &Schema,
    mode: SaveMode,
    options: &CommitOptions,
) -> Result<DatasetVersion> {
    let (current, existing) = location.load_index_versioned()?;
    plan_commit(
        &location.display_path(),
        schema,
        mode,
        existing,
        false,
        options.merge_schema,
    )?;
    Ok(current)
}

/// The version ([`DatasetVersion`]) of the dataset committed in `dir` now.
///
/// ```
/// use mosaicrs::storage::DatasetVersion;
/// use mosaicrs::writer::dataset_version;
/// let dir = tempfile::tempdir().unwrap();
/// assert_eq!(dataset_version(dir.path()).unwrap(), DatasetVersion::Absent);
/// ```
pub fn dataset_version(dir: &Path) -> Result<DatasetVersion> {
    dataset_version_at(&Location::local(dir))
}

/// [`dataset_version`] for any [`Location`]: on an object store, the
/// e-tag and version of the index object.
pub fn dataset_version_at(location: &Location) -> Result<DatasetVersion> {
    Ok(location.load_index_versioned()?.0)
}

/// Makes `shards` (all from write `write_id`) visible in the dataset at `dir`,
/// against whatever the dataset holds at the moment of the commit.
///
/// Same as [`commit_from`] with the version read at commit time: appends
/// never lose another writer's commit, but an overwrite replaces whatever is
/// there. Writers that read the dataset before writing (to check a schema,
/// or to decide to overwrite) should pass that version to [`commit_from`].
pub fn commit(
    dir: &Path,
    schema: &Schema,
    write_id: &str,
    shards: Vec<ShardEntry>,
    mode: SaveMode,
) -> Result<CommitOutcome> {
    commit_at(&Location::local(dir), schema, write_id, shards, mode, None)
}

/// Makes `shards` (all from write `write_id`) visible in the dataset at `dir`,
/// provided no other writer changed it in a way that this write would undo.
///
/// `base` is the version the writer read before it started
/// ([`dataset_version`]). The commit holds an exclusive lock on the dataset
/// folder while it reads the current index, publishes the new one (temp
/// file, fsync, rename) and removes garbage, so concurrent commits take
/// turns, across threads and processes:
///
/// - `Append` onto a dataset that changed since `base` re-applies the append
///   to the newer index (the schema is checked again): both writes land.
/// - `Overwrite` (and `ErrorIfExists` finding a dataset that appeared) of a
///   dataset that changed since `base` fails with [`Error::Conflict`].
///
/// The new index is checked before it is published. Afterwards the files of
/// `write_id` that the index does not list are deleted (failed or
/// speculative attempts, temp files), and `Overwrite` deletes the shards
/// that the replaced index listed; no other file is ever deleted. A write
/// that does not commit removes its own files and leaves the dataset as it
/// was.
pub fn commit_from(
    dir: &Path,
    schema: &Schema,
    write_id: &str,
    shards: Vec<ShardEntry>,
    mode: SaveMode,
    base: &DatasetVersion,
) -> Result<CommitOutcome> {
    commit_at(
        &Location::local(dir),
        schema,
        write_id,
        shards,
        mode,
        Some(base),
    )
}

/// [`commit_from`] for any [`Location`]; `base` `None` means the version
/// found at commit time (as [`commit`]).
///
/// On an object store the index is published with a conditional write:
/// create-if-absent for a new dataset (`If-None-Match: *`), and a replace
/// of exactly the index version read (`If-Match`) otherwise. A writer that
/// loses that race reads the index again and decides again: an append is
/// re-applied, anything else fails with [`Error::Conflict`].
pub fn commit_at(
    location: &Location,
    schema: &Schema,
    write_id: &str,
    shards: Vec<ShardEntry>,
    mode: SaveMode,
    base: Option<&DatasetVersion>,
) -> Result<CommitOutcome> {
    commit_at_with(
        location,
        schema,
        write_id,
        shards,
        mode,
        base,
        &CommitOptions::default(),
    )
}

/// [`commit_at`] with [`CommitOptions`]: the writer and user metadata the
/// commit records, and whether an append may add columns.
pub fn commit_at_with(
    location: &Location,
    schema: &Schema,
    write_id: &str,
    shards: Vec<ShardEntry>,
    mode: SaveMode,
    base: Option<&DatasetVersion>,
    options: &CommitOptions,
) -> Result<CommitOutcome> {
    validate_write_id(write_id)?;
    if let Location::Local(dir) = location {
        fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    for shard in &shards {
        check_shard(location, write_id, shard)?;
    }
    let _lock = DirLock::acquire_at(location)?;
    let mut base = base.cloned();
    for attempt in 0..PUBLISH_ATTEMPTS {
        let (current, existing) = location.load_index_versioned()?;
        // After a lost race the first version read stays the base, so the
        // plan sees that the dataset changed.
        let changed = *base.get_or_insert_with(|| current.clone()) != current;
        let plan = match plan_commit(
            &location.display_path(),
            schema,
            mode,
            existing,
            changed,
            options.merge_schema,
        ) {
            Ok(plan) => plan,
            Err(e) => {
                let _ = remove_own_files(location, write_id);
                return Err(e);
            }
        };
        let (mode_name, kept, writes, replaced) = match plan {
            CommitAction::Skip { total_rows } => {
                let removed = remove_own_files(location, write_id)?;
                return Ok(CommitOutcome {
                    committed: false,
                    total_rows,
                    removed,
                });
            }
            CommitAction::Publish {
                mode_name,
                kept,
                writes,
                replaced,
            } => (mode_name, kept, writes, replaced),
        };
        let index = build_index(schema, write_id, &shards, mode_name, kept, writes)?;
        match publish(location, &index, &current) {
            Ok(true) => {}
            Ok(false) => {
                // Another commit landed between our read and our write.
                std::thread::sleep(std::time::Duration::from_millis(10 << attempt.min(6)));
                continue;
            }
            Err(e) => {
                // A failed rename publishes nothing, so the shards can go; a
                // failed object-store request may still have landed, so they stay.
                if matches!(location, Location::Local(_)) {
                    let _ = remove_own_files(location, write_id);
                }
                return Err(e);
            }
        }
        // The commit point has passed: what follows only removes garbage, so a
        // failure here must not be reported as a failed commit.
        let listed = listed_names(Some(&index));
        let mut removed = remove_unlisted(location, write_id, &listed).unwrap_or_default();
        for name in replaced {
            if !listed.contains(name.as_str()) && delete(location, &name) {
                removed.push(name);
            }
        }
        removed.sort();
        return Ok(CommitOutcome {
            committed: true,
            total_rows: index.total_rows,
            removed,
        });
    }
    let _ = abort_write_at(location, write_id);
    Err(Error::Conflict {
        path: location.display_path(),
        detail: format!("the index changed under {PUBLISH_ATTEMPTS} conditional writes in a row"),
    })
}

/// Conditional writes lost in a row before a commit gives up (object stores;
/// a local commit holds the lock and never loses one).
const PUBLISH_ATTEMPTS: u32 = 20;

/// Publishes `index` if the committed version is still `current`; false when
/// another writer's conditional write got there first.
fn publish(location: &Location, index: &Index, current: &DatasetVersion) -> Result<bool> {
    match location {
        Location::Local(dir) => {
            // Optimistic re-check, for file systems where the lock is advisory
            // only between cooperating hosts (NFS without lockd): the index we
            // build on must still be the one on disk right before the rename.
            if location.load_index_versioned()?.0 != *current {
                return Err(Error::Conflict {
                    path: dir.to_path_buf(),
                    detail: "the index was replaced during the commit".into(),
                });
            }
            index.store_atomic(dir)?;
            Ok(true)
        }
        Location::Remote(store) => {
            let bytes = index.checked_json(&PathBuf::from(store.url_of(INDEX_FILE)))?;
            store.put_if(INDEX_FILE, bytes, current)
        }
    }
}

fn build_index(
    schema: &Schema,
    write_id: &str,
    shards: &[ShardEntry],
    mode_name: &str,
    kept: Vec<ShardEntry>,
    previous_writes: Vec<WriteRecord>,
) -> Result<Index> {
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
    let mut all_shards = kept;
    all_shards.extend(shards.iter().cloned());
    let mut writes = previous_writes;
    writes.push(record);
    Index::new(schema, all_shards, writes)
}

/// What a commit will do, decided from the current index.
enum CommitAction {
    /// Publish nothing (`Ignore` over an existing dataset).
    Skip { total_rows: u64 },
    /// Publish an index of `kept` plus the new shards.
    Publish {
        mode_name: &'static str,
        kept: Vec<ShardEntry>,
        writes: Vec<WriteRecord>,
        /// Shards of the replaced index that no longer belong to the dataset.
        replaced: Vec<String>,
    },
}

fn plan_commit(
    dir: &Path,
    schema: &Schema,
    mode: SaveMode,
    existing: Option<Index>,
    changed: bool,
    merge_schema: bool,
) -> Result<CommitAction> {
    let conflict = |detail: &str| Error::Conflict {
        path: dir.to_path_buf(),
        detail: detail.to_string(),
    };
    Ok(match (mode, existing) {
        (SaveMode::ErrorIfExists, Some(_)) if changed => {
            return Err(conflict("a dataset was created there"))
        }
        (SaveMode::ErrorIfExists, Some(_)) => {
            return Err(Error::AlreadyExists {
                path: dir.to_path_buf(),
            })
        }
        (SaveMode::Ignore, Some(index)) => CommitAction::Skip {
            total_rows: index.total_rows,
        },
        (SaveMode::Append, Some(index)) => {
            let existing_schema = index.arrow_schema()?;
            // With mergeSchema the published schema is `schema`: the
            // existing columns followed by the added ones.
            if let Some(detail) = append_difference(&existing_schema, schema, merge_schema) {
                if changed {
                    return Err(conflict(&format!(
                        "its schema no longer matches this append: {detail}"
                    )));
                }
                // A dataset written with layout options stores other columns
                // than its input had: say which options an append needs.
                let hint = match layout_hint(&existing_schema) {
                    Some(options) if layout_hint(schema).as_deref() != Some(options.as_str()) => {
                        format!(
                            " (the dataset was written with the layout options {options}; \
                             append with the same options)"
                        )
                    }
                    _ => String::new(),
                };
                return Err(Error::SchemaMismatch {
                    path: dir.to_path_buf(),
                    detail: format!("cannot append: {detail}{hint}"),
                });
            }
            CommitAction::Publish {
                mode_name: "append",
                kept: index.shards,
                writes: index.writes,
                replaced: Vec::new(),
            }
        }
        (SaveMode::Overwrite, Some(_)) if changed => {
            return Err(conflict(
                "an overwrite must not replace a commit it has not seen",
            ))
        }
        (SaveMode::Overwrite, Some(index)) => CommitAction::Publish {
            mode_name: "overwrite",
            kept: Vec::new(),
            writes: index.writes,
            replaced: index.shards.into_iter().map(|s| s.path).collect(),
        },
        (SaveMode::Append | SaveMode::Overwrite, None) if changed => {
            return Err(conflict("its index was removed"))
        }
        (_, None) => CommitAction::Publish {
            mode_name: "create",
            kept: Vec::new(),
            writes: Vec::new(),
            replaced: Vec::new(),
        },
    })
}

/// Why `incoming` cannot be appended to a dataset of schema `existing`, or
/// `None`. Added nullable columns pass with `merge_schema` (the rule of
/// [`added_columns`]); without it, columns added after the existing ones
/// are refused with the option to set.
fn append_difference(existing: &Schema, incoming: &Schema, merge_schema: bool) -> Option<String> {
    let detail = match added_columns(existing, incoming) {
        Ok([]) => return None,
        Ok(_) if merge_schema => return None,
        Err(detail) if merge_schema => return Some(detail),
        Ok(_) | Err(_) => schema_difference(existing, incoming)?,
    };
    let (old, new) = (existing.fields(), incoming.fields());
    let prefix = Schema::new(new[..old.len().min(new.len())].to_vec());
    if new.len() <= old.len() || schema_difference(existing, &prefix).is_some() {
        return Some(detail);
    }
    let names = new[old.len()..]
        .iter()
        .map(|f| format!("{:?}", f.name()))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "the input adds columns {names}; to add them to the dataset set \
         .option(\"mergeSchema\", \"true\") (Python: merge_schema=True, CLI: --merge-schema)"
    ))
}

/// An exclusive advisory lock on a dataset folder, held while a commit reads,
/// publishes and cleans up; released when dropped (the descriptor closes).
///
/// The folder itself is locked (`flock` on its descriptor), so no lock file
/// is left in the dataset. Where the file system refuses `flock`, the
/// commit still re-checks the index right before it renames.
struct DirLock {
    _dir: File,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<Self> {
        let file = File::open(dir).map_err(|e| Error::io(dir, e))?;
        #[cfg(unix)]
        {
            use rustix::fs::{flock, FlockOperation};
            match flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => {}
                // No lock support here (some network file systems): the
                // optimistic re-check before the rename still applies.
                Err(rustix::io::Errno::NOLCK | rustix::io::Errno::OPNOTSUPP) => {}
                Err(e) => return Err(Error::io(dir, std::io::Error::from(e))),
            }
        }
        Ok(DirLock { _dir: file })
    }

    /// The lock for a local dataset; object stores rely on conditional writes.
    fn acquire_at(location: &Location) -> Result<Option<Self>> {
        match location {
            Location::Local(dir) => Self::acquire(dir).map(Some),
            Location::Remote(_) => Ok(None),
        }
    }
}

/// Deletes every file of write `write_id` that the current index does not
/// list (a job abort), returning the deleted names.
pub fn abort_write(dir: &Path, write_id: &str) -> Result<Vec<String>> {
    abort_write_at(&Location::local(dir), write_id)
}

/// [`abort_write`] for any [`Location`].
pub fn abort_write_at(location: &Location, write_id: &str) -> Result<Vec<String>> {
    validate_write_id(write_id)?;
    if let Location::Local(dir) = location {
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
    }
    let _lock = DirLock::acquire_at(location)?;
    remove_own_files(location, write_id)
}

/// [`abort_write_at`] for a caller that holds the lock.
fn remove_own_files(location: &Location, write_id: &str) -> Result<Vec<String>> {
    let index = location.load_index_versioned()?.1;
    remove_unlisted(location, write_id, &listed_names(index.as_ref()))
}

fn listed_names(index: Option<&Index>) -> HashSet<&str> {
    index
        .iter()
        .flat_map(|i| i.shards.iter().map(|s| s.path.as_str()))
        .collect()
}

fn belongs_to_write(name: &str, write_id: &str) -> bool {
    let prefix = ShardName::write_prefix(write_id);
    name.strip_prefix(TEMP_PREFIX)
        .unwrap_or(name)
        .starts_with(&prefix)
}

/// Removes the files of write `write_id` (shards and temp shards) that
/// `listed` does not contain.
fn remove_unlisted(
    location: &Location,
    write_id: &str,
    listed: &HashSet<&str>,
) -> Result<Vec<String>> {
    let unlisted = |name: &str| belongs_to_write(name, write_id) && !listed.contains(name);
    let mut removed = Vec::new();
    match location {
        Location::Local(dir) => {
            let entries = match fs::read_dir(dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(Error::io(dir, e)),
            };
            let suffix = format!(".{SHARD_EXTENSION}");
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(dir, e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let base = name.strip_prefix(TEMP_PREFIX).unwrap_or(&name);
                let is_shard_file = base.starts_with("part-") && base.ends_with(&suffix);
                if !is_shard_file || !unlisted(&name) {
                    continue;
                }
                let path = entry.path();
                match fs::remove_file(&path) {
                    Ok(()) => removed.push(name),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io(&path, e)),
                }
            }
        }
        Location::Remote(store) => {
            for (name, _, _) in store.list()? {
                if unlisted(&name) {
                    store.delete(&name)?;
                    removed.push(name);
                }
            }
        }
    }
    removed.sort();
    Ok(removed)
}

/// Deletes a replaced shard after a commit; true when it is gone.
fn delete(location: &Location, name: &str) -> bool {
    match location {
        Location::Local(dir) => fs::remove_file(dir.join(name)).is_ok(),
        Location::Remote(store) => store.delete(name).is_ok(),
    }
}

/// A shard handed to commit must be a sealed shard of this write, stored
/// with the size the writer reported.
fn check_shard(location: &Location, write_id: &str, shard: &ShardEntry) -> Result<()> {
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
    let (path, size) = match location {
        Location::Local(dir) => {
            let path = dir.join(&shard.path);
            match fs::metadata(&path) {
                Ok(meta) => (path, Some(meta.len())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (path, None),
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
        Location::Remote(store) => (
            PathBuf::from(store.url_of(&shard.path)),
            store.size_of(&shard.path)?,
        ),
    };
    match size {
        Some(size) if size == shard.bytes => Ok(()),
        Some(size) => Err(Error::CorruptShard {
            path,
            reason: format!(
                "the writer reported {} bytes, the stored shard has {size}",
                shard.bytes
            ),
        }),
        None => Err(Error::MissingShard { path }),
    }
}
