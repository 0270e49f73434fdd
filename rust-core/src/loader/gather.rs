//! Resolving dataset rows to the mapped record batches that hold them.
//!
//! A worker turns the rows of one batch into [`Gathered`]: the source record
//! batches (zero-copy views into the mapped shards for uncompressed data) and
//! one `(source, row)` pick per sample. Assemblers then copy each value once,
//! from the mapping straight into the output (an Arrow batch, or a tensor in
//! pinned memory), with no intermediate Arrow `take`.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::compute::interleave;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};

use crate::format::Compression;
use crate::reader::Dataset;
use crate::{Error, Result};

/// Every record batch of a dataset with its first global row, so that one
/// binary search locates a row. For uncompressed datasets the projected
/// batches are kept (they are views into the mapping and cost no memory).
pub(crate) struct PieceTable {
    dataset: Arc<Dataset>,
    projection: Vec<usize>,
    schema: SchemaRef,
    /// First global row of each piece, then the total.
    starts: Vec<u64>,
    /// (shard, batch) of each piece.
    ids: Vec<(usize, usize)>,
    /// The projected batches, when every shard is uncompressed.
    resident: Option<Arc<[RecordBatch]>>,
}

impl PieceTable {
    /// Builds the table for the columns at `projection`.
    pub(crate) fn new(dataset: Arc<Dataset>, projection: Vec<usize>) -> Result<Self> {
        let schema = Arc::new(
            dataset
                .schema()
                .project(&projection)
                .map_err(|e| Error::arrow("projecting loader columns", e))?,
        );
        let mut starts = Vec::new();
        let mut ids = Vec::new();
        for (s, (shard, &first)) in dataset
            .shards()
            .iter()
            .zip(dataset.shard_row_offsets())
            .enumerate()
        {
            let offsets = shard.batch_row_offsets();
            for (b, w) in offsets.windows(2).enumerate() {
                if w[1] > w[0] {
                    starts.push(first + w[0]);
                    ids.push((s, b));
                }
            }
        }
        starts.push(dataset.num_rows());
        let uncompressed = dataset
            .shards()
            .iter()
            .all(|s| s.entry().compression == Compression::None);
        let resident = if uncompressed {
            Some(
                ids.iter()
                    .map(|&(s, b)| project(&dataset.record_batch(s, b)?, &projection))
                    .collect::<Result<Arc<[_]>>>()?,
            )
        } else {
            None
        };
        Ok(PieceTable {
            dataset,
            projection,
            schema,
            starts,
            ids,
            resident,
        })
    }

    /// The projected schema.
    pub(crate) fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Piece index and offset of global row `row`.
    #[inline]
    fn locate(&self, row: u64) -> Result<(usize, usize)> {
        if row >= self.dataset.num_rows() {
            return Err(Error::RowOutOfRange {
                row,
                rows: self.dataset.num_rows(),
            });
        }
        let piece = self.starts.partition_point(|&s| s <= row) - 1;
        // A piece is one record batch, whose length fits in usize.
        Ok((piece, (row - self.starts[piece]) as usize))
    }

    /// Resolves `rows` (in batch order) to source batches and picks.
    ///
    /// A small batch drawn from many record batches has nearly one source
    /// per sample, so the per-source work is per-sample work: resident
    /// pieces are shared (one `Arc` per batch, no `RecordBatch` clones), and
    /// the piece-to-source map is a per-thread scratch reset in O(batch).
    pub(crate) fn gather(&self, rows: Vec<u64>) -> Result<Gathered> {
        let mut used = Vec::new();
        let mut picks = Vec::with_capacity(rows.len());
        SOURCE_OF.with_borrow_mut(|source_of| -> Result<()> {
            if source_of.len() < self.ids.len() {
                source_of.resize(self.ids.len(), usize::MAX);
            }
            let located = rows.iter().try_for_each(|&row| {
                let (piece, offset) = self.locate(row)?;
                let mut source = source_of[piece];
                if source == usize::MAX {
                    used.push(piece);
                    source = used.len() - 1;
                    source_of[piece] = source;
                }
                picks.push((source, offset));
                Ok(())
            });
            // Leave the scratch all unused for the next batch on this thread.
            for &piece in &used {
                source_of[piece] = usize::MAX;
            }
            located
        })?;
        let batches = match &self.resident {
            Some(resident) => Arc::clone(resident),
            None => {
                let decoded = used
                    .iter()
                    .map(|&piece| {
                        let (s, b) = self.ids[piece];
                        project(&self.dataset.record_batch(s, b)?, &self.projection)
                    })
                    .collect::<Result<Arc<[_]>>>()?;
                used = (0..decoded.len()).collect();
                decoded
            }
        };
        Ok(Gathered {
            schema: Arc::clone(&self.schema),
            batches,
            used,
            picks,
            rows,
        })
    }
}

thread_local! {
    /// Per worker thread: the batch-local source of each piece
    /// (`usize::MAX`: not used by the batch being gathered).
    static SOURCE_OF: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn project(batch: &RecordBatch, projection: &[usize]) -> Result<RecordBatch> {
    batch
        .project(projection)
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
    batches: Arc<[RecordBatch]>,
    /// Source `s` is `batches[used[s]]`.
    used: Vec<usize>,
    picks: Vec<(usize, usize)>,
    rows: Vec<u64>,
}

impl Gathered {
    /// Picks already checked against their sources (by the loader).
    #[cfg(unix)]
    pub(crate) fn from_parts(
        schema: SchemaRef,
        sources: Vec<RecordBatch>,
        picks: Vec<(usize, usize)>,
        rows: Vec<u64>,
    ) -> Self {
        Gathered {
            schema,
            used: (0..sources.len()).collect(),
            batches: sources.into(),
            picks,
            rows,
        }
    }

    /// A whole record batch, in order (rows are its row numbers).
    pub fn from_record_batch(batch: &RecordBatch) -> Self {
        let n = batch.num_rows();
        Gathered {
            schema: batch.schema(),
            batches: Arc::new([batch.clone()]),
            used: vec![0],
            picks: (0..n).map(|i| (0, i)).collect(),
            rows: (0..n as u64).collect(),
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
            schema,
            used: (0..sources.len()).collect(),
            batches: sources.into(),
            picks,
            rows,
        })
    }

    /// The (projected) schema of the sources.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The source record batches, in source order.
    pub fn sources(&self) -> impl ExactSizeIterator<Item = &RecordBatch> + '_ {
        self.used.iter().map(|&b| &self.batches[b])
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

    /// Column `column` of every source.
    pub fn column_sources(&self, column: usize) -> Vec<&ArrayRef> {
        self.sources().map(|b| b.column(column)).collect()
    }

    /// Column `column` of the samples as one array (Arrow `interleave`).
    pub fn take_column(&self, column: usize) -> Result<ArrayRef> {
        let parts: Vec<&dyn Array> = self.sources().map(|b| b.column(column).as_ref()).collect();
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
