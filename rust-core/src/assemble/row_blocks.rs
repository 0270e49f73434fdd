//! Row-major blocks: the feature columns of one record batch copied once,
//! sample after sample and cast to the feature array's type, and kept in
//! the dataset's decoded-batch cache. A sample's features are then one
//! contiguous copy, as from a packed (`pack.<name>`) column, instead of one
//! random read per column.
//!
//! The loader allows them ([`Gathered::row_blocks`]) for mapped datasets of
//! uncompressed shards under a global or block-local shuffle, and for a mix
//! whose every source is one. They are used
//! when the rows the order keeps reading at once fit in half of the cache's
//! limit in this form, so that the blocks of an epoch stay cached instead
//! of being built again for a sample or two; otherwise, and for any record
//! batch with nulls in these columns, the features are read column by
//! column as before.

use std::any::TypeId;
use std::marker::PhantomData;
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{self as adt, DataType};

use super::fill::{
    downcast_source, fill, prefetch, Column, Dest, Input, IntoElement, PREFETCH_AHEAD,
};
use super::{Element, NullPolicy};
use crate::loader::Gathered;
use crate::reader::{Built, Piece, RowArena, RowBlock, RowLayout};
use crate::{Error, Result};

/// Alignment of a block's first value: a cache line, so that a row of 64
/// bytes is one line.
const ALIGN: usize = 64;

/// The values of one record batch's feature columns, row-major.
pub(crate) struct Rows<T> {
    store: Store<T>,
    /// `rows * width`.
    len: usize,
}

enum Store<T> {
    /// `start` elements of padding, then the values.
    Vec { values: Vec<T>, start: usize },
    /// A piece of a loader's arena (huge pages), holding values of `T`.
    Piece(Piece, PhantomData<T>),
}

impl<T: Element> Rows<T> {
    /// The values of `columns` of `batch`, row after row, cast to `T`;
    /// `None` when a column has nulls (the column path then applies the null
    /// policy) or is not numeric. With `arena`, the values go to a piece of
    /// it.
    pub(crate) fn build(
        batch: &RecordBatch,
        columns: &[usize],
        arena: Option<&RowArena>,
    ) -> Result<Option<Self>> {
        let (n, f) = (batch.num_rows(), columns.len());
        let mut arrays = Vec::with_capacity(f);
        for &c in columns {
            let array = batch.columns().get(c).ok_or_else(|| {
                Error::Internal(format!("a row block reads column {c} of a batch of {f}"))
            })?;
            if array.null_count() > 0 || !super::is_numeric(array.data_type()) {
                return Ok(None);
            }
            arrays.push(array.as_ref());
        }
        let len = n * f;
        let piece = arena
            .filter(|_| zero_is_valid::<T>())
            .and_then(|a| a.piece(len * std::mem::size_of::<T>()));
        let mut rows = match piece {
            Some(piece) => Rows {
                store: Store::Piece(piece, PhantomData),
                len,
            },
            None => {
                let pad = ALIGN / std::mem::size_of::<T>().max(1);
                let values = vec![T::from_i64(0); len + pad];
                // Element types are 1 to 8 bytes and their sizes divide
                // ALIGN, so the misalignment is a whole number of elements.
                let start = (values.as_ptr().align_offset(ALIGN)).min(pad);
                Rows {
                    store: Store::Vec { values, start },
                    len,
                }
            }
        };
        let out = rows.values_mut();
        populate(out);
        if !transpose(&arrays, out) {
            // Columns of different types: one strided pass per column.
            let picks: Vec<(usize, usize)> = (0..n).map(|r| (0, r)).collect();
            let sources: Vec<Vec<&dyn Array>> = arrays.iter().map(|&a| vec![a]).collect();
            let column = Column {
                name: "",
                rows: &[],
                nulls: NullPolicy::Error,
            };
            for (j, source) in sources.iter().enumerate() {
                let input = Input {
                    values: source,
                    row_nulls: &[],
                    picks: &picks,
                    width: 1,
                    starts: None,
                };
                let mut dest = Dest {
                    out: &mut *out,
                    stride: f,
                    offset: j,
                };
                fill(&input, &mut dest, &column)?;
            }
        }
        Ok(Some(rows))
    }

    /// The bytes the block holds.
    pub(crate) fn bytes(&self) -> u64 {
        match &self.store {
            Store::Vec { values, .. } => (values.capacity() * std::mem::size_of::<T>()) as u64,
            Store::Piece(piece, _) => piece.len() as u64,
        }
    }

    /// Every row's values, row after row.
    pub(crate) fn values(&self) -> &[T] {
        match &self.store {
            Store::Vec { values, start } => &values[*start..*start + self.len],
            Store::Piece(piece, _) => {
                let bytes = piece.bytes();
                // SAFETY: the piece holds `len` values of `T` (its length
                // was asked for as `len * size_of::<T>()`), starts on a
                // cache line (aligned for any element type), is zero-filled
                // or written as `T`, and `T` is a number or bool, for which
                // zero bytes are a valid value (`zero_is_valid`).
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), self.len) }
            }
        }
    }

    fn values_mut(&mut self) -> &mut [T] {
        match &mut self.store {
            Store::Vec { values, start } => &mut values[*start..*start + self.len],
            Store::Piece(piece, _) => {
                let bytes = piece.bytes_mut();
                // SAFETY: as in `values`; `&mut self` makes this the only
                // reference to the piece's bytes.
                unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<T>(), self.len) }
            }
        }
    }
}

#[cfg(test)]
impl<T> Rows<T> {
    /// A block of `values` as they are.
    fn of_vec(values: Vec<T>) -> Self {
        let len = values.len();
        Rows {
            store: Store::Vec { values, start: 0 },
            len,
        }
    }
}

/// Whether `T` is one of the element types whose all-zero bytes are a
/// valid value (every built-in one: integers, floats, bool), so that it may
/// live in zero-filled arena memory.
fn zero_is_valid<T: 'static>() -> bool {
    [
        TypeId::of::<u8>(),
        TypeId::of::<i8>(),
        TypeId::of::<i16>(),
        TypeId::of::<i32>(),
        TypeId::of::<i64>(),
        TypeId::of::<f32>(),
        TypeId::of::<f64>(),
        TypeId::of::<bool>(),
    ]
    .contains(&TypeId::of::<T>())
}

/// Rows whose output a transposition writes at once: their values (up to
/// 4 KiB for 8-byte elements) stay in L1 while each group of columns is
/// read.
const TILE_ROWS: usize = 64;

/// Every row of `columns` (one record batch's arrays, all of one primitive
/// type, no nulls) into rows of `out` (`out[i * columns.len() + j]` = row
/// `i` of column `j`), cast to `T`. Returns false (and writes nothing) when
/// the columns are not all of one primitive type without nulls.
fn transpose<T: Element>(columns: &[&dyn Array], out: &mut [T]) -> bool {
    let Some(first) = columns.first() else {
        return false;
    };
    macro_rules! transpose_as {
        ($s:ty, $columns:ident, $out:ident) => {
            transpose_typed::<$s, T>($columns, $out)
        };
    }
    downcast_source!(first.data_type() => (transpose_as, columns, out), else false)
}

fn transpose_typed<S: IntoElement, T: Element>(columns: &[&dyn Array], out: &mut [T]) -> bool {
    let mut values: Vec<&[S::Native]> = Vec::with_capacity(columns.len());
    for array in columns {
        match array.as_primitive_opt::<S>() {
            Some(a) if a.null_count() == 0 => values.push(a.values().as_ref()),
            _ => return false,
        }
    }
    let n = out.len() / values.len().max(1);
    if values.iter().any(|v| v.len() < n) {
        return false;
    }
    transpose_runs::<S, T>(&values, out);
    true
}

/// Row `i` of every run into `out[i * f..(i + 1) * f]` (`f` runs, each at
/// least `out.len() / f` long), a tile of rows at a time. The columns go in
/// groups of 8, 4, then 1, whose width the compiler knows: a row takes a
/// group's values in one contiguous store instead of one strided store per
/// column.
fn transpose_runs<S: IntoElement, T: Element>(runs: &[&[S::Native]], out: &mut [T]) {
    let f = runs.len();
    if f == 0 {
        return;
    }
    for (t, tile) in out.chunks_mut(TILE_ROWS * f).enumerate() {
        let first = t * TILE_ROWS;
        let mut j = 0;
        while j + 8 <= f {
            transpose_group::<8, S, T>(runs, j, first, tile);
            j += 8;
        }
        if j + 4 <= f {
            transpose_group::<4, S, T>(runs, j, first, tile);
            j += 4;
        }
        while j < f {
            transpose_group::<1, S, T>(runs, j, first, tile);
            j += 1;
        }
    }
}

/// Columns `j..j + G` of the tile's rows (`tile`: whole rows from row
/// `first`).
#[inline(always)]
fn transpose_group<const G: usize, S: IntoElement, T: Element>(
    runs: &[&[S::Native]],
    j: usize,
    first: usize,
    tile: &mut [T],
) {
    let f = runs.len();
    let rows = tile.len() / f;
    // In range: the caller's runs are long enough for every tile, and
    // `j + G <= f`.
    let group: [&[S::Native]; G] = std::array::from_fn(|k| &runs[j + k][first..first + rows]);
    for (r, row) in tile.chunks_exact_mut(f).enumerate() {
        let values: [T; G] = std::array::from_fn(|k| S::put(group[k][r]));
        row[j..j + G].copy_from_slice(&values);
    }
}

/// Asks the kernel to back `values` with memory now, in one call, instead
/// of one page fault per page as the transposition first writes each page:
/// a fresh block's faults cost as much as the transposition itself. The
/// contents are unchanged; a kernel without `MADV_POPULATE_WRITE` (before
/// Linux 5.14) refuses, and the pages fault in as before.
fn populate<T>(values: &mut [T]) {
    #[cfg(target_os = "linux")]
    {
        const PAGE: usize = 4096;
        let bytes = std::mem::size_of_val(values);
        let at = values.as_mut_ptr() as usize;
        let first = at.next_multiple_of(PAGE);
        let end = (at + bytes) / PAGE * PAGE;
        if end > first {
            // SAFETY: [first, end) lies within `values`, which this function
            // borrows mutably; MADV_POPULATE_WRITE only faults the pages in
            // as a write would, leaving their contents as they are, and
            // fails without effect on kernels that lack it.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    end - first,
                    libc::MADV_POPULATE_WRITE,
                );
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = values;
}

/// Writes the `[B, F]` features of `g` (`features`: their positions in
/// `g`'s schema) into `out` from the row blocks of its sources, building
/// those not cached yet. False, with nothing written, when `g` allows no
/// row blocks, they would not fit the cache, or a source has none.
pub(crate) fn fill_features<T: Element>(
    features: &[usize],
    g: &Gathered,
    out: &mut [T],
) -> Result<bool> {
    let f = features.len();
    let Some((sources, ids)) = g.row_blocks() else {
        return Ok(false);
    };
    // One column is one read per sample already.
    if f < 2 || g.is_empty() {
        return Ok(false);
    }
    let row_bytes = (f * std::mem::size_of::<T>()) as u64;
    if sources
        .iter()
        .any(|s| s.working_rows.saturating_mul(row_bytes) > s.cache.capacity() / 2)
    {
        return Ok(false);
    }
    let layout = RowLayout {
        columns: features.iter().map(|&c| g.source_column(c)).collect(),
        element: TypeId::of::<T>(),
    };
    // One table per dataset: the blocks this loader has read, by entry.
    let tables = sources
        .iter()
        .map(|s| s.table(&layout))
        .collect::<Result<Vec<_>>>()?;
    let mut found: Vec<Found<'_>> = Vec::with_capacity(ids.len());
    let mut hits = vec![0u64; sources.len()];
    // Every source's block is looked up (and built) even after one is
    // missing: later batches need them. A block that another worker is
    // building is left for a second pass, so that workers starting an
    // epoch together build different blocks instead of waiting in turn.
    let mut busy = Vec::new();
    for wait in [false, true] {
        let first = if wait { 0..0 } else { 0..ids.len() };
        for s in first.chain(std::mem::take(&mut busy)) {
            let id = ids[s];
            let (Some(source), Some(table)) = (sources.get(id.dataset), tables.get(id.dataset))
            else {
                return Err(Error::Internal(format!(
                    "a row block of dataset {} of {}",
                    id.dataset,
                    sources.len()
                )));
            };
            if let Some(block) = table.get(id.entry) {
                hits[id.dataset] += 1;
                put(&mut found, s, Found::Kept(block));
                continue;
            }
            let built = source
                .cache
                .row_block(id.shard, id.batch, table.id, wait, || {
                    Ok(
                        Rows::<T>::build(g.source_batch(s), &table.layout.columns, table.arena())?
                            .map(|rows| {
                                let bytes = rows.bytes();
                                (Arc::new(rows) as RowBlock, bytes)
                            }),
                    )
                })?;
            let block = match built {
                Built::Ready(block) => block,
                Built::Busy => {
                    busy.push(s);
                    put(&mut found, s, Found::Held(None));
                    continue;
                }
            };
            let block = match table.keeps() {
                true => Found::Kept(table.keep(id.entry, block)?),
                false => Found::Held(block),
            };
            put(&mut found, s, block);
        }
    }
    for (source, hits) in sources.iter().zip(hits) {
        source.cache.count_row_hits(hits);
    }
    let mut slices: Vec<&[T]> = Vec::with_capacity(found.len());
    for block in &found {
        let (Found::Kept(Some(block)) | Found::Held(Some(block))) = block else {
            return Ok(false);
        };
        let rows = block
            .downcast_ref::<Rows<T>>()
            .ok_or_else(|| Error::Internal("a row block of another element type".into()))?;
        slices.push(rows.values());
    }
    let picks = g.picks();
    // A width the compiler knows turns each row's copy into a few vector
    // moves instead of a call to `memcpy`.
    match f {
        2 => copy_rows(out, &slices, picks, 2)?,
        4 => copy_rows(out, &slices, picks, 4)?,
        8 => copy_rows(out, &slices, picks, 8)?,
        16 => copy_rows(out, &slices, picks, 16)?,
        32 => copy_rows(out, &slices, picks, 32)?,
        _ => copy_rows(out, &slices, picks, f)?,
    }
    Ok(true)
}

/// Row `r` of `slices[s]` (rows of `f` values) into row `i` of `out` for
/// each pick `(s, r)`, asking for the row of pick `i + PREFETCH_AHEAD`
/// meanwhile.
#[inline(always)]
fn copy_rows<T: Element>(
    out: &mut [T],
    slices: &[&[T]],
    picks: &[(usize, usize)],
    f: usize,
) -> Result<()> {
    for (i, (row, &(s, r))) in out.chunks_exact_mut(f).zip(picks).enumerate() {
        if let Some(&(s, r)) = picks.get(i + PREFETCH_AHEAD) {
            // The row's first and last values: one line when the row is a
            // line, two when it straddles one.
            for value in [slices[s].get(r * f), slices[s].get(r * f + f - 1)]
                .into_iter()
                .flatten()
            {
                prefetch(value);
            }
        }
        let values = slices[s].get(r * f..(r + 1) * f).ok_or_else(|| {
            Error::Internal(format!("sample {i} reads past its source's row block"))
        })?;
        row.copy_from_slice(values);
    }
    Ok(())
}

/// Sets `found[s]`, the block of source `s` (sources come in order in the
/// first pass, and again out of order in the second).
fn put<'a>(found: &mut Vec<Found<'a>>, s: usize, block: Found<'a>) {
    match found.get_mut(s) {
        Some(slot) => *slot = block,
        None => found.push(block),
    }
}

/// A source's block (`None`: its batch cannot take the layout): in the
/// loader's table, or held for this batch only.
enum Found<'a> {
    Kept(&'a Option<RowBlock>),
    Held(Option<RowBlock>),
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{AsArray, Float32Array, Float64Array, Int32Array, Int64Array};
    use arrow::datatypes::{DataType, Field, Float32Type, Schema};

    use super::*;
    use crate::assemble::{BatchPlan, ElementKind, ElementsMut, TensorSpec};
    use crate::loader::{Loader, LoaderConfig, ShuffleMode};
    use crate::reader::{Dataset, ReadOptions};
    use crate::testing::write_partitions;
    use crate::writer::{SaveMode, WriterOptions};

    /// `n` rows in record batches of 100: `a` float32, `b` float64, `c`
    /// int32 (row-derived values), `label` int64; `nulls` puts a null in
    /// `b` of row 150.
    fn dataset(dir: &std::path::Path, n: i64, nulls: bool) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Float32, true),
            Field::new("b", DataType::Float64, true),
            Field::new("c", DataType::Int32, true),
            Field::new("label", DataType::Int64, false),
        ]));
        let batches: Vec<RecordBatch> = (0..n)
            .step_by(100)
            .map(|start| {
                let rows = start..(start + 100).min(n);
                let b = Float64Array::from_iter(
                    rows.clone()
                        .map(|r| (!(nulls && r == 150)).then_some(r as f64 * 0.25 - 3.0)),
                );
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(Float32Array::from_iter_values(
                            rows.clone().map(|r| r as f32 + 0.5),
                        )),
                        Arc::new(b),
                        Arc::new(Int32Array::from_iter_values(
                            rows.clone().map(|r| (r * 7 % 1000) as i32),
                        )),
                        Arc::new(Int64Array::from_iter_values(rows.map(|r| r % 10))),
                    ],
                )
                .unwrap()
            })
            .collect();
        write_partitions(
            dir,
            &schema,
            "w",
            [&batches[..]],
            WriterOptions::default(),
            SaveMode::ErrorIfExists,
        )
        .unwrap();
    }

    fn open(dir: &std::path::Path, cache_bytes: u64) -> Arc<Dataset> {
        let read = ReadOptions {
            batch_cache_bytes: cache_bytes,
            ..Default::default()
        };
        Arc::new(Dataset::open_with(dir, &read).unwrap())
    }

    /// Every batch of one epoch: the features by the plan (`kind`) and by
    /// the column path (Arrow `interleave`, then the same casts), equal.
    fn check_epoch<T: Element + PartialEq + std::fmt::Debug>(
        dataset: &Arc<Dataset>,
        shuffle: ShuffleMode,
        kind: ElementKind,
        wrap: fn(&mut [T]) -> ElementsMut<'_>,
    ) -> usize {
        let config = LoaderConfig {
            batch_size: 64,
            seed: 3,
            shuffle,
            workers: 2,
            ..LoaderConfig::default()
        };
        let mut loader = Loader::new(Arc::clone(dataset), config).unwrap();
        let spec = TensorSpec::features(["c", "a", "b"], kind).with_column("label");
        let plan = BatchPlan::new(loader.schema(), &spec).unwrap();
        let epoch = loader
            .epoch_with(move |g| {
                let mut out = vec![T::from_i64(0); g.len() * 3];
                plan.fill_features(g, wrap(&mut out))?;
                Ok((out, g.to_record_batch()?))
            })
            .unwrap();
        let mut batches = 0;
        for batch in epoch {
            let (out, table) = batch.unwrap().data;
            let a = table
                .column_by_name("a")
                .unwrap()
                .as_primitive::<Float32Type>();
            let b = table
                .column_by_name("b")
                .unwrap()
                .as_primitive::<arrow::datatypes::Float64Type>();
            let c = table
                .column_by_name("c")
                .unwrap()
                .as_primitive::<arrow::datatypes::Int32Type>();
            for i in 0..table.num_rows() {
                let want = [
                    T::from_i64(i64::from(c.value(i))),
                    T::from_f64(f64::from(a.value(i))),
                    T::from_f64(b.value(i)),
                ];
                assert_eq!(&out[i * 3..i * 3 + 3], &want, "sample {i}");
            }
            batches += 1;
        }
        batches
    }

    fn ready(built: Built) -> Option<RowBlock> {
        match built {
            Built::Ready(block) => block,
            Built::Busy => panic!("a waiting lookup found its block busy"),
        }
    }

    /// `f` columns of `n` rows of Arrow type `A` (row `i` of column `j`:
    /// `(i * 7 + j * 13) % 100`) transposed into `T`: every value where a
    /// loop over rows and columns puts it.
    fn check_transpose<A: IntoElement, T: Element + PartialEq + std::fmt::Debug>(
        n: usize,
        f: usize,
    ) {
        use arrow::array::PrimitiveArray;
        use arrow::datatypes::ArrowNativeType;
        let value = |i: usize, j: usize| A::Native::usize_as((i * 7 + j * 13) % 100);
        let columns: Vec<PrimitiveArray<A>> = (0..f)
            .map(|j| PrimitiveArray::<A>::from_iter_values((0..n).map(|i| value(i, j))))
            .collect();
        let arrays: Vec<&dyn Array> = columns.iter().map(|c| c as &dyn Array).collect();
        let mut out = vec![T::from_i64(1); n * f];
        assert!(transpose(&arrays, &mut out), "{} x {f}", A::DATA_TYPE);
        for i in 0..n {
            for j in 0..f {
                assert_eq!(
                    out[i * f + j],
                    A::put::<T>(value(i, j)),
                    "{} rows {n}, columns {f}: row {i}, column {j}",
                    A::DATA_TYPE
                );
            }
        }
    }

    #[test]
    fn the_transposition_puts_every_value_of_every_width_in_place() {
        use arrow::datatypes::*;
        // Tiles of 64 rows and groups of 8, 4 and 1 columns: row counts
        // around a tile, column counts that leave every kind of remainder.
        for n in [0, 1, 3, 63, 64, 65, 131] {
            for f in [1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17] {
                // Every source width.
                check_transpose::<Int8Type, f32>(n, f);
                check_transpose::<UInt8Type, f32>(n, f);
                check_transpose::<Int16Type, f32>(n, f);
                check_transpose::<UInt16Type, f32>(n, f);
                check_transpose::<Int32Type, f32>(n, f);
                check_transpose::<Float32Type, f32>(n, f);
                check_transpose::<Date32Type, f32>(n, f);
                check_transpose::<Int64Type, f32>(n, f);
                check_transpose::<UInt64Type, f32>(n, f);
                check_transpose::<Float64Type, f32>(n, f);
                check_transpose::<TimestampMicrosecondType, f32>(n, f);
                // Every element width.
                check_transpose::<Float32Type, u8>(n, f);
                check_transpose::<Int16Type, i8>(n, f);
                check_transpose::<Int8Type, i16>(n, f);
                check_transpose::<Float64Type, i32>(n, f);
                check_transpose::<Int32Type, i64>(n, f);
                check_transpose::<Float32Type, f64>(n, f);
                check_transpose::<Int64Type, f64>(n, f);
                check_transpose::<Int32Type, bool>(n, f);
            }
        }
        // Mixed types, a null or a column too short: nothing written.
        let a = Float32Array::from(vec![1.0, 2.0]);
        let b = Float64Array::from(vec![1.0, 2.0]);
        let nulls = Float32Array::from(vec![Some(1.0), None]);
        let short = Float32Array::from(vec![1.0]);
        for columns in [[&a as &dyn Array, &b], [&a, &nulls], [&a, &short]] {
            let mut out = [7f32; 4];
            assert!(!transpose(&columns, &mut out));
            assert_eq!(out, [7.0; 4]);
        }
    }

    #[test]
    fn row_blocks_hold_the_values_of_the_column_path_in_every_kind() {
        let dir = tempfile::tempdir().unwrap();
        dataset(dir.path(), 1000, false);
        let ds = open(dir.path(), 1 << 20);
        assert_eq!(
            check_epoch::<f32>(&ds, ShuffleMode::Global, ElementKind::F32, |o| {
                ElementsMut::F32(o)
            }),
            15
        );
        let built = ds.batch_cache_stats();
        // One block per record batch, built once, then served.
        assert_eq!(built.row_block_misses, 10, "{built:?}");
        assert!(built.row_block_hits > 0, "{built:?}");
        check_epoch::<f32>(&ds, ShuffleMode::Global, ElementKind::F32, |o| {
            ElementsMut::F32(o)
        });
        assert_eq!(ds.batch_cache_stats().row_block_misses, 10);
        // Other kinds are other layouts, each cast once.
        check_epoch::<f64>(&ds, ShuffleMode::Global, ElementKind::F64, |o| {
            ElementsMut::F64(o)
        });
        check_epoch::<i32>(
            &ds,
            ShuffleMode::BlockLocal {
                shards_per_block: 1,
            },
            ElementKind::I32,
            |o| ElementsMut::I32(o),
        );
        check_epoch::<i16>(&ds, ShuffleMode::Global, ElementKind::I16, |o| {
            ElementsMut::I16(o)
        });
        let stats = ds.batch_cache_stats();
        assert_eq!(stats.row_block_misses, 40, "{stats:?}");
        assert!(stats.bytes <= stats.capacity_bytes);
        // A sequential read copies runs: no blocks.
        check_epoch::<f32>(&ds, ShuffleMode::Sequential, ElementKind::F32, |o| {
            ElementsMut::F32(o)
        });
        assert_eq!(ds.batch_cache_stats().row_block_misses, 40);
    }

    /// One epoch of a mix of `sources`: the features by the plan equal to
    /// the column path's, batch by batch.
    fn check_mix(sources: &[Arc<Dataset>]) {
        use crate::loader::mix::{MixConfig, Stream};
        let streams = sources
            .iter()
            .enumerate()
            .map(|(i, d)| Stream::new(Arc::clone(d)).weight(1.0 + i as f64))
            .collect();
        let config = LoaderConfig {
            batch_size: 30,
            seed: 5,
            workers: 2,
            ..LoaderConfig::default()
        };
        let mut loader = Loader::mixed(streams, MixConfig::default(), config).unwrap();
        let spec = TensorSpec::features(["c", "a", "b"], ElementKind::F32);
        let plan = BatchPlan::new(loader.schema(), &spec).unwrap();
        let epoch = loader
            .epoch_with(move |g| {
                let mut out = vec![0f32; g.len() * 3];
                plan.fill_features(g, ElementsMut::F32(&mut out))?;
                let mut columns = vec![0f32; g.len() * 3];
                for (j, c) in [2, 0, 1].into_iter().enumerate() {
                    let column = g.take_column(c)?;
                    let column = arrow::compute::cast(&column, &DataType::Float32).unwrap();
                    let column = column.as_primitive::<Float32Type>();
                    for i in 0..g.len() {
                        columns[i * 3 + j] = column.value(i);
                    }
                }
                Ok((out, columns))
            })
            .unwrap();
        let mut batches = 0;
        for batch in epoch {
            let (out, columns) = batch.unwrap().data;
            assert_eq!(out, columns);
            batches += 1;
        }
        assert!(batches > 0);
    }

    #[test]
    fn a_mix_reads_row_blocks_of_every_source() {
        let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        dataset(dirs[0].path(), 1000, false);
        dataset(dirs[1].path(), 300, false);
        let sources: Vec<_> = dirs.iter().map(|d| open(d.path(), 1 << 20)).collect();
        check_mix(&sources);
        // Each source's blocks in its own cache: one per record batch.
        let misses: Vec<u64> = sources
            .iter()
            .map(|d| d.batch_cache_stats().row_block_misses)
            .collect();
        assert_eq!(misses, [10, 3]);
        assert!(sources
            .iter()
            .all(|d| d.batch_cache_stats().row_block_hits > 0));
        // One dataset twice: one cache, one set of blocks.
        let twice = open(dirs[0].path(), 1 << 20);
        check_mix(&[Arc::clone(&twice), Arc::clone(&twice)]);
        assert_eq!(twice.batch_cache_stats().row_block_misses, 10);
        // A source whose cache is too small puts the whole mix on the
        // column path.
        let small = open(dirs[1].path(), 2_000);
        let big = open(dirs[0].path(), 1 << 20);
        check_mix(&[Arc::clone(&big), small]);
        assert_eq!(big.batch_cache_stats().row_block_misses, 0);
    }

    #[test]
    fn a_cache_too_small_for_the_epoch_keeps_the_column_path() {
        let dir = tempfile::tempdir().unwrap();
        dataset(dir.path(), 1000, false);
        // 1,000 rows of 3 f32 need 12,000 bytes: more than half of 20,000.
        let ds = open(dir.path(), 20_000);
        check_epoch::<f32>(&ds, ShuffleMode::Global, ElementKind::F32, |o| {
            ElementsMut::F32(o)
        });
        let stats = ds.batch_cache_stats();
        assert_eq!((stats.row_block_misses, stats.row_block_hits), (0, 0));
        assert_eq!(stats.bytes, 0);
        let off = open(dir.path(), 0);
        check_epoch::<f32>(&off, ShuffleMode::Global, ElementKind::F32, |o| {
            ElementsMut::F32(o)
        });
        assert_eq!(off.batch_cache_stats().row_block_misses, 0);
    }

    #[test]
    fn a_batch_with_nulls_is_read_column_by_column_under_the_null_policy() {
        let dir = tempfile::tempdir().unwrap();
        dataset(dir.path(), 1000, true);
        let ds = open(dir.path(), 1 << 20);
        let spec = TensorSpec::features(["a", "b"], ElementKind::F32)
            .with_nulls(crate::assemble::NullPolicy::Fill(-1.0));
        let config = LoaderConfig {
            batch_size: 1000,
            seed: 3,
            workers: 1,
            columns: Some(vec!["a".into(), "b".into()]),
            ..LoaderConfig::default()
        };
        let mut loader = Loader::new(Arc::clone(&ds), config).unwrap();
        let plan = BatchPlan::new(loader.schema(), &spec).unwrap();
        let batch = loader
            .epoch_with(move |g| {
                let mut out = vec![0f32; g.len() * 2];
                plan.fill_features(g, ElementsMut::F32(&mut out))?;
                Ok(out)
            })
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        for (i, &row) in batch.rows.iter().enumerate() {
            let b = if row == 150 {
                -1.0
            } else {
                row as f32 * 0.25 - 3.0
            };
            assert_eq!(
                batch.data[i * 2..i * 2 + 2],
                [row as f32 + 0.5, b],
                "row {row}"
            );
        }
        // The batch holding row 150 has no block; that answer is kept.
        let stats = ds.batch_cache_stats();
        assert_eq!(stats.row_block_misses, 10, "{stats:?}");
        // Under the error policy, the row is named as on the column path.
        let spec = TensorSpec::features(["a", "b"], ElementKind::F32);
        let plan = BatchPlan::new(loader.schema(), &spec).unwrap();
        let err = loader
            .epoch_with(move |g| {
                let mut out = vec![0f32; g.len() * 2];
                plan.fill_features(g, ElementsMut::F32(&mut out))
            })
            .unwrap()
            .next()
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(err, Error::NullValue { ref column, row: 150 } if column == "b"),
            "{err}"
        );
    }

    #[test]
    fn row_blocks_stay_within_the_limit_and_are_evicted() {
        let cache = crate::reader::BatchCache::new(10_000).unwrap();
        let layout = RowLayout {
            columns: vec![0, 1],
            element: TypeId::of::<f32>(),
        };
        let id = cache.layout_id(&layout).unwrap();
        assert_eq!(cache.layout_id(&layout.clone()).unwrap(), id);
        let other = RowLayout {
            element: TypeId::of::<f64>(),
            ..layout
        };
        assert_ne!(cache.layout_id(&other).unwrap(), id);
        let block = |b: usize| {
            cache
                .row_block(0, b, id, true, || {
                    let rows = Rows::<f32>::of_vec(vec![b as f32; 500]);
                    let bytes = rows.bytes();
                    Ok(Some((Arc::new(rows) as RowBlock, bytes)))
                })
                .map(ready)
                .unwrap()
                .unwrap()
        };
        let first = block(0);
        assert_eq!(first.downcast_ref::<Rows<f32>>().unwrap().values()[0], 0.0);
        block(0);
        assert_eq!(cache.stats().row_block_hits, 1);
        for b in 1..20 {
            assert_eq!(
                block(b).downcast_ref::<Rows<f32>>().unwrap().values()[7],
                b as f32
            );
            assert!(cache.stats().bytes <= 10_000, "{:?}", cache.stats());
        }
        let stats = cache.stats();
        assert_eq!(stats.row_block_misses, 20);
        assert!(stats.evictions >= 15, "{stats:?}");
        // A batch that cannot take the layout is answered from the cache
        // the second time: the build runs once.
        let mut builds = 0;
        for _ in 0..2 {
            let none = cache.row_block(1, 0, id, true, || {
                builds += 1;
                Ok(None)
            });
            assert!(ready(none.unwrap()).is_none());
        }
        assert_eq!(builds, 1);
        // While one thread builds a block, another that does not wait is
        // told so, and one that waits gets the builder's block.
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let cache = &cache;
            let builder = scope.spawn(move || {
                let built = cache.row_block(2, 0, id, true, || {
                    started_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    let rows = Rows::<f32>::of_vec(vec![5.0; 10]);
                    Ok(Some((Arc::new(rows) as RowBlock, 40)))
                });
                ready(built.unwrap()).unwrap()
            });
            started_rx.recv().unwrap();
            let busy = cache.row_block(2, 0, id, false, || panic!("built twice"));
            assert!(matches!(busy.unwrap(), Built::Busy));
            go_tx.send(()).unwrap();
            let built = builder.join().unwrap();
            let got = cache.row_block(2, 0, id, true, || panic!("built twice"));
            assert!(Arc::ptr_eq(&built, &ready(got.unwrap()).unwrap()));
        });
        // Decoded batches and row blocks of one batch are apart.
        let decoded = cache.get_or_decode(0, 19, None, || {
            RecordBatch::try_from_iter([("x", Arc::new(Int64Array::from(vec![1])) as _)])
                .map_err(|e| Error::arrow("test", e))
        });
        assert_eq!(decoded.unwrap().num_rows(), 1);
    }
}
