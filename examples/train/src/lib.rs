//! Training an MLP classifier from a mosaicrs dataset with tch, and the
//! loader benchmark. The binaries `mosaicrs-train` and
//! `mosaicrs-loader-bench` are thin wrappers around [`train::run`] and
//! [`bench::run`].

pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod model;
pub mod train;
