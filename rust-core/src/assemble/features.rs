//! How feature columns, scalar and embedding, form a model's `[B, F]` input.

use arrow::array::{Array, AsArray, OffsetSizeTrait};
use arrow::datatypes::{ArrowNativeType, DataType};

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::{is_numeric, ElementKind, TensorSpec};
use crate::reader::Dataset;
use crate::{Error, Result};

/// What [`list_width`] and [`FeatureLayout::new`] read: the schema and row 0
/// of a [`Dataset`] or a [`DataSource`](crate::reader::DataSource).
pub trait RowSource {
    /// The Arrow schema.
    fn schema(&self) -> SchemaRef;
    /// Total rows.
    fn num_rows(&self) -> u64;
    /// Global row `row` as a one-row batch.
    fn row(&self, row: u64) -> Result<RecordBatch>;
}

impl RowSource for Dataset {
    fn schema(&self) -> SchemaRef {
        Dataset::schema(self)
    }
    fn num_rows(&self) -> u64 {
        Dataset::num_rows(self)
    }
    fn row(&self, row: u64) -> Result<RecordBatch> {
        Dataset::row(self, row)
    }
}

impl RowSource for crate::reader::DataSource {
    fn schema(&self) -> SchemaRef {
        crate::reader::DataSource::schema(self)
    }
    fn num_rows(&self) -> u64 {
        crate::reader::DataSource::num_rows(self)
    }
    fn row(&self, row: u64) -> Result<RecordBatch> {
        crate::reader::DataSource::row(self, row)
    }
}

impl<T: RowSource + ?Sized> RowSource for Arc<T> {
    fn schema(&self) -> SchemaRef {
        (**self).schema()
    }
    fn num_rows(&self) -> u64 {
        (**self).num_rows()
    }
    fn row(&self, row: u64) -> Result<RecordBatch> {
        (**self).row(row)
    }
}

/// True for list columns of numbers (embeddings, Spark `array<float>`).
///
/// ```
/// use std::sync::Arc;
/// use arrow::datatypes::{DataType, Field};
/// let emb = DataType::List(Arc::new(Field::new("item", DataType::Float32, true)));
/// assert!(mosaicrs::assemble::is_numeric_list(&emb));
/// assert!(!mosaicrs::assemble::is_numeric_list(&DataType::Float32));
/// ```
pub fn is_numeric_list(data_type: &DataType) -> bool {
    match data_type {
        DataType::List(child) | DataType::LargeList(child) | DataType::FixedSizeList(child, _) => {
            is_numeric(child.data_type())
        }
        _ => false,
    }
}

/// The number of values in row 0 of the list column `column`: the `D` to
/// stack it by with [`TensorSpec::with_fixed_list`] when every row holds the
/// same number (an embedding that Spark wrote as `array<float>`; each row is
/// checked when batches are assembled).
///
/// ```no_run
/// let ds = mosaicrs::reader::Dataset::open("embeddings.mosaicrs")?;
/// let d = mosaicrs::assemble::list_width(&ds, "emb")?; // for example 256
/// # Ok::<(), mosaicrs::Error>(())
/// ```
pub fn list_width(dataset: &(impl RowSource + ?Sized), column: &str) -> Result<usize> {
    let index = crate::format::column_indices(&dataset.schema(), &[column])?[0];
    let data_type = dataset.schema().field(index).data_type().clone();
    match &data_type {
        DataType::FixedSizeList(_, n) => {
            return usize::try_from(*n).map_err(|_| {
                Error::Internal(format!("column {column:?} has a negative list size {n}"))
            })
        }
        DataType::List(_) | DataType::LargeList(_) => {}
        other => {
            return Err(Error::UnsupportedColumn {
                name: column.to_string(),
                data_type: other.to_string(),
                reason: "it is not a list, so it has no list width".into(),
            })
        }
    }
    if dataset.num_rows() == 0 {
        return Err(Error::InvalidArgument(format!(
            "column {column:?}: the dataset has no rows to take a list width from"
        )));
    }
    let first = dataset.row(0)?;
    let array = first.column(index);
    if array.is_null(0) {
        return Err(Error::NullValue {
            column: column.to_string(),
            row: 0,
        });
    }
    fn first_length<O: OffsetSizeTrait>(array: &dyn Array, column: &str) -> Result<usize> {
        let list = array.as_list_opt::<O>().ok_or_else(|| {
            Error::Internal(format!(
                "column {column:?} does not hold the schema's list type"
            ))
        })?;
        Ok(list.value_length(0).as_usize())
    }
    match data_type {
        DataType::LargeList(_) => first_length::<i64>(array, column),
        _ => first_length::<i32>(array, column),
    }
}

/// Rows [`inner_width`] reads at most to find a non-empty inner list.
const INNER_WIDTH_ROWS: u64 = 1024;

/// The width `D` of the inner lists of a list-of-lists column (Spark
/// `array<array<float>>`): the size of a fixed-size inner list, else the
/// length of the first non-null inner list in the first rows. `None` for a
/// column that is not a list of lists.
///
/// ```no_run
/// let ds = mosaicrs::reader::Dataset::open("boxes.mosaicrs")?;
/// let d = mosaicrs::assemble::inner_width(&ds, "boxes")?;
/// # Ok::<(), mosaicrs::Error>(())
/// ```
pub fn inner_width(dataset: &(impl RowSource + ?Sized), column: &str) -> Result<Option<usize>> {
    let index = crate::format::column_indices(&dataset.schema(), &[column])?[0];
    let schema = dataset.schema();
    let child = match schema.field(index).data_type() {
        DataType::List(f) | DataType::LargeList(f) => f.data_type().clone(),
        _ => return Ok(None),
    };
    match child {
        DataType::FixedSizeList(_, n) => return Ok(usize::try_from(n).ok()),
        DataType::List(_) | DataType::LargeList(_) => {}
        _ => return Ok(None),
    }
    fn first<O: OffsetSizeTrait>(array: &dyn Array) -> Option<usize> {
        let outer = array.as_list_opt::<O>()?;
        if outer.is_null(0) {
            return None;
        }
        let inner = outer.value(0);
        (0..inner.len()).find_map(|k| {
            if inner.is_null(k) {
                return None;
            }
            match inner.data_type() {
                DataType::LargeList(_) => inner
                    .as_list_opt::<i64>()
                    .map(|l| l.value_length(k).as_usize()),
                _ => inner
                    .as_list_opt::<i32>()
                    .map(|l| l.value_length(k).as_usize()),
            }
        })
    }
    let large = matches!(schema.field(index).data_type(), DataType::LargeList(_));
    for row in 0..dataset.num_rows().min(INNER_WIDTH_ROWS) {
        let batch = dataset.row(row)?;
        let array = batch.column(index);
        let found = if large {
            first::<i64>(array.as_ref())
        } else {
            first::<i32>(array.as_ref())
        };
        if let Some(width) = found.filter(|&w| w > 0) {
            return Ok(Some(width));
        }
    }
    Err(Error::InvalidArgument(format!(
        "column {column:?}: no non-empty inner list in its first {INNER_WIDTH_ROWS} rows to \
         take the inner width from"
    )))
}

/// How the feature columns form a model's `[B, F]` input: the scalar columns
/// stacked in order, then each list column (an embedding whose rows all hold
/// `D` values) as a `[B, D]` block.
///
/// ```no_run
/// use mosaicrs::assemble::{ElementKind, FeatureLayout};
/// let ds = mosaicrs::reader::Dataset::open("embeddings.mosaicrs")?;
/// let layout = FeatureLayout::new(&ds, &["x".into(), "emb".into()])?;
/// let spec = layout.spec(ElementKind::F32, "label");
/// assert_eq!(spec.columns.last().map(String::as_str), Some("label"));
/// # Ok::<(), mosaicrs::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureLayout {
    scalars: Vec<String>,
    lists: Vec<(String, usize)>,
}

impl FeatureLayout {
    /// The layout of `features`, each numeric or a list of numbers; a list
    /// column's width is its length in row 0 ([`list_width`]), and every row
    /// is checked against it when batches are assembled.
    pub fn new(dataset: &(impl RowSource + ?Sized), features: &[String]) -> Result<Self> {
        let schema = dataset.schema();
        let mut layout = FeatureLayout {
            scalars: Vec::new(),
            lists: Vec::new(),
        };
        for name in features {
            let index = crate::format::column_indices(&schema, &[name.as_str()])?[0];
            let data_type = schema.field(index).data_type();
            if is_numeric_list(data_type) {
                let width = list_width(dataset, name)?;
                if width == 0 {
                    return Err(Error::InvalidArgument(format!(
                        "list column {name:?} is empty in row 0, so it adds no features"
                    )));
                }
                layout.lists.push((name.clone(), width));
            } else if is_numeric(data_type) {
                layout.scalars.push(name.clone());
            } else {
                return Err(Error::UnsupportedColumn {
                    name: name.clone(),
                    data_type: data_type.to_string(),
                    reason: "feature columns must be numeric or lists of numbers".into(),
                });
            }
        }
        Ok(layout)
    }

    /// The scalar feature columns, in order.
    pub fn scalars(&self) -> &[String] {
        &self.scalars
    }

    /// The list feature columns and their widths, in order.
    pub fn lists(&self) -> &[(String, usize)] {
        &self.lists
    }

    /// Every feature column with the values it adds per sample, in `[B, F]`
    /// order (scalars 1 each, then the lists).
    pub fn columns(&self) -> impl Iterator<Item = (&str, usize)> + '_ {
        let scalars = self.scalars.iter().map(|name| (name.as_str(), 1));
        scalars.chain(self.lists.iter().map(|(name, w)| (name.as_str(), *w)))
    }

    /// Values per sample: the `F` of `[B, F]`.
    pub fn width(&self) -> usize {
        self.scalars.len() + self.lists.iter().map(|(_, w)| w).sum::<usize>()
    }

    /// The spec: scalars stacked as one `[B, S]` array of `kind`, each list
    /// as its own `[B, D]`, then `label` by its own type.
    pub fn spec(&self, kind: ElementKind, label: &str) -> TensorSpec {
        let mut spec = TensorSpec::features(self.scalars.clone(), kind);
        for (name, width) in &self.lists {
            spec = spec.with_fixed_list(name.clone(), *width);
        }
        spec.with_column(label)
    }
}
