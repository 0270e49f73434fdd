//! Concurrent writers: racing commits never lose a committed write.
//!
//! Each pair of writers reads the dataset's version, writes its shards, then
//! both commit at the same moment (a barrier), so every pair truly races.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Barrier};

use common::*;
use mosaicrs::format::{Index, VersionSpec};
use mosaicrs::history;
use mosaicrs::storage::Location;
use mosaicrs::testing::racing_commit;
use mosaicrs::writer::{commit_from, dataset_version, CommitOutcome, SaveMode};
use mosaicrs::Error;

const PAIRS: usize = 100;

fn race(
    dir: &Path,
    a: (SaveMode, usize),
    b: (SaveMode, usize),
) -> [Result<CommitOutcome, Error>; 2] {
    let barrier = Arc::new(Barrier::new(2));
    let location = Location::local(dir);
    std::thread::scope(|s| {
        let ha =
            s.spawn(|| racing_commit(&location, "wa", &simple_batch(a.1, 1000), a.0, &barrier));
        let hb =
            s.spawn(|| racing_commit(&location, "wb", &simple_batch(b.1, 2000), b.0, &barrier));
        [ha.join().expect("thread a"), hb.join().expect("thread b")]
    })
}

/// (write id, rows) of every shard the committed index lists; also checks
/// that the folder holds exactly the shards some version lists and the index.
fn committed(dir: &Path) -> BTreeSet<(String, u64)> {
    let index = Index::load(dir).expect("index");
    let mut expected_files: BTreeSet<String> = BTreeSet::from(["index.json".to_string()]);
    for entry in history::log(&Location::local(dir)).expect("log") {
        let version = Location::local(dir)
            .load_index_at(&VersionSpec::Version(entry.version))
            .expect("kept version");
        expected_files.extend(version.shards.iter().map(|s| s.path.clone()));
    }
    let expected_files: Vec<String> = expected_files.into_iter().collect();
    assert_eq!(files_in(dir), expected_files, "files besides the dataset's");
    index
        .shards
        .iter()
        .map(|s| (s.write_id.clone(), s.rows))
        .collect()
}

fn set(items: &[(&str, u64)]) -> BTreeSet<(String, u64)> {
    items.iter().map(|(w, r)| (w.to_string(), *r)).collect()
}

#[test]
fn racing_appends_both_land() {
    for _ in 0..PAIRS {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
        let [a, b] = race(dir.path(), (SaveMode::Append, 7), (SaveMode::Append, 5));
        assert!(a.as_ref().is_ok_and(|o| o.committed), "{a:?}");
        assert!(b.as_ref().is_ok_and(|o| o.committed), "{b:?}");
        assert_eq!(
            committed(dir.path()),
            set(&[("w0", 10), ("wa", 7), ("wb", 5)])
        );
        assert_eq!(Index::load(dir.path()).unwrap().total_rows, 22);
    }
}

#[test]
fn racing_append_and_overwrite_never_lose_the_append() {
    let (mut overwrite_won, mut overwrite_lost) = (0, 0);
    for _ in 0..PAIRS {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
        let [a, o] = race(dir.path(), (SaveMode::Append, 7), (SaveMode::Overwrite, 5));
        assert!(a.as_ref().is_ok_and(|o| o.committed), "{a:?}");
        match o {
            // The overwrite went first: the append was re-applied on top.
            Ok(out) => {
                assert!(out.committed);
                assert_eq!(committed(dir.path()), set(&[("wb", 5), ("wa", 7)]));
                overwrite_won += 1;
            }
            // The append went first: the overwrite had not seen it, so it
            // must not replace it.
            Err(Error::Conflict { .. }) => {
                assert_eq!(committed(dir.path()), set(&[("w0", 10), ("wa", 7)]));
                overwrite_lost += 1;
            }
            Err(e) => panic!("overwrite failed with {e}"),
        }
    }
    eprintln!(
        "append/overwrite: the overwrite won {overwrite_won}, lost {overwrite_lost} (conflict)"
    );
    assert_eq!(overwrite_won + overwrite_lost, PAIRS);
}

#[test]
fn racing_overwrites_one_wins_the_other_conflicts() {
    for _ in 0..PAIRS / 4 {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
        let [a, b] = race(
            dir.path(),
            (SaveMode::Overwrite, 7),
            (SaveMode::Overwrite, 5),
        );
        let (winner, loser) = match (&a, &b) {
            (Ok(_), Err(e)) => (("wa", 7), e),
            (Err(e), Ok(_)) => (("wb", 5), e),
            _ => panic!("exactly one overwrite must win: {a:?} / {b:?}"),
        };
        let message = loser.to_string();
        assert!(matches!(loser, Error::Conflict { .. }), "{loser:?}");
        assert!(
            message.contains("another writer changed the dataset"),
            "{message}"
        );
        assert_eq!(committed(dir.path()), set(&[winner]));
    }
}

#[test]
fn racing_creates_one_wins_the_other_conflicts() {
    for _ in 0..PAIRS / 4 {
        let dir = tempfile::tempdir().unwrap();
        let [a, b] = race(
            dir.path(),
            (SaveMode::ErrorIfExists, 7),
            (SaveMode::ErrorIfExists, 5),
        );
        let winner = match (&a, &b) {
            (Ok(_), Err(Error::Conflict { .. })) => ("wa", 7),
            (Err(Error::Conflict { .. }), Ok(_)) => ("wb", 5),
            _ => panic!("exactly one create must win: {a:?} / {b:?}"),
        };
        assert_eq!(committed(dir.path()), set(&[winner]));
    }
}

#[test]
fn overwrite_deletes_no_file_but_its_own_failed_attempts() {
    let dir = tempfile::tempdir().unwrap();
    // A Spark or pyarrow export that happens to share the folder and the name
    // pattern, and a shard of a live write that has not committed yet.
    std::fs::write(dir.path().join("part-00000-foreign.arrow"), b"not ours").unwrap();
    write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
    let live = write_shards(
        dir.path(),
        "wlive",
        0,
        &[simple_batch(3, 50)],
        Default::default(),
    );
    let base = dataset_version(dir.path()).unwrap();
    let shards = write_shards(
        dir.path(),
        "w1",
        0,
        &[simple_batch(4, 100)],
        Default::default(),
    );
    let out = commit_from(
        dir.path(),
        &simple_schema(),
        "w1",
        shards,
        SaveMode::Overwrite,
        &base,
    )
    .unwrap();
    // The replaced shards stay for version 0 (vacuum removes them).
    assert!(out.removed.is_empty(), "{:?}", out.removed);
    let files = files_in(dir.path());
    assert!(files.iter().any(|f| f.starts_with("part-w0-")), "{files:?}");
    assert!(files.contains(&"part-00000-foreign.arrow".to_string()));
    assert!(files.contains(&live[0].path));
}

#[test]
fn an_invalid_index_is_never_published_and_nothing_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
    let before = files_in(dir.path());
    let index_before = std::fs::read(dir.path().join("index.json")).unwrap();
    let shards = write_shards(
        dir.path(),
        "w1",
        0,
        &[simple_batch(4, 100)],
        Default::default(),
    );
    let twice = vec![shards[0].clone(), shards[0].clone()];
    let base = dataset_version(dir.path()).unwrap();
    let err = commit_from(
        dir.path(),
        &simple_schema(),
        "w1",
        twice,
        SaveMode::Overwrite,
        &base,
    )
    .unwrap_err();
    assert!(matches!(err, Error::InvalidIndex { .. }), "{err:?}");
    assert!(err.to_string().contains("listed twice"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("index.json")).unwrap(),
        index_before
    );
    // The old dataset is whole; the failed write's own shard is gone.
    assert_eq!(files_in(dir.path()), before);
}
