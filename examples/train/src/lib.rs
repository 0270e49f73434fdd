//! Example: training an MLP classifier from a mosaicrs dataset with tch, on
//! the library's public API. The binary `mosaicrs-train` is a thin wrapper
//! around [`train::run`].

pub mod checkpoint;
pub mod data;
pub mod model;
pub mod train;
