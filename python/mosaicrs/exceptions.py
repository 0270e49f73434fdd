"""The errors mosaicrs raises.

Every class derives from :class:`MosaicrsError` and from the built-in
exception that code catching errors would expect, so ``except OSError`` and
``except ValueError`` keep working::

    MosaicrsError(Exception)
    ├── InvalidInputError(ValueError)        arguments, options, nulls, resume state
    │   ├── SchemaMismatchError              an append against the dataset's schema
    │   ├── ColumnNotFoundError
    │   ├── RowOutOfRangeError(IndexError)
    │   └── CacheTooSmallError               cache_limit below what a read needs
    ├── DatasetNotFoundError(FileNotFoundError)
    ├── DatasetExistsError(FileExistsError)  save mode "error" on an existing dataset
    ├── CommitConflictError(OSError)         another writer changed the dataset
    ├── CorruptDataError(OSError)            checksum mismatch, damaged shard or index
    │   └── MissingShardError(FileNotFoundError)
    ├── UnsupportedVersionError(OSError)     a format newer than this reader
    ├── VersionNotFoundError(LookupError)    a version never committed or vacuumed
    ├── StorageError(OSError)                the file system or object store failed
    └── InternalError(RuntimeError)          a bug in mosaicrs

>>> import mosaicrs
>>> issubclass(mosaicrs.exceptions.CommitConflictError, OSError)
True

The classes are defined by the native module (``mosaicrs._native``), which
raises them; this module is their public home.
"""

from ._native import (
    CacheTooSmallError,
    ColumnNotFoundError,
    CommitConflictError,
    CorruptDataError,
    DatasetExistsError,
    DatasetNotFoundError,
    InternalError,
    InvalidInputError,
    MissingShardError,
    MosaicrsError,
    RowOutOfRangeError,
    SchemaMismatchError,
    StorageError,
    UnsupportedVersionError,
    VersionNotFoundError,
)

__all__ = [
    "MosaicrsError",
    "InvalidInputError",
    "SchemaMismatchError",
    "ColumnNotFoundError",
    "RowOutOfRangeError",
    "CacheTooSmallError",
    "DatasetNotFoundError",
    "DatasetExistsError",
    "CommitConflictError",
    "CorruptDataError",
    "MissingShardError",
    "UnsupportedVersionError",
    "VersionNotFoundError",
    "StorageError",
    "InternalError",
]
