//! Copying numeric Arrow values, picked by `(source, row)`, straight into a
//! caller's buffer (a tensor's or an array's memory) with a cast to the
//! buffer's element type.
//!
//! One `match` on the Arrow type per column and source, then a tight loop per
//! sample: this is the loader's hot path.

use arrow::array::{Array, ArrowPrimitiveType, AsArray, BooleanArray, PrimitiveArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{self as adt, DataType};

use super::{Element as Elem, NullPolicy};
use crate::{Error, Result};

/// An Arrow primitive type whose values convert into any [`Elem`].
pub(crate) trait IntoElement: ArrowPrimitiveType {
    fn put<T: Elem>(v: Self::Native) -> T;
}

/// Implements [`IntoElement`] by widening to `$wide` and converting with `$via`.
macro_rules! source {
    ($via:ident as $wide:ty: $($a:ty),*) => {$(
        impl IntoElement for $a {
            #[inline]
            fn put<T: Elem>(v: Self::Native) -> T { T::$via(v as $wide) }
        }
    )*};
}
source!(from_i64 as i64:
    adt::Int8Type,
    adt::Int16Type,
    adt::Int32Type,
    adt::Int64Type,
    adt::UInt8Type,
    adt::UInt16Type,
    adt::UInt32Type,
    adt::Date32Type,
    adt::Date64Type,
    adt::TimestampSecondType,
    adt::TimestampMillisecondType,
    adt::TimestampMicrosecondType,
    adt::TimestampNanosecondType
);

impl IntoElement for adt::UInt64Type {
    #[inline]
    fn put<T: Elem>(v: u64) -> T {
        // Values above i64::MAX go through f64 (and saturate in integer tensors).
        i64::try_from(v).map_or_else(|_| T::from_f64(v as f64), T::from_i64)
    }
}

source!(from_f64 as f64: adt::Float32Type, adt::Float64Type);

/// Calls `$m!(S, args..)` with `S` the Arrow primitive type of `$dt`
/// (integers through arrow's `downcast_integer!`, floats, dates, timestamps),
/// or evaluates `$other` for any other type.
macro_rules! downcast_source {
    ($dt:expr => ($m:ident $(, $args:tt)*), else $other:expr) => {{
        use adt::TimeUnit;
        arrow::array::downcast_integer! {
            $dt => ($m $(, $args)*),
            DataType::Float32 => $m!(adt::Float32Type $(, $args)*),
            DataType::Float64 => $m!(adt::Float64Type $(, $args)*),
            DataType::Date32 => $m!(adt::Date32Type $(, $args)*),
            DataType::Date64 => $m!(adt::Date64Type $(, $args)*),
            DataType::Timestamp(TimeUnit::Second, _) => $m!(adt::TimestampSecondType $(, $args)*),
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                $m!(adt::TimestampMillisecondType $(, $args)*)
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                $m!(adt::TimestampMicrosecondType $(, $args)*)
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                $m!(adt::TimestampNanosecondType $(, $args)*)
            }
            _ => $other,
        }
    }};
}
pub(crate) use downcast_source;

/// True for the Arrow types that convert to numbers: integers, floats,
/// booleans, dates and timestamps (the columns a feature tensor can hold).
///
/// ```
/// use arrow::datatypes::DataType;
/// assert!(mosaicrs::assemble::is_numeric(&DataType::UInt16));
/// assert!(!mosaicrs::assemble::is_numeric(&DataType::Utf8));
/// ```
pub fn is_numeric(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Int8 | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Float32
            | Float64
            | Boolean
            | Date32
            | Date64
            | Timestamp(_, _)
    )
}

/// Where values go: element `k` of sample `i` lands at
/// `out[i * stride + offset + k]`.
pub(crate) struct Dest<'a, T> {
    pub out: &'a mut [T],
    pub stride: usize,
    pub offset: usize,
}

impl<'a, T> Dest<'a, T> {
    /// `width` values per sample, sample after sample (`[B, width]`).
    pub fn rows(out: &'a mut [T], width: usize) -> Self {
        Dest {
            out,
            stride: width,
            offset: 0,
        }
    }
}

/// What is being filled, for error messages and null handling.
pub(crate) struct Column<'a> {
    pub name: &'a str,
    /// Dataset row of each sample.
    pub rows: &'a [u64],
    pub nulls: NullPolicy,
}

impl Column<'_> {
    pub(crate) fn null_value<T: Elem>(&self, sample: usize) -> Result<T> {
        match self.nulls {
            NullPolicy::Error => Err(Error::NullValue {
                column: self.name.to_string(),
                row: self.rows.get(sample).copied().unwrap_or(sample as u64),
            }),
            NullPolicy::Fill(v) => Ok(T::from_f64(v)),
        }
    }
}

/// The values to copy: sample `i` reads `width` values of `values[s]` from
/// element `r * width` (or from `starts[i]` when given, for variable-length
/// lists whose rows were checked to hold `width` values) for
/// `picks[i] = (s, r)`; `row_nulls[s]` marks whole samples null (the nulls of
/// a list column).
pub(crate) struct Input<'a> {
    pub values: &'a [&'a dyn Array],
    pub row_nulls: &'a [Option<&'a NullBuffer>],
    pub picks: &'a [(usize, usize)],
    pub width: usize,
    pub starts: Option<&'a [usize]>,
}

impl Input<'_> {
    /// The first element of sample `i`, which is row `r` of its source.
    #[inline]
    fn start(&self, i: usize, r: usize) -> usize {
        match self.starts {
            Some(starts) => starts[i],
            None => r * self.width,
        }
    }
}

/// Copies the values of `input` into `dest`, cast to `T`.
pub(crate) fn fill<T: Elem>(
    input: &Input<'_>,
    dest: &mut Dest<'_, T>,
    column: &Column<'_>,
) -> Result<()> {
    let Some(first) = input.values.first() else {
        return Ok(());
    };
    macro_rules! fill_as {
        ($s:ty, $input:ident, $dest:ident, $column:ident) => {
            fill_typed::<$s, T>($input, $dest, $column)
        };
    }
    downcast_source!(first.data_type() => (fill_as, input, dest, column), else
        match first.data_type() {
            DataType::Boolean => fill_bool(input, dest, column),
            other => Err(Error::UnsupportedColumn {
                name: column.name.to_string(),
                data_type: other.to_string(),
                reason: "it is not numeric, so it cannot become a numeric tensor".into(),
            }),
        }
    )
}

fn fill_typed<S: IntoElement, T: Elem>(
    input: &Input<'_>,
    dest: &mut Dest<'_, T>,
    column: &Column<'_>,
) -> Result<()> {
    let arrays: Vec<&PrimitiveArray<S>> = input
        .values
        .iter()
        .map(|a| a.as_primitive_opt::<S>().ok_or_else(|| mixed_types(column)))
        .collect::<Result<_>>()?;
    let any_nulls = arrays.iter().any(|a| a.null_count() > 0)
        || input
            .row_nulls
            .iter()
            .any(|n| n.is_some_and(|n| n.null_count() > 0));
    if !any_nulls {
        // The common cases: plain loops the compiler keeps tight.
        let slices: Vec<&[S::Native]> = arrays.iter().map(|a| a.values().as_ref()).collect();
        let (stride, offset, width) = (dest.stride, dest.offset, input.width);
        let out = &mut dest.out[offset..];
        if width == 1 && input.starts.is_none() {
            for (i, &(s, r)) in input.picks.iter().enumerate() {
                out[i * stride] = S::put(slices[s][r]);
            }
        } else {
            // Whole rows of a list: one contiguous run per sample.
            for (i, &(s, r)) in input.picks.iter().enumerate() {
                if let Some(&(s, r)) = input.picks.get(i + PREFETCH_AHEAD) {
                    if let Some(value) = slices[s].get(input.start(i + PREFETCH_AHEAD, r)) {
                        prefetch(value);
                    }
                }
                let start = input.start(i, r);
                let src = slices[s].get(start..start + width).ok_or_else(|| {
                    Error::Internal(format!(
                        "column {:?}: sample {i} reads past its list values",
                        column.name
                    ))
                })?;
                let dst = &mut out[i * stride..i * stride + width];
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = S::put(v);
                }
            }
        }
        return Ok(());
    }
    fill_with(&arrays, input, dest, column, |a, j| S::put(a.value(j)))
}

fn fill_bool<T: Elem>(
    input: &Input<'_>,
    dest: &mut Dest<'_, T>,
    column: &Column<'_>,
) -> Result<()> {
    let arrays: Vec<&BooleanArray> = input
        .values
        .iter()
        .map(|a| a.as_boolean_opt().ok_or_else(|| mixed_types(column)))
        .collect::<Result<_>>()?;
    fill_with(&arrays, input, dest, column, |a, j| {
        T::from_i64(i64::from(a.value(j)))
    })
}

/// The general loop: nulls, list rows (`width > 1`), any array type.
fn fill_with<A: Array, T: Elem>(
    arrays: &[&A],
    input: &Input<'_>,
    dest: &mut Dest<'_, T>,
    column: &Column<'_>,
    read: impl Fn(&A, usize) -> T,
) -> Result<()> {
    let width = input.width;
    for (i, &(s, r)) in input.picks.iter().enumerate() {
        let array = arrays[s];
        let row_null = input
            .row_nulls
            .get(s)
            .copied()
            .flatten()
            .is_some_and(|n| n.is_null(r));
        let base = i * dest.stride + dest.offset;
        let start = input.start(i, r);
        for k in 0..width {
            let j = start + k;
            dest.out[base + k] = if row_null || array.is_null(j) {
                column.null_value(i)?
            } else {
                read(array, j)
            };
        }
    }
    Ok(())
}

/// How many samples ahead the gathers ask for their values (see [`prefetch`]).
pub(crate) const PREFETCH_AHEAD: usize = 4;

/// Asks the CPU to start loading `value`'s cache line; a hint with no effect
/// on results. Random gathers from mapped shards wait on memory: issuing the
/// loads of sample `i + PREFETCH_AHEAD` while copying sample `i` keeps more of
/// them in flight (1.6x for a 16-column gather on a 2-core EPYC, BENCHMARKS.md).
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults or changes memory, and SSE, which
    // provides it, is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

pub(crate) fn mixed_types(column: &Column<'_>) -> Error {
    Error::Internal(format!(
        "column {:?} has different types in different record batches",
        column.name
    ))
}

/// Stacks several columns of one primitive type into rows of `out`
/// (`out[i * columns.len() + j]` = column `j` of sample `i`), sample by
/// sample. `columns[j][s]` is column `j` of source `s`. Returns false (and
/// writes nothing) when the columns are not all of `S`'s type or have nulls.
pub(crate) fn fill_rows<T: Elem>(
    columns: &[Vec<&dyn Array>],
    picks: &[(usize, usize)],
    out: &mut [T],
) -> bool {
    let Some(first) = columns.first().and_then(|c| c.first()) else {
        return false;
    };
    macro_rules! fill_rows_as {
        ($s:ty, $columns:ident, $picks:ident, $out:ident) => {
            fill_rows_typed::<$s, T>($columns, $picks, $out)
        };
    }
    downcast_source!(first.data_type() => (fill_rows_as, columns, picks, out), else false)
}

fn fill_rows_typed<S: IntoElement, T: Elem>(
    columns: &[Vec<&dyn Array>],
    picks: &[(usize, usize)],
    out: &mut [T],
) -> bool {
    let f = columns.len();
    let sources = columns[0].len();
    // by_source[s * f + j]: the values of column j in source s. One
    // allocation: small batches have about one source per sample.
    let mut by_source: Vec<&[S::Native]> = vec![&[]; sources * f];
    for (j, column) in columns.iter().enumerate() {
        for (s, array) in column.iter().enumerate() {
            match array.as_primitive_opt::<S>() {
                Some(a) if a.null_count() == 0 => by_source[s * f + j] = a.values().as_ref(),
                _ => return false,
            }
        }
    }
    for (i, (row, &(s, r))) in out.chunks_exact_mut(f).zip(picks).enumerate() {
        if let Some(&(s, r)) = picks.get(i + PREFETCH_AHEAD) {
            for values in &by_source[s * f..(s + 1) * f] {
                if let Some(value) = values.get(r) {
                    prefetch(value);
                }
            }
        }
        for (slot, values) in row.iter_mut().zip(&by_source[s * f..(s + 1) * f]) {
            *slot = S::put(values[r]);
        }
    }
    true
}
