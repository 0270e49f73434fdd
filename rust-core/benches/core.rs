//! Criterion benches of the core's hot paths, small and short (`make
//! bench-quick`): gather + assemble into a plain buffer, the gather alone, dataset open (every
//! shard's footer), index parse, the shuffled epoch order, the writer, and
//! ragged (variable-length list) columns.

use std::sync::Arc;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use mosaicrs::assemble::{BatchPlan, ElementKind, ElementsMut, TensorSpec};
use mosaicrs::format::{Compression, Index};
use mosaicrs::loader::{Gathered, Loader};
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

/// A shuffled batch of a `list<int32>` column (mean 64 values a row, from 8
/// record batches) written as values + offsets: as int32 (a `memcpy` per
/// row) and cast to int64, against Arrow's `interleave` of the same samples
/// (the first step of a gather-then-convert path) and a `memcpy` of the
/// batch's value bytes.
fn ragged(c: &mut Criterion) {
    use arrow::array::{ArrayRef, ListArray, RecordBatch};
    use arrow::datatypes::Int32Type;
    let rows_per = 8192usize;
    let sources: Vec<RecordBatch> = (0..8)
        .map(|s| {
            let lists = (0..rows_per).map(|r| {
                let n = (r * 2654435761 + s * 97) % 129;
                Some((0..n as i32).map(Some).collect::<Vec<_>>())
            });
            let array = ListArray::from_iter_primitive::<Int32Type, _, _>(lists);
            RecordBatch::try_from_iter([("ids", Arc::new(array) as ArrayRef)]).expect("batch")
        })
        .collect();
    let picks: Vec<(usize, usize)> = (0..BATCH)
        .map(|i| ((i * 5) % 8, (i * 7919) % rows_per))
        .collect();
    let rows = (0..BATCH as u64).collect();
    let g = Gathered::new(sources, picks, rows).expect("gathered");
    let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32).with_column("ids");
    let plan = BatchPlan::new(g.schema(), &spec).expect("plan");
    let column = plan.columns()[0].clone();
    let n = plan.ragged(&column, &g).expect("ragged").value_count();
    let mut group = c.benchmark_group("ragged");
    group.throughput(criterion::Throughput::Bytes((n * 4) as u64));
    let mut i32s = vec![0i32; n];
    group.bench_function("values_offsets_i32", |b| {
        b.iter(|| {
            let r = plan.ragged(&column, &g).expect("ragged");
            r.fill_values(ElementsMut::I32(&mut i32s)).expect("fill");
            black_box(r.offsets().len())
        })
    });
    let mut i64s = vec![0i64; n];
    group.bench_function("values_offsets_cast_i64", |b| {
        b.iter(|| {
            let r = plan.ragged(&column, &g).expect("ragged");
            r.fill_values(ElementsMut::I64(&mut i64s)).expect("fill");
            black_box(r.offsets().len())
        })
    });
    group.bench_function("arrow_interleave", |b| {
        b.iter(|| black_box(g.take_column(0).expect("interleave")))
    });
    let src = vec![1i32; n];
    group.bench_function("memcpy", |b| {
        b.iter(|| {
            i32s.copy_from_slice(black_box(&src));
            black_box(i32s[n / 2])
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = quick_criterion();
    targets = gather_assemble, gather, open_and_parse, shuffle_plan, writer, ragged
}
criterion_main!(benches);
