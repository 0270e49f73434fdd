//! The row index of a dataset: where each record batch starts, in one flat
//! table, so that one binary search maps a global row to its shard, record
//! batch and offset.

use crate::format::Index;
use crate::{Error, Result};

thread_local! {
    /// Per thread: the batch-local source of each entry (`usize::MAX`: not
    /// used by the rows being picked), reset after each use.
    static SOURCE_OF: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Where a global row lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLocation {
    /// Position of the shard in the index.
    pub shard: usize,
    /// Record batch within the shard.
    pub batch: usize,
    /// Row within the record batch.
    pub offset: usize,
}

/// The batch of an entry that stands for a whole shard whose footer has not
/// been read yet.
const UNOPENED: usize = usize::MAX;

/// Every non-empty record batch of a dataset with its first global row, in
/// dataset order.
///
/// A mapped [`Dataset`](super::Dataset) builds it once from its shards'
/// footers. A [`StreamedDataset`](super::StreamedDataset) starts from the
/// index alone, with one entry per shard, and replaces a shard's entry by its
/// record batches when the shard is first opened: rows per record batch are
/// only in the shard file, and the table then never holds more than what the
/// opened files prove. Either way the starts stay sorted, so the binary
/// search always finds a row's shard; only rows of opened shards resolve to a
/// record batch.
#[derive(Debug, Clone)]
pub(crate) struct RowIndex {
    /// First global row of each entry, then the total.
    starts: Vec<u64>,
    /// (shard, record batch) of each entry; the batch is [`UNOPENED`] for a
    /// shard not opened yet.
    ids: Vec<(usize, usize)>,
    /// First global row of each shard, then the total.
    shard_starts: Vec<u64>,
}

impl RowIndex {
    /// The index of opened shards: `batch_offsets` gives, per shard in index
    /// order, the first row of each record batch within it, then its row count.
    pub(crate) fn opened<'a>(batch_offsets: impl IntoIterator<Item = &'a [u64]>) -> Self {
        let mut index = RowIndex {
            starts: Vec::new(),
            ids: Vec::new(),
            shard_starts: vec![0],
        };
        let mut total = 0;
        for (shard, offsets) in batch_offsets.into_iter().enumerate() {
            let (starts, ids) = batch_entries(shard, total, offsets);
            index.starts.extend(starts);
            index.ids.extend(ids);
            total += offsets.last().copied().unwrap_or(0);
            index.shard_starts.push(total);
        }
        index.starts.push(total);
        index
    }

    /// The index of a dataset whose shards are not opened yet: one entry per
    /// non-empty shard, from `index`'s row counts.
    pub(crate) fn unopened(index: &Index) -> Self {
        let mut rows = RowIndex {
            starts: Vec::with_capacity(index.shards.len() + 1),
            ids: Vec::with_capacity(index.shards.len()),
            shard_starts: Vec::with_capacity(index.shards.len() + 1),
        };
        let mut total = 0;
        for (shard, entry) in index.shards.iter().enumerate() {
            rows.shard_starts.push(total);
            if entry.rows > 0 {
                rows.starts.push(total);
                rows.ids.push((shard, UNOPENED));
            }
            total += entry.rows;
        }
        rows.shard_starts.push(total);
        rows.starts.push(total);
        rows
    }

    /// Replaces the entry of unopened shard `shard` by its record batches,
    /// whose first rows within the shard are `batch_offsets` (then its row
    /// count, which must be the index's). A shard already opened is left as is.
    pub(crate) fn open_shard(&mut self, shard: usize, batch_offsets: &[u64]) -> Result<()> {
        let (first, last) = match (
            self.shard_starts.get(shard),
            self.shard_starts.get(shard + 1),
        ) {
            (Some(&first), Some(&last)) => (first, last),
            _ => return Err(Error::Internal(format!("shard {shard} does not exist"))),
        };
        if batch_offsets.last().copied().unwrap_or(0) != last - first {
            return Err(Error::Internal(format!(
                "shard {shard} holds {:?} rows, the row index {}",
                batch_offsets.last(),
                last - first
            )));
        }
        let at = self.ids.partition_point(|&(s, _)| s < shard);
        if self.ids.get(at) != Some(&(shard, UNOPENED)) {
            // Opened before, or empty: nothing stands in for its batches.
            return Ok(());
        }
        let (starts, ids) = batch_entries(shard, first, batch_offsets);
        self.starts.splice(at..=at, starts);
        self.ids.splice(at..=at, ids);
        Ok(())
    }

    /// Total rows.
    pub(crate) fn num_rows(&self) -> u64 {
        self.shard_starts.last().copied().unwrap_or(0)
    }

    /// Number of entries (the bound of every entry number).
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// First global row of each shard, then the total.
    pub(crate) fn shard_starts(&self) -> &[u64] {
        &self.shard_starts
    }

    /// The entry holding global row `row` and the row's offset in it. The
    /// entry may stand for an unopened shard: see [`RowIndex::batch_of`].
    #[inline]
    pub(crate) fn entry(&self, row: u64) -> Result<(usize, u64)> {
        let rows = self.num_rows();
        if row >= rows {
            return Err(Error::RowOutOfRange { row, rows });
        }
        // The last entry starting at or before `row`. `starts[0]` is 0 when
        // there is a row, so the point is at least 1.
        let entry = self.starts.partition_point(|&start| start <= row) - 1;
        Ok((entry, row - self.starts[entry]))
    }

    /// (shard, record batch) of entry `entry`; an error for an unopened shard.
    #[inline]
    pub(crate) fn batch_of(&self, entry: usize) -> Result<(usize, usize)> {
        match self.ids.get(entry) {
            Some(&(shard, batch)) if batch != UNOPENED => Ok((shard, batch)),
            Some(&(shard, _)) => Err(Error::Internal(format!(
                "a row of shard {shard} is read before the shard is opened"
            ))),
            None => Err(Error::Internal(format!(
                "row index entry {entry} does not exist"
            ))),
        }
    }

    /// The shard holding global row `row` (opened or not).
    pub(crate) fn shard_of(&self, row: u64) -> Result<usize> {
        let (entry, _) = self.entry(row)?;
        Ok(self.ids[entry].0)
    }

    /// Shard, record batch and offset of global row `row`, in an opened shard.
    pub(crate) fn locate(&self, row: u64) -> Result<RowLocation> {
        let (entry, offset) = self.entry(row)?;
        let (shard, batch) = self.batch_of(entry)?;
        Ok(RowLocation {
            shard,
            batch,
            // Within one record batch, whose rows fit in usize.
            offset: offset as usize,
        })
    }
}

/// Rows resolved to the record batches that hold them.
#[derive(Debug, Default)]
pub(crate) struct Picks {
    /// The entries read, in order of first use: source `s` is `entries[s]`.
    pub(crate) entries: Vec<usize>,
    /// (shard, record batch) of each source.
    pub(crate) batches: Vec<(usize, usize)>,
    /// `(source, offset)` of each row, in row order.
    pub(crate) picks: Vec<(usize, usize)>,
}

impl RowIndex {
    /// Resolves `rows` (in order) to their record batches, each numbered
    /// once, in order of first use.
    ///
    /// A small batch drawn from many record batches has nearly one source
    /// per row, so the per-source work is per-row work: the entry-to-source
    /// map is a per-thread scratch, reset in O(rows), not a hash map.
    pub(crate) fn pick(&self, rows: &[u64]) -> Result<Picks> {
        let mut out = Picks {
            picks: Vec::with_capacity(rows.len()),
            ..Picks::default()
        };
        SOURCE_OF.with_borrow_mut(|source_of| {
            if source_of.len() < self.len() {
                source_of.resize(self.len(), usize::MAX);
            }
            let picked = rows.iter().try_for_each(|&row| {
                let (entry, offset) = self.entry(row)?;
                let mut source = source_of[entry];
                if source == usize::MAX {
                    out.batches.push(self.batch_of(entry)?);
                    out.entries.push(entry);
                    source = out.entries.len() - 1;
                    source_of[entry] = source;
                }
                // Within one record batch, whose rows fit in usize.
                out.picks.push((source, offset as usize));
                Ok(())
            });
            // Leave the scratch all unused for the next call on this thread.
            for &entry in &out.entries {
                source_of[entry] = usize::MAX;
            }
            picked
        })?;
        Ok(out)
    }
}

/// Rows of several datasets resolved as [`RowIndex::pick`] resolves one
/// dataset's, in one numbering of their entries: row `rows[j]` is of
/// dataset `datasets[j]`, whose index is `indexes[d].0` and whose entry `e`
/// is numbered `indexes[d].1 + e`. [`Picks::entries`] are those numbers;
/// the second vector names each source's dataset.
pub(crate) fn pick_mixed(
    indexes: &[(&RowIndex, usize)],
    datasets: &[u32],
    rows: &[u64],
) -> Result<(Picks, Vec<u32>)> {
    if datasets.len() != rows.len() {
        return Err(Error::Internal(format!(
            "{} datasets given for {} rows",
            datasets.len(),
            rows.len()
        )));
    }
    let numbers = indexes
        .iter()
        .map(|(index, base)| base + index.len())
        .max()
        .unwrap_or(0);
    let mut out = Picks {
        picks: Vec::with_capacity(rows.len()),
        ..Picks::default()
    };
    let mut of = Vec::new();
    SOURCE_OF.with_borrow_mut(|source_of| {
        if source_of.len() < numbers {
            source_of.resize(numbers, usize::MAX);
        }
        let picked = datasets.iter().zip(rows).try_for_each(|(&d, &row)| {
            let &(index, base) = indexes.get(d as usize).ok_or_else(|| {
                Error::Internal(format!("a row of dataset {d} of {}", indexes.len()))
            })?;
            let (entry, offset) = index.entry(row)?;
            let mut source = source_of[base + entry];
            if source == usize::MAX {
                out.batches.push(index.batch_of(entry)?);
                out.entries.push(base + entry);
                of.push(d);
                source = out.entries.len() - 1;
                source_of[base + entry] = source;
            }
            // Within one record batch, whose rows fit in usize.
            out.picks.push((source, offset as usize));
            Ok(())
        });
        // Leave the scratch all unused for the next call on this thread.
        for &entry in &out.entries {
            source_of[entry] = usize::MAX;
        }
        picked
    })?;
    Ok((out, of))
}

/// The entries of shard `shard`'s non-empty record batches (empty ones hold
/// no row to find), given the shard's first global row and the first row of
/// each record batch within it, then its row count.
fn batch_entries(
    shard: usize,
    first: u64,
    batch_offsets: &[u64],
) -> (Vec<u64>, Vec<(usize, usize)>) {
    batch_offsets
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1] > w[0])
        .map(|(batch, w)| (first + w[0], (shard, batch)))
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(shard: usize, batch: usize, offset: usize) -> RowLocation {
        RowLocation {
            shard,
            batch,
            offset,
        }
    }

    #[test]
    fn opened_shards_locate_every_row_and_skip_empty_batches() {
        // Shard 1 is empty; shard 2 has an empty batch in the middle.
        let index = RowIndex::opened([&[0, 3, 5][..], &[0][..], &[0, 2, 2, 4][..]]);
        assert_eq!(index.num_rows(), 9);
        assert_eq!(index.len(), 4);
        assert_eq!(index.shard_starts(), &[0, 5, 5, 9]);
        assert_eq!(index.locate(0).unwrap(), loc(0, 0, 0));
        assert_eq!(index.locate(4).unwrap(), loc(0, 1, 1));
        assert_eq!(index.locate(5).unwrap(), loc(2, 0, 0));
        assert_eq!(index.locate(7).unwrap(), loc(2, 2, 0));
        assert_eq!(index.locate(8).unwrap(), loc(2, 2, 1));
        assert!(matches!(
            index.locate(9),
            Err(Error::RowOutOfRange { row: 9, rows: 9 })
        ));
        let picked = index.pick(&[8, 0, 7, 1, 4]).unwrap();
        // The same rows of the same index numbered from 10, mixed with
        // rows of another index numbered from 0.
        let other = RowIndex::opened([&[0, 2][..]]);
        let (mixed, datasets) = pick_mixed(
            &[(&other, 0), (&index, 10)],
            &[1, 0, 1, 1, 1, 0, 1],
            &[8, 1, 0, 7, 1, 0, 4],
        )
        .unwrap();
        assert_eq!(mixed.entries, [13, 0, 10, 11]);
        assert_eq!(datasets, [1, 0, 1, 1]);
        assert_eq!(mixed.batches, [(2, 2), (0, 0), (0, 0), (0, 1)]);
        assert_eq!(
            mixed.picks,
            [(0, 1), (1, 1), (2, 0), (0, 0), (2, 1), (1, 0), (3, 1)]
        );
        assert!(pick_mixed(&[(&other, 0)], &[0], &[2]).is_err());
        assert!(pick_mixed(&[(&other, 0)], &[1], &[0]).is_err());
        assert_eq!(picked.entries, [3, 0, 1]);
        assert_eq!(picked.batches, [(2, 2), (0, 0), (0, 1)]);
        assert_eq!(picked.picks, [(0, 1), (1, 0), (0, 0), (1, 1), (2, 1)]);
        assert!(index.pick(&[0, 9]).is_err());
        // The failed call left the scratch clean.
        assert_eq!(index.pick(&[4]).unwrap().picks, [(0, 1)]);
    }

    #[test]
    fn unopened_shards_find_their_shard_then_their_batches_once_opened() {
        let offsets: [&[u64]; 3] = [&[0, 3, 5], &[0], &[0, 2, 2, 4]];
        let mut entries = Vec::new();
        for (i, rows) in [5u64, 0, 4].into_iter().enumerate() {
            entries.push(crate::format::ShardEntry {
                path: format!("s{i}.arrow"),
                rows,
                bytes: 1,
                batches: 1,
                checksum: crate::format::Checksum(0),
                compression: crate::format::Compression::None,
                write_id: "w".into(),
                partition: 0,
                task_attempt: 0,
            });
        }
        let schema = arrow::datatypes::Schema::empty();
        let index = Index::new(&schema, entries, Vec::new()).unwrap();
        let mut rows = RowIndex::unopened(&index);
        assert_eq!(rows.shard_of(6).unwrap(), 2);
        assert!(rows.locate(6).is_err());
        rows.open_shard(2, offsets[2]).unwrap();
        assert_eq!(rows.shard_of(0).unwrap(), 0);
        assert!(rows.locate(0).is_err());
        rows.open_shard(1, offsets[1]).unwrap();
        rows.open_shard(0, offsets[0]).unwrap();
        rows.open_shard(0, offsets[0]).unwrap();
        let opened = RowIndex::opened(offsets);
        assert_eq!(rows.starts, opened.starts);
        assert_eq!(rows.ids, opened.ids);
        assert!(rows.open_shard(2, &[0, 3]).is_err());
    }
}
