//! `index.json`: the single entry point of a dataset.
//!
//! Readers trust only what the index lists. Writers replace it in one atomic
//! step (temp file, fsync, rename, fsync of the folder), so a crash at any
//! moment leaves either the previous index or the new one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow::datatypes::{Schema, SchemaRef};
use serde::{Deserialize, Serialize};

use super::{
    decode_schema, describe_schema, encode_schema, unique_token, Checksum, CommitInfo, Compression,
    FieldSummary, FORMAT_NAME, FORMAT_VERSION, INDEX_FILE, TEMP_PREFIX,
};
use crate::{Error, Result};

/// One shard as the index records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// File name relative to the dataset folder.
    pub path: String,
    /// Rows in the shard.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Number of record batches in the file.
    pub batches: u32,
    /// XXH3-64 of the whole file (`xxh3-64:<16 hex>` in the JSON).
    pub checksum: Checksum,
    /// Arrow IPC buffer compression used in the file.
    pub compression: Compression,
    /// Id of the write (Spark job) that produced the shard.
    pub write_id: String,
    /// Spark partition id (0 outside Spark).
    pub partition: u32,
    /// Spark task attempt id that wrote the shard (0 outside Spark).
    pub task_attempt: u64,
}

/// One committed write, kept as the dataset's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteRecord {
    pub write_id: String,
    /// `create`, `append` or `overwrite`.
    pub mode: String,
    /// Rows this write added.
    pub rows: u64,
    /// Shards this write added.
    pub shards: u64,
    /// Milliseconds since the Unix epoch.
    pub committed_at_ms: u64,
}

/// The contents of `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Always `"mosaicrs"`.
    pub format: String,
    /// Format version; readers refuse versions newer than [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Tool and version that committed the index.
    pub created_by: String,
    /// The Arrow schema, base64 of an IPC schema message.
    pub schema: String,
    /// Human-readable summary of the schema's fields.
    pub fields: Vec<FieldSummary>,
    /// Sum of the shards' rows.
    pub total_rows: u64,
    /// Sum of the shards' bytes.
    pub total_bytes: u64,
    /// Commits that produced this dataset, oldest first: all of them in
    /// format 1, the newest 100 in format 2 (the version records keep the
    /// rest).
    pub writes: Vec<WriteRecord>,
    /// The shards, in dataset order: global row `i` is found by walking them.
    pub shards: Vec<ShardEntry>,
    /// The version this index is (0 for the first commit). Format 1
    /// indexes have no field; their version is `writes.len() - 1`.
    #[serde(default)]
    pub version: u64,
    /// What the commit that made this version did (absent in format 1).
    #[serde(default)]
    pub commit: Option<CommitInfo>,
}

/// Just enough of an index to check what it is before parsing the rest.
#[derive(Deserialize)]
struct Probe {
    /// Any JSON value, so that a wrongly typed field is named as such
    /// rather than reported as invalid JSON.
    format: Option<serde_json::Value>,
    format_version: Option<serde_json::Value>,
}

impl Index {
    /// A new index over `shards` with `schema`.
    ///
    /// ```
    /// use arrow::datatypes::{DataType, Field, Schema};
    /// use mosaicrs::format::Index;
    /// let schema = Schema::new(vec![Field::new("x", DataType::Int32, false)]);
    /// let index = Index::new(&schema, vec![], vec![]).unwrap();
    /// assert_eq!(index.total_rows, 0);
    /// ```
    pub fn new(schema: &Schema, shards: Vec<ShardEntry>, writes: Vec<WriteRecord>) -> Result<Self> {
        Ok(Index {
            format: FORMAT_NAME.to_string(),
            format_version: FORMAT_VERSION,
            created_by: format!("mosaicrs {}", env!("CARGO_PKG_VERSION")),
            schema: encode_schema(schema)?,
            fields: describe_schema(schema),
            total_rows: shards.iter().map(|s| s.rows).sum(),
            total_bytes: shards.iter().map(|s| s.bytes).sum(),
            writes,
            shards,
            version: 0,
            commit: None,
        })
    }

    /// Path of the index file inside `dir`.
    pub fn path_in(dir: &Path) -> PathBuf {
        dir.join(INDEX_FILE)
    }

    /// True when `dir` holds a committed dataset.
    pub fn exists_in(dir: &Path) -> bool {
        Self::path_in(dir).is_file()
    }

    /// Reads and checks the index of the dataset in `dir`.
    ///
    /// Fails with [`Error::NotADataset`] when there is no index,
    /// [`Error::UnsupportedVersion`] for a newer format, and
    /// [`Error::InvalidIndex`] for anything malformed.
    pub fn load(dir: &Path) -> Result<Self> {
        match Self::read_in(dir)? {
            Some(text) => Self::parse(&text, &Self::path_in(dir)),
            None => Err(Error::NotADataset {
                path: dir.to_path_buf(),
            }),
        }
    }

    /// The bytes of the index file in `dir`, `None` when there is none. Only
    /// a regular file is read ([`open_regular`](crate::files::open_regular)):
    /// the index names every other file, so it must not be a link.
    pub(crate) fn read_in(dir: &Path) -> Result<Option<Vec<u8>>> {
        let path = Self::path_in(dir);
        match crate::files::read_regular(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    /// Parses index bytes; `path` is used in error messages only.
    pub fn parse(text: &[u8], path: &Path) -> Result<Self> {
        let invalid = |reason: String| Error::InvalidIndex {
            path: path.to_path_buf(),
            reason,
        };
        let probe: Probe =
            serde_json::from_slice(text).map_err(|e| invalid(format!("not valid JSON: {e}")))?;
        if probe.format.as_ref().and_then(|v| v.as_str()) != Some(FORMAT_NAME) {
            return Err(invalid(format!(
                "the \"format\" field is {}, expected {FORMAT_NAME:?}",
                probe
                    .format
                    .as_ref()
                    .map_or("missing".to_string(), |v| v.to_string())
            )));
        }
        let version = match probe.format_version {
            None => return Err(invalid("the \"format_version\" field is missing".into())),
            Some(v) => v.as_u64().ok_or_else(|| {
                invalid(format!(
                    "the \"format_version\" field is {v}, expected a positive integer such as \
                     {FORMAT_VERSION}"
                ))
            })?,
        };
        if version > u64::from(FORMAT_VERSION) {
            return Err(Error::UnsupportedVersion {
                path: path.to_path_buf(),
                found: u32::try_from(version).unwrap_or(u32::MAX),
                supported: FORMAT_VERSION,
            });
        }
        if version == 0 {
            return Err(invalid("format_version 0 does not exist".into()));
        }
        let mut index: Index =
            serde_json::from_slice(text).map_err(|e| invalid(format!("bad structure: {e}")))?;
        if version == 1 {
            // Format 1 keeps no history: its head is the last write.
            index.version = index.writes.len().saturating_sub(1) as u64;
        }
        index.check().map_err(invalid)?;
        decode_schema(&index.schema)
            .map_err(|e| invalid(format!("the schema cannot be decoded: {e}")))?;
        Ok(index)
    }

    /// Internal consistency: totals, safe shard paths, unique shards.
    ///
    /// Every parsed index passes it, and every index is checked again before
    /// it is published, so a writer never publishes what readers refuse.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        if self.format != FORMAT_NAME {
            return Err(format!("the \"format\" field is {:?}", self.format));
        }
        let rows = self
            .shards
            .iter()
            .try_fold(0u64, |sum, s| sum.checked_add(s.rows))
            .ok_or("the shards' rows overflow a 64-bit total")?;
        if rows != self.total_rows {
            return Err(format!(
                "total_rows is {} but the shards hold {rows} rows",
                self.total_rows
            ));
        }
        let bytes = self
            .shards
            .iter()
            .try_fold(0u64, |sum, s| sum.checked_add(s.bytes))
            .ok_or("the shards' bytes overflow a 64-bit total")?;
        if bytes != self.total_bytes {
            return Err(format!(
                "total_bytes is {} but the shards hold {bytes} bytes",
                self.total_bytes
            ));
        }
        let mut seen = std::collections::HashSet::with_capacity(self.shards.len());
        for shard in &self.shards {
            let p = &shard.path;
            if p.is_empty() || p.contains('/') || p.contains('\\') || p.starts_with('.') {
                return Err(format!(
                    "shard path {p:?} must be a plain file name inside the dataset folder"
                ));
            }
            if !seen.insert(p.as_str()) {
                return Err(format!("shard {p:?} is listed twice"));
            }
        }
        Ok(())
    }

    /// The dataset's Arrow schema.
    pub fn arrow_schema(&self) -> Result<SchemaRef> {
        decode_schema(&self.schema)
    }

    /// Serialises the index (compact: indexes of 100k shards stay small).
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::Internal(format!("serialising index: {e}")))
    }

    /// Serialises the index after checking it, and checks that the bytes
    /// parse back to the same index: what a reader will see.
    pub(crate) fn checked_json(&self, path: &Path) -> Result<Vec<u8>> {
        self.check().map_err(|reason| Error::InvalidIndex {
            path: path.to_path_buf(),
            reason: format!("refusing to publish: {reason}"),
        })?;
        let bytes = self.to_json()?;
        if Self::parse(&bytes, path)? != *self {
            return Err(Error::Internal(format!(
                "{}: the serialised index does not read back unchanged",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// Atomically replaces `dir/index.json` with this index.
    ///
    /// The bytes go to a temp file that is fsynced and renamed over the old
    /// index; the folder is fsynced so the rename survives a crash.
    /// Fails with [`Error::InvalidIndex`], writing nothing, when the index
    /// would not pass the checks that readers make.
    pub fn store_atomic(&self, dir: &Path) -> Result<()> {
        let bytes = self.checked_json(&Self::path_in(dir))?;
        Self::store_bytes_atomic(dir, &bytes)
    }

    /// Atomically replaces `dir/index.json` with `bytes` (checked index
    /// JSON, see [`Index::store_atomic`]).
    pub(crate) fn store_bytes_atomic(dir: &Path, bytes: &[u8]) -> Result<()> {
        let target = Self::path_in(dir);
        let tmp = dir.join(format!("{TEMP_PREFIX}{INDEX_FILE}-{}", unique_token()));
        let result = (|| {
            let mut f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
            f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
            f.sync_all().map_err(|e| Error::io(&tmp, e))?;
            fs::rename(&tmp, &target).map_err(|e| Error::io(&target, e))?;
            sync_dir(dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

/// fsyncs a folder so that renames inside it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}
