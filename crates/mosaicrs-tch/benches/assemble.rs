//! Criterion bench of the tensor side of the hot path, small and short
//! (`make bench-quick`): one shuffled batch gathered from mapped shards into
//! tensors, against the core's fill into a plain buffer (the difference is
//! tensor allocation) and Arrow's `interleave` of the same samples.

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mosaicrs::assemble::{BatchPlan, ElementsMut};
use mosaicrs::format::Compression;
use mosaicrs::loader::Loader;
use mosaicrs::testing::{config, write_dataset};
use mosaicrs_tch::{ElementKind, TensorAssembler, TensorSpec};
use tch::Device;

const ROWS: u64 = 100_000;
const BATCH: usize = 1024;

fn quick() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800))
}

fn assemble(c: &mut Criterion) {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let dataset = write_dataset(dir.path(), ROWS, 4, 8192, Compression::None);
    let mut loader = Loader::new(Arc::clone(&dataset), config(BATCH, 1, 0, 1)).expect("loader");
    // The loader's own gather: take the first batch's samples as it hands
    // them to the assembler.
    let g = loader
        .epoch_with(|g| Ok(g.clone()))
        .expect("epoch")
        .next()
        .expect("a batch")
        .expect("batch")
        .data;
    let spec = TensorSpec::features(["x", "id"], ElementKind::F32).with_column("id");
    let assembler = TensorAssembler::new(g.schema(), &spec, Device::Cpu).expect("assembler");
    let plan = BatchPlan::new(g.schema(), &spec).expect("plan");
    let mut group = c.benchmark_group("assemble_1024x2");
    group.bench_function("tensors", |b| {
        b.iter(|| black_box(assembler.assemble(&g).expect("assemble")))
    });
    let mut out = vec![0f32; BATCH * 2];
    group.bench_function("plain_buffer", |b| {
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

criterion_group! {
    name = benches;
    config = quick();
    targets = assemble
}
criterion_main!(benches);
