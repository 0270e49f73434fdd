//! The loader over a columnar dataset (16 float32 columns and an int64
//! label, each stored on its own in record batches of 8,192 rows, as Spark
//! writes them) against a gather from a row-major `[N, 16]` matrix in
//! memory, numpy's `X[idx], y[idx]` (a fresh output per batch, one thread),
//! alternating whole epochs in this process. No libtorch: the loader's
//! workers fill plain buffers, which is what `mosaicrs-loader-bench` does
//! into tensors.
//!
//! ```text
//! cargo run --release -p mosaicrs --features testing --example columnar_bench -- \
//!     /tmp/columnar-2m 2000000 256,4096 3
//! ```
//!
//! Arguments: dataset folder (written when it has no index), rows, batch
//! sizes, rounds. Prints samples/s of each contender per round: the loader,
//! the gather, and the loader over the same shards opened with no
//! decoded-batch cache (so no row blocks: one read per column); then the
//! loader's first epoch (row blocks built as it reaches them) and the best
//! rounds' ratios to the gather.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float32Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use mosaicrs::assemble::{BatchPlan, ElementKind, ElementsMut, TensorSpec};
use mosaicrs::loader::{Loader, LoaderConfig, ShuffleMode};
use mosaicrs::reader::{Dataset, ReadOptions};
use mosaicrs::testing::write_partitions;
use mosaicrs::writer::{SaveMode, WriterOptions};

const FEATURES: usize = 16;
const BATCH_ROWS: usize = 8192;

fn write(dir: &std::path::Path, rows: usize) {
    let schema = Arc::new(Schema::new(
        (0..FEATURES)
            .map(|i| Field::new(format!("f{i}"), DataType::Float32, true))
            .chain([Field::new("label", DataType::Int64, true)])
            .collect::<Vec<_>>(),
    ));
    // Eight write partitions, as the suite's Spark write has eight shards.
    let parts = 8;
    let per = rows.div_ceil(parts);
    let mut partitions = Vec::new();
    for p in 0..parts {
        let (lo, hi) = (p * per, ((p + 1) * per).min(rows));
        let batches: Vec<RecordBatch> = (lo..hi)
            .step_by(BATCH_ROWS)
            .map(|start| {
                let r = start..(start + BATCH_ROWS).min(hi);
                let mut columns: Vec<ArrayRef> = (0..FEATURES)
                    .map(|j| {
                        Arc::new(Float32Array::from_iter_values(
                            r.clone().map(|i| (i * 31 + j) as f32),
                        )) as ArrayRef
                    })
                    .collect();
                columns.push(Arc::new(Int64Array::from_iter_values(
                    r.map(|i| (i % 10) as i64),
                )));
                RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
            })
            .collect();
        partitions.push(batches);
    }
    write_partitions(
        dir,
        &schema,
        "bench",
        partitions.iter().map(|p| &p[..]),
        WriterOptions::default(),
        SaveMode::ErrorIfExists,
    )
    .unwrap();
}

/// One epoch of the loader; samples/s and the samples delivered (the
/// default tail policy drops a last partial batch).
fn loader_epoch(loader: &mut Loader, plan: &Arc<BatchPlan>) -> (f64, usize) {
    let plan = Arc::clone(plan);
    let label = plan
        .columns()
        .iter()
        .find(|c| c.name == "label")
        .cloned()
        .unwrap();
    let started = Instant::now();
    let epoch = loader
        .epoch_with(move |g| {
            let mut x = vec![0f32; g.len() * FEATURES];
            plan.fill_features(g, ElementsMut::F32(&mut x))?;
            let mut y = vec![0i64; g.len()];
            plan.fill_dense(&label, g, ElementsMut::I64(&mut y))?;
            Ok((x, y))
        })
        .unwrap();
    let (mut samples, mut sum) = (0usize, 0i64);
    for batch in epoch {
        let (x, y) = batch.unwrap().data;
        samples += y.len();
        sum += y.iter().sum::<i64>();
        std::hint::black_box(&x);
    }
    std::hint::black_box(sum);
    (samples as f64 / started.elapsed().as_secs_f64(), samples)
}

/// numpy's `X[idx], y[idx]` over one epoch's order.
fn gather_epoch(rows: &[f32], labels: &[i64], order: &[u64], batch: usize) -> (f64, i64) {
    let started = Instant::now();
    let mut sum = 0i64;
    for chunk in order.chunks(batch) {
        let mut x = vec![0f32; chunk.len() * FEATURES];
        let mut y = vec![0i64; chunk.len()];
        for (i, &r) in chunk.iter().enumerate() {
            let r = r as usize;
            x[i * FEATURES..(i + 1) * FEATURES]
                .copy_from_slice(&rows[r * FEATURES..(r + 1) * FEATURES]);
            y[i] = labels[r];
        }
        sum += std::hint::black_box(&y).iter().sum::<i64>();
        std::hint::black_box(&x);
    }
    (order.len() as f64 / started.elapsed().as_secs_f64(), sum)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).map_or("/tmp/columnar-bench", |s| s));
    let rows: usize = args.get(2).map_or(2_000_000, |s| s.parse().unwrap());
    let batches: Vec<usize> = args
        .get(3)
        .map_or("256,4096", |s| s)
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let rounds: usize = args.get(4).map_or(3, |s| s.parse().unwrap());
    if !dir.join("_mosaicrs").exists() && !dir.exists() {
        write(&dir, rows);
    }
    let dataset = Arc::new(Dataset::open(&dir).unwrap());
    // The same shards with no decoded-batch cache: no row blocks, every
    // feature read from its column.
    let no_cache = ReadOptions {
        batch_cache_bytes: 0,
        ..Default::default()
    };
    let columns = Arc::new(Dataset::open_with(&dir, &no_cache).unwrap());
    let n = dataset.num_rows() as usize;
    // The matrix numpy gathers from.
    let mut matrix = vec![0f32; n * FEATURES];
    let mut labels = vec![0i64; n];
    for i in 0..n {
        for j in 0..FEATURES {
            matrix[i * FEATURES + j] = (i * 31 + j) as f32;
        }
        labels[i] = (i % 10) as i64;
    }
    let names: Vec<String> = (0..FEATURES).map(|i| format!("f{i}")).collect();
    let spec = TensorSpec::features(names, ElementKind::F32).with_column("label");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("rows {n}, load {}", load.trim());
    for &batch in &batches {
        let config = LoaderConfig {
            batch_size: batch,
            seed: 7,
            shuffle: ShuffleMode::Global,
            workers: 2,
            ..LoaderConfig::default()
        };
        let mut loader = Loader::new(Arc::clone(&dataset), config.clone()).unwrap();
        let mut by_column = Loader::new(Arc::clone(&columns), config).unwrap();
        let plan = Arc::new(BatchPlan::new(loader.schema(), &spec).unwrap());
        let (first, _) = loader_epoch(&mut loader, &plan);
        // A fixed permutation for the gather (its order does not matter to it).
        let mut order: Vec<u64> = (0..n as u64).collect();
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for i in (1..n).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let (mut best_l, mut best_g, mut best_c) = (0f64, 0f64, 0f64);
        for round in 0..rounds {
            let (g, gs) = gather_epoch(&matrix, &labels, &order, batch);
            let (l, ls) = loader_epoch(&mut loader, &plan);
            let (c, cs) = loader_epoch(&mut by_column, &plan);
            std::hint::black_box(gs);
            assert!(
                ls + batch > n && cs + batch > n,
                "each moved every full batch"
            );
            println!(
                "B={batch} round {round}: loader {:.2} M/s, gather {:.2} M/s, ratio {:.2}; column path {:.2} M/s, ratio {:.2}",
                l / 1e6,
                g / 1e6,
                l / g,
                c / 1e6,
                c / g
            );
            best_l = best_l.max(l);
            best_g = best_g.max(g);
            best_c = best_c.max(c);
        }
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "B={batch}: first epoch {:.2} M/s ({:.2}x the best gather); best loader {:.2} M/s, best gather {:.2} M/s: {:.2}x; column path {:.2}x; load {}",
            first / 1e6,
            first / best_g,
            best_l / 1e6,
            best_g / 1e6,
            best_l / best_g,
            best_c / best_g,
            load.trim()
        );
    }
}
