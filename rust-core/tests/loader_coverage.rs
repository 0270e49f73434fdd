//! Every sample exactly once per epoch, for world sizes 1..8, several worker
//! counts, both tail policies and every shuffle mode.

use std::collections::HashMap;

use mosaicrs::format::Compression;
use mosaicrs::loader::{Loader, ShuffleMode, TailPolicy};
use mosaicrs::testing::{config, run_epoch, write_dataset};

const ROWS: u64 = 1_003; // prime-ish, so most (world, batch) pairs leave a tail

#[test]
fn every_sample_exactly_once_across_ranks_and_workers() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), ROWS, 5, 64, Compression::None);
    let modes = [
        ShuffleMode::Global,
        ShuffleMode::BlockLocal {
            shards_per_block: 2,
        },
        ShuffleMode::Sequential,
    ];
    for world in 1..=8usize {
        for (workers, batch) in [(1usize, 16usize), (2, 7), (3, 32)] {
            for tail in [TailPolicy::DropLast, TailPolicy::Pad] {
                let mode = modes[(world + workers) % modes.len()];
                let mut order = None;
                // position -> (row, is padding)
                let mut seen: HashMap<u64, u64> = HashMap::new();
                let mut pad_rows = Vec::new();
                let mut steps = None;
                for rank in 0..world {
                    let mut cfg = config(batch, world, rank, workers);
                    cfg.tail = tail;
                    cfg.shuffle = mode;
                    let mut loader = Loader::new(dataset.clone(), cfg).unwrap();
                    let plan = loader.plan().unwrap();
                    let global = order.get_or_insert_with(|| loader.order(0)).clone();
                    assert_eq!(loader.order(0), global, "order depends on the rank");
                    let batches = run_epoch(&mut loader);
                    assert_eq!(batches.len() as u64, plan.steps);
                    assert_eq!(*steps.get_or_insert(plan.steps), plan.steps, "uneven ranks");
                    assert_eq!(loader.state().epoch, 1);
                    for (position, rows, padding) in batches {
                        assert_eq!(rows.len(), batch);
                        let real = rows.len() - padding;
                        for (i, row) in rows.into_iter().enumerate() {
                            let p = position + i as u64;
                            if i < real {
                                assert!(seen.insert(p, row).is_none(), "position {p} twice");
                            } else {
                                assert!(p >= ROWS);
                                pad_rows.push((p, row));
                            }
                        }
                    }
                    let global_batch = (world * batch) as u64;
                    match tail {
                        TailPolicy::DropLast => {
                            assert_eq!(plan.dropped, ROWS % global_batch);
                            assert_eq!(plan.padded, 0);
                        }
                        TailPolicy::Pad => {
                            assert_eq!(plan.dropped, 0);
                            assert_eq!(
                                plan.padded,
                                (global_batch - ROWS % global_batch) % global_batch
                            );
                        }
                    }
                }
                let order = order.unwrap();
                let covered = ROWS
                    - if tail == TailPolicy::DropLast {
                        ROWS % (world * batch) as u64
                    } else {
                        0
                    };
                assert_eq!(
                    seen.len() as u64,
                    covered,
                    "world {world} workers {workers} {tail:?}"
                );
                for (p, row) in &seen {
                    assert_eq!(order[*p as usize], *row, "position {p}");
                }
                for (p, row) in pad_rows {
                    assert_eq!(order[(p - ROWS) as usize], row, "padding repeats the start");
                }
                let mut rows: Vec<u64> = seen.into_values().collect();
                rows.sort_unstable();
                rows.dedup();
                assert_eq!(rows.len() as u64, covered, "a row was delivered twice");
            }
        }
    }
}

#[test]
fn the_order_does_not_depend_on_workers_or_prefetch() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 500, 3, 50, Compression::None);
    let mut reference = None;
    for workers in [1, 2, 4, 7] {
        for prefetch in [1, 3, 16] {
            let mut cfg = config(9, 2, 1, workers);
            cfg.prefetch = prefetch;
            let mut loader = Loader::new(dataset.clone(), cfg).unwrap();
            let got = run_epoch(&mut loader);
            assert_eq!(&got, reference.get_or_insert_with(|| got.clone()));
        }
    }
}

#[test]
fn a_permutation_per_epoch_that_depends_on_seed_and_epoch_only() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 400, 4, 32, Compression::None);
    let loader = Loader::new(dataset.clone(), config(8, 1, 0, 1)).unwrap();
    let e0 = loader.order(0);
    let e1 = loader.order(1);
    let mut sorted = e0.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..400).collect::<Vec<_>>());
    assert_ne!(e0, e1, "epochs must be reshuffled");
    let again = Loader::new(dataset.clone(), config(32, 5, 3, 3)).unwrap();
    assert_eq!(again.order(1), e1);
    let mut other_seed = config(8, 1, 0, 1);
    other_seed.seed = 43;
    let other = Loader::new(dataset, other_seed).unwrap();
    assert_ne!(other.order(0), e0);
}

#[test]
fn block_local_keeps_blocks_of_shards_together() {
    let dir = tempfile::tempdir().unwrap();
    // 8 shards of 100 rows.
    let dataset = write_dataset(dir.path(), 800, 8, 100, Compression::None);
    let mut cfg = config(10, 1, 0, 2);
    cfg.shuffle = ShuffleMode::BlockLocal {
        shards_per_block: 2,
    };
    let loader = Loader::new(dataset, cfg).unwrap();
    let order = loader.order(0);
    for block in order.chunks(200) {
        let mut shards: Vec<u64> = block.iter().map(|r| r / 100).collect();
        shards.sort_unstable();
        shards.dedup();
        assert_eq!(
            shards.len(),
            2,
            "a block of 200 samples spans exactly 2 shards"
        );
    }
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..800).collect::<Vec<_>>());
}

#[test]
fn compressed_shards_and_row_selections_are_covered_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 600, 3, 40, Compression::Zstd);
    let selection: Vec<u64> = (0..600).filter(|r| r % 3 != 0).collect();
    let mut cfg = config(16, 2, 0, 2);
    cfg.rows = Some(selection.clone().into());
    cfg.tail = TailPolicy::Pad;
    cfg.shuffle = ShuffleMode::BlockLocal {
        shards_per_block: 1,
    };
    let mut all = Vec::new();
    for rank in 0..2 {
        cfg.rank = rank;
        let mut loader = Loader::new(dataset.clone(), cfg.clone()).unwrap();
        assert_eq!(loader.space().len(), 400);
        for (_, rows, padding) in run_epoch(&mut loader) {
            all.extend_from_slice(&rows[..rows.len() - padding]);
        }
    }
    all.sort_unstable();
    assert_eq!(all, selection);
}
