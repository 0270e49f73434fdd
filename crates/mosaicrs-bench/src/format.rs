//! `mosaicrs-format-bench`: write, scan and random-access speed, with memcpy of the
//! same bytes in the same run as the reference.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use arrow::array::{Array, Float32Array, Int32Array, Int64Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use clap::Parser;
use mosaicrs::format::{Checksum, Compression, Index, ShardEntry, VERSIONS_DIR};
use mosaicrs::loader::SplitMix64;
use mosaicrs::reader::{BatchCacheStats, Dataset, ReadOptions};
use mosaicrs::testing::{write_partitions, FeatureTable};
use mosaicrs::writer::{SaveMode, WriterOptions};
use serde::Serialize;

/// Options of the format benchmark.
#[derive(Debug, Clone, Parser)]
#[command(name = "mosaicrs-format-bench", version)]
pub struct BenchArgs {
    /// Rows of (id: int64, f0..fN: float32, label: int32).
    #[arg(long, default_value_t = 2_000_000)]
    pub rows: usize,
    /// Number of float32 feature columns.
    #[arg(long, default_value_t = 16)]
    pub features: usize,
    /// Random single-row reads to time.
    #[arg(long, default_value_t = 200_000)]
    pub random_reads: usize,
    /// Compression of the written dataset.
    #[arg(long, default_value = "none")]
    pub compression: Compression,
    /// Rows per record batch (default: the writer's for the compression).
    #[arg(long)]
    pub batch_rows: Option<usize>,
    /// Bytes of decoded batches the reader keeps, e.g. 256m (default: the
    /// reader's; compressed shards only).
    #[arg(long, value_parser = parse_size)]
    pub batch_cache: Option<u64>,
    /// Where to write the dataset (default: a temp folder, removed afterwards).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the figures as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_size(text: &str) -> std::result::Result<u64, String> {
    mosaicrs::units::parse_byte_size(text).map_err(|e| e.to_string())
}

/// The benchmark's table: id, `features` float32 columns, an int32 label.
fn table(rows: usize, features: usize) -> FeatureTable {
    FeatureTable::new(rows as u64, features)
        .with_id()
        .with_label_type(DataType::Int32)
        .with_seed(42)
}

/// Reads every value of every column, so a scan cannot skip work.
fn reduce(batch: &RecordBatch) -> f64 {
    let mut acc = 0.0;
    for column in batch.columns() {
        let any = column.as_any();
        if let Some(a) = any.downcast_ref::<Float32Array>() {
            acc += a.values().iter().map(|&v| v as f64).sum::<f64>();
        } else if let Some(a) = any.downcast_ref::<Int64Array>() {
            acc += a.values().iter().map(|&v| v as f64).sum::<f64>();
        } else if let Some(a) = any.downcast_ref::<Int32Array>() {
            acc += a.values().iter().map(|&v| v as f64).sum::<f64>();
        }
    }
    acc
}

/// Best of three runs of `f`, in seconds.
fn best_of_3(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}

fn synthetic_index(shards: usize) -> Result<Vec<u8>> {
    let entries = (0..shards)
        .map(|i| ShardEntry {
            path: format!("part-0123456789abcdef0123456789abcdef-{i:05}-{i}-0000.arrow"),
            rows: 1_000_000,
            bytes: 67_108_864,
            batches: 16,
            checksum: Checksum(i as u64 * 0x9E37_79B9),
            compression: Compression::None,
            write_id: "0123456789abcdef0123456789abcdef".into(),
            partition: i as u32,
            task_attempt: i as u64,
        })
        .collect();
    Ok(Index::new(&table(0, 16).schema(), entries, vec![])?.to_json()?)
}

/// The figures of one run (the JSON document of `--json`).
#[derive(Debug, Serialize)]
struct Figures {
    rows: usize,
    features: usize,
    compression: &'static str,
    batch_rows: usize,
    data_bytes: usize,
    file_bytes: u64,
    shards: usize,
    memcpy_mb_s: f64,
    write_mb_s: f64,
    open_s: f64,
    open_verified_s: f64,
    verify_mb_s: f64,
    scan_mb_s: f64,
    in_memory_scan_mb_s: f64,
    random_rows_per_s: f64,
    /// The decoded-batch cache over the random reads (compressed shards).
    random_cache: BatchCacheStats,
    index_100k_shards_bytes: usize,
    index_100k_shards_parse_s: f64,
}

fn mb_s(bytes: impl TryInto<u64>, secs: f64) -> f64 {
    bytes.try_into().map_or(f64::NAN, |b| b as f64 / secs / 1e6)
}

/// Runs the benchmark and prints its figures.
pub fn run(args: &BenchArgs) -> Result<ExitCode> {
    let table = table(args.rows, args.features);
    let batches = table.batches();
    let data_bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let memcpy_s = time_memcpy(data_bytes)?;
    let in_memory_scan_s = best_of_3(|| {
        black_box(batches.iter().map(reduce).sum::<f64>());
        Ok(())
    })?;

    let temp = tempfile::tempdir()?;
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| temp.path().join("bench"));
    clear_own_output(&dir)?;
    let options = WriterOptions {
        compression: args.compression,
        max_batch_rows: args.batch_rows,
        ..Default::default()
    };
    let write_s = time_write(&dir, &table.schema(), &batches, options)?;
    drop(batches);

    let read = ReadOptions {
        batch_cache_bytes: args
            .batch_cache
            .unwrap_or(ReadOptions::default().batch_cache_bytes),
        ..Default::default()
    };
    let t = Instant::now();
    let dataset = Dataset::open_with(&dir, &read)?;
    let open_s = t.elapsed().as_secs_f64();
    let file_bytes = dataset.index().total_bytes;
    let scan_s = best_of_3(|| {
        let mut acc = 0.0;
        for b in dataset.batches() {
            acc += reduce(&b?);
        }
        black_box(acc);
        Ok(())
    })?;
    // The checksum pass that `--verify` / `ReadOptions::verify_checksums`
    // adds when shards are opened (the files are in the page cache here).
    let verify_s = best_of_3(|| Ok(dataset.verify()?))?;
    let open_verified_s = time_open_verified(&dir)?;
    // A fresh open, so the scans' decoded batches do not warm the cache.
    let random_dataset = Dataset::open_with(&dir, &read)?;
    let random_s = time_random_reads(&random_dataset, args.random_reads)?;
    let random_cache = random_dataset.batch_cache_stats();
    let (index_bytes, index_parse_s) = time_index_parse()?;

    let figures = Figures {
        rows: args.rows,
        features: args.features,
        compression: args.compression.as_str(),
        batch_rows: options.batch_rows(),
        data_bytes,
        file_bytes,
        shards: dataset.num_shards(),
        memcpy_mb_s: mb_s(data_bytes, memcpy_s),
        write_mb_s: mb_s(data_bytes, write_s),
        open_s,
        open_verified_s,
        verify_mb_s: mb_s(file_bytes, verify_s),
        scan_mb_s: mb_s(data_bytes, scan_s),
        in_memory_scan_mb_s: mb_s(data_bytes, in_memory_scan_s),
        random_rows_per_s: args.random_reads as f64 / random_s,
        random_cache,
        index_100k_shards_bytes: index_bytes,
        index_100k_shards_parse_s: index_parse_s,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        print_table(&figures, args.random_reads);
    }
    Ok(ExitCode::SUCCESS)
}

/// memcpy of `bytes` bytes: the ceiling for any scan.
fn time_memcpy(bytes: usize) -> Result<f64> {
    let src = vec![1u8; bytes];
    let mut dst = vec![0u8; bytes];
    best_of_3(|| {
        dst.copy_from_slice(black_box(&src));
        black_box(&dst);
        Ok(())
    })
}

/// Writes and commits `batches` as the dataset in `dir` (fsync included).
fn time_write(
    dir: &Path,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    options: WriterOptions,
) -> Result<f64> {
    let t = Instant::now();
    write_partitions(
        dir,
        schema,
        "bench",
        [batches],
        options,
        SaveMode::Overwrite,
    )?;
    Ok(t.elapsed().as_secs_f64())
}

/// An open that verifies every shard's checksum.
fn time_open_verified(dir: &Path) -> Result<f64> {
    let t = Instant::now();
    let verified = Dataset::open_with(
        dir,
        &ReadOptions {
            verify_checksums: true,
            ..Default::default()
        },
    )?;
    let seconds = t.elapsed().as_secs_f64();
    drop(verified);
    Ok(seconds)
}

/// `reads` single-row reads at random rows.
fn time_random_reads(dataset: &Dataset, reads: usize) -> Result<f64> {
    let mut rng = SplitMix64::new(7);
    let rows = dataset.num_rows();
    let picks: Vec<u64> = (0..reads).map(|_| rng.next_u64() % rows.max(1)).collect();
    let t = Instant::now();
    let mut acc = 0i64;
    for &r in &picks {
        let row = dataset.row(r)?;
        if let Some(ids) = row.column(0).as_any().downcast_ref::<Int64Array>() {
            acc += ids.value(0);
        }
    }
    black_box(acc);
    Ok(t.elapsed().as_secs_f64())
}

/// The parse of an index listing 100,000 shards: its size and seconds.
fn time_index_parse() -> Result<(usize, f64)> {
    let index_json = synthetic_index(100_000)?;
    let t = Instant::now();
    let parsed = Index::parse(&index_json, Path::new("synthetic"))?;
    let seconds = t.elapsed().as_secs_f64();
    black_box(parsed.shards.len());
    Ok((index_json.len(), seconds))
}

fn print_table(f: &Figures, random_reads: usize) {
    println!(
        "data: {} rows x ({} f32 + id + label), {:.1} MB in memory, {:.1} MB on disk in {} shards ({}, {} rows per batch)",
        f.rows,
        f.features,
        f.data_bytes as f64 / 1e6,
        f.file_bytes as f64 / 1e6,
        f.shards,
        f.compression,
        f.batch_rows
    );
    println!("{:<34} {:>12}  {:>9}", "measure", "MB/s", "x memcpy");
    let row = |name: &str, v: f64| println!("{name:<34} {v:>12.0}  {:>9.3}", v / f.memcpy_mb_s);
    row("memcpy (reference)", f.memcpy_mb_s);
    row("write (incl. fsync + commit)", f.write_mb_s);
    row("scan from mapping (read all)", f.scan_mb_s);
    row("scan in-memory batches", f.in_memory_scan_mb_s);
    row("verify checksums (xxh3, on disk)", f.verify_mb_s);
    println!(
        "random single-row reads: {:.0} rows/s ({random_reads} reads)",
        f.random_rows_per_s
    );
    let c = &f.random_cache;
    if c.hits + c.misses > 0 {
        println!("  decoded-batch cache: {c}");
    }
    println!("open (index + map {} shards): {:.4} s", f.shards, f.open_s);
    println!(
        "open with --verify: {:.4} s ({:.1}x plain open)",
        f.open_verified_s,
        f.open_verified_s / f.open_s.max(1e-9)
    );
    println!(
        "index of 100,000 shards: {:.1} MB, parsed in {:.3} s",
        f.index_100k_shards_bytes as f64 / 1e6,
        f.index_100k_shards_parse_s
    );
}

/// Makes room in `dir` for a new bench dataset: removes the files of an
/// earlier bench run there, and refuses a folder holding anything else, so
/// that `--dir` can never delete a user's data.
fn clear_own_output(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("--dir {}", dir.display())),
    };
    let mut own = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("--dir {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        let is_own = if name == VERSIONS_DIR {
            own_version_records(&entry.path())?
        } else {
            is_file
                && (name == "index.json"
                    || (name.starts_with("part-bench-") && name.ends_with(".arrow"))
                    || name.starts_with(".tmp-"))
        };
        if !is_own {
            anyhow::bail!(
                "--dir {} holds {name:?}, which an earlier `mosaicrs bench` did not write; \
                 give an empty or new folder (bench replaces only its own output)",
                dir.display()
            );
        }
        own.push(entry.path());
    }
    for path in own {
        let removed = match path.is_dir() {
            true => std::fs::remove_dir_all(&path),
            false => std::fs::remove_file(&path),
        };
        removed.with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// True when `dir` (a dataset's version records' folder) holds only version
/// records (`<20 digits>.json`) and the temp files of their writes.
fn own_version_records(dir: &Path) -> Result<bool> {
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(false);
    }
    for entry in std::fs::read_dir(dir).with_context(|| format!("--dir {}", dir.display()))? {
        let entry = entry.with_context(|| format!("--dir {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let record = name
            .strip_suffix(".json")
            .is_some_and(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()));
        if !(entry.file_type().is_ok_and(|t| t.is_file()) && (record || name.starts_with(".tmp-")))
        {
            return Ok(false);
        }
    }
    Ok(true)
}
