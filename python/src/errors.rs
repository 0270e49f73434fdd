//! The one place where mosaicrs errors become Python exceptions: the
//! classes of `mosaicrs.exceptions`, defined here. Each is a subclass of
//! `MosaicrsError` and of the built-in exception a caller would otherwise
//! catch, so `except OSError` and `except ValueError` keep working.
//!
//! | Rust error | class | built-in base |
//! |---|---|---|
//! | `InvalidArgument`, `UnsupportedColumn`, `ResumeMismatch`, `NullValue`, `ListLength` | `InvalidInputError` | `ValueError` |
//! | `SchemaMismatch` | `SchemaMismatchError` | `ValueError` |
//! | `ColumnNotFound` | `ColumnNotFoundError` | `ValueError` |
//! | `RowOutOfRange` | `RowOutOfRangeError` | `ValueError`, `IndexError` |
//! | `CacheTooSmall` | `CacheTooSmallError` | `ValueError` |
//! | `NotADataset`, an OS "not found" | `DatasetNotFoundError` | `FileNotFoundError` |
//! | `AlreadyExists` (save mode `error`) | `DatasetExistsError` | `FileExistsError` |
//! | `Conflict` (a lost compare-and-swap commit) | `CommitConflictError` | `OSError` |
//! | `CorruptShard`, `ChecksumMismatch`, `InvalidIndex` | `CorruptDataError` | `OSError` |
//! | `MissingShard` | `MissingShardError` (a `CorruptDataError`) | `FileNotFoundError` |
//! | `UnsupportedVersion` | `UnsupportedVersionError` | `OSError` |
//! | `VersionNotFound` (never committed, or removed by vacuum) | `VersionNotFoundError` | `LookupError` |
//! | other `Io`, `Storage` | `StorageError` | `OSError` |
//! | `Internal`, `Arrow`, `Torch` (bugs in mosaicrs) | `InternalError` | `RuntimeError` |

use mosaicrs::{Error, ErrorCategory};
use pyo3::exceptions::{
    PyException, PyFileExistsError, PyFileNotFoundError, PyIndexError, PyLookupError, PyOSError,
    PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::{ffi, PyTypeInfo};

/// The module the classes say they belong to (`mosaicrs/exceptions.py`
/// re-exports them, so they pickle and print under that name).
const MODULE: &str = "mosaicrs.exceptions";

/// Creates the exception class `name(*bases)` in [`MODULE`]. `type(...)`
/// rather than `PyErr::new_type`, which takes a single base.
fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    doc: &str,
    bases: Vec<Bound<'py, PyType>>,
) -> PyResult<Py<PyType>> {
    let dict = PyDict::new(py);
    dict.set_item("__module__", MODULE)?;
    dict.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let class = py.get_type::<PyType>().call1((name, bases, dict))?;
    Ok(class.cast_into::<PyType>()?.unbind())
}

/// Defines an exception class with several bases, usable as pyo3's own
/// exception types are (`X::new_err(message)`, lazily built, so that it can
/// be made without the GIL).
macro_rules! exception {
    ($name:ident($($base:ty),+), $doc:literal) => {
        #[doc = $doc]
        #[repr(transparent)]
        pub(crate) struct $name(#[allow(dead_code)] PyAny);

        impl $name {
            /// A `PyErr` of this class with `message`.
            #[allow(dead_code, reason = "the base classes are caught, never raised")]
            pub(crate) fn new_err(message: impl Into<String>) -> PyErr {
                PyErr::new::<$name, String>(message.into())
            }
        }

        // SAFETY: `type_object_raw` returns the one class object, created
        // on first use and kept in a static for the life of the process: never
        // null, always the same. Its instances are Python exception objects,
        // which `PyAny` (the only field) represents.
        unsafe impl PyTypeInfo for $name {
            const NAME: &'static str = stringify!($name);
            const MODULE: Option<&'static str> = Some(MODULE);

            fn type_object_raw(py: Python<'_>) -> *mut ffi::PyTypeObject {
                static CLASS: PyOnceLock<Py<PyType>> = PyOnceLock::new();
                CLASS
                    .get_or_init(py, || {
                        let bases = vec![$(py.get_type::<$base>()),+];
                        // The bases are constants that form a valid class
                        // (compatible layouts, a consistent MRO); the package
                        // creates every class on import, so a bad list fails
                        // every test rather than a user's error path.
                        new_class(py, stringify!($name), $doc, bases)
                            .expect("the mosaicrs exception classes have valid bases")
                    })
                    .as_ptr()
                    .cast()
            }
        }
    };
}

exception!(
    MosaicrsError(PyException),
    "The base class of every error mosaicrs raises."
);
exception!(
    InvalidInputError(MosaicrsError, PyValueError),
    "An argument, option, column, schema or resume state is wrong; the message names it."
);
exception!(
    SchemaMismatchError(InvalidInputError),
    "Two schemas that must be equal are not (an append against the dataset, a shard \
     against its index)."
);
exception!(
    ColumnNotFoundError(InvalidInputError),
    "A column named by the caller does not exist; the message lists the columns."
);
exception!(
    RowOutOfRangeError(InvalidInputError, PyIndexError),
    "A row index is negative or past the end of the dataset."
);
exception!(
    CacheTooSmallError(InvalidInputError),
    "The cache (cache_limit) is too small for what was asked of it; the message names the \
     size needed."
);
exception!(
    DatasetNotFoundError(MosaicrsError, PyFileNotFoundError),
    "No committed dataset at the path (no index.json), or a file the call needs is gone."
);
exception!(
    DatasetExistsError(MosaicrsError, PyFileExistsError),
    "A dataset exists at the target and the save mode (error) does not allow replacing it."
);
exception!(
    CommitConflictError(MosaicrsError, PyOSError),
    "Another writer changed the dataset while this write ran (a lost compare-and-swap \
     commit); nothing of this write was committed."
);
exception!(
    CorruptDataError(MosaicrsError, PyOSError),
    "A shard or index is damaged: a checksum mismatch, a truncated or malformed file."
);
exception!(
    MissingShardError(CorruptDataError, PyFileNotFoundError),
    "A shard that the index lists is not there."
);
exception!(
    UnsupportedVersionError(MosaicrsError, PyOSError),
    "The dataset was written in a format version newer than this mosaicrs reads."
);
exception!(
    VersionNotFoundError(MosaicrsError, PyLookupError),
    "The dataset has no such version: never committed, or removed by vacuum; the message \
     names the version and the oldest one kept."
);
exception!(
    StorageError(MosaicrsError, PyOSError),
    "The file system or object store failed or refused a request."
);
exception!(
    InternalError(MosaicrsError, PyRuntimeError),
    "A bug in mosaicrs; please report it with the message."
);

/// Adds every class to the extension module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("MosaicrsError", py.get_type::<MosaicrsError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("SchemaMismatchError", py.get_type::<SchemaMismatchError>())?;
    m.add("ColumnNotFoundError", py.get_type::<ColumnNotFoundError>())?;
    m.add("RowOutOfRangeError", py.get_type::<RowOutOfRangeError>())?;
    m.add("CacheTooSmallError", py.get_type::<CacheTooSmallError>())?;
    m.add(
        "DatasetNotFoundError",
        py.get_type::<DatasetNotFoundError>(),
    )?;
    m.add("DatasetExistsError", py.get_type::<DatasetExistsError>())?;
    m.add("CommitConflictError", py.get_type::<CommitConflictError>())?;
    m.add("CorruptDataError", py.get_type::<CorruptDataError>())?;
    m.add("MissingShardError", py.get_type::<MissingShardError>())?;
    m.add(
        "UnsupportedVersionError",
        py.get_type::<UnsupportedVersionError>(),
    )?;
    m.add(
        "VersionNotFoundError",
        py.get_type::<VersionNotFoundError>(),
    )?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("InternalError", py.get_type::<InternalError>())?;
    Ok(())
}

/// Converts a mosaicrs error into the most specific class above. Needs no
/// GIL: the exception object is made when Python first sees it.
pub(crate) fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    match &e {
        Error::NotADataset { .. } => DatasetNotFoundError::new_err(message),
        Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
            DatasetNotFoundError::new_err(message)
        }
        Error::MissingShard { .. } => MissingShardError::new_err(message),
        Error::AlreadyExists { .. } => DatasetExistsError::new_err(message),
        Error::Conflict { .. } => CommitConflictError::new_err(message),
        Error::CorruptShard { .. }
        | Error::ChecksumMismatch { .. }
        | Error::InvalidIndex { .. } => CorruptDataError::new_err(message),
        Error::UnsupportedVersion { .. } => UnsupportedVersionError::new_err(message),
        Error::VersionNotFound { .. } => VersionNotFoundError::new_err(message),
        Error::Io { .. } | Error::Storage { .. } => StorageError::new_err(message),
        Error::SchemaMismatch { .. } => SchemaMismatchError::new_err(message),
        Error::ColumnNotFound { .. } => ColumnNotFoundError::new_err(message),
        Error::RowOutOfRange { .. } => RowOutOfRangeError::new_err(message),
        Error::CacheTooSmall { .. } => CacheTooSmallError::new_err(message),
        _ => match e.category() {
            ErrorCategory::InvalidInput => InvalidInputError::new_err(message),
            ErrorCategory::Io => StorageError::new_err(message),
            ErrorCategory::Internal => InternalError::new_err(message),
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
