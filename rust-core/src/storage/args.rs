//! The `--storage`, `--cache-dir` and `--cache-limit` options that every
//! command-line tool taking a dataset path or URL shares (with the `cli`
//! feature they derive `clap::Args`, to `#[command(flatten)]` into a parser).

use std::fmt;
use std::path::PathBuf;

use super::cache::CacheOptions;
use super::location::Location;
use super::options::StorageOptions;
use crate::{Error, Result};

/// How to reach a dataset location and where to cache it.
///
/// `Debug` prints the storage option keys only: their values may be secrets.
///
/// ```
/// use mosaicrs::storage::StoreArgs;
/// let args = StoreArgs {
///     storage: vec!["aws_region=eu-west-1".into()],
///     cache_limit: Some("2g".into()),
///     ..Default::default()
/// };
/// assert_eq!(args.storage_options().unwrap().get("aws_region"), Some("eu-west-1"));
/// # #[cfg(unix)]
/// assert_eq!(args.cache().unwrap().cache_limit, 2 << 30);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::Args))]
pub struct StoreArgs {
    /// Object store option KEY=VALUE (repeatable), e.g. aws_endpoint=http://host:9000,
    /// aws_region=eu-west-1. Overrides the AWS_*/GOOGLE_*/AZURE_* environment.
    #[cfg_attr(feature = "cli", arg(long = "storage", value_name = "KEY=VALUE"))]
    pub storage: Vec<String>,
    /// Cache folder for remote datasets (default $MOSAICRS_CACHE_DIR or ~/.cache/mosaicrs).
    #[cfg_attr(feature = "cli", arg(long))]
    pub cache_dir: Option<PathBuf>,
    /// Most bytes the cache may hold, e.g. 20g (default $MOSAICRS_CACHE_LIMIT or 16g).
    /// A remote dataset larger than this streams through the cache with
    /// block-local or sequential shuffle.
    #[cfg_attr(feature = "cli", arg(long))]
    pub cache_limit: Option<String>,
}

impl StoreArgs {
    /// The `--storage` assignments as options.
    pub fn storage_options(&self) -> Result<StorageOptions> {
        let mut options = StorageOptions::default();
        for assignment in &self.storage {
            options
                .parse_assignment(assignment)
                .map_err(|e| Error::InvalidArgument(format!("--storage: {e}")))?;
        }
        Ok(options)
    }

    /// A path or URL, with the storage options.
    pub fn location(&self, location: &str) -> Result<Location> {
        Location::parse(location, &self.storage_options()?)
    }

    /// The cache: the defaults ([`CacheOptions::default`]) with
    /// `--cache-dir` and `--cache-limit` applied.
    #[cfg(unix)]
    pub fn cache(&self) -> Result<CacheOptions> {
        let mut cache = CacheOptions::default();
        if let Some(dir) = &self.cache_dir {
            cache.cache_dir = dir.clone();
        }
        if let Some(limit) = &self.cache_limit {
            cache.cache_limit = crate::units::parse_byte_size(limit)
                .map_err(|e| Error::InvalidArgument(format!("--cache-limit: {e}")))?;
        }
        Ok(cache)
    }
}

impl fmt::Debug for StoreArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self
            .storage
            .iter()
            .map(|a| a.split_once('=').map_or(a.as_str(), |(k, _)| k))
            .collect();
        f.debug_struct("StoreArgs")
            .field("storage", &keys)
            .field("cache_dir", &self.cache_dir)
            .field("cache_limit", &self.cache_limit)
            .finish()
    }
}
