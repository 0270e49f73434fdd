//! Shard checksums: XXH3-64 over the whole file, written as `xxh3-64:<16 hex>`.
//!
//! XXH3 runs at memory bandwidth, so `validate` of a large dataset is bound
//! by the disk, and it is computed while the shard is written (no re-read).

use std::io::{self, Write};

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// The algorithm tag that prefixes every checksum string.
pub const CHECKSUM_ALGORITHM: &str = "xxh3-64";

/// A checksum value together with its algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum(pub u64);

impl Checksum {
    /// Checksum of a whole byte slice (for example a mapped shard).
    ///
    /// ```
    /// use mosaicrs::format::Checksum;
    /// let c = Checksum::of(b"abc");
    /// assert!(c.to_string().starts_with("xxh3-64:"));
    /// assert_eq!(c.to_string().parse::<Checksum>().unwrap(), c);
    /// ```
    pub fn of(bytes: &[u8]) -> Self {
        Checksum(xxh3_64(bytes))
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{CHECKSUM_ALGORITHM}:{:016x}", self.0)
    }
}

impl std::str::FromStr for Checksum {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let hex = s
            .strip_prefix(CHECKSUM_ALGORITHM)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(|| format!("checksum {s:?} does not start with {CHECKSUM_ALGORITHM}:"))?;
        u64::from_str_radix(hex, 16)
            .map(Checksum)
            .map_err(|e| format!("checksum {s:?} is not hexadecimal: {e}"))
    }
}

/// A writer that counts and hashes every byte on its way to `inner`.
pub struct ChecksumWriter<W> {
    inner: W,
    hasher: Xxh3,
    bytes: u64,
}

impl<W: Write> ChecksumWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        ChecksumWriter {
            inner,
            hasher: Xxh3::new(),
            bytes: 0,
        }
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// The checksum of everything written so far.
    pub fn checksum(&self) -> Checksum {
        Checksum(self.hasher.digest())
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Unwraps the writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for ChecksumWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
