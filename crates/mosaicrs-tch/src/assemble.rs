//! Turning gathered samples into tensors (runs on the loader's workers):
//! allocation here, the values written by the core's [`BatchPlan`].

use std::collections::BTreeMap;

use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use tch::{Device, Kind, Tensor};

use super::{torch_error, ColumnData, TensorBatch, TensorSpec};
use mosaicrs::assemble::{BatchPlan, ColumnPlan, Conversion, Element, ElementKind, ElementsMut};
use mosaicrs::loader::Gathered;
use mosaicrs::{Error, Result};

/// The libtorch kind of an element kind.
///
/// ```
/// use mosaicrs_tch::{to_kind, ElementKind};
/// assert_eq!(to_kind(ElementKind::F32), tch::Kind::Float);
/// ```
pub fn to_kind(kind: ElementKind) -> Kind {
    match kind {
        ElementKind::F32 => Kind::Float,
        ElementKind::F64 => Kind::Double,
        ElementKind::I64 => Kind::Int64,
        ElementKind::I32 => Kind::Int,
        ElementKind::I16 => Kind::Int16,
        ElementKind::I8 => Kind::Int8,
        ElementKind::U8 => Kind::Uint8,
        ElementKind::Bool => Kind::Bool,
    }
}

/// The element kind of a libtorch kind, or an error naming the kinds a batch
/// can be written as.
///
/// ```
/// use mosaicrs_tch::{element_kind, ElementKind};
/// assert_eq!(element_kind(tch::Kind::Double).unwrap(), ElementKind::F64);
/// assert!(element_kind(tch::Kind::ComplexFloat).is_err());
/// ```
pub fn element_kind(kind: Kind) -> Result<ElementKind> {
    ElementKind::ALL
        .into_iter()
        .find(|&k| to_kind(k) == kind)
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "tensor kind {kind:?} is not supported; use Float, Double, Int64, Int, Int16, \
                 Int8, Uint8 or Bool"
            ))
        })
}

/// The tensor kind a numeric Arrow type converts to without loss (see
/// [`mosaicrs::assemble::natural_kind`]).
///
/// ```
/// use arrow::datatypes::DataType;
/// assert_eq!(mosaicrs_tch::natural_kind(&DataType::UInt16), Some(tch::Kind::Int));
/// ```
pub fn natural_kind(data_type: &DataType) -> Option<Kind> {
    mosaicrs::assemble::natural_kind(data_type).map(to_kind)
}

/// Converts gathered samples (or record batches) into a [`TensorBatch`],
/// checked against the schema up front so bad columns fail before any batch.
#[derive(Debug, Clone)]
pub struct TensorAssembler {
    plan: BatchPlan,
    /// Allocate host tensors pinned for this CUDA device.
    pin_for: Option<Device>,
}

impl TensorAssembler {
    /// Checks `spec` against `schema` (the loader's projected schema), see
    /// [`BatchPlan::new`]. Host tensors are pinned when `device` is CUDA.
    pub fn new(schema: &SchemaRef, spec: &TensorSpec, device: Device) -> Result<Self> {
        Ok(TensorAssembler {
            plan: BatchPlan::new(schema, spec)?,
            pin_for: device.is_cuda().then_some(device),
        })
    }

    /// Converts a whole record batch (same schema as the loader's).
    pub fn convert(&self, batch: &RecordBatch) -> Result<TensorBatch> {
        self.assemble(&Gathered::from_record_batch(batch))
    }

    /// Converts gathered samples, copying each value once into the tensors.
    pub fn assemble(&self, g: &Gathered) -> Result<TensorBatch> {
        let features = match self.plan.has_features() {
            true => Some(self.features(g)?),
            false => None,
        };
        let mut columns = BTreeMap::new();
        for column in self.plan.columns() {
            let data = match column.conversion {
                Conversion::Scalar(_)
                | Conversion::Fixed { .. }
                | Conversion::StackedList { .. } => self.dense(column, g)?,
                Conversion::List { kind, .. } | Conversion::NestedList { kind, .. } => {
                    self.ragged(column, kind, g)?
                }
                Conversion::Bytes => match self.ragged(column, ElementKind::U8, g)? {
                    ColumnData::Ragged { values, offsets } => ColumnData::Bytes { values, offsets },
                    other => other,
                },
            };
            columns.insert(column.name.clone(), data);
        }
        Ok(TensorBatch {
            features,
            columns,
            len: g.len(),
        })
    }

    /// The `[B, F]` feature tensor.
    fn features(&self, g: &Gathered) -> Result<Tensor> {
        let size = [g.len() as i64, self.plan.feature_width() as i64];
        let mut t = self.alloc(&size, self.plan.feature_kind())?;
        self.plan.fill_features(g, elements_mut(&mut t)?)?;
        Ok(t)
    }

    /// A `[B]` or `[B, D]` column.
    fn dense(&self, column: &ColumnPlan, g: &Gathered) -> Result<ColumnData> {
        let (kind, width) = column
            .conversion
            .dense_shape()
            .ok_or_else(|| Error::Internal(format!("column {:?} is not dense", column.name)))?;
        let mut t = match column.conversion {
            Conversion::Scalar(_) => self.alloc(&[g.len() as i64], kind)?,
            _ => self.alloc(&[g.len() as i64, width as i64], kind)?,
        };
        self.plan.fill_dense(column, g, elements_mut(&mut t)?)?;
        Ok(ColumnData::Dense(t))
    }

    /// Values `[N]` (`[N, D]` for a list of `D`-value lists; uint8 bytes for
    /// strings and binary) and offsets `[B + 1]` of a variable-length
    /// column (plus the inner offsets of nested lists), the values written
    /// straight from the mapped sources into the tensor by the core's
    /// [`RaggedColumn`](mosaicrs::assemble::RaggedColumn), as in the
    /// Python loader.
    fn ragged(&self, column: &ColumnPlan, kind: ElementKind, g: &Gathered) -> Result<ColumnData> {
        let ragged = self.plan.ragged(column, g)?;
        let mut values = match ragged.inner_width() {
            1 => self.alloc(&[ragged.value_count() as i64], kind)?,
            d => self.alloc(&[ragged.item_count() as i64, d as i64], kind)?,
        };
        ragged.fill_values(elements_mut(&mut values)?)?;
        let offsets = self.offsets(ragged.offsets())?;
        Ok(match ragged.inner_offsets() {
            Some(inner) => ColumnData::Nested {
                values,
                offsets,
                inner_offsets: self.offsets(inner)?,
            },
            None => ColumnData::Ragged { values, offsets },
        })
    }

    /// An int64 offsets tensor, pinned when the target is a CUDA device.
    fn offsets(&self, offsets: &[i64]) -> Result<Tensor> {
        let mut t = self.alloc(&[offsets.len() as i64], ElementKind::I64)?;
        match elements_mut(&mut t)? {
            ElementsMut::I64(dst) => dst.copy_from_slice(offsets),
            _ => return Err(Error::Internal("offsets tensor is not int64".into())),
        }
        Ok(t)
    }

    /// A host tensor, pinned when the target is a CUDA device.
    fn alloc(&self, size: &[i64], kind: ElementKind) -> Result<Tensor> {
        alloc(size, kind, self.pin_for)
    }
}

/// A host tensor, pinned for `pin_for` (a CUDA device) when given.
pub(crate) fn alloc(size: &[i64], kind: ElementKind, pin_for: Option<Device>) -> Result<Tensor> {
    let t = Tensor::f_empty(size, (to_kind(kind), Device::Cpu)).map_err(torch_error)?;
    match pin_for {
        // libtorch has no pinned `empty` in tch's API: pinning a fresh
        // tensor allocates from the caching host allocator (which keeps
        // blocks alive until pending non-blocking copies finish).
        Some(device) => t.f_pin_memory(device).map_err(torch_error),
        None => Ok(t),
    }
}

/// The memory of a freshly allocated CPU tensor, typed by its kind.
pub(crate) fn elements_mut(t: &mut Tensor) -> Result<ElementsMut<'_>> {
    Ok(match element_kind(t.kind())? {
        ElementKind::F32 => ElementsMut::F32(slice_mut(t)?),
        ElementKind::F64 => ElementsMut::F64(slice_mut(t)?),
        ElementKind::I64 => ElementsMut::I64(slice_mut(t)?),
        ElementKind::I32 => ElementsMut::I32(slice_mut(t)?),
        ElementKind::I16 => ElementsMut::I16(slice_mut(t)?),
        ElementKind::I8 => ElementsMut::I8(slice_mut(t)?),
        ElementKind::U8 => ElementsMut::U8(slice_mut(t)?),
        ElementKind::Bool => ElementsMut::Bool(slice_mut(t)?),
    })
}

/// The memory of a freshly allocated CPU tensor as a mutable slice.
fn slice_mut<T: Element>(t: &mut Tensor) -> Result<&mut [T]> {
    let kind = to_kind(T::KIND);
    if t.kind() != kind || t.device() != Device::Cpu || !t.is_contiguous() {
        return Err(Error::Internal(format!(
            "cannot fill a {:?} tensor on {:?} as {kind:?}",
            t.kind(),
            t.device(),
        )));
    }
    let len = t.numel();
    if len == 0 {
        return Ok(&mut []);
    }
    let ptr = t.data_ptr().cast::<T>();
    // SAFETY: `t` is a contiguous CPU tensor whose kind is `T`'s (checked
    // above), so its data is `len` plain-old-data elements of `T` at `ptr`
    // (non-null since `len > 0`, aligned by libtorch's allocator; a Bool
    // tensor holds bytes 0 or 1, valid `bool`s). The `&mut Tensor` borrow
    // keeps the tensor (and its storage) alive and unshared by us for the
    // slice's lifetime; the tensor was allocated by this module and not yet
    // handed to anyone, so no other view reads it.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}
