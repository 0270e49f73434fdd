//! Loader batches as tch (libtorch) tensors. The `mosaicrs-tch` crate.
//!
//! A [`TensorAssembler`] runs on the loader's worker threads: it allocates
//! each tensor and lets the core's [`BatchPlan`](mosaicrs::assemble::BatchPlan)
//! write every value once, from the mapped shards straight into the tensor's
//! memory. Which column becomes which tensor is the core's
//! [`TensorSpec`] (see [`mosaicrs::assemble`] for the table); variable-length
//! lists, strings and binary become values + int64 offsets tensors, written
//! by the same core code ([`RaggedColumn`](mosaicrs::assemble::RaggedColumn))
//! as the Python loader's.
//!
//! A [`TokenLoader`] packs documents of tokens into `[B, L]` tensors for
//! language models (`input_ids`, `position_ids`, `cu_seqlens`, `labels`),
//! over the core's [`mosaicrs::tokens::TokenLoader`] and its state.
//!
//! When the target device is CUDA, host tensors are allocated in pinned
//! memory, and a [`DeviceFeeder`] copies each batch to the device without
//! blocking while the previous one is in use (double buffering).
//!
//! ```no_run
//! use std::sync::Arc;
//! use mosaicrs::loader::{Loader, LoaderConfig};
//! use mosaicrs::reader::Dataset;
//! use mosaicrs_tch::{choose_device, DeviceFeeder, ElementKind, TensorAssembler, TensorSpec};
//!
//! let dataset = Arc::new(Dataset::open("digits.mosaicrs")?);
//! let device = choose_device("auto")?;
//! let mut loader = Loader::new(dataset, LoaderConfig::default())?;
//! let spec = TensorSpec::features((0..64).map(|i| format!("f{i}")), ElementKind::F32)
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
mod tokens;

pub use assemble::{element_kind, natural_kind, to_kind, TensorAssembler};
pub use device::{choose_device, DeviceFeeder};
pub use mosaicrs::assemble::{ElementKind, NullPolicy, TensorSpec};
pub use tokens::{TokenLoader, TokenTensors};

use std::collections::BTreeMap;

use mosaicrs::assemble::FeatureLayout;
use tch::{Device, Kind, Tensor};

use mosaicrs::{Error, Result};

/// One converted column.
#[derive(Debug)]
pub enum ColumnData {
    /// `[B]` numbers or `[B, D]` fixed-size lists.
    Dense(Tensor),
    /// Variable-length lists: sample `i` is `values[offsets[i]..offsets[i + 1]]`
    /// (values `[N]`, or `[N, D]` for a list of `D`-value lists named by
    /// `TensorSpec::with_inner_width` or of fixed-size lists).
    Ragged { values: Tensor, offsets: Tensor },
    /// Lists of lists of any lengths (`TensorSpec::with_nested_list`):
    /// sample `i` holds inner lists `offsets[i]..offsets[i + 1]`, inner list
    /// `j` is `values[inner_offsets[j]..inner_offsets[j + 1]]` (values `[V]`,
    /// int64 offsets `[B + 1]` and inner offsets `[n_lists + 1]`).
    Nested {
        values: Tensor,
        offsets: Tensor,
        inner_offsets: Tensor,
    },
    /// Strings or binary: uint8 `values` `[N]` and int64 `offsets`
    /// `[B + 1]`; sample `i` is `values[offsets[i]..offsets[i + 1]]`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arrow::array::{RecordBatch, StringArray};
    /// use mosaicrs_tch::{ColumnData, ElementKind, TensorAssembler, TensorSpec};
    ///
    /// let text = StringArray::from(vec!["hi", "", "yo"]);
    /// let batch = RecordBatch::try_from_iter([("text", Arc::new(text) as _)])?;
    /// let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32).with_column("text");
    /// let asm = TensorAssembler::new(&batch.schema(), &spec, tch::Device::Cpu)?;
    /// let t = asm.convert(&batch)?;
    /// let ColumnData::Bytes { values, offsets } = t.column("text")? else { unreachable!() };
    /// assert_eq!(Vec::<i64>::try_from(offsets).unwrap(), [0, 2, 2, 4]);
    /// let row2 = values.narrow(0, 2, 2); // offsets[2]..offsets[3]
    /// assert_eq!(String::from_utf8(Vec::<u8>::try_from(&row2).unwrap()).unwrap(), "yo");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    Bytes { values: Tensor, offsets: Tensor },
}

impl ColumnData {
    fn f_to_device(&self, device: Device, non_blocking: bool) -> Result<ColumnData> {
        Ok(match self {
            ColumnData::Dense(t) => ColumnData::Dense(to_device(t, device, non_blocking)?),
            ColumnData::Ragged { values, offsets } => ColumnData::Ragged {
                values: to_device(values, device, non_blocking)?,
                offsets: to_device(offsets, device, non_blocking)?,
            },
            ColumnData::Nested {
                values,
                offsets,
                inner_offsets,
            } => ColumnData::Nested {
                values: to_device(values, device, non_blocking)?,
                offsets: to_device(offsets, device, non_blocking)?,
                inner_offsets: to_device(inner_offsets, device, non_blocking)?,
            },
            ColumnData::Bytes { values, offsets } => ColumnData::Bytes {
                values: to_device(values, device, non_blocking)?,
                offsets: to_device(offsets, device, non_blocking)?,
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
                "column {name:?} is not a dense tensor (it is ragged, nested or bytes)"
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

    /// Copies every tensor to `device`.
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

/// The `[B, F]` model input of a batch converted with [`FeatureLayout::spec`],
/// of `kind`: the stacked scalars, then each list column.
///
/// ```no_run
/// use mosaicrs::assemble::{ElementKind, FeatureLayout};
/// # fn f(layout: &FeatureLayout, batch: &mosaicrs_tch::TensorBatch) -> mosaicrs::Result<()> {
/// let x = mosaicrs_tch::feature_input(layout, batch, tch::Kind::Float)?; // [B, layout.width()]
/// # Ok(()) }
/// ```
pub fn feature_input(layout: &FeatureLayout, batch: &TensorBatch, kind: Kind) -> Result<Tensor> {
    let mut parts = Vec::with_capacity(1 + layout.lists().len());
    if !layout.scalars().is_empty() {
        parts.push(batch.features()?.shallow_clone());
    }
    for (name, _) in layout.lists() {
        parts.push(batch.tensor(name)?.f_to_kind(kind).map_err(torch_error)?);
    }
    Ok(match parts.len() {
        1 => parts.remove(0),
        _ => Tensor::f_cat(&parts, 1).map_err(torch_error)?,
    })
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
