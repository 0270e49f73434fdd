//! One mapped shard: footer parsing and record batch decoding.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, OnceLock};

use arrow::buffer::Buffer;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::{read_footer_length, FileDecoder};
use arrow::ipc::{convert::try_fb_to_schema, root_as_footer, Block};
use arrow::record_batch::RecordBatch;
use memmap2::Mmap;

use crate::format::{schema_difference, Checksum, Compression, ShardEntry};
use crate::{Error, Result};

/// `ARROW1`: the magic at both ends of an Arrow IPC file.
const MAGIC: &[u8; 6] = b"ARROW1";
/// Leading magic plus padding, footer length and trailing magic.
const MIN_FILE_LEN: usize = 8 + 4 + 6;
/// Decoded batches kept per compressed shard; uncompressed ones keep all,
/// since their arrays are views into the mapping and cost no copy.
const COMPRESSED_CACHE_BATCHES: usize = 2;

/// A shard of a dataset, mapped into memory.
pub struct Shard {
    entry: ShardEntry,
    path: PathBuf,
    /// The whole file as an Arrow buffer that owns the mapping.
    data: Buffer,
    decoder: FileDecoder,
    blocks: Vec<Block>,
    /// First row of each batch within the shard, plus the total at the end.
    batch_row_offsets: Vec<u64>,
    cache: BatchCache,
}

enum BatchCache {
    /// One slot per batch.
    All(Vec<OnceLock<RecordBatch>>),
    /// The most recently decoded batches of a compressed shard.
    Recent(Mutex<Vec<(usize, RecordBatch)>>),
}

impl Shard {
    /// Maps the shard `entry` of the dataset in `dir` and checks its structure
    /// against the index: size, magic, footer, schema and row count.
    pub fn open(dir: &Path, entry: &ShardEntry, schema: &SchemaRef) -> Result<Self> {
        let path = dir.join(&entry.path);
        let corrupt = |reason: String| Error::CorruptShard {
            path: path.clone(),
            reason,
        };
        let data = map_shard_file(&path, entry)?;
        let bytes = data.as_slice();
        if bytes.len() < MIN_FILE_LEN {
            return Err(corrupt(format!(
                "{} bytes is too short for an Arrow IPC file",
                bytes.len()
            )));
        }
        if &bytes[..6] != MAGIC {
            return Err(corrupt(
                "wrong magic at the start: not an Arrow IPC file".into(),
            ));
        }
        let tail_start = bytes.len() - 10;
        if &bytes[bytes.len() - 6..] != MAGIC {
            return Err(corrupt(
                "wrong magic at the end: the file is truncated or not an Arrow IPC file".into(),
            ));
        }
        let mut trailer = [0u8; 10];
        trailer.copy_from_slice(&bytes[tail_start..]);
        let footer_len =
            read_footer_length(trailer).map_err(|e| corrupt(format!("bad footer length: {e}")))?;
        if footer_len > tail_start.saturating_sub(8) {
            return Err(corrupt(format!(
                "footer length {footer_len} exceeds the file"
            )));
        }
        let footer = root_as_footer(&bytes[tail_start - footer_len..tail_start])
            .map_err(|e| corrupt(format!("unreadable footer: {e}")))?;
        let fb_schema = footer
            .schema()
            .ok_or_else(|| corrupt("footer has no schema".into()))?;
        let file_schema = try_fb_to_schema(fb_schema)
            .map_err(|e| corrupt(format!("unreadable schema in the footer: {e}")))?;
        if let Some(detail) = schema_difference(schema, &file_schema) {
            return Err(Error::SchemaMismatch {
                path: path.clone(),
                detail: format!("shard schema differs from the index: {detail}"),
            });
        }
        let blocks: Vec<Block> = footer
            .recordBatches()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default();
        if footer.dictionaries().is_some_and(|d| !d.is_empty()) {
            return Err(corrupt(
                "dictionary-encoded shards are not part of format v1".into(),
            ));
        }
        let decoder = FileDecoder::new(Arc::clone(schema), footer.version());

        let mut batch_row_offsets = Vec::with_capacity(blocks.len() + 1);
        batch_row_offsets.push(0u64);
        let mut rows = 0u64;
        for (i, block) in blocks.iter().enumerate() {
            rows += batch_length(&data, block)
                .map_err(|reason| corrupt(format!("record batch {i}: {reason}")))?;
            batch_row_offsets.push(rows);
        }
        if rows != entry.rows {
            return Err(corrupt(format!(
                "the index records {} rows, the file holds {rows}",
                entry.rows
            )));
        }
        let cache = match entry.compression {
            Compression::None => {
                BatchCache::All((0..blocks.len()).map(|_| OnceLock::new()).collect())
            }
            _ => BatchCache::Recent(Mutex::new(Vec::new())),
        };
        Ok(Shard {
            entry: entry.clone(),
            path,
            data,
            decoder,
            blocks,
            batch_row_offsets,
            cache,
        })
    }

    /// The index entry of this shard.
    pub fn entry(&self) -> &ShardEntry {
        &self.entry
    }

    /// Full path of the file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows in the shard.
    pub fn num_rows(&self) -> u64 {
        self.entry.rows
    }

    /// Record batches in the shard.
    pub fn num_batches(&self) -> usize {
        self.blocks.len()
    }

    /// First row of each batch within the shard, then the shard's row count.
    pub fn batch_row_offsets(&self) -> &[u64] {
        &self.batch_row_offsets
    }

    /// The mapped bytes of the whole file.
    pub fn bytes(&self) -> &[u8] {
        self.data.as_slice()
    }

    /// Record batch `i`. For uncompressed shards the arrays are views into
    /// the mapping (no copy) and the batch is decoded once, then cached.
    pub fn batch(&self, i: usize) -> Result<RecordBatch> {
        match &self.cache {
            BatchCache::All(slots) => {
                let slot = slots.get(i).ok_or_else(|| self.no_batch(i))?;
                if let Some(batch) = slot.get() {
                    return Ok(batch.clone());
                }
                let batch = self.decode(i)?;
                Ok(slot.get_or_init(|| batch).clone())
            }
            BatchCache::Recent(recent) => {
                if let Ok(recent) = recent.lock() {
                    if let Some((_, batch)) = recent.iter().find(|(j, _)| *j == i) {
                        return Ok(batch.clone());
                    }
                }
                let batch = self.decode(i)?;
                if let Ok(mut recent) = recent.lock() {
                    if recent.len() >= COMPRESSED_CACHE_BATCHES {
                        recent.remove(0);
                    }
                    recent.push((i, batch.clone()));
                }
                Ok(batch)
            }
        }
    }

    fn no_batch(&self, i: usize) -> Error {
        Error::Internal(format!(
            "batch {i} requested from {} which has {} batches",
            self.path.display(),
            self.blocks.len()
        ))
    }

    fn decode(&self, i: usize) -> Result<RecordBatch> {
        let block = self.blocks.get(i).ok_or_else(|| self.no_batch(i))?;
        let len = block.metaDataLength() as usize + block.bodyLength() as usize;
        let offset = block.offset() as usize;
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self.data.len())
        {
            return Err(Error::CorruptShard {
                path: self.path.clone(),
                reason: format!("record batch {i} lies outside the file"),
            });
        }
        let buf = self.data.slice_with_length(offset, len);
        self.decoder
            .read_record_batch(block, &buf)
            .map_err(|e| Error::CorruptShard {
                path: self.path.clone(),
                reason: format!("record batch {i} cannot be decoded: {e}"),
            })?
            .ok_or_else(|| Error::CorruptShard {
                path: self.path.clone(),
                reason: format!("record batch {i} is missing"),
            })
    }

    /// Recomputes the file's checksum and compares it with the index.
    pub fn verify_checksum(&self) -> Result<()> {
        check_checksum(&self.path, &self.entry, self.bytes())
    }
}

/// Opens and maps the shard file at `path`, checking its size against `entry`.
pub(crate) fn map_shard_file(path: &Path, entry: &ShardEntry) -> Result<Buffer> {
    let file = File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::MissingShard {
            path: path.to_path_buf(),
        },
        _ => Error::io(path, e),
    })?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len != entry.bytes {
        return Err(Error::CorruptShard {
            path: path.to_path_buf(),
            reason: format!(
                "the index records {} bytes, the file has {len} (truncated or replaced?)",
                entry.bytes
            ),
        });
    }
    map_file(&file, path)
}

/// Compares the checksum of `bytes` (the whole file at `path`) with `entry`'s.
pub(crate) fn check_checksum(path: &Path, entry: &ShardEntry, bytes: &[u8]) -> Result<()> {
    let actual = Checksum::of(bytes).to_string();
    if actual != entry.checksum {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: entry.checksum.clone(),
            actual,
        });
    }
    Ok(())
}

/// Maps `file` read-only and wraps the mapping in an Arrow buffer, so that
/// arrays decoded from it keep the mapping alive.
fn map_file(file: &File, path: &Path) -> Result<Buffer> {
    // SAFETY: shards are sealed (renamed into place once complete) and never
    // modified afterwards; the format forbids writing to a committed shard, so
    // the mapped bytes do not change under us. A user who truncates a shard
    // by hand can still cause SIGBUS, as with any mmap-based reader.
    let mmap = unsafe { Mmap::map(file) }.map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    let _ = mmap.advise(memmap2::Advice::WillNeed);
    let len = mmap.len();
    let ptr = NonNull::new(mmap.as_ptr() as *mut u8)
        .ok_or_else(|| Error::Internal(format!("null mapping for {}", path.display())))?;
    // SAFETY: `ptr` points to `len` readable bytes owned by `mmap`, which the
    // buffer keeps alive (as its custom allocation) for as long as any slice
    // of it exists; the bytes are never written through this buffer.
    Ok(unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(mmap)) })
}

/// Reads the row count of a record batch from its message header without
/// decoding its buffers.
fn batch_length(data: &Buffer, block: &Block) -> std::result::Result<u64, String> {
    let start = block.offset() as usize;
    let meta_len = block.metaDataLength() as usize;
    let end = start
        .checked_add(meta_len)
        .filter(|&end| end <= data.len())
        .ok_or("message header lies outside the file")?;
    let meta = &data.as_slice()[start..end];
    // The encapsulated message is [0xFFFFFFFF continuation][u32 length][flatbuffer].
    let body = if meta.len() >= 8 && meta[..4] == [0xff; 4] {
        &meta[8..]
    } else if meta.len() >= 4 {
        &meta[4..]
    } else {
        return Err("message header is too short".into());
    };
    let message = arrow::ipc::root_as_message(body).map_err(|e| format!("bad message: {e}"))?;
    let batch = message
        .header_as_record_batch()
        .ok_or("message is not a record batch")?;
    u64::try_from(batch.length()).map_err(|_| "negative row count".to_string())
}
