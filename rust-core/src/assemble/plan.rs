//! A spec checked against a schema, and one fill function per kind of column.

use arrow::array::{Array, AsArray, OffsetSizeTrait};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, SchemaRef};

use super::fill::{fill, fill_rows, is_numeric, Column, Dest, Input};
use super::ragged::{Inner, RaggedColumn};
use super::row_blocks;
use super::{
    natural_kind, with_elements, Element, ElementKind, ElementsMut, NullPolicy, TensorSpec,
};
use crate::loader::Gathered;
use crate::{Error, Result};

/// Output bytes per block of samples when stacking features (a share of L1).
const FEATURE_BLOCK_BYTES: usize = 16 * 1024;

/// How one non-feature column converts.
#[derive(Debug, Clone, PartialEq)]
pub enum Conversion {
    /// `[B]` of the kind.
    Scalar(ElementKind),
    /// `[B, width]` from a fixed-size list.
    Fixed { width: usize, kind: ElementKind },
    /// `[B, width]` from a variable-length list whose rows all hold `width`.
    StackedList {
        large: bool,
        width: usize,
        kind: ElementKind,
    },
    /// values + offsets; `large` for 64-bit Arrow offsets. `inner` is the
    /// width `D` of a list of lists (every inner list holds `D` numbers):
    /// values `[N, D]`.
    List {
        large: bool,
        kind: ElementKind,
        inner: Option<usize>,
    },
    /// A list of lists whose inner lists vary in length: values, offsets
    /// into the inner lists and inner offsets into the values.
    NestedList { large: bool, kind: ElementKind },
    /// bytes + offsets.
    Bytes,
}

impl Conversion {
    /// The element kind and values per sample of a dense (`[B]` or
    /// `[B, width]`) conversion; `None` for ragged and bytes columns.
    pub fn dense_shape(&self) -> Option<(ElementKind, usize)> {
        match *self {
            Conversion::Scalar(kind) => Some((kind, 1)),
            Conversion::Fixed { width, kind } | Conversion::StackedList { width, kind, .. } => {
                Some((kind, width))
            }
            Conversion::List { .. } | Conversion::NestedList { .. } | Conversion::Bytes => None,
        }
    }
}

/// One non-feature column of a [`BatchPlan`].
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnPlan {
    /// Position in the loader's (projected) schema.
    pub index: usize,
    pub name: String,
    pub conversion: Conversion,
}

/// A [`TensorSpec`] checked against a schema: bad columns fail here, before
/// any batch. Its fill functions run on the loader's worker threads and write
/// each value once, from the mapped shards into the caller's buffer.
#[derive(Debug, Clone)]
pub struct BatchPlan {
    features: Vec<(usize, String)>,
    feature_kind: ElementKind,
    columns: Vec<ColumnPlan>,
    nulls: NullPolicy,
}

impl BatchPlan {
    /// Checks `spec` against `schema` (the loader's projected schema). A
    /// missing column is [`Error::ColumnNotFound`]; a feature column that is
    /// not numeric, or a column of a type with no array form, is
    /// [`Error::UnsupportedColumn`].
    pub fn new(schema: &SchemaRef, spec: &TensorSpec) -> Result<Self> {
        let find = |name: &str| crate::format::column_index(schema, name);
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
            let inner = spec.inner_widths.get(name).copied();
            let conversion = if spec.nested.contains(name) {
                nested_conversion(name, data_type)?
            } else {
                conversion(name, data_type, width, inner)?
            };
            columns.push(ColumnPlan {
                index,
                name: name.clone(),
                conversion,
            });
        }
        Ok(BatchPlan {
            features,
            feature_kind: spec.feature_kind,
            columns,
            nulls: spec.nulls,
        })
    }

    /// True when the spec names feature columns.
    pub fn has_features(&self) -> bool {
        !self.features.is_empty()
    }

    /// The `F` of the `[B, F]` feature array.
    pub fn feature_width(&self) -> usize {
        self.features.len()
    }

    /// The element kind of the feature array.
    pub fn feature_kind(&self) -> ElementKind {
        self.feature_kind
    }

    /// The non-feature columns, in spec order.
    pub fn columns(&self) -> &[ColumnPlan] {
        &self.columns
    }

    /// The null policy.
    pub fn nulls(&self) -> NullPolicy {
        self.nulls
    }

    fn column<'a>(&self, name: &'a str, rows: &'a [u64]) -> Column<'a> {
        Column {
            name,
            rows,
            nulls: self.nulls,
        }
    }

    /// Writes the `[B, F]` features of `g` into `out` (row-major, `B * F`
    /// elements), cast to `out`'s element type.
    pub fn fill_features(&self, g: &Gathered, out: ElementsMut<'_>) -> Result<()> {
        check_len("the features", out.len(), g.len() * self.features.len())?;
        with_elements!(out, out => self.fill_features_typed(g, out))
    }

    fn fill_features_typed<T: Element>(&self, g: &Gathered, out: &mut [T]) -> Result<()> {
        let positions: Vec<usize> = self.features.iter().map(|(index, _)| *index).collect();
        if row_blocks::fill_features(&positions, g, out)? {
            return Ok(());
        }
        let (n, f) = (g.len(), self.features.len());
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
        if fill_rows(&sources, g.picks(), out) {
            return Ok(());
        }
        // Column by column within blocks of samples whose output rows stay
        // in L1: the strided stores then hit the cache, and only the
        // gathers' loads go to memory.
        let row_bytes = f * T::KIND.size_in_bytes();
        let block = (FEATURE_BLOCK_BYTES / row_bytes.max(1)).clamp(8, 4096);
        for start in (0..n).step_by(block) {
            let end = (start + block).min(n);
            for (j, (_, name)) in self.features.iter().enumerate() {
                let input = Input {
                    values: &sources[j],
                    row_nulls: &[],
                    picks: &g.picks()[start..end],
                    width: 1,
                    starts: None,
                };
                let mut dest = Dest {
                    out: &mut *out,
                    stride: f,
                    offset: start * f + j,
                };
                fill(&input, &mut dest, &self.column(name, &g.rows()[start..end]))?;
            }
        }
        Ok(())
    }

    /// Writes a dense column (`[B]` or `[B, width]`, see
    /// [`Conversion::dense_shape`]) of `g` into `out`, cast to `out`'s type.
    pub fn fill_dense(
        &self,
        column: &ColumnPlan,
        g: &Gathered,
        out: ElementsMut<'_>,
    ) -> Result<()> {
        let Some((_, width)) = column.conversion.dense_shape() else {
            return Err(Error::InvalidArgument(format!(
                "column {:?} is not dense (it converts to values and offsets)",
                column.name
            )));
        };
        check_len(&column.name, out.len(), g.len() * width)?;
        with_elements!(out, out => self.fill_dense_typed(column, g, out))
    }

    fn fill_dense_typed<T: Element>(
        &self,
        plan: &ColumnPlan,
        g: &Gathered,
        out: &mut [T],
    ) -> Result<()> {
        let column = self.column(&plan.name, g.rows());
        let sources = g.column_sources(plan.index);
        let sources: Vec<&dyn Array> = sources.iter().map(|a| a.as_ref()).collect();
        match plan.conversion {
            Conversion::Scalar(_) => {
                let input = Input {
                    values: &sources,
                    row_nulls: &[],
                    picks: g.picks(),
                    width: 1,
                    starts: None,
                };
                fill(&input, &mut Dest::rows(out, 1), &column)
            }
            Conversion::Fixed { width, .. } => {
                let lists = sources
                    .iter()
                    .map(|a| a.as_fixed_size_list_opt().ok_or_else(|| mixed(column.name)))
                    .collect::<Result<Vec<_>>>()?;
                let values: Vec<&dyn Array> = lists.iter().map(|l| l.values().as_ref()).collect();
                let nulls: Vec<Option<&NullBuffer>> = lists.iter().map(|l| l.nulls()).collect();
                let input = Input {
                    values: &values,
                    row_nulls: &nulls,
                    picks: g.picks(),
                    width,
                    starts: None,
                };
                fill(&input, &mut Dest::rows(out, width), &column)
            }
            Conversion::StackedList { large, width, .. } => {
                let rows = if large {
                    ListRows::gather::<i64>(&sources, g.picks(), width, &column)?
                } else {
                    ListRows::gather::<i32>(&sources, g.picks(), width, &column)?
                };
                let input = Input {
                    values: &rows.values,
                    row_nulls: &rows.nulls,
                    picks: g.picks(),
                    width,
                    starts: Some(&rows.starts),
                };
                fill(&input, &mut Dest::rows(out, width), &column)
            }
            Conversion::List { .. } | Conversion::NestedList { .. } | Conversion::Bytes => Err(
                Error::Internal(format!("column {:?} reached the dense fill", column.name)),
            ),
        }
    }

    /// The offsets of a variable-length column of `g` (a
    /// [`Conversion::List`] or [`Conversion::Bytes`]), read in one pass
    /// over the samples; its values are then written by
    /// [`RaggedColumn::fill_values`] into a buffer of
    /// [`RaggedColumn::value_count`] elements (or by
    /// [`RaggedColumn::fill_padded`]). A null sample is an error naming the
    /// column and dataset row, or empty under a fill policy.
    pub fn ragged(&self, column: &ColumnPlan, g: &Gathered) -> Result<RaggedColumn> {
        let inner = match column.conversion {
            Conversion::List { inner, .. } => inner.map(Inner::Width),
            Conversion::NestedList { .. } => Some(Inner::Nested),
            Conversion::Bytes => None,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "column {:?} is not a variable-length list, string or binary column",
                    column.name
                )))
            }
        };
        let sources = g.column_sources(column.index);
        RaggedColumn::new(
            &sources,
            g.picks(),
            &self.column(&column.name, g.rows()),
            inner,
        )
    }

    /// A string or binary column of `g` as one byte buffer plus `B + 1`
    /// offsets (sample `i` is `values[offsets[i]..offsets[i + 1]]`).
    pub fn bytes(&self, column: &ColumnPlan, g: &Gathered) -> Result<(Vec<u8>, Vec<u64>)> {
        if column.conversion != Conversion::Bytes {
            return Err(Error::InvalidArgument(format!(
                "column {:?} is not a string or binary column",
                column.name
            )));
        }
        let ragged = self.ragged(column, g)?;
        let mut values = vec![0u8; ragged.value_count()];
        ragged.fill_values(ElementsMut::U8(&mut values))?;
        let offsets = ragged.offsets().iter().map(|&o| o as u64).collect();
        Ok((values, offsets))
    }
}

fn check_len(what: &str, len: usize, expected: usize) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "buffer for {what:?} holds {len} elements; the batch needs {expected}"
        )))
    }
}

/// Decides how a non-feature column converts (stacked as `[B, width]` when
/// the spec gives a width), or says why it cannot.
fn conversion(
    name: &str,
    data_type: &DataType,
    width: Option<usize>,
    inner_width: Option<usize>,
) -> Result<Conversion> {
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
                "column {name:?}: a stacked list needs a width of at least 1 (if its lengths \
                 vary, convert it as a ragged column)"
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
        DataType::List(field) | DataType::LargeList(field) => {
            let large = matches!(data_type, DataType::LargeList(_));
            match field.data_type() {
                DataType::List(inner) | DataType::LargeList(inner) => {
                    let kind = child_kind(inner.data_type())?;
                    let Some(width) = inner_width.filter(|&w| w > 0) else {
                        return Err(unsupported(
                            "a list of lists becomes values [N, D] only with the width D of \
                             its inner lists (TensorSpec::with_inner_width), or values plus two \
                             levels of offsets (TensorSpec::with_nested_list)",
                        ));
                    };
                    Conversion::List {
                        large,
                        kind,
                        inner: Some(width),
                    }
                }
                DataType::FixedSizeList(inner, size) => Conversion::List {
                    large,
                    kind: child_kind(inner.data_type())?,
                    inner: Some(
                        usize::try_from(*size)
                            .ok()
                            .filter(|&w| w > 0)
                            .ok_or_else(|| unsupported("inner lists of size 0"))?,
                    ),
                },
                child => Conversion::List {
                    large,
                    kind: child_kind(child)?,
                    inner: None,
                },
            }
        }
        other => Conversion::Scalar(natural_kind(other).ok_or_else(|| {
            unsupported(
                "it has no tensor form; supported: integers, floats, booleans, dates, \
                 timestamps, lists of numbers, strings and binary (cast decimals to double)",
            )
        })?),
    })
}

/// The conversion of a column named by [`TensorSpec::with_nested_list`]:
/// it must be a list of variable-length lists of numbers.
fn nested_conversion(name: &str, data_type: &DataType) -> Result<Conversion> {
    let unsupported = |reason: &str| Error::UnsupportedColumn {
        name: name.to_string(),
        data_type: data_type.to_string(),
        reason: reason.to_string(),
    };
    let large = matches!(data_type, DataType::LargeList(_));
    let (DataType::List(outer) | DataType::LargeList(outer)) = data_type else {
        return Err(unsupported(
            "only a list of lists converts as nested lists (two levels of offsets)",
        ));
    };
    let (DataType::List(inner) | DataType::LargeList(inner) | DataType::FixedSizeList(inner, _)) =
        outer.data_type()
    else {
        return Err(unsupported(
            "only a list of lists converts as nested lists (two levels of offsets)",
        ));
    };
    let kind = natural_kind(inner.data_type())
        .ok_or_else(|| unsupported("list elements must be numeric to become a tensor"))?;
    Ok(Conversion::NestedList { large, kind })
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
