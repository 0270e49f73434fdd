//! The one place where mosaicrs errors become Python exceptions.
//!
//! | Rust error | Python exception |
//! |---|---|
//! | no dataset at the path, missing shard, file not found | `FileNotFoundError` |
//! | dataset already exists (save mode `error`) | `FileExistsError` |
//! | row out of range | `IndexError` |
//! | other bad input: columns, options, nulls, resume state, schema | `ValueError` |
//! | other I/O, corrupt or unreadable files | `OSError` |
//! | bugs in mosaicrs | `RuntimeError` |

use mosaicrs::{Error, ErrorCategory};
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyIndexError, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::PyErr;

/// Converts a mosaicrs error into the Python exception a user expects.
pub(crate) fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match &e {
        Error::NotADataset { .. } | Error::MissingShard { .. } => {
            PyFileNotFoundError::new_err(message)
        }
        Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(message)
        }
        Error::AlreadyExists { .. } => PyFileExistsError::new_err(message),
        Error::RowOutOfRange { .. } => PyIndexError::new_err(message),
        _ => match e.category() {
            ErrorCategory::InvalidInput => PyValueError::new_err(message),
            ErrorCategory::Io => PyOSError::new_err(message),
            ErrorCategory::Internal => PyRuntimeError::new_err(message),
        },
    }
}

/// `map_err(to_py)` in one word.
pub(crate) trait IntoPy<T> {
    fn py_err(self) -> pyo3::PyResult<T>;
}

impl<T> IntoPy<T> for mosaicrs::Result<T> {
    fn py_err(self) -> pyo3::PyResult<T> {
        self.map_err(to_py)
    }
}
