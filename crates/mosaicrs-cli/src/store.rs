//! Options shared by the commands that take a dataset path or URL: the
//! core crate's [`StoreArgs`] (also used by the training example).

pub use mosaicrs::storage::StoreArgs;
