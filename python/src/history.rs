//! Versions from Python: the `version=` / `as_of=` arguments that pick one
//! ([`version_spec`]), and a dataset's history (`mosaicrs.log`).

use mosaicrs::format::{parse_timestamp_ms, VersionSpec};
use mosaicrs::history;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{IntoPy, InvalidInputError};
use crate::location::location;

/// The version that `version` (an `int`, or `"latest"`) or `as_of` (a
/// `datetime.datetime`, naive meaning UTC, or an ISO 8601 / RFC 3339 `str`)
/// name; the newest when both are `None`.
pub(crate) fn version_spec(
    version: Option<&Bound<'_, PyAny>>,
    as_of: Option<&Bound<'_, PyAny>>,
) -> PyResult<VersionSpec> {
    let version = version.filter(|v| !v.is_none());
    let as_of = as_of.filter(|t| !t.is_none());
    match (version, as_of) {
        (Some(_), Some(_)) => Err(InvalidInputError::new_err(
            "pass version= or as_of=, not both",
        )),
        (Some(v), None) => {
            if let Ok(n) = v.extract::<u64>() {
                return Ok(VersionSpec::Version(n));
            }
            match v.extract::<String>() {
                Ok(text) if text.trim().eq_ignore_ascii_case("latest") => Ok(VersionSpec::Latest),
                _ => Err(InvalidInputError::new_err(format!(
                    "version= must be a version number (0 or more) or \"latest\", got {}",
                    v.repr()?
                ))),
            }
        }
        (None, Some(t)) => as_of_spec(t),
        (None, None) => Ok(VersionSpec::Latest),
    }
}

fn as_of_spec(time: &Bound<'_, PyAny>) -> PyResult<VersionSpec> {
    let py = time.py();
    let datetime = py.import("datetime")?;
    if time.is_instance(&datetime.getattr("datetime")?)? {
        let time = if time.getattr("tzinfo")?.is_none() {
            let utc = datetime.getattr("timezone")?.getattr("utc")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("tzinfo", utc)?;
            time.call_method("replace", (), Some(&kwargs))?
        } else {
            time.clone()
        };
        let seconds: f64 = time.call_method0("timestamp")?.extract()?;
        if seconds.is_nan() || seconds < 0.0 {
            return Err(InvalidInputError::new_err(format!(
                "as_of={} is before 1970",
                time.repr()?
            )));
        }
        return Ok(VersionSpec::AsOfTimestampMs((seconds * 1000.0) as u64));
    }
    let text: String = time.extract().map_err(|_| {
        PyTypeError::new_err("as_of= must be a datetime.datetime or an ISO 8601 timestamp str")
    })?;
    match parse_timestamp_ms(&text) {
        Ok(ms) => Ok(VersionSpec::AsOfTimestampMs(ms)),
        Err(e) => Err(InvalidInputError::new_err(format!(
            "as_of={text:?} is not a timestamp ({e}); give one like \"2026-12-07T18:00:00Z\", \
             or a version number as version="
        ))),
    }
}

/// The versions of the dataset at `path`, newest first, each a dict:
/// `version`, `committed_at_ms`, `operation`, `rows_added`,
/// `rows_removed`, `total_rows`, `total_bytes`, `shards`, `writer`,
/// `metadata`, `restored_from`, `schema_change`, `write_id`.
#[pyfunction]
#[pyo3(signature = (path, storage_options=None))]
pub(crate) fn log<'py>(
    py: Python<'py>,
    path: &Bound<'py, PyAny>,
    storage_options: Option<&Bound<'py, PyAny>>,
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let at = location(path, storage_options, "dataset path")?;
    let versions = py.detach(|| history::log(&at)).py_err()?;
    versions
        .into_iter()
        .map(|v| {
            let c = v.commit;
            let d = PyDict::new(py);
            d.set_item("version", v.version)?;
            d.set_item("committed_at_ms", c.committed_at_ms)?;
            d.set_item("operation", c.operation)?;
            d.set_item("rows_added", c.rows_added)?;
            d.set_item("rows_removed", c.rows_removed)?;
            d.set_item("total_rows", v.total_rows)?;
            d.set_item("total_bytes", v.total_bytes)?;
            d.set_item("shards", v.shards)?;
            d.set_item("writer", c.writer)?;
            d.set_item("metadata", c.metadata)?;
            d.set_item("restored_from", c.restored_from)?;
            d.set_item("schema_change", c.schema_change)?;
            d.set_item("write_id", c.write_id)?;
            Ok(d)
        })
        .collect()
}
