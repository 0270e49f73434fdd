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
//! - [`units`]: byte sizes as options spell them (`64m`, `1g`);
//! - [`assemble`]: gathered samples written into typed buffers (tensors'
//!   or arrays' memory), without any tensor library;
//! - [`tokens`]: LLM token packing, documents of a list column cut into
//!   fixed-length sequences, resumable mid-document on any world size;
//! - `testing` (cargo feature `testing`): synthetic datasets for tests,
//!   benches and examples.
//!
//! Loader batches as libtorch tensors are the `mosaicrs-tch` crate's; the
//! command line tool is `mosaicrs-cli`'s.

pub mod assemble;
pub mod error;
pub mod files;
pub mod format;
#[doc(hidden)]
pub mod fuzz_targets;
pub mod loader;
pub mod reader;
pub mod storage;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod units;
pub mod writer;

pub use error::{Error, ErrorCategory, Result};
/// The commit history (`log`, `diff`, `restore`, `vacuum`); it lives in
/// [`writer`], whose commit protocol it shares.
pub use writer::history;
