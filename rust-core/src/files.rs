//! Opening dataset files safely: no symbolic links, regular files only.
//!
//! A dataset's files are named by its index, which is untrusted input. A shard
//! name that is a symlink could lead outside the dataset folder, and a FIFO or
//! device under a shard name would block or misbehave, so every file that
//! mosaicrs reads from a dataset goes through [`open_regular`].

use std::fs::File;
use std::io;
use std::path::Path;

/// Opens `path` read-only, refusing symbolic links (the last component is not
/// followed) and anything that is not a regular file.
///
/// A FIFO is opened non-blocking, so a FIFO under a dataset name is refused at
/// once instead of blocking until a writer appears.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let file = dir.path().join("a");
/// std::fs::write(&file, b"x").unwrap();
/// assert!(mosaicrs::files::open_regular(&file).is_ok());
/// assert!(mosaicrs::files::open_regular(dir.path()).is_err());
/// ```
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a symbolic link; mosaicrs does not follow links inside a dataset",
            );
        }
        e
    })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_symlink() {
            "a symbolic link"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {what}; only regular files are read"),
        ));
    }
    Ok(file)
}

/// Reads the whole regular file at `path` (see [`open_regular`]).
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}
