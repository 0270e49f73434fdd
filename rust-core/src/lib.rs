//! # mosaicrs
//!
//! Arrow IPC datasets written by Spark and streamed into training loops.
//!
//! A dataset is a folder of standard Arrow IPC files ("shards") plus one
//! `index.json` that lists them; see `docs/FORMAT.md`. This crate is the one
//! implementation of that format:
//!
//! - [`format`]: the index, shard names, checksums, schema encoding;
//! - [`writer`]: shard writing and the atomic index commit;
//! - [`reader`]: zero-copy, memory-mapped reading and verification;
//! - [`loader`]: shuffled, partitioned, resumable batches (worker threads);
//! - `tensor` (cargo feature `tch`): loader batches as libtorch tensors.

pub mod error;
pub mod files;
pub mod format;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod reader;
pub mod writer;

// loader (issue 4)
pub mod loader;
#[cfg(feature = "tch")]
pub mod tensor;

pub use error::{Error, ErrorCategory, Result};
