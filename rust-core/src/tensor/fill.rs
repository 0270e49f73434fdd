//! Copying numeric Arrow values, picked by `(source, row)`, straight into a
//! tensor's memory with a cast to the tensor's element type.
//!
//! One `match` on the Arrow type per column and source, then a tight loop per
//! sample: this is the loader's hot path.

use arrow::array::{Array, ArrowPrimitiveType, AsArray, BooleanArray, PrimitiveArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{self as adt, DataType};

use super::NullPolicy;
use crate::{Error, Result};

/// A tensor element type that numbers convert into (like Rust's `as`).
pub(crate) trait Elem: Copy + tch::kind::Element {
    fn from_i64(v: i64) -> Self;
    fn from_f64(v: f64) -> Self;
}

macro_rules! elem_number {
    ($($t:ty),*) => {$(
        impl Elem for $t {
            #[inline]
            fn from_i64(v: i64) -> Self { v as $t }
            #[inline]
            fn from_f64(v: f64) -> Self { v as $t }
        }
    )*};
}
elem_number!(u8, i8, i16, i32, i64, f32, f64);

impl Elem for bool {
    #[inline]
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
}

/// An Arrow primitive type whose values convert into any [`Elem`].
trait Source: ArrowPrimitiveType {
    fn put<T: Elem>(v: Self::Native) -> T;
}

/// Implements [`Source`] by widening to `$wide` and converting with `$via`.
macro_rules! source {
    ($via:ident as $wide:ty: $($a:ty),*) => {$(
        impl Source for $a {
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

impl Source for adt::UInt64Type {
    #[inline]
    fn put<T: Elem>(v: u64) -> T {
        // Values above i64::MAX go through f64 (and saturate in integer tensors).
        i64::try_from(v).map_or_else(|_| T::from_f64(v as f64), T::from_i64)
    }
}

source!(from_f64 as f64: adt::Float32Type, adt::Float64Type);

/// True for Arrow types [`fill`] can read.
pub(crate) fn is_numeric(data_type: &DataType) -> bool {
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

/// What is being filled, for error messages and null handling.
pub(crate) struct Column<'a> {
    pub name: &'a str,
    /// Dataset row of each sample.
    pub rows: &'a [u64],
    pub nulls: NullPolicy,
}

impl Column<'_> {
    fn null_value<T: Elem>(&self, sample: usize) -> Result<T> {
        match self.nulls {
            NullPolicy::Error => Err(Error::NullValue {
                column: self.name.to_string(),
                row: self.rows.get(sample).copied().unwrap_or(sample as u64),
            }),
            NullPolicy::Fill(v) => Ok(T::from_f64(v)),
        }
    }
}

/// The values to copy: sample `i` reads
/// `values[s][r * width .. (r + 1) * width]` for `picks[i] = (s, r)`;
/// `row_nulls[s]` marks whole samples null (the nulls of a list column).
pub(crate) struct Input<'a> {
    pub values: &'a [&'a dyn Array],
    pub row_nulls: &'a [Option<&'a NullBuffer>],
    pub picks: &'a [(usize, usize)],
    pub width: usize,
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
    macro_rules! go {
        ($t:ty) => {
            fill_typed::<$t, T>(input, dest, column)
        };
    }
    use DataType::*;
    match first.data_type() {
        Int8 => go!(adt::Int8Type),
        Int16 => go!(adt::Int16Type),
        Int32 => go!(adt::Int32Type),
        Int64 => go!(adt::Int64Type),
        UInt8 => go!(adt::UInt8Type),
        UInt16 => go!(adt::UInt16Type),
        UInt32 => go!(adt::UInt32Type),
        UInt64 => go!(adt::UInt64Type),
        Float32 => go!(adt::Float32Type),
        Float64 => go!(adt::Float64Type),
        Date32 => go!(adt::Date32Type),
        Date64 => go!(adt::Date64Type),
        Timestamp(unit, _) => match unit {
            adt::TimeUnit::Second => go!(adt::TimestampSecondType),
            adt::TimeUnit::Millisecond => go!(adt::TimestampMillisecondType),
            adt::TimeUnit::Microsecond => go!(adt::TimestampMicrosecondType),
            adt::TimeUnit::Nanosecond => go!(adt::TimestampNanosecondType),
        },
        Boolean => fill_bool(input, dest, column),
        other => Err(Error::UnsupportedColumn {
            name: column.name.to_string(),
            data_type: other.to_string(),
            reason: "it is not numeric, so it cannot become a numeric tensor".into(),
        }),
    }
}

fn fill_typed<S: Source, T: Elem>(
    input: &Input<'_>,
    dest: &mut Dest<'_, T>,
    column: &Column<'_>,
) -> Result<()> {
    let arrays: Vec<&PrimitiveArray<S>> = input
        .values
        .iter()
        .map(|a| a.as_primitive_opt::<S>().ok_or_else(|| mixed_types(column)))
        .collect::<Result<_>>()?;
    let any_nulls =
        arrays.iter().any(|a| a.null_count() > 0) || input.row_nulls.iter().any(|n| n.is_some());
    if !any_nulls && input.width == 1 {
        // The common case: a plain loop the compiler keeps tight.
        let slices: Vec<&[S::Native]> = arrays.iter().map(|a| a.values().as_ref()).collect();
        for (i, &(s, r)) in input.picks.iter().enumerate() {
            dest.out[i * dest.stride + dest.offset] = S::put(slices[s][r]);
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
        for k in 0..width {
            let j = r * width + k;
            dest.out[base + k] = if row_null || array.is_null(j) {
                column.null_value(i)?
            } else {
                read(array, j)
            };
        }
    }
    Ok(())
}

fn mixed_types(column: &Column<'_>) -> Error {
    Error::Internal(format!(
        "column {:?} has different types in different record batches",
        column.name
    ))
}
