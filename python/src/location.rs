//! Dataset locations: local paths now; object-store URLs once the storage
//! layer is available to this package.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Resolves `path` (a `str` or `os.PathLike`) to a local folder.
///
/// `file://` URLs are local paths. Other URLs and `storage_options` are
/// refused with a `ValueError` that names them, before any work starts.
pub(crate) fn local_path(
    path: &Bound<'_, PyAny>,
    storage_options: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<PathBuf> {
    let os = path.py().import("os")?;
    let text: String = os
        .call_method1("fspath", (path,))?
        .extract()
        .map_err(|_| PyValueError::new_err(format!("{what} must be a str or os.PathLike path")))?;
    if let Some(options) = storage_options {
        if !options.is_none() && options.len()? > 0 {
            return Err(PyValueError::new_err(format!(
                "storage_options are only used with object-store URLs, which this build of \
                 mosaicrs does not read yet; pass a local path for {what} and no storage_options"
            )));
        }
    }
    if let Some(rest) = text.strip_prefix("file://") {
        return Ok(PathBuf::from(rest));
    }
    if let Some((scheme, _)) = text.split_once("://") {
        return Err(PyValueError::new_err(format!(
            "{what} {text:?} is a {scheme}:// URL; this build of mosaicrs reads and writes \
             local paths only (a plain path or file://)"
        )));
    }
    Ok(PathBuf::from(text))
}
