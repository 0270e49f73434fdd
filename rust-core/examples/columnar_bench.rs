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
//! sizes, rounds, and `rows-only` to leave out the column path. Prints
//! samples/s and process CPU ns/sample of each contender per round: the
//! gather, the loader, and the loader over the same shards opened with no
//! decoded-batch cache (so no row blocks: one read per column); then the
//! median over rounds of the loader's ratio to the gather of the same round
//! (with the best and the spread), and the loader's first epoch (row blocks
//! built as it reaches them).

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

/// CPU time of the whole process (every thread), in ns.
fn cpu_ns() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given,
    // which points at one; RUSAGE_SELF cannot fail.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let ns = |t: libc::timeval| t.tv_sec as f64 * 1e9 + t.tv_usec as f64 * 1e3;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

/// Samples/s and process CPU ns/sample of `run` (which returns its samples).
fn timed(run: impl FnOnce() -> usize) -> (f64, f64) {
    let (started, cpu) = (Instant::now(), cpu_ns());
    let samples = run();
    let (wall, cpu) = (started.elapsed().as_secs_f64(), cpu_ns() - cpu);
    (samples as f64 / wall, cpu / samples.max(1) as f64)
}

/// One epoch of the loader; the samples delivered (the default tail policy
/// drops a last partial batch).
fn loader_epoch(loader: &mut Loader, plan: &Arc<BatchPlan>) -> usize {
    let plan = Arc::clone(plan);
    let label = plan
        .columns()
        .iter()
        .find(|c| c.name == "label")
        .cloned()
        .unwrap();
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
    samples
}

/// numpy's `X[idx], y[idx]` over one epoch's order; the samples.
fn gather_epoch(rows: &[f32], labels: &[i64], order: &[u64], batch: usize) -> usize {
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
    std::hint::black_box(sum);
    order.len()
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
    // "rows-only": leave out the column-by-column contender (for A/B runs).
    let with_column_path = args.get(5).is_none_or(|s| s != "rows-only");
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
        let (first, first_cpu) = timed(|| loader_epoch(&mut loader, &plan));
        // A fixed permutation for the gather (its order does not matter to it).
        let mut order: Vec<u64> = (0..n as u64).collect();
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        for i in (1..n).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        // Per round: (loader, gather, column path) samples/s and CPU ns/sample.
        let mut runs: Vec<[(f64, f64); 3]> = Vec::new();
        for round in 0..rounds {
            let g = timed(|| gather_epoch(&matrix, &labels, &order, batch));
            let mut moved = 0;
            let l = timed(|| {
                moved = loader_epoch(&mut loader, &plan);
                moved
            });
            let c = match with_column_path {
                true => timed(|| {
                    let c = loader_epoch(&mut by_column, &plan);
                    assert!(c + batch > n, "the column path moved every full batch");
                    c
                }),
                false => (f64::NAN, f64::NAN),
            };
            assert!(moved + batch > n, "the loader moved every full batch");
            println!(
                "B={batch} round {round}: loader {:.2} M/s ({:.0} ns CPU/sample), gather {:.2} M/s ({:.0} ns CPU/sample), ratio {:.2}; column path {:.2} M/s, ratio {:.2}",
                l.0 / 1e6,
                l.1,
                g.0 / 1e6,
                g.1,
                l.0 / g.0,
                c.0 / 1e6,
                c.0 / g.0
            );
            runs.push([l, g, c]);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
        };
        let ratios: Vec<f64> = runs.iter().map(|r| r[0].0 / r[1].0).collect();
        let best_g = runs.iter().map(|r| r[1].0).fold(0f64, f64::max);
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        println!(
            "B={batch}: MEDIAN paired ratio {:.2}x (best {:.2}, spread {:.2} to {:.2}); column path {:.2}x; median CPU ns/sample: loader {:.0}, gather {:.0}; first epoch {:.2} M/s ({:.2}x the best gather, {:.0} ns CPU/sample); load {}",
            median(ratios.clone()),
            ratios.iter().copied().fold(0f64, f64::max),
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(0f64, f64::max),
            median(runs.iter().map(|r| r[2].0 / r[1].0).collect()),
            median(runs.iter().map(|r| r[0].1).collect()),
            median(runs.iter().map(|r| r[1].1).collect()),
            first / 1e6,
            first / best_g,
            first_cpu,
            load.trim()
        );
    }
}
