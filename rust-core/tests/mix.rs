//! Mixing several datasets in one loader: shares per global batch, exact
//! counts, the gathered values, resume (also on another world size) and
//! schema checks.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, Float32Array, Int64Array};
use mosaicrs::format::Compression;
use mosaicrs::loader::mix::{Exhausted, MixConfig, Stream};
use mosaicrs::loader::{LoadedBatch, Loader, LoaderState};
use mosaicrs::reader::Dataset;
use mosaicrs::testing::{
    config, ids, simple_batch, simple_schema, write_dataset, write_partitions,
};
use mosaicrs::writer::{SaveMode, WriterOptions};

use arrow::record_batch::RecordBatch;

/// Three datasets of 600, 300 and 40 rows (the last compressed, so that a
/// batch merges resident and decoded record batches).
fn three(dir: &Path) -> Vec<Arc<Dataset>> {
    three_with(dir, Compression::Zstd)
}

/// [`three`] with the last one's compression (`None`: every source
/// resident, so that batches share one array of the sources' batches).
fn three_with(dir: &Path, last: Compression) -> Vec<Arc<Dataset>> {
    [
        (600, Compression::None),
        (300, Compression::None),
        (40, last),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (n, c))| write_dataset(&dir.join(format!("s{i}")), n, 3, 32, c))
    .collect()
}

fn streams(datasets: &[Arc<Dataset>], weights: &[f64]) -> Vec<Stream<Arc<Dataset>>> {
    datasets
        .iter()
        .zip(weights)
        .map(|(d, &w)| Stream::new(Arc::clone(d)).weight(w))
        .collect()
}

/// The values of a batch agree with its rows, and (source, row) per sample.
fn picks(batch: &LoadedBatch<RecordBatch>) -> Vec<(usize, u64)> {
    assert_eq!(ids(batch), batch.rows, "gathered ids differ from the rows");
    let x = batch.data.column_by_name("x").expect("x");
    let x = x.as_any().downcast_ref::<Float32Array>().expect("f32");
    for (i, &row) in batch.rows.iter().enumerate() {
        assert_eq!(x.value(i), row as f32 / 2.0);
    }
    batch
        .sources
        .iter()
        .zip(&batch.rows)
        .map(|(&s, &r)| (s as usize, r))
        .collect()
}

/// Every rank's batches of the rest of the epoch, as global batches of picks.
fn global_batches(loaders: &mut [Loader]) -> Vec<Vec<(usize, u64)>> {
    let per_rank: Vec<Vec<Vec<(usize, u64)>>> = loaders
        .iter_mut()
        .map(|l| l.epoch().unwrap().map(|b| picks(&b.unwrap())).collect())
        .collect();
    let steps = per_rank[0].len();
    assert!(per_rank.iter().all(|r| r.len() == steps));
    (0..steps)
        .map(|s| per_rank.iter().flat_map(|r| r[s].clone()).collect())
        .collect()
}

fn rank_loaders(
    datasets: &[Arc<Dataset>],
    weights: &[f64],
    batch: usize,
    world: usize,
    mix: MixConfig,
) -> Vec<Loader> {
    (0..world)
        .map(|r| {
            Loader::mixed(streams(datasets, weights), mix, config(batch, world, r, 2)).unwrap()
        })
        .collect()
}

#[test]
fn every_global_batch_holds_each_share_and_the_counts_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let resident = three_with(&dir.path().join("resident"), Compression::None);
    let decoded = three(dir.path());
    for (datasets, weights, batch, world) in [
        (&decoded, vec![0.6, 0.3, 0.1], 8, 2),
        (&decoded, vec![1.0, 1.0, 1.0], 5, 3),
        (&decoded, vec![1000.0, 10.0, 1.0], 16, 1),
        (&resident, vec![0.6, 0.3, 0.1], 8, 2),
    ] {
        let mut loaders = rank_loaders(datasets, &weights, batch, world, MixConfig::default());
        let counts = loaders[0].mix_counts();
        let total: u64 = counts.iter().sum();
        assert_eq!(total, 940, "the epoch keeps all rows together");
        let expected = loaders[0].mixed_order(0).unwrap().picks(0..total);
        let global = global_batches(&mut loaders);
        let g = batch * world;
        assert_eq!(global.len(), 940 / g);
        let whole = (total / g as u64) as f64;
        for (k, picks) in global.iter().enumerate() {
            assert_eq!(
                picks[..],
                expected[k * g..(k + 1) * g],
                "{weights:?} step {k}"
            );
            for (i, &n) in counts.iter().enumerate() {
                let c = picks.iter().filter(|p| p.0 == i).count() as f64;
                let share = g as f64 * n as f64 / total as f64;
                assert!(
                    (c - share).abs() < 1.0 + 1.0 / whole,
                    "{weights:?} step {k} source {i}: {c} vs {share}"
                );
            }
        }
        // The whole epoch (dropped tail included) has each source's count,
        // each row at most twice as often as its count asks (`⌈n / rows⌉`).
        for (i, &n) in counts.iter().enumerate() {
            let rows = datasets[i].num_rows();
            let mut seen: HashMap<u64, u64> = HashMap::new();
            for &(_, r) in expected.iter().filter(|p| p.0 == i) {
                *seen.entry(r).or_default() += 1;
            }
            assert_eq!(seen.values().sum::<u64>(), n);
            assert!(seen
                .values()
                .all(|&t| t == n / rows || t == n.div_ceil(rows)));
        }
        assert!(loaders.iter().all(|l| l.state().epoch == 1));
    }
}

#[test]
fn repeat_and_choose_counts_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = three(dir.path());
    let streams = vec![
        Stream::new(Arc::clone(&d[0])).choose(50),
        Stream::new(Arc::clone(&d[1])).repeat(0.5),
        Stream::new(Arc::clone(&d[2])).repeat(2.5),
    ];
    let mut cfg = config(10, 1, 0, 2);
    cfg.tail = mosaicrs::loader::TailPolicy::Pad;
    let mut loader = Loader::mixed(streams, MixConfig::default(), cfg).unwrap();
    assert_eq!(loader.mix_counts(), vec![50, 150, 100]);
    let mut seen: Vec<HashMap<u64, u64>> = vec![HashMap::new(); 3];
    for b in loader.epoch().unwrap() {
        let b = b.unwrap();
        assert_eq!(b.padding, 0);
        for (s, r) in picks(&b) {
            *seen[s].entry(r).or_default() += 1;
        }
    }
    assert_eq!(seen[0].len(), 50);
    assert!(seen[0].values().all(|&t| t == 1));
    assert_eq!(seen[1].len(), 150);
    assert!(seen[1].values().all(|&t| t == 1));
    // 2.5 times 40 rows: every row twice, half of them a third time.
    assert_eq!(seen[2].len(), 40);
    assert_eq!(seen[2].values().filter(|&&t| t == 3).count(), 20);
    assert_eq!(seen[2].values().filter(|&&t| t == 2).count(), 20);
}

#[test]
fn stop_ends_the_epoch_when_the_first_source_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = three(dir.path());
    let mix = MixConfig {
        exhausted: Exhausted::Stop,
        ..MixConfig::default()
    };
    let loader = Loader::mixed(streams(&d, &[0.6, 0.3, 0.1]), mix, config(8, 1, 0, 1)).unwrap();
    // 40 rows at 10%: 400 samples, 240 + 120 + 40.
    assert_eq!(loader.mix_counts(), vec![240, 120, 40]);
    let mix = MixConfig {
        epoch_size: Some(2000),
        ..MixConfig::default()
    };
    let loader = Loader::mixed(streams(&d, &[0.6, 0.3, 0.1]), mix, config(8, 1, 0, 1)).unwrap();
    assert_eq!(loader.mix_counts(), vec![1200, 600, 200]);
}

#[test]
fn resume_is_exact_on_the_same_and_another_world_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = three(dir.path());
    let w = [0.6, 0.3, 0.1];
    let mix = MixConfig::default();
    let reference = Loader::mixed(streams(&d, &w), mix, config(6, 2, 0, 1)).unwrap();
    let total = reference.epoch_len();
    let order = reference.mixed_order(0).unwrap().picks(0..total);
    // Three steps on two ranks of 6, then the rest on 1, 2 or 4 ranks.
    let mut first = rank_loaders(&d, &w, 6, 2, mix);
    let state: Vec<LoaderState> = first
        .iter_mut()
        .map(|l| {
            let mut state = None;
            for b in l.epoch().unwrap().take(3) {
                state = Some(b.unwrap().state);
            }
            state.unwrap()
        })
        .collect();
    assert_eq!(state[0], state[1]);
    assert_eq!(state[0].samples_consumed, 36);
    let json = state[0].to_json().unwrap();
    assert!(json.contains("\"mix_block\": 12"), "{json}");
    for (world, batch) in [(1, 12), (2, 6), (4, 5), (3, 4)] {
        let mut loaders: Vec<Loader> = (0..world)
            .map(|r| {
                let st = LoaderState::from_json(&json).unwrap();
                Loader::resume_mixed(streams(&d, &w), mix, config(batch, world, r, 2), st).unwrap()
            })
            .collect();
        let g = batch * world;
        let rest = global_batches(&mut loaders);
        assert_eq!(rest.len() as u64, (total - 36) / g as u64);
        let flat: Vec<(usize, u64)> = rest.into_iter().flatten().collect();
        assert_eq!(flat[..], order[36..36 + flat.len()], "world {world}");
    }
}

#[test]
fn schemas_must_agree_on_the_loaders_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = three(dir.path());
    // `x` is float64 there, float32 in the others.
    let other = dir.path().join("other");
    write_partitions(
        &other,
        &simple_schema(),
        "w",
        [&[simple_batch(20, 0)][..]],
        WriterOptions::default(),
        SaveMode::ErrorIfExists,
    )
    .unwrap();
    let other = Arc::new(Dataset::open(&other).unwrap());
    let mixed = vec![
        Stream::new(Arc::clone(&d[0])),
        Stream::new(Arc::clone(&other)),
    ];
    let e = Loader::mixed(mixed.clone(), MixConfig::default(), config(4, 1, 0, 1))
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(
        msg.contains("mix source 1") && msg.contains("\"x\""),
        "{msg}"
    );
    // Only `id` read: the mix is fine.
    let mut cfg = config(4, 1, 0, 1);
    cfg.columns = Some(vec!["id".into()]);
    let mut loader = Loader::mixed(mixed, MixConfig::default(), cfg).unwrap();
    let first = loader.epoch().unwrap().next().unwrap().unwrap();
    let id = first
        .data
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(
        id.values().iter().map(|&v| v as u64).collect::<Vec<_>>(),
        first.rows
    );
    // A column that one source lacks is named with the source.
    let mut cfg = config(4, 1, 0, 1);
    cfg.columns = Some(vec!["id".into(), "missing".into()]);
    let e = Loader::mixed(streams(&d, &[1.0, 1.0, 1.0]), MixConfig::default(), cfg)
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("mix source 0: column \"missing\""),
        "{e}"
    );
}

#[test]
fn another_mix_or_a_single_dataset_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = three(dir.path());
    let mix = MixConfig::default();
    let a = Loader::mixed(streams(&d, &[0.6, 0.3, 0.1]), mix, config(4, 1, 0, 1)).unwrap();
    let mut b = Loader::mixed(streams(&d, &[0.5, 0.3, 0.2]), mix, config(4, 1, 0, 1)).unwrap();
    assert!(b.restore(a.state().clone()).is_err());
    let single = Loader::new(Arc::clone(&d[0]), config(4, 1, 0, 1)).unwrap();
    assert!(b.restore(single.state().clone()).is_err());
    let mut lost = a.state().clone();
    lost.mix_block = None;
    let mut a2 = Loader::mixed(streams(&d, &[0.6, 0.3, 0.1]), mix, config(4, 1, 0, 1)).unwrap();
    assert!(a2.restore(lost).is_err());
}

#[test]
fn sources_with_another_column_order_mix_by_name() {
    use arrow::datatypes::{DataType, Field, Schema};
    let dir = tempfile::tempdir().unwrap();
    let d = three(dir.path());
    // `x` before `id`: the loader's columns are found by name.
    let schema = Arc::new(Schema::new(vec![
        Field::new("x", DataType::Float32, false),
        Field::new("id", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Float32Array::from_iter_values(
                (0..50).map(|i| i as f32 / 2.0),
            )),
            Arc::new(Int64Array::from_iter_values(0..50)),
        ],
    )
    .unwrap();
    let path = dir.path().join("swapped");
    write_partitions(
        &path,
        &schema,
        "w",
        [&[batch][..]],
        WriterOptions::default(),
        SaveMode::ErrorIfExists,
    )
    .unwrap();
    let swapped = Arc::new(Dataset::open(&path).unwrap());
    let mixed = vec![
        Stream::new(Arc::clone(&d[1])).weight(1.0),
        Stream::new(swapped).weight(1.0),
    ];
    let mut loader = Loader::mixed(mixed, MixConfig::default(), config(10, 1, 0, 2)).unwrap();
    assert_eq!(loader.schema().field(0).name(), "id");
    let mut from_swapped = 0;
    for b in loader.epoch().unwrap() {
        let b = b.unwrap();
        from_swapped += picks(&b).iter().filter(|p| p.0 == 1).count();
    }
    assert_eq!(from_swapped, 175);
}
