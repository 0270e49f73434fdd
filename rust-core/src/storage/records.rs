//! Version records (`_versions/<N>.json`) on a location: the reads of any
//! version, and the create-if-absent write that is a commit's commit point.

use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::location::Location;
use crate::format::{
    parse_version_record_name, sync_dir, unique_token, version_record_name, Index, VersionSpec,
    TEMP_PREFIX, VERSIONS_DIR,
};
use crate::{Error, Result};

/// When the commit that made `index` happened (milliseconds since the Unix
/// epoch); format 1 indexes have only their write records.
pub(crate) fn committed_at_ms(index: &Index) -> u64 {
    match &index.commit {
        Some(commit) => commit.committed_at_ms,
        None => index.writes.last().map_or(0, |w| w.committed_at_ms),
    }
}

impl Location {
    /// Reads and checks version `spec` of the dataset's index: the one read
    /// of a version.
    ///
    /// `Latest` reads the head (`index.json`, one read). `Version(n)` reads
    /// the record of version `n` (or the head, when it is `n`).
    /// `AsOfTimestampMs(t)` finds the newest version committed at or
    /// before `t`: the head when it is that old, else a binary search over
    /// the kept records.
    ///
    /// Fails with [`Error::VersionNotFound`] for a version that is not kept,
    /// naming the oldest kept one, and with [`Error::InvalidArgument`] for
    /// a time before the oldest kept version.
    ///
    /// ```
    /// use mosaicrs::format::VersionSpec;
    /// use mosaicrs::storage::Location;
    /// use mosaicrs::Error;
    /// let dir = tempfile::tempdir().unwrap();
    /// let err = Location::local(dir.path()).load_index_at(&VersionSpec::Version(3)).unwrap_err();
    /// assert!(matches!(err, Error::NotADataset { .. }));
    /// ```
    pub fn load_index_at(&self, spec: &VersionSpec) -> Result<Index> {
        match *spec {
            VersionSpec::Latest => self.load_index(),
            VersionSpec::Version(version) => {
                if let Some(index) = self.read_version_record(version)? {
                    return Ok(index);
                }
                let head = self.load_index()?;
                if head.version == version {
                    return Ok(head);
                }
                Err(Error::VersionNotFound {
                    path: self.display_path(),
                    version,
                    oldest_kept: Some(self.oldest_kept_version(&head)?),
                })
            }
            VersionSpec::AsOfTimestampMs(at) => {
                let head = self.load_index()?;
                if committed_at_ms(&head) <= at {
                    return Ok(head);
                }
                // Commit times grow with version numbers, so the kept
                // records below the head are sorted by time too.
                let versions: Vec<u64> = self
                    .list_version_records()?
                    .into_iter()
                    .filter(|&v| v < head.version)
                    .collect();
                let (mut lo, mut hi) = (0usize, versions.len());
                let mut found = None;
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    let Some(index) = self.read_version_record(versions[mid])? else {
                        // Removed by a vacuum running now: look newer.
                        lo = mid + 1;
                        continue;
                    };
                    if committed_at_ms(&index) <= at {
                        found = Some(index);
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                found.ok_or_else(|| {
                    let oldest = versions.first().copied().unwrap_or(head.version);
                    Error::InvalidArgument(format!(
                        "no kept version of {} was committed at or before {}: the oldest kept \
                         version is {oldest}",
                        self.display_path().display(),
                        crate::format::format_timestamp_ms(at)
                    ))
                })
            }
        }
    }

    /// The oldest version that can be read: the oldest record, or the head
    /// when no record is older.
    pub(crate) fn oldest_kept_version(&self, head: &Index) -> Result<u64> {
        Ok(self
            .list_version_records()?
            .first()
            .map_or(head.version, |&v| v.min(head.version)))
    }

    /// The versions whose records are stored, oldest first.
    pub fn list_version_records(&self) -> Result<Vec<u64>> {
        let mut versions: Vec<u64> = self
            .list_versions_folder()?
            .into_iter()
            .filter_map(|(name, _, _)| parse_version_record_name(&name))
            .collect();
        versions.sort_unstable();
        Ok(versions)
    }

    /// Every file in the versions folder: (file name, size, age).
    pub(crate) fn list_versions_folder(&self) -> Result<Vec<(String, u64, Duration)>> {
        Ok(self.list_files_in(VERSIONS_DIR)?.unwrap_or_default())
    }

    /// The files directly inside `folder` of the dataset (`""`: the dataset
    /// folder itself): (file name, size, age). `None` when a local folder
    /// does not exist; links and folders are not listed.
    pub(crate) fn list_files_in(
        &self,
        folder: &str,
    ) -> Result<Option<Vec<(String, u64, Duration)>>> {
        let dir = match self {
            Location::Remote(store) => return store.list_in(folder).map(Some),
            Location::Local(dir) if folder.is_empty() => dir.clone(),
            Location::Local(dir) => dir.join(folder),
        };
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let now = SystemTime::now();
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let meta =
                fs::symlink_metadata(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
            if !meta.is_file() {
                continue;
            }
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            out.push((name, meta.len(), age));
        }
        Ok(Some(out))
    }

    /// The record of `version`, `None` when it is not stored. A record that
    /// names another version than its file is refused as invalid.
    pub fn read_version_record(&self, version: u64) -> Result<Option<Index>> {
        let name = version_record_name(version);
        let Some(bytes) = self.read_file(&name)? else {
            return Ok(None);
        };
        let path = self.path_of(&name);
        let index = Index::parse(&bytes, &path)?;
        if index.version != version {
            return Err(Error::InvalidIndex {
                path,
                reason: format!("the record holds version {}", index.version),
            });
        }
        Ok(Some(index))
    }

    /// Creates the record of `index.version` with `bytes` unless one exists
    /// (the commit point); false when another commit created it first.
    ///
    /// Local: a temp file, fsynced, hard-linked to the record name (a link
    /// never replaces a file), the folder fsynced. Object store: a put with
    /// `If-None-Match: *`.
    pub(crate) fn create_version_record(&self, version: u64, bytes: &[u8]) -> Result<bool> {
        let name = version_record_name(version);
        match self {
            Location::Remote(store) => {
                store.put_if(&name, bytes.to_vec(), &super::DatasetVersion::Absent)
            }
            Location::Local(dir) => {
                let folder = dir.join(VERSIONS_DIR);
                if !folder.is_dir() {
                    fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
                    sync_dir(dir)?;
                }
                let target = dir.join(&name);
                let tmp = folder.join(format!(
                    "{TEMP_PREFIX}{version:020}.json-{}",
                    unique_token()
                ));
                let result = (|| {
                    let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
                    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
                    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
                    match fs::hard_link(&tmp, &target) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            return Ok(false)
                        }
                        Err(e) => return Err(Error::io(&target, e)),
                    }
                    sync_dir(&folder)?;
                    Ok(true)
                })();
                let _ = fs::remove_file(&tmp);
                result
            }
        }
    }

    /// Deletes a file of the dataset (`name` may be `_versions/<file>`);
    /// absent is fine.
    pub(crate) fn delete_file(&self, name: &str) -> Result<()> {
        match self {
            Location::Remote(store) => store.delete(name),
            Location::Local(dir) => {
                let path = dir.join(name);
                match fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(Error::io(&path, e)),
                }
            }
        }
    }

    /// The bytes of a file of the dataset, `None` when absent (local: only a
    /// regular file is read).
    fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Location::Remote(store) => Ok(store.get(name)?.map(|b| b.to_vec())),
            Location::Local(dir) => {
                let path = dir.join(name);
                match crate::files::read_regular(&path) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(&path, e)),
                }
            }
        }
    }

    /// A file of the dataset as a path for messages.
    pub(crate) fn path_of(&self, name: &str) -> PathBuf {
        match self {
            Location::Remote(store) => PathBuf::from(store.url_of(name)),
            Location::Local(dir) => dir.join(name),
        }
    }
}
