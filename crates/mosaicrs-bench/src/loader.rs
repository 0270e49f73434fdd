//! `mosaicrs-loader-bench`: shuffled batches of `[B, F]` float features plus
//! a label, through the loader into tensors, against in-memory gathers of
//! the same samples in the same order and memcpy of the same bytes, all in
//! one process on the same data.
//!
//! Every column but `label` is a feature: a float32 column adds one value
//! per sample, a list of float32 whose rows all hold `D` values (an
//! embedding, as Spark writes `array<float>`) adds `D`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float32Type, Int64Type};
use arrow::record_batch::RecordBatch;
use clap::Parser;
use mosaicrs::assemble::{ElementKind, FeatureLayout};
use mosaicrs::format::Compression;
use mosaicrs::loader::{Loader, LoaderConfig, ShuffleMode, TailPolicy};
use mosaicrs::reader::{BatchCacheStats, Dataset, ReadOptions};
use mosaicrs::testing::{write_partitions, FeatureTable};
use mosaicrs::writer::{SaveMode, WriterOptions};
use mosaicrs_tch::{choose_device, DeviceFeeder, TensorAssembler};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

/// Options of the loader benchmark.
#[derive(Debug, Clone, Parser)]
#[command(name = "mosaicrs-loader-bench", version)]
pub struct BenchArgs {
    /// Dataset folder; created (f0..f{F-1} float32 + label int64) when it has no index.
    #[arg(long, default_value = "bench/results/tmp/loader-2000000")]
    pub data: PathBuf,
    /// Rows to write when creating the dataset.
    #[arg(long, default_value_t = 2_000_000)]
    pub rows: u64,
    /// Float feature columns when creating the dataset.
    #[arg(long, default_value_t = 16)]
    pub features: usize,
    #[arg(long, default_value_t = 4096)]
    pub batch_size: usize,
    /// Batches per contender (default: one epoch).
    #[arg(long)]
    pub batches: Option<u64>,
    /// Loader worker threads (default: cores, at most 4).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Batches assembled ahead of the consumer (default: the loader's).
    #[arg(long)]
    pub prefetch: Option<usize>,
    /// auto, cpu, cuda or cuda:N: where the loader's tensors end up.
    #[arg(long, default_value = "auto", value_parser = choose_device)]
    pub device: Device,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Rounds; each contender's best round is reported (the machine may be
    /// shared), and the loader's first-round time to first batch (cold
    /// mapping) is kept.
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also run the loader over a copy of the dataset written with this
    /// compression (the writer's default batch size for it), in `<data>-<compression>`
    /// (created when it has no index), and report its speed against the
    /// uncompressed loader's; `none` skips it.
    #[arg(long, default_value = "zstd")]
    pub compressed: Compression,
    /// Bytes of decoded batches the compressed copy's reader keeps, e.g.
    /// 256m (default: the reader's).
    #[arg(long, value_parser = parse_size)]
    pub batch_cache: Option<u64>,
    /// Instead of the comparison: run the epochs named on stdin, one number
    /// a line, as the Python loader runs them, and print each epoch's
    /// figures as a JSON line (see `mosaicrs_bench::epochs`).
    #[arg(long)]
    pub epochs_from_stdin: bool,
}

fn parse_size(text: &str) -> std::result::Result<u64, String> {
    mosaicrs::units::parse_byte_size(text).map_err(|e| e.to_string())
}

/// One contender's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    /// Stable key for scripts: mosaicrs_loader, arrow_take,
    /// row_major_gather, memcpy, loader_assembler_in_memory.
    pub id: String,
    pub name: String,
    pub batches: u64,
    pub samples: u64,
    pub seconds: f64,
    pub batches_per_s: f64,
    pub samples_per_s: f64,
    pub time_to_first_batch_s: f64,
    /// Samples/s of the first round alone (for the loader: cold caches,
    /// row blocks built as the epoch reaches them).
    pub first_round_samples_per_s: f64,
    /// Peak resident memory of the process while this contender ran
    /// (VmHWM, reset before each contender where the kernel allows).
    pub max_rss_bytes: u64,
    /// Sum of every delivered label: equal across contenders, proving they
    /// moved the same samples.
    pub label_checksum: i64,
}

impl Figures {
    /// Keeps the throughput of `other` if it is faster; memory and time to
    /// first batch stay those of the first (cold) round.
    fn keep_faster(&mut self, other: Figures) {
        if other.samples_per_s > self.samples_per_s {
            self.seconds = other.seconds;
            self.batches_per_s = other.batches_per_s;
            self.samples_per_s = other.samples_per_s;
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub dataset: String,
    pub rows: u64,
    pub features: usize,
    pub batch_size: usize,
    pub workers: usize,
    pub device: String,
    pub cores: usize,
    pub contenders: Vec<Figures>,
    /// mosaicrs loader samples/s divided by each other contender's.
    pub ratios: Vec<(String, f64)>,
    /// The same loader over compressed shards, unless `--compressed none`.
    pub compressed: Option<CompressedFigures>,
    /// Host-to-device figures, on a CUDA device only.
    pub device_copy: Option<DeviceCopyFigures>,
}

/// The bandwidth the loader reached into the device, against the pinned
/// host-to-device copy measured in the same process.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceCopyFigures {
    /// The loader's samples/s times the bytes of a sample (features and label).
    pub loader_bytes_per_s: f64,
    /// One copy of 256 MiB from pinned host memory to the device
    /// (`cudaMemcpy`), best of 5.
    pub pinned_memcpy_bytes_per_s: f64,
    /// `loader_bytes_per_s / pinned_memcpy_bytes_per_s`.
    pub fraction: f64,
}

/// The loader over a compressed copy of the dataset, against the
/// uncompressed loader of the same run.
#[derive(Debug, Clone, Serialize)]
pub struct CompressedFigures {
    pub compression: String,
    pub dataset: String,
    /// Bytes of the compressed and of the uncompressed shards.
    pub file_bytes: u64,
    pub uncompressed_file_bytes: u64,
    /// Rows per record batch of the compressed shards (the largest).
    pub batch_rows: u64,
    /// Its fastest round with the dataset just opened, so that the epoch
    /// decodes every batch it reads (`id` mosaicrs_loader_compressed).
    pub loader: Figures,
    /// Its samples/s over the uncompressed loader's.
    pub ratio: f64,
    /// The decoded-batch cache over that cold epoch.
    pub cache: BatchCacheStats,
    /// The fastest second epoch on the same open dataset: what every epoch
    /// after the first costs while the decoded batches fit in the cache
    /// (`id` mosaicrs_loader_compressed_warm).
    pub warm: Figures,
    /// Its samples/s over the uncompressed loader's.
    pub warm_ratio: f64,
    /// The cache over the warm epoch alone.
    pub warm_cache: BatchCacheStats,
}

/// Runs the benchmark.
pub fn run(args: &BenchArgs) -> Result<BenchReport> {
    // Only data movement is measured. libtorch's OpenMP threads busy-wait
    // after every parallel region and would take the cores from the loader
    // workers (on a 2-core machine, most of the CPU time): one intra-op
    // thread keeps the contenders apart.
    tch::set_num_threads(1);
    let dataset = open_or_create(args)?;
    let features = bench_features(&dataset)?;
    let config = loader_config(args, &features);
    let batches = batches_to_run(args, &dataset)?;
    let contenders = run_contenders(args, &dataset, &config, &features, batches)?;
    let reference = contenders[0].samples_per_s;
    let compressed = match args.compressed {
        Compression::None => None,
        compression => Some(run_compressed(
            args,
            &dataset,
            compression,
            &config,
            &features,
            batches,
            reference,
        )?),
    };
    let ratios = contenders[1..]
        .iter()
        .map(|c| (c.name.clone(), reference / c.samples_per_s))
        .collect();
    let device_copy = match args.device {
        Device::Cuda(index) => {
            // float32 features and an int64 label.
            let sample_bytes = (features.width() * 4 + 8) as f64;
            let loader_bytes_per_s = reference * sample_bytes;
            let pinned_memcpy_bytes_per_s = pinned_copy_bandwidth(index)?;
            Some(DeviceCopyFigures {
                loader_bytes_per_s,
                pinned_memcpy_bytes_per_s,
                fraction: loader_bytes_per_s / pinned_memcpy_bytes_per_s,
            })
        }
        _ => None,
    };
    Ok(BenchReport {
        dataset: args.data.display().to_string(),
        rows: dataset.num_rows(),
        features: features.width(),
        batch_size: args.batch_size,
        workers: config.workers,
        device: format!("{:?}", args.device),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        contenders,
        ratios,
        compressed,
        device_copy,
    })
}

/// Bytes/s of a 256 MiB copy from pinned host memory to CUDA device
/// `index`, best of 5 (libtorch's `copy_`, a synchronous `cudaMemcpy` for a
/// blocking host-to-device copy).
fn pinned_copy_bandwidth(index: usize) -> Result<f64> {
    const BYTES: i64 = 256 << 20;
    let device = Device::Cuda(index);
    let source = Tensor::f_empty([BYTES], (Kind::Uint8, Device::Cpu))?.f_pin_memory(device)?;
    let mut target = Tensor::f_empty([BYTES], (Kind::Uint8, device))?;
    let sync = || tch::Cuda::synchronize(index as i64);
    target.f_copy_(&source)?;
    sync();
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        target.f_copy_(&source)?;
        sync();
        best = best.min(started.elapsed());
    }
    Ok(BYTES as f64 / best.as_secs_f64().max(1e-9))
}

/// The loader over a `compression` copy of `dataset`, `--repeat` rounds,
/// each with the dataset (and its decoded-batch cache) opened afresh.
fn run_compressed(
    args: &BenchArgs,
    dataset: &Arc<Dataset>,
    compression: Compression,
    config: &LoaderConfig,
    features: &FeatureLayout,
    batches: u64,
    uncompressed_samples_per_s: f64,
) -> Result<CompressedFigures> {
    let dir = PathBuf::from(format!("{}-{}", args.data.display(), compression.as_str()));
    if !mosaicrs::format::Index::exists_in(&dir) {
        // The same rows, rewritten with the writer's defaults for `compression`.
        let options = WriterOptions {
            compression,
            ..Default::default()
        };
        let batches: Vec<RecordBatch> = dataset.batches().collect::<mosaicrs::Result<_>>()?;
        write_partitions(
            &dir,
            &dataset.schema(),
            "bench",
            [&batches[..]],
            options,
            SaveMode::ErrorIfExists,
        )?;
    }
    let read = ReadOptions {
        batch_cache_bytes: args
            .batch_cache
            .unwrap_or(ReadOptions::default().batch_cache_bytes),
        ..Default::default()
    };
    let mut best: Option<(Figures, BatchCacheStats)> = None;
    let mut best_warm: Option<(Figures, BatchCacheStats)> = None;
    let mut shape = (0, 0);
    for _ in 0..args.repeat.max(1) {
        let opened = Arc::new(
            Dataset::open_with(&dir, &read)
                .with_context(|| format!("opening {}", dir.display()))?,
        );
        if opened.num_rows() != dataset.num_rows() {
            bail!(
                "{} holds {} rows, {} has {}: remove it to have it written again",
                dir.display(),
                opened.num_rows(),
                args.data.display(),
                dataset.num_rows()
            );
        }
        shape = (
            opened.index().total_bytes,
            opened
                .shards()
                .iter()
                .flat_map(|s| s.batch_row_offsets().windows(2).map(|w| w[1] - w[0]))
                .max()
                .unwrap_or(0),
        );
        let mut figures = loader_contender(&opened, config, features, args.device, batches)?;
        figures.id = "mosaicrs_loader_compressed".into();
        figures.name = format!(
            "mosaicrs loader, {} shards -> tensors ({:?})",
            compression.as_str(),
            args.device
        );
        let stats = opened.batch_cache_stats();
        keep_best(&mut best, figures, stats);
        let mut warm = loader_contender(&opened, config, features, args.device, batches)?;
        warm.id = "mosaicrs_loader_compressed_warm".into();
        warm.name = format!(
            "the same, second epoch (batches cached) ({:?})",
            args.device
        );
        let total = opened.batch_cache_stats();
        let epoch = BatchCacheStats {
            hits: total.hits - stats.hits,
            misses: total.misses - stats.misses,
            evictions: total.evictions - stats.evictions,
            ..total
        };
        keep_best(&mut best_warm, warm, epoch);
    }
    let (loader, cache) = best.context("no round ran")?;
    let (warm, warm_cache) = best_warm.context("no round ran")?;
    Ok(CompressedFigures {
        compression: compression.as_str().to_string(),
        dataset: dir.display().to_string(),
        file_bytes: shape.0,
        uncompressed_file_bytes: dataset.index().total_bytes,
        batch_rows: shape.1,
        ratio: loader.samples_per_s / uncompressed_samples_per_s,
        loader,
        cache,
        warm_ratio: warm.samples_per_s / uncompressed_samples_per_s,
        warm,
        warm_cache,
    })
}

/// Keeps in `best` the faster round's figures (first-round memory and time
/// to first batch) and the cache stats of that round.
fn keep_best(best: &mut Option<(Figures, BatchCacheStats)>, f: Figures, stats: BatchCacheStats) {
    match best {
        Some((b, s)) if f.samples_per_s > b.samples_per_s => {
            b.keep_faster(f);
            *s = stats;
        }
        Some(_) => {}
        None => *best = Some((f, stats)),
    }
}

/// The dataset at `--data`, written first when the folder holds none.
pub(crate) fn open_or_create(args: &BenchArgs) -> Result<Arc<Dataset>> {
    if !mosaicrs::format::Index::exists_in(&args.data) {
        create_dataset(&args.data, args.rows, args.features)?;
    }
    let dataset =
        Dataset::open(&args.data).with_context(|| format!("opening {}", args.data.display()))?;
    Ok(Arc::new(dataset))
}

/// A shuffled, drop-last loader over the features and the label.
pub(crate) fn loader_config(args: &BenchArgs, features: &FeatureLayout) -> LoaderConfig {
    let defaults = LoaderConfig::default();
    LoaderConfig {
        batch_size: args.batch_size,
        seed: args.seed,
        shuffle: ShuffleMode::Global,
        tail: TailPolicy::DropLast,
        workers: args.workers.unwrap_or(defaults.workers),
        prefetch: args.prefetch.unwrap_or(defaults.prefetch),
        columns: Some(
            features
                .columns()
                .map(|(name, _)| name.to_string())
                .chain(["label".to_string()])
                .collect(),
        ),
        ..defaults
    }
}

/// `--batches`, at most one epoch; refuses a dataset smaller than a batch.
fn batches_to_run(args: &BenchArgs, dataset: &Dataset) -> Result<u64> {
    let per_epoch = dataset.num_rows() / args.batch_size as u64;
    let batches = args.batches.unwrap_or(per_epoch).min(per_epoch);
    if batches == 0 {
        bail!(
            "the dataset has fewer rows than one batch of {}",
            args.batch_size
        );
    }
    Ok(batches)
}

/// Every contender, `--repeat` rounds, the loader first; each keeps its
/// fastest round.
fn run_contenders(
    args: &BenchArgs,
    dataset: &Arc<Dataset>,
    config: &LoaderConfig,
    features: &FeatureLayout,
    batches: u64,
) -> Result<Vec<Figures>> {
    let device = args.device;
    // The loader first, before the in-memory copies inflate the RSS.
    let mut contenders = vec![loader_contender(
        dataset, config, features, device, batches,
    )?];
    let order = Loader::new(Arc::clone(dataset), config.clone())?.order(0);
    let b = args.batch_size;
    let samples = &order[..(batches as usize * b)];
    let memory = InMemory::load(dataset, features)?;
    for round in 0..args.repeat.max(1) {
        let mut results = Vec::new();
        if round > 0 {
            results.push(loader_contender(
                dataset, config, features, device, batches,
            )?);
        }
        results.push(memory.arrow_gather(samples, b)?);
        results.push(memory.row_major_gather(samples, b)?);
        results.push(memory.memcpy(samples, b)?);
        results.push(memory.assembler_in_memory(samples, b, features)?);
        if round == 0 {
            contenders.extend(results);
        } else {
            for (best, new) in contenders.iter_mut().zip(results) {
                best.keep_faster(new);
            }
        }
    }
    Ok(contenders)
}

/// The benchmark's features: every column but `label`, which must exist;
/// refuses columns that are neither float32 nor lists of float32 (naming
/// them), and lists of fewer than 2 values.
pub fn bench_features(dataset: &Dataset) -> Result<FeatureLayout> {
    let schema = dataset.schema();
    if schema.field_with_name("label").is_err() {
        bail!(
            "{}: the benchmark needs a label column",
            dataset.path().display()
        );
    }
    let mut names = Vec::new();
    for field in schema.fields().iter().filter(|f| f.name() != "label") {
        match field.data_type() {
            DataType::Float32 => {}
            DataType::List(child)
            | DataType::LargeList(child)
            | DataType::FixedSizeList(child, _)
                if child.data_type() == &DataType::Float32 => {}
            other => bail!(
                "column {:?} has type {other}; the benchmark takes float32 columns and \
                 lists of float32 as features",
                field.name()
            ),
        }
        names.push(field.name().clone());
    }
    if names.is_empty() {
        bail!(
            "{}: no feature columns besides the label",
            dataset.path().display()
        );
    }
    let layout = FeatureLayout::new(dataset, &names)?;
    if let Some((column, width)) = layout.lists().iter().find(|(_, w)| *w < 2) {
        bail!("column {column:?} holds {width} values in row 0; an embedding needs 2 or more");
    }
    Ok(layout)
}

/// The float32 values of a list column's rows, in order (the child array
/// trimmed to the rows' span).
fn list_values(array: &ArrayRef) -> Result<Vec<f32>> {
    let (values, start, end) = match array.data_type() {
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            let o = l.value_offsets();
            (l.values(), o[0] as usize, o[o.len() - 1] as usize)
        }
        DataType::LargeList(_) => {
            let l = array.as_list::<i64>();
            let o = l.value_offsets();
            (l.values(), o[0] as usize, o[o.len() - 1] as usize)
        }
        DataType::FixedSizeList(_, d) => {
            let l = array.as_fixed_size_list();
            let d = *d as usize;
            (l.values(), l.offset() * d, (l.offset() + l.len()) * d)
        }
        other => bail!("expected a list of float32, found {other}"),
    };
    if values.null_count() > 0 || array.null_count() > 0 {
        bail!("the benchmark's embedding column has nulls");
    }
    Ok(values.as_primitive::<Float32Type>().values()[start..end].to_vec())
}

/// Writes `rows` rows of `features` float32 columns (deterministic
/// pseudo-random values) and an int64 label in 0..10.
pub fn create_dataset(dir: &Path, rows: u64, features: usize) -> Result<()> {
    FeatureTable::new(rows, features).write(
        dir,
        WriterOptions::default(),
        SaveMode::ErrorIfExists,
    )?;
    Ok(())
}

/// Peak RSS of this process, and a reset of it (Linux `clear_refs` 5).
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

fn reset_peak_rss() {
    // Best effort: older kernels refuse, and the peak then spans the process.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn figures(
    id: &str,
    name: &str,
    batches: u64,
    batch: usize,
    total: Duration,
    first: Duration,
    checksum: i64,
) -> Figures {
    let seconds = total.as_secs_f64().max(1e-9);
    Figures {
        id: id.to_string(),
        name: name.to_string(),
        batches,
        samples: batches * batch as u64,
        seconds,
        batches_per_s: batches as f64 / seconds,
        samples_per_s: (batches * batch as u64) as f64 / seconds,
        time_to_first_batch_s: first.as_secs_f64(),
        first_round_samples_per_s: (batches * batch as u64) as f64 / seconds,
        max_rss_bytes: peak_rss(),
        label_checksum: checksum,
    }
}

fn loader_contender(
    dataset: &Arc<Dataset>,
    config: &LoaderConfig,
    features: &FeatureLayout,
    device: Device,
    batches: u64,
) -> Result<Figures> {
    reset_peak_rss();
    let started = Instant::now();
    let mut loader = Loader::new(Arc::clone(dataset), config.clone())?;
    let assembler = TensorAssembler::new(
        loader.schema(),
        &features.spec(ElementKind::F32, "label"),
        device,
    )?;
    let epoch = loader.epoch_with(move |g| assembler.assemble(g))?;
    let mut first = None;
    let mut checksum = 0i64;
    let mut count = 0;
    for batch in DeviceFeeder::new(epoch, device).take(batches as usize) {
        let batch = batch?;
        first.get_or_insert_with(|| started.elapsed());
        // Touch the result as a training step would: the label sum (on the
        // device when there is one, which also waits for the copy).
        checksum += batch
            .data
            .tensor("label")?
            .f_sum(Kind::Int64)?
            .f_int64_value(&[])?;
        count += 1;
    }
    if device.is_cuda() {
        tch::Cuda::synchronize(0);
    }
    Ok(figures(
        "mosaicrs_loader",
        &format!("mosaicrs loader -> tensors ({device:?})"),
        count,
        config.batch_size,
        started.elapsed(),
        first.unwrap_or_default(),
        checksum,
    ))
}

/// The same columns copied into process memory.
struct InMemory {
    /// Column-major: one Vec per feature column, `width` values per sample
    /// (what an Arrow table in memory is).
    columns: Vec<(Vec<f32>, usize)>,
    /// Floats per sample, over all feature columns.
    width: usize,
    /// Row-major `[N, F]` (what a numpy matrix `X[idx]` gathers from).
    rows: Vec<f32>,
    labels: Vec<i64>,
    table: RecordBatch,
}

impl InMemory {
    fn load(dataset: &Dataset, features: &FeatureLayout) -> Result<Self> {
        let mut names: Vec<&str> = features.columns().map(|(n, _)| n).collect();
        names.push("label");
        let batches = dataset
            .batches_projected(&names)?
            .collect::<mosaicrs::Result<Vec<_>>>()?;
        let table = arrow::compute::concat_batches(&batches[0].schema(), &batches)?;
        let n = table.num_rows();
        let f = features.width();
        let columns = features
            .columns()
            .enumerate()
            .map(|(j, (name, width))| {
                let values = column_values(table.column(j), width)?;
                if values.len() != n * width {
                    bail!("column {name:?}: not every row holds {width} values");
                }
                Ok((values, width))
            })
            .collect::<Result<Vec<_>>>()?;
        let labels = table
            .column(names.len() - 1)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec();
        let mut rows = vec![0f32; n * f];
        let mut offset = 0;
        for (values, width) in &columns {
            for (i, sample) in values.chunks_exact(*width).enumerate() {
                rows[i * f + offset..i * f + offset + width].copy_from_slice(sample);
            }
            offset += width;
        }
        Ok(InMemory {
            columns,
            width: f,
            rows,
            labels,
            table,
        })
    }

    /// Arrow `take` on the in-memory table, then the columns stacked into a
    /// `[B, F]` tensor (what a loader over an in-memory Arrow table does).
    fn arrow_gather(&self, order: &[u64], batch: usize) -> Result<Figures> {
        reset_peak_rss();
        let f = self.width;
        let k = self.columns.len();
        let started = Instant::now();
        let mut first = None;
        let mut checksum = 0;
        let mut out = vec![0f32; batch * f];
        for chunk in order.chunks(batch) {
            let idx = arrow::array::UInt64Array::from_iter_values(chunk.iter().copied());
            let taken = arrow::compute::take_record_batch(&self.table, &idx)?;
            let mut offset = 0;
            for (j, (_, width)) in self.columns.iter().enumerate() {
                if *width == 1 {
                    let col = taken.column(j).as_primitive::<Float32Type>().values();
                    for (i, &v) in col.iter().enumerate() {
                        out[i * f + offset] = v;
                    }
                } else {
                    let values = list_values(taken.column(j))?;
                    for (i, sample) in values.chunks_exact(*width).enumerate() {
                        out[i * f + offset..i * f + offset + width].copy_from_slice(sample);
                    }
                }
                offset += width;
            }
            let labels = taken.column(k).as_primitive::<Int64Type>().values();
            let x = Tensor::f_from_slice(&out)?.f_view([batch as i64, f as i64])?;
            let y = Tensor::f_from_slice(labels)?;
            checksum += y.f_sum(Kind::Int64)?.f_int64_value(&[])?;
            drop(x);
            first.get_or_insert_with(|| started.elapsed());
        }
        let n = (order.len() / batch) as u64;
        Ok(figures(
            "arrow_take",
            "in-memory Arrow take -> tensors",
            n,
            batch,
            started.elapsed(),
            first.unwrap_or_default(),
            checksum,
        ))
    }

    /// The loader's tensor assembler, single-threaded, over the in-memory table.
    fn assembler_in_memory(
        &self,
        order: &[u64],
        batch: usize,
        features: &FeatureLayout,
    ) -> Result<Figures> {
        reset_peak_rss();
        let asm = TensorAssembler::new(
            &self.table.schema(),
            &features.spec(ElementKind::F32, "label"),
            Device::Cpu,
        )?;
        let started = Instant::now();
        let mut first = None;
        let mut checksum = 0;
        for chunk in order.chunks(batch) {
            let picks = chunk.iter().map(|&r| (0, r as usize)).collect();
            let g =
                mosaicrs::loader::Gathered::new(vec![self.table.clone()], picks, chunk.to_vec())?;
            let t = asm.assemble(&g)?;
            checksum += t.tensor("label")?.f_sum(Kind::Int64)?.f_int64_value(&[])?;
            first.get_or_insert_with(|| started.elapsed());
        }
        let n = (order.len() / batch) as u64;
        Ok(figures(
            "loader_assembler_in_memory",
            "in-memory table, loader assembler, 1 thread",
            n,
            batch,
            started.elapsed(),
            first.unwrap_or_default(),
            checksum,
        ))
    }

    /// A row-major `[N, F]` matrix gathered by index, like numpy's `X[idx]`.
    fn row_major_gather(&self, order: &[u64], batch: usize) -> Result<Figures> {
        reset_peak_rss();
        let f = self.width;
        let started = Instant::now();
        let mut first = None;
        let mut checksum = 0;
        for chunk in order.chunks(batch) {
            let mut x = Tensor::f_empty([batch as i64, f as i64], (Kind::Float, Device::Cpu))?;
            let mut y = vec![0i64; batch];
            {
                let out = tensor_f32(&mut x)?;
                for (i, &r) in chunk.iter().enumerate() {
                    let r = r as usize;
                    out[i * f..(i + 1) * f].copy_from_slice(&self.rows[r * f..(r + 1) * f]);
                    y[i] = self.labels[r];
                }
            }
            let y = Tensor::f_from_slice(&y)?;
            checksum += y.f_sum(Kind::Int64)?.f_int64_value(&[])?;
            first.get_or_insert_with(|| started.elapsed());
        }
        let n = (order.len() / batch) as u64;
        Ok(figures(
            "row_major_gather",
            "in-memory row-major gather (numpy X[idx]) -> tensors",
            n,
            batch,
            started.elapsed(),
            first.unwrap_or_default(),
            checksum,
        ))
    }

    /// memcpy of the same number of bytes per batch from contiguous memory:
    /// the ceiling for any gather.
    fn memcpy(&self, order: &[u64], batch: usize) -> Result<Figures> {
        reset_peak_rss();
        let f = self.width;
        let started = Instant::now();
        let mut first = None;
        let mut x = vec![0f32; batch * f];
        let mut y = vec![0i64; batch];
        let rows = self.labels.len();
        let mut checksum = 0;
        for (k, _) in order.chunks(batch).enumerate() {
            // Consecutive windows, wrapping around the data.
            let start = (k * batch) % (rows - batch + 1);
            x.copy_from_slice(&self.rows[start * f..(start + batch) * f]);
            y.copy_from_slice(&self.labels[start..start + batch]);
            checksum += std::hint::black_box(&y)[0] + std::hint::black_box(&x)[0] as i64;
            first.get_or_insert_with(|| started.elapsed());
        }
        let n = (order.len() / batch) as u64;
        Ok(figures(
            "memcpy",
            "memcpy of the same bytes",
            n,
            batch,
            started.elapsed(),
            first.unwrap_or_default(),
            checksum,
        ))
    }
}

/// A feature column's values as `width` floats per row.
fn column_values(array: &ArrayRef, width: usize) -> Result<Vec<f32>> {
    if width == 1 {
        Ok(array.as_primitive::<Float32Type>().values().to_vec())
    } else {
        list_values(array)
    }
}

fn tensor_f32(t: &mut Tensor) -> Result<&mut [f32]> {
    if t.kind() != Kind::Float || !t.is_contiguous() || t.device() != Device::Cpu {
        bail!("expected a contiguous float CPU tensor");
    }
    let len = t.numel();
    let ptr = t.data_ptr().cast::<f32>();
    if len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: a contiguous CPU float tensor holds `len` f32 at `ptr`
    // (non-null as `len > 0`); the `&mut` borrow keeps it alive and unshared.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Prints the table of figures and ratios.
pub fn print_table(report: &BenchReport) {
    println!(
        "loader benchmark: {} rows, [B={}, F={}] float32 + int64 label, {} workers, {} cores, device {}",
        report.rows, report.batch_size, report.features, report.workers, report.cores, report.device
    );
    println!(
        "{:<58} {:>11} {:>13} {:>10} {:>10}",
        "contender", "batches/s", "samples/s", "first (s)", "peak RSS"
    );
    for c in &report.contenders {
        println!(
            "{:<58} {:>11.1} {:>13.0} {:>10.4} {:>9.0}M",
            c.name,
            c.batches_per_s,
            c.samples_per_s,
            c.time_to_first_batch_s,
            c.max_rss_bytes as f64 / (1 << 20) as f64
        );
    }
    for (name, ratio) in &report.ratios {
        println!("ratio mosaicrs loader / {name}: {ratio:.2}x");
    }
    if let Some(d) = &report.device_copy {
        println!(
            "host-to-device: loader {:.2} GB/s, {:.3}x of a pinned cudaMemcpy in this process ({:.2} GB/s)",
            d.loader_bytes_per_s / 1e9,
            d.fraction,
            d.pinned_memcpy_bytes_per_s / 1e9
        );
    }
    if let Some(c) = &report.compressed {
        println!(
            "global shuffle over {} shards ({}, {:.1} MB vs {:.1} MB uncompressed, {} rows per batch):",
            c.compression,
            c.dataset,
            c.file_bytes as f64 / 1e6,
            c.uncompressed_file_bytes as f64 / 1e6,
            c.batch_rows
        );
        for run in [&c.loader, &c.warm] {
            println!(
                "{:<58} {:>11.1} {:>13.0} {:>10.4} {:>9.0}M",
                run.name,
                run.batches_per_s,
                run.samples_per_s,
                run.time_to_first_batch_s,
                run.max_rss_bytes as f64 / (1 << 20) as f64
            );
        }
        println!(
            "ratio {} loader / uncompressed loader: {:.2}x first epoch, {:.2}x later epochs",
            c.compression, c.ratio, c.warm_ratio
        );
        for (epoch, s) in [("first epoch", &c.cache), ("later epoch", &c.warm_cache)] {
            println!("decoded-batch cache ({epoch}): {s}");
        }
    }
}
