//! How a dataset is read: checksum verification and the access path.

use std::path::Path;

use super::batch_cache::DEFAULT_BATCH_CACHE_BYTES;

/// How shard bytes reach the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Access {
    /// Memory-map shards on local file systems and read them with positioned
    /// reads on network and FUSE file systems (NFS, SMB/CIFS, FUSE, 9p, Ceph,
    /// Lustre, AFS...), where a file that shrinks under a mapping would kill
    /// the process with SIGBUS.
    #[default]
    Auto,
    /// Always memory-map: zero-copy reads of uncompressed shards. Needs the
    /// shards to stay unchanged while open (see docs/FORMAT.md).
    Mmap,
    /// Always use positioned reads (`pread`) into owned buffers: one copy per
    /// record batch, and a file changed while open gives an error, never SIGBUS.
    Pread,
}

impl std::str::FromStr for Access {
    type Err = crate::Error;

    /// Parses `auto`, `mmap` or `pread`.
    ///
    /// ```
    /// use mosaicrs::reader::Access;
    /// assert_eq!("pread".parse::<Access>().unwrap(), Access::Pread);
    /// assert!("mapped".parse::<Access>().is_err());
    /// ```
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Access::Auto),
            "mmap" => Ok(Access::Mmap),
            "pread" => Ok(Access::Pread),
            other => Err(crate::Error::InvalidArgument(format!(
                "access {other:?} is not supported; use auto, mmap or pread"
            ))),
        }
    }
}

impl Access {
    /// The concrete path for files in `dir`: `Auto` becomes `Pread` on a
    /// network or FUSE file system and `Mmap` elsewhere.
    pub fn resolve(self, dir: &Path) -> Access {
        match self {
            Access::Auto if is_remote_file_system(dir) => Access::Pread,
            Access::Auto => Access::Mmap,
            other => other,
        }
    }
}

/// Options for [`Dataset::open_with`](super::Dataset::open_with).
///
/// ```no_run
/// use mosaicrs::reader::{Access, Dataset, ReadOptions};
/// let options = ReadOptions {
///     verify_checksums: true,
///     access: Access::Auto,
///     batch_cache_bytes: 1 << 30, // 1 GiB of decoded batches
/// };
/// let dataset = Dataset::open_with("data/train", &options)?;
/// # Ok::<(), mosaicrs::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Hash every shard when it is opened and refuse one whose checksum
    /// differs from the index: for data on long-lived or untrusted storage.
    /// Costs one pass over the bytes at memory speed (see BENCHMARKS.md).
    pub verify_checksums: bool,
    /// Mapped or positioned reads.
    pub access: Access,
    /// Bytes of decoded record batches the dataset keeps, shared by its
    /// shards and threads: the batches of compressed shards, and of any
    /// shard read with positioned reads ([`BatchCache`](super::BatchCache)).
    /// Mapped uncompressed shards need none. 0 decodes every read again.
    /// Default [`DEFAULT_BATCH_CACHE_BYTES`] (256 MiB).
    pub batch_cache_bytes: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            verify_checksums: false,
            access: Access::Auto,
            batch_cache_bytes: DEFAULT_BATCH_CACHE_BYTES,
        }
    }
}

/// True when `dir` is on a network or FUSE file system, by `statfs` magic.
#[cfg(target_os = "linux")]
pub fn is_remote_file_system(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    // Magic numbers from linux/magic.h and the file systems' own headers.
    const REMOTE: &[i64] = &[
        0x6969,                // NFS
        0x517B,                // SMB
        0xFF53_4D42u32 as i64, // CIFS
        0xFE53_4D42u32 as i64, // SMB2
        0x6573_5546,           // FUSE
        0x0102_1997,           // 9p (v9fs)
        0x00C3_6400,           // Ceph
        0x0BD0_0BD0,           // Lustre
        0x5346_414F,           // AFS
        0x7375_7245,           // Coda
        0x0116_1970,           // GFS2
        0x7461_636F,           // OCFS2
        0x4750_4653,           // GPFS
    ];
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a plain
    // struct that statfs fills; both outlive the call.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut stat) } != 0 {
        return false;
    }
    #[allow(clippy::unnecessary_cast)]
    let magic = (stat.f_type as i64) & 0xFFFF_FFFF;
    REMOTE.contains(&magic)
}

/// True when `dir` is on a network or FUSE file system (not detected on this OS).
#[cfg(not(target_os = "linux"))]
pub fn is_remote_file_system(_dir: &Path) -> bool {
    false
}
