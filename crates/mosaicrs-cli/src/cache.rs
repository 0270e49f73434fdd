//! `mosaicrs cache`: show or clear the cache of remote shards.

use std::process::ExitCode;

use anyhow::Result;
use mosaicrs::storage::{cache_usage, clear_cache};

use crate::store::StoreArgs;

pub fn run(clear: bool, args: &StoreArgs) -> Result<ExitCode> {
    let cache = args.cache()?;
    if clear {
        let (files, bytes) = clear_cache(&cache.cache_dir)?;
        println!(
            "removed {files} cached shards ({bytes} bytes) from {}; shards that open readers \
             use were kept",
            cache.cache_dir.display()
        );
    } else {
        println!("cache        {}", cache.cache_dir.display());
        println!("used bytes   {}", cache_usage(&cache.cache_dir)?);
        println!("limit bytes  {}", cache.cache_limit);
    }
    Ok(ExitCode::SUCCESS)
}
