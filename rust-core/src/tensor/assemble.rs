//! Turning gathered samples into tensors (runs on the loader's workers).

use arrow::array::{Array, AsArray, OffsetSizeTrait};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    BinaryType, ByteArrayType, DataType, LargeBinaryType, LargeUtf8Type, SchemaRef, Utf8Type,
};
use arrow::record_batch::RecordBatch;
use tch::{Device, Kind, Tensor};

use super::fill::{fill, fill_rows, is_numeric, Column, Dest, Elem, Input};
use super::{torch_error, ColumnData, NullPolicy, TensorBatch, TensorSpec};
use crate::loader::Gathered;
use crate::{Error, Result};

/// The tensor kind a numeric Arrow type converts to without loss (unsigned
/// types widen to the next signed kind; dates and timestamps are their
/// integer counts).
///
/// ```no_run
/// use arrow::datatypes::DataType;
/// assert_eq!(mosaicrs::tensor::natural_kind(&DataType::UInt16), Some(tch::Kind::Int));
/// ```
pub fn natural_kind(data_type: &DataType) -> Option<Kind> {
    use DataType::*;
    Some(match data_type {
        Boolean => Kind::Bool,
        Int8 => Kind::Int8,
        Int16 => Kind::Int16,
        Int32 | UInt16 | Date32 => Kind::Int,
        Int64 | UInt32 | UInt64 | Date64 | Timestamp(_, _) => Kind::Int64,
        UInt8 => Kind::Uint8,
        Float32 => Kind::Float,
        Float64 => Kind::Double,
        _ => return None,
    })
}

/// Output bytes per block of samples when stacking features (a share of L1).
const FEATURE_BLOCK_BYTES: usize = 16 * 1024;

/// How one extra column converts.
#[derive(Debug, Clone)]
enum Conversion {
    /// `[B]` of the kind.
    Scalar(Kind),
    /// `[B, width]`.
    Fixed { width: usize, kind: Kind },
    /// values + offsets; `large` for 64-bit Arrow offsets.
    List { large: bool, kind: Kind },
    /// `[B, width]` from a variable-length list whose rows all hold `width`.
    StackedList {
        large: bool,
        width: usize,
        kind: Kind,
    },
    /// bytes + offsets.
    Bytes,
}

/// Converts gathered samples (or record batches) into a [`TensorBatch`],
/// checked against the schema up front so bad columns fail before any batch.
#[derive(Debug, Clone)]
pub struct TensorAssembler {
    features: Vec<(usize, String)>,
    feature_kind: Kind,
    columns: Vec<(usize, String, Conversion)>,
    nulls: NullPolicy,
    /// Allocate host tensors pinned for this CUDA device.
    pin_for: Option<Device>,
}

impl TensorAssembler {
    /// Checks `spec` against `schema` (the loader's projected schema). A
    /// missing column is [`Error::ColumnNotFound`]; a feature column that is
    /// not numeric, or a column of a type with no tensor form, is
    /// [`Error::UnsupportedColumn`]. Host tensors are pinned when `device` is CUDA.
    pub fn new(schema: &SchemaRef, spec: &TensorSpec, device: Device) -> Result<Self> {
        if !matches!(
            spec.feature_kind,
            Kind::Float
                | Kind::Double
                | Kind::Int64
                | Kind::Int
                | Kind::Int16
                | Kind::Int8
                | Kind::Uint8
                | Kind::Bool
        ) {
            return Err(Error::InvalidArgument(format!(
                "feature kind {:?} is not supported; use Float, Double, Int64, Int, Int16, Int8, \
                 Uint8 or Bool",
                spec.feature_kind
            )));
        }
        let find = |name: &str| {
            schema.index_of(name).map_err(|_| Error::ColumnNotFound {
                name: name.to_string(),
                available: schema
                    .fields()
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        };
        let mut features = Vec::with_capacity(spec.features.len());
        for name in &spec.features {
            let index = find(name)?;
            let data_type = schema.field(index).data_type();
            if !is_numeric(data_type) {
                return Err(Error::UnsupportedColumn {
                    name: name.clone(),
                    data_type: data_type.to_string(),
                    reason: "feature columns must be numeric (integers, floats, booleans, \
                             dates or timestamps)"
                        .into(),
                });
            }
            features.push((index, name.clone()));
        }
        let mut columns = Vec::with_capacity(spec.columns.len());
        for name in &spec.columns {
            let index = find(name)?;
            let data_type = schema.field(index).data_type();
            let width = spec.list_widths.get(name).copied();
            columns.push((index, name.clone(), conversion(name, data_type, width)?));
        }
        Ok(TensorAssembler {
            features,
            feature_kind: spec.feature_kind,
            columns,
            nulls: spec.nulls,
            pin_for: device.is_cuda().then_some(device),
        })
    }

    /// Converts a whole record batch (same schema as the loader's).
    pub fn convert(&self, batch: &RecordBatch) -> Result<TensorBatch> {
        self.assemble(&Gathered::from_record_batch(batch))
    }

    /// Converts gathered samples, copying each value once into the tensors.
    pub fn assemble(&self, g: &Gathered) -> Result<TensorBatch> {
        let n = g.len();
        let features = if self.features.is_empty() {
            None
        } else {
            let f = self.features.len();
            let mut t = self.alloc(&[n as i64, f as i64], self.feature_kind)?;
            let sources: Vec<Vec<&dyn Array>> = self
                .features
                .iter()
                .map(|(index, _)| {
                    g.column_sources(*index)
                        .into_iter()
                        .map(|a| a.as_ref())
                        .collect()
                })
                .collect();
            let fast = fill_rows_tensor(&mut t, &sources, g.picks())?;
            if !fast {
                // Column by column within blocks of samples whose output rows
                // stay in L1: the strided stores then hit the cache, and only
                // the gathers' loads go to memory.
                let row_bytes = f * self.feature_kind.elt_size_in_bytes();
                let block = (FEATURE_BLOCK_BYTES / row_bytes.max(1)).clamp(8, 4096);
                for start in (0..n).step_by(block) {
                    let end = (start + block).min(n);
                    for (j, (_, name)) in self.features.iter().enumerate() {
                        let column = Column {
                            name,
                            rows: &g.rows()[start..end],
                            nulls: self.nulls,
                        };
                        let layout = Layout {
                            stride: f,
                            offset: start * f + j,
                        };
                        let input = Input {
                            values: &sources[j],
                            row_nulls: &[],
                            picks: &g.picks()[start..end],
                            width: 1,
                            starts: None,
                        };
                        fill_tensor(&mut t, layout, &input, &column)?;
                    }
                }
            }
            Some(t)
        };
        let mut columns = std::collections::BTreeMap::new();
        for (index, name, conversion) in &self.columns {
            let column = Column {
                name,
                rows: g.rows(),
                nulls: self.nulls,
            };
            let data = match conversion {
                Conversion::Scalar(kind) => {
                    let mut t = self.alloc(&[n as i64], *kind)?;
                    let sources = g.column_sources(*index);
                    let values: Vec<&dyn Array> = sources.iter().map(|a| a.as_ref()).collect();
                    let input = Input {
                        values: &values,
                        row_nulls: &[],
                        picks: g.picks(),
                        width: 1,
                        starts: None,
                    };
                    fill_tensor(&mut t, Layout::SCALAR, &input, &column)?;
                    ColumnData::Dense(t)
                }
                Conversion::Fixed { width, kind } => {
                    let mut t = self.alloc(&[n as i64, *width as i64], *kind)?;
                    let sources = g.column_sources(*index);
                    let lists = sources
                        .iter()
                        .map(|a| a.as_fixed_size_list_opt().ok_or_else(|| mixed(name)))
                        .collect::<Result<Vec<_>>>()?;
                    let values: Vec<&dyn Array> =
                        lists.iter().map(|l| l.values().as_ref()).collect();
                    let nulls: Vec<Option<&NullBuffer>> = lists.iter().map(|l| l.nulls()).collect();
                    let input = Input {
                        values: &values,
                        row_nulls: &nulls,
                        picks: g.picks(),
                        width: *width,
                        starts: None,
                    };
                    fill_tensor(&mut t, Layout::rows(*width), &input, &column)?;
                    ColumnData::Dense(t)
                }
                Conversion::StackedList { large, width, kind } => {
                    let mut t = self.alloc(&[n as i64, *width as i64], *kind)?;
                    let sources = g.column_sources(*index);
                    let sources: Vec<&dyn Array> = sources.iter().map(|a| a.as_ref()).collect();
                    let rows = if *large {
                        ListRows::gather::<i64>(&sources, g.picks(), *width, &column)?
                    } else {
                        ListRows::gather::<i32>(&sources, g.picks(), *width, &column)?
                    };
                    let input = Input {
                        values: &rows.values,
                        row_nulls: &rows.nulls,
                        picks: g.picks(),
                        width: *width,
                        starts: Some(&rows.starts),
                    };
                    fill_tensor(&mut t, Layout::rows(*width), &input, &column)?;
                    ColumnData::Dense(t)
                }
                Conversion::List { large, kind } => {
                    let array = g.take_column(*index)?;
                    if *large {
                        self.ragged::<i64>(&array, *kind, &column)?
                    } else {
                        self.ragged::<i32>(&array, *kind, &column)?
                    }
                }
                Conversion::Bytes => bytes_column(&g.take_column(*index)?, &column)?,
            };
            columns.insert(name.clone(), data);
        }
        Ok(TensorBatch {
            features,
            columns,
            len: n,
        })
    }

    /// A host tensor, pinned when the target is a CUDA device.
    fn alloc(&self, size: &[i64], kind: Kind) -> Result<Tensor> {
        let t = Tensor::f_empty(size, (kind, Device::Cpu)).map_err(torch_error)?;
        match self.pin_for {
            // libtorch has no pinned `empty` in tch's API: pinning a fresh
            // tensor allocates from the caching host allocator (which keeps
            // blocks alive until pending non-blocking copies finish).
            Some(device) => t.f_pin_memory(device).map_err(torch_error),
            None => Ok(t),
        }
    }

    fn ragged<O: OffsetSizeTrait>(
        &self,
        array: &dyn Array,
        kind: Kind,
        column: &Column<'_>,
    ) -> Result<ColumnData> {
        let list = array.as_list_opt::<O>().ok_or_else(|| mixed(column.name))?;
        let child = list.values();
        let mut picks = Vec::new();
        let mut child_rows = Vec::new();
        let mut offsets = Vec::with_capacity(list.len() + 1);
        offsets.push(0i64);
        for i in 0..list.len() {
            if list.is_null(i) && column.nulls == NullPolicy::Error {
                return Err(Error::NullValue {
                    column: column.name.to_string(),
                    row: column.rows.get(i).copied().unwrap_or(i as u64),
                });
            }
            if list.is_valid(i) {
                let range =
                    list.value_offsets()[i].as_usize()..list.value_offsets()[i + 1].as_usize();
                for j in range {
                    picks.push((0usize, j));
                    child_rows.push(column.rows.get(i).copied().unwrap_or(i as u64));
                }
            }
            offsets.push(picks.len() as i64);
        }
        let mut values = self.alloc(&[picks.len() as i64], kind)?;
        let child_column = Column {
            name: column.name,
            rows: &child_rows,
            nulls: column.nulls,
        };
        let input = Input {
            values: &[child.as_ref()],
            row_nulls: &[],
            picks: &picks,
            width: 1,
            starts: None,
        };
        fill_tensor(&mut values, Layout::SCALAR, &input, &child_column)?;
        let offsets = Tensor::f_from_slice(&offsets).map_err(torch_error)?;
        let offsets = match self.pin_for {
            Some(device) => offsets.f_pin_memory(device).map_err(torch_error)?,
            None => offsets,
        };
        Ok(ColumnData::Ragged { values, offsets })
    }
}

/// Decides how a non-feature column converts (stacked as `[B, width]` when
/// the spec gives a width), or says why it cannot.
fn conversion(name: &str, data_type: &DataType, width: Option<usize>) -> Result<Conversion> {
    let unsupported = |reason: &str| Error::UnsupportedColumn {
        name: name.to_string(),
        data_type: data_type.to_string(),
        reason: reason.to_string(),
    };
    let child_kind = |child: &DataType| {
        natural_kind(child)
            .ok_or_else(|| unsupported("list elements must be numeric to become a tensor"))
    };
    if let Some(width) = width {
        if width == 0 {
            return Err(Error::InvalidArgument(format!(
                "column {name:?}: a stacked list needs a width of at least 1"
            )));
        }
        return Ok(match data_type {
            DataType::FixedSizeList(field, size) if usize::try_from(*size) == Ok(width) => {
                Conversion::Fixed {
                    width,
                    kind: child_kind(field.data_type())?,
                }
            }
            DataType::FixedSizeList(_, size) => {
                return Err(unsupported(&format!(
                    "its lists hold {size} values, not the {width} it is to be stacked to"
                )))
            }
            DataType::List(field) | DataType::LargeList(field) => Conversion::StackedList {
                large: matches!(data_type, DataType::LargeList(_)),
                width,
                kind: child_kind(field.data_type())?,
            },
            _ => {
                return Err(unsupported(&format!(
                    "only a list column can be stacked as [B, {width}]"
                )))
            }
        });
    }
    Ok(match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Binary | DataType::LargeBinary => {
            Conversion::Bytes
        }
        DataType::FixedSizeList(field, width) => Conversion::Fixed {
            width: usize::try_from(*width).map_err(|_| unsupported("negative list size"))?,
            kind: child_kind(field.data_type())?,
        },
        DataType::List(field) => Conversion::List {
            large: false,
            kind: child_kind(field.data_type())?,
        },
        DataType::LargeList(field) => Conversion::List {
            large: true,
            kind: child_kind(field.data_type())?,
        },
        other => Conversion::Scalar(natural_kind(other).ok_or_else(|| {
            unsupported(
                "it has no tensor form; supported: integers, floats, booleans, dates, \
                 timestamps, lists of numbers, strings and binary (cast decimals to double)",
            )
        })?),
    })
}

/// Strings or binary as one byte buffer plus offsets.
fn bytes_column(array: &dyn Array, column: &Column<'_>) -> Result<ColumnData> {
    match array.data_type() {
        DataType::Utf8 => collect_bytes::<Utf8Type>(array, column),
        DataType::LargeUtf8 => collect_bytes::<LargeUtf8Type>(array, column),
        DataType::Binary => collect_bytes::<BinaryType>(array, column),
        DataType::LargeBinary => collect_bytes::<LargeBinaryType>(array, column),
        _ => Err(mixed(column.name)),
    }
}

fn collect_bytes<T: ByteArrayType>(array: &dyn Array, column: &Column<'_>) -> Result<ColumnData>
where
    T::Native: AsRef<[u8]>,
{
    let array = array
        .as_bytes_opt::<T>()
        .ok_or_else(|| mixed(column.name))?;
    let mut values = Vec::new();
    let mut offsets = Vec::with_capacity(array.len() + 1);
    offsets.push(0u64);
    for i in 0..array.len() {
        if array.is_valid(i) {
            values.extend_from_slice(array.value(i).as_ref());
        } else if column.nulls == NullPolicy::Error {
            return Err(Error::NullValue {
                column: column.name.to_string(),
                row: column.rows.get(i).copied().unwrap_or(i as u64),
            });
        }
        offsets.push(values.len() as u64);
    }
    Ok(ColumnData::Bytes { values, offsets })
}

fn mixed(name: &str) -> Error {
    Error::Internal(format!(
        "column {name:?} has different types in different record batches"
    ))
}

/// The child values, row nulls and each sample's first element of a list
/// column whose picked rows were checked to hold `width` values.
struct ListRows<'a> {
    values: Vec<&'a dyn Array>,
    nulls: Vec<Option<&'a NullBuffer>>,
    starts: Vec<usize>,
}

impl<'a> ListRows<'a> {
    fn gather<O: OffsetSizeTrait>(
        sources: &[&'a dyn Array],
        picks: &[(usize, usize)],
        width: usize,
        column: &Column<'_>,
    ) -> Result<Self> {
        let lists = sources
            .iter()
            .map(|a| a.as_list_opt::<O>().ok_or_else(|| mixed(column.name)))
            .collect::<Result<Vec<_>>>()?;
        let mut starts = Vec::with_capacity(picks.len());
        for (i, &(s, r)) in picks.iter().enumerate() {
            let list = lists[s];
            if list.is_null(r) {
                // Never read: the null policy decides the row's values.
                starts.push(0);
                continue;
            }
            let offsets = list.value_offsets();
            let (start, end) = (offsets[r].as_usize(), offsets[r + 1].as_usize());
            if end - start != width {
                return Err(Error::ListLength {
                    column: column.name.to_string(),
                    row: column.rows.get(i).copied().unwrap_or(i as u64),
                    expected: width,
                    found: end - start,
                });
            }
            starts.push(start);
        }
        Ok(ListRows {
            values: lists.iter().map(|&l| l.values().as_ref()).collect(),
            nulls: lists.iter().map(|&l| l.nulls()).collect(),
            starts,
        })
    }
}

/// Copies `input` into `t` with `layout`, dispatching on the tensor's kind.
fn fill_tensor(
    t: &mut Tensor,
    layout: Layout,
    input: &Input<'_>,
    column: &Column<'_>,
) -> Result<()> {
    macro_rules! go {
        ($t:ty) => {{
            let out = slice_mut::<$t>(t)?;
            let mut dest = Dest {
                out,
                stride: layout.stride,
                offset: layout.offset,
            };
            fill::<$t>(input, &mut dest, column)
        }};
    }
    match t.kind() {
        Kind::Float => go!(f32),
        Kind::Double => go!(f64),
        Kind::Int64 => go!(i64),
        Kind::Int => go!(i32),
        Kind::Int16 => go!(i16),
        Kind::Int8 => go!(i8),
        Kind::Uint8 => go!(u8),
        Kind::Bool => go!(bool),
        other => Err(Error::Internal(format!(
            "tensor kind {other:?} reached the copy loop for column {:?}",
            column.name
        ))),
    }
}

/// Stacks same-typed, null-free feature columns sample by sample (see
/// [`fill_rows`]); false when they do not qualify.
fn fill_rows_tensor(
    t: &mut Tensor,
    columns: &[Vec<&dyn Array>],
    picks: &[(usize, usize)],
) -> Result<bool> {
    Ok(match t.kind() {
        Kind::Float => fill_rows::<f32>(columns, picks, slice_mut(t)?),
        Kind::Double => fill_rows::<f64>(columns, picks, slice_mut(t)?),
        Kind::Int64 => fill_rows::<i64>(columns, picks, slice_mut(t)?),
        Kind::Int => fill_rows::<i32>(columns, picks, slice_mut(t)?),
        _ => false,
    })
}

/// Where a column's values go: a sample's values start at
/// `sample * stride + offset`.
#[derive(Debug, Clone, Copy)]
struct Layout {
    stride: usize,
    offset: usize,
}

impl Layout {
    const SCALAR: Layout = Layout::rows(1);

    /// `width` values per sample, sample after sample (a `[B, width]` tensor).
    const fn rows(width: usize) -> Layout {
        Layout {
            stride: width,
            offset: 0,
        }
    }
}

/// The memory of a freshly allocated CPU tensor as a mutable slice.
fn slice_mut<T: Elem>(t: &mut Tensor) -> Result<&mut [T]> {
    if t.kind() != T::KIND || t.device() != Device::Cpu || !t.is_contiguous() {
        return Err(Error::Internal(format!(
            "cannot fill a {:?} tensor on {:?} as {:?}",
            t.kind(),
            t.device(),
            T::KIND
        )));
    }
    let len = t.numel();
    if len == 0 {
        return Ok(&mut []);
    }
    let ptr = t.data_ptr().cast::<T>();
    // SAFETY: `t` is a contiguous CPU tensor of kind `T::KIND`, so its data
    // is `len` initialised-or-plain-old-data elements of `T` at `ptr`
    // (non-null since `len > 0`, aligned by libtorch's allocator). The
    // `&mut Tensor` borrow keeps the tensor (and its storage) alive and
    // unshared by us for the slice's lifetime; the tensor was allocated by
    // this module and not yet handed to anyone, so no other view reads it.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}
