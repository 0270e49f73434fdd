//! What a three-source mix costs in the Rust loader alone: `Loader::mixed`
//! over three datasets (the first 60 %, next 30 % and last 10 % of one
//! table's rows, weights 0.6 / 0.3 / 0.1) against `Loader::new` over the
//! whole table, the same rows, in one process, their epochs alternating.
//!
//! Each batch is assembled as the Python loader assembles it: the `[B, 16]`
//! float32 features and the `[B]` int64 label filled by a [`BatchPlan`]
//! (`fill`), or only gathered (`gather`: the order, the row index search and
//! the merge of the sources, no values copied). `fill-columns` is `fill`
//! with datasets opened with a 1 MiB decoded-batch cache, too small for row
//! blocks: each feature is read column by column.
//!
//! After a warm-up epoch of each, the two loaders read REPS rounds of one
//! epoch each, alternating (one, mix, one, mix, ...), so that a change of
//! load hits both alike. The headline is the median over rounds of the
//! paired ratio mix rate ÷ one rate (one epoch's seconds ÷ the mix epoch's
//! right after it); the ratio of the best epochs and the range of the
//! paired ratios follow for information, then each loader's process CPU
//! time per sample (all threads; median over rounds), which load barely
//! moves.
//!
//! ```text
//! cargo run --release -p mosaicrs --example mix_bench -- [ROWS] [REPS] [WORKERS] [ONLY] [MODE]
//! ```
//!
//! `ONLY` (`one` or `mix`) reads that loader alone, REPS epochs per mode
//! and no ratio: a fixed workload for `perf stat` or `perf record`; `MODE`
//! (`gather`, `fill` or `fill-columns`) runs that mode alone.

use std::sync::Arc;
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use mosaicrs::assemble::{BatchPlan, ElementKind, ElementsMut, TensorSpec};
use mosaicrs::loader::mix::{MixConfig, Stream};
use mosaicrs::loader::{Gathered, Loader, LoaderConfig};
use mosaicrs::reader::{Dataset, ReadOptions};
use mosaicrs::testing::{write_partitions, FeatureTable};
use mosaicrs::writer::{SaveMode, WriterOptions};

const FEATURES: usize = 16;
const BATCH: usize = 256;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .map_or(default, |a| a.parse().expect("a number"))
}

/// Rows `start..end` of `batches` (laid end to end).
fn slice(batches: &[RecordBatch], start: usize, end: usize) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    let mut at = 0;
    for b in batches {
        let (lo, hi) = (start.max(at), end.min(at + b.num_rows()));
        if lo < hi {
            out.push(b.slice(lo - at, hi - lo));
        }
        at += b.num_rows();
    }
    out
}

/// CPU time of the whole process (every thread), in seconds.
fn process_cpu() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec for the call's duration and
    // CLOCK_PROCESS_CPUTIME_ID is supported on every platform this builds on.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

/// One epoch: samples, wall seconds and process CPU seconds.
fn epoch(loader: &mut Loader, e: u64, plan: Option<&Arc<BatchPlan>>) -> (usize, f64, f64) {
    loader.set_epoch(e);
    let cpu = process_cpu();
    let started = Instant::now();
    let mut n = 0;
    match plan {
        Some(plan) => {
            let plan = Arc::clone(plan);
            let batches = loader
                .epoch_with(move |g: &Gathered| {
                    let mut x = vec![0f32; g.len() * FEATURES];
                    let mut y = vec![0i64; g.len()];
                    plan.fill_features(g, ElementsMut::F32(&mut x))?;
                    plan.fill_dense(&plan.columns()[0], g, ElementsMut::I64(&mut y))?;
                    Ok((x, y))
                })
                .expect("epoch");
            for b in batches {
                n += b.expect("batch").data.1.len();
            }
        }
        None => {
            let batches = loader.epoch_with(|g| Ok(g.len())).expect("epoch");
            for b in batches {
                n += b.expect("batch").data;
            }
        }
    }
    (n, started.elapsed().as_secs_f64(), process_cpu() - cpu)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (rows, reps) = (arg(1, 200_000), arg(2, 7));
    let workers = arg(3, LoaderConfig::default().workers);
    let only = std::env::args().nth(4);
    let only_mode = std::env::args().nth(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let table = FeatureTable::new(rows as u64, FEATURES).with_id();
    let batches = table.batches();
    let cuts = [0, rows * 6 / 10, rows * 9 / 10, rows];
    let write = |name: &str, part: Vec<RecordBatch>| {
        let path = dir.path().join(name);
        write_partitions(
            &path,
            &table.schema(),
            "bench",
            [&part[..]],
            WriterOptions::default(),
            SaveMode::ErrorIfExists,
        )
        .expect("write");
        path
    };
    let one = write("one", batches.clone());
    let parts: Vec<_> = (0..3)
        .map(|k| write(&format!("s{k}"), slice(&batches, cuts[k], cuts[k + 1])))
        .collect();
    let config = LoaderConfig {
        batch_size: BATCH,
        seed: 1,
        workers,
        ..LoaderConfig::default()
    };
    let loaders = |cache: Option<u64>| {
        let read = ReadOptions {
            batch_cache_bytes: cache.unwrap_or(ReadOptions::default().batch_cache_bytes),
            ..ReadOptions::default()
        };
        let open = |p: &std::path::PathBuf| Arc::new(Dataset::open_with(p, &read).expect("open"));
        let single = Loader::new(open(&one), config.clone()).expect("loader");
        let streams = parts
            .iter()
            .zip([0.6, 0.3, 0.1])
            .map(|(d, w)| Stream::new(open(d)).weight(w))
            .collect();
        let mixed = Loader::mixed(streams, MixConfig::default(), config.clone()).expect("mix");
        (single, mixed)
    };
    let (mut single, mut mixed) = loaders(None);
    let (mut single_columns, mut mixed_columns) = loaders(Some(1 << 20));
    let names: Vec<String> = (0..FEATURES).map(|j| format!("f{j}")).collect();
    let spec = TensorSpec::features(names, ElementKind::F32).with_column("label");
    let plan = Arc::new(BatchPlan::new(single.schema(), &spec).expect("plan"));
    println!("{rows} rows, batch {BATCH}, {workers} workers, {reps} alternating rounds (one, mix)");
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load().trim());
    for (mode, plan) in [
        ("gather", None),
        ("fill", Some(&plan)),
        ("fill-columns", Some(&plan)),
    ] {
        let (single, mixed) = match mode {
            "fill-columns" => (&mut single_columns, &mut mixed_columns),
            _ => (&mut single, &mut mixed),
        };
        if only_mode.as_deref().is_some_and(|m| m != mode) {
            continue;
        }
        if let Some(only) = &only {
            let loader = if only == "mix" { mixed } else { single };
            let (mut n, mut cpu) = (0, 0.0);
            for e in 0..reps as u64 {
                let (a, _, c) = epoch(loader, e, plan);
                n += a;
                cpu += c;
            }
            println!(
                "{mode:<12} {only}: {:.0} ns CPU/sample",
                cpu / n as f64 * 1e9
            );
            continue;
        }
        // Warm: pages mapped, row blocks built.
        epoch(single, 100, plan);
        epoch(mixed, 100, plan);
        let (mut t1, mut tm, mut c1, mut cm, mut paired) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut n = 0;
        for e in 0..reps as u64 {
            let (a, s1, cpu1) = epoch(single, e, plan);
            let (b, sm, cpum) = epoch(mixed, e, plan);
            assert_eq!(a, b, "both read the same number of samples");
            n = a;
            t1.push(s1);
            tm.push(sm);
            c1.push(cpu1 / a as f64 * 1e9);
            cm.push(cpum / b as f64 * 1e9);
            paired.push(s1 / sm);
        }
        let least = |t: &[f64]| t.iter().copied().fold(f64::INFINITY, f64::min);
        let most = |t: &[f64]| t.iter().copied().fold(0.0, f64::max);
        println!(
            "{mode:<12} mix/one {:.3} (median of paired rounds; best epochs {:.3}, rounds {:.3}..{:.3}) | one {:.2} M/s, {:.0} ns CPU/sample | mix {:.2} M/s, {:.0} ns CPU/sample (medians)",
            median(&paired),
            least(&t1) / least(&tm),
            least(&paired),
            most(&paired),
            n as f64 / median(&t1) / 1e6,
            median(&c1),
            n as f64 / median(&tm) / 1e6,
            median(&cm),
        );
    }
    println!("load average: {}", load().trim());
}
