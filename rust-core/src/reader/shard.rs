//! One shard: its footer and record batch headers checked against the file,
//! then batches decoded from a mapping or from positioned reads.

use std::fs::File;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

use arrow::array::new_null_array;
use arrow::buffer::{Buffer, MutableBuffer};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::FileDecoder;
use arrow::ipc::MetadataVersion;
use arrow::record_batch::RecordBatch;
use memmap2::Mmap;
use xxhash_rust::xxh3::Xxh3;

use super::batch_cache::BatchCache;
use super::footer::{footer_range, BlockRange, Footer, MAGIC, MIN_FILE_LEN, TRAILER_LEN};
use super::message::check_message;
use super::options::{Access, ReadOptions};
use crate::format::{shard_schema_difference, Checksum, Compression, ShardEntry};
use crate::{Error, Result};

/// A shard of a dataset, open for reading.
pub struct Shard {
    entry: ShardEntry,
    path: PathBuf,
    source: ShardBytes,
    version: MetadataVersion,
    /// The dataset's schema, which every batch is returned with.
    schema: SchemaRef,
    /// The schema the file holds: the dataset's, or a prefix of it when the
    /// shard was written before an append added columns (they read as nulls).
    file_schema: SchemaRef,
    decoder: FileDecoder,
    blocks: Vec<BlockRange>,
    /// First row of each batch within the shard, plus the total at the end.
    batch_row_offsets: Vec<u64>,
    batches: Batches,
}

/// Where a shard's bytes come from.
enum ShardBytes {
    /// The whole file as an Arrow buffer that owns the mapping.
    Mapped(Buffer),
    /// Positioned reads into owned buffers: for network and FUSE file
    /// systems, where a file that shrinks under a mapping raises SIGBUS.
    Pread(File),
}

impl ShardBytes {
    /// `len` bytes at `offset`; the caller has checked that they lie inside
    /// the file as the index records it.
    fn read(&self, path: &Path, offset: u64, len: u64) -> Result<Buffer> {
        match self {
            ShardBytes::Mapped(data) => {
                let in_range = offset
                    .checked_add(len)
                    .is_some_and(|end| end <= data.len() as u64);
                if !in_range {
                    return Err(Error::Internal(format!(
                        "bytes {offset}+{len} requested outside {}",
                        path.display()
                    )));
                }
                Ok(data.slice_with_length(offset as usize, len as usize))
            }
            ShardBytes::Pread(file) => {
                let len = usize::try_from(len)
                    .map_err(|_| Error::Internal(format!("{len} bytes do not fit in memory")))?;
                // 64-byte aligned, so Arrow uses the bytes without another copy.
                let mut buf = MutableBuffer::from_len_zeroed(len);
                read_exact_at(file, buf.as_slice_mut(), offset).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        Error::CorruptShard {
                            path: path.to_path_buf(),
                            reason: format!(
                                "the file ended before byte {}: it was truncated or replaced \
                                 while open",
                                offset + len as u64
                            ),
                        }
                    } else {
                        Error::io(path, e)
                    }
                })?;
                Ok(buf.into())
            }
        }
    }

    /// The checksum of the whole file (`len` bytes).
    fn checksum(&self, path: &Path, len: u64) -> Result<Checksum> {
        match self {
            ShardBytes::Mapped(data) => Ok(Checksum::of(data.as_slice())),
            ShardBytes::Pread(file) => {
                const CHUNK: u64 = 4 << 20;
                let mut hasher = Xxh3::new();
                let mut chunk = vec![0u8; CHUNK.min(len) as usize];
                let mut at = 0u64;
                while at < len {
                    let n = (len - at).min(CHUNK) as usize;
                    read_exact_at(file, &mut chunk[..n], at).map_err(|e| Error::io(path, e))?;
                    hasher.update(&chunk[..n]);
                    at += n as u64;
                }
                Ok(Checksum(hasher.digest()))
            }
        }
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Where decoded batches are kept.
enum Batches {
    /// One slot per batch of a mapped uncompressed shard: its arrays are
    /// views into the mapping and cost no memory, so all are kept.
    All(Vec<OnceLock<RecordBatch>>),
    /// Compressed or read with `pread`: decoded into owned memory, kept in
    /// the byte-bounded cache of the dataset (or of this shard alone, when
    /// it was opened by itself), under this shard's position `key`.
    Cached { cache: Arc<BatchCache>, key: usize },
}

/// The cache of a shard opened by itself: its own, of `capacity` bytes.
fn own_cache(capacity: u64) -> Result<(Arc<BatchCache>, usize)> {
    Ok((Arc::new(BatchCache::new(capacity)?), 0))
}

impl Shard {
    /// Maps the shard `entry` of the dataset in `dir` and checks its structure
    /// against the index: size, magic, footer, schema, batches and row count.
    pub fn open(dir: &Path, entry: &ShardEntry, schema: &SchemaRef) -> Result<Self> {
        Self::open_with(dir, entry, schema, &ReadOptions::default())
    }

    /// Opens the shard `entry` of the dataset in `dir` the way `options`
    /// say: mapped or with positioned reads, its checksum verified first
    /// when asked. Every offset and length in the footer and in the record
    /// batch headers is checked against the file before it is used.
    ///
    /// Its compressed (or `pread`) batches are kept in a cache of its own
    /// of `options.batch_cache_bytes`; the shards of a
    /// [`Dataset`](super::Dataset) share the dataset's instead.
    pub fn open_with(
        dir: &Path,
        entry: &ShardEntry,
        schema: &SchemaRef,
        options: &ReadOptions,
    ) -> Result<Self> {
        let cache = own_cache(options.batch_cache_bytes)?;
        Self::open_cached(dir, entry, schema, options, cache)
    }

    /// [`Shard::open_with`] for the shard at position `key` of a dataset
    /// whose decoded batches all go to `cache`.
    pub(crate) fn open_cached(
        dir: &Path,
        entry: &ShardEntry,
        schema: &SchemaRef,
        options: &ReadOptions,
        cache: (Arc<BatchCache>, usize),
    ) -> Result<Self> {
        let path = dir.join(&entry.path);
        let file = open_shard_file(&path, entry)?;
        let source = match options.access.resolve(dir) {
            Access::Pread => ShardBytes::Pread(file),
            Access::Mmap | Access::Auto => ShardBytes::Mapped(map_file(&file, &path)?),
        };
        Self::from_source(path, entry, schema, source, options.verify_checksums, cache)
    }

    /// Opens the shard `entry` of the dataset at `location`: a local one as
    /// [`Shard::open_with`] does; a remote one is read whole into memory
    /// (no cache: the Spark executors' scan reads each shard once) and its
    /// checksum is always verified, since the bytes crossed a network.
    ///
    /// ```no_run
    /// # use mosaicrs::{reader::{ReadOptions, Shard}, storage::{Location, StorageOptions}};
    /// let location = Location::parse("s3://bucket/train", &StorageOptions::default())?;
    /// let index = location.load_index()?;
    /// let shard = Shard::open_at(&location, &index.shards[0], &index.arrow_schema()?,
    ///     &ReadOptions::default())?;
    /// # Ok::<(), mosaicrs::Error>(())
    /// ```
    pub fn open_at(
        location: &crate::storage::Location,
        entry: &ShardEntry,
        schema: &SchemaRef,
        options: &ReadOptions,
    ) -> Result<Self> {
        match location {
            crate::storage::Location::Local(dir) => Self::open_with(dir, entry, schema, options),
            crate::storage::Location::Remote(store) => {
                let url = PathBuf::from(store.url_of(&entry.path));
                let bytes = store
                    .get(&entry.path)?
                    .ok_or_else(|| Error::MissingShard { path: url.clone() })?;
                let source = ShardBytes::Mapped(Buffer::from(bytes));
                let cache = own_cache(options.batch_cache_bytes)?;
                Self::check_length(&url, entry, &source)?;
                Self::from_source(url, entry, schema, source, true, cache)
            }
        }
    }

    /// A shard whose bytes are already in memory (downloaded, or a fuzzing
    /// input), checked exactly as [`Shard::open_with`] checks a file;
    /// `path` names it in errors. Compressed batches go to a cache of its
    /// own of the default size.
    ///
    /// ```no_run
    /// # use mosaicrs::{format::Index, reader::Shard};
    /// # let dir = std::path::Path::new("data/train");
    /// let index = Index::load(dir)?;
    /// let entry = &index.shards[0];
    /// let bytes = std::fs::read(dir.join(&entry.path)).unwrap();
    /// let shard = Shard::from_bytes(dir.join(&entry.path), entry, &index.arrow_schema()?,
    ///     arrow::buffer::Buffer::from_vec(bytes), true)?;
    /// # Ok::<(), mosaicrs::Error>(())
    /// ```
    pub fn from_bytes(
        path: PathBuf,
        entry: &ShardEntry,
        schema: &SchemaRef,
        bytes: Buffer,
        verify_checksum: bool,
    ) -> Result<Self> {
        let source = ShardBytes::Mapped(bytes);
        Self::check_length(&path, entry, &source)?;
        let cache = own_cache(ReadOptions::default().batch_cache_bytes)?;
        Self::from_source(path, entry, schema, source, verify_checksum, cache)
    }

    /// Refuses bytes in memory whose length differs from the index's.
    fn check_length(path: &Path, entry: &ShardEntry, source: &ShardBytes) -> Result<()> {
        let len = match source {
            ShardBytes::Mapped(bytes) => bytes.len() as u64,
            ShardBytes::Pread(_) => return Ok(()),
        };
        if len != entry.bytes {
            return Err(Error::CorruptShard {
                path: path.to_path_buf(),
                reason: format!(
                    "the index records {} bytes, the shard has {len}",
                    entry.bytes
                ),
            });
        }
        Ok(())
    }

    fn from_source(
        path: PathBuf,
        entry: &ShardEntry,
        schema: &SchemaRef,
        source: ShardBytes,
        verify_checksum: bool,
        (cache, key): (Arc<BatchCache>, usize),
    ) -> Result<Self> {
        let corrupt = |reason: String| Error::CorruptShard {
            path: path.clone(),
            reason,
        };
        if verify_checksum {
            check_checksum(&path, entry, source.checksum(&path, entry.bytes)?)?;
        }
        let file_len = entry.bytes;
        if file_len < MIN_FILE_LEN {
            return Err(corrupt(format!(
                "{file_len} bytes is too short for an Arrow IPC file"
            )));
        }
        let head = source.read(&path, 0, 6)?;
        if head.as_slice() != MAGIC {
            return Err(corrupt(
                "wrong magic at the start: not an Arrow IPC file".into(),
            ));
        }
        let trailer = source.read(&path, file_len - TRAILER_LEN, TRAILER_LEN)?;
        let (footer_start, footer_len) =
            footer_range(file_len, trailer.as_slice()).map_err(corrupt)?;
        let footer_bytes = source.read(&path, footer_start, footer_len)?;
        let footer = Footer::parse(footer_bytes.as_slice(), footer_start).map_err(corrupt)?;
        drop(footer_bytes);
        if let Some(detail) = shard_schema_difference(schema, &footer.schema) {
            return Err(Error::SchemaMismatch {
                path: path.clone(),
                detail: format!("shard schema differs from the index: {detail}"),
            });
        }
        // The file's own schema decodes it; equal to the index's unless the
        // shard predates added columns.
        let file_schema = if footer.schema.fields().len() == schema.fields().len() {
            Arc::clone(schema)
        } else {
            Arc::new(Schema::new_with_metadata(
                schema.fields()[..footer.schema.fields().len()].to_vec(),
                schema.metadata().clone(),
            ))
        };
        if footer.blocks.len() as u64 != u64::from(entry.batches) {
            return Err(corrupt(format!(
                "the index records {} record batches, the file holds {}",
                entry.batches,
                footer.blocks.len()
            )));
        }
        let decoder = FileDecoder::new(Arc::clone(&file_schema), footer.version);

        let mut batch_row_offsets = Vec::with_capacity(footer.blocks.len() + 1);
        batch_row_offsets.push(0u64);
        let mut rows = 0u64;
        for (i, block) in footer.blocks.iter().enumerate() {
            let meta = source.read(&path, block.offset, block.meta_len)?;
            let left = entry.rows.saturating_sub(rows);
            let n = check_message(
                meta.as_slice(),
                block.body_len,
                None,
                footer.version,
                &file_schema,
                entry.compression,
                left,
            )
            .map_err(|reason| corrupt(format!("record batch {i}: {reason}")))?;
            rows += n;
            batch_row_offsets.push(rows);
        }
        if rows != entry.rows {
            return Err(corrupt(format!(
                "the index records {} rows, the file holds {rows}",
                entry.rows
            )));
        }
        let batches = match (entry.compression, &source) {
            (Compression::None, ShardBytes::Mapped(_)) => {
                Batches::All((0..footer.blocks.len()).map(|_| OnceLock::new()).collect())
            }
            _ => Batches::Cached { cache, key },
        };
        Ok(Shard {
            entry: entry.clone(),
            path,
            source,
            version: footer.version,
            schema: Arc::clone(schema),
            file_schema,
            decoder,
            blocks: footer.blocks,
            batch_row_offsets,
            batches,
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

    /// The mapped bytes of the whole file, or `None` when the shard is read
    /// with positioned reads.
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.source {
            ShardBytes::Mapped(data) => Some(data.as_slice()),
            ShardBytes::Pread(_) => None,
        }
    }

    /// Record batch `i`. For mapped uncompressed shards the arrays are
    /// views into the mapping (no copy) and the batch is decoded once, then
    /// kept. Other batches are decoded into memory and kept in the
    /// byte-bounded decoded-batch cache while it has room.
    pub fn batch(&self, i: usize) -> Result<RecordBatch> {
        match &self.batches {
            Batches::All(slots) => {
                let slot = slots.get(i).ok_or_else(|| self.no_batch(i))?;
                if let Some(batch) = slot.get() {
                    return Ok(batch.clone());
                }
                let batch = self.decode(i)?;
                Ok(slot.get_or_init(|| batch).clone())
            }
            Batches::Cached { .. } => self.cached_batch(i).map(|b| RecordBatch::clone(&b)),
        }
    }

    /// Record batch `i`, shared: a decoded batch comes out of the cache for
    /// one reference count, where [`batch`](Self::batch) clones every
    /// column's. The loader's gather reads this way.
    pub fn shared_batch(&self, i: usize) -> Result<Arc<RecordBatch>> {
        match &self.batches {
            Batches::All(_) => self.batch(i).map(Arc::new),
            Batches::Cached { .. } => self.cached_batch(i),
        }
    }

    fn cached_batch(&self, i: usize) -> Result<Arc<RecordBatch>> {
        let Batches::Cached { cache, key } = &self.batches else {
            return self.batch(i).map(Arc::new);
        };
        if i >= self.blocks.len() {
            return Err(self.no_batch(i));
        }
        let mapped = match &self.source {
            ShardBytes::Mapped(data) => Some(data.data_ptr()),
            ShardBytes::Pread(_) => None,
        };
        cache.get_or_decode(*key, i, mapped, || self.decode(i))
    }

    fn no_batch(&self, i: usize) -> Error {
        Error::Internal(format!(
            "batch {i} requested from {} which has {} batches",
            self.path.display(),
            self.blocks.len()
        ))
    }

    /// Record batch `i` with only the columns at `projection` (positions in
    /// the shard's schema, distinct), in that order. The other columns'
    /// buffers are neither validated nor decompressed: a scan of a few
    /// columns of a wide shard costs what those columns cost. Decoded for
    /// this call and not kept, unless the shard already holds the whole
    /// batch (then it is projected from that).
    ///
    /// ```no_run
    /// # use mosaicrs::{format::Index, reader::Shard};
    /// # let dir = std::path::Path::new("data/train");
    /// let index = Index::load(dir)?;
    /// let shard = Shard::open(dir, &index.shards[0], &index.arrow_schema()?)?;
    /// let label_and_id = shard.batch_projected(0, &[2, 0])?;
    /// assert_eq!(label_and_id.num_columns(), 2);
    /// # Ok::<(), mosaicrs::Error>(())
    /// ```
    pub fn batch_projected(&self, i: usize, projection: &[usize]) -> Result<RecordBatch> {
        let width = self.schema.fields().len();
        let mut seen = vec![false; width];
        for &column in projection {
            if column >= width || std::mem::replace(&mut seen[column], true) {
                return Err(Error::InvalidArgument(format!(
                    "projection {projection:?} of {}: each column position must be below {width} and appear once",
                    self.path.display()
                )));
            }
        }
        if projection.len() == width && projection.iter().enumerate().all(|(k, &c)| k == c) {
            return self.batch(i);
        }
        if let Batches::All(slots) = &self.batches {
            if let Some(batch) = slots.get(i).and_then(OnceLock::get) {
                return batch
                    .project(projection)
                    .map_err(|e| Error::arrow(format!("projecting {}", self.path.display()), e));
            }
        }
        let file_width = self.file_schema.fields().len();
        let projected = Arc::new(
            self.schema
                .project(projection)
                .map_err(|e| Error::arrow(format!("projecting {}", self.path.display()), e))?,
        );
        // Columns the dataset added after this shard was written are not in
        // the file: decode the others and fill those with nulls.
        let in_file: Vec<usize> = projection
            .iter()
            .copied()
            .filter(|&c| c < file_width)
            .collect();
        let rows = (self.batch_row_offsets[i + 1] - self.batch_row_offsets[i]) as usize;
        let mut decoded = if in_file.is_empty() {
            Vec::new()
        } else {
            let decoder = FileDecoder::new(Arc::clone(&self.file_schema), self.version)
                .with_projection(in_file.clone());
            let batch = self.decode_with(i, &decoder)?;
            if in_file.len() == projection.len() {
                return RecordBatch::try_new(projected, batch.columns().to_vec())
                    .map_err(|e| Error::arrow(format!("projecting {}", self.path.display()), e));
            }
            batch.columns().to_vec()
        }
        .into_iter();
        let columns = projection
            .iter()
            .map(|&c| match c < file_width {
                true => decoded.next(),
                false => Some(new_null_array(self.schema.field(c).data_type(), rows)),
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::CorruptShard {
                path: self.path.clone(),
                reason: format!("record batch {i}: a projected decode returned too few columns"),
            })?;
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
        RecordBatch::try_new_with_options(projected, columns, &options)
            .map_err(|e| Error::arrow(format!("projecting {}", self.path.display()), e))
    }

    fn decode(&self, i: usize) -> Result<RecordBatch> {
        self.with_added_columns(self.decode_with(i, &self.decoder)?)
    }

    fn decode_with(&self, i: usize, decoder: &FileDecoder) -> Result<RecordBatch> {
        let block = self.blocks.get(i).ok_or_else(|| self.no_batch(i))?;
        let corrupt = |reason: String| Error::CorruptShard {
            path: self.path.clone(),
            reason: format!("record batch {i}: {reason}"),
        };
        let len = block.meta_len + block.body_len;
        let buf = self.source.read(&self.path, block.offset, len)?;
        let bytes = buf.as_slice();
        let (meta, body) = bytes.split_at(block.meta_len as usize);
        // The headers were checked at open; the compressed buffers' length
        // prefixes are in the body, which is only read now. Bytes read again
        // with pread may have changed since: they are checked again too.
        if self.entry.compression != Compression::None
            || matches!(self.source, ShardBytes::Pread(_))
        {
            check_message(
                meta,
                block.body_len,
                Some(body),
                self.version,
                &self.file_schema,
                self.entry.compression,
                self.entry.rows,
            )
            .map_err(corrupt)?;
        }
        // Everything arrow will slice or allocate has been checked; a panic
        // inside it is still turned into an error naming the shard and batch.
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            decoder.read_record_batch(&block.block, &buf)
        }))
        .map_err(|panic| corrupt(format!("the decoder failed: {}", panic_message(&panic))))?;
        let batch = decoded
            .map_err(|e| corrupt(format!("cannot be decoded: {e}")))?
            .ok_or_else(|| corrupt("is missing".into()))?;
        let expected = self.batch_row_offsets[i + 1] - self.batch_row_offsets[i];
        if batch.num_rows() as u64 != expected {
            return Err(corrupt(format!(
                "decodes to {} rows, its header says {expected}",
                batch.num_rows()
            )));
        }
        Ok(batch)
    }

    /// `batch` (of the file's schema) with the columns the dataset added
    /// after this shard was written, as nulls of their type.
    fn with_added_columns(&self, batch: RecordBatch) -> Result<RecordBatch> {
        let have = batch.num_columns();
        if have == self.schema.fields().len() {
            return Ok(batch);
        }
        let rows = batch.num_rows();
        let mut columns = batch.columns().to_vec();
        columns.extend(
            self.schema.fields()[have..]
                .iter()
                .map(|f| new_null_array(f.data_type(), rows)),
        );
        RecordBatch::try_new(Arc::clone(&self.schema), columns)
            .map_err(|e| Error::arrow("filling the columns a shard predates with nulls", e))
    }

    /// Recomputes the file's checksum and compares it with the index.
    pub fn verify_checksum(&self) -> Result<()> {
        check_checksum(
            &self.path,
            &self.entry,
            self.source.checksum(&self.path, self.entry.bytes)?,
        )
    }
}

/// The message of a caught panic, for an error that replaces it.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// Opens the shard file at `path` (a regular file, not through a symlink)
/// and checks its size against `entry`.
fn open_shard_file(path: &Path, entry: &ShardEntry) -> Result<File> {
    let file = crate::files::open_regular(path).map_err(|e| match e.kind() {
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
    Ok(file)
}

/// Compares `actual`, the checksum of the file at `path`, with `entry`'s.
fn check_checksum(path: &Path, entry: &ShardEntry, actual: Checksum) -> Result<()> {
    if actual != entry.checksum {
        return Err(Error::ChecksumMismatch {
            path: path.to_path_buf(),
            expected: entry.checksum.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

/// Maps `file` read-only and wraps the mapping in an Arrow buffer, so that
/// arrays decoded from it keep the mapping alive.
fn map_file(file: &File, path: &Path) -> Result<Buffer> {
    // SAFETY: shards are sealed (renamed into place once complete) and never
    // modified afterwards; the format forbids writing to a committed shard, so
    // the mapped bytes do not change under us. A shard truncated by hand while
    // mapped can still raise SIGBUS: `Access::Pread` is the path that cannot,
    // and `Access::Auto` takes it on network and FUSE file systems.
    let mmap = unsafe { Mmap::map(file) }.map_err(|e| Error::io(path, e))?;
    #[cfg(unix)]
    let _ = mmap.advise(memmap2::Advice::WillNeed);
    let len = mmap.len();
    if len == 0 {
        // An empty mapping has no pointer to wrap; such a file is refused
        // later as too short.
        return Ok(Buffer::from_vec(Vec::<u8>::new()));
    }
    let ptr = NonNull::new(mmap.as_ptr() as *mut u8)
        .ok_or_else(|| Error::Internal(format!("null mapping for {}", path.display())))?;
    // SAFETY: `ptr` points to `len` readable bytes owned by `mmap`, which the
    // buffer keeps alive (as its custom allocation) for as long as any slice
    // of it exists; the bytes are never written through this buffer.
    Ok(unsafe { Buffer::from_custom_allocation(ptr, len, Arc::new(mmap)) })
}
