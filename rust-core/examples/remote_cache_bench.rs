//! Reading a dataset from an S3 server through the local cache: a cold
//! cache, a warm cache, and the same dataset on local disk as the baseline;
//! then the loader (block-local shuffle) over local disk, over S3 with a
//! cache that holds the dataset, and over S3 with a cache a third of its size
//! that the dataset streams through.
//!
//! Starts moto (`.venv/bin/python -m moto.server`) on a free port, writes
//! the dataset to it and to a local folder, then prints samples/s, time to
//! first batch, bytes downloaded per epoch and the cache's peak size against
//! its limit.
//!
//! ```text
//! cargo run --release -p mosaicrs --example remote_cache_bench -- 1000000
//! ```

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{AsArray, FixedSizeListArray, Float32Array, Int64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use mosaicrs::loader::{Loader, LoaderConfig, ShuffleMode};
use mosaicrs::reader::{DataSource, Dataset, ReadOptions};
use mosaicrs::storage::{cache_usage, CacheOptions, Location};
use mosaicrs::testing::moto::Moto;
use mosaicrs::writer::{commit_at, SaveMode, ShardWriter, WriterOptions};

const FEATURES: i32 = 16;
const SHARD_BYTES: u64 = 4 << 20;
const BLOCK: ShuffleMode = ShuffleMode::BlockLocal {
    shards_per_block: 2,
};

fn batch(schema: &Arc<Schema>, start: i64, n: usize) -> RecordBatch {
    let ids = Int64Array::from_iter_values(start..start + n as i64);
    let values = Float32Array::from_iter_values((0..n * FEATURES as usize).map(|i| i as f32));
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let features = FixedSizeListArray::new(item, FEATURES, Arc::new(values), None);
    RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(features)]).unwrap()
}

fn write(location: &Location, schema: &Arc<Schema>, rows: usize) {
    let options = WriterOptions {
        max_shard_bytes: SHARD_BYTES,
        ..Default::default()
    };
    let mut w = ShardWriter::create_at(location, schema.clone(), "bench", 0, 0, options).unwrap();
    let step = 65_536;
    let mut start = 0;
    while start < rows {
        let n = step.min(rows - start);
        w.write(&batch(schema, start as i64, n)).unwrap();
        start += n;
    }
    let shards = w.finish().unwrap();
    commit_at(location, schema, "bench", shards, SaveMode::Overwrite, None).unwrap();
}

fn id_sum(batch: &RecordBatch) -> i64 {
    batch
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .sum()
}

/// (open + first batch seconds, samples/s of a full scan, bytes downloaded)
fn read(open: impl Fn() -> Dataset) -> (f64, f64, u64) {
    let t0 = Instant::now();
    let dataset = open();
    let mut batches = dataset.batches();
    let first = batches.next().unwrap().unwrap();
    let ttfb = t0.elapsed().as_secs_f64();
    let mut rows = first.num_rows() as u64;
    let mut sum = id_sum(&first);
    for b in batches {
        let b = b.unwrap();
        rows += b.num_rows() as u64;
        sum += id_sum(&b);
    }
    let total = t0.elapsed().as_secs_f64();
    let n = dataset.num_rows() as i64;
    assert_eq!(sum, n * (n - 1) / 2, "every sample exactly once");
    (ttfb, rows as f64 / total, dataset.bytes_downloaded())
}

/// One loader epoch per entry: (samples/s, bytes downloaded in the epoch).
fn epochs(source: &DataSource, epochs: u64) -> Vec<(f64, u64)> {
    let config = LoaderConfig {
        batch_size: 1024,
        shuffle: BLOCK,
        workers: 2,
        prefetch: 4,
        ..LoaderConfig::default()
    };
    let mut loader = Loader::new(source, config).unwrap();
    let n = source.num_rows() as i64;
    let full = n / 1024 * 1024; // drop-last
    (0..epochs)
        .map(|_| {
            let before = source.bytes_downloaded();
            let t0 = Instant::now();
            let (mut rows, mut sum) = (0i64, 0i64);
            let expected: i64 = loader.order(loader.state().epoch)[..full as usize]
                .iter()
                .map(|&r| r as i64)
                .sum();
            for b in loader.epoch().unwrap() {
                let b = b.unwrap();
                rows += b.data.num_rows() as i64;
                sum += id_sum(&b.data);
            }
            assert_eq!((rows, sum), (full, expected), "every sample exactly once");
            (
                rows as f64 / t0.elapsed().as_secs_f64(),
                source.bytes_downloaded() - before,
            )
        })
        .collect()
}

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("rows"))
        .unwrap_or(1_000_000);
    let moto = Moto::start().expect("moto from .venv (pip install -r scripts/requirements.txt)");
    moto.create_bucket("bench");
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(
            "features",
            DataType::FixedSizeList(
                Arc::new(Field::new("item", DataType::Float32, false)),
                FEATURES,
            ),
            false,
        ),
    ]));
    let local_dir = tempfile::tempdir().unwrap();
    let local = Location::local(local_dir.path());
    let remote = moto.location("s3://bench/ds");
    write(&local, &schema, rows);
    let t = Instant::now();
    write(&remote, &schema, rows);
    let upload_s = t.elapsed().as_secs_f64();
    let index = Dataset::open(local_dir.path()).unwrap().index().clone();
    let dataset_bytes = index.total_bytes;
    let largest = index.shards.iter().map(|s| s.bytes).max().unwrap_or(0);

    let cache_dir = tempfile::tempdir().unwrap();
    let cache = CacheOptions::new(cache_dir.path(), dataset_bytes + dataset_bytes / 4);
    let (l_ttfb, l_rate, _) = read(|| Dataset::open(local_dir.path()).unwrap());
    let (c_ttfb, c_rate, c_bytes) = read(|| Dataset::open_at(&remote, &cache).unwrap());
    let peak = cache_usage(cache_dir.path()).unwrap();
    let (w_ttfb, w_rate, w_bytes) = read(|| Dataset::open_at(&remote, &cache).unwrap());

    println!(
        "dataset: {rows} rows, {dataset_bytes} bytes in {} shards (largest {largest}); \
         upload to moto {upload_s:.2} s ({:.1} MB/s)",
        index.shards.len(),
        dataset_bytes as f64 / upload_s / 1e6
    );
    println!("| read | first batch (s) | samples/s | vs local | bytes downloaded |");
    println!("|---|---|---|---|---|");
    println!("| local disk (mmap) | {l_ttfb:.3} | {l_rate:.0} | 1.00 | 0 |");
    println!(
        "| s3 cold cache | {c_ttfb:.3} | {c_rate:.0} | {:.2} | {c_bytes} ({:.2}x dataset) |",
        c_rate / l_rate,
        c_bytes as f64 / dataset_bytes as f64
    );
    println!(
        "| s3 warm cache | {w_ttfb:.3} | {w_rate:.0} | {:.2} | {w_bytes} |",
        w_rate / l_rate
    );
    println!(
        "cache peak {peak} bytes, limit {} bytes ({:.2} of the limit)",
        cache.cache_limit,
        peak as f64 / cache.cache_limit as f64
    );

    // The loader, block-local:2, two epochs each, cold caches.
    let read_options = ReadOptions::default();
    let local_source = DataSource::open_at(&local, &cache, &read_options).unwrap();
    let fits_dir = tempfile::tempdir().unwrap();
    let fits = CacheOptions::new(fits_dir.path(), dataset_bytes + dataset_bytes / 4);
    let t0 = Instant::now();
    let fits_source = DataSource::open_at(&remote, &fits, &read_options).unwrap();
    let fits_open = t0.elapsed().as_secs_f64();
    let stream_dir = tempfile::tempdir().unwrap();
    let stream = CacheOptions::new(stream_dir.path(), (dataset_bytes / 3).max(4 * largest));
    let stream_source = DataSource::open_at(&remote, &stream, &read_options).unwrap();
    assert!(!fits_source.is_streamed() && stream_source.is_streamed());
    // At least two blocks of the largest shards: a third of a large dataset.
    let streamed = format!(
        "s3, cache {:.2} of the dataset (streamed)",
        stream.cache_limit as f64 / dataset_bytes as f64
    );
    let cases = [
        ("local disk (mmap)", &local_source, 0, 0.0),
        (
            "s3, cache holds the dataset",
            &fits_source,
            fits.cache_limit,
            fits_open,
        ),
        (streamed.as_str(), &stream_source, stream.cache_limit, 0.0),
    ];
    println!();
    println!(
        "| loader, block-local:2, B=1024 | epoch | samples/s | vs local | downloaded in the \
         epoch (x dataset) | cache peak / limit |"
    );
    println!("|---|---|---|---|---|---|");
    let mut local_rates = Vec::new();
    for (name, source, limit, open_s) in cases {
        for (epoch, (rate, downloaded)) in epochs(source, 2).into_iter().enumerate() {
            if limit == 0 {
                local_rates.push(rate);
            }
            // The fits case downloads when it is opened, before epoch 0.
            let downloaded = if epoch == 0 && open_s > 0.0 {
                source.bytes_downloaded()
            } else {
                downloaded
            };
            let peak = if limit == 0 {
                "-".to_string()
            } else {
                format!(
                    "{} / {limit} ({:.2})",
                    source.peak_cache_bytes(),
                    source.peak_cache_bytes() as f64 / limit as f64
                )
            };
            println!(
                "| {name} | {epoch} | {rate:.0} | {:.2} | {downloaded} ({:.2}) | {peak} |",
                rate / local_rates[epoch],
                downloaded as f64 / dataset_bytes as f64
            );
        }
        if open_s > 0.0 {
            println!("| (opening it: downloads every shard) | - | {open_s:.2} s | | | |");
        }
    }
}
