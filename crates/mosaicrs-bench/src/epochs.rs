//! `mosaicrs-loader-bench --epochs-from-stdin`: the Rust side of the Python
//! loader's benchmark. Whole epochs of the loader configured as
//! `mosaicrs.torch.Loader(data, B, label="label", ...)` configures it (every
//! other column a float32 feature, global shuffle, drop last), each batch
//! filled by the same [`BatchPlan`] into a ring of Rust-owned buffers that
//! the consumer recycles, as the Python side recycles its torch buffers, and
//! no work per batch beyond counting it: the baseline that the Python loader's
//! overhead is measured against, on the same data and epochs, in the same run.
//!
//! A long-lived process, so that a benchmark can alternate epochs of the two
//! loaders while both have the dataset mapped and warm. Protocol on stdout,
//! one JSON object per line:
//!
//! - once the loader is built: `{"ready": true, "workers", "prefetch",
//!   "ring", "batch_size", "steps_per_epoch"}`;
//! - for each epoch number read from stdin (one per line): that epoch, then
//!   `{"epoch", "batches", "samples", "seconds", "cpu_seconds"}`, where
//!   `cpu_seconds` is the process's CPU time (every thread) over the epoch.
//!
//! End of input ends the process.

use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use crossbeam_channel::{unbounded, Receiver, Sender};
use mosaicrs::assemble::{BatchPlan, ElementKind, ElementsMut};
use mosaicrs::loader::{Gathered, Loader};
use serde::Serialize;

use crate::loader::{bench_features, loader_config, open_or_create, BenchArgs};

/// What the loader is once built (the first line of output).
#[derive(Debug, Clone, Serialize)]
pub struct Ready {
    pub ready: bool,
    pub workers: usize,
    pub prefetch: usize,
    /// Batch buffers in the ring ([`Loader::ring_size`]).
    pub ring: usize,
    pub batch_size: usize,
    pub steps_per_epoch: u64,
}

/// One epoch's figures.
#[derive(Debug, Clone, Serialize)]
pub struct EpochFigures {
    pub epoch: u64,
    pub batches: u64,
    pub samples: u64,
    pub seconds: f64,
    /// CPU time of the whole process (all threads) over the epoch.
    pub cpu_seconds: f64,
}

/// One output array of a batch, owned by Rust.
enum Buffer {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    I16(Vec<i16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
}

impl Buffer {
    fn zeroed(kind: ElementKind, len: usize) -> Self {
        match kind {
            ElementKind::F32 => Buffer::F32(vec![0.0; len]),
            ElementKind::F64 => Buffer::F64(vec![0.0; len]),
            ElementKind::I64 => Buffer::I64(vec![0; len]),
            ElementKind::I32 => Buffer::I32(vec![0; len]),
            ElementKind::I16 => Buffer::I16(vec![0; len]),
            ElementKind::I8 => Buffer::I8(vec![0; len]),
            ElementKind::U8 => Buffer::U8(vec![0; len]),
            ElementKind::Bool => Buffer::Bool(vec![false; len]),
        }
    }

    fn elements(&mut self) -> ElementsMut<'_> {
        match self {
            Buffer::F32(v) => ElementsMut::F32(v),
            Buffer::F64(v) => ElementsMut::F64(v),
            Buffer::I64(v) => ElementsMut::I64(v),
            Buffer::I32(v) => ElementsMut::I32(v),
            Buffer::I16(v) => ElementsMut::I16(v),
            Buffer::I8(v) => ElementsMut::I8(v),
            Buffer::U8(v) => ElementsMut::U8(v),
            Buffer::Bool(v) => ElementsMut::Bool(v),
        }
    }
}

/// What fills an output: the stacked features, or column `i` of the plan.
#[derive(Debug, Clone, Copy)]
enum Fill {
    Features,
    Column(usize),
}

/// The arrays of a batch as the Python loader lays them out: the stacked
/// scalar features (when there are any), then each column of the plan.
fn outputs(plan: &BatchPlan, batch_size: usize) -> Result<Vec<(Fill, ElementKind, usize)>> {
    let mut outputs = Vec::new();
    if plan.has_features() {
        outputs.push((
            Fill::Features,
            plan.feature_kind(),
            batch_size * plan.feature_width(),
        ));
    }
    for (i, column) in plan.columns().iter().enumerate() {
        let Some((kind, width)) = column.conversion.dense_shape() else {
            bail!("column {:?} has no fixed tensor shape", column.name);
        };
        outputs.push((Fill::Column(i), kind, batch_size * width));
    }
    Ok(outputs)
}

/// Runs the epochs that `input` names, writing their figures to `output`
/// (see the [module docs](self)).
pub fn serve(args: &BenchArgs, input: impl BufRead, mut output: impl Write) -> Result<()> {
    let dataset = open_or_create(args)?;
    let features = bench_features(&dataset)?;
    let mut loader = Loader::new(Arc::clone(&dataset), loader_config(args, &features))?;
    let plan = Arc::new(BatchPlan::new(
        loader.schema(),
        &features.spec(ElementKind::F32, "label"),
    )?);
    let batch_size = loader.config().batch_size;
    let outputs = Arc::new(outputs(&plan, batch_size)?);
    let (pool_tx, pool_rx) = unbounded::<Vec<Buffer>>();
    for _ in 0..loader.ring_size() {
        let buffers = outputs
            .iter()
            .map(|&(_, kind, len)| Buffer::zeroed(kind, len))
            .collect();
        pool_tx.send(buffers)?;
    }
    let ready = Ready {
        ready: true,
        workers: loader.config().workers,
        prefetch: loader.config().prefetch,
        ring: loader.ring_size(),
        batch_size,
        steps_per_epoch: loader.epoch_plan(0)?.steps,
    };
    writeln!(output, "{}", serde_json::to_string(&ready)?)?;
    output.flush()?;
    for line in input.lines() {
        let line = line?;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let epoch: u64 = line
            .parse()
            .with_context(|| format!("expected an epoch number on stdin, got {line:?}"))?;
        let figures = run_epoch(&mut loader, epoch, &plan, &outputs, &pool_tx, &pool_rx)?;
        writeln!(output, "{}", serde_json::to_string(&figures)?)?;
        output.flush()?;
    }
    Ok(())
}

/// Epoch `epoch` from its start, batches filled into buffers of the pool
/// and handed back to it once counted.
fn run_epoch(
    loader: &mut Loader,
    epoch: u64,
    plan: &Arc<BatchPlan>,
    outputs: &Arc<Vec<(Fill, ElementKind, usize)>>,
    pool_tx: &Sender<Vec<Buffer>>,
    pool_rx: &Receiver<Vec<Buffer>>,
) -> Result<EpochFigures> {
    // Another epoch number than the current one starts at its beginning;
    // the current one is at its beginning too, as every epoch runs to the end.
    loader.set_epoch(epoch);
    let (plan, outputs, pool) = (Arc::clone(plan), Arc::clone(outputs), pool_rx.clone());
    let assemble = move |g: &Gathered| -> mosaicrs::Result<Vec<Buffer>> {
        let mut buffers = pool
            .recv()
            .map_err(|_| mosaicrs::Error::Internal("the buffer pool closed".into()))?;
        for (&(fill, _, _), buffer) in outputs.iter().zip(buffers.iter_mut()) {
            match fill {
                Fill::Features => plan.fill_features(g, buffer.elements())?,
                Fill::Column(i) => plan.fill_dense(&plan.columns()[i], g, buffer.elements())?,
            }
        }
        Ok(buffers)
    };
    let cpu = cpu_seconds();
    let started = Instant::now();
    let (mut batches, mut samples) = (0u64, 0u64);
    for batch in loader.epoch_with(assemble)? {
        let batch = batch?;
        batches += 1;
        samples += batch.rows.len() as u64;
        pool_tx.send(batch.data)?;
    }
    Ok(EpochFigures {
        epoch,
        batches,
        samples,
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds() - cpu,
    })
}

/// User and system CPU time of this process, every thread (those that have
/// exited included).
fn cpu_seconds() -> f64 {
    // SAFETY: `getrusage` writes one `rusage` into the zeroed value it is
    // given and nothing else; all-zero bytes are a valid `rusage`.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn epochs_named_on_stdin_run_whole_and_report_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        crate::loader::create_dataset(&data, 1_000, 3).unwrap();
        let args = BenchArgs::parse_from([
            "mosaicrs-loader-bench",
            "--data",
            data.to_str().unwrap(),
            "--batch-size",
            "64",
            "--workers",
            "2",
            "--prefetch",
            "3",
            "--epochs-from-stdin",
        ]);
        let mut out = Vec::new();
        serve(&args, &b"3\n\n0\n3\n"[..], &mut out).unwrap();
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0]["ready"], true);
        assert_eq!(lines[0]["ring"], 3 + 2 * 2 + 2);
        assert_eq!(lines[0]["steps_per_epoch"], 15);
        for (line, epoch) in lines[1..].iter().zip([3, 0, 3]) {
            assert_eq!(line["epoch"], epoch);
            assert_eq!(line["batches"], 15);
            assert_eq!(line["samples"], 15 * 64);
            assert!(line["seconds"].as_f64().unwrap() > 0.0);
        }
        let mut bad = Vec::new();
        assert!(serve(&args, &b"three\n"[..], &mut bad).is_err());
    }
}
