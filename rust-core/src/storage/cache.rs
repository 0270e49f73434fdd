//! The trainer's local cache of remote shards.
//!
//! Layout: `<cache_dir>/<xxh3 of the dataset URL>/<shard file name>`, plus
//! `<cache_dir>/.lock`; each dataset folder also holds a copy of the index
//! the reader used, so it is a complete local dataset. A shard enters the cache only after its download
//! (parallel range requests into a temp file in the same folder) matched
//! the index's size and xxh3 checksum; it is then renamed into place, so a
//! file under a shard name is always whole and verified.
//!
//! Processes share the cache through file locks: the folder-wide `.lock`
//! is held exclusively while a process evicts and downloads, so the ranks
//! of one job download each shard once; every shard a reader has open is
//! held with a shared `flock`, which is its pin: eviction takes only files
//! it can lock exclusively, least recently used first.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::remote::RemoteStore;
use crate::format::{unique_token, Checksum, Index, ShardEntry, TEMP_PREFIX};
use crate::{Error, Result};

/// Where remote shards are cached and how much room they may take.
///
/// ```
/// use mosaicrs::storage::CacheOptions;
/// let c = CacheOptions::new("/tmp/mosaicrs-cache", 8 << 30);
/// assert_eq!(c.cache_limit, 8 << 30);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOptions {
    /// The cache folder, shared by every process on the host that uses it.
    pub cache_dir: PathBuf,
    /// The most bytes of shards the cache may hold.
    pub cache_limit: u64,
    /// Attempts per download before giving up (at least 1).
    pub attempts: u32,
    /// A request with no reply for this long is abandoned and retried.
    pub stall_timeout: Duration,
    /// Blocks of shards fetched ahead of the one being read when a dataset
    /// larger than the cache streams through it (at least 1 is useful: a
    /// batch can straddle two blocks).
    pub prefetch_blocks: u32,
}

impl CacheOptions {
    /// A cache in `cache_dir` holding at most `cache_limit` bytes.
    pub fn new(cache_dir: impl Into<PathBuf>, cache_limit: u64) -> Self {
        CacheOptions {
            cache_dir: cache_dir.into(),
            cache_limit,
            attempts: 6,
            stall_timeout: Duration::from_secs(30),
            prefetch_blocks: 1,
        }
    }
}

impl Default for CacheOptions {
    /// `$MOSAICRS_CACHE_DIR`, else `$XDG_CACHE_HOME/mosaicrs`, else
    /// `~/.cache/mosaicrs`; limit `$MOSAICRS_CACHE_LIMIT` bytes, else 16 GiB.
    fn default() -> Self {
        let dir = std::env::var_os("MOSAICRS_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("mosaicrs"))
            })
            .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/mosaicrs")))
            .unwrap_or_else(|| std::env::temp_dir().join("mosaicrs-cache"));
        let limit = std::env::var("MOSAICRS_CACHE_LIMIT")
            .ok()
            .and_then(|v| crate::units::parse_byte_size(&v).ok())
            .unwrap_or(16 << 30);
        CacheOptions::new(dir, limit)
    }
}

/// Range requests per shard download.
const RANGE_BYTES: u64 = 8 << 20;
const RANGES_IN_FLIGHT: usize = 8;

/// Shards of one dataset, present and pinned in the cache.
pub(crate) struct CachedDataset {
    /// The dataset's folder inside the cache.
    pub folder: PathBuf,
    /// Shared locks on every shard, held while the dataset is open.
    pub pins: Vec<File>,
    /// Bytes downloaded to make the dataset present.
    pub downloaded: u64,
    /// Bytes the cache held once the dataset was present.
    pub usage: u64,
}

/// The cache folder of the dataset at `url`.
pub fn dataset_folder(options: &CacheOptions, url: &str) -> PathBuf {
    options.cache_dir.join(format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(url.as_bytes())
    ))
}

/// Makes every shard of `index` present in the cache (downloading what is
/// missing) and pins them.
pub(crate) fn fetch_all(
    store: &RemoteStore,
    index: &Index,
    options: &CacheOptions,
) -> Result<CachedDataset> {
    if index.total_bytes > options.cache_limit {
        return Err(Error::CacheTooSmall {
            location: store.url().to_string(),
            limit: options.cache_limit,
            needed: index.total_bytes,
            reason: "opening every shard at once needs the whole dataset in the cache \
                     (a loader with block-local shuffle streams it through a smaller one)"
                .into(),
        });
    }
    let folder = dataset_folder(options, store.url());
    fs::create_dir_all(&folder).map_err(|e| Error::io(&folder, e))?;
    let _cache_lock = lock_cache(&options.cache_dir)?;
    let missing: Vec<&ShardEntry> = index
        .shards
        .iter()
        .filter(|s| !is_present(&folder.join(&s.path), s.bytes))
        .collect();
    let needed: u64 = missing.iter().map(|s| s.bytes).sum();
    let keep: Vec<PathBuf> = index.shards.iter().map(|s| folder.join(&s.path)).collect();
    make_room(options, needed, &keep)?;
    let mut downloaded = 0;
    for shard in missing {
        download(store, shard, &folder, options)?;
        downloaded += shard.bytes;
    }
    // The index beside its shards makes the folder a complete local dataset
    // (for `validate`, and for reading it offline); it is rewritten on
    // every open, so it is the version this reader uses.
    index.store_atomic(&folder)?;
    let pins = index
        .shards
        .iter()
        .map(|shard| pin(&folder.join(&shard.path)))
        .collect::<Result<Vec<_>>>()?;
    Ok(CachedDataset {
        folder,
        pins,
        downloaded,
        usage: cache_usage(&options.cache_dir)?,
    })
}

/// Opens a cached shard with a shared lock (its pin) and marks it used.
fn pin(path: &Path) -> Result<File> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockShared)
        .map_err(|e| Error::io(path, e.into()))?;
    // Recently used: eviction takes the oldest first.
    let _ = file.set_modified(SystemTime::now());
    Ok(file)
}

/// One shard made present in the cache and pinned.
pub(crate) struct PinnedShard {
    /// The shared lock that keeps it from eviction; drop it to unpin.
    pub pin: File,
    /// Bytes downloaded to make it present (0 when it was cached).
    pub downloaded: u64,
    /// Bytes the cache held right after it arrived.
    pub usage: u64,
}

/// Makes one shard present in `folder` (downloading it when missing, once
/// for every process that shares the cache) and pins it.
///
/// When the room it needs is held by shards that other readers pin, it waits
/// for them to unpin (readers streaming the same dataset move on) for up to
/// `stall_timeout`, then fails naming the sizes.
pub(crate) fn fetch_one(
    store: &RemoteStore,
    shard: &ShardEntry,
    folder: &Path,
    options: &CacheOptions,
) -> Result<PinnedShard> {
    let path = folder.join(&shard.path);
    let deadline = std::time::Instant::now() + options.stall_timeout;
    loop {
        let _cache_lock = lock_cache(&options.cache_dir)?;
        if is_present(&path, shard.bytes) {
            return Ok(PinnedShard {
                pin: pin(&path)?,
                downloaded: 0,
                usage: 0,
            });
        }
        fs::create_dir_all(folder).map_err(|e| Error::io(folder, e))?;
        match evict_for(options, shard.bytes, std::slice::from_ref(&path))? {
            Ok(()) => {
                download(store, shard, folder, options)?;
                return Ok(PinnedShard {
                    pin: pin(&path)?,
                    downloaded: shard.bytes,
                    usage: cache_usage(&options.cache_dir)?,
                });
            }
            Err(used) if std::time::Instant::now() >= deadline => {
                return Err(no_room(options, shard.bytes, used))
            }
            Err(_) => {}
        }
        drop(_cache_lock);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_present(path: &Path, bytes: u64) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file() && m.len() == bytes)
}

/// The cache-wide lock, held while evicting and downloading.
fn lock_cache(cache_dir: &Path) -> Result<File> {
    fs::create_dir_all(cache_dir).map_err(|e| Error::io(cache_dir, e))?;
    let path = cache_dir.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io(&path, e.into()))?;
    Ok(file)
}

/// One cached shard file: (path, bytes, last use).
fn cached_files(cache_dir: &Path) -> Result<Vec<(PathBuf, u64, SystemTime)>> {
    let mut files = Vec::new();
    let Ok(datasets) = fs::read_dir(cache_dir) else {
        return Ok(files);
    };
    for ds in datasets.flatten() {
        if !ds.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(entries) = fs::read_dir(ds.path()) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_file() && e.file_name() != crate::format::INDEX_FILE {
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                files.push((e.path(), meta.len(), used));
            }
        }
    }
    Ok(files)
}

/// Bytes the cache holds now.
pub fn cache_usage(cache_dir: &Path) -> Result<u64> {
    Ok(cached_files(cache_dir)?.iter().map(|f| f.1).sum())
}

/// Evicts least-recently-used, unpinned shards (never one in `keep`) until
/// `needed` more bytes fit under the limit.
fn make_room(options: &CacheOptions, needed: u64, keep: &[PathBuf]) -> Result<()> {
    evict_for(options, needed, keep)?.map_err(|used| no_room(options, needed, used))
}

fn no_room(options: &CacheOptions, needed: u64, used: u64) -> Error {
    Error::CacheTooSmall {
        location: options.cache_dir.display().to_string(),
        limit: options.cache_limit,
        needed: used + needed,
        reason: format!(
            "{needed} bytes are needed and {used} bytes are held by shards that open \
             readers use"
        ),
    }
}

/// [`make_room`], with `Err(bytes still held)` when pinned shards leave
/// too little room.
fn evict_for(
    options: &CacheOptions,
    needed: u64,
    keep: &[PathBuf],
) -> Result<std::result::Result<(), u64>> {
    let mut files = cached_files(&options.cache_dir)?;
    let mut used: u64 = files.iter().map(|f| f.1).sum();
    if used + needed <= options.cache_limit {
        return Ok(Ok(()));
    }
    files.sort_by_key(|f| f.2);
    for (path, bytes, _) in files {
        if used + needed <= options.cache_limit {
            break;
        }
        if keep.contains(&path) {
            continue;
        }
        let is_temp = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(TEMP_PREFIX));
        if is_temp {
            // A download in progress holds the cache lock, which we hold:
            // a temp file now is a leftover of a killed process.
            if fs::remove_file(&path).is_ok() {
                used -= bytes;
            }
            continue;
        }
        let Ok(file) = File::open(&path) else {
            continue;
        };
        let exclusive = rustix::fs::FlockOperation::NonBlockingLockExclusive;
        if rustix::fs::flock(&file, exclusive).is_err() {
            continue; // pinned by a reader
        }
        if fs::remove_file(&path).is_ok() {
            used -= bytes;
        }
    }
    if used + needed > options.cache_limit {
        return Ok(Err(used));
    }
    Ok(Ok(()))
}

/// Downloads one shard into `folder`, verified, with retries.
fn download(
    store: &RemoteStore,
    shard: &ShardEntry,
    folder: &Path,
    options: &CacheOptions,
) -> Result<()> {
    let url = store.url_of(&shard.path);
    let mut last_error = String::new();
    for attempt in 0..options.attempts.max(1) {
        if attempt > 0 {
            let backoff = Duration::from_millis(100u64 << attempt.min(6));
            std::thread::sleep(backoff);
        }
        match download_once(store, shard, folder, options) {
            Ok(()) => return Ok(()),
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(Error::Storage {
        location: url,
        message: format!(
            "downloading shard {} failed {} times; last error: {last_error}",
            shard.path,
            options.attempts.max(1)
        ),
    })
}

fn download_once(
    store: &RemoteStore,
    shard: &ShardEntry,
    folder: &Path,
    options: &CacheOptions,
) -> Result<()> {
    let temp = folder.join(format!("{TEMP_PREFIX}{}-{}", shard.path, unique_token()));
    let result = (|| {
        let file = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        let ranges: Vec<std::ops::Range<u64>> = (0..shard.bytes.div_ceil(RANGE_BYTES))
            .map(|i| i * RANGE_BYTES..((i + 1) * RANGE_BYTES).min(shard.bytes))
            .collect();
        for group in ranges.chunks(RANGES_IN_FLIGHT) {
            let parts =
                store.get_ranges_parallel(&shard.path, group.to_vec(), options.stall_timeout)?;
            for (range, part) in group.iter().zip(parts) {
                let bytes = part?;
                if bytes.len() as u64 != range.end - range.start {
                    return Err(Error::CorruptShard {
                        path: PathBuf::from(store.url_of(&shard.path)),
                        reason: format!(
                            "asked for bytes {range:?}, got {} bytes (the object is shorter \
                             than the index records)",
                            bytes.len()
                        ),
                    });
                }
                file.write_all_at(&bytes, range.start)
                    .map_err(|e| Error::io(&temp, e))?;
            }
        }
        file.sync_all().map_err(|e| Error::io(&temp, e))?;
        drop(file);
        verify(&temp, shard, &store.url_of(&shard.path))?;
        let target = folder.join(&shard.path);
        fs::rename(&temp, &target).map_err(|e| Error::io(&target, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Size and xxh3 of the downloaded file against the index.
fn verify(path: &Path, shard: &ShardEntry, url: &str) -> Result<()> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 != shard.bytes {
        return Err(Error::CorruptShard {
            path: PathBuf::from(url),
            reason: format!(
                "downloaded {} bytes, the index records {}",
                bytes.len(),
                shard.bytes
            ),
        });
    }
    let actual = Checksum::of(&bytes);
    if actual != shard.checksum {
        return Err(Error::ChecksumMismatch {
            path: PathBuf::from(url),
            expected: shard.checksum.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Removes every cached shard that no reader holds; returns (files, bytes).
pub fn clear_cache(cache_dir: &Path) -> Result<(u64, u64)> {
    if !cache_dir.is_dir() {
        return Ok((0, 0));
    }
    let _lock = lock_cache(cache_dir)?;
    let (mut files, mut bytes) = (0, 0);
    for (path, size, _) in cached_files(cache_dir)? {
        let Ok(file) = File::open(&path) else {
            continue;
        };
        let exclusive = rustix::fs::FlockOperation::NonBlockingLockExclusive;
        if rustix::fs::flock(&file, exclusive).is_ok() && fs::remove_file(&path).is_ok() {
            files += 1;
            bytes += size;
        }
    }
    Ok((files, bytes))
}
