//! Where a dataset lives: a local folder, or a prefix in an object store.
//!
//! A location is a plain path or `file://` URL (read by mapping the files
//! directly, as always), or an `s3://`, `gs://`, `az://`/`abfss://` URL (or a
//! read-only `http(s)://` URL) served through the [`object_store`] crate.
//! Which object stores are compiled in is chosen by the crate features
//! `aws`, `gcp`, `azure` and `http`.
//!
//! The object store API is asynchronous; one multi-threaded tokio runtime
//! lives inside this module and every call here blocks on it, so the rest
//! of mosaicrs (and its callers) stays synchronous. Do not call these
//! functions from inside another tokio runtime's worker thread.
//!
//! Credentials and endpoints come from the standard environment variables
//! that `object_store` reads (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, `GOOGLE_*`, `AZURE_*`...), from instance credentials,
//! and from explicit [`StorageOptions`], which win over the environment.
//! Option values never appear in `Debug`, `Display` or errors.

mod args;
#[cfg(unix)]
mod cache;
mod options;
mod remote;

use std::fmt;
use std::path::{Path, PathBuf};

pub use args::StoreArgs;
#[cfg(unix)]
pub use cache::{cache_usage, clear_cache, dataset_folder, CacheOptions};
#[cfg(unix)]
pub(crate) use cache::{fetch_all, fetch_one};
pub use options::StorageOptions;
pub use remote::{RemoteFile, RemoteStore};

use crate::{Error, Result};

/// A dataset location: a local folder or an object-store prefix.
///
/// ```
/// use mosaicrs::storage::{Location, StorageOptions};
/// let local = Location::parse("/data/train", &StorageOptions::default()).unwrap();
/// assert!(local.as_local().is_some());
/// let file_url = Location::parse("file:///data/train", &StorageOptions::default()).unwrap();
/// assert_eq!(file_url.as_local().unwrap(), std::path::Path::new("/data/train"));
/// ```
#[derive(Clone)]
pub enum Location {
    /// A folder on a local (or locally mounted) file system.
    Local(PathBuf),
    /// A prefix in an object store.
    Remote(RemoteStore),
}

impl Location {
    /// Parses a path or URL. `options` configure the object store (they are
    /// ignored for local paths).
    pub fn parse(location: &str, options: &StorageOptions) -> Result<Self> {
        let Some((scheme, _)) = location.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(location)));
        };
        if !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.')
        {
            return Ok(Location::Local(PathBuf::from(location)));
        }
        let url = url::Url::parse(location).map_err(|e| {
            Error::InvalidArgument(format!(
                "location {:?} is not a valid URL: {e}",
                remote::redact_url_str(location)
            ))
        })?;
        if url.scheme() == "file" {
            let path = url.to_file_path().map_err(|()| {
                Error::InvalidArgument(format!("{location:?} is not a local file URL"))
            })?;
            return Ok(Location::Local(path));
        }
        RemoteStore::open(&url, options).map(Location::Remote)
    }

    /// A local folder location.
    pub fn local(path: impl Into<PathBuf>) -> Self {
        Location::Local(path.into())
    }

    /// The folder, for a local location.
    pub fn as_local(&self) -> Option<&Path> {
        match self {
            Location::Local(p) => Some(p),
            Location::Remote(_) => None,
        }
    }

    /// The store, for a remote location.
    pub fn as_remote(&self) -> Option<&RemoteStore> {
        match self {
            Location::Local(_) => None,
            Location::Remote(r) => Some(r),
        }
    }

    /// Reads and checks the dataset's index.
    pub fn load_index(&self) -> Result<crate::format::Index> {
        match self {
            Location::Local(dir) => crate::format::Index::load(dir),
            Location::Remote(store) => {
                let name = crate::format::INDEX_FILE;
                match store.get_versioned(name)? {
                    Some((bytes, _)) => {
                        crate::format::Index::parse(&bytes, Path::new(&store.url_of(name)))
                    }
                    None => Err(Error::NotADataset {
                        path: PathBuf::from(store.url()),
                    }),
                }
            }
        }
    }

    /// The location as a path for error messages (the redacted URL for a
    /// remote location).
    pub fn display_path(&self) -> PathBuf {
        match self {
            Location::Local(p) => p.clone(),
            Location::Remote(r) => PathBuf::from(r.url()),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Remote(r) => f.write_str(r.url()),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local(p) => f.debug_tuple("Local").field(p).finish(),
            Location::Remote(r) => f.debug_tuple("Remote").field(&r.url()).finish(),
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Self {
        Location::Local(path.to_path_buf())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Self {
        Location::Local(path)
    }
}
