//! Gathered samples into plain typed buffers: the part of batch assembly
//! that needs no tensor library.
//!
//! A [`TensorSpec`] names which columns become which arrays; a [`BatchPlan`]
//! checks it against the loader's schema once, up front, and then writes the
//! values of each gathered batch straight into buffers the caller owns (a
//! libtorch tensor's memory in `mosaicrs-tch`, a torch or numpy array's in
//! the Python package), cast to the buffer's element type:
//!
//! | Arrow column | becomes |
//! |---|---|
//! | the chosen feature columns ([`is_numeric`]) | one `[B, F]` array of the spec's kind |
//! | int8/16/32/64, uint8/16/32/64, float32/64, bool, date32/64, timestamp | `[B]` ([`natural_kind`]) |
//! | fixed-size list of numbers | `[B, D]` |
//! | list / large list of numbers, named by [`TensorSpec::with_fixed_list`] | `[B, D]`; a row of another length is [`Error::ListLength`] |
//! | list / large list of numbers | values `[N]` + offsets `[B + 1]` (int64) ([`RaggedColumn`]) |
//! | list of lists (fixed-size, or named by [`TensorSpec::with_inner_width`]) of `D` numbers | values `[N, D]` + offsets `[B + 1]` |
//! | list of lists of any lengths, named by [`TensorSpec::with_nested_list`] | values `[V]` + offsets `[B + 1]` (into the inner lists) + inner offsets `[n_lists + 1]` (into the values) |
//! | utf8, large utf8, binary, large binary | bytes + offsets ([`RaggedColumn`]) |
//!
//! Nulls are an error naming the column and dataset row ([`NullPolicy::Error`],
//! the default) or replaced by a fill value; null lists and strings become
//! empty under a fill policy.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Float32Array, Int64Array, RecordBatch};
//! use mosaicrs::assemble::{BatchPlan, ElementKind, ElementsMut, TensorSpec};
//! use mosaicrs::loader::Gathered;
//!
//! let batch = RecordBatch::try_from_iter([
//!     ("x", Arc::new(Float32Array::from(vec![0.5, 1.5])) as _),
//!     ("label", Arc::new(Int64Array::from(vec![3, 4])) as _),
//! ])?;
//! let spec = TensorSpec::features(["x", "label"], ElementKind::F64).with_column("label");
//! let plan = BatchPlan::new(&batch.schema(), &spec)?;
//! let g = Gathered::from_record_batch(&batch);
//! let mut x = vec![0f64; g.len() * plan.feature_width()];
//! plan.fill_features(&g, ElementsMut::F64(&mut x))?;
//! assert_eq!(x, [0.5, 3.0, 1.5, 4.0]);
//! let mut y = vec![0i64; g.len()];
//! plan.fill_dense(&plan.columns()[0], &g, ElementsMut::I64(&mut y))?;
//! assert_eq!(y, [3, 4]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod features;
mod fill;
mod plan;
mod ragged;
mod row_blocks;

pub use features::{inner_width, is_numeric_list, list_width, FeatureLayout, RowSource};
pub use fill::is_numeric;
pub use plan::{BatchPlan, ColumnPlan, Conversion};
pub use ragged::RaggedColumn;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use arrow::datatypes::DataType;

use crate::{Error, Result};

/// What to do with nulls when converting.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum NullPolicy {
    /// Fail with [`Error::NullValue`] naming the column and row.
    #[default]
    Error,
    /// Use this value for null numbers; null lists and strings become empty.
    Fill(f64),
}

/// The element types a batch is written as (libtorch's Float, Double, Int64,
/// Int, Int16, Int8, Uint8 and Bool).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementKind {
    F32,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

impl ElementKind {
    /// Every kind, in declaration order.
    pub const ALL: [ElementKind; 8] = [
        ElementKind::F32,
        ElementKind::F64,
        ElementKind::I64,
        ElementKind::I32,
        ElementKind::I16,
        ElementKind::I8,
        ElementKind::U8,
        ElementKind::Bool,
    ];

    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            ElementKind::F64 | ElementKind::I64 => 8,
            ElementKind::F32 | ElementKind::I32 => 4,
            ElementKind::I16 => 2,
            ElementKind::I8 | ElementKind::U8 | ElementKind::Bool => 1,
        }
    }

    /// The numpy / torch name: `float32`, `float64`, `int64`, `int32`,
    /// `int16`, `int8`, `uint8`, `bool`.
    pub fn name(self) -> &'static str {
        match self {
            ElementKind::F32 => "float32",
            ElementKind::F64 => "float64",
            ElementKind::I64 => "int64",
            ElementKind::I32 => "int32",
            ElementKind::I16 => "int16",
            ElementKind::I8 => "int8",
            ElementKind::U8 => "uint8",
            ElementKind::Bool => "bool",
        }
    }
}

impl fmt::Display for ElementKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ElementKind {
    type Err = Error;

    /// Parses the names of [`ElementKind::name`] (and `float`, `double`,
    /// `long`, `int`).
    ///
    /// ```
    /// use mosaicrs::assemble::ElementKind;
    /// assert_eq!("float32".parse::<ElementKind>().unwrap(), ElementKind::F32);
    /// assert!("complex64".parse::<ElementKind>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "float32" | "float" | "f32" => ElementKind::F32,
            "float64" | "double" | "f64" => ElementKind::F64,
            "int64" | "long" | "i64" => ElementKind::I64,
            "int32" | "int" | "i32" => ElementKind::I32,
            "int16" | "short" | "i16" => ElementKind::I16,
            "int8" | "i8" => ElementKind::I8,
            "uint8" | "u8" => ElementKind::U8,
            "bool" | "boolean" => ElementKind::Bool,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "element type {s:?} is not supported; use float32, float64, int64, int32, \
                     int16, int8, uint8 or bool"
                )))
            }
        })
    }
}

/// A Rust type a batch can be written as; numbers convert into it like
/// Rust's `as` (booleans: non-zero is true).
pub trait Element: Copy + Send + Sync + 'static {
    /// The kind this type is.
    const KIND: ElementKind;
    fn from_i64(v: i64) -> Self;
    fn from_f64(v: f64) -> Self;
}

macro_rules! element_number {
    ($($t:ty => $kind:ident),*) => {$(
        impl Element for $t {
            const KIND: ElementKind = ElementKind::$kind;
            #[inline]
            fn from_i64(v: i64) -> Self { v as $t }
            #[inline]
            fn from_f64(v: f64) -> Self { v as $t }
        }
    )*};
}
element_number!(u8 => U8, i8 => I8, i16 => I16, i32 => I32, i64 => I64, f32 => F32, f64 => F64);

impl Element for bool {
    const KIND: ElementKind = ElementKind::Bool;
    #[inline]
    fn from_i64(v: i64) -> Self {
        v != 0
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
}

/// A caller's buffer of one of the [`ElementKind`]s, to be filled.
#[derive(Debug)]
pub enum ElementsMut<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
    I64(&'a mut [i64]),
    I32(&'a mut [i32]),
    I16(&'a mut [i16]),
    I8(&'a mut [i8]),
    U8(&'a mut [u8]),
    Bool(&'a mut [bool]),
}

/// Evaluates `$body` with `$out` bound to the typed slice of `$buffer`.
macro_rules! with_elements {
    ($buffer:expr, $out:ident => $body:expr) => {
        match $buffer {
            ElementsMut::F32($out) => $body,
            ElementsMut::F64($out) => $body,
            ElementsMut::I64($out) => $body,
            ElementsMut::I32($out) => $body,
            ElementsMut::I16($out) => $body,
            ElementsMut::I8($out) => $body,
            ElementsMut::U8($out) => $body,
            ElementsMut::Bool($out) => $body,
        }
    };
}
pub(crate) use with_elements;

impl ElementsMut<'_> {
    /// The element kind of the buffer.
    pub fn kind(&self) -> ElementKind {
        fn kind_of<T: Element>(_: &[T]) -> ElementKind {
            T::KIND
        }
        with_elements!(self, out => kind_of(out))
    }

    /// Elements in the buffer.
    pub fn len(&self) -> usize {
        with_elements!(self, out => out.len())
    }

    /// True for an empty buffer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The element kind a numeric Arrow type converts to without loss (unsigned
/// types widen to the next signed kind; dates and timestamps are their
/// integer counts).
///
/// ```
/// use arrow::datatypes::DataType;
/// use mosaicrs::assemble::{natural_kind, ElementKind};
/// assert_eq!(natural_kind(&DataType::UInt16), Some(ElementKind::I32));
/// ```
pub fn natural_kind(data_type: &DataType) -> Option<ElementKind> {
    use DataType::*;
    Some(match data_type {
        Boolean => ElementKind::Bool,
        Int8 => ElementKind::I8,
        Int16 => ElementKind::I16,
        Int32 | UInt16 | Date32 => ElementKind::I32,
        Int64 | UInt32 | UInt64 | Date64 | Timestamp(_, _) => ElementKind::I64,
        UInt8 => ElementKind::U8,
        Float32 => ElementKind::F32,
        Float64 => ElementKind::F64,
        _ => return None,
    })
}

/// Which columns become which arrays.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Numeric columns stacked, in this order, into one `[B, F]` array.
    pub features: Vec<String>,
    /// Element kind of the feature array.
    pub feature_kind: ElementKind,
    /// Further columns, each converted by its type (see the module docs).
    pub columns: Vec<String>,
    /// List columns among `columns` to stack as `[B, width]` rather than
    /// ragged (Spark writes every `array<...>` as a variable-length list).
    pub list_widths: BTreeMap<String, usize>,
    /// Columns of lists of lists among `columns`, with the width `D` that
    /// every inner list holds: their values become `[N, D]`.
    pub inner_widths: BTreeMap<String, usize>,
    /// Columns of lists of lists among `columns` whose inner lists may
    /// hold any number of values: two levels of offsets.
    pub nested: BTreeSet<String>,
    pub nulls: NullPolicy,
}

impl TensorSpec {
    /// A spec with these feature columns stacked as `kind` and nothing else.
    pub fn features<S: Into<String>>(
        names: impl IntoIterator<Item = S>,
        kind: ElementKind,
    ) -> Self {
        TensorSpec {
            features: names.into_iter().map(Into::into).collect(),
            feature_kind: kind,
            columns: Vec::new(),
            list_widths: BTreeMap::new(),
            inner_widths: BTreeMap::new(),
            nested: BTreeSet::new(),
            nulls: NullPolicy::Error,
        }
    }

    /// Adds a column converted by its own type.
    pub fn with_column(mut self, name: impl Into<String>) -> Self {
        self.columns.push(name.into());
        self
    }

    /// Adds a list column whose every row holds `width` numbers (an embedding
    /// written by Spark as `array<float>`), stacked as a `[B, width]` array.
    /// A row of another length fails the batch with [`Error::ListLength`]
    /// naming the column and row; a null row follows the null policy. A
    /// fixed-size list column of the same width is accepted too.
    ///
    /// ```
    /// use mosaicrs::assemble::{ElementKind, TensorSpec};
    /// let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32)
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

    /// Adds a column of lists of lists (Spark `array<array<float>>`) whose
    /// inner lists all hold `width` numbers: values `[N, width]` plus
    /// offsets `[B + 1]`. An inner list of another length fails the batch
    /// with an error naming the column and row.
    ///
    /// ```
    /// use mosaicrs::assemble::{ElementKind, TensorSpec};
    /// let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32)
    ///     .with_inner_width("boxes", 4);
    /// assert_eq!(spec.columns, ["boxes"]);
    /// assert_eq!(spec.inner_widths["boxes"], 4);
    /// ```
    pub fn with_inner_width(mut self, name: impl Into<String>, width: usize) -> Self {
        let name = name.into();
        self.inner_widths.insert(name.clone(), width);
        self.columns.push(name);
        self
    }

    /// Adds a column of lists of lists (Spark `array<array<int>>`) whose
    /// inner lists hold any number of values: values `[V]`, offsets
    /// `[B + 1]` into the inner lists and inner offsets `[n_lists + 1]` into
    /// the values ([`RaggedColumn::inner_offsets`]). A null inner list
    /// follows the null policy like a null sample (empty under a fill).
    ///
    /// ```
    /// use mosaicrs::assemble::{ElementKind, TensorSpec};
    /// let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32)
    ///     .with_nested_list("tokens_per_turn");
    /// assert_eq!(spec.columns, ["tokens_per_turn"]);
    /// assert!(spec.nested.contains("tokens_per_turn"));
    /// ```
    pub fn with_nested_list(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.nested.insert(name.clone());
        self.columns.push(name);
        self
    }

    /// Sets the null policy.
    pub fn with_nulls(mut self, nulls: NullPolicy) -> Self {
        self.nulls = nulls;
        self
    }
}
