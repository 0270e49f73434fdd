//! Options shared by the commands that take a dataset path or URL.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use mosaicrs::storage::{CacheOptions, Location, StorageOptions};
use mosaicrs::writer::parse_byte_size;

#[derive(Args, Clone, Default)]
pub struct StoreArgs {
    /// Object store option KEY=VALUE (repeatable), e.g. aws_endpoint=http://host:9000,
    /// aws_region=eu-west-1. Overrides the AWS_*/GOOGLE_*/AZURE_* environment.
    #[arg(long = "storage", value_name = "KEY=VALUE")]
    pub storage: Vec<String>,
    /// Cache folder for remote datasets (default $MOSAICRS_CACHE_DIR or ~/.cache/mosaicrs).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Most bytes the cache may hold, e.g. 20g (default $MOSAICRS_CACHE_LIMIT or 16g).
    #[arg(long)]
    pub cache_limit: Option<String>,
}

impl StoreArgs {
    pub fn storage_options(&self) -> Result<StorageOptions> {
        let mut options = StorageOptions::default();
        for assignment in &self.storage {
            options.parse_assignment(assignment).context("--storage")?;
        }
        Ok(options)
    }

    /// A path or URL, with the storage options.
    pub fn location(&self, location: &str) -> Result<Location> {
        Ok(Location::parse(location, &self.storage_options()?)?)
    }

    pub fn cache(&self) -> Result<CacheOptions> {
        let mut cache = CacheOptions::default();
        if let Some(dir) = &self.cache_dir {
            cache.cache_dir = dir.clone();
        }
        if let Some(limit) = &self.cache_limit {
            cache.cache_limit = parse_byte_size(limit).context("--cache-limit")?;
        }
        Ok(cache)
    }
}
