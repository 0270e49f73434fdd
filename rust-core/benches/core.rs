//! Criterion benches of the core's hot paths, small and short (`make
//! bench-quick`): gather + assemble into a plain buffer, the gather alone, dataset open (every
//! shard's footer), index parse, the shuffled epoch order, and the writer.

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use mosaicrs::assemble::{ElementKind, TensorSpec};
use mosaicrs::format::{Compression, Index};
use mosaicrs::loader::Loader;
use mosaicrs::reader::Dataset;
use mosaicrs::testing::{
    bench_fill_baselines, config, first_gathered, quick_criterion, write_dataset, RowGather,
};
use mosaicrs::writer::{ShardWriter, WriterOptions};

const ROWS: u64 = 100_000;
const BATCH: usize = 1024;

/// One shuffled batch gathered from the mapped shards and written into a
/// `[B, 2]` f32 buffer, against Arrow's `interleave` of the same samples
/// (what the loader did before it wrote straight into the buffer).
fn gather_assemble(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let dataset = write_dataset(dir.path(), ROWS, 4, 8192, Compression::None);
    let g = first_gathered(&dataset, BATCH);
    let spec = TensorSpec::features(["id", "x"], ElementKind::F32);
    let mut group = c.benchmark_group("gather_assemble");
    bench_fill_baselines(&mut group, &g, &spec);
    group.finish();
}

/// The loader's row lookup and gather for one shuffled batch (no
/// assembly): uncompressed shards (resident views of ~100 record batches)
/// and zstd shards (each record batch the batch reads decoded).
fn gather(c: &mut Criterion) {
    let mut group = c.benchmark_group("gather");
    for (name, compression, rows) in [
        ("mapped", Compression::None, ROWS),
        ("zstd", Compression::Zstd, ROWS / 10),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let dataset = write_dataset(dir.path(), rows, 4, 1000, compression);
        let loader = Loader::new(Arc::clone(&dataset), config(BATCH, 1, 0, 1)).expect("loader");
        let batch: Vec<u64> = loader.order(0)[..BATCH].to_vec();
        let table = RowGather::new(&dataset);
        group.bench_function(name, |b| b.iter(|| black_box(table.gather(&batch))));
    }
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
    config = quick_criterion();
    targets = gather_assemble, gather, open_and_parse, shuffle_plan, writer
}
criterion_main!(benches);
