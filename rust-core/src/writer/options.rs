//! Options of the shard writer.

use crate::format::Compression;
use crate::{Error, Result};

/// Rows per record batch of an uncompressed shard when none is chosen.
/// Reading a row of a mapped uncompressed batch costs the same whatever its
/// size (its arrays are views into the mapping), so batches are large: fewer
/// of them to index and to assemble from.
pub const DEFAULT_BATCH_ROWS: usize = 65_536;

/// Rows per record batch of a compressed shard when none is chosen.
///
/// Reading any row of a compressed batch decodes the whole batch, so the
/// batch size is the cost of every read that misses the reader's
/// decoded-batch cache, while decoding (and compressing) many small batches
/// costs more per byte. Measured with `mosaicrs-format-bench --compression
/// zstd --batch-rows N --batch-cache 32m` (2,000,000 rows of 76 bytes, a
/// cache of a fifth of the decoded data; BENCHMARKS.md): random single-row
/// reads at 1,024 / 4,096 / 16,384 / 65,536 rows ran at 5,991 / 2,285 / 648
/// / 169 rows/s, full scans at 414 / 684 / 688 / 750 MB/s, and the files
/// took 123.3 / 118.7 / 117.8 / 117.7 MB. 4,096 rows keeps scans and the
/// compression ratio within 10% and 1% of 65,536-row batches while a miss
/// costs 13 times less; 1,024 would make a miss 2.6 times cheaper again
/// but scan 40% slower.
pub const DEFAULT_COMPRESSED_BATCH_ROWS: usize = 4_096;

/// How shards are cut and encoded.
///
/// ```
/// use mosaicrs::format::Compression;
/// use mosaicrs::writer::WriterOptions;
/// let zstd = WriterOptions { compression: Compression::Zstd, ..Default::default() };
/// assert_eq!(zstd.batch_rows(), 4_096); // small batches for random access
/// let chosen = WriterOptions { max_batch_rows: Some(50_000), ..zstd };
/// assert_eq!(chosen.batch_rows(), 50_000);
/// assert_eq!(WriterOptions::default().batch_rows(), 65_536);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// A shard is sealed once it holds at least this many bytes (it may
    /// exceed the limit by one record batch). Default 64 MiB.
    pub max_shard_bytes: u64,
    /// Upper bound on rows per record batch inside a shard; larger input
    /// batches are split. It bounds the cost of random access into
    /// compressed shards. `None` (the default) takes
    /// [`WriterOptions::default_batch_rows`] for the compression; a number
    /// chosen here is kept whatever the compression.
    pub max_batch_rows: Option<usize>,
    /// Arrow IPC buffer compression. Default none, which allows zero-copy reads.
    pub compression: Compression,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_shard_bytes: 64 * 1024 * 1024,
            max_batch_rows: None,
            compression: Compression::None,
        }
    }
}

impl WriterOptions {
    /// Rows per record batch when none is chosen: [`DEFAULT_BATCH_ROWS`]
    /// uncompressed, [`DEFAULT_COMPRESSED_BATCH_ROWS`] with zstd or lz4.
    /// Every writer (Rust, the CLI, Python, the Spark connectors) takes its
    /// default from here.
    ///
    /// ```
    /// use mosaicrs::format::Compression;
    /// use mosaicrs::writer::WriterOptions;
    /// assert_eq!(WriterOptions::default_batch_rows(Compression::Lz4), 4_096);
    /// assert_eq!(WriterOptions::default_batch_rows(Compression::None), 65_536);
    /// ```
    pub fn default_batch_rows(compression: Compression) -> usize {
        match compression {
            Compression::None => DEFAULT_BATCH_ROWS,
            _ => DEFAULT_COMPRESSED_BATCH_ROWS,
        }
    }

    /// The upper bound on rows per record batch these options give: the
    /// chosen `max_batch_rows`, or the default for the compression.
    pub fn batch_rows(&self) -> usize {
        self.max_batch_rows
            .unwrap_or_else(|| Self::default_batch_rows(self.compression))
    }

    /// Checks that every option has a usable value.
    ///
    /// ```
    /// use mosaicrs::writer::WriterOptions;
    /// let bad = WriterOptions { max_batch_rows: Some(0), ..Default::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("max_batch_rows"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.max_shard_bytes == 0 {
            return Err(Error::InvalidArgument(
                "max_shard_bytes (shard size) must be positive".into(),
            ));
        }
        if self.max_batch_rows == Some(0) {
            return Err(Error::InvalidArgument(
                "max_batch_rows (rows per record batch) must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Parses a byte size such as `67108864`, `64m`, `64MiB`, `1g` or `512k`.
///
/// ```
/// use mosaicrs::writer::parse_byte_size;
/// assert_eq!(parse_byte_size("64m").unwrap(), 64 << 20);
/// assert_eq!(parse_byte_size("1024").unwrap(), 1024);
/// assert!(parse_byte_size("lots").is_err());
/// ```
pub fn parse_byte_size(text: &str) -> Result<u64> {
    let t = text.trim().to_ascii_lowercase();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let bad = || {
        Error::InvalidArgument(format!(
            "size {text:?} is not a byte count; use e.g. 67108864, 64m or 1g"
        ))
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}
