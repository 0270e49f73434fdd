//! Options of a write: how shards are cut and encoded ([`WriterOptions`]),
//! and the one parser of the options by name ([`WriteOptions`]) that every
//! entry point (the Spark connectors, Python, the CLI) goes through.

use std::collections::BTreeMap;

use super::column_layout::{
    strip_prefix_ignore_case, ColumnLayout, FIXED_LENGTH_OPTION, PACK_OPTION,
};
use crate::format::Compression;
use crate::units::parse_byte_size;
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

/// Rows per record batch of a Spark task (the JVM connector and the
/// `mosaicrs_py` data source) when `batchRows` is not set: small enough that
/// a batch stays in the CPU caches between the row writer filling it and the
/// shard writer encoding it. The writer's own default for the compression
/// is taken where it is smaller (see [`WriteOptions::spark_batch_rows`]).
pub const DEFAULT_SPARK_BATCH_ROWS: usize = 8_192;

/// The writer options by their documented names (matched case-insensitively).
pub const SHARD_SIZE_OPTION: &str = "shardSize";
/// See [`SHARD_SIZE_OPTION`].
pub const COMPRESSION_OPTION: &str = "compression";
/// See [`SHARD_SIZE_OPTION`].
pub const BATCH_ROWS_OPTION: &str = "batchRows";
/// See [`SHARD_SIZE_OPTION`]: `true` lets an append add nullable columns.
pub const MERGE_SCHEMA_OPTION: &str = "mergeSchema";

/// The prefix of user metadata options: `metadata.<key>` = value is
/// recorded with the commit (and shown by `mosaicrs log`).
pub const METADATA_OPTION: &str = "metadata.";

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

/// Every option of a write, parsed from `(name, value)` pairs as Spark's
/// `.option(...)` gives them: `shardSize` (a byte size, `64m`), `compression`
/// (`none`, `zstd`, `lz4`), `batchRows` (rows per record batch),
/// `mergeSchema` (`true` or `false`: whether an append may add columns), and the
/// column layout options `pack.<name>` and `fixedLength.<column>`
/// ([`ColumnLayout`]), and `metadata.<key>` (recorded with the commit,
/// [`WriteOptions::commit_options`]). Names are matched case-insensitively;
/// a layout option keeps the case of the column it names, a metadata option
/// the case of its key.
///
/// This is the one parser of writer options: the JVM connector, the
/// `mosaicrs_py` Spark data source, Python's `write` and `PartitionWriter`
/// and the CLI all go through it, so they accept the same values and name a
/// bad one the same way.
///
/// ```
/// use mosaicrs::format::Compression;
/// use mosaicrs::writer::WriteOptions;
/// let options = WriteOptions::from_options([
///     ("shardSize", "16m"), ("COMPRESSION", "zstd"), ("pack.features", "a,b"),
/// ])?;
/// assert_eq!(options.writer.max_shard_bytes, 16 << 20);
/// assert_eq!(options.writer.compression, Compression::Zstd);
/// assert_eq!(options.writer.batch_rows(), 4_096); // the writer's default for zstd
/// assert_eq!(options.layout.packed["features"], ["a", "b"]);
///
/// let bad = WriteOptions::from_options([("shardSize", "lots")]).unwrap_err();
/// assert!(bad.to_string().contains("invalid value 'lots' for mosaicrs option 'shardSize'"));
/// # Ok::<(), mosaicrs::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOptions {
    /// How shards are cut and encoded. `max_batch_rows` is `None` unless
    /// `batchRows` was given.
    pub writer: WriterOptions,
    /// How columns are stored (packed columns, fixed-size lists).
    pub layout: ColumnLayout,
    /// An append may add nullable columns after the dataset's (`mergeSchema`,
    /// default false); passed to the commit as
    /// [`CommitOptions::merge_schema`](crate::writer::CommitOptions::merge_schema).
    pub merge_schema: bool,
    /// The `metadata.<key>` options, by key: recorded with the commit.
    pub metadata: BTreeMap<String, String>,
    /// Who writes (`engine` and its identifiers, see
    /// [`CommitOptions::writer`]), recorded with the commit. Not an option:
    /// the entry point (Python, the CLI, a Spark driver) sets it.
    pub committer: BTreeMap<String, String>,
}

impl WriteOptions {
    /// The options that `pairs` set, over the defaults (64 MiB shards, no
    /// compression, the writer's rows per batch, no layout). The first
    /// unknown name or bad value fails, naming the option and the value.
    pub fn from_options<I, K, V>(pairs: I) -> Result<WriteOptions>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::from_options_of("mosaicrs", pairs)
    }

    /// [`WriteOptions::from_options`] for a data source of another name
    /// (`mosaicrs_py`), which an unknown option's message names.
    pub fn from_options_of<I, K, V>(source: &str, pairs: I) -> Result<WriteOptions>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut options = WriteOptions::default();
        for (key, value) in pairs {
            let (key, value) = (key.as_ref(), value.as_ref());
            if !options.set_option(key, value)? {
                return Err(Error::InvalidArgument(format!(
                    "unknown {source} option '{key}'; the options are {SHARD_SIZE_OPTION}, \
                     {COMPRESSION_OPTION}, {BATCH_ROWS_OPTION}, {MERGE_SCHEMA_OPTION}, \
                     {PACK_OPTION}<name>, {FIXED_LENGTH_OPTION}<column> and {METADATA_OPTION}<key>"
                )));
            }
        }
        Ok(options)
    }

    /// Applies one option if `key` names one; returns whether it did. A bad
    /// value is an error naming the option and the value.
    ///
    /// ```
    /// let mut options = mosaicrs::writer::WriteOptions::default();
    /// assert!(options.set_option("batchrows", " 500 ")?);
    /// assert_eq!(options.writer.max_batch_rows, Some(500));
    /// assert!(!options.set_option("path", "/data")?);
    /// # Ok::<(), mosaicrs::Error>(())
    /// ```
    pub fn set_option(&mut self, key: &str, value: &str) -> Result<bool> {
        if self.layout.set_option(key, value)? {
            return Ok(true);
        }
        if let Some(name) = strip_prefix_ignore_case(key, METADATA_OPTION) {
            if name.trim().is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "option {key}={value:?}: name the metadata key after `{METADATA_OPTION}` \
                     (e.g. metadata.run=nightly)"
                )));
            }
            self.metadata.insert(name.to_string(), value.to_string());
            return Ok(true);
        }
        let Some(name) = [
            SHARD_SIZE_OPTION,
            COMPRESSION_OPTION,
            BATCH_ROWS_OPTION,
            MERGE_SCHEMA_OPTION,
        ]
        .into_iter()
        .find(|n| n.eq_ignore_ascii_case(key)) else {
            return Ok(false);
        };
        let bad = |reason: String| {
            Error::InvalidArgument(format!(
                "invalid value '{value}' for mosaicrs option '{name}': {reason}"
            ))
        };
        // The reason without its own "invalid argument: " prefix.
        let why = |e: Error| match e {
            Error::InvalidArgument(message) => message,
            other => other.to_string(),
        };
        if name == MERGE_SCHEMA_OPTION {
            self.merge_schema = match value.trim().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => return Err(bad("expected true or false".into())),
            };
            return Ok(true);
        }
        let mut writer = self.writer;
        match name {
            SHARD_SIZE_OPTION => {
                writer.max_shard_bytes = parse_byte_size(value).map_err(|e| bad(why(e)))?;
                // Shard sizes cross to the JVM as a long.
                if i64::try_from(writer.max_shard_bytes).is_err() {
                    return Err(bad("a shard size must be below 8 EiB".into()));
                }
            }
            BATCH_ROWS_OPTION => {
                let rows = value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| bad("not a whole number of rows".into()))?;
                // Rows per batch cross to the JVM as an int.
                if i32::try_from(rows).is_err() {
                    return Err(bad("rows per batch must be below 2^31".into()));
                }
                writer.max_batch_rows = Some(rows);
            }
            _ => {
                writer.compression = value.trim().parse().map_err(|e: Error| bad(why(e)))?;
            }
        }
        writer.validate().map_err(|e| bad(why(e)))?;
        self.writer = writer;
        Ok(true)
    }

    /// Rows per record batch of a Spark task: `batchRows` when given, else
    /// [`DEFAULT_SPARK_BATCH_ROWS`] or the writer's smaller default for the
    /// compression.
    ///
    /// ```
    /// use mosaicrs::writer::WriteOptions;
    /// assert_eq!(WriteOptions::default().spark_batch_rows(), 8_192);
    /// let lz4 = WriteOptions::from_options([("compression", "lz4")])?;
    /// assert_eq!(lz4.spark_batch_rows(), 4_096);
    /// # Ok::<(), mosaicrs::Error>(())
    /// ```
    pub fn spark_batch_rows(&self) -> usize {
        self.writer.max_batch_rows.unwrap_or_else(|| {
            DEFAULT_SPARK_BATCH_ROWS.min(WriterOptions::default_batch_rows(self.writer.compression))
        })
    }

    /// The writer options of a Spark task: these, with
    /// [`WriteOptions::spark_batch_rows`] rows per record batch.
    pub fn spark_writer_options(&self) -> WriterOptions {
        WriterOptions {
            max_batch_rows: Some(self.spark_batch_rows()),
            ..self.writer
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> std::result::Result<WriteOptions, String> {
        WriteOptions::from_options(pairs.iter().copied()).map_err(|e| e.to_string())
    }

    #[test]
    fn names_match_case_insensitively_over_the_defaults() {
        let none = parse(&[]).unwrap();
        assert_eq!(none, WriteOptions::default());
        assert_eq!(none.writer.batch_rows(), DEFAULT_BATCH_ROWS);
        assert_eq!(none.spark_batch_rows(), DEFAULT_SPARK_BATCH_ROWS);
        let set = parse(&[
            ("SHARDSIZE", "1m"),
            ("batchrows", " 500 "),
            ("Compression", "ZSTD"),
            ("fixedlength.Emb", "4"),
            ("MERGESCHEMA", " True "),
            ("METADATA.Run", "nightly"),
        ])
        .unwrap();
        assert!(set.merge_schema);
        assert!(!none.merge_schema);
        assert_eq!(set.metadata["Run"], "nightly");
        assert_eq!(set.writer.max_shard_bytes, 1 << 20);
        assert_eq!(set.writer.max_batch_rows, Some(500));
        assert_eq!(set.writer.compression, Compression::Zstd);
        assert_eq!(set.spark_batch_rows(), 500);
        assert_eq!(set.layout.fixed_lengths["Emb"], 4);
        assert_eq!(set.spark_writer_options().max_batch_rows, Some(500));
        let zstd = parse(&[("compression", "zstd")]).unwrap();
        assert_eq!(zstd.spark_writer_options().max_batch_rows, Some(4_096));
    }

    #[test]
    fn a_bad_option_is_named_with_its_value() {
        // The connector's cases (unknown names, bad sizes, compressions and
        // row counts) are held by the JNI's `parse_options` tests; these are
        // the limits and reasons only this parser gives.
        let cases = [
            (("shardSize", "8589934592g"), "below 8 EiB"),
            (("batchRows", "0"), "option 'batchRows': max_batch_rows"),
            (("batchRows", "4294967296"), "below 2^31"),
            (("pack.f", ""), "pack.f"),
            (
                ("mergeSchema", "yes"),
                "option 'mergeSchema': expected true or false",
            ),
            (("metadata.", "x"), "name the metadata key"),
        ];
        for ((key, value), expected) in cases {
            let message = parse(&[(key, value)]).unwrap_err();
            assert!(message.contains(expected), "{message}");
        }
        let other = WriteOptions::from_options_of("mosaicrs_py", [("colour", "red")]).unwrap_err();
        assert!(other
            .to_string()
            .contains("unknown mosaicrs_py option 'colour'"));
    }
}
