//! Resuming: after k batches the stream continues exactly, also on another
//! world size; states from another dataset, seed or mode are refused.

use std::collections::BTreeMap;

use mosaicrs::format::Compression;
use mosaicrs::loader::{EpochOrder, Loader, LoaderState, OrderAlgorithm, ShuffleMode, TailPolicy};
use mosaicrs::testing::{config, run_epoch, run_steps, write_dataset};
use mosaicrs::Error;

type Batches = Vec<(u64, Vec<u64>, usize)>;

/// Two epochs of one rank, uninterrupted.
fn two_epochs(loader: &mut Loader) -> Batches {
    let mut all = run_epoch(loader);
    all.extend(run_epoch(loader));
    all
}

#[test]
fn resume_after_k_batches_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 700, 4, 64, Compression::None);
    for (world, rank, workers, tail) in [
        (1, 0, 1, TailPolicy::DropLast),
        (2, 1, 3, TailPolicy::Pad),
        (3, 2, 2, TailPolicy::DropLast),
    ] {
        let mut cfg = config(11, world, rank, workers);
        cfg.tail = tail;
        let expected = two_epochs(&mut Loader::new(dataset.clone(), cfg.clone()).unwrap());
        let per_epoch = Loader::new(dataset.clone(), cfg.clone())
            .unwrap()
            .plan()
            .unwrap()
            .steps as usize;
        for k in [0, 1, 5, per_epoch - 1, per_epoch, per_epoch + 3] {
            let mut first = Loader::new(dataset.clone(), cfg.clone()).unwrap();
            let mut got = run_steps(&mut first, k.min(per_epoch));
            if k >= per_epoch {
                got.extend(run_steps(&mut first, k - per_epoch));
            }
            let json = first.state().to_json().unwrap();
            assert!(json.len() < 512, "state is small: {json}");
            let state = LoaderState::from_json(&json).unwrap();
            let mut resumed = Loader::resume(dataset.clone(), cfg.clone(), state).unwrap();
            // Finish the current epoch, then the rest of epoch 1 if still in epoch 0.
            let start_epoch = resumed.state().epoch;
            got.extend(run_epoch(&mut resumed));
            if start_epoch == 0 {
                got.extend(run_epoch(&mut resumed));
            }
            assert_eq!(got, expected, "world {world} rank {rank} k {k}");
        }
    }
}

/// Position -> row over every rank for the rest of the current epoch.
fn all_ranks(
    dataset: &std::sync::Arc<mosaicrs::reader::Dataset>,
    batch: usize,
    world: usize,
    state: Option<&LoaderState>,
    steps: usize,
) -> (BTreeMap<u64, u64>, LoaderState) {
    let mut seen = BTreeMap::new();
    let mut last = None;
    for rank in 0..world {
        let cfg = config(batch, world, rank, 2);
        let mut loader = match state {
            Some(s) => Loader::resume(dataset.clone(), cfg, s.clone()).unwrap(),
            None => Loader::new(dataset.clone(), cfg).unwrap(),
        };
        for (position, rows, padding) in run_steps(&mut loader, steps) {
            for (i, row) in rows[..rows.len() - padding].iter().enumerate() {
                assert!(seen.insert(position + i as u64, *row).is_none());
            }
        }
        let s = loader.state().clone();
        assert_eq!(
            last.get_or_insert_with(|| s.clone()),
            &s,
            "ranks disagree on the state"
        );
    }
    (seen, last.unwrap())
}

#[test]
fn resume_on_another_world_size_continues_the_same_global_order() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 1_000, 5, 64, Compression::None);
    let order = Loader::new(dataset.clone(), config(8, 1, 0, 1))
        .unwrap()
        .order(0);
    for (w1, b1, k, w2, b2) in [
        (2, 8, 3, 3, 8),
        (4, 5, 7, 1, 16),
        (1, 10, 9, 8, 3),
        (3, 7, 2, 2, 7),
    ] {
        let (before, state) = all_ranks(&dataset, b1, w1, None, k);
        assert_eq!(state.samples_consumed, (w1 * b1 * k) as u64);
        let (after, end) = all_ranks(&dataset, b2, w2, Some(&state), usize::MAX);
        assert_eq!(end.epoch, 1);
        let covered = before.len() + after.len();
        let dropped = (1_000 - state.samples_consumed) % (w2 * b2) as u64;
        assert_eq!(
            covered as u64,
            1_000 - dropped,
            "({w1},{b1}) -> ({w2},{b2})"
        );
        for (p, row) in before.iter().chain(after.iter()) {
            assert_eq!(order[*p as usize], *row);
        }
        let last_before = before.keys().next_back().copied().unwrap();
        let first_after = after.keys().next().copied().unwrap();
        assert_eq!(
            first_after,
            last_before + 1,
            "no gap and no overlap at the resume point"
        );
    }
}

#[test]
fn a_state_from_another_dataset_seed_or_mode_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(&dir.path().join("a"), 300, 2, 50, Compression::None);
    let other = write_dataset(&dir.path().join("b"), 300, 3, 50, Compression::None);
    let mut loader = Loader::new(dataset.clone(), config(10, 1, 0, 1)).unwrap();
    run_steps(&mut loader, 3);
    let state = loader.state().clone();
    assert_eq!(state.samples_consumed, 30);

    let refused = |r: mosaicrs::Result<Loader>, what: &str| match r {
        Err(Error::ResumeMismatch(msg)) => assert!(msg.contains(what), "{msg}"),
        Err(e) => panic!("expected ResumeMismatch about {what}, got {e}"),
        Ok(_) => panic!("a state with another {what} was accepted"),
    };
    refused(
        Loader::resume(other, config(10, 1, 0, 1), state.clone()),
        "dataset",
    );
    let mut cfg = config(10, 1, 0, 1);
    cfg.seed = 1;
    refused(Loader::resume(dataset.clone(), cfg, state.clone()), "seed");
    let mut cfg = config(10, 1, 0, 1);
    cfg.shuffle = ShuffleMode::Sequential;
    refused(
        Loader::resume(dataset.clone(), cfg, state.clone()),
        "shuffle",
    );
    let mut cfg = config(10, 1, 0, 1);
    cfg.rows = Some((0..150u64).collect::<Vec<_>>().into());
    refused(
        Loader::resume(dataset.clone(), cfg, state.clone()),
        "dataset",
    );
    let mut beyond = state.clone();
    beyond.samples_consumed = 301;
    refused(
        Loader::resume(dataset.clone(), config(10, 1, 0, 1), beyond),
        "consumed",
    );
    let mut algorithm = state.clone();
    algorithm.algorithm = "other".into();
    refused(
        Loader::resume(dataset.clone(), config(10, 1, 0, 1), algorithm),
        "algorithm",
    );
    // Batch size and world size may change.
    assert!(Loader::resume(dataset, config(7, 3, 2, 2), state).is_ok());
    assert!(matches!(
        LoaderState::from_json("{"),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn dropping_an_epoch_early_keeps_the_state_of_delivered_batches() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 500, 2, 64, Compression::None);
    let mut cfg = config(5, 1, 0, 3);
    cfg.prefetch = 9;
    let mut loader = Loader::new(dataset, cfg).unwrap();
    let mut epoch = loader.epoch().unwrap();
    let first = epoch.next().unwrap().unwrap();
    assert_eq!(first.state.samples_consumed, 5);
    drop(epoch); // workers are blocked on full channels: this must not hang
    assert_eq!(loader.state().samples_consumed, 5);
    assert_eq!(loader.state().epoch, 0);
}

#[test]
fn a_detached_epoch_delivers_the_same_batches_and_states() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 500, 3, 64, Compression::None);
    let cfg = config(7, 2, 1, 3);
    let mut borrowed = Loader::new(dataset.clone(), cfg.clone()).unwrap();
    let expected: Vec<(Vec<u64>, LoaderState)> = borrowed
        .epoch_with(|g| Ok(g.len()))
        .unwrap()
        .map(|b| {
            let b = b.unwrap();
            (b.rows, b.state)
        })
        .collect();
    let mut loader = Loader::new(dataset, cfg).unwrap();
    let mut epoch = loader.detached_epoch_with(|g| Ok(g.len())).unwrap();
    let mut got = Vec::new();
    while let Some(b) = epoch.next() {
        let b = b.unwrap();
        assert_eq!(b.data, 7);
        assert_eq!(&b.state, epoch.state());
        // The loader stays where it was until it is handed the state.
        assert_eq!(loader.state().samples_consumed, 0);
        got.push((b.rows, b.state));
    }
    assert_eq!(got, expected);
    assert_eq!(epoch.state(), borrowed.state());
    assert_eq!(epoch.state().epoch, 1);
    loader.restore(epoch.state().clone()).unwrap();
    assert_eq!(loader.state(), borrowed.state());
}

#[test]
fn a_loader_restored_in_place_continues_like_a_resumed_one() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 700, 4, 64, Compression::None);
    let cfg = config(11, 2, 1, 2);
    let expected = two_epochs(&mut Loader::new(dataset.clone(), cfg.clone()).unwrap());
    let mut loader = Loader::new(dataset.clone(), cfg.clone()).unwrap();
    let head = run_steps(&mut loader, 4);
    let checkpoint = loader.state().clone();
    // Run on past the checkpoint, into the next epoch, then go back.
    run_epoch(&mut loader);
    run_steps(&mut loader, 2);
    assert_eq!(loader.state().epoch, 1);
    loader.restore(checkpoint).unwrap();
    let mut got = head;
    got.extend(run_epoch(&mut loader));
    got.extend(run_epoch(&mut loader));
    assert_eq!(got, expected);
    // A state the loader cannot continue from leaves it where it was.
    let before = loader.state().clone();
    let mut other_seed = before.clone();
    other_seed.seed += 1;
    assert!(matches!(
        loader.restore(other_seed),
        Err(Error::ResumeMismatch(m)) if m.contains("seed")
    ));
    assert_eq!(loader.state(), &before);
}

#[test]
fn set_epoch_moves_to_an_epoch_start_but_keeps_a_position_inside_it() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 300, 2, 64, Compression::None);
    let mut loader = Loader::new(dataset, config(10, 1, 0, 2)).unwrap();
    run_steps(&mut loader, 3);
    loader.set_epoch(0);
    assert_eq!(loader.state().samples_consumed, 30);
    assert_eq!(loader.plan().unwrap().steps, 27);
    loader.set_epoch(4);
    assert_eq!(
        (loader.state().epoch, loader.state().samples_consumed),
        (4, 0)
    );
    let batches = run_epoch(&mut loader);
    assert_eq!(batches.len(), 30);
    let rows: Vec<u64> = batches.into_iter().flat_map(|b| b.1).collect();
    assert_eq!(rows, loader.order(4));
    assert_eq!(loader.state().epoch, 5);
}

#[test]
fn plans_orders_and_ring_come_from_the_loader_without_building_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 250, 3, 64, Compression::None);
    let mut cfg = config(8, 3, 2, 2);
    cfg.prefetch = 3;
    cfg.tail = TailPolicy::Pad;
    let mut loader = Loader::new(dataset, cfg).unwrap();
    let whole = loader.epoch_plan(2).unwrap();
    assert_eq!((whole.epoch, whole.start, whole.steps), (2, 0, 11));
    assert_eq!((whole.dropped, whole.padded), (0, 14));
    run_steps(&mut loader, 4);
    let rest = loader.plan().unwrap();
    assert_eq!((rest.epoch, rest.start, rest.steps), (0, 96, 7));
    assert_eq!(loader.epoch_plan(0).unwrap().steps, 11);
    // The rows iterator is the order, position by position.
    let rows = loader.rows(3);
    assert_eq!(rows.len(), 250);
    let order: Vec<u64> = rows.collect();
    assert_eq!(order, loader.order(3));
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..250).collect::<Vec<u64>>());
    assert_ne!(order, loader.order(4));
    // prefetch 3 over 2 workers queues 2 batches per worker.
    assert_eq!(loader.prefetch_depth(), 4);
    assert_eq!(loader.ring_size(), 3 + 2 * 2 + 2);
}

#[test]
fn a_state_of_the_stored_fisher_yates_order_resumes_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    // More samples than a permutation stores as a table, so the global
    // orders of the two algorithms differ.
    let dataset = write_dataset(dir.path(), 6_000, 3, 500, Compression::None);
    for shuffle in [
        ShuffleMode::Global,
        ShuffleMode::BlockLocal {
            shards_per_block: 2,
        },
    ] {
        let mut cfg = config(10, 1, 0, 2);
        cfg.shuffle = shuffle;
        let fresh = Loader::new(dataset.clone(), cfg.clone()).unwrap();
        let stored = |epoch| {
            EpochOrder::new(
                fresh.space(),
                cfg.seed,
                epoch,
                shuffle,
                OrderAlgorithm::FisherYates,
            )
            .to_vec()
        };
        let (epoch0, epoch1) = (stored(0), stored(1));
        assert_ne!(epoch0, fresh.order(0), "{shuffle}: the algorithms agree");
        let mut state = fresh.state().clone();
        assert_eq!(state.algorithm, OrderAlgorithm::Feistel.name());
        state.algorithm = OrderAlgorithm::FisherYates.name().into();
        state.samples_consumed = 30;
        let mut resumed = Loader::resume(dataset.clone(), cfg.clone(), state).unwrap();
        assert_eq!(resumed.order(0), epoch0);
        let rest: Vec<u64> = run_epoch(&mut resumed)
            .into_iter()
            .flat_map(|b| b.1)
            .collect();
        assert_eq!(rest, epoch0[30..], "{shuffle}");
        // The run keeps the algorithm it started with.
        assert_eq!(
            resumed.state().algorithm,
            OrderAlgorithm::FisherYates.name()
        );
        let next: Vec<u64> = run_epoch(&mut resumed)
            .into_iter()
            .flat_map(|b| b.1)
            .collect();
        assert_eq!(next, epoch1, "{shuffle}");
    }
}
