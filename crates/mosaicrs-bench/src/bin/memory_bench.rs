//! `mosaicrs-memory-bench`: the loader's memory as the dataset grows.
//!
//! For each size it writes an uncompressed dataset of 16 float32 features
//! and an int64 label (72 bytes a row) under `--dir`, then runs one full
//! epoch of `[B, 16]` batches per shuffle mode, assembling each batch into a
//! plain buffer as a training step would. A sampler thread reads
//! `/proc/self/status` every 5 ms and keeps the peaks of `RssAnon` (heap
//! and stacks: what the loader allocates) and `RssFile` (mapped shard pages
//! that are resident: the page cache this process holds). The figure that
//! must stay flat is `RssAnon` above its value once the dataset is open.
//!
//! The epochs of each dataset run in a fresh process (this binary again,
//! with `--dataset`), so that what the writer allocated and the allocator
//! kept does not count. `--dataset PATH` alone measures an existing dataset.
//!
//! ```text
//! cargo run --release -p mosaicrs-bench --bin mosaicrs-memory-bench -- \
//!     --dir /data/mem --gigabytes 1,4,10
//! cargo run --release -p mosaicrs-bench --bin mosaicrs-memory-bench -- \
//!     --dataset /data/my-features
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use mosaicrs::assemble::{BatchPlan, ElementKind, ElementsMut, TensorSpec};
use mosaicrs::loader::{Loader, LoaderConfig, ShuffleMode};
use mosaicrs::reader::Dataset;
use mosaicrs::testing::FeatureTable;
use mosaicrs::writer::{commit, SaveMode, ShardWriter, WriterOptions};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(about = "Loader memory for datasets of growing size (RssAnon and RssFile peaks)")]
struct Args {
    /// Folder for the generated datasets; it must be empty or not exist.
    #[arg(long, required_unless_present = "dataset")]
    dir: Option<PathBuf>,
    /// Measure this existing dataset instead of generating any (its first
    /// 16 float32 columns and label must be named f0..f15 and label).
    #[arg(long, conflicts_with = "dir")]
    dataset: Option<PathBuf>,
    /// Dataset sizes in GiB, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,10")]
    gigabytes: Vec<f64>,
    /// Samples per batch.
    #[arg(long, default_value_t = 4096)]
    batch_size: usize,
    /// Shards per block of the block-local mode.
    #[arg(long, default_value_t = 4)]
    shards_per_block: u32,
    /// Keep the datasets instead of deleting each after its run.
    #[arg(long)]
    keep: bool,
}

const FEATURES: usize = 16;
const ROW_BYTES: f64 = (FEATURES * 4 + 8) as f64;
const CHUNK_ROWS: u64 = 65_536;

#[derive(Serialize, Deserialize)]
struct Run {
    gigabytes: f64,
    rows: u64,
    bytes_on_disk: u64,
    shuffle: String,
    samples_per_s: f64,
    /// RssAnon when the process started: what the binary's libraries
    /// (libtorch's static initialisers, most of it) allocate before any work.
    anon_at_start_bytes: u64,
    /// RssAnon once the dataset is open, before the loader starts.
    anon_at_open_bytes: u64,
    /// Peak RssAnon during the epoch minus `anon_at_open_bytes`.
    anon_growth_bytes: u64,
    /// Peak RssAnon during the epoch: the process's memory beyond the mapped pages.
    anon_peak_bytes: u64,
    /// Peak RssFile during the epoch (resident mapped shard pages).
    peak_file_bytes: u64,
}

fn main() -> Result<()> {
    let at_start = status_bytes("RssAnon:");
    let args = Args::parse();
    let runs = match (&args.dataset, &args.dir) {
        (Some(path), _) => epochs(&args, path, at_start)?,
        (None, Some(dir)) => generated(&args, dir)?,
        // clap requires one of the two.
        (None, None) => bail!("give --dir or --dataset"),
    };
    println!("{}", serde_json::to_string_pretty(&runs)?);
    Ok(())
}

/// Every shuffle mode's epoch over `path`, in this process.
fn epochs(args: &Args, path: &Path, at_start: u64) -> Result<Vec<Run>> {
    let modes = [
        ShuffleMode::Global,
        ShuffleMode::BlockLocal {
            shards_per_block: args.shards_per_block,
        },
    ];
    let mut runs = Vec::new();
    for shuffle in modes {
        let mut run = epoch(path, shuffle, args.batch_size)?;
        run.anon_at_start_bytes = at_start;
        eprintln!(
            "  {}: {:.0} samples/s, RssAnon +{:.1} MiB (at start {:.1} MiB, at open {:.1} MiB, peak {:.1} MiB), RssFile peak {:.0} MiB",
            run.shuffle,
            run.samples_per_s,
            mib(run.anon_growth_bytes),
            mib(run.anon_at_start_bytes),
            mib(run.anon_at_open_bytes),
            mib(run.anon_peak_bytes),
            mib(run.peak_file_bytes)
        );
        runs.push(run);
    }
    Ok(runs)
}

/// Writes a dataset of each size under `dir` and measures its epochs in a
/// fresh process.
fn generated(args: &Args, dir: &Path) -> Result<Vec<Run>> {
    if dir.exists() && dir.read_dir()?.next().is_some() {
        bail!(
            "{} is not empty; give a new or empty folder (the bench writes and deletes datasets there)",
            dir.display()
        );
    }
    let mut runs = Vec::new();
    for &gib in &args.gigabytes {
        let rows = (gib * (1u64 << 30) as f64 / ROW_BYTES) as u64;
        let path = dir.join(format!("features-{gib}g"));
        let started = Instant::now();
        let bytes = write(&path, rows).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "{gib} GiB: {rows} rows, {:.1} GiB written in {:.0} s",
            bytes as f64 / (1u64 << 30) as f64,
            started.elapsed().as_secs_f64()
        );
        let output = Command::new(std::env::current_exe()?)
            .arg("--dataset")
            .arg(&path)
            .args(["--batch-size", &args.batch_size.to_string()])
            .args(["--shards-per-block", &args.shards_per_block.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .context("starting the epoch process")?;
        if !output.status.success() {
            bail!(
                "the epoch process over {} failed: {}",
                path.display(),
                output.status
            );
        }
        let measured: Vec<Run> = serde_json::from_slice(&output.stdout)
            .context("reading the epoch process's figures")?;
        runs.extend(measured);
        if !args.keep {
            std::fs::remove_dir_all(&path)?;
        }
    }
    Ok(runs)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// Writes `rows` rows a chunk at a time (memory stays one chunk) and commits.
fn write(path: &Path, rows: u64) -> Result<u64> {
    let table = FeatureTable::new(CHUNK_ROWS, FEATURES);
    let schema = table.schema();
    let mut writer = ShardWriter::create(
        path,
        schema.clone(),
        "memory",
        0,
        0,
        WriterOptions::default(),
    )?;
    let mut written = 0;
    let mut seed = 1;
    while written < rows {
        let n = CHUNK_ROWS.min(rows - written);
        for batch in FeatureTable::new(n, FEATURES).with_seed(seed).batches() {
            writer.write(&batch)?;
        }
        written += n;
        seed += 1;
    }
    let shards = writer.finish()?;
    let bytes = shards.iter().map(|s| s.bytes).sum();
    commit(path, &schema, "memory", shards, SaveMode::ErrorIfExists)?;
    Ok(bytes)
}

/// One epoch over `path` in `shuffle` order with the memory sampler running.
fn epoch(path: &Path, shuffle: ShuffleMode, batch_size: usize) -> Result<Run> {
    let dataset = Arc::new(Dataset::open(path)?);
    let rows = dataset.num_rows();
    let bytes: u64 = dataset.index().shards.iter().map(|s| s.bytes).sum();
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let names: Vec<String> = (0..FEATURES).map(|i| format!("f{i}")).collect();
    let plan = BatchPlan::new(
        &dataset.schema(),
        &TensorSpec::features(names, ElementKind::F32),
    )?;
    let at_open = status_bytes("RssAnon:");
    let sampler = Sampler::start();
    let config = LoaderConfig {
        batch_size,
        shuffle,
        seed: 7,
        ..LoaderConfig::default()
    };
    let mut loader = Loader::new(dataset, config)?;
    let started = Instant::now();
    let mut samples = 0u64;
    let width = plan.feature_width();
    for batch in loader.epoch_with(move |g| {
        let mut out = vec![0f32; g.len() * width];
        plan.fill_features(g, ElementsMut::F32(&mut out))?;
        Ok(out)
    })? {
        let batch = batch?;
        samples += (batch.data.len() / width) as u64;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(loader);
    let (peak_anon, peak_file) = sampler.stop();
    Ok(Run {
        gigabytes: gib,
        rows,
        bytes_on_disk: bytes,
        shuffle: shuffle.to_string(),
        samples_per_s: samples as f64 / seconds,
        // Filled in by the caller, which read it first thing.
        anon_at_start_bytes: 0,
        anon_at_open_bytes: at_open,
        anon_growth_bytes: peak_anon.saturating_sub(at_open),
        anon_peak_bytes: peak_anon,
        peak_file_bytes: peak_file,
    })
}

/// A `/proc/self/status` field in bytes (0 where the kernel has none).
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Peaks of RssAnon and RssFile, sampled on a thread.
struct Sampler {
    stop: Arc<AtomicBool>,
    anon: Arc<AtomicU64>,
    file: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Sampler {
    fn start() -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let anon = Arc::new(AtomicU64::new(0));
        let file = Arc::new(AtomicU64::new(0));
        let (s, a, f) = (stop.clone(), anon.clone(), file.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                a.fetch_max(status_bytes("RssAnon:"), Ordering::Relaxed);
                f.fetch_max(status_bytes("RssFile:"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        Sampler {
            stop,
            anon,
            file,
            thread,
        }
    }

    fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        (
            self.anon.load(Ordering::Relaxed),
            self.file.load(Ordering::Relaxed),
        )
    }
}
