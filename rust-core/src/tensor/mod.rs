//! Loader batches as tch (libtorch) tensors. Cargo feature `tch`.
//!
//! A [`TensorAssembler`] runs on the loader's worker threads and writes each
//! value once, from the mapped shards straight into the tensor's memory:
//!
//! | Arrow column | becomes |
//! |---|---|
//! | the chosen feature columns (numeric) | one `[B, F]` tensor of a chosen kind |
//! | int8/16/32/64, uint8/16/32/64, float32/64, bool, date32/64, timestamp | `[B]` tensor ([`natural_kind`]) |
//! | fixed-size list of numbers | `[B, D]` tensor |
//! | list / large list of numbers, named by [`TensorSpec::with_fixed_list`] | `[B, D]` tensor; a row of another length is [`Error::ListLength`] |
//! | list / large list of numbers | values `[N]` + offsets `[B + 1]` (int64) |
//! | utf8, large utf8, binary, large binary | bytes + offsets (not a tensor) |
//!
//! Nulls are an error naming the column and dataset row ([`NullPolicy::Error`],
//! the default) or replaced by a fill value; null lists and strings become
//! empty under a fill policy.
//!
//! When the target device is CUDA, host tensors are allocated in pinned
//! memory, and a [`DeviceFeeder`] copies each batch to the device without
//! blocking while the previous one is in use (double buffering).
//!
//! ```no_run
//! use std::sync::Arc;
//! use mosaicrs::loader::{Loader, LoaderConfig};
//! use mosaicrs::reader::Dataset;
//! use mosaicrs::tensor::{choose_device, DeviceFeeder, TensorAssembler, TensorSpec};
//!
//! let dataset = Arc::new(Dataset::open("digits.mosaicrs")?);
//! let device = choose_device("auto")?;
//! let mut loader = Loader::new(dataset, LoaderConfig::default())?;
//! let spec = TensorSpec::features((0..64).map(|i| format!("f{i}")), tch::Kind::Float)
//!     .with_column("label");
//! let assembler = TensorAssembler::new(loader.schema(), &spec, device)?;
//! for batch in DeviceFeeder::new(loader.epoch_with(move |g| assembler.assemble(g))?, device) {
//!     let batch = batch?;
//!     let x = batch.data.features()?;      // [B, 64] float on the device
//!     let y = batch.data.tensor("label")?; // [B]
//!     # let _ = (x, y);
//! }
//! # Ok::<(), mosaicrs::Error>(())
//! ```

mod assemble;
mod device;
mod fill;

pub use assemble::{natural_kind, TensorAssembler};
pub use device::{choose_device, DeviceFeeder};

use std::collections::BTreeMap;

use tch::{Device, Kind, Tensor};

use crate::{Error, Result};

/// What to do with nulls when converting to tensors.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum NullPolicy {
    /// Fail with [`Error::NullValue`] naming the column and row.
    #[default]
    Error,
    /// Use this value for null numbers; null lists and strings become empty.
    Fill(f64),
}

/// Which columns become which tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Numeric columns stacked, in this order, into one `[B, F]` tensor.
    pub features: Vec<String>,
    /// Kind of the feature tensor (Float, Double, Int64, Int, Int16, Int8, Uint8, Bool).
    pub feature_kind: Kind,
    /// Further columns, each converted by its type (see the module docs).
    pub columns: Vec<String>,
    /// List columns among `columns` to stack as `[B, width]` rather than
    /// ragged (Spark writes every `array<...>` as a variable-length list).
    pub list_widths: BTreeMap<String, usize>,
    pub nulls: NullPolicy,
}

impl TensorSpec {
    /// A spec with these feature columns stacked as `kind` and nothing else.
    pub fn features<S: Into<String>>(names: impl IntoIterator<Item = S>, kind: Kind) -> Self {
        TensorSpec {
            features: names.into_iter().map(Into::into).collect(),
            feature_kind: kind,
            columns: Vec::new(),
            list_widths: BTreeMap::new(),
            nulls: NullPolicy::Error,
        }
    }

    /// Adds a column converted by its own type.
    pub fn with_column(mut self, name: impl Into<String>) -> Self {
        self.columns.push(name.into());
        self
    }

    /// Adds a list column whose every row holds `width` numbers (an embedding
    /// written by Spark as `array<float>`), stacked as a `[B, width]` tensor.
    /// A row of another length fails the batch with [`Error::ListLength`]
    /// naming the column and row; a null row follows the null policy. A
    /// fixed-size list column of the same width is accepted too.
    ///
    /// ```
    /// use mosaicrs::tensor::TensorSpec;
    /// let spec = TensorSpec::features(Vec::<String>::new(), tch::Kind::Float)
    ///     .with_fixed_list("emb", 256)
    ///     .with_column("label");
    /// assert_eq!(spec.columns, ["emb", "label"]);
    /// assert_eq!(spec.list_widths["emb"], 256);
    /// ```
    pub fn with_fixed_list(mut self, name: impl Into<String>, width: usize) -> Self {
        let name = name.into();
        self.list_widths.insert(name.clone(), width);
        self.columns.push(name);
        self
    }

    /// Sets the null policy.
    pub fn with_nulls(mut self, nulls: NullPolicy) -> Self {
        self.nulls = nulls;
        self
    }
}

/// One converted column.
#[derive(Debug)]
pub enum ColumnData {
    /// `[B]` numbers or `[B, D]` fixed-size lists.
    Dense(Tensor),
    /// Variable-length lists: sample `i` is `values[offsets[i]..offsets[i + 1]]`.
    Ragged { values: Tensor, offsets: Tensor },
    /// Strings or binary (host memory): sample `i` is
    /// `values[offsets[i]..offsets[i + 1]]`.
    Bytes { values: Vec<u8>, offsets: Vec<u64> },
}

impl ColumnData {
    fn f_to_device(&self, device: Device, non_blocking: bool) -> Result<ColumnData> {
        Ok(match self {
            ColumnData::Dense(t) => ColumnData::Dense(to_device(t, device, non_blocking)?),
            ColumnData::Ragged { values, offsets } => ColumnData::Ragged {
                values: to_device(values, device, non_blocking)?,
                offsets: to_device(offsets, device, non_blocking)?,
            },
            ColumnData::Bytes { values, offsets } => ColumnData::Bytes {
                values: values.clone(),
                offsets: offsets.clone(),
            },
        })
    }
}

/// The tensors of one batch.
#[derive(Debug)]
pub struct TensorBatch {
    /// The stacked `[B, F]` features (absent when the spec names none).
    pub features: Option<Tensor>,
    /// The other columns by name.
    pub columns: BTreeMap<String, ColumnData>,
    /// Samples in the batch.
    pub len: usize,
}

impl TensorBatch {
    /// The `[B, F]` feature tensor.
    pub fn features(&self) -> Result<&Tensor> {
        self.features.as_ref().ok_or_else(|| {
            Error::InvalidArgument("the tensor spec names no feature columns".into())
        })
    }

    /// A dense column (`[B]` or `[B, D]`).
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        match self.columns.get(name) {
            Some(ColumnData::Dense(t)) => Ok(t),
            Some(_) => Err(Error::InvalidArgument(format!(
                "column {name:?} is not a dense tensor (it is ragged or bytes)"
            ))),
            None => Err(self.missing(name)),
        }
    }

    /// Any converted column.
    pub fn column(&self, name: &str) -> Result<&ColumnData> {
        self.columns.get(name).ok_or_else(|| self.missing(name))
    }

    fn missing(&self, name: &str) -> Error {
        Error::InvalidArgument(format!(
            "column {name:?} was not converted; the batch has {}",
            self.columns.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    }

    /// Copies every tensor to `device` (bytes columns stay on the host).
    /// With `non_blocking` and pinned sources the copies overlap other work.
    pub fn f_to_device(&self, device: Device, non_blocking: bool) -> Result<TensorBatch> {
        let features = match &self.features {
            Some(t) => Some(to_device(t, device, non_blocking)?),
            None => None,
        };
        let columns = self
            .columns
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.f_to_device(device, non_blocking)?)))
            .collect::<Result<_>>()?;
        Ok(TensorBatch {
            features,
            columns,
            len: self.len,
        })
    }
}

fn to_device(t: &Tensor, device: Device, non_blocking: bool) -> Result<Tensor> {
    if t.device() == device {
        return Ok(t.shallow_clone());
    }
    t.f_to_device_(device, t.kind(), non_blocking, false)
        .map_err(torch_error)
}

/// Wraps a libtorch error.
pub(crate) fn torch_error(e: tch::TchError) -> Error {
    Error::Torch(e.to_string())
}
