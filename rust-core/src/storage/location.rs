//! A dataset's location, and the one read of the index found there.

use std::fmt;
use std::path::{Path, PathBuf};

use super::options::StorageOptions;
use super::remote::{self, RemoteStore};
use super::version::DatasetVersion;
use crate::format::{Index, INDEX_FILE};
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
    ///
    /// Fails with [`Error::NotADataset`] when there is none (see
    /// [`Index::load`] for the other errors).
    pub fn load_index(&self) -> Result<Index> {
        match self.load_index_versioned()? {
            (_, Some(index)) => Ok(index),
            (_, None) => Err(Error::NotADataset {
                path: self.display_path(),
            }),
        }
    }

    /// Reads and checks the dataset's index with its version, from one read
    /// so that the two agree: `(Absent, None)` when there is no index.
    ///
    /// This is the one read of a location's index: the reader, the commit's
    /// compare-and-swap and [`load_index`](Self::load_index) all go through it.
    ///
    /// ```
    /// use mosaicrs::storage::{DatasetVersion, Location};
    /// let dir = tempfile::tempdir().unwrap();
    /// let (version, index) = Location::local(dir.path()).load_index_versioned().unwrap();
    /// assert_eq!((version, index.is_none()), (DatasetVersion::Absent, true));
    /// ```
    pub fn load_index_versioned(&self) -> Result<(DatasetVersion, Option<Index>)> {
        match self {
            Location::Local(dir) => match Index::read_in(dir)? {
                Some(bytes) => {
                    let index = Index::parse(&bytes, &Index::path_in(dir))?;
                    Ok((DatasetVersion::of_local_index(&bytes), Some(index)))
                }
                None => Ok((DatasetVersion::Absent, None)),
            },
            Location::Remote(store) => match store.get_versioned(INDEX_FILE)? {
                Some((bytes, version)) => {
                    let index = Index::parse(&bytes, Path::new(&store.url_of(INDEX_FILE)))?;
                    Ok((version, Some(index)))
                }
                None => Ok((DatasetVersion::Absent, None)),
            },
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
