//! Criterion benches of the core's hot paths, small and short (`make
//! bench-quick`): gather + assemble into a plain buffer, dataset open (every
//! shard's footer), index parse, the shuffled epoch order, and the writer.

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use mosaicrs::assemble::{BatchPlan, ElementKind, ElementsMut, TensorSpec};
use mosaicrs::format::{Compression, Index};
use mosaicrs::loader::{Gathered, Loader};
use mosaicrs::reader::Dataset;
use mosaicrs::testing::{config, write_dataset};
use mosaicrs::writer::{ShardWriter, WriterOptions};

const ROWS: u64 = 100_000;
const BATCH: usize = 1024;

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800))
}

/// One shuffled batch gathered from the mapped shards and written into a
/// `[B, 2]` f32 buffer, against Arrow's `interleave` of the same samples
/// (what the loader did before it wrote straight into the buffer).
fn gather_assemble(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let dataset = write_dataset(dir.path(), ROWS, 4, 8192, Compression::None);
    let order = Loader::new(Arc::clone(&dataset), config(BATCH, 1, 0, 1))
        .expect("loader")
        .order(0);
    let batches: Vec<_> = dataset
        .batches_projected(&["id", "x"])
        .expect("batches")
        .collect::<mosaicrs::Result<_>>()
        .expect("batches");
    let offsets: Vec<u64> = batches
        .iter()
        .scan(0u64, |start, b| {
            let s = *start;
            *start += b.num_rows() as u64;
            Some(s)
        })
        .collect();
    let picks: Vec<(usize, usize)> = order[..BATCH]
        .iter()
        .map(|&row| {
            let s = offsets.partition_point(|&o| o <= row) - 1;
            (s, (row - offsets[s]) as usize)
        })
        .collect();
    let g = Gathered::new(batches, picks, order[..BATCH].to_vec()).expect("gathered");
    let spec = TensorSpec::features(["id", "x"], ElementKind::F32);
    let plan = BatchPlan::new(g.schema(), &spec).expect("plan");
    let mut out = vec![0f32; BATCH * 2];
    let mut group = c.benchmark_group("gather_assemble");
    group.bench_function("mosaicrs_fill_features", |b| {
        b.iter(|| {
            plan.fill_features(&g, ElementsMut::F32(&mut out))
                .expect("fill");
            black_box(&out);
        })
    });
    group.bench_function("arrow_interleave_baseline", |b| {
        b.iter(|| black_box(g.to_record_batch().expect("interleave")))
    });
    group.finish();
}

fn open_and_parse(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_dataset(dir.path(), ROWS, 16, 4096, Compression::None);
    c.bench_function("dataset_open_16_shards", |b| {
        b.iter(|| black_box(Dataset::open(dir.path()).expect("open")))
    });
    let text = std::fs::read(Index::path_in(dir.path())).expect("index");
    c.bench_function("index_parse_16_shards", |b| {
        b.iter(|| black_box(Index::parse(&text, dir.path()).expect("parse")))
    });
}

fn shuffle_plan(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let dataset = write_dataset(dir.path(), ROWS, 4, 8192, Compression::None);
    let loader = Loader::new(dataset, config(BATCH, 1, 0, 1)).expect("loader");
    c.bench_with_input(BenchmarkId::new("epoch_order", ROWS), &loader, |b, l| {
        b.iter(|| black_box(l.order(black_box(3))))
    });
}

fn writer(c: &mut Criterion) {
    let source = tempfile::tempdir().expect("temp dir");
    let dataset = write_dataset(source.path(), ROWS, 1, 8192, Compression::None);
    let batches: Vec<_> = dataset
        .batches_projected(&["id", "x"])
        .expect("batches")
        .collect::<mosaicrs::Result<_>>()
        .expect("batches");
    let schema = dataset.schema();
    let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let mut group = c.benchmark_group("writer");
    group.throughput(criterion::Throughput::Bytes(bytes as u64));
    group.bench_function("shard_writer_100k_rows", |b| {
        b.iter(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut w = ShardWriter::create(
                dir.path(),
                Arc::clone(&schema),
                "bench",
                0,
                0,
                WriterOptions::default(),
            )
            .expect("writer");
            for batch in &batches {
                w.write(batch).expect("write");
            }
            black_box(w.finish().expect("finish"))
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = quick();
    targets = gather_assemble, open_and_parse, shuffle_plan, writer
}
criterion_main!(benches);
