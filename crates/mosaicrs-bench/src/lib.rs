//! The figures `BENCHMARKS.md` quotes, each against a baseline measured in
//! the same run:
//!
//! - [`format`] (`mosaicrs-format-bench`): write, scan and random access of
//!   a dataset against memcpy of the same bytes;
//! - [`loader`] (`mosaicrs-loader-bench`): shuffled batches through the
//!   loader into tensors against in-memory Arrow and numpy-style gathers and
//!   memcpy; with `--epochs-from-stdin` ([`epochs`]), the Rust baseline
//!   of the Python loader's benchmark.

pub mod epochs;
pub mod format;
pub mod loader;
