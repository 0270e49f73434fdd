//! The format on disk: the index, the history of versions, shard naming,
//! checksums and schema encoding.
//!
//! `docs/FORMAT.md` is the written specification; this module is its only
//! implementation, shared by the writer, the reader, the loader and the JNI
//! library.

mod checksum;
mod history;
mod index;
mod naming;
mod schema;

pub use checksum::{Checksum, ChecksumWriter, CHECKSUM_ALGORITHM};
pub use history::{
    format_timestamp_ms, parse_timestamp_ms, parse_version_record_name, version_record_name,
    CommitInfo, VersionSpec, VERSIONS_DIR,
};
pub(crate) use index::sync_dir;
pub use index::{Index, ShardEntry, WriteRecord};
pub use naming::{is_temp_name, unique_token, ShardName, TEMP_PREFIX};
pub(crate) use schema::column_indices;
pub use schema::{
    added_columns, column_index, decode_schema, describe_added_columns, describe_schema,
    encode_schema, schema_difference, shard_schema_difference, FieldSummary,
};

/// The format version this build writes, and the newest it reads.
///
/// Version 2 added the history (`_versions/`, the index's `version` and
/// `commit`); version 1 datasets are still read.
pub const FORMAT_VERSION: u32 = 2;

/// Name of the index file, the single entry point of a dataset.
pub const INDEX_FILE: &str = "index.json";

/// Value of the index's `format` field, so a stray JSON file is not taken for an index.
pub const FORMAT_NAME: &str = "mosaicrs";

/// File extension of shards.
pub const SHARD_EXTENSION: &str = "arrow";

/// Arrow IPC buffer compression of a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Uncompressed: the reader maps buffers without copying.
    #[default]
    None,
    /// Zstandard through Arrow IPC buffer compression.
    Zstd,
    /// LZ4 frame through Arrow IPC buffer compression.
    Lz4,
}

impl Compression {
    /// The lowercase name used in options and in the index.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Compression {
    type Err = crate::Error;

    /// Parses `none`, `zstd` or `lz4` (case-insensitive).
    ///
    /// ```
    /// use mosaicrs::format::Compression;
    /// assert_eq!("ZSTD".parse::<Compression>().unwrap(), Compression::Zstd);
    /// assert!("gzip".parse::<Compression>().is_err());
    /// ```
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Ok(Compression::None),
            "zstd" => Ok(Compression::Zstd),
            "lz4" | "lz4_frame" => Ok(Compression::Lz4),
            other => Err(crate::Error::InvalidArgument(format!(
                "compression {other:?} is not supported; use none, zstd or lz4"
            ))),
        }
    }
}
