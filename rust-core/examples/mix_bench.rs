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
//! blocks: each feature is read column by column. Prints each mode's best
//! and median epoch and mix ÷ one by both.
//!
//! ```text
//! cargo run --release -p mosaicrs --example mix_bench -- [ROWS] [REPS] [WORKERS]
//! ```

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

/// One epoch: samples and seconds.
fn epoch(loader: &mut Loader, e: u64, plan: Option<&Arc<BatchPlan>>) -> (usize, f64) {
    loader.set_epoch(e);
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
    (n, started.elapsed().as_secs_f64())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let (rows, reps) = (arg(1, 200_000), arg(2, 7));
    let workers = arg(3, LoaderConfig::default().workers);
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
    println!("{rows} rows, batch {BATCH}, {workers} workers, best of {reps} alternating epochs");
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
        // Warm: pages mapped, row blocks built.
        epoch(single, 100, plan);
        epoch(mixed, 100, plan);
        let (mut t1, mut tm) = (Vec::new(), Vec::new());
        let mut n = 0;
        for e in 0..reps as u64 {
            let (a, s1) = epoch(single, e, plan);
            let (b, sm) = epoch(mixed, e, plan);
            assert_eq!(a, b, "both read the same number of samples");
            n = a;
            t1.push(s1);
            tm.push(sm);
        }
        let best = |t: &[f64]| t.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{mode:<12} one: best {:.4} s ({:.2} M/s), median {:.4} s | mix: best {:.4} s ({:.2} M/s), median {:.4} s | mix/one {:.3} (best), {:.3} (median)",
            best(&t1),
            n as f64 / best(&t1) / 1e6,
            median(&t1),
            best(&tm),
            n as f64 / best(&tm) / 1e6,
            median(&tm),
            best(&t1) / best(&tm),
            median(&t1) / median(&tm),
        );
    }
    println!("load average: {}", load().trim());
}
