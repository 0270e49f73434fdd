//! The crate's one error type.
//!
//! Every variant names what is wrong (the file, the column, the option) so
//! the message alone tells a user what to fix. [`Error::category`] groups the
//! variants for callers that map them onto their own error classes, such as
//! the JNI bridge, which turns each category into a specific Java exception.

use std::path::PathBuf;

use arrow::error::ArrowError;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in mosaicrs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed on `path`.
    ///
    /// The cause is part of the message and not also returned by
    /// `Error::source`, so that printers that walk the chain (anyhow's
    /// `{:#}`) say it once.
    #[error("I/O error on {path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },

    /// Arrow could not encode or decode data; `context` says where. The
    /// cause is part of the message (see [`Error::Io`]).
    #[error("{context}: {cause}")]
    Arrow { context: String, cause: ArrowError },

    /// The folder has no `index.json`, so it is not a (committed) dataset.
    #[error("no mosaicrs dataset at {path}: index.json not found (was the write committed?)")]
    NotADataset { path: PathBuf },

    /// `index.json` exists but cannot be understood.
    #[error("invalid index {path}: {reason}")]
    InvalidIndex { path: PathBuf, reason: String },

    /// The index was written by a newer mosaicrs than this one.
    #[error(
        "{path}: dataset format version {found} is newer than this reader supports \
         (up to {supported}); upgrade mosaicrs to read it"
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    /// The version asked for is not kept: it was never committed, or
    /// `vacuum` removed it.
    #[error(
        "version {version} of {path} is not kept{}",
        oldest_kept_note(.oldest_kept)
    )]
    VersionNotFound {
        path: PathBuf,
        version: u64,
        /// The oldest version that can still be read; `None` when there is
        /// no dataset.
        oldest_kept: Option<u64>,
    },

    /// A dataset is already at the target and the save mode does not allow replacing it.
    #[error(
        "a mosaicrs dataset already exists at {path}; choose save mode append, overwrite or ignore"
    )]
    AlreadyExists { path: PathBuf },

    /// Another writer committed to the dataset after this write read its
    /// index, so committing would lose that writer's work. Nothing of this
    /// write was published.
    #[error(
        "another writer changed the dataset at {path} while this write ran ({detail}); \
         nothing was committed"
    )]
    Conflict { path: PathBuf, detail: String },

    /// An object store refused or failed a request; `location` is the
    /// object's URL without credentials.
    #[error("object store error at {location}: {message}")]
    Storage { location: String, message: String },

    /// The trainer's cache is too small for what was asked of it; `needed`
    /// is the smallest `cache_limit` that works.
    #[error(
        "cache_limit of {limit} bytes is too small for {location}: {reason}; raise \
         cache_limit to at least {needed} bytes"
    )]
    CacheTooSmall {
        location: String,
        limit: u64,
        needed: u64,
        reason: String,
    },

    /// A shard listed in the index is not on disk.
    #[error("shard {path} listed in the index is missing")]
    MissingShard { path: PathBuf },

    /// A shard's bytes are not a valid Arrow IPC file or disagree with the index.
    #[error("corrupt shard {path}: {reason}")]
    CorruptShard { path: PathBuf, reason: String },

    /// A shard's checksum differs from the one recorded in the index.
    #[error("checksum mismatch in shard {path}: index records {expected}, file has {actual}")]
    ChecksumMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// Two schemas that must be equal are not (shard vs index, append vs existing).
    #[error("schema mismatch in {path}: {detail}")]
    SchemaMismatch { path: PathBuf, detail: String },

    /// A column named by the caller does not exist.
    #[error("column {name:?} not found; available columns: {available}")]
    ColumnNotFound { name: String, available: String },

    /// A column exists but its type cannot be used the way the caller asked.
    #[error("column {name:?} has type {data_type}, {reason}")]
    UnsupportedColumn {
        name: String,
        data_type: String,
        reason: String,
    },

    /// A row index past the end of the dataset.
    #[error("row {row} is out of range: the dataset has {rows} rows")]
    RowOutOfRange { row: u64, rows: u64 },

    /// A caller-supplied option or argument is invalid; the message names it.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// Loader state that does not belong to this dataset or configuration.
    #[error("cannot resume: {0}")]
    ResumeMismatch(String),

    /// A bug or broken invariant inside mosaicrs.
    #[error("internal error: {0}")]
    Internal(String),

    // --- loader and batch assembly ---
    /// A null where the null policy allows none (tensor conversion).
    #[error(
        "column {column:?} has a null at dataset row {row}; choose a fill value for nulls \
         or clean the data"
    )]
    NullValue { column: String, row: u64 },

    /// A list row whose length differs from the width its column is stacked to.
    #[error(
        "column {column:?} holds {found} values at dataset row {row}, but it is stacked as \
         [B, {expected}]; every row must hold {expected} values (if lengths vary, convert it \
         as a ragged column: ragged= in mosaicrs.torch.Loader)"
    )]
    ListLength {
        column: String,
        row: u64,
        expected: usize,
        found: usize,
    },

    /// libtorch reported an error (tensor conversion, device copy).
    #[error("libtorch: {0}")]
    Torch(String),
}

/// Coarse classes of [`Error`], for mapping onto other error systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCategory {
    /// The caller's input (arguments, options, schema, resume state) is wrong.
    InvalidInput,
    /// Files are missing, unreadable, corrupt, or the OS refused an operation.
    Io,
    /// A bug in mosaicrs.
    Internal,
}

/// The tail of [`Error::VersionNotFound`]'s message.
fn oldest_kept_note(oldest_kept: &Option<u64>) -> String {
    match oldest_kept {
        Some(v) => format!(" (the oldest kept version is {v})"),
        None => " (the dataset has no committed version)".to_string(),
    }
}

impl Error {
    /// Which class of problem this is.
    ///
    /// ```
    /// use mosaicrs::{Error, ErrorCategory};
    /// let e = Error::InvalidArgument("shardSize must be positive".into());
    /// assert_eq!(e.category(), ErrorCategory::InvalidInput);
    /// ```
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::InvalidArgument(_)
            | Error::ColumnNotFound { .. }
            | Error::UnsupportedColumn { .. }
            | Error::RowOutOfRange { .. }
            | Error::SchemaMismatch { .. }
            | Error::AlreadyExists { .. }
            | Error::ResumeMismatch(_)
            | Error::CacheTooSmall { .. }
            | Error::NullValue { .. }
            | Error::ListLength { .. } => ErrorCategory::InvalidInput,
            Error::Io { .. }
            | Error::NotADataset { .. }
            | Error::InvalidIndex { .. }
            | Error::UnsupportedVersion { .. }
            | Error::VersionNotFound { .. }
            | Error::MissingShard { .. }
            | Error::Conflict { .. }
            | Error::Storage { .. }
            | Error::CorruptShard { .. }
            | Error::ChecksumMismatch { .. } => ErrorCategory::Io,
            Error::Arrow { .. } | Error::Internal(_) | Error::Torch(_) => ErrorCategory::Internal,
        }
    }

    /// Builds an [`Error::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }

    /// Builds an [`Error::Arrow`] with a description of what was being done.
    pub fn arrow(context: impl Into<String>, source: ArrowError) -> Self {
        Error::Arrow {
            context: context.into(),
            cause: source,
        }
    }
}
