//! `mosaicrs convert`: CSV, Parquet or Arrow IPC in, a dataset out.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::csv::reader::Format;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::record_batch::RecordBatch;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mosaicrs::format::Compression;
use mosaicrs::writer::{
    write_batches, SaveMode, WriteOptions, WriteProgress, FIXED_LENGTH_OPTION, METADATA_OPTION,
    PACK_OPTION, SHARD_SIZE_OPTION,
};
use mosaicrs::Error;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

#[derive(Args)]
pub struct ConvertArgs {
    /// Input file (.csv, .parquet, .arrow/.ipc/.feather).
    input: PathBuf,
    /// Output dataset folder or URL (s3://bucket/prefix, gs://, az://).
    output: String,
    /// Input format; by default from the file extension.
    #[arg(long, value_enum)]
    format: Option<InputFormat>,
    /// Shard size limit, e.g. 64m or 1g.
    #[arg(long, default_value = "64m")]
    shard_size: String,
    /// Arrow IPC buffer compression: none, zstd or lz4.
    #[arg(long, default_value = "none")]
    compression: Compression,
    /// Maximum rows per record batch [default: 65536 uncompressed, 4096
    /// with zstd or lz4, whose batches are decoded whole for each random read].
    #[arg(long)]
    batch_rows: Option<usize>,
    /// What to do if OUTPUT already holds a dataset: error, append, overwrite, ignore.
    #[arg(long, default_value = "error")]
    mode: SaveMode,
    /// With --mode append: the input may add nullable columns after the
    /// dataset's (Spark's mergeSchema); the rows written before read them as nulls.
    #[arg(long)]
    merge_schema: bool,
    /// Store these numeric columns row-major as one fixed-size-list column
    /// named NAME (repeatable). Each sample's values then sit side by side,
    /// which speeds up `[B, F]` batches read at random.
    #[arg(long, value_name = "NAME=COL,COL,...")]
    pack: Vec<String>,
    /// Store a list column as a fixed-size list whose rows all hold N
    /// values (repeatable); a row of another length fails the convert.
    #[arg(long, value_name = "COLUMN=N")]
    fixed_length: Vec<String>,
    /// Record KEY=VALUE with the commit (repeatable); `mosaicrs log` shows it.
    #[arg(long, value_name = "KEY=VALUE")]
    metadata: Vec<String>,
    /// CSV only: the file has no header row.
    #[arg(long)]
    no_header: bool,
    /// CSV only: field delimiter.
    #[arg(long, default_value_t = ',')]
    delimiter: char,
    /// Do not show a progress bar.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    store: crate::store::StoreArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum InputFormat {
    Csv,
    Parquet,
    Arrow,
}

type Batches = Box<dyn Iterator<Item = mosaicrs::Result<RecordBatch>>>;

/// How the progress bar measures the input.
enum Measure {
    /// Bytes read from the file (the reader is wrapped).
    BytesRead,
    /// Rows written, of the rows the file declares.
    Rows,
    /// Memory of the batches written, of the file's size.
    BatchBytes,
}

pub fn run(args: &ConvertArgs) -> Result<ExitCode> {
    // Every option is checked before any data is read.
    let options = write_options(args)?;
    let mode = args.mode;
    if !args.delimiter.is_ascii() {
        bail!("--delimiter must be a single ASCII character");
    }
    let format = match args.format {
        Some(f) => f,
        None => guess_format(&args.input)?,
    };
    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    let (input_schema, batches, measure) =
        open_input(args, format, &progress, options.writer.batch_rows())
            .with_context(|| format!("reading {}", args.input.display()))?;
    let batches = refuse_untyped_empty(&args.input, &input_schema, batches);
    let output = args.store.location(&args.output)?;
    let mut tick = |p: WriteProgress| match measure {
        Measure::BytesRead => {}
        Measure::Rows => progress.set_position(p.rows),
        Measure::BatchBytes => progress.inc(p.batch_bytes as u64),
    };
    let report = write_batches(
        &output,
        &input_schema,
        batches,
        &options,
        mode,
        Some(&mut tick),
    )?;
    progress.finish_and_clear();
    if report.outcome.committed {
        println!(
            "wrote {} rows to {output} ({} rows in the dataset)",
            report.rows, report.outcome.total_rows
        );
    } else {
        println!("{output} already holds a dataset; nothing written (mode ignore)");
    }
    Ok(ExitCode::SUCCESS)
}

/// The write options that the flags ask for: `--shard-size`, `--compression`,
/// `--batch-rows` and `--merge-schema`, and the column layout of `--pack` and `--fixed-length`.
fn write_options(args: &ConvertArgs) -> Result<WriteOptions> {
    let mut options = WriteOptions::default();
    options
        .set_option(SHARD_SIZE_OPTION, &args.shard_size)
        .context("--shard-size")?;
    options.writer.compression = args.compression;
    options.writer.max_batch_rows = args.batch_rows;
    options.writer.validate().context("--batch-rows")?;
    options.merge_schema = args.merge_schema;
    let flags = args.pack.iter().map(|v| ("--pack", PACK_OPTION, v)).chain(
        args.fixed_length
            .iter()
            .map(|v| ("--fixed-length", FIXED_LENGTH_OPTION, v)),
    );
    for value in &args.metadata {
        let Some((key, rest)) = value.split_once('=') else {
            bail!("--metadata {value:?}: expected KEY=VALUE, e.g. --metadata run=nightly");
        };
        options
            .set_option(&format!("{METADATA_OPTION}{}", key.trim()), rest)
            .with_context(|| format!("--metadata {value:?}"))?;
    }
    options.committer = crate::history::cli_writer();
    for (flag, prefix, value) in flags {
        let Some((name, rest)) = value.split_once('=') else {
            bail!("{flag} {value:?}: expected NAME=VALUE, e.g. --pack features=x0,x1 or --fixed-length emb=128");
        };
        options
            .layout
            .set_option(&format!("{prefix}{}", name.trim()), rest)
            .with_context(|| format!("{flag} {value:?}"))?;
    }
    Ok(options)
}

/// `batches`, ending in an error if they held no rows while a column of
/// `schema` has no type (a CSV file with only a header): such a dataset
/// could never be appended to, so nothing is written.
fn refuse_untyped_empty(input: &Path, schema: &SchemaRef, batches: Batches) -> Batches {
    let Some(untyped) = schema.fields().iter().find(|f| f.data_type().is_null()) else {
        return batches;
    };
    let message = format!(
        "{} holds no rows, so the type of column {:?} cannot be known; nothing was \
         written (convert a file with rows, or a Parquet/Arrow file that carries its types)",
        input.display(),
        untyped.name()
    );
    Box::new(UntypedEmpty {
        batches,
        rows: 0,
        refusal: Some(Error::InvalidArgument(message)),
    })
}

/// See [`refuse_untyped_empty`].
struct UntypedEmpty {
    batches: Batches,
    rows: usize,
    refusal: Option<Error>,
}

impl Iterator for UntypedEmpty {
    type Item = mosaicrs::Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.batches.next() {
            Some(batch) => {
                self.rows += batch.as_ref().map_or(0, RecordBatch::num_rows);
                Some(batch)
            }
            None if self.rows == 0 => self.refusal.take().map(Err),
            None => None,
        }
    }
}

fn guess_format(path: &Path) -> Result<InputFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    Ok(match ext.as_deref() {
        Some("csv") | Some("tsv") | Some("txt") => InputFormat::Csv,
        Some("parquet") | Some("pq") => InputFormat::Parquet,
        Some("arrow") | Some("ipc") | Some("feather") | Some("arrows") => InputFormat::Arrow,
        _ => bail!(
            "cannot tell the format of {} from its extension; pass --format csv|parquet|arrow",
            path.display()
        ),
    })
}

fn byte_bar(progress: &ProgressBar, total: u64) {
    progress.set_length(total);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
}

fn open_input(
    args: &ConvertArgs,
    format: InputFormat,
    progress: &ProgressBar,
    batch_rows: usize,
) -> Result<(SchemaRef, Batches, Measure)> {
    let reading = format!("reading {}", args.input.display());
    let read = move |e| Error::arrow(reading.clone(), e);
    let mut file = File::open(&args.input)?;
    let size = file.metadata()?.len();
    match format {
        InputFormat::Csv => {
            let csv_format = Format::default()
                .with_header(!args.no_header)
                .with_delimiter(args.delimiter as u8);
            // Infer over the whole file: a type that changes late must not
            // fail the conversion half-way.
            let (schema, _) = csv_format.infer_schema(BufReader::new(&mut file), None)?;
            file.rewind()?;
            let schema = Arc::new(schema);
            byte_bar(progress, size);
            let reader = arrow::csv::ReaderBuilder::new(schema.clone())
                .with_format(csv_format)
                .with_batch_size(batch_rows.min(65_536))
                .build(progress.wrap_read(BufReader::new(file)))?;
            Ok((
                schema,
                Box::new(reader.map(move |b| b.map_err(&read))),
                Measure::BytesRead,
            ))
        }
        InputFormat::Parquet => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
            let rows = builder.metadata().file_metadata().num_rows();
            let schema = builder.schema().clone();
            progress.set_length(rows.max(0) as u64);
            progress.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} rows {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let reader = builder.with_batch_size(batch_rows.min(65_536)).build()?;
            Ok((
                schema,
                Box::new(reader.map(move |b| b.map_err(&read))),
                Measure::Rows,
            ))
        }
        InputFormat::Arrow => {
            let mut magic = [0u8; 6];
            let is_file = file.read_exact(&mut magic).is_ok() && &magic == b"ARROW1";
            file.rewind()?;
            byte_bar(progress, size);
            if is_file {
                let reader = FileReader::try_new(file, None)?;
                let schema = reader.schema();
                let batches = reader.map(move |b| b.map_err(&read));
                Ok((schema, Box::new(batches), Measure::BatchBytes))
            } else {
                let reader = StreamReader::try_new(progress.wrap_read(BufReader::new(file)), None)?;
                let schema = reader.schema();
                let batches = reader.map(move |b| b.map_err(&read));
                Ok((schema, Box::new(batches), Measure::BytesRead))
            }
        }
    }
}
