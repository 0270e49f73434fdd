//! How a writer lays out columns on disk: numeric columns packed row-major
//! into one fixed-size-list column, and list columns of one declared length
//! stored as fixed-size lists.
//!
//! A loader that reads a `[B, F]` batch of `F` scalar columns at random
//! touches `F` separate places per sample; a packed column holds the sample's
//! `F` values side by side, so each sample is one contiguous copy. The price:
//! a reader that wants one of the packed columns alone must copy it out.
//!
//! The writer options are the same everywhere (Spark `.option(...)`, the CLI,
//! Python, Rust): `pack.<name>` names the columns to pack into the column
//! `<name>`, and `fixedLength.<column>` declares the length of every row of
//! a list column.
//!
//! ```
//! use std::sync::Arc;
//! use arrow::array::{Array, AsArray, Float32Array, Int64Array, RecordBatch};
//! use arrow::datatypes::Float32Type;
//! use mosaicrs::writer::ColumnLayout;
//!
//! let batch = RecordBatch::try_from_iter([
//!     ("a", Arc::new(Float32Array::from(vec![1.0, 2.0])) as _),
//!     ("b", Arc::new(Float32Array::from(vec![10.0, 20.0])) as _),
//!     ("label", Arc::new(Int64Array::from(vec![0, 1])) as _),
//! ])?;
//! let mut layout = ColumnLayout::default();
//! layout.set_option("pack.features", "a, b")?;
//! let plan = layout.plan(&batch.schema())?;
//! let packed = plan.apply(&batch, 0)?;
//! assert_eq!(packed.schema().field(0).name(), "features");
//! let values = packed.column(0).as_fixed_size_list().values().as_primitive::<Float32Type>();
//! assert_eq!(values.values().as_ref(), &[1.0, 10.0, 2.0, 20.0]);
//! assert_eq!(mosaicrs::writer::packed_columns(packed.schema().field(0)), Some(vec!["a".into(), "b".into()]));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::OffsetSizeTrait;
use arrow::array::{
    make_array, Array, ArrayRef, AsArray, FixedSizeListArray, MutableArrayData, PrimitiveArray,
    RecordBatch,
};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, FieldRef, Float16Type, Float32Type, Float64Type,
    Int16Type, Int32Type, Int64Type, Int8Type, Schema, SchemaRef, UInt16Type, UInt32Type,
    UInt64Type, UInt8Type,
};

use crate::{Error, Result};

/// Field metadata key of a packed column: the JSON list of the column names
/// it holds, in order.
pub const PACKED_COLUMNS_KEY: &str = "mosaicrs.packed_columns";

/// Option key prefix naming a packed column: `pack.<name>` = `a,b,c`.
pub const PACK_OPTION: &str = "pack.";
/// Option key prefix declaring a list length: `fixedLength.<column>` = `N`.
pub const FIXED_LENGTH_OPTION: &str = "fixedLength.";

/// The column layout options of a write; empty (the default) stores every
/// column as it comes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnLayout {
    /// Packed column name to the numeric columns it holds, in order.
    pub packed: BTreeMap<String, Vec<String>>,
    /// List column name to the length every row must have.
    pub fixed_lengths: BTreeMap<String, usize>,
}

impl ColumnLayout {
    /// True when the layout changes nothing.
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty() && self.fixed_lengths.is_empty()
    }

    /// Applies one writer option if it is a layout option (`pack.<name>` or
    /// `fixedLength.<column>`, the prefix case-insensitive); returns whether
    /// it was one. A bad value is an error naming the option.
    ///
    /// ```
    /// let mut layout = mosaicrs::writer::ColumnLayout::default();
    /// assert!(layout.set_option("fixedLength.emb", "128")?);
    /// assert!(!layout.set_option("compression", "zstd")?);
    /// assert!(layout.set_option("fixedLength.emb", "many").is_err());
    /// # Ok::<(), mosaicrs::Error>(())
    /// ```
    pub fn set_option(&mut self, key: &str, value: &str) -> Result<bool> {
        if let Some(name) = strip_prefix_ignore_case(key, PACK_OPTION) {
            let columns: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect();
            if name.is_empty() || columns.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "option {key}={value:?}: name the packed column after `{PACK_OPTION}` and \
                     give the columns to pack, comma-separated (e.g. pack.features=x0,x1,x2)"
                )));
            }
            self.packed.insert(name.to_string(), columns);
            return Ok(true);
        }
        if let Some(column) = strip_prefix_ignore_case(key, FIXED_LENGTH_OPTION) {
            let length = value.trim().parse::<usize>().ok().filter(|&n| n > 0);
            match (column.is_empty(), length) {
                (false, Some(n)) => {
                    self.fixed_lengths.insert(column.to_string(), n);
                    return Ok(true);
                }
                _ => {
                    return Err(Error::InvalidArgument(format!(
                        "option {key}={value:?}: give a list column after \
                         `{FIXED_LENGTH_OPTION}` and a positive length (e.g. fixedLength.emb=128)"
                    )))
                }
            }
        }
        Ok(false)
    }

    /// The layout as writer options (`key`, `value`), the inverse of
    /// [`ColumnLayout::set_option`]: how it crosses to the Spark tasks.
    pub fn to_options(&self) -> Vec<(String, String)> {
        let packed = self
            .packed
            .iter()
            .map(|(name, columns)| (format!("{PACK_OPTION}{name}"), columns.join(",")));
        let fixed = self
            .fixed_lengths
            .iter()
            .map(|(column, n)| (format!("{FIXED_LENGTH_OPTION}{column}"), n.to_string()));
        packed.chain(fixed).collect()
    }

    /// Checks the layout against the schema of the incoming rows and plans
    /// the stored schema. Fails before any row is written, naming the column
    /// or option: an unknown or non-numeric column to pack, a column packed
    /// twice, a packed name that is already a column, a declared length on a
    /// column that is not a list of numbers.
    pub fn plan(&self, input: &SchemaRef) -> Result<LayoutPlan> {
        // Exact names first; else the one column that matches ignoring
        // case, as Spark resolves names (and as Python data sources, which
        // lower-case option keys, need).
        let index_of = |name: &str, option: &str| {
            if let Ok(i) = input.index_of(name) {
                return Ok(i);
            }
            let mut matches = input
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.name().eq_ignore_ascii_case(name));
            match (matches.next(), matches.next()) {
                (Some((i, _)), None) => Ok(i),
                _ => Err(Error::InvalidArgument(format!(
                    "option {option} names column {name:?}, which the data does not have \
                     (columns: {})",
                    column_names(input)
                ))),
            }
        };
        // Input column to the packed group (index into `groups`) holding it.
        let mut packed_into: HashMap<usize, usize> = HashMap::new();
        let mut groups: Vec<PackedGroup> = Vec::new();
        for (name, columns) in &self.packed {
            let option = format!("{PACK_OPTION}{name}");
            if let Ok(i) = input.index_of(name) {
                if !columns.iter().any(|c| c == name) {
                    return Err(Error::InvalidArgument(format!(
                        "option {option}: the data already has a column {name:?} (column {i}); \
                         choose another name for the packed column"
                    )));
                }
            }
            let mut inputs = Vec::with_capacity(columns.len());
            for column in columns {
                let i = index_of(column, &option)?;
                if let Some(other) = packed_into.insert(i, groups.len()) {
                    let other = &groups[other].name;
                    return Err(Error::InvalidArgument(format!(
                        "column {column:?} is packed twice: into {other:?} and into {name:?}"
                    )));
                }
                let data_type = input.field(i).data_type();
                if packable_kind(data_type).is_none() {
                    return Err(Error::UnsupportedColumn {
                        name: column.clone(),
                        data_type: data_type.to_string(),
                        reason: format!(
                            "option {option}: only integer and floating-point columns can be \
                             packed"
                        ),
                    });
                }
                inputs.push(i);
            }
            let types: Vec<&DataType> =
                inputs.iter().map(|&i| input.field(i).data_type()).collect();
            // One element type for the packed values: the columns' own when
            // they agree, else float64, which holds every integer up to 2^53.
            let value_type = if types.iter().all(|t| *t == types[0]) {
                types[0].clone()
            } else {
                DataType::Float64
            };
            let nullable = inputs.iter().any(|&i| input.field(i).is_nullable());
            groups.push(PackedGroup {
                name: name.clone(),
                columns: columns.clone(),
                inputs,
                value_type,
                nullable,
            });
        }
        let mut fixed: HashMap<usize, usize> = HashMap::new();
        for (column, &length) in &self.fixed_lengths {
            let option = format!("{FIXED_LENGTH_OPTION}{column}");
            let i = index_of(column, &option)?;
            fixed.insert(i, length);
            if packed_into.contains_key(&i) {
                return Err(Error::InvalidArgument(format!(
                    "column {column:?} is both packed and given a fixed length ({option})"
                )));
            }
            let data_type = input.field(i).data_type();
            let is_list = matches!(
                data_type,
                DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _)
            );
            if !is_list && !is_ml_vector(data_type) {
                return Err(Error::UnsupportedColumn {
                    name: column.clone(),
                    data_type: data_type.to_string(),
                    reason: format!(
                        "option {option} declares a list length, but it is neither a list nor \
                         a Spark ML vector"
                    ),
                });
            }
        }

        let mut steps = Vec::new();
        let mut fields: Vec<FieldRef> = Vec::new();
        let mut emitted = vec![false; groups.len()];
        for (i, field) in input.fields().iter().enumerate() {
            if let Some(&g) = packed_into.get(&i) {
                // The packed column takes the place of its first column.
                if std::mem::replace(&mut emitted[g], true) {
                    continue;
                }
                let PackedGroup {
                    name,
                    columns,
                    inputs,
                    value_type,
                    nullable,
                } = &groups[g];
                let width = i32::try_from(columns.len()).map_err(|_| {
                    Error::InvalidArgument(format!("packed column {name:?} has too many columns"))
                })?;
                let item = Arc::new(Field::new("item", value_type.clone(), *nullable));
                let names = serde_json::to_string(columns)
                    .map_err(|e| Error::Internal(format!("packed column names: {e}")))?;
                let metadata = HashMap::from([(PACKED_COLUMNS_KEY.to_string(), names)]);
                fields.push(Arc::new(
                    Field::new(name, DataType::FixedSizeList(item.clone(), width), false)
                        .with_metadata(metadata),
                ));
                steps.push(Step::Pack {
                    inputs: inputs.clone(),
                    item,
                    width,
                });
            } else if let Some(&length) = fixed.get(&i) {
                let child = match field.data_type() {
                    DataType::List(c) | DataType::LargeList(c) | DataType::FixedSizeList(c, _) => {
                        c.clone()
                    }
                    // A vector's values are doubles; a sparse one has zeros.
                    DataType::Struct(_) => Arc::new(Field::new("item", DataType::Float64, false)),
                    _ => return Err(Error::Internal("a planned list is not a list".into())),
                };
                let width = i32::try_from(length).map_err(|_| {
                    Error::InvalidArgument(format!(
                        "option {FIXED_LENGTH_OPTION}{}={length} is too long",
                        field.name()
                    ))
                })?;
                fields.push(Arc::new(
                    Field::new(
                        field.name(),
                        DataType::FixedSizeList(child.clone(), width),
                        field.is_nullable(),
                    )
                    .with_metadata(field.metadata().clone()),
                ));
                steps.push(Step::FixedList {
                    input: i,
                    child,
                    width,
                });
            } else {
                fields.push(field.clone());
                steps.push(Step::Keep(i));
            }
        }
        let output = Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()));
        Ok(LayoutPlan {
            input: input.clone(),
            output,
            steps,
        })
    }
}

/// One packed column being planned.
struct PackedGroup {
    name: String,
    columns: Vec<String>,
    /// The input indices of `columns`.
    inputs: Vec<usize>,
    /// The element type of the packed values.
    value_type: DataType,
    /// Whether any packed value may be null.
    nullable: bool,
}

/// A [`ColumnLayout`] checked against the incoming schema: turns each
/// incoming batch into the stored one.
#[derive(Debug, Clone)]
pub struct LayoutPlan {
    input: SchemaRef,
    output: SchemaRef,
    steps: Vec<Step>,
}

#[derive(Debug, Clone)]
enum Step {
    Keep(usize),
    Pack {
        inputs: Vec<usize>,
        item: FieldRef,
        width: i32,
    },
    FixedList {
        input: usize,
        child: FieldRef,
        width: i32,
    },
}

impl LayoutPlan {
    /// The schema the shards and the index hold.
    pub fn schema(&self) -> &SchemaRef {
        &self.output
    }

    /// True when the stored batches are the incoming ones.
    pub fn is_identity(&self) -> bool {
        self.steps.iter().all(|s| matches!(s, Step::Keep(_)))
    }

    /// The stored form of `batch`, which must have the planned input schema;
    /// `first_row` is the number of rows this writer took before it (for
    /// messages). A list row of another length than declared is an error
    /// naming the column, the row and the option.
    pub fn apply(&self, batch: &RecordBatch, first_row: u64) -> Result<RecordBatch> {
        if self.is_identity() {
            return Ok(batch.clone());
        }
        if batch.schema().fields() != self.input.fields() {
            return Err(Error::InvalidArgument(format!(
                "a batch to lay out has columns ({}) other than planned ({})",
                column_names(&batch.schema()),
                column_names(&self.input)
            )));
        }
        let rows = batch.num_rows();
        let columns = self
            .steps
            .iter()
            .map(|step| match step {
                Step::Keep(i) => Ok(batch.column(*i).clone()),
                Step::Pack {
                    inputs,
                    item,
                    width,
                } => {
                    let columns = inputs
                        .iter()
                        .map(|&i| cast_to(batch.column(i), item.data_type()))
                        .collect::<Result<Vec<_>>>()?;
                    let values = interleave(&columns, item.data_type(), rows)?;
                    Ok(Arc::new(
                        FixedSizeListArray::try_new(item.clone(), *width, values, None)
                            .map_err(arrow_error)?,
                    ) as ArrayRef)
                }
                Step::FixedList {
                    input,
                    child,
                    width,
                } => {
                    let name = self.input.field(*input).name();
                    to_fixed_list(batch.column(*input), name, child, *width).map_err(|e| match e {
                        Error::ListLength {
                            column,
                            row,
                            expected,
                            found,
                        } => Error::InvalidArgument(format!(
                            "column {column:?} holds {found} values at row {} of this \
                             write's input, but option {FIXED_LENGTH_OPTION}{column}={expected} \
                             declares that every row holds {expected}",
                            first_row + row
                        )),
                        other => other,
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(self.output.clone(), columns).map_err(arrow_error)
    }
}

/// The column names a packed field holds ([`PACKED_COLUMNS_KEY`]), or `None`
/// for a field that is not a packed column.
pub fn packed_columns(field: &Field) -> Option<Vec<String>> {
    let names = field.metadata().get(PACKED_COLUMNS_KEY)?;
    serde_json::from_str(names).ok()
}

/// The layout options that `schema`'s stored columns were written with
/// (`pack.<name>=a,b,c` for each packed column, `fixedLength.<name>=N` for
/// each other fixed-size list), or `None` when it has none. An append must
/// give the same options, and its error says which.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Arc;
/// use arrow::datatypes::{DataType, Field, Schema};
/// use mosaicrs::writer::{layout_hint, PACKED_COLUMNS_KEY};
/// let item = Arc::new(Field::new("item", DataType::Float32, false));
/// let packed = Field::new("xy", DataType::FixedSizeList(item, 2), false).with_metadata(
///     HashMap::from([(PACKED_COLUMNS_KEY.to_string(), r#"["x","y"]"#.to_string())]),
/// );
/// let schema = Schema::new(vec![packed]);
/// assert_eq!(layout_hint(&schema).unwrap(), "pack.xy=x,y");
/// assert!(layout_hint(&Schema::new(vec![Field::new("x", DataType::Int64, false)])).is_none());
/// ```
pub fn layout_hint(schema: &Schema) -> Option<String> {
    let options: Vec<String> = schema
        .fields()
        .iter()
        .filter_map(|field| match (packed_columns(field), field.data_type()) {
            (Some(columns), _) => Some(format!(
                "{PACK_OPTION}{}={}",
                field.name(),
                columns.join(",")
            )),
            (None, DataType::FixedSizeList(_, size)) => {
                Some(format!("{FIXED_LENGTH_OPTION}{}={size}", field.name()))
            }
            _ => None,
        })
        .collect();
    (!options.is_empty()).then(|| options.join(" "))
}

pub(super) fn strip_prefix_ignore_case<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let head = key.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &key[prefix.len()..])
}

fn column_names(schema: &Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names.join(", ")
}

fn arrow_error(e: arrow::error::ArrowError) -> Error {
    Error::InvalidArgument(format!("cannot lay out the batch: {e}"))
}

/// The kinds that can be packed: integers and floats (not booleans, dates
/// or timestamps, whose values would change meaning in a float matrix).
fn packable_kind(data_type: &DataType) -> Option<()> {
    (data_type.is_integer() || data_type.is_floating()).then_some(())
}

fn cast_to(column: &ArrayRef, data_type: &DataType) -> Result<ArrayRef> {
    if column.data_type() == data_type {
        return Ok(column.clone());
    }
    arrow::compute::cast(column, data_type).map_err(arrow_error)
}

/// The values of `columns` (all of `data_type`) row-major: row `i` of
/// column `j` at `i * F + j`.
fn interleave(columns: &[ArrayRef], data_type: &DataType, rows: usize) -> Result<ArrayRef> {
    match data_type {
        DataType::Int8 => interleave_typed::<Int8Type>(columns, rows),
        DataType::Int16 => interleave_typed::<Int16Type>(columns, rows),
        DataType::Int32 => interleave_typed::<Int32Type>(columns, rows),
        DataType::Int64 => interleave_typed::<Int64Type>(columns, rows),
        DataType::UInt8 => interleave_typed::<UInt8Type>(columns, rows),
        DataType::UInt16 => interleave_typed::<UInt16Type>(columns, rows),
        DataType::UInt32 => interleave_typed::<UInt32Type>(columns, rows),
        DataType::UInt64 => interleave_typed::<UInt64Type>(columns, rows),
        DataType::Float16 => interleave_typed::<Float16Type>(columns, rows),
        DataType::Float32 => interleave_typed::<Float32Type>(columns, rows),
        DataType::Float64 => interleave_typed::<Float64Type>(columns, rows),
        other => Err(Error::Internal(format!("packing {other} values"))),
    }
}

fn interleave_typed<T: ArrowPrimitiveType>(columns: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    let f = columns.len();
    let arrays = columns
        .iter()
        .map(|c| {
            c.as_primitive_opt::<T>()
                .ok_or_else(|| Error::Internal("a packed column changed type".into()))
        })
        .collect::<Result<Vec<&PrimitiveArray<T>>>>()?;
    let mut values = vec![T::Native::default(); rows * f];
    // Rows in blocks that stay in L1, each block column by column: the
    // reads stream and the strided writes hit the cache.
    const BLOCK_ROWS: usize = 1024;
    for start in (0..rows).step_by(BLOCK_ROWS) {
        let end = (start + BLOCK_ROWS).min(rows);
        for (j, array) in arrays.iter().enumerate() {
            for (i, &v) in array.values()[start..end].iter().enumerate() {
                values[(start + i) * f + j] = v;
            }
        }
    }
    let nulls = if arrays.iter().any(|a| a.null_count() > 0) {
        let mut valid = vec![true; rows * f];
        for (j, array) in arrays.iter().enumerate() {
            if let Some(n) = array.nulls() {
                for i in n.iter().enumerate().filter(|(_, ok)| !ok).map(|(i, _)| i) {
                    valid[i * f + j] = false;
                }
            }
        }
        Some(NullBuffer::new(BooleanBuffer::from(valid)))
    } else {
        None
    };
    Ok(Arc::new(PrimitiveArray::<T>::new(values.into(), nulls)))
}

/// A list column as a fixed-size list of `width`, every non-null row checked.
fn to_fixed_list(column: &ArrayRef, name: &str, child: &FieldRef, width: i32) -> Result<ArrayRef> {
    let w = width as usize;
    match column.data_type() {
        DataType::FixedSizeList(_, n) if *n == width => Ok(column.clone()),
        DataType::FixedSizeList(_, n) => Err(Error::ListLength {
            column: name.to_string(),
            row: 0,
            expected: w,
            found: *n as usize,
        }),
        DataType::Struct(_) => vector_to_fixed(column.as_struct(), name, child, width),
        DataType::List(_) => list_to_fixed(column.as_list::<i32>(), name, child, width),
        DataType::LargeList(_) => list_to_fixed(column.as_list::<i64>(), name, child, width),
        other => Err(Error::Internal(format!(
            "column {name:?} is {other}, not a list"
        ))),
    }
}

/// True for the struct Spark writes a Spark ML `Vector` as (the sqlType of
/// `VectorUDT`): `type` (0 sparse, 1 dense), `size`, `indices`, `values`.
fn is_ml_vector(data_type: &DataType) -> bool {
    let DataType::Struct(fields) = data_type else {
        return false;
    };
    let list_of =
        |t: &DataType, item: &DataType| matches!(t, DataType::List(c) if c.data_type() == item);
    let types: Vec<(&str, &DataType)> = fields
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    matches!(
        types.as_slice(),
        [("type", DataType::Int8), ("size", DataType::Int32), ("indices", i), ("values", v)]
            if list_of(i, &DataType::Int32) && list_of(v, &DataType::Float64)
    )
}

/// Spark ML vectors as fixed-size lists of doubles: a dense vector's values
/// as they are, a sparse one's scattered into zeros. Every non-null vector
/// must have `width` elements.
fn vector_to_fixed(
    vectors: &arrow::array::StructArray,
    name: &str,
    child: &FieldRef,
    width: i32,
) -> Result<ArrayRef> {
    use arrow::datatypes::{ArrowNativeType, Int32Type, Int8Type};
    let w = width as usize;
    let kinds = vectors.column(0).as_primitive::<Int8Type>();
    let sizes = vectors.column(1).as_primitive::<Int32Type>();
    let indices = vectors.column(2).as_list::<i32>();
    let values = vectors.column(3).as_list::<i32>();
    let index_values = indices.values().as_primitive::<Int32Type>();
    let value_values = values.values().as_primitive::<Float64Type>();
    let bad = |row: usize, what: String| {
        Error::InvalidArgument(format!(
            "column {name:?} (a Spark ML vector) at row {row} of this batch {what}, but option \
             {FIXED_LENGTH_OPTION}{name}={w} declares {w} elements"
        ))
    };
    let mut out = vec![0f64; vectors.len() * w];
    for (row, slot) in out
        .chunks_exact_mut(w.max(1))
        .enumerate()
        .take(vectors.len())
    {
        if vectors.is_null(row) {
            continue;
        }
        let range = |list: &arrow::array::ListArray| {
            let o = list.value_offsets();
            o[row].as_usize()..o[row + 1].as_usize()
        };
        let vals = value_values.values().get(range(values)).ok_or_else(|| {
            Error::Internal(format!("column {name:?}: vector values out of range"))
        })?;
        if kinds.value(row) == 1 {
            if vals.len() != w {
                return Err(bad(row, format!("is dense with {} elements", vals.len())));
            }
            slot.copy_from_slice(vals);
        } else {
            let size = sizes.value(row);
            if usize::try_from(size).ok() != Some(w) {
                return Err(bad(row, format!("is sparse of size {size}")));
            }
            let idx = index_values.values().get(range(indices)).ok_or_else(|| {
                Error::Internal(format!("column {name:?}: vector indices out of range"))
            })?;
            if idx.len() != vals.len() {
                return Err(bad(
                    row,
                    "has as many indices as values".replace("as many", "not as many"),
                ));
            }
            for (&i, &v) in idx.iter().zip(vals) {
                let i = usize::try_from(i).ok().filter(|&i| i < w);
                *slot
                    .get_mut(i.ok_or_else(|| bad(row, "has an index out of range".into()))?)
                    .ok_or_else(|| Error::Internal("vector slot".into()))? = v;
            }
        }
    }
    let values = Arc::new(PrimitiveArray::<Float64Type>::from(out)) as ArrayRef;
    Ok(Arc::new(
        FixedSizeListArray::try_new(child.clone(), width, values, vectors.nulls().cloned())
            .map_err(arrow_error)?,
    ))
}

fn list_to_fixed<O: OffsetSizeTrait>(
    list: &arrow::array::GenericListArray<O>,
    name: &str,
    child: &FieldRef,
    width: i32,
) -> Result<ArrayRef> {
    let w = width as usize;
    let offsets = list.value_offsets();
    for row in 0..list.len() {
        let found = (offsets[row + 1] - offsets[row]).as_usize();
        if list.is_valid(row) && found != w {
            return Err(Error::ListLength {
                column: name.to_string(),
                row: row as u64,
                expected: w,
                found,
            });
        }
    }
    let values = list.values().to_data();
    let mut out = MutableArrayData::new(vec![&values], true, list.len() * w);
    for (row, start) in offsets.iter().take(list.len()).enumerate() {
        if list.is_valid(row) {
            let start = start.as_usize();
            out.try_extend(0, start, start + w).map_err(arrow_error)?;
        } else {
            out.try_extend_nulls(w).map_err(arrow_error)?;
        }
    }
    let values = make_array(out.freeze());
    Ok(Arc::new(
        FixedSizeListArray::try_new(child.clone(), width, values, list.nulls().cloned())
            .map_err(arrow_error)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        Float32Array, Float32Builder, Float64Array, Float64Builder, Int32Array, ListBuilder,
        StringArray,
    };
    use arrow::datatypes::Float32Type;

    fn batch() -> RecordBatch {
        let mut emb = ListBuilder::new(Float32Builder::new());
        for i in 0..3 {
            emb.values().append_slice(&[i as f32, i as f32 + 0.5]);
            emb.append(i != 1);
        }
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int32Array::from(vec![0, 1, 2])) as ArrayRef),
            (
                "a",
                Arc::new(Float32Array::from(vec![Some(1.0), None, Some(3.0)])) as _,
            ),
            ("s", Arc::new(StringArray::from(vec!["x", "y", "z"])) as _),
            (
                "b",
                Arc::new(Float32Array::from(vec![10.0, 20.0, 30.0])) as _,
            ),
            ("emb", Arc::new(emb.finish()) as _),
        ])
        .unwrap()
    }

    fn layout(options: &[(&str, &str)]) -> ColumnLayout {
        let mut layout = ColumnLayout::default();
        for (k, v) in options {
            assert!(layout.set_option(k, v).unwrap());
        }
        layout
    }

    #[test]
    fn packs_row_major_in_the_place_of_the_first_column() {
        let b = batch();
        let plan = layout(&[("pack.x", "b,a")]).plan(&b.schema()).unwrap();
        let out = plan.apply(&b, 0).unwrap();
        let schema = out.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["id", "x", "s", "emb"]);
        let x = out.column(1).as_fixed_size_list();
        assert_eq!(x.value_length(), 2);
        let v = x.values().as_primitive::<Float32Type>();
        assert_eq!(v.values().as_ref(), &[10.0, 1.0, 20.0, 0.0, 30.0, 3.0]);
        assert!(v.is_null(3) && v.null_count() == 1);
        assert_eq!(
            packed_columns(schema.field(1)),
            Some(vec!["b".into(), "a".into()])
        );
    }

    #[test]
    fn mixed_types_pack_as_float64() {
        let b = batch();
        let plan = layout(&[("pack.x", "id,b")]).plan(&b.schema()).unwrap();
        let out = plan.apply(&b, 0).unwrap();
        let x = out.column(0).as_fixed_size_list();
        let v = x.values().as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(v.values().as_ref(), &[0.0, 10.0, 1.0, 20.0, 2.0, 30.0]);
    }

    #[test]
    fn declared_lengths_become_fixed_size_lists() {
        let b = batch();
        let out = layout(&[("fixedLength.emb", "2")])
            .plan(&b.schema())
            .unwrap()
            .apply(&b, 0)
            .unwrap();
        let emb = out.column(4).as_fixed_size_list();
        assert!(emb.is_null(1));
        let v = emb.values().as_primitive::<Float32Type>();
        assert_eq!((v.value(4), v.value(5)), (2.0, 2.5));
        let err = layout(&[("fixedLength.emb", "3")])
            .plan(&b.schema())
            .unwrap()
            .apply(&b, 0)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"emb\" holds 2 values at row 0") && text.contains("fixedLength.emb=3"),
            "{text}"
        );
        // Names match ignoring case when no column has the exact name.
        let plan = layout(&[("fixedLength.EMB", "2")])
            .plan(&b.schema())
            .unwrap();
        assert!(matches!(
            plan.schema().field(4).data_type(),
            DataType::FixedSizeList(_, 2)
        ));
    }

    /// Spark ML vectors as Spark writes them: dense [1, 2, 3], sparse
    /// (size 3, {1: 5}), null.
    fn vectors() -> RecordBatch {
        use arrow::array::{Int32Array as I32, Int32Builder, Int8Array, StructArray};
        let mut indices = ListBuilder::new(Int32Builder::new());
        let mut values = ListBuilder::new(Float64Builder::new());
        indices.append(true);
        values.values().append_slice(&[1.0, 2.0, 3.0]);
        values.append(true);
        indices.values().append_value(1);
        indices.append(true);
        values.values().append_value(5.0);
        values.append(true);
        indices.append(false);
        values.append(false);
        let indices = indices.finish();
        let values = values.finish();
        let fields = vec![
            Field::new("type", DataType::Int8, false),
            Field::new("size", DataType::Int32, true),
            Field::new("indices", indices.data_type().clone(), true),
            Field::new("values", values.data_type().clone(), true),
        ];
        let vec = StructArray::new(
            fields.into(),
            vec![
                Arc::new(Int8Array::from(vec![1, 0, 0])) as ArrayRef,
                Arc::new(I32::from(vec![None, Some(3), None])),
                Arc::new(indices),
                Arc::new(values),
            ],
            Some(NullBuffer::from(vec![true, true, false])),
        );
        RecordBatch::try_from_iter([("vec", Arc::new(vec) as ArrayRef)]).unwrap()
    }

    #[test]
    fn spark_ml_vectors_become_fixed_size_lists_of_doubles() {
        let b = vectors();
        let out = layout(&[("fixedLength.vec", "3")])
            .plan(&b.schema())
            .unwrap()
            .apply(&b, 0)
            .unwrap();
        let vec = out.column(0).as_fixed_size_list();
        let v = vec
            .values()
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(&v.values()[..6], &[1.0, 2.0, 3.0, 0.0, 5.0, 0.0]);
        assert!(vec.is_valid(1) && vec.is_null(2));
        let err = layout(&[("fixedLength.vec", "4")])
            .plan(&b.schema())
            .unwrap()
            .apply(&b, 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"vec\" (a Spark ML vector) at row 0 of this batch is dense with 3"),
            "{err}"
        );
    }

    #[test]
    fn bad_layouts_fail_before_any_row_naming_the_column() {
        let schema = batch().schema();
        let err = |options: &[(&str, &str)]| layout(options).plan(&schema).unwrap_err().to_string();
        assert!(err(&[("pack.x", "a,nope")]).contains("\"nope\""));
        assert!(err(&[("pack.x", "a,s")]).contains("\"s\""));
        assert!(err(&[("pack.x", "a"), ("pack.y", "a,b")]).contains("packed twice"));
        assert!(err(&[("pack.id", "a,b")]).contains("already has a column"));
        assert!(err(&[("fixedLength.a", "4")]).contains("neither a list"));
        let mut l = ColumnLayout::default();
        assert!(l.set_option("pack.x", " , ").is_err());
        assert!(l.set_option("fixedLength.emb", "0").is_err());
    }

    #[test]
    fn options_round_trip() {
        let l = layout(&[("Pack.features", "a,b"), ("FIXEDLENGTH.emb", "2")]);
        let mut again = ColumnLayout::default();
        for (k, v) in l.to_options() {
            again.set_option(&k, &v).unwrap();
        }
        assert_eq!(l, again);
    }
}
