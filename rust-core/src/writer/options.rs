//! Options of the shard writer.

use crate::format::Compression;
use crate::{Error, Result};

/// How shards are cut and encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// A shard is sealed once it holds at least this many bytes (it may
    /// exceed the limit by one record batch). Default 64 MiB.
    pub max_shard_bytes: u64,
    /// Upper bound on rows per record batch inside a shard; larger input
    /// batches are split. Bounds the cost of random access into compressed
    /// shards. Default 65,536.
    pub max_batch_rows: usize,
    /// Arrow IPC buffer compression. Default none, which allows zero-copy reads.
    pub compression: Compression,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            max_shard_bytes: 64 * 1024 * 1024,
            max_batch_rows: 65_536,
            compression: Compression::None,
        }
    }
}

impl WriterOptions {
    /// Checks that every option has a usable value.
    ///
    /// ```
    /// use mosaicrs::writer::WriterOptions;
    /// let bad = WriterOptions { max_batch_rows: 0, ..Default::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("max_batch_rows"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.max_shard_bytes == 0 {
            return Err(Error::InvalidArgument(
                "max_shard_bytes (shard size) must be positive".into(),
            ));
        }
        if self.max_batch_rows == 0 {
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
