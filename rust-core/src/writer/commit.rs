//! The commit: one atomic index write that makes a write's shards visible.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::datatypes::Schema;

use crate::format::{
    is_temp_name, schema_difference, unique_token, Checksum, Index, ShardEntry, ShardName,
    WriteRecord, INDEX_FILE, SHARD_EXTENSION, TEMP_PREFIX,
};
use crate::storage::{Location, RemoteStore};
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

/// Which committed state of a dataset a writer started from.
///
/// A writer reads it (with [`dataset_version`]) before it writes any shard
/// and hands it to [`commit_from`], which publishes only if the dataset is
/// still in that state, or, for an append, re-applies the append to the
/// newer index. On local disks the version is the xxh3 of the index bytes; on
/// object stores it is the index object's e-tag and version.
///
/// It serialises (serde, e.g. JSON) so a Spark driver can carry it from the
/// start of a job to its commit.
///
/// ```
/// use mosaicrs::writer::DatasetVersion;
/// let v = DatasetVersion::Index { e_tag: Some("\"abc\"".into()), version: None };
/// let json = serde_json::to_string(&v).unwrap();
/// assert_eq!(serde_json::from_str::<DatasetVersion>(&json).unwrap(), v);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetVersion {
    /// No committed dataset at the location.
    Absent,
    /// The index as it was read.
    Index {
        /// Content hash (local) or entity tag (object store) of the index.
        e_tag: Option<String>,
        /// Object version, on stores with versioning.
        version: Option<String>,
    },
}

/// The version of the dataset committed in `dir` now.
///
/// ```
/// use mosaicrs::writer::{dataset_version, DatasetVersion};
/// let dir = tempfile::tempdir().unwrap();
/// assert_eq!(dataset_version(dir.path()).unwrap(), DatasetVersion::Absent);
/// ```
pub fn dataset_version(dir: &Path) -> Result<DatasetVersion> {
    Ok(read_current(dir)?.0)
}

/// Reads the committed index and its version in one read, so the two agree.
fn read_current(dir: &Path) -> Result<(DatasetVersion, Option<Index>)> {
    let path = Index::path_in(dir);
    match fs::read(&path) {
        Ok(bytes) => {
            let version = DatasetVersion::Index {
                e_tag: Some(Checksum::of(&bytes).to_string()),
                version: None,
            };
            let index = Index::parse(&bytes, &path)?;
            Ok((version, Some(index)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((DatasetVersion::Absent, None)),
        Err(e) => Err(Error::io(&path, e)),
    }
}

/// [`dataset_version`] for any [`Location`]: on an object store, the
/// e-tag and version of the index object.
pub fn dataset_version_at(location: &Location) -> Result<DatasetVersion> {
    match location {
        Location::Local(dir) => dataset_version(dir),
        Location::Remote(store) => Ok(read_remote(store)?.0),
    }
}

fn read_remote(store: &RemoteStore) -> Result<(DatasetVersion, Option<Index>)> {
    match store.get_versioned(INDEX_FILE)? {
        None => Ok((DatasetVersion::Absent, None)),
        Some((bytes, version)) => {
            let path = PathBuf::from(store.url_of(INDEX_FILE));
            Ok((version, Some(Index::parse(&bytes, &path)?)))
        }
    }
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
    match location {
        Location::Local(dir) => commit_inner(dir, schema, write_id, shards, mode, base),
        Location::Remote(store) => commit_remote(store, schema, write_id, shards, mode, base),
    }
}

/// Conditional writes lost in a row before a commit gives up.
const REMOTE_COMMIT_ATTEMPTS: u32 = 20;

fn commit_remote(
    store: &RemoteStore,
    schema: &Schema,
    write_id: &str,
    shards: Vec<ShardEntry>,
    mode: SaveMode,
    base: Option<&DatasetVersion>,
) -> Result<CommitOutcome> {
    validate_write_id(write_id)?;
    let dir = PathBuf::from(store.url());
    for shard in &shards {
        check_shard_owner(write_id, shard)?;
        match store.size_of(&shard.path)? {
            Some(size) if size == shard.bytes => {}
            Some(size) => {
                return Err(Error::CorruptShard {
                    path: PathBuf::from(store.url_of(&shard.path)),
                    reason: format!(
                        "the writer reported {} bytes, the object has {size}",
                        shard.bytes
                    ),
                })
            }
            None => {
                return Err(Error::MissingShard {
                    path: PathBuf::from(store.url_of(&shard.path)),
                })
            }
        }
    }
    let mut base = base.cloned();
    for attempt in 0..REMOTE_COMMIT_ATTEMPTS {
        let (current, existing) = read_remote(store)?;
        let changed = *base.get_or_insert_with(|| current.clone()) != current;
        let listed_before: HashSet<String> = existing
            .iter()
            .flat_map(|i| i.shards.iter().map(|s| s.path.clone()))
            .collect();
        let plan = match plan_commit(&dir, schema, mode, existing, changed) {
            Ok(plan) => plan,
            Err(e) => {
                let _ = remove_remote_unlisted(store, write_id, &listed_before);
                return Err(e);
            }
        };
        let (mode_name, kept, writes, replaced) = match plan {
            Plan::Skip { total_rows } => {
                let removed = remove_remote_unlisted(store, write_id, &listed_before)?;
                return Ok(CommitOutcome {
                    committed: false,
                    total_rows,
                    removed,
                });
            }
            Plan::Publish {
                mode_name,
                kept,
                writes,
                replaced,
            } => (mode_name, kept, writes, replaced),
        };
        let index = build_index(schema, write_id, &shards, mode_name, kept, writes)?;
        let bytes = index.checked_json(&PathBuf::from(store.url_of(INDEX_FILE)))?;
        if !store.put_if(INDEX_FILE, bytes, &current)? {
            // Another commit landed between our read and our write.
            std::thread::sleep(std::time::Duration::from_millis(10 << attempt.min(6)));
            continue;
        }
        let listed: HashSet<String> = index.shards.iter().map(|s| s.path.clone()).collect();
        let mut removed = remove_remote_unlisted(store, write_id, &listed).unwrap_or_default();
        for name in replaced {
            if !listed.contains(&name) && store.delete(&name).is_ok() {
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
    let _ = abort_write_at(&Location::Remote(store.clone()), write_id);
    Err(Error::Conflict {
        path: dir,
        detail: format!(
            "the index changed under {REMOTE_COMMIT_ATTEMPTS} conditional writes in a row"
        ),
    })
}

/// Deletes the objects of `write_id` in the dataset that `listed` does not hold.
fn remove_remote_unlisted(
    store: &RemoteStore,
    write_id: &str,
    listed: &HashSet<String>,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for (name, _, _) in store.list()? {
        if belongs_to_write(&name, write_id) && !listed.contains(&name) {
            store.delete(&name)?;
            removed.push(name);
        }
    }
    removed.sort();
    Ok(removed)
}

/// [`abort_write`] for any [`Location`].
pub fn abort_write_at(location: &Location, write_id: &str) -> Result<Vec<String>> {
    match location {
        Location::Local(dir) => abort_write(dir, write_id),
        Location::Remote(store) => {
            validate_write_id(write_id)?;
            let listed: HashSet<String> = read_remote(store)?
                .1
                .iter()
                .flat_map(|i| i.shards.iter().map(|s| s.path.clone()))
                .collect();
            remove_remote_unlisted(store, write_id, &listed)
        }
    }
}

/// [`check_append_schema`] for any [`Location`].
pub fn check_append_schema_at(location: &Location, schema: &Schema) -> Result<()> {
    let existing = match location {
        Location::Local(dir) => return check_append_schema(dir, schema),
        Location::Remote(store) => read_remote(store)?.1,
    };
    let Some(index) = existing else {
        return Ok(());
    };
    match schema_difference(&*index.arrow_schema()?, schema) {
        None => Ok(()),
        Some(detail) => Err(Error::SchemaMismatch {
            path: location.display_path(),
            detail: format!("cannot append: {detail}"),
        }),
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
    commit_inner(dir, schema, write_id, shards, mode, None)
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
    commit_inner(dir, schema, write_id, shards, mode, Some(base))
}

fn commit_inner(
    dir: &Path,
    schema: &Schema,
    write_id: &str,
    shards: Vec<ShardEntry>,
    mode: SaveMode,
    base: Option<&DatasetVersion>,
) -> Result<CommitOutcome> {
    validate_write_id(write_id)?;
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for shard in &shards {
        check_shard_on_disk(dir, write_id, shard)?;
    }
    let _lock = DirLock::acquire(dir)?;
    let (current, existing) = read_current(dir)?;
    let changed = base.is_some_and(|b| *b != current);
    let plan = match plan_commit(dir, schema, mode, existing, changed) {
        Ok(plan) => plan,
        Err(e) => {
            let _ = remove_own_files(dir, write_id);
            return Err(e);
        }
    };
    let (mode_name, old_shards, previous_writes, replaced) = match plan {
        Plan::Skip { total_rows } => {
            let removed = remove_own_files(dir, write_id)?;
            return Ok(CommitOutcome {
                committed: false,
                total_rows,
                removed,
            });
        }
        Plan::Publish {
            mode_name,
            kept,
            writes,
            replaced,
        } => (mode_name, kept, writes, replaced),
    };

    let index = build_index(
        schema,
        write_id,
        &shards,
        mode_name,
        old_shards,
        previous_writes,
    )?;
    // Optimistic re-check, for file systems where the lock is advisory only
    // between cooperating hosts (NFS without lockd): the index we build on
    // must still be the one on disk right before the rename.
    if read_current(dir)?.0 != current {
        let _ = remove_own_files(dir, write_id);
        return Err(Error::Conflict {
            path: dir.to_path_buf(),
            detail: "the index was replaced during the commit".into(),
        });
    }
    if let Err(e) = index.store_atomic(dir) {
        let _ = remove_own_files(dir, write_id);
        return Err(e);
    }

    // The commit point has passed: what follows only removes garbage, so a
    // failure here must not be reported as a failed commit.
    let listed: HashSet<&str> = index.shards.iter().map(|s| s.path.as_str()).collect();
    let mut removed =
        remove_unlisted(dir, &listed, |name| belongs_to_write(name, write_id)).unwrap_or_default();
    for name in replaced {
        if listed.contains(name.as_str()) {
            continue;
        }
        let path = dir.join(&name);
        if fs::remove_file(&path).is_ok() {
            removed.push(name);
        }
    }
    removed.sort();
    Ok(CommitOutcome {
        committed: true,
        total_rows: index.total_rows,
        removed,
    })
}

/// What a commit will do, decided from the current index.
enum Plan {
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
) -> Result<Plan> {
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
        (SaveMode::Ignore, Some(index)) => Plan::Skip {
            total_rows: index.total_rows,
        },
        (SaveMode::Append, Some(index)) => {
            let existing_schema = index.arrow_schema()?;
            if let Some(detail) = schema_difference(&existing_schema, schema) {
                if changed {
                    return Err(conflict(&format!(
                        "its schema no longer matches this append: {detail}"
                    )));
                }
                return Err(Error::SchemaMismatch {
                    path: dir.to_path_buf(),
                    detail: format!("cannot append: {detail}"),
                });
            }
            Plan::Publish {
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
        (SaveMode::Overwrite, Some(index)) => Plan::Publish {
            mode_name: "overwrite",
            kept: Vec::new(),
            writes: index.writes,
            replaced: index.shards.into_iter().map(|s| s.path).collect(),
        },
        (SaveMode::Append | SaveMode::Overwrite, None) if changed => {
            return Err(conflict("its index was removed"))
        }
        (_, None) => Plan::Publish {
            mode_name: "create",
            kept: Vec::new(),
            writes: Vec::new(),
            replaced: Vec::new(),
        },
    })
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
}

/// Deletes every file of write `write_id` that the current index does not
/// list (a job abort), returning the deleted names.
pub fn abort_write(dir: &Path, write_id: &str) -> Result<Vec<String>> {
    validate_write_id(write_id)?;
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let _lock = DirLock::acquire(dir)?;
    remove_own_files(dir, write_id)
}

/// [`abort_write`] for a caller that holds the lock.
fn remove_own_files(dir: &Path, write_id: &str) -> Result<Vec<String>> {
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
    check_shard_owner(write_id, shard)?;
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

/// A shard handed to commit must be a sealed shard of this write.
fn check_shard_owner(write_id: &str, shard: &ShardEntry) -> Result<()> {
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
    Ok(())
}
