//! Reading a dataset from an S3 server through the local cache: a cold
//! cache, a warm cache, and the same dataset on local disk as the baseline.
//!
//! Starts moto (`.venv/bin/python -m moto.server`) on a free port, writes
//! the dataset to it and to a local folder, then prints samples/s, time to
//! first batch, bytes downloaded and the cache's peak size against its limit.
//!
//! ```text
//! cargo run --release -p mosaicrs --example remote_cache_bench -- 2000000
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{AsArray, FixedSizeListArray, Float32Array, Int64Array};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use mosaicrs::reader::Dataset;
use mosaicrs::storage::{cache_usage, CacheOptions, Location, StorageOptions};
use mosaicrs::writer::{commit_at, SaveMode, ShardWriter, WriterOptions};

const FEATURES: i32 = 16;

fn batch(schema: &Arc<Schema>, start: i64, n: usize) -> RecordBatch {
    let ids = Int64Array::from_iter_values(start..start + n as i64);
    let values = Float32Array::from_iter_values((0..n * FEATURES as usize).map(|i| i as f32));
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let features = FixedSizeListArray::new(item, FEATURES, Arc::new(values), None);
    RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(features)]).unwrap()
}

fn write(location: &Location, schema: &Arc<Schema>, rows: usize) {
    let options = WriterOptions {
        max_shard_bytes: 8 << 20,
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

/// (open + first batch seconds, samples/s of a full scan, bytes downloaded)
fn read(open: impl Fn() -> Dataset) -> (f64, f64, u64) {
    let t0 = Instant::now();
    let dataset = open();
    let mut batches = dataset.batches();
    let first = batches.next().unwrap().unwrap();
    let ttfb = t0.elapsed().as_secs_f64();
    let mut rows = first.num_rows() as u64;
    let mut sum: i64 = first
        .column(0)
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .sum();
    for b in batches {
        let b = b.unwrap();
        rows += b.num_rows() as u64;
        sum += b
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .sum::<i64>();
    }
    let total = t0.elapsed().as_secs_f64();
    let n = dataset.num_rows() as i64;
    assert_eq!(sum, n * (n - 1) / 2, "every sample exactly once");
    (ttfb, rows as f64 / total, dataset.bytes_downloaded())
}

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("rows"))
        .unwrap_or(2_000_000);
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut moto = Command::new(&python)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto from .venv (pip install -r scripts/requirements.txt)");
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "PUT /bench HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    s.read_to_string(&mut String::new()).unwrap();

    let options: StorageOptions = [
        ("aws_endpoint", format!("http://127.0.0.1:{port}")),
        ("aws_allow_http", "true".into()),
        ("aws_access_key_id", "bench".into()),
        ("aws_secret_access_key", "bench".into()),
        ("aws_region", "us-east-1".into()),
    ]
    .into_iter()
    .collect();
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
    let remote = Location::parse("s3://bench/ds", &options).unwrap();
    write(&local, &schema, rows);
    let t = Instant::now();
    write(&remote, &schema, rows);
    let upload_s = t.elapsed().as_secs_f64();
    let dataset_bytes = Dataset::open(local_dir.path()).unwrap().index().total_bytes;

    let cache_dir = tempfile::tempdir().unwrap();
    let cache = CacheOptions::new(cache_dir.path(), dataset_bytes + dataset_bytes / 4);
    let (l_ttfb, l_rate, _) = read(|| Dataset::open(local_dir.path()).unwrap());
    let (c_ttfb, c_rate, c_bytes) = read(|| Dataset::open_at(&remote, &cache).unwrap());
    let peak = cache_usage(cache_dir.path()).unwrap();
    let (w_ttfb, w_rate, w_bytes) = read(|| Dataset::open_at(&remote, &cache).unwrap());
    let _ = moto.kill();
    let _ = moto.wait();

    println!(
        "dataset: {rows} rows, {dataset_bytes} bytes; upload to moto {:.2} s ({:.1} MB/s)",
        upload_s,
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
}
