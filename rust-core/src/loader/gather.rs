//! Resolving dataset rows to the record batches that hold them, mapped or
//! streamed, through the reader's row index.
//!
//! A worker turns the rows of one batch into [`Gathered`]: the source record
//! batches (zero-copy views into the mapped shards for uncompressed data) and
//! one `(source, row)` pick per sample. Assemblers then copy each value once,
//! from the mapping straight into the output (an Arrow batch, or a tensor in
//! pinned memory), with no intermediate Arrow `take`.

use std::sync::{Arc, Mutex, OnceLock};

use arrow::array::{Array, ArrayRef};
use arrow::compute::interleave;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::ShuffleMode;
use crate::format::Compression;
#[cfg(unix)]
use crate::reader::StreamedDataset;
use crate::reader::{
    pick_mixed, BatchCache, DataSource, Dataset, Picks, RowArena, RowBlock, RowLayout,
};
use crate::{Error, Result};

/// Where the sources of a gather may keep row blocks (row-major copies of
/// the feature columns, built by the assembler): the dataset's
/// decoded-batch cache, and the rows that the epoch's order keeps reading
/// at once, against which the assembler weighs the cache's limit.
#[derive(Debug)]
pub(crate) struct RowBlockSource {
    pub(crate) cache: Arc<BatchCache>,
    /// Rows of the record batches a stretch of the order comes back to:
    /// the whole dataset for a global shuffle, two blocks for block-local.
    pub(crate) working_rows: u64,
    /// Row index entries (the resident batches) when the loader keeps
    /// the blocks it reads (a global shuffle, whose working rows are the
    /// whole dataset); 0 when it looks each one up in the cache (a
    /// block-local shuffle moves on to other record batches).
    entries: usize,
    /// The blocks this gather's batches have read, per layout.
    tables: Mutex<Vec<Arc<BlockTable>>>,
}

impl RowBlockSource {
    /// The table of `layout`'s blocks (made empty on first use).
    pub(crate) fn table(&self, layout: &RowLayout) -> Result<Arc<BlockTable>> {
        // A panic elsewhere cannot leave the list half-changed.
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(table) = tables.iter().find(|t| &t.layout == layout) {
            return Ok(Arc::clone(table));
        }
        let table = Arc::new(BlockTable {
            layout: layout.clone(),
            id: self.cache.layout_id(layout)?,
            blocks: (0..self.entries).map(|_| OnceLock::new()).collect(),
            keeps: self.entries > 0,
            arena: (self.entries > 0).then(RowArena::default),
        });
        tables.push(Arc::clone(&table));
        Ok(table)
    }
}

/// The row blocks of one layout that a loader has read, by row index entry:
/// after the first read of a block, a sample finds it by index, with no
/// hashing, lock or reference count shared with the other workers (each of
/// which, on a batch of 256 samples from 160 record batches, costs more
/// than the copies). The blocks are the cache's (built and weighed there);
/// the table keeps them for as long as the loader lives. Only under a
/// global shuffle, whose blocks of a whole epoch fit in half of the
/// cache's limit (see `assemble::row_blocks`): a block-local one would keep
/// every block it has passed.
pub(crate) struct BlockTable {
    pub(crate) layout: RowLayout,
    /// The layout's id in the cache.
    pub(crate) id: u32,
    blocks: Box<[OnceLock<Option<RowBlock>>]>,
    keeps: bool,
    /// Where the blocks this table keeps are built (on huge pages), when it
    /// keeps them.
    arena: Option<RowArena>,
}

impl BlockTable {
    /// Whether the table keeps the blocks it is given (see
    /// [`keep`](Self::keep)); otherwise it is empty.
    pub(crate) fn keeps(&self) -> bool {
        self.keeps
    }

    /// Memory for the blocks this table keeps (they live as long as the
    /// loader, so they are carved from shared huge-page-backed chunks).
    pub(crate) fn arena(&self) -> Option<&RowArena> {
        self.arena.as_ref()
    }

    /// The block of entry `entry`, if this table has it yet (`Some(None)`:
    /// the batch cannot take the layout).
    #[inline]
    pub(crate) fn get(&self, entry: usize) -> Option<&Option<RowBlock>> {
        self.blocks.get(entry).and_then(OnceLock::get)
    }

    /// Keeps `block` as entry `entry`'s (the first one kept stays) and
    /// returns the kept one.
    pub(crate) fn keep(&self, entry: usize, block: Option<RowBlock>) -> Result<&Option<RowBlock>> {
        let cell = self.blocks.get(entry).ok_or_else(|| {
            Error::Internal(format!(
                "row index entry {entry} is past the {} of the row blocks' table",
                self.blocks.len()
            ))
        })?;
        Ok(cell.get_or_init(|| block))
    }
}

impl std::fmt::Debug for BlockTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.blocks.iter().filter(|b| b.get().is_some()).count();
        f.debug_struct("BlockTable")
            .field("layout", &self.layout)
            .field("held", &held)
            .finish()
    }
}

/// Where a source record batch's row block is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowBlockId {
    /// The dataset, numbering a gather's [`RowBlockSource`]s.
    pub(crate) dataset: usize,
    pub(crate) shard: usize,
    /// The record batch within the shard.
    pub(crate) batch: usize,
    /// The batch's row index entry in its dataset (the slot of its
    /// dataset's [`BlockTable`]).
    pub(crate) entry: usize,
}

/// The loader's gather: rows to picks through the reader's row index,
/// then the projected record batches they read. For uncompressed mapped
/// datasets the projected batches of every index entry are kept (views into
/// the mapping, costing no memory) and shared by every batch.
pub(crate) struct GatherTable {
    /// Where the rows are: every shard mapped, or shards fetched through
    /// the cache a block at a time (the rows gathered must then be in
    /// acquired shards).
    source: DataSource,
    /// The loader's columns, as column numbers of the shards' batches.
    projection: Arc<[usize]>,
    schema: SchemaRef,
    /// The batch of each row index entry, when every shard of a mapped
    /// dataset is uncompressed.
    resident: Option<Arc<[Arc<RecordBatch>]>>,
    /// Set by [`with_row_blocks`](Self::with_row_blocks): one source, in
    /// the form a [`Gathered`] shares.
    row_blocks: Option<Arc<[Arc<RowBlockSource>]>>,
}

impl GatherTable {
    /// The gather of `source`'s columns at `projection`.
    pub(crate) fn new(source: DataSource, projection: Vec<usize>) -> Result<Self> {
        let schema = project_schema(&source.schema(), &projection)?;
        let resident = match &source {
            DataSource::Mapped(dataset) => resident_batches(dataset)?,
            #[cfg(unix)]
            DataSource::Streamed(_) => None,
        };
        Ok(GatherTable {
            source,
            projection: projection.into(),
            schema,
            resident,
            row_blocks: None,
        })
    }

    /// Lets the assembler keep row-major copies of its feature columns in
    /// the dataset's decoded-batch cache: for a mapped dataset of
    /// uncompressed shards, under a shuffle that comes back to the same
    /// record batches (global or block-local; a sequential read copies
    /// contiguous runs anyway). Compressed and streamed shards keep their
    /// decoded batches in that cache and are read column by column.
    pub(crate) fn with_row_blocks(mut self, shuffle: ShuffleMode) -> Self {
        let DataSource::Mapped(dataset) = &self.source else {
            return self;
        };
        let Some(resident) = &self.resident else {
            return self;
        };
        let entries = resident.len();
        let entries = match shuffle {
            ShuffleMode::Global => entries,
            _ => 0,
        };
        let working_rows = match shuffle {
            ShuffleMode::Global => dataset.num_rows(),
            ShuffleMode::BlockLocal { shards_per_block } => {
                // The block being read and the next one.
                let mut rows: Vec<u64> = dataset.shards().iter().map(|s| s.entry().rows).collect();
                rows.sort_unstable_by(|a, b| b.cmp(a));
                let block = rows
                    .iter()
                    .take(shards_per_block.max(1) as usize)
                    .sum::<u64>();
                (2 * block).min(dataset.num_rows())
            }
            ShuffleMode::Sequential => return self,
        };
        self.row_blocks = Some(Arc::new([Arc::new(RowBlockSource {
            cache: Arc::clone(dataset.batch_cache()),
            working_rows,
            entries,
            tables: Mutex::new(Vec::new()),
        })]));
        self
    }

    /// The projected schema.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The streamed dataset, when the shards stream through the cache.
    #[cfg(unix)]
    pub(crate) fn streamed_dataset(&self) -> Option<&Arc<StreamedDataset>> {
        self.source.as_streamed()
    }

    /// The mapped dataset, when every shard is mapped.
    #[cfg(unix)]
    pub(crate) fn mapped_dataset(&self) -> Option<&Arc<Dataset>> {
        match &self.source {
            DataSource::Mapped(dataset) => Some(dataset),
            DataSource::Streamed(_) => None,
        }
    }

    /// Resolves `rows` (in batch order) to source batches and picks.
    ///
    /// Resident batches are shared (one `Arc` for them all); otherwise each
    /// source is fetched (decoded for compressed shards, or taken from the
    /// decoded-batch cache for one reference count) once per batch. Sources
    /// stay whole: the projection is applied when a column is read, so no
    /// batch is cloned column by column.
    pub(crate) fn gather(&self, rows: Vec<u64>) -> Result<Gathered> {
        let Picks {
            entries,
            batches: ids,
            picks,
        } = match &self.source {
            DataSource::Mapped(dataset) => dataset.row_index().pick(&rows)?,
            // The guard is dropped before any batch is decoded, so a shard
            // being opened by the prefetch thread waits only for the search.
            #[cfg(unix)]
            DataSource::Streamed(dataset) => dataset.row_index().pick(&rows)?,
        };
        let (batches, used) = match &self.resident {
            Some(resident) => (Arc::clone(resident), entries),
            None => {
                let decoded = self.fetch(&ids)?;
                let used = (0..decoded.len()).collect();
                (decoded, used)
            }
        };
        // Row blocks come with resident batches only, whose `used` are the
        // row index entries.
        let (row_blocks, ids) = match &self.row_blocks {
            Some(sources) => (
                Some(Arc::clone(sources)),
                ids.into_iter()
                    .zip(&used)
                    .map(|((shard, batch), &entry)| RowBlockId {
                        dataset: 0,
                        shard,
                        batch,
                        entry,
                    })
                    .collect(),
            ),
            None => (None, Vec::new()),
        };
        Ok(Gathered {
            schema: Arc::clone(&self.schema),
            batches,
            used,
            columns: Arc::clone(&self.projection),
            picks,
            rows,
            row_blocks,
            ids,
        })
    }

    /// The record batches `(shard, batch)` of `ids`, in order.
    fn fetch(&self, ids: &[(usize, usize)]) -> Result<Arc<[Arc<RecordBatch>]>> {
        match &self.source {
            DataSource::Mapped(dataset) => ids
                .iter()
                .map(|&(shard, batch)| dataset.shared_record_batch(shard, batch))
                .collect(),
            #[cfg(unix)]
            DataSource::Streamed(dataset) => {
                // A batch reads the few shards of its blocks: each is looked
                // up once (under the slots' lock), not once per source.
                let mut open: Vec<(usize, Arc<crate::reader::Shard>)> = Vec::new();
                ids.iter()
                    .map(|&(shard, batch)| {
                        let file = match open.iter().find(|(s, _)| *s == shard) {
                            Some((_, file)) => Arc::clone(file),
                            None => {
                                let file = dataset.resident(shard)?;
                                open.push((shard, Arc::clone(&file)));
                                file
                            }
                        };
                        file.shared_batch(batch)
                    })
                    .collect()
            }
        }
    }
}

/// The resident batches of several gather tables (a mix's sources) end to
/// end, when every table has them: a merged gather then shares this one
/// array (one reference count per batch of samples) instead of cloning a
/// reference to each record batch it reads.
pub(crate) struct ResidentSet {
    batches: Arc<[Arc<RecordBatch>]>,
    /// Table `t`'s entry `e` is `batches[bases[t] + e]`.
    bases: Vec<usize>,
    /// Table `t`'s dataset (whose row index finds its entries).
    datasets: Vec<Arc<Dataset>>,
    /// The tables' column numbers, when they are the same in every table
    /// (datasets of one layout): a batch then reads the sources' batches
    /// as they are.
    columns: Option<Arc<[usize]>>,
    /// Table `t`'s row blocks, when every table allows them; a cache that
    /// several tables share counts the working rows of them all.
    row_blocks: Option<Arc<[Arc<RowBlockSource>]>>,
}

impl ResidentSet {
    /// The set of `tables`, or `None` when one of them has no resident
    /// batches (compressed or streamed).
    pub(crate) fn new<'a>(tables: impl IntoIterator<Item = &'a GatherTable>) -> Option<Self> {
        let mut batches = Vec::new();
        let mut bases = Vec::new();
        let mut datasets = Vec::new();
        let mut columns: Option<Option<Arc<[usize]>>> = None;
        let mut blocks = Some(Vec::new());
        for table in tables {
            bases.push(batches.len());
            batches.extend(table.resident.as_ref()?.iter().cloned());
            match &table.source {
                DataSource::Mapped(dataset) => datasets.push(Arc::clone(dataset)),
                #[cfg(unix)]
                DataSource::Streamed(_) => return None,
            }
            columns = match columns {
                None => Some(Some(Arc::clone(&table.projection))),
                Some(Some(c)) if c == table.projection => Some(Some(c)),
                Some(_) => Some(None),
            };
            match (&mut blocks, table.row_blocks.as_deref()) {
                (Some(list), Some([source])) => list.push(Arc::clone(source)),
                _ => blocks = None,
            }
        }
        let row_blocks = blocks.map(|list| {
            list.iter()
                .map(|s| {
                    let working_rows = list
                        .iter()
                        .filter(|o| Arc::ptr_eq(&o.cache, &s.cache))
                        .map(|o| o.working_rows)
                        .sum();
                    Arc::new(RowBlockSource {
                        cache: Arc::clone(&s.cache),
                        working_rows,
                        entries: s.entries,
                        tables: Mutex::new(Vec::new()),
                    })
                })
                .collect()
        });
        Some(ResidentSet {
            batches: batches.into(),
            bases,
            datasets,
            columns: columns.flatten(),
            row_blocks,
        })
    }

    /// Whether [`gather`](Self::gather) can read the tables: they have the
    /// same column numbers (else each table is gathered and the parts
    /// merged, [`Gathered::merge`]).
    pub(crate) fn gathers(&self) -> bool {
        self.columns.is_some()
    }

    /// Row `rows[j]` of table `tables[j]`, for each `j`, gathered in one
    /// pass over the rows, each straight into its place in the batch (no
    /// gather per table, no merge of them).
    pub(crate) fn gather(
        &self,
        schema: &SchemaRef,
        tables: &[u32],
        rows: Vec<u64>,
    ) -> Result<Gathered> {
        let Some(columns) = &self.columns else {
            return Err(Error::Internal(
                "one gather of tables with different columns".into(),
            ));
        };
        let indexes: Vec<_> = self
            .datasets
            .iter()
            .zip(&self.bases)
            .map(|(d, &base)| (d.row_index(), base))
            .collect();
        let (
            Picks {
                entries,
                batches: ids,
                picks,
            },
            of,
        ) = pick_mixed(&indexes, tables, &rows)?;
        let ids = match &self.row_blocks {
            Some(_) => entries
                .iter()
                .zip(ids)
                .zip(&of)
                .map(|((&e, (shard, batch)), &t)| RowBlockId {
                    dataset: t as usize,
                    shard,
                    batch,
                    // `t` is a table (checked by the pick), `e` its entry
                    // numbered from its base.
                    entry: e - self.bases[t as usize],
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(Gathered {
            schema: Arc::clone(schema),
            batches: Arc::clone(&self.batches),
            used: entries,
            columns: Arc::clone(columns),
            picks,
            rows,
            row_blocks: self.row_blocks.clone(),
            ids,
        })
    }
}

/// The batch of each row index entry of `dataset`, when every shard is
/// uncompressed (views into the mapping, costing no memory).
fn resident_batches(dataset: &Dataset) -> Result<Option<Arc<[Arc<RecordBatch>]>>> {
    let uncompressed = dataset
        .shards()
        .iter()
        .all(|s| s.entry().compression == Compression::None);
    if !uncompressed {
        return Ok(None);
    }
    let index = dataset.row_index();
    (0..index.len())
        .map(|entry| {
            let (shard, batch) = index.batch_of(entry)?;
            dataset.shared_record_batch(shard, batch)
        })
        .collect::<Result<Arc<[_]>>>()
        .map(Some)
}

fn project_schema(schema: &SchemaRef, projection: &[usize]) -> Result<SchemaRef> {
    schema
        .project(projection)
        .map(Arc::new)
        .map_err(|e| Error::arrow("projecting loader columns", e))
}

/// The samples of one batch, resolved to where their values live.
///
/// ```
/// # use std::sync::Arc;
/// # use arrow::array::{Array, Int32Array};
/// # use arrow::datatypes::{DataType, Field, Schema};
/// # use arrow::record_batch::RecordBatch;
/// use mosaicrs::loader::Gathered;
/// let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
/// let batch = RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![5, 6, 7]))]).unwrap();
/// let g = Gathered::from_record_batch(&batch);
/// assert_eq!(g.picks(), &[(0, 0), (0, 1), (0, 2)]);
/// assert_eq!(g.to_record_batch().unwrap(), batch);
/// ```
#[derive(Debug, Clone)]
pub struct Gathered {
    schema: SchemaRef,
    /// Record batches the sources are drawn from (shared between batches
    /// when they are the resident pieces of the dataset).
    batches: Arc<[Arc<RecordBatch>]>,
    /// Source `s` is `batches[used[s]]`.
    used: Vec<usize>,
    /// Column `c` of `schema` is column `columns[c]` of each source.
    columns: Arc<[usize]>,
    picks: Vec<(usize, usize)>,
    rows: Vec<u64>,
    /// Where the assembler may keep row blocks of the sources: one place
    /// per dataset the sources come from, and per source (in source order)
    /// its `(dataset, shard, record batch)` in `ids`.
    row_blocks: Option<Arc<[Arc<RowBlockSource>]>>,
    ids: Vec<RowBlockId>,
}

impl Gathered {
    /// A whole record batch, in order (rows are its row numbers).
    pub fn from_record_batch(batch: &RecordBatch) -> Self {
        let n = batch.num_rows();
        Gathered {
            schema: batch.schema(),
            batches: Arc::new([Arc::new(batch.clone())]),
            used: vec![0],
            columns: (0..batch.num_columns()).collect(),
            picks: (0..n).map(|i| (0, i)).collect(),
            rows: (0..n as u64).collect(),
            row_blocks: None,
            ids: Vec::new(),
        }
    }

    /// Samples picked from `sources` (`(source, row)` each, in batch order);
    /// `rows` names them in error messages. Every pick must be in range.
    pub fn new(
        sources: Vec<RecordBatch>,
        picks: Vec<(usize, usize)>,
        rows: Vec<u64>,
    ) -> Result<Self> {
        let schema = match sources.first() {
            Some(b) => b.schema(),
            None if picks.is_empty() => Arc::new(arrow::datatypes::Schema::empty()),
            None => return Err(Error::InvalidArgument("picks without sources".into())),
        };
        if let Some(b) = sources.iter().find(|b| b.schema() != schema) {
            return Err(Error::InvalidArgument(format!(
                "gather sources have different schemas: {} vs {}",
                schema,
                b.schema()
            )));
        }
        if let Some(&(s, r)) = picks
            .iter()
            .find(|&&(s, r)| sources.get(s).is_none_or(|b| r >= b.num_rows()))
        {
            return Err(Error::InvalidArgument(format!(
                "pick (source {s}, row {r}) is out of range"
            )));
        }
        if rows.len() != picks.len() {
            return Err(Error::InvalidArgument(format!(
                "{} rows given for {} picks",
                rows.len(),
                picks.len()
            )));
        }
        Ok(Gathered {
            columns: (0..schema.fields().len()).collect(),
            schema,
            used: (0..sources.len()).collect(),
            batches: sources.into_iter().map(Arc::new).collect(),
            picks,
            rows,
            row_blocks: None,
            ids: Vec::new(),
        })
    }

    /// The samples of several gathers (one per source of a mix) as one:
    /// sample `i` is sample `at[i].1` of `parts[at[i].0]`. Every part's
    /// columns must have the data types of `schema` (checked once by the
    /// loader); each part's batches are projected to those columns (a few
    /// reference counts, no values copied).
    ///
    /// With `resident` (the resident batches of every table, and the table
    /// of each part), the parts' batches are those tables' resident ones and
    /// the merge shares the set's array, and the row blocks of the tables
    /// where they all allow them.
    pub(crate) fn merge(
        schema: SchemaRef,
        parts: &[Gathered],
        at: &[(usize, usize)],
        resident: Option<(&ResidentSet, &[usize])>,
    ) -> Result<Self> {
        // Sources with the same column numbers (the usual case: datasets of
        // one layout) share their batches as they are; projecting each
        // batch would cost more than the rest of the gather.
        let columns: Arc<[usize]> = match parts.first() {
            Some(p) if parts.iter().all(|q| q.columns == p.columns) => Arc::clone(&p.columns),
            _ => (0..schema.fields().len()).collect(),
        };
        let shared = parts
            .first()
            .is_some_and(|p| Arc::ptr_eq(&p.columns, &columns));
        let mut first_source = Vec::with_capacity(parts.len());
        let mut row_blocks = None;
        let mut ids = Vec::new();
        let (batches, used) = match resident {
            Some((set, tables)) if shared && tables.len() == parts.len() => {
                let mut used = Vec::new();
                for (part, &t) in parts.iter().zip(tables) {
                    let base = set.bases.get(t).copied().ok_or_else(|| {
                        Error::Internal(format!("merged part of table {t} has no resident base"))
                    })?;
                    first_source.push(used.len());
                    used.extend(part.used.iter().map(|&e| base + e));
                }
                if let Some(blocks) = &set.row_blocks {
                    // Each part reads one table: its dataset 0 is table `t`.
                    if parts.iter().all(|p| p.ids.len() == p.used.len()) {
                        for (part, &t) in parts.iter().zip(tables) {
                            ids.extend(part.ids.iter().map(|&id| RowBlockId { dataset: t, ..id }));
                        }
                        row_blocks = Some(Arc::clone(blocks));
                    }
                }
                (Arc::clone(&set.batches), used)
            }
            _ => {
                first_source.clear();
                let batches = Self::merged_batches(parts, shared, &mut first_source)?;
                let used = (0..batches.len()).collect();
                (batches.into(), used)
            }
        };
        let mut picks = Vec::with_capacity(at.len());
        let mut rows = Vec::with_capacity(at.len());
        for &(p, i) in at {
            let part = parts.get(p).ok_or_else(|| {
                Error::Internal(format!("mixed pick of part {p} of {}", parts.len()))
            })?;
            let (&(s, r), &row) = part.picks.get(i).zip(part.rows.get(i)).ok_or_else(|| {
                Error::Internal(format!("mixed pick {i} of a part with {}", part.len()))
            })?;
            picks.push((first_source[p] + s, r));
            rows.push(row);
        }
        Ok(Gathered {
            columns,
            used,
            batches,
            schema,
            picks,
            rows,
            row_blocks,
            ids,
        })
    }

    /// The parts' batches in one list (projected unless `shared`), and
    /// where each part's start.
    fn merged_batches(
        parts: &[Gathered],
        shared: bool,
        first_source: &mut Vec<usize>,
    ) -> Result<Vec<Arc<RecordBatch>>> {
        let mut batches = Vec::new();
        for part in parts {
            first_source.push(batches.len());
            for &b in &part.used {
                if shared {
                    batches.push(Arc::clone(&part.batches[b]));
                } else {
                    let projected = part.batches[b]
                        .project(&part.columns)
                        .map_err(|e| Error::arrow("projecting a mixed batch", e))?;
                    batches.push(Arc::new(projected));
                }
            }
        }
        Ok(batches)
    }

    /// The (projected) schema of the sources.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// `(source, row within source)` of each sample, in batch order.
    pub fn picks(&self) -> &[(usize, usize)] {
        &self.picks
    }

    /// The dataset row of each sample, in batch order (used in error messages).
    pub fn rows(&self) -> &[u64] {
        &self.rows
    }

    /// The dataset rows, giving up the rest.
    pub fn into_rows(self) -> Vec<u64> {
        self.rows
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.picks.len()
    }

    /// True for a batch without samples.
    pub fn is_empty(&self) -> bool {
        self.picks.is_empty()
    }

    /// Number of source record batches.
    pub fn num_sources(&self) -> usize {
        self.used.len()
    }

    /// Column `column` (of [`schema`](Self::schema)) of every source, in
    /// source order.
    pub fn column_sources(&self, column: usize) -> Vec<&ArrayRef> {
        let at = self.columns[column];
        self.used
            .iter()
            .map(|&b| self.batches[b].column(at))
            .collect()
    }

    /// Where row blocks of the sources may be kept (per dataset), and the
    /// `(dataset, shard, record batch)` of each source; `None` when the
    /// gather allows none.
    pub(crate) fn row_blocks(&self) -> Option<(&[Arc<RowBlockSource>], &[RowBlockId])> {
        match &self.row_blocks {
            Some(sources) if self.ids.len() == self.used.len() => Some((sources, &self.ids)),
            _ => None,
        }
    }

    /// Source `source` whole (every column of the shards' schema).
    pub(crate) fn source_batch(&self, source: usize) -> &RecordBatch {
        &self.batches[self.used[source]]
    }

    /// The number in the sources' schema of column `column` (of
    /// [`schema`](Self::schema)).
    pub(crate) fn source_column(&self, column: usize) -> usize {
        self.columns[column]
    }

    /// Column `column` of the samples as one array (Arrow `interleave`).
    pub fn take_column(&self, column: usize) -> Result<ArrayRef> {
        let parts: Vec<&dyn Array> = self
            .column_sources(column)
            .into_iter()
            .map(|c| c.as_ref())
            .collect();
        if parts.is_empty() {
            return Ok(arrow::array::new_empty_array(
                self.schema.field(column).data_type(),
            ));
        }
        interleave(&parts, &self.picks).map_err(|e| {
            Error::arrow(
                format!("gathering column {:?}", self.schema.field(column).name()),
                e,
            )
        })
    }

    /// The samples as one record batch.
    pub fn to_record_batch(&self) -> Result<RecordBatch> {
        let columns = (0..self.schema.fields().len())
            .map(|c| self.take_column(c))
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(self.len()));
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), columns, &options)
            .map_err(|e| Error::arrow("assembling a loader batch", e))
    }
}
