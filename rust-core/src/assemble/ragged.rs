//! Variable-length columns (lists of numbers, lists of fixed-width lists,
//! strings and binary): the offsets in one pass over the samples, then each
//! sample's values copied as one contiguous run from the mapped sources into
//! the caller's buffer (a `memcpy` when the element types match, a cast loop
//! otherwise). Nothing is gathered into an intermediate Arrow array.

use std::any::TypeId;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray};
use arrow::buffer::{Buffer, NullBuffer};
use arrow::datatypes::{self as adt, DataType};

use super::fill::{downcast_source, mixed_types, Column, IntoElement};
use super::{with_elements, Element, ElementsMut, NullPolicy};
use crate::{Error, Result};

/// Where one sample's values come from.
#[derive(Debug, Clone, Copy)]
enum Span {
    /// No values (an empty list, or a null under a fill policy).
    Empty,
    /// `items * width` values of `values[source]` from element `start`.
    Run { source: usize, start: usize },
    /// Item `k` of the sample is `items[first + k]`: the start of its
    /// `width` values in `values[source]`, or `None` for a null inner list
    /// (filled under the null policy).
    Items { source: usize, first: usize },
}

/// The inner level of a list-of-lists column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inner {
    /// Every inner list holds this many values: values `[N, D]`.
    Width(usize),
    /// Inner lists of any length: a second level of offsets.
    Nested,
}

/// The values each source holds: the innermost child array of a list column,
/// or the byte data of a string or binary column.
#[derive(Debug)]
enum Values {
    Arrays(Vec<ArrayRef>),
    Bytes(Vec<Buffer>),
}

/// A variable-length column of one batch: its `B + 1` offsets, and where
/// each sample's values are in the mapped sources.
///
/// Sample `i` holds `offsets[i + 1] - offsets[i]` items of
/// [`inner_width`](Self::inner_width) values each (one value for a list of
/// numbers or a string's bytes; `D` for a list of `D`-value lists).
///
/// ```
/// use std::sync::Arc;
/// use arrow::array::{ListArray, RecordBatch};
/// use arrow::datatypes::Int32Type;
/// use mosaicrs::assemble::{BatchPlan, ElementKind, ElementsMut, TensorSpec};
/// use mosaicrs::loader::Gathered;
///
/// let ids = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
///     Some(vec![Some(1), Some(2), Some(3)]),
///     Some(vec![]),
///     Some(vec![Some(4)]),
/// ]);
/// let batch = RecordBatch::try_from_iter([("ids", Arc::new(ids) as _)])?;
/// let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32).with_column("ids");
/// let plan = BatchPlan::new(&batch.schema(), &spec)?;
/// let ragged = plan.ragged(&plan.columns()[0], &Gathered::from_record_batch(&batch))?;
/// assert_eq!(ragged.offsets(), [0, 3, 3, 4]);
/// let mut values = vec![0i64; ragged.value_count()];
/// ragged.fill_values(ElementsMut::I64(&mut values))?;
/// assert_eq!(values, [1, 2, 3, 4]);
/// let mut padded = vec![0i64; 3 * 2];
/// ragged.fill_padded(ElementsMut::I64(&mut padded), 2, -1.0)?;
/// assert_eq!(padded, [1, 2, -1, -1, 4, -1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct RaggedColumn {
    name: String,
    nulls: NullPolicy,
    width: usize,
    values: Values,
    spans: Vec<Span>,
    items: Vec<Option<usize>>,
    /// The dataset row of each sample (for error messages).
    rows: Vec<u64>,
    offsets: Vec<i64>,
    /// Nested lists: `n_lists + 1` offsets of the inner lists into the values.
    inner_offsets: Option<Vec<i64>>,
}

/// Offsets and validity of one source's (outer or inner) lists or strings.
#[derive(Clone, Copy)]
enum Offsets<'a> {
    Small(&'a [i32]),
    Large(&'a [i64]),
    /// Fixed-size lists of this many values.
    Fixed(usize),
}

impl Offsets<'_> {
    /// The value range of element `r`.
    #[inline]
    fn span(self, r: usize) -> (usize, usize) {
        match self {
            // Arrow guarantees offsets are non-negative and increasing.
            Offsets::Small(o) => (o[r] as usize, o[r + 1] as usize),
            Offsets::Large(o) => (o[r] as usize, o[r + 1] as usize),
            Offsets::Fixed(w) => (r * w, r * w + w),
        }
    }
}

/// One source of a list or byte column, seen through its offsets.
#[derive(Clone, Copy)]
struct Level<'a> {
    offsets: Offsets<'a>,
    nulls: Option<&'a NullBuffer>,
}

/// The level of a string or binary array `$a` whose offsets are `Offsets::$width`.
macro_rules! bytes_level {
    ($a:expr, $width:ident) => {{
        let a = $a;
        let level = Level {
            offsets: Offsets::$width(a.value_offsets()),
            nulls: a.nulls(),
        };
        (level, None, Some(a.values().clone()))
    }};
}

impl<'a> Level<'a> {
    fn of(array: &'a dyn Array) -> Option<(Self, Option<&'a ArrayRef>, Option<Buffer>)> {
        Some(match array.data_type() {
            DataType::List(_) => {
                let list = array.as_list_opt::<i32>()?;
                let l = Level {
                    offsets: Offsets::Small(list.value_offsets()),
                    nulls: list.nulls(),
                };
                (l, Some(list.values()), None)
            }
            DataType::LargeList(_) => {
                let list = array.as_list_opt::<i64>()?;
                let l = Level {
                    offsets: Offsets::Large(list.value_offsets()),
                    nulls: list.nulls(),
                };
                (l, Some(list.values()), None)
            }
            DataType::FixedSizeList(_, _) => {
                let list = array.as_fixed_size_list_opt()?;
                let w = usize::try_from(list.value_length()).ok()?;
                (
                    Level {
                        offsets: Offsets::Fixed(w),
                        nulls: list.nulls(),
                    },
                    Some(list.values()),
                    None,
                )
            }
            // Strings and binary: one offsets level over a byte buffer.
            DataType::Utf8 => bytes_level!(array.as_string_opt::<i32>()?, Small),
            DataType::LargeUtf8 => bytes_level!(array.as_string_opt::<i64>()?, Large),
            DataType::Binary => bytes_level!(array.as_binary_opt::<i32>()?, Small),
            DataType::LargeBinary => bytes_level!(array.as_binary_opt::<i64>()?, Large),
            _ => return None,
        })
    }

    #[inline]
    fn is_null(&self, r: usize) -> bool {
        self.nulls.is_some_and(|n| n.is_null(r))
    }
}

impl RaggedColumn {
    /// Reads the offsets of the picked samples of `sources` (one array per
    /// source record batch). `inner` is the inner level of a column of lists
    /// of lists (`None` for lists of numbers, strings and binary): a width
    /// `D` that every non-null inner list must hold, or nested lists of any
    /// length.
    pub(crate) fn new(
        sources: &[&ArrayRef],
        picks: &[(usize, usize)],
        column: &Column<'_>,
        inner: Option<Inner>,
    ) -> Result<Self> {
        let mixed = || mixed_types(column);
        let row_of = |i: usize| column.rows.get(i).copied().unwrap_or(i as u64);
        // A null (sample or inner list) of sample `i`: an error naming its
        // row, or empty under a fill policy.
        let null_at = |i: usize| match column.nulls {
            NullPolicy::Error => Err(Error::NullValue {
                column: column.name.to_string(),
                row: row_of(i),
            }),
            NullPolicy::Fill(_) => Ok(()),
        };
        let mut outer = Vec::with_capacity(sources.len());
        let mut inner_levels = Vec::new();
        let mut arrays = Vec::new();
        let mut buffers = Vec::new();
        // Items (values, bytes or inner lists) each source's offsets index.
        let mut items_per_source = Vec::with_capacity(sources.len());
        // Values each source's inner lists index (lists of lists).
        let mut values_per_source = Vec::new();
        for a in sources {
            let (level, child, bytes) = Level::of(a.as_ref()).ok_or_else(mixed)?;
            outer.push(level);
            match (bytes, child, inner) {
                (Some(b), _, None) => {
                    items_per_source.push(b.len());
                    buffers.push(b);
                }
                (None, Some(child), None) => {
                    items_per_source.push(child.len());
                    arrays.push(child.clone());
                }
                (None, Some(child), Some(_)) => {
                    items_per_source.push(child.len());
                    let (level, values, _) = Level::of(child.as_ref()).ok_or_else(mixed)?;
                    let values = values.ok_or_else(mixed)?;
                    values_per_source.push(values.len());
                    inner_levels.push(level);
                    arrays.push(values.clone());
                }
                _ => return Err(mixed()),
            }
        }
        let values = if buffers.is_empty() {
            Values::Arrays(arrays)
        } else {
            Values::Bytes(buffers)
        };
        let nested = inner == Some(Inner::Nested);
        let width = match inner {
            Some(Inner::Width(d)) => d,
            _ => 1,
        };
        let mut inner_offsets = nested.then(|| vec![0i64]);
        let mut values_total = 0i64;
        let mut spans = Vec::with_capacity(picks.len());
        let mut items = Vec::new();
        let mut offsets = Vec::with_capacity(picks.len() + 1);
        let mut total = 0i64;
        offsets.push(0);
        for (i, &(s, r)) in picks.iter().enumerate() {
            let level = outer.get(s).ok_or_else(mixed)?;
            if level.is_null(r) {
                null_at(i)?;
                spans.push(Span::Empty);
                offsets.push(total);
                continue;
            }
            let (start, end) = level.offsets.span(r);
            // Arrow offsets increase within their child; a damaged file must
            // not make the reads below leave it.
            if end < start || items_per_source.get(s).is_none_or(|&len| end > len) {
                return Err(Error::Internal(format!(
                    "column {:?}: dataset row {} has offsets outside its values",
                    column.name,
                    row_of(i)
                )));
            }
            let n = end - start;
            let span = match inner_levels.get(s) {
                None if n == 0 => Span::Empty,
                None => Span::Run { source: s, start },
                Some(_) if n == 0 => Span::Empty,
                Some(lists) if nested => {
                    let ends = inner_offsets.as_mut().ok_or_else(mixed)?;
                    let values_len = values_per_source.get(s).copied().unwrap_or(0);
                    let at = items.len();
                    let mut contiguous = true;
                    let mut first = None;
                    let mut next = 0;
                    for k in start..end {
                        if lists.is_null(k) {
                            null_at(i)?;
                            // Empty under a fill policy, like a null sample.
                            ends.push(values_total);
                            items.push(None);
                            continue;
                        }
                        let (a, b) = lists.offsets.span(k);
                        if b < a || b > values_len {
                            return Err(Error::Internal(format!(
                                "column {:?}: dataset row {} has inner offsets outside its values",
                                column.name,
                                row_of(i)
                            )));
                        }
                        match first {
                            None => first = Some(a),
                            Some(_) => contiguous &= a == next,
                        }
                        next = b;
                        values_total += (b - a) as i64;
                        ends.push(values_total);
                        items.push(Some(a));
                    }
                    if contiguous {
                        // Null inner lists hold no values: the others are one run.
                        items.truncate(at);
                        Span::Run {
                            source: s,
                            start: first.unwrap_or(0),
                        }
                    } else {
                        Span::Items {
                            source: s,
                            first: at,
                        }
                    }
                }
                Some(lists) => {
                    let mut contiguous = true;
                    let mut next = lists.offsets.span(start).0;
                    let first = next;
                    for k in start..end {
                        if lists.is_null(k) {
                            null_at(i)?;
                            contiguous = false;
                            continue;
                        }
                        let (a, b) = lists.offsets.span(k);
                        if b.saturating_sub(a) != width {
                            return Err(Error::InvalidArgument(format!(
                                "column {:?}: dataset row {} holds an inner list of {} values; \
                                 every inner list of a list-of-lists column must hold {width} \
                                 (the width taken from its first rows), unless it is converted \
                                 as nested lists (TensorSpec::with_nested_list; nested=True in \
                                 mosaicrs.torch.Loader)",
                                column.name,
                                row_of(i),
                                b.saturating_sub(a)
                            )));
                        }
                        contiguous &= a == next;
                        next = b;
                    }
                    if contiguous {
                        Span::Run {
                            source: s,
                            start: first,
                        }
                    } else {
                        let at = items.len();
                        items.extend(
                            (start..end)
                                .map(|k| (!lists.is_null(k)).then(|| lists.offsets.span(k).0)),
                        );
                        Span::Items {
                            source: s,
                            first: at,
                        }
                    }
                }
            };
            spans.push(span);
            total += n as i64;
            offsets.push(total);
        }
        Ok(RaggedColumn {
            name: column.name.to_string(),
            nulls: column.nulls,
            width,
            values,
            spans,
            items,
            rows: picks.iter().enumerate().map(|(i, _)| row_of(i)).collect(),
            offsets,
            inner_offsets,
        })
    }

    /// Nested lists: the `n_lists + 1` offsets of the inner lists into the
    /// values (inner list `j` is values `inner[j]..inner[j + 1]`; sample
    /// `i` holds inner lists `offsets[i]..offsets[i + 1]`). `None` for one
    /// level of offsets.
    pub fn inner_offsets(&self) -> Option<&[i64]> {
        self.inner_offsets.as_deref()
    }

    /// Values in the longest inner list of nested lists (0 for one level or
    /// no inner lists).
    pub fn longest_inner(&self) -> usize {
        self.inner_offsets.as_deref().map_or(0, |inner| {
            inner
                .windows(2)
                .map(|w| (w[1] - w[0]) as usize)
                .max()
                .unwrap_or(0)
        })
    }

    /// The dataset row and length of the first inner list of nested lists
    /// with more than `max_inner` values, if any.
    pub fn first_inner_longer_than(&self, max_inner: usize) -> Option<(u64, usize)> {
        let inner = self.inner_offsets.as_deref()?;
        self.offsets.windows(2).enumerate().find_map(|(i, w)| {
            let lists = inner.get(w[0] as usize..=w[1] as usize)?;
            lists
                .windows(2)
                .map(|v| (v[1] - v[0]) as usize)
                .find(|&n| n > max_inner)
                .map(|n| (self.rows[i], n))
        })
    }

    /// `B + 1` offsets in items: sample `i` is items
    /// `offsets[i]..offsets[i + 1]` of the values.
    pub fn offsets(&self) -> &[i64] {
        &self.offsets
    }

    /// Samples in the batch, `B`.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True for a batch without samples.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Values per item: `D` for a column of `D`-value lists, else 1.
    pub fn inner_width(&self) -> usize {
        self.width
    }

    /// Items in all samples, `N` (`offsets[B]`).
    pub fn item_count(&self) -> usize {
        self.offsets.last().map_or(0, |&n| n as usize)
    }

    /// The number of values, `N * D` (the last inner offset of nested
    /// lists): the length of the buffer that
    /// [`fill_values`](Self::fill_values) writes.
    pub fn value_count(&self) -> usize {
        match &self.inner_offsets {
            Some(inner) => inner.last().map_or(0, |&n| n as usize),
            None => self.item_count() * self.width,
        }
    }

    /// Items in the longest sample (0 for an empty batch).
    pub fn longest(&self) -> usize {
        self.offsets
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .max()
            .unwrap_or(0)
    }

    /// The dataset row and length of the first sample with more than
    /// `max_len` items, if any.
    pub fn first_longer_than(&self, max_len: usize) -> Option<(u64, usize)> {
        self.offsets.windows(2).enumerate().find_map(|(i, w)| {
            let n = (w[1] - w[0]) as usize;
            (n > max_len).then(|| (self.rows[i], n))
        })
    }

    /// Writes the `N * D` values (sample after sample) into `out`, cast to
    /// its element type.
    pub fn fill_values(&self, out: ElementsMut<'_>) -> Result<()> {
        check(&self.name, out.len(), self.value_count())?;
        with_elements!(out, out => self.fill(out, None))
    }

    /// Writes the samples as `[B, max_len, D]` into `out`: each cut to
    /// `max_len` items (check [`first_longer_than`](Self::first_longer_than)
    /// first where cutting is an error) and followed by `pad`.
    pub fn fill_padded(&self, out: ElementsMut<'_>, max_len: usize, pad: f64) -> Result<()> {
        if self.inner_offsets.is_some() {
            return Err(Error::InvalidArgument(format!(
                "column {:?} holds nested lists: pad them with fill_padded_nested",
                self.name
            )));
        }
        check(&self.name, out.len(), self.len() * max_len * self.width)?;
        with_elements!(out, out => self.fill(out, Some((max_len, 0, pad))))
    }

    /// Writes nested lists as `[B, max_len, max_inner]` into `out`: each
    /// sample cut to `max_len` inner lists and each inner list to
    /// `max_inner` values (check [`first_longer_than`](Self::first_longer_than)
    /// and [`first_inner_longer_than`](Self::first_inner_longer_than) first
    /// where cutting is an error), the rest `pad`.
    pub fn fill_padded_nested(
        &self,
        out: ElementsMut<'_>,
        max_len: usize,
        max_inner: usize,
        pad: f64,
    ) -> Result<()> {
        if self.inner_offsets.is_none() {
            return Err(Error::InvalidArgument(format!(
                "column {:?} does not hold nested lists: pad it with fill_padded",
                self.name
            )));
        }
        check(&self.name, out.len(), self.len() * max_len * max_inner)?;
        with_elements!(out, out => self.fill(out, Some((max_len, max_inner, pad))))
    }

    fn fill<T: Element>(&self, out: &mut [T], padded: Option<Padding>) -> Result<()> {
        let column = Column {
            name: &self.name,
            rows: &self.rows,
            nulls: self.nulls,
        };
        match &self.values {
            Values::Bytes(buffers) => {
                let sources: Vec<&[u8]> = buffers.iter().map(|b| b.as_slice()).collect();
                self.fill_runs(out, padded, &column, |s, start, dst, _| {
                    copy_cast::<u8, T>(slice(&sources, s, start, dst.len(), &column)?, dst, |v| {
                        T::from_i64(i64::from(v))
                    });
                    Ok(())
                })
            }
            Values::Arrays(arrays) => {
                let Some(first) = arrays.first() else {
                    return self.fill_runs(out, padded, &column, |_, _, _, _| Ok(()));
                };
                macro_rules! fill_as {
                    ($s:ty, $this:ident, $arrays:ident, $out:ident, $padded:ident, $column:ident) => {
                        $this.fill_primitive::<$s, T>($arrays, $out, $padded, $column)
                    };
                }
                let this = self;
                let column = &column;
                downcast_source!(first.data_type() => (fill_as, this, arrays, out, padded, column),
                    else match first.data_type() {
                        DataType::Boolean => self.fill_bool(arrays, out, padded, column),
                        other => Err(Error::UnsupportedColumn {
                            name: self.name.clone(),
                            data_type: other.to_string(),
                            reason: "list elements must be numeric to become a tensor".into(),
                        }),
                    }
                )
            }
        }
    }

    fn fill_primitive<S: IntoElement, T: Element>(
        &self,
        arrays: &[ArrayRef],
        out: &mut [T],
        padded: Option<Padding>,
        column: &Column<'_>,
    ) -> Result<()> {
        let arrays: Vec<&PrimitiveArray<S>> = arrays
            .iter()
            .map(|a| a.as_primitive_opt::<S>().ok_or_else(|| mixed_types(column)))
            .collect::<Result<_>>()?;
        let slices: Vec<&[S::Native]> = arrays.iter().map(|a| a.values().as_ref()).collect();
        self.fill_runs(out, padded, column, |s, start, dst, i| {
            let src = slice(&slices, s, start, dst.len(), column)?;
            match arrays[s].nulls().filter(|n| n.null_count() > 0) {
                None => copy_cast::<S::Native, T>(src, dst, S::put),
                Some(nulls) => {
                    for (k, (d, &v)) in dst.iter_mut().zip(src).enumerate() {
                        *d = if nulls.is_null(start + k) {
                            column.null_value(i)?
                        } else {
                            S::put(v)
                        };
                    }
                }
            }
            Ok(())
        })
    }

    fn fill_bool<T: Element>(
        &self,
        arrays: &[ArrayRef],
        out: &mut [T],
        padded: Option<Padding>,
        column: &Column<'_>,
    ) -> Result<()> {
        let arrays: Vec<&BooleanArray> = arrays
            .iter()
            .map(|a| a.as_boolean_opt().ok_or_else(|| mixed_types(column)))
            .collect::<Result<_>>()?;
        self.fill_runs(out, padded, column, |s, start, dst, i| {
            let a = arrays[s];
            if start + dst.len() > a.len() {
                return Err(past_end(column));
            }
            for (k, d) in dst.iter_mut().enumerate() {
                *d = if a.is_null(start + k) {
                    column.null_value(i)?
                } else {
                    T::from_i64(i64::from(a.value(start + k)))
                };
            }
            Ok(())
        })
    }

    /// Calls `copy(source, start, dst, sample)` for each contiguous run of
    /// values, `dst` being where the run goes; fills null inner lists and
    /// padding.
    fn fill_runs<T: Element>(
        &self,
        out: &mut [T],
        padded: Option<Padding>,
        column: &Column<'_>,
        mut copy: impl FnMut(usize, usize, &mut [T], usize) -> Result<()>,
    ) -> Result<()> {
        if let Some(inner) = &self.inner_offsets {
            return self.fill_nested(out, padded, column, inner, copy);
        }
        let d = self.width;
        for (i, span) in self.spans.iter().enumerate() {
            let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
            let len = b.saturating_sub(a);
            let (base, take, room) = match padded {
                None => (a * d, len, len),
                Some((max_len, _, _)) => (i * max_len * d, len.min(max_len), max_len),
            };
            let dst = out
                .get_mut(base..base + room * d)
                .ok_or_else(|| past_end(column))?;
            let (values, rest) = dst.split_at_mut(take * d);
            match *span {
                Span::Empty => {}
                Span::Run { source, start } => copy(source, start, values, i)?,
                Span::Items { source, first } => {
                    for (k, item) in values.chunks_exact_mut(d).enumerate() {
                        match self.items.get(first + k).copied().flatten() {
                            Some(start) => copy(source, start, item, i)?,
                            None => {
                                let v = column.null_value::<T>(i)?;
                                item.fill(v);
                            }
                        }
                    }
                }
            }
            if let Some((_, _, pad)) = padded {
                rest.fill(T::from_f64(pad));
            }
        }
        Ok(())
    }

    /// [`fill_runs`](Self::fill_runs) for nested lists: flat, each sample's
    /// values at its inner offsets; padded, each inner list in its own
    /// `max_inner` row.
    fn fill_nested<T: Element>(
        &self,
        out: &mut [T],
        padded: Option<Padding>,
        column: &Column<'_>,
        inner: &[i64],
        mut copy: impl FnMut(usize, usize, &mut [T], usize) -> Result<()>,
    ) -> Result<()> {
        let at = |j: usize| {
            inner
                .get(j)
                .map(|&o| o as usize)
                .ok_or_else(|| past_end(column))
        };
        // Where inner list `k` of sample `i` (of `span`) starts in its source.
        let source_of = |span: Span, base: usize, j: usize, k: usize| -> Result<Option<_>> {
            Ok(match span {
                Span::Empty => None,
                Span::Run { source, start } => Some((source, start + at(j)? - base)),
                Span::Items { source, first } => self
                    .items
                    .get(first + k)
                    .copied()
                    .flatten()
                    .map(|start| (source, start)),
            })
        };
        for (i, &span) in self.spans.iter().enumerate() {
            let (a, b) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
            let base = at(a)?;
            match padded {
                None => {
                    let dst = out.get_mut(base..at(b)?).ok_or_else(|| past_end(column))?;
                    if let Span::Run { source, start } = span {
                        copy(source, start, dst, i)?;
                        continue;
                    }
                    for (k, j) in (a..b).enumerate() {
                        if let Some((source, start)) = source_of(span, base, j, k)? {
                            let list = dst
                                .get_mut(at(j)? - base..at(j + 1)? - base)
                                .ok_or_else(|| past_end(column))?;
                            copy(source, start, list, i)?;
                        }
                    }
                }
                Some((max_len, max_inner, pad)) => {
                    let row = max_len * max_inner;
                    if row == 0 {
                        continue;
                    }
                    let dst = out
                        .get_mut(i * row..(i + 1) * row)
                        .ok_or_else(|| past_end(column))?;
                    for (k, list) in dst.chunks_exact_mut(max_inner).enumerate() {
                        let j = a + k;
                        let mut take = 0;
                        if j < b {
                            take = (at(j + 1)? - at(j)?).min(max_inner);
                            if let Some((source, start)) = source_of(span, base, j, k)? {
                                copy(source, start, &mut list[..take], i)?;
                            }
                        }
                        list[take..].fill(T::from_f64(pad));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `(max_len, max_inner, pad)` of a padded fill (`max_inner` only for
/// nested lists).
type Padding = (usize, usize, f64);

/// `len` elements of source `s` from `start`.
#[inline]
fn slice<'a, V>(
    sources: &[&'a [V]],
    s: usize,
    start: usize,
    len: usize,
    column: &Column<'_>,
) -> Result<&'a [V]> {
    sources
        .get(s)
        .and_then(|v| v.get(start..start + len))
        .ok_or_else(|| past_end(column))
}

/// Copies `src` into `dst` (same length): a `memcpy` when `V` is `T`, else
/// `put` per value.
#[inline]
fn copy_cast<V: Copy + 'static, T: Element>(src: &[V], dst: &mut [T], put: impl Fn(V) -> T) {
    if TypeId::of::<V>() == TypeId::of::<T>() {
        // SAFETY: `V` and `T` are the same type (equal `TypeId`s), so the
        // slices have the same layout; `dst` is a unique borrow that cannot
        // overlap the shared `src`, and the lengths are equal (the caller's
        // `dst.len()` sized `src`; `min` keeps the copy inside both).
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr().cast::<T>(),
                dst.as_mut_ptr(),
                src.len().min(dst.len()),
            );
        }
    } else {
        for (d, &v) in dst.iter_mut().zip(src) {
            *d = put(v);
        }
    }
}

fn check(name: &str, len: usize, expected: usize) -> Result<()> {
    if len == expected {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "buffer for {name:?} holds {len} elements; the batch needs {expected}"
        )))
    }
}

fn past_end(column: &Column<'_>) -> Error {
    Error::Internal(format!(
        "column {:?}: a sample reads past its source's values",
        column.name
    ))
}
