//! Shard checksums: XXH3-64 over the whole file, written as `xxh3-64:<16 hex>`.
//!
//! XXH3 runs at memory bandwidth, so `validate` of a large dataset is bound
//! by the disk, and it is computed while the shard is written (no re-read).

use std::io::{self, Write};

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

/// The algorithm tag that prefixes every checksum string.
pub const CHECKSUM_ALGORITHM: &str = "xxh3-64";

/// A checksum value together with its algorithm.
///
/// In `index.json` it is the string `xxh3-64:<16 lowercase hex digits>`;
/// an index whose checksum has any other form is refused when it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// Parses exactly the form that [`Display`](std::fmt::Display) writes.
    ///
    /// ```
    /// use mosaicrs::format::Checksum;
    /// assert_eq!("xxh3-64:00000000000000ff".parse::<Checksum>().unwrap(), Checksum(255));
    /// assert!("xxh3-64:ff".parse::<Checksum>().is_err());               // 16 digits
    /// assert!("xxh3-64:00000000000000FF".parse::<Checksum>().is_err()); // lowercase
    /// assert!("md5:00000000000000ff".parse::<Checksum>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, String> {
        let hex = s
            .strip_prefix(CHECKSUM_ALGORITHM)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(|| format!("checksum {s:?} does not start with {CHECKSUM_ALGORITHM}:"))?;
        // One spelling per value: the sample-space fingerprint hashes the
        // string form, so two spellings of one checksum must not both parse.
        if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!(
                "checksum {s:?} is not {CHECKSUM_ALGORITHM}: followed by 16 lowercase hex digits"
            ));
        }
        u64::from_str_radix(hex, 16)
            .map(Checksum)
            .map_err(|e| format!("checksum {s:?} is not hexadecimal: {e}"))
    }
}

impl serde::Serialize for Checksum {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Checksum {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
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
