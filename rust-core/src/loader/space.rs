//! The sample space: which dataset rows an epoch covers, grouped by shard,
//! and the fingerprint that ties a loader state to exactly that space.

use std::sync::Arc;

use xxhash_rust::xxh3::Xxh3;

use crate::format::ShardEntry;
use crate::{Error, Result};

/// The rows one epoch visits: all rows of the dataset, or a sorted selection
/// of them (for example a train split), with the shard boundaries that the
/// block-local shuffle needs.
#[derive(Debug, Clone)]
pub struct SampleSpace {
    /// `None`: every row; `Some`: strictly increasing row ids.
    selection: Option<Arc<[u64]>>,
    /// Number of samples.
    len: u64,
    /// Cumulative sample positions where each shard's samples start
    /// (`num_shards + 1` entries, last one `len`).
    shard_bounds: Vec<u64>,
    fingerprint: String,
}

impl SampleSpace {
    /// Builds the space for a dataset given its shards (in index order) and an
    /// optional row selection, which must be strictly increasing and in range.
    pub fn new(shards: &[ShardEntry], selection: Option<Arc<[u64]>>) -> Result<Self> {
        let mut offsets = Vec::with_capacity(shards.len() + 1);
        let mut total = 0u64;
        offsets.push(0);
        for s in shards {
            total += s.rows;
            offsets.push(total);
        }
        let mut hasher = Xxh3::new();
        hasher.update(b"mosaicrs-sample-space-v1");
        hasher.update(&total.to_le_bytes());
        for s in shards {
            hasher.update(&s.rows.to_le_bytes());
            // The string form, as the fingerprint has always hashed it.
            hasher.update(s.checksum.to_string().as_bytes());
            hasher.update(&[0]);
        }
        let (len, shard_bounds) = match &selection {
            None => (total, offsets),
            Some(rows) => {
                validate_selection(rows, total)?;
                hasher.update(&(rows.len() as u64).to_le_bytes());
                for r in rows.iter() {
                    hasher.update(&r.to_le_bytes());
                }
                let bounds = offsets
                    .iter()
                    .map(|&o| rows.partition_point(|&r| r < o) as u64)
                    .collect();
                (rows.len() as u64, bounds)
            }
        };
        let fingerprint = format!("xxh3-64:{:016x}", hasher.digest());
        Ok(SampleSpace {
            selection,
            len,
            shard_bounds,
            fingerprint,
        })
    }

    /// Number of samples in one epoch.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when an epoch has no samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `xxh3-64:<hex>` over the shards' row counts and checksums and the selection.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The 64-bit value of the fingerprint, used to seed the sample order.
    pub(crate) fn fingerprint_word(&self) -> u64 {
        let hex = self.fingerprint.rsplit(':').next().unwrap_or_default();
        u64::from_str_radix(hex, 16).unwrap_or_default()
    }

    /// Sample positions where each shard starts (`num_shards + 1` entries).
    pub fn shard_bounds(&self) -> &[u64] {
        &self.shard_bounds
    }

    /// The dataset row of sample `i` (`i < len`).
    #[inline]
    pub fn row(&self, i: u64) -> u64 {
        match &self.selection {
            None => i,
            // `i < len == rows.len()`, which fits in usize.
            Some(rows) => rows[i as usize],
        }
    }
}

fn validate_selection(rows: &[u64], total: u64) -> Result<()> {
    if let Some(w) = rows.windows(2).find(|w| w[0] >= w[1]) {
        return Err(Error::InvalidArgument(format!(
            "row selection must be strictly increasing; found {} followed by {}",
            w[0], w[1]
        )));
    }
    match rows.last() {
        Some(&last) if last >= total => Err(Error::RowOutOfRange {
            row: last,
            rows: total,
        }),
        _ => Ok(()),
    }
}
