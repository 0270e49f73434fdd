//! The shard writer: record batches in, sealed Arrow IPC files out.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{FileWriter, IpcWriteOptions};
use arrow::ipc::CompressionType;
use arrow::record_batch::RecordBatch;

use super::WriterOptions;
use crate::format::{
    schema_difference, sync_dir, ChecksumWriter, Compression, ShardEntry, ShardName,
};
use crate::storage::{Location, RemoteFile};
use crate::{Error, Result};

type IpcFile = FileWriter<ChecksumWriter<Sink>>;

/// Where a shard's bytes go: a local temp file, or an upload straight to
/// the object store under the final name (published only on completion).
enum Sink {
    File(BufWriter<File>),
    Remote(RemoteFile),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File(f) => f.write(buf),
            Sink::Remote(r) => r.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File(f) => f.flush(),
            Sink::Remote(r) => r.flush(),
        }
    }
}

/// A shard being written under its temporary name.
struct OpenShard {
    name: ShardName,
    /// The temp file (local) or the object's URL (remote), for messages.
    temp_path: PathBuf,
    writer: IpcFile,
    rows: u64,
    batches: u32,
    /// Bytes of the file whose write-back has been started (see [`start_writeback`]).
    writeback_from: u64,
}

/// Bytes a local shard grows by before its write-back to disk is started.
const WRITEBACK_CHUNK: u64 = 1 << 20;

/// Writes one task attempt's record batches into sealed shards.
///
/// Shards are written under a temporary name and renamed once complete, so a
/// file under a final shard name is always whole. The entries returned by
/// [`ShardWriter::finish`] are what [`commit`](super::commit) lists in the index.
///
/// Dropping a writer without `finish` or `abort` removes the shard in
/// progress; sealed shards stay until the write's commit or abort cleans up.
pub struct ShardWriter {
    location: Location,
    /// The folder (local) or the URL (remote), for messages.
    dir: PathBuf,
    schema: SchemaRef,
    write_id: String,
    partition: u32,
    attempt: u64,
    options: WriterOptions,
    ipc_options: IpcWriteOptions,
    current: Option<OpenShard>,
    sealed: Vec<ShardEntry>,
    next_seq: u32,
    rows_written: u64,
}

impl ShardWriter {
    /// Starts a writer for one task attempt. Creates `dir` if needed.
    ///
    /// `write_id` must be a plain token (letters, digits, `_`); it and
    /// `partition`/`attempt` make the shard names unique.
    pub fn create(
        dir: &Path,
        schema: SchemaRef,
        write_id: &str,
        partition: u32,
        attempt: u64,
        options: WriterOptions,
    ) -> Result<Self> {
        Self::create_at(
            &Location::local(dir),
            schema,
            write_id,
            partition,
            attempt,
            options,
        )
    }

    /// [`ShardWriter::create`] for any [`Location`]. On an object store each
    /// shard is uploaded as it is written (multipart for large shards) under
    /// its final name, and becomes visible only when its upload completes.
    pub fn create_at(
        location: &Location,
        schema: SchemaRef,
        write_id: &str,
        partition: u32,
        attempt: u64,
        options: WriterOptions,
    ) -> Result<Self> {
        options.validate()?;
        validate_write_id(write_id)?;
        if let Some(dir) = location.as_local() {
            fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let compression = match options.compression {
            Compression::None => None,
            Compression::Zstd => Some(CompressionType::ZSTD),
            Compression::Lz4 => Some(CompressionType::LZ4_FRAME),
        };
        let ipc_options = IpcWriteOptions::default()
            .try_with_compression(compression)
            .map_err(|e| Error::arrow("configuring IPC compression", e))?;
        Ok(ShardWriter {
            location: location.clone(),
            dir: location.display_path(),
            schema,
            write_id: write_id.to_string(),
            partition,
            attempt,
            options,
            ipc_options,
            current: None,
            sealed: Vec::new(),
            next_seq: 0,
            rows_written: 0,
        })
    }

    /// Rows accepted so far.
    pub fn rows_written(&self) -> u64 {
        self.rows_written
    }

    /// The schema every batch must have.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Appends a batch, splitting it at [`WriterOptions::batch_rows`] and rolling to a new
    /// shard whenever the current one reaches `max_shard_bytes`.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if let Some(detail) = schema_difference(&self.schema, &batch.schema()) {
            return Err(Error::SchemaMismatch {
                path: self.dir.clone(),
                detail: format!("batch does not match the writer's schema: {detail}"),
            });
        }
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = self.options.batch_rows().min(batch.num_rows() - offset);
            self.write_piece(&batch.slice(offset, len))?;
            offset += len;
        }
        Ok(())
    }

    fn write_piece(&mut self, piece: &RecordBatch) -> Result<()> {
        if self.current.is_none() {
            self.current = Some(self.open_shard()?);
        }
        let Some(shard) = self.current.as_mut() else {
            return Err(Error::Internal("no open shard after opening one".into()));
        };
        shard
            .writer
            .write(piece)
            .map_err(|e| Error::arrow(format!("writing {}", shard.temp_path.display()), e))?;
        shard.rows += piece.num_rows() as u64;
        shard.batches += 1;
        start_writeback(shard);
        self.rows_written += piece.num_rows() as u64;
        if shard.writer.get_ref().bytes_written() >= self.options.max_shard_bytes {
            self.seal_current()?;
        }
        Ok(())
    }

    fn open_shard(&mut self) -> Result<OpenShard> {
        let name = ShardName {
            write_id: self.write_id.clone(),
            partition: self.partition,
            attempt: self.attempt,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let (temp_path, sink) = match &self.location {
            Location::Local(dir) => {
                let temp_path = dir.join(name.temp_file_name());
                let file = File::create(&temp_path).map_err(|e| Error::io(&temp_path, e))?;
                (
                    temp_path,
                    Sink::File(BufWriter::with_capacity(1 << 20, file)),
                )
            }
            Location::Remote(store) => {
                let file_name = name.file_name();
                (
                    PathBuf::from(store.url_of(&file_name)),
                    Sink::Remote(store.create(&file_name)),
                )
            }
        };
        let sink = ChecksumWriter::new(sink);
        let writer = FileWriter::try_new_with_options(sink, &self.schema, self.ipc_options.clone())
            .map_err(|e| Error::arrow(format!("starting {}", temp_path.display()), e))?;
        Ok(OpenShard {
            name,
            temp_path,
            writer,
            rows: 0,
            batches: 0,
            writeback_from: 0,
        })
    }

    /// Finishes the open shard: footer, flush, fsync, rename to its final name.
    fn seal_current(&mut self) -> Result<()> {
        let Some(shard) = self.current.take() else {
            return Ok(());
        };
        let temp_path = shard.temp_path.clone();
        let result = seal(shard, &self.location, self.options.compression);
        match result {
            Ok(entry) => {
                self.sealed.push(entry);
                Ok(())
            }
            Err(e) => {
                if self.location.as_local().is_some() {
                    let _ = fs::remove_file(&temp_path);
                }
                Err(e)
            }
        }
    }

    /// Seals the last shard and returns every shard this writer produced.
    ///
    /// The shards are durable but not yet part of the dataset: pass them to
    /// [`commit`](super::commit).
    ///
    /// On failure (a full disk while sealing, say) every file of this writer
    /// is removed before the error is returned: nothing is left behind.
    pub fn finish(mut self) -> Result<Vec<ShardEntry>> {
        let sealed = self.seal_current().and_then(|()| {
            match (self.location.as_local(), self.sealed.is_empty()) {
                (Some(dir), false) => sync_dir(dir),
                _ => Ok(()),
            }
        });
        if let Err(e) = sealed {
            let _ = self.remove_all();
            return Err(e);
        }
        Ok(std::mem::take(&mut self.sealed))
    }

    /// Deletes every file this writer created, sealed or not.
    pub fn abort(mut self) -> Result<()> {
        self.remove_all()
    }

    fn remove_all(&mut self) -> Result<()> {
        let mut first_error = None;
        if let Some(shard) = self.current.take() {
            let path = shard.temp_path.clone();
            // Dropping a remote upload aborts it.
            drop(shard);
            if self.location.as_local().is_some() {
                remove_if_present(&path, &mut first_error);
            }
        }
        for entry in self.sealed.drain(..) {
            match &self.location {
                Location::Local(dir) => remove_if_present(&dir.join(&entry.path), &mut first_error),
                Location::Remote(store) => {
                    if let Err(e) = store.delete(&entry.path) {
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        // Only the unsealed file: sealed shards may already be reported to a
        // committer, which owns them from then on.
        // A remote upload aborts itself when dropped.
        if let Some(shard) = self.current.take() {
            let path = shard.temp_path.clone();
            drop(shard);
            if self.location.as_local().is_some() {
                let _ = fs::remove_file(path);
            }
        }
    }
}

/// Starts the disk write of the bytes a local shard has handed to its file
/// since the last call, once they reach [`WRITEBACK_CHUNK`], without waiting
/// for it: the fsync at [`seal`] then waits for the tail only, not for the
/// whole shard. Durability still rests on that fsync alone, so an error here
/// is ignored (the fsync reports it).
fn start_writeback(shard: &mut OpenShard) {
    let Sink::File(file) = shard.writer.get_ref().get_ref() else {
        return;
    };
    // Bytes still in the `BufWriter` are not in the file yet.
    let in_file = shard.writer.get_ref().bytes_written() - file.buffer().len() as u64;
    if in_file - shard.writeback_from < WRITEBACK_CHUNK {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (
            i64::try_from(shard.writeback_from),
            i64::try_from(in_file - shard.writeback_from),
        ) else {
            return;
        };
        // SAFETY: the descriptor belongs to the open `File` borrowed here,
        // and sync_file_range reads no memory of this process.
        unsafe {
            libc::sync_file_range(
                file.get_ref().as_raw_fd(),
                offset,
                len,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    shard.writeback_from = in_file;
}

fn seal(shard: OpenShard, location: &Location, compression: Compression) -> Result<ShardEntry> {
    let OpenShard {
        name,
        temp_path,
        writer,
        rows,
        batches,
        writeback_from: _,
    } = shard;
    let sink = writer
        .into_inner()
        .map_err(|e| Error::arrow(format!("finishing {}", temp_path.display()), e))?;
    let bytes = sink.bytes_written();
    let checksum = sink.checksum();
    let file_name = name.file_name();
    match (sink.into_inner(), location) {
        (Sink::File(file), Location::Local(dir)) => {
            let file = file
                .into_inner()
                .map_err(|e| Error::io(&temp_path, e.into_error()))?;
            file.sync_all().map_err(|e| Error::io(&temp_path, e))?;
            drop(file);
            let final_path = dir.join(&file_name);
            fs::rename(&temp_path, &final_path).map_err(|e| Error::io(&final_path, e))?;
        }
        (Sink::Remote(upload), _) => upload.finish()?,
        (Sink::File(_), Location::Remote(_)) => {
            return Err(Error::Internal(
                "a local shard file for a remote location".into(),
            ))
        }
    }
    Ok(ShardEntry {
        path: file_name,
        rows,
        bytes,
        batches,
        checksum,
        compression,
        write_id: name.write_id,
        partition: name.partition,
        task_attempt: name.attempt,
    })
}

fn remove_if_present(path: &Path, first_error: &mut Option<Error>) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            first_error.get_or_insert(Error::io(path, e));
        }
    }
}

/// Write ids become part of file names, so they are restricted to a safe alphabet.
pub(crate) fn validate_write_id(write_id: &str) -> Result<()> {
    if write_id.is_empty()
        || write_id.len() > 64
        || !write_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(Error::InvalidArgument(format!(
            "write id {write_id:?} must be 1-64 characters of letters, digits or '_'"
        )));
    }
    Ok(())
}
