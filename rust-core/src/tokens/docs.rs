//! Documents: the rows of the token column, checked and counted once, then
//! resolved a window of epoch positions at a time through the loader's
//! gather.

use arrow::array::{Array, ArrayRef, AsArray, OffsetSizeTrait};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{ArrowNativeType, DataType};

use super::fill::TokenValues;
use crate::loader::mix::MixedOrder;
use crate::loader::{EpochOrder, GatherTable, Gathered, SampleSpace};
use crate::reader::Dataset;
use crate::{Error, Result};

/// Order positions resolved per window: enough documents that the gather's
/// per-call work is small next to the copying, few enough that a window's
/// bookkeeping (32 bytes a document) stays in cache.
pub(crate) const WINDOW_DOCS: u64 = 2048;

/// Checks that `data_type` (column `column`'s) is a list of integers.
pub(crate) fn check_column_type(column: &str, data_type: &DataType) -> Result<()> {
    let ok = match data_type {
        DataType::List(f) | DataType::LargeList(f) => f.data_type().is_integer(),
        _ => false,
    };
    if ok {
        return Ok(());
    }
    Err(Error::UnsupportedColumn {
        name: column.to_string(),
        data_type: data_type.to_string(),
        reason: "but token packing needs a list of integers (token ids) per row".into(),
    })
}

/// Sums the lengths of the selected documents (`rows`, sorted, or all) of
/// column `index` of `dataset`: the stream's tokens without separators. An
/// empty or null document, or a null token, is an error naming the column
/// and the dataset row. Reads the offsets only (and the validity bitmaps).
pub(crate) fn count_tokens(
    dataset: &Dataset,
    index: usize,
    column: &str,
    rows: Option<&[u64]>,
) -> Result<u64> {
    let mut base = 0u64;
    let mut next = 0usize;
    let mut total = 0u64;
    for batch in dataset.batches() {
        let batch = batch?;
        let n = batch.num_rows() as u64;
        let selected = match rows {
            None => None,
            Some(rows) => {
                let end = next + rows[next..].partition_point(|&r| r < base + n);
                let picked = &rows[next..end];
                next = end;
                Some(picked)
            }
        };
        let array = batch.column(index);
        total += match array.data_type() {
            DataType::LargeList(_) => count_batch::<i64>(array, column, base, selected)?,
            _ => count_batch::<i32>(array, column, base, selected)?,
        };
        base += n;
    }
    Ok(total)
}

/// The tokens of the selected documents of one record batch, whose first
/// row is dataset row `base`.
fn count_batch<O: OffsetSizeTrait>(
    array: &ArrayRef,
    column: &str,
    base: u64,
    selected: Option<&[u64]>,
) -> Result<u64> {
    let list = array.as_list_opt::<O>().ok_or_else(|| mixed(column))?;
    let offsets = list.value_offsets();
    let nulls = list.logical_nulls();
    let value_nulls = list.values().logical_nulls();
    let null = |row| Error::NullValue {
        column: column.to_string(),
        row,
    };
    let doc = |r: usize| -> Result<u64> {
        let row = base + r as u64;
        if nulls.as_ref().is_some_and(|n| n.is_null(r)) {
            return Err(null(row));
        }
        let (start, end) = (offsets[r].as_usize(), offsets[r + 1].as_usize());
        if end == start {
            return Err(empty(column, row));
        }
        if let Some(v) = &value_nulls {
            if v.slice(start, end - start).null_count() > 0 {
                return Err(null(row));
            }
        }
        Ok((end - start) as u64)
    };
    match selected {
        // Every row, no nulls: the sum is the offsets' span, and an empty
        // document is two equal offsets.
        None if nulls.is_none() && value_nulls.is_none() => {
            if let Some(r) = offsets.windows(2).position(|w| w[0] == w[1]) {
                return Err(empty(column, base + r as u64));
            }
            let span = match (offsets.first(), offsets.last()) {
                (Some(first), Some(last)) => last.as_usize() - first.as_usize(),
                _ => 0,
            };
            Ok(span as u64)
        }
        None => (0..list.len()).map(doc).sum(),
        Some(picked) => picked.iter().map(|&row| doc((row - base) as usize)).sum(),
    }
}

fn empty(column: &str, row: u64) -> Error {
    Error::InvalidArgument(format!(
        "column {column:?} holds an empty document at dataset row {row}; token packing \
         needs at least one token per document (filter empty rows out, or select rows)"
    ))
}

/// `(start, len)` of document `r` of `array` in its values; a null
/// document or token is [`Error::NullValue`].
fn doc_range(array: &ArrayRef, r: usize, column: &str, row: u64) -> Result<(usize, usize)> {
    fn of<O: OffsetSizeTrait>(
        array: &ArrayRef,
        r: usize,
        column: &str,
        row: u64,
    ) -> Result<(usize, usize)> {
        let list = array.as_list_opt::<O>().ok_or_else(|| mixed(column))?;
        if list.is_null(r) {
            return Err(Error::NullValue {
                column: column.to_string(),
                row,
            });
        }
        let offsets = list.value_offsets();
        let (start, end) = (offsets[r].as_usize(), offsets[r + 1].as_usize());
        if let Some(nulls) = list.values().logical_nulls() {
            if nulls.slice(start, end - start).null_count() > 0 {
                return Err(Error::NullValue {
                    column: column.to_string(),
                    row,
                });
            }
        }
        Ok((start, end - start))
    }
    match array.data_type() {
        DataType::LargeList(_) => of::<i64>(array, r, column, row),
        _ => of::<i32>(array, r, column, row),
    }
}

fn mixed(column: &str) -> Error {
    Error::Internal(format!(
        "column {column:?} is not the list type its schema names in every record batch"
    ))
}

/// One resolved document: where its tokens are and which row it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Doc {
    /// Index into the window's sources.
    pub(crate) source: usize,
    /// First token in the source's values.
    pub(crate) start: usize,
    /// Tokens, without the separator.
    pub(crate) len: usize,
    /// Dataset row.
    pub(crate) row: u64,
    /// The mix source it comes from (0 for one dataset).
    pub(crate) stream: u32,
}

/// The documents of a window of epoch positions, resolved to their tokens.
/// Its buffers are reused from window to window.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// `(epoch, first position)`; `None` before the first load.
    key: Option<(u64, u64)>,
    docs: Vec<Doc>,
    sources: Vec<TokenValues>,
    rows: Vec<u64>,
}

impl Window {
    /// Forgets the resolved documents (another epoch or position).
    pub(crate) fn clear(&mut self) {
        self.key = None;
        self.docs.clear();
        self.sources.clear();
    }

    /// The document at `position` of `epoch`'s order, resolving the window
    /// that starts there when it is not at hand.
    #[inline]
    pub(crate) fn doc(&mut self, at: &DocSource<'_>, position: u64) -> Result<Doc> {
        if let Some((epoch, start)) = self.key {
            if epoch == at.epoch && position >= start {
                if let Some(doc) = self.docs.get((position - start) as usize) {
                    return Ok(*doc);
                }
            }
        }
        self.load(at, position)?;
        self.docs
            .first()
            .copied()
            .ok_or_else(|| Error::Internal(format!("epoch position {position} has no document")))
    }

    /// The document at `position` when this window holds it (no loading).
    #[inline]
    pub(crate) fn peek(&self, epoch: u64, position: u64) -> Option<Doc> {
        match self.key {
            Some((e, start)) if e == epoch && position >= start => {
                self.docs.get((position - start) as usize).copied()
            }
            _ => None,
        }
    }

    /// The typed token values of source `s`.
    #[inline]
    pub(crate) fn values(&self, s: usize) -> &TokenValues {
        &self.sources[s]
    }

    fn load(&mut self, at: &DocSource<'_>, start: u64) -> Result<()> {
        self.clear();
        let end = at.order.len().min(start.saturating_add(WINDOW_DOCS));
        match at.order {
            DocOrder::One { space, order } => {
                let table = at
                    .tables
                    .first()
                    .ok_or_else(|| Error::Internal("a token loader without a dataset".into()))?;
                let mut rows = std::mem::take(&mut self.rows);
                rows.clear();
                rows.extend((start..end).map(|p| space.row(order.get(p))));
                let gathered = table.gather(rows)?;
                let mut docs = std::mem::take(&mut self.docs);
                self.resolve(&gathered, 0, at.column, &mut docs)?;
                self.docs = docs;
                self.rows = gathered.into_rows();
            }
            DocOrder::Mixed(order) => {
                // One gather per source present, each in its positions'
                // order; the documents then go back into position order.
                let picks = order.picks(start..end);
                let mut rows: Vec<Vec<u64>> = vec![Vec::new(); at.tables.len()];
                let mut at_pick = Vec::with_capacity(picks.len());
                for &(s, row) in &picks {
                    let part = rows.get_mut(s).ok_or_else(|| {
                        Error::Internal(format!("the mixed order names source {s}"))
                    })?;
                    at_pick.push((s, part.len()));
                    part.push(row);
                }
                let mut per_source: Vec<Vec<Doc>> = Vec::with_capacity(rows.len());
                for (s, (table, rows)) in at.tables.iter().zip(rows).enumerate() {
                    let mut docs = Vec::with_capacity(rows.len());
                    if !rows.is_empty() {
                        let gathered = table.gather(rows)?;
                        // Fewer than 2^32 sources: they come from a Vec.
                        self.resolve(&gathered, s as u32, at.column, &mut docs)?;
                    }
                    per_source.push(docs);
                }
                self.docs
                    .extend(at_pick.iter().map(|&(s, j)| per_source[s][j]));
            }
        }
        self.key = Some((at.epoch, start));
        Ok(())
    }

    /// Appends the documents of `gathered` (of mix source `stream`) to
    /// `docs`, in its order, and its token arrays to the window's sources.
    fn resolve(
        &mut self,
        gathered: &Gathered,
        stream: u32,
        column: &str,
        docs: &mut Vec<Doc>,
    ) -> Result<()> {
        let base = self.sources.len();
        let arrays = gathered.column_sources(0);
        let mut offsets = Vec::with_capacity(arrays.len());
        for array in arrays {
            let (values, offs) = match array.data_type() {
                DataType::List(_) => {
                    let list = array.as_list_opt::<i32>().ok_or_else(|| mixed(column))?;
                    (list.values(), Offsets::Small(list.offsets().clone()))
                }
                DataType::LargeList(_) => {
                    let list = array.as_list_opt::<i64>().ok_or_else(|| mixed(column))?;
                    (list.values(), Offsets::Large(list.offsets().clone()))
                }
                _ => return Err(mixed(column)),
            };
            self.sources
                .push(TokenValues::of(values).ok_or_else(|| mixed(column))?);
            offsets.push(offs);
        }
        for (&(s, r), &row) in gathered.picks().iter().zip(gathered.rows()) {
            let (begin, stop) = offsets[s].range(r);
            if stop <= begin || stop > self.sources[base + s].len() {
                // Checked when the loader was built; a shard that changed
                // since is refused rather than read wrongly.
                return Err(empty(column, row));
            }
            docs.push(Doc {
                source: base + s,
                start: begin,
                len: stop - begin,
                row,
                stream,
            });
        }
        Ok(())
    }
}

/// A list's offsets, 32- or 64-bit.
enum Offsets {
    Small(OffsetBuffer<i32>),
    Large(OffsetBuffer<i64>),
}

impl Offsets {
    #[inline]
    fn range(&self, r: usize) -> (usize, usize) {
        match self {
            Offsets::Small(o) => (o[r].as_usize(), o[r + 1].as_usize()),
            Offsets::Large(o) => (o[r].as_usize(), o[r + 1].as_usize()),
        }
    }
}

/// What a window resolves positions with.
pub(crate) struct DocSource<'a> {
    /// The dataset, or each source of a mix.
    pub(crate) tables: &'a [GatherTable],
    pub(crate) order: DocOrder<'a>,
    pub(crate) epoch: u64,
    pub(crate) column: &'a str,
}

/// The epoch order of the documents: one dataset's, or a mix's.
#[derive(Clone, Copy)]
pub(crate) enum DocOrder<'a> {
    One {
        space: &'a SampleSpace,
        order: &'a EpochOrder,
    },
    Mixed(&'a MixedOrder),
}

impl DocOrder<'_> {
    /// Documents in the epoch.
    pub(crate) fn len(&self) -> u64 {
        match self {
            DocOrder::One { order, .. } => order.len(),
            DocOrder::Mixed(order) => order.len(),
        }
    }
}

/// The length of the document at dataset row `row` (without separator),
/// resolved on its own.
pub(crate) fn doc_len_at(table: &GatherTable, column: &str, row: u64) -> Result<u64> {
    let gathered = table.gather(vec![row])?;
    let (s, r) = gathered
        .picks()
        .first()
        .copied()
        .ok_or_else(|| Error::Internal(format!("dataset row {row} was not gathered")))?;
    let array = gathered
        .column_sources(0)
        .get(s)
        .copied()
        .cloned()
        .ok_or_else(|| mixed(column))?;
    Ok(doc_range(&array, r, column, row)?.1 as u64)
}
