//! The commit: one atomic index write that makes a write's shards visible.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use arrow::datatypes::Schema;

use crate::format::{
    added_columns, describe_added_columns, is_temp_name, schema_difference, unique_token,
    version_record_name, CommitInfo, Index, ShardEntry, ShardName, WriteRecord, INDEX_FILE,
    SHARD_EXTENSION, TEMP_PREFIX,
};
use crate::storage::{committed_at_ms, DatasetVersion, Location};
use crate::writer::column_layout::layout_hint;
use crate::writer::shard_writer::validate_write_id;
use crate::writer::WriteOptions;
use crate::{Error, Result};

/// What to do when the target folder already holds a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SaveMode {
    /// Fail with [`Error::AlreadyExists`] (Spark's default).
    #[default]
    ErrorIfExists,
    /// Add the new shards to the existing index; the schema must match.
    Append,
    /// Replace the index. The old shards stay for the versions that list
    /// them, until [`vacuum`](crate::history::vacuum) removes those versions.
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
    /// Files deleted afterwards: leftovers of this write's failed attempts.
    pub removed: Vec<String>,
    /// The version the commit made (`committed`), or the newest version it
    /// found (`Ignore`); `None` when there is no dataset.
    pub version: Option<u64>,
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

/// The commit side of [`WriteOptions`] (here rather than in `options.rs`,
/// which the shard writer uses and which therefore uses nothing of the commit).
impl WriteOptions {
    /// What the commit of this write records: [`WriteOptions::committer`]
    /// and the `metadata.<key>` options.
    ///
    /// ```
    /// use mosaicrs::writer::WriteOptions;
    /// let mut options = WriteOptions::from_options([("metadata.Run", "nightly")])?;
    /// options.committer.insert("engine".into(), "python".into());
    /// let commit = options.commit_options();
    /// assert_eq!(commit.metadata["Run"], "nightly");
    /// assert_eq!(commit.writer["engine"], "python");
    /// # Ok::<(), mosaicrs::Error>(())
    /// ```
    pub fn commit_options(&self) -> CommitOptions {
        CommitOptions {
            writer: self.committer.clone(),
            metadata: self.metadata.clone(),
            merge_schema: self.merge_schema,
        }
    }
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
/// folder while it reads the current index, creates the next version's
/// record (temp file, fsync, hard link: the commit point), replaces the
/// head (temp file, fsync, rename) and removes garbage, so concurrent
/// commits take turns, across threads and processes:
///
/// - `Append` onto a dataset that changed since `base` re-applies the append
///   to the newer index (the schema is checked again): both writes land.
/// - `Overwrite` (and `ErrorIfExists` finding a dataset that appeared) of a
///   dataset that changed since `base` fails with [`Error::Conflict`].
///
/// The new index is checked before it is published. Afterwards the files of
/// `write_id` that the index does not list are deleted (failed or
/// speculative attempts, temp files); no other file is ever deleted (the
/// shards an `Overwrite` replaced stay for the older versions, until
/// [`vacuum`](crate::history::vacuum)). A write
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
/// On an object store the version record is created with a conditional
/// write (`If-None-Match: *`), and the head replaced with one conditional on
/// the head read (`If-Match`). A writer that loses the record's race reads
/// the winner's record and decides again: an append is re-applied, anything
/// else fails with [`Error::Conflict`].
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
///
/// The commit creates the record of the next version
/// (`_versions/<N>.json`, create-if-absent: the commit point) and then
/// replaces the head `index.json` with the same bytes. A writer that finds
/// the record already created by another commit re-reads it and decides
/// again against it, as after a lost compare-and-swap; a head left behind
/// its newest record (a crash between the two writes) is rolled forward.
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
    let path = location.display_path();
    commit_versioned(location, write_id, base, |current, changed| {
        let previous = current.cloned();
        let plan = plan_commit(&path, schema, mode, previous, changed, options.merge_schema)?;
        Ok(match plan {
            CommitAction::Skip { total_rows } => Decision::Skip { total_rows },
            CommitAction::Publish {
                mode_name,
                kept,
                writes,
            } => {
                let index = build_index(schema, write_id, &shards, mode_name, kept, writes)?;
                let mut version = NewVersion::of(index, current, mode_name, write_id, options);
                if let (Some(previous), "append") = (current, mode_name) {
                    let previous_schema = previous.arrow_schema()?;
                    let added = added_columns(&previous_schema, schema).unwrap_or(&[]);
                    if let (Some(commit), false) = (version.index.commit.as_mut(), added.is_empty())
                    {
                        commit.schema_change = Some(describe_added_columns(added));
                    }
                }
                Decision::Publish(Box::new(version))
            }
        })
    })
}

/// What a commit publishes: the index of the next version (its `version`
/// and `commit.committed_at_ms` are set at publication).
pub(crate) struct NewVersion {
    pub(crate) index: Index,
}

impl NewVersion {
    /// The next version `index`, made from `previous` by `operation`.
    pub(crate) fn of(
        mut index: Index,
        previous: Option<&Index>,
        operation: &str,
        write_id: &str,
        options: &CommitOptions,
    ) -> Self {
        let before: HashMap<&str, u64> = previous
            .iter()
            .flat_map(|p| p.shards.iter().map(|s| (s.path.as_str(), s.rows)))
            .collect();
        let after: HashSet<&str> = index.shards.iter().map(|s| s.path.as_str()).collect();
        let added: Vec<&ShardEntry> = index
            .shards
            .iter()
            .filter(|s| !before.contains_key(s.path.as_str()))
            .collect();
        let removed: Vec<u64> = before
            .iter()
            .filter(|(path, _)| !after.contains(*path))
            .map(|(_, rows)| *rows)
            .collect();
        index.commit = Some(CommitInfo {
            operation: operation.to_string(),
            committed_at_ms: 0,
            write_id: write_id.to_string(),
            rows_added: added.iter().map(|s| s.rows).sum(),
            rows_removed: removed.iter().sum(),
            shards_added: added.len() as u64,
            shards_removed: removed.len() as u64,
            writer: options.writer.clone(),
            metadata: options.metadata.clone(),
            restored_from: None,
            schema_change: None,
        });
        NewVersion { index }
    }
}

/// What a commit decided against the newest version.
pub(crate) enum Decision {
    /// Publish nothing (`Ignore` over an existing dataset).
    Skip { total_rows: u64 },
    /// Publish this version.
    Publish(Box<NewVersion>),
}

/// The commit protocol shared by every commit (writes, restore): under the
/// folder lock (local), `decide` builds the next version from the newest
/// one (`changed`: it is not the version `base` names), its record is
/// created if absent, then the head is replaced. Before the commit point
/// any failure removes the files of `write_id` that no version lists.
pub(crate) fn commit_versioned(
    location: &Location,
    write_id: &str,
    base: Option<&DatasetVersion>,
    mut decide: impl FnMut(Option<&Index>, bool) -> Result<Decision>,
) -> Result<CommitOutcome> {
    let _lock = DirLock::acquire_at(location)?;
    let fail = |e: Error| {
        let _ = remove_own_files(location, write_id);
        Err(e)
    };
    let mut base = base.cloned();
    let mut lost = 0;
    'read: while lost < PUBLISH_ATTEMPTS {
        let (head_version, head) = location.load_index_versioned()?;
        // After a lost race the first version read stays the base, so the
        // plan sees that the dataset changed.
        let head_changed = *base.get_or_insert_with(|| head_version.clone()) != head_version;
        let mut current = head;
        // True once `current` is a record newer than the head.
        let mut walked = false;
        loop {
            let next = current.as_ref().map_or(0, |i| i.version + 1);
            let decision = match decide(current.as_ref(), head_changed || walked) {
                Ok(decision) => decision,
                Err(e) => {
                    if walked {
                        roll_head_forward(location, &head_version, current.as_ref());
                    }
                    return fail(e);
                }
            };
            let mut version = match decision {
                Decision::Skip { total_rows } => {
                    if walked {
                        roll_head_forward(location, &head_version, current.as_ref());
                    }
                    let removed = remove_own_files(location, write_id)?;
                    return Ok(CommitOutcome {
                        committed: false,
                        total_rows,
                        removed,
                        version: current.as_ref().map(|i| i.version),
                    });
                }
                Decision::Publish(version) => version,
            };
            let index = &mut version.index;
            index.version = next;
            if let Some(commit) = index.commit.as_mut() {
                // Versions are ordered in time as in number, even across
                // hosts whose clocks disagree.
                let previous = current.as_ref().map_or(0, committed_at_ms);
                commit.committed_at_ms = now_ms().max(previous);
            }
            let bytes = match index.checked_json(&location.path_of(&version_record_name(next))) {
                Ok(bytes) => bytes,
                Err(e) => return fail(e),
            };
            match location.create_version_record(next, &bytes) {
                Ok(true) => {}
                Ok(false) => {
                    // Another commit made version `next` first: decide
                    // again against it.
                    lost += 1;
                    match location.read_version_record(next)? {
                        Some(newer) => {
                            current = Some(newer);
                            walked = true;
                            if lost >= PUBLISH_ATTEMPTS {
                                break 'read;
                            }
                            continue;
                        }
                        // Gone again (a vacuum of an abandoned record):
                        // start over from the head.
                        None => continue 'read,
                    }
                }
                Err(e) => {
                    // A local record that is not there published nothing, so
                    // the shards can go; a failed object-store request may
                    // still have landed, so they stay.
                    let absent = || matches!(location.read_version_record(next), Ok(None));
                    if matches!(location, Location::Local(_)) && absent() {
                        let _ = remove_own_files(location, write_id);
                    }
                    return Err(e);
                }
            }
            // The commit point has passed: what follows publishes the head
            // and removes garbage, so a failure here must not be reported
            // as a failed commit (the next commit rolls the head forward).
            let index = version.index;
            let _ = publish_head(location, &head_version, index.version, &bytes);
            let listed = listed_names(Some(&index));
            let removed = remove_unlisted(location, write_id, &listed).unwrap_or_default();
            return Ok(CommitOutcome {
                committed: true,
                total_rows: index.total_rows,
                removed,
                version: Some(index.version),
            });
        }
    }
    let _ = remove_own_files(location, write_id);
    Err(Error::Conflict {
        path: location.display_path(),
        detail: format!("other commits won {PUBLISH_ATTEMPTS} conditional writes in a row"),
    })
}

/// Conditional writes lost in a row before a commit gives up (object stores;
/// a local commit holds the lock and never loses one).
const PUBLISH_ATTEMPTS: u32 = 20;

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Replaces the head (read at `head_version`) with `bytes`, the record of
/// `version`, unless the head already is that version or newer.
///
/// Local: an atomic rename (under the folder lock). Object store: a put
/// conditional on the head read; when another writer moved the head first,
/// it is read again and replaced only if still older.
fn publish_head(
    location: &Location,
    head_version: &DatasetVersion,
    version: u64,
    bytes: &[u8],
) -> Result<()> {
    match location {
        Location::Local(dir) => {
            // Without a working lock (NFS without lockd) another host may
            // have moved the head meanwhile: never move it back.
            if let (_, Some(head)) = location.load_index_versioned()? {
                if head.version >= version {
                    return Ok(());
                }
            }
            Index::store_bytes_atomic(dir, bytes)
        }
        Location::Remote(store) => {
            let mut expected = head_version.clone();
            for _ in 0..PUBLISH_ATTEMPTS {
                if store.put_if(INDEX_FILE, bytes.to_vec(), &expected)? {
                    return Ok(());
                }
                let (now, head) = location.load_index_versioned()?;
                if head.is_some_and(|h| h.version >= version) {
                    return Ok(());
                }
                expected = now;
            }
            Ok(())
        }
    }
}

/// Rolls a head that was read at `head_version` forward to `newest`, a
/// record found newer than it; best effort (the next commit retries).
fn roll_head_forward(location: &Location, head_version: &DatasetVersion, newest: Option<&Index>) {
    if let Some(newest) = newest {
        let _ = publish_newest(location, head_version, newest);
    }
}

/// Makes the head (read at `head_version`) the newest version `newest`
/// unless it already is; the caller holds the lock.
pub(crate) fn publish_newest(
    location: &Location,
    head_version: &DatasetVersion,
    newest: &Index,
) -> Result<()> {
    publish_head(location, head_version, newest.version, &newest.to_json()?)
}

/// The newest committed version: the head, or a record newer than the head
/// that a commit interrupted between its two writes left. Returns the head's
/// own version (for conditional writes) with it.
pub(crate) fn newest_version(location: &Location) -> Result<(DatasetVersion, Option<Index>)> {
    let (head_version, head) = location.load_index_versioned()?;
    let mut newest = head;
    let mut next = newest.as_ref().map_or(0, |i| i.version + 1);
    while let Some(record) = location.read_version_record(next)? {
        newest = Some(record);
        next += 1;
    }
    Ok((head_version, newest))
}

/// Brings the head (`index.json`) up to the newest version record, after a
/// commit that was interrupted between creating its record and replacing
/// the head; returns the version the head is at afterwards (`None`: no
/// dataset). Commits do this on their own; readers never write.
///
/// ```
/// use mosaicrs::storage::Location;
/// use mosaicrs::writer::repair_head;
/// let dir = tempfile::tempdir().unwrap();
/// assert_eq!(repair_head(&Location::local(dir.path())).unwrap(), None);
/// ```
pub fn repair_head(location: &Location) -> Result<Option<u64>> {
    let _lock = DirLock::acquire_if_dir(location)?;
    let (head_version, newest) = newest_version(location)?;
    let Some(newest) = newest else {
        return Ok(None);
    };
    publish_newest(location, &head_version, &newest)?;
    Ok(location.load_index_versioned()?.1.map(|i| i.version))
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
        committed_at_ms: now_ms(),
    };
    let mut all_shards = kept;
    all_shards.extend(shards.iter().cloned());
    let mut writes = previous_writes;
    push_write(&mut writes, record);
    Index::new(schema, all_shards, writes)
}

/// Write records an index keeps (the newest ones): the version records hold
/// the whole history, so the head stays the size of its shard list however
/// many commits a dataset has.
pub const WRITES_KEPT: usize = 100;

/// Appends `record` to an index's write records, dropping the oldest beyond
/// [`WRITES_KEPT`].
pub(crate) fn push_write(writes: &mut Vec<WriteRecord>, record: WriteRecord) {
    writes.push(record);
    let excess = writes.len().saturating_sub(WRITES_KEPT);
    writes.drain(..excess);
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
        },
        (SaveMode::Append | SaveMode::Overwrite, None) if changed => {
            return Err(conflict("its index was removed"))
        }
        (_, None) => CommitAction::Publish {
            mode_name: "create",
            kept: Vec::new(),
            writes: Vec::new(),
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
pub(crate) struct DirLock {
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
    pub(crate) fn acquire_at(location: &Location) -> Result<Option<Self>> {
        match location {
            Location::Local(dir) => Self::acquire(dir).map(Some),
            Location::Remote(_) => Ok(None),
        }
    }

    /// [`DirLock::acquire_at`], with no lock for a local folder that does
    /// not exist (there is nothing to change there).
    pub(crate) fn acquire_if_dir(location: &Location) -> Result<Option<Self>> {
        match location {
            Location::Local(dir) if !dir.is_dir() => Ok(None),
            _ => Self::acquire_at(location),
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

/// [`abort_write_at`] for a caller that holds the lock. The newest version
/// counts, even when the head is behind it, so a retried commit of a write
/// whose record landed keeps its shards.
fn remove_own_files(location: &Location, write_id: &str) -> Result<Vec<String>> {
    let index = newest_version(location)?.1;
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
