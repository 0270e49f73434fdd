//! The training run: options, loop, checkpoints, evaluation.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use mosaicrs::loader::{LoadedBatch, Loader, LoaderConfig, ShuffleMode, TailPolicy};
use mosaicrs::reader::{DataSource, ReadOptions};
use mosaicrs::storage::StoreArgs;
use mosaicrs_tch::{choose_device, feature_input, DeviceFeeder, TensorAssembler, TensorBatch};
use tch::{Device, Kind};

use crate::checkpoint::{self, Checkpoint, Meta};
use crate::data::{pass_batch_size, resolve_features, split_rows, statistics};
use crate::model::{Adam, Mlp};
use mosaicrs::assemble::{ElementKind, FeatureLayout};

/// Trains an MLP classifier on a mosaicrs dataset.
#[derive(Debug, Clone, Parser)]
#[command(name = "mosaicrs-train", version)]
pub struct TrainArgs {
    /// The dataset: a folder (with index.json) or a URL (s3://, gs://, az://...).
    /// A remote dataset larger than --cache-limit streams through the cache
    /// with --shuffle block-local:K.
    #[arg(long)]
    pub data: String,
    #[command(flatten)]
    pub store: StoreArgs,
    /// Feature columns, comma-separated (default: every numeric column, and every
    /// list-of-numbers column such as a Spark `array<float>` embedding, except the label).
    #[arg(long, value_delimiter = ',')]
    pub features: Vec<String>,
    /// The integer class column.
    #[arg(long, default_value = "label")]
    pub label: String,
    /// Samples per step (per rank).
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 10)]
    pub epochs: u64,
    /// Adam learning rate.
    #[arg(long, default_value_t = 0.003)]
    pub lr: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// auto (CUDA when available), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = choose_device)]
    pub device: Device,
    /// Hidden layer sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "128")]
    pub hidden: Vec<i64>,
    /// Fraction of rows held out for the accuracy (chosen by a hash of seed and row).
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    /// global, block-local[:K] or sequential.
    #[arg(long, default_value = "global")]
    pub shuffle: ShuffleMode,
    /// Where checkpoints go (one at the end of every epoch, and every
    /// --checkpoint-every steps).
    #[arg(long)]
    pub checkpoint_dir: Option<PathBuf>,
    /// Steps between checkpoints within an epoch (0: epoch ends only).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: u64,
    /// Continue from the latest checkpoint in --checkpoint-dir.
    #[arg(long)]
    pub resume: bool,
    /// Stop (after a checkpoint) once this many steps have run in total, as
    /// if interrupted.
    #[arg(long)]
    pub stop_after_steps: Option<u64>,
    /// Data-parallel ranks: this process trains on its share of every global batch.
    #[arg(long, default_value_t = 1)]
    pub world_size: usize,
    #[arg(long, default_value_t = 0)]
    pub rank: usize,
    /// Loader worker threads (default: cores, at most 4).
    #[arg(long)]
    pub workers: Option<usize>,
    /// libtorch intra-op (OpenMP) threads. Its threads busy-wait between
    /// operations and take the cores from the loader workers: with a small
    /// model, 1 is much faster (on 2 cores, 80x for the digits MLP). Raise it
    /// for large models trained on the CPU.
    #[arg(long, default_value_t = 1)]
    pub torch_threads: i32,
}

/// What a run reports.
#[derive(Debug, Clone)]
pub struct Report {
    /// Held-out accuracy (None without held-out rows).
    pub accuracy: Option<f64>,
    pub holdout_rows: usize,
    pub steps: u64,
    pub samples: u64,
    /// Time the training step waited for the next batch.
    pub data_wait: Duration,
    pub train_time: Duration,
    pub last_loss: f64,
    pub device: Device,
    /// True when --stop-after-steps ended the run early.
    pub stopped_early: bool,
    /// Bytes downloaded from the object store (0 for a local dataset).
    pub bytes_downloaded: u64,
    /// The most bytes the cache held (0 for a local dataset).
    pub cache_peak_bytes: u64,
}

impl Report {
    /// The machine-grepable summary line.
    pub fn line(&self) -> String {
        let secs = self.train_time.as_secs_f64();
        format!(
            "accuracy={} holdout_rows={} steps={} samples={} loss={:.4} data_wait_s={:.3} \
             train_s={:.3} samples_per_s={:.0} device={:?} downloaded_bytes={} \
             cache_peak_bytes={}",
            self.accuracy
                .map_or("NA".to_string(), |a| format!("{a:.4}")),
            self.holdout_rows,
            self.steps,
            self.samples,
            self.last_loss,
            self.data_wait.as_secs_f64(),
            secs,
            self.samples as f64 / secs.max(1e-9),
            self.device,
            self.bytes_downloaded,
            self.cache_peak_bytes,
        )
    }
}

/// Runs training as the options say.
pub fn run(args: &TrainArgs) -> Result<Report> {
    check_args(args)?;
    tch::set_num_threads(args.torch_threads);
    let device = args.device;
    let dataset = open_data(args).with_context(|| format!("opening --data {}", args.data))?;
    let features = resolve_features(&dataset.schema(), &args.features, &args.label)?;
    let layout = FeatureLayout::new(&dataset, &features)?;
    let (train_rows, holdout_rows) = split_rows(dataset.num_rows(), args.holdout, args.seed)?;
    let resume = match (&args.checkpoint_dir, args.resume) {
        (Some(dir), true) => Some(Checkpoint::latest(dir)?),
        _ => None,
    };
    let meta = run_meta(
        args,
        &dataset,
        &train_rows,
        &features,
        &layout,
        resume.as_ref(),
    )?;

    tch::manual_seed(args.seed as i64);
    let mut model = Mlp::new(
        device,
        layout.width() as i64,
        &args.hidden,
        meta.classes,
        &meta.mean,
        &meta.std,
    )?;
    let mut adam = Adam::new(model.trainable(), args.lr)?;
    let config = loader_config(args, &features, train_rows);
    let mut loader = match &resume {
        Some(ckpt) => {
            ckpt.restore(&mut model, &mut adam)?;
            Loader::resume(&dataset, config, ckpt.state.clone())?
        }
        None => Loader::new(&dataset, config)?,
    };
    let assembler = TensorAssembler::new(
        loader.schema(),
        &layout.spec(ElementKind::F32, &args.label),
        device,
    )?;
    let mut report = Report {
        accuracy: None,
        holdout_rows: holdout_rows.len(),
        steps: 0,
        samples: 0,
        data_wait: Duration::ZERO,
        train_time: Duration::ZERO,
        last_loss: f64::NAN,
        device,
        stopped_early: false,
        bytes_downloaded: 0,
        cache_peak_bytes: 0,
    };
    let mut run = Run {
        model: &model,
        adam: &mut adam,
        layout: &layout,
        meta,
    };
    run.epochs(args, &mut loader, &assembler, &mut report)?;
    if !report.stopped_early {
        report.accuracy = evaluate(
            &model,
            &dataset,
            &holdout_rows,
            &assembler,
            &layout,
            loader.config(),
        )?;
    }
    report.bytes_downloaded = dataset.bytes_downloaded();
    report.cache_peak_bytes = dataset.peak_cache_bytes();
    Ok(report)
}

/// The --data path or URL: mapped in place, cached whole, or streamed
/// through the cache when it is larger than --cache-limit.
fn open_data(args: &TrainArgs) -> Result<DataSource> {
    let location = args.store.location(&args.data)?;
    let cache = args.store.cache()?;
    Ok(DataSource::open_at(
        &location,
        &cache,
        &ReadOptions::default(),
    )?)
}

/// Option combinations that clap cannot check.
fn check_args(args: &TrainArgs) -> Result<()> {
    if args.resume && args.checkpoint_dir.is_none() {
        bail!("--resume needs --checkpoint-dir");
    }
    if args.torch_threads < 1 {
        bail!("--torch-threads must be at least 1");
    }
    Ok(())
}

/// The run's settings and statistics: the checkpoint's when resuming (and
/// then checked against the options), else a statistics pass over the
/// training rows.
fn run_meta(
    args: &TrainArgs,
    dataset: &DataSource,
    train_rows: &[u64],
    features: &[String],
    layout: &FeatureLayout,
    resume: Option<&Checkpoint>,
) -> Result<Meta> {
    let meta = match resume {
        Some(ckpt) => ckpt.meta.clone(),
        None => {
            let stats = statistics(dataset, train_rows, features, layout, &args.label)?;
            Meta {
                features: features.to_vec(),
                label: args.label.clone(),
                hidden: args.hidden.clone(),
                classes: stats.classes,
                holdout: args.holdout,
                seed: args.seed,
                mean: stats.mean,
                std: stats.std,
                global_step: 0,
            }
        }
    };
    let wanted = Meta {
        features: features.to_vec(),
        label: args.label.clone(),
        hidden: args.hidden.clone(),
        holdout: args.holdout,
        seed: args.seed,
        ..meta.clone()
    };
    meta.check_same_run(&wanted)?;
    Ok(meta)
}

/// The training loader: the features and label of the training rows.
fn loader_config(args: &TrainArgs, features: &[String], train_rows: Vec<u64>) -> LoaderConfig {
    let mut columns = features.to_vec();
    columns.push(args.label.clone());
    let defaults = LoaderConfig::default();
    LoaderConfig {
        batch_size: args.batch_size,
        seed: args.seed,
        shuffle: args.shuffle,
        tail: TailPolicy::DropLast,
        rank: args.rank,
        world_size: args.world_size,
        workers: args.workers.unwrap_or(defaults.workers),
        prefetch: defaults.prefetch,
        columns: Some(columns),
        rows: Some(train_rows.into()),
    }
}

/// The model, its optimiser and the run's settings during training.
struct Run<'a> {
    model: &'a Mlp,
    adam: &'a mut Adam,
    layout: &'a FeatureLayout,
    meta: Meta,
}

impl Run<'_> {
    /// Trains until `--epochs` (or `--stop-after-steps`), checkpointing at
    /// epoch ends, every `--checkpoint-every` steps and when stopping.
    fn epochs(
        &mut self,
        args: &TrainArgs,
        loader: &mut Loader,
        assembler: &TensorAssembler,
        report: &mut Report,
    ) -> Result<()> {
        let device = args.device;
        let progress = progress_bar(loader, args.epochs)?;
        let started = Instant::now();
        'epochs: while loader.state().epoch < args.epochs {
            let asm = assembler.clone();
            let mut batches =
                DeviceFeeder::new(loader.epoch_with(move |g| asm.assemble(g))?, device);
            loop {
                let waited = Instant::now();
                let next = batches.next();
                report.data_wait += waited.elapsed();
                let Some(batch) = next else { break };
                let batch = batch?;
                report.last_loss =
                    train_step(self.model, self.adam, &batch, self.layout, &args.label)?;
                report.steps += 1;
                report.samples += batch.rows.len() as u64;
                self.meta.global_step += 1;
                progress.inc(1);
                progress.set_message(format!(
                    "epoch {} loss {:.4} {:.0} samples/s",
                    batch.epoch,
                    report.last_loss,
                    report.samples as f64 / started.elapsed().as_secs_f64().max(1e-9)
                ));
                let stop = self.checkpoint_if_due(args, &batch)?;
                if stop {
                    report.stopped_early = true;
                    break 'epochs;
                }
            }
        }
        report.train_time = started.elapsed();
        progress.finish_and_clear();
        Ok(())
    }

    /// Saves a checkpoint after `batch` when one is due; true when the run
    /// stops here (`--stop-after-steps`).
    fn checkpoint_if_due(
        &self,
        args: &TrainArgs,
        batch: &LoadedBatch<TensorBatch>,
    ) -> Result<bool> {
        let step = self.meta.global_step;
        let epoch_done = batch.state.epoch > batch.epoch;
        let stop = args.stop_after_steps.is_some_and(|s| step >= s);
        let periodic = args.checkpoint_every > 0 && step % args.checkpoint_every == 0;
        if let Some(dir) = &args.checkpoint_dir {
            if epoch_done || stop || periodic {
                checkpoint::save(dir, self.model, &*self.adam, &batch.state, &self.meta)?;
            }
        }
        Ok(stop)
    }
}

fn progress_bar(loader: &Loader, epochs: u64) -> Result<ProgressBar> {
    let plan = loader.plan()?;
    let per_epoch = mosaicrs::loader::EpochPlan::new(
        0,
        plan.samples,
        0,
        plan.batch_size,
        plan.world_size,
        plan.tail,
    )?
    .steps;
    let remaining_epochs = epochs.saturating_sub(plan.epoch + 1);
    let total = if plan.epoch < epochs {
        plan.steps + remaining_epochs * per_epoch
    } else {
        0
    };
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps {msg} [{elapsed_precise}]")
            .context("progress bar template")?,
    );
    Ok(bar)
}

/// Forward, loss, backward, update; returns the loss.
fn train_step(
    model: &Mlp,
    adam: &mut Adam,
    batch: &LoadedBatch<TensorBatch>,
    layout: &FeatureLayout,
    label: &str,
) -> Result<f64> {
    let x = feature_input(layout, &batch.data, Kind::Float)?;
    let y = batch.data.tensor(label)?.f_to_kind(Kind::Int64)?;
    let logits = model.forward(&x)?;
    let loss = logits
        .f_log_softmax(-1, Kind::Float)?
        .f_nll_loss::<tch::Tensor>(&y, None, tch::Reduction::Mean, -100)?;
    adam.zero_grad();
    loss.f_backward()?;
    adam.step()?;
    Ok(loss.f_double_value(&[])?)
}

/// Accuracy over the held-out rows (each exactly once: sequential, padded,
/// padding ignored).
fn evaluate(
    model: &Mlp,
    dataset: &DataSource,
    rows: &[u64],
    assembler: &TensorAssembler,
    layout: &FeatureLayout,
    train_config: &LoaderConfig,
) -> Result<Option<f64>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let config = LoaderConfig {
        batch_size: pass_batch_size(dataset, rows.len(), 1024),
        shuffle: ShuffleMode::Sequential,
        tail: TailPolicy::Pad,
        rank: 0,
        world_size: 1,
        rows: Some(rows.to_vec().into()),
        ..train_config.clone()
    };
    let label = train_config
        .columns
        .as_ref()
        .and_then(|c| c.last().cloned())
        .context("the loader has no label column")?;
    let mut loader = Loader::new(dataset, config)?;
    let asm = assembler.clone();
    let device = model.vs.device();
    let _guard = tch::no_grad_guard();
    let (mut correct, mut total) = (0i64, 0i64);
    for batch in DeviceFeeder::new(loader.epoch_with(move |g| asm.assemble(g))?, device) {
        let batch = batch?;
        let real = (batch.rows.len() - batch.padding) as i64;
        let x = feature_input(layout, &batch.data, Kind::Float)?.f_narrow(0, 0, real)?;
        let y = batch
            .data
            .tensor(&label)?
            .f_narrow(0, 0, real)?
            .f_to_kind(Kind::Int64)?;
        let predicted = model.forward(&x)?.f_argmax(-1, false)?;
        correct += predicted
            .f_eq_tensor(&y)?
            .f_sum(Kind::Int64)?
            .f_int64_value(&[])?;
        total += real;
    }
    Ok(Some(correct as f64 / total.max(1) as f64))
}
