//! Criterion bench of the tensor side of the hot path, small and short
//! (`make bench-quick`): one shuffled batch gathered from mapped shards into
//! tensors, against the core's fill into a plain buffer (the difference is
//! tensor allocation) and Arrow's `interleave` of the same samples.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use mosaicrs::format::Compression;
use mosaicrs::testing::{bench_fill_baselines, first_gathered, quick_criterion, write_dataset};
use mosaicrs_tch::{ElementKind, TensorAssembler, TensorSpec};
use tch::Device;

const ROWS: u64 = 100_000;
const BATCH: usize = 1024;

fn assemble(c: &mut Criterion) {
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let dataset = write_dataset(dir.path(), ROWS, 4, 8192, Compression::None);
    let g = first_gathered(&dataset, BATCH);
    let spec = TensorSpec::features(["x", "id"], ElementKind::F32).with_column("id");
    let assembler = TensorAssembler::new(g.schema(), &spec, Device::Cpu).expect("assembler");
    let mut group = c.benchmark_group("assemble_1024x2");
    group.bench_function("tensors", |b| {
        b.iter(|| black_box(assembler.assemble(&g).expect("assemble")))
    });
    bench_fill_baselines(&mut group, &g, &spec);
    group.finish();
}

criterion_group! {
    name = benches;
    config = quick_criterion();
    targets = assemble
}
criterion_main!(benches);
