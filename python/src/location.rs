//! Dataset locations from Python values: a local path (`str`,
//! `os.PathLike`, `file://`) or an object-store URL (`s3://`, `gs://`,
//! `az://`, `abfss://`, `http(s)://`) with its `storage_options`.

use std::sync::atomic::{AtomicU64, Ordering};

use mosaicrs::storage::{CacheOptions, Location, StorageOptions};
use mosaicrs::units::parse_byte_size;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{IntoPy, InvalidInputError};
use crate::fork;

/// Parses `path` (a `str`, `os.PathLike` or URL) and `storage_options` (a
/// mapping of `object_store` option names to strings) into a [`Location`].
///
/// Option values may be secrets: no error here repeats one, and URLs are
/// shown without user info or query.
pub(crate) fn location(
    path: &Bound<'_, PyAny>,
    storage_options: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Location> {
    let os = path.py().import("os")?;
    let text: String = os
        .call_method1("fspath", (path,))?
        .extract()
        .map_err(|_| PyTypeError::new_err(format!("{what} must be a str or os.PathLike path")))?;
    let options = storage_options_of(storage_options)?;
    let location = path
        .py()
        .detach(|| Location::parse(&text, &options))
        .py_err()?;
    if location.as_local().is_some() && !options.is_empty() {
        return Err(InvalidInputError::new_err(format!(
            "storage_options are only used with object-store URLs (s3://, gs://, az://...), \
             and {what} {text:?} is a local path"
        )));
    }
    if location.as_remote().is_some() {
        check_storage_fork()?;
    }
    Ok(location)
}

/// Opens a dataset from the arguments that `Dataset` takes:
/// `open` runs on the parsed location and cache with the GIL released.
/// Returns what it opened and the location as shown (no credentials).
pub(crate) fn open_located<T: Send>(
    py: Python<'_>,
    path: &Bound<'_, PyAny>,
    storage_options: Option<&Bound<'_, PyAny>>,
    cache_dir: Option<&Bound<'_, PyAny>>,
    cache_limit: Option<&Bound<'_, PyAny>>,
    open: impl FnOnce(&Location, &CacheOptions) -> mosaicrs::Result<T> + Send,
) -> PyResult<(T, String)> {
    let location = location(path, storage_options, "dataset path")?;
    let cache = cache_options(cache_dir, cache_limit)?;
    let opened = py.detach(|| open(&location, &cache)).py_err()?;
    Ok((opened, location.to_string()))
}

/// A `dict[str, str]` (or `None`) as [`StorageOptions`].
fn storage_options_of(options: Option<&Bound<'_, PyAny>>) -> PyResult<StorageOptions> {
    let mut out = StorageOptions::default();
    let Some(options) = options.filter(|o| !o.is_none()) else {
        return Ok(out);
    };
    let dict = options
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("storage_options must be a dict of str to str"))?;
    for (key, value) in dict.iter() {
        let key: String = key
            .extract()
            .map_err(|_| PyTypeError::new_err("storage_options keys must be str"))?;
        // The value may be a secret: the message names the key only.
        let value: String = if let Ok(b) = value.extract::<bool>() {
            b.to_string()
        } else {
            value.extract().map_err(|_| {
                PyTypeError::new_err(format!("storage_options[{key:?}] must be a str"))
            })?
        };
        out.insert(key, value);
    }
    Ok(out)
}

/// The cache for remote shards: the defaults (`MOSAICRS_CACHE_DIR`,
/// `MOSAICRS_CACHE_LIMIT`, else `~/.cache/mosaicrs` and 16 GiB) with
/// `cache_dir` / `cache_limit` (bytes or `"8g"`) over them.
pub(crate) fn cache_options(
    cache_dir: Option<&Bound<'_, PyAny>>,
    cache_limit: Option<&Bound<'_, PyAny>>,
) -> PyResult<CacheOptions> {
    let mut cache = CacheOptions::default();
    if let Some(dir) = cache_dir.filter(|d| !d.is_none()) {
        let os = dir.py().import("os")?;
        let text: String = os
            .call_method1("fspath", (dir,))?
            .extract()
            .map_err(|_| PyTypeError::new_err("cache_dir must be a str or os.PathLike path"))?;
        cache.cache_dir = text.into();
    }
    if let Some(limit) = cache_limit.filter(|l| !l.is_none()) {
        cache.cache_limit = match limit.extract::<u64>() {
            Ok(n) => n,
            Err(_) => {
                let text: String = limit.str()?.extract()?;
                parse_byte_size(&text).map_err(|e| {
                    InvalidInputError::new_err(format!(
                        "cache_limit {text:?} is not a byte size: {e}"
                    ))
                })?
            }
        };
    }
    Ok(cache)
}

/// The fork generation in which the object-store runtime was first used.
static STORAGE_GENERATION: AtomicU64 = AtomicU64::new(u64::MAX);

/// The object-store runtime's threads live in the process that started
/// them; a forked child that used it would wait on them forever. Refuse
/// instead, with what to do.
fn check_storage_fork() -> PyResult<()> {
    let now = fork::generation();
    match STORAGE_GENERATION.compare_exchange(u64::MAX, now, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => Ok(()),
        Err(first) if first == now => Ok(()),
        Err(_) => Err(PyRuntimeError::new_err(
            "this process was forked after mosaicrs used an object store, and the store's I/O \
             threads do not exist in the child. Open remote datasets in the child only, or use \
             the 'spawn' start method",
        )),
    }
}
