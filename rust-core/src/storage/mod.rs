//! Where a dataset lives: a local folder, or a prefix in an object store.
//!
//! A location is a plain path or `file://` URL (read by mapping the files
//! directly, as always), or an `s3://`, `gs://`, `az://`/`abfss://` URL (or a
//! read-only `http(s)://` URL) served through the [`object_store`] crate.
//! Which object stores are compiled in is chosen by the crate features
//! `aws`, `gcp`, `azure` and `http`.
//!
//! The object store API is asynchronous; one multi-threaded tokio runtime
//! lives inside this module and every call here blocks on it, so the rest
//! of mosaicrs (and its callers) stays synchronous. Do not call these
//! functions from inside another tokio runtime's worker thread.
//!
//! Credentials and endpoints come from the standard environment variables
//! that `object_store` reads (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, `GOOGLE_*`, `AZURE_*`...), from instance credentials,
//! and from explicit [`StorageOptions`], which win over the environment.
//! Option values never appear in `Debug`, `Display` or errors.

mod args;
#[cfg(unix)]
mod cache;
mod location;
mod options;
mod records;
mod remote;
mod version;

pub use args::StoreArgs;
#[cfg(unix)]
pub use cache::{cache_usage, clear_cache, dataset_folder, CacheOptions};
#[cfg(unix)]
pub(crate) use cache::{fetch_all, fetch_one};
pub use location::Location;
pub use options::StorageOptions;
pub(crate) use records::committed_at_ms;
pub use remote::{RemoteFile, RemoteStore};
pub use version::DatasetVersion;
