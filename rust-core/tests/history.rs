//! The commit history: every commit a numbered version, concurrent commits a
//! linear history with none lost (local disk and the S3 test server), a
//! crash between a version's record and the head leaves a readable history
//! that the next commit rolls forward, and log / diff / restore / vacuum on
//! real histories.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use mosaicrs::format::{version_record_name, CommitInfo, Index, VersionSpec, INDEX_FILE};
use mosaicrs::history::{self, Retention};
use mosaicrs::reader::{DataSource, Dataset};
use mosaicrs::storage::{CacheOptions, Location};
use mosaicrs::testing::moto::Moto;
use mosaicrs::testing::{publish_at, racing_commit, write_at};
use mosaicrs::writer::{commit_at_with, CommitOptions, SaveMode, WRITES_KEPT};
use mosaicrs::Error;

/// Opens every kept version and checks that the history is linear: versions
/// `oldest..=newest` without a gap, each with its record's shards readable
/// and its rows summing to its total. Returns the newest version.
fn check_linear_history(location: &Location, cache: &CacheOptions) -> u64 {
    let log = history::log(location).expect("log");
    let versions: Vec<u64> = log.iter().map(|v| v.version).collect();
    let newest = versions[0];
    let oldest = *versions.last().expect("a version");
    assert_eq!(
        versions,
        (oldest..=newest).rev().collect::<Vec<_>>(),
        "history has a gap"
    );
    for info in &log {
        let spec = VersionSpec::Version(info.version);
        let source = DataSource::open_version(location, cache, &Default::default(), &spec)
            .unwrap_or_else(|e| panic!("version {}: {e}", info.version));
        assert_eq!(source.version(), info.version);
        assert_eq!(source.num_rows(), info.total_rows);
        if let DataSource::Mapped(dataset) = &source {
            let rows: usize = dataset
                .batches()
                .map(|b| b.expect("batch").num_rows())
                .sum();
            assert_eq!(rows as u64, info.total_rows);
        }
    }
    newest
}

/// Rows of each write id in the head.
fn writes_in_head(location: &Location) -> BTreeSet<String> {
    let head = location.load_index().expect("head");
    head.shards.iter().map(|s| s.write_id.clone()).collect()
}

/// Creates a dataset (write `w0`), then `threads` writers each append once
/// at the same moment (and, with `overwrites`, every third one overwrites
/// against the version it read). Returns (appends that landed, overwrites
/// that landed).
fn race_commits(location: &Location, threads: usize, overwrites: bool) -> (Vec<String>, usize) {
    publish_at(
        location,
        "w0",
        &[simple_batch(10, 0)],
        Default::default(),
        SaveMode::ErrorIfExists,
    );
    let barrier = Arc::new(Barrier::new(threads));
    let results: Vec<(String, SaveMode, Result<_, Error>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let barrier = barrier.clone();
                s.spawn(move || {
                    let id = format!("t{i}");
                    let mode = if overwrites && i % 3 == 2 {
                        SaveMode::Overwrite
                    } else {
                        SaveMode::Append
                    };
                    let batch = simple_batch(3 + i, 1000 * i as i64);
                    let result = racing_commit(location, &id, &batch, mode, &barrier);
                    (id, mode, result)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let mut appended = Vec::new();
    let mut overwritten = 0;
    for (id, mode, result) in results {
        match (mode, result) {
            (SaveMode::Append, Ok(out)) => {
                assert!(out.committed);
                appended.push(id);
            }
            (SaveMode::Overwrite, Ok(_)) => overwritten += 1,
            (SaveMode::Overwrite, Err(Error::Conflict { .. })) => {}
            (mode, Err(e)) => panic!("{id} ({mode:?}) failed: {e}"),
            _ => unreachable!(),
        }
    }
    (appended, overwritten)
}

fn concurrent_appends(location: &Location, threads: usize, cache: &CacheOptions) {
    let (appended, _) = race_commits(location, threads, false);
    assert_eq!(appended.len(), threads);
    assert_eq!(check_linear_history(location, cache), threads as u64);
    let mut expected: BTreeSet<String> = appended.into_iter().collect();
    expected.insert("w0".into());
    assert_eq!(writes_in_head(location), expected, "a commit was lost");
    let log = history::log(location).unwrap();
    assert!(log[..threads]
        .iter()
        .all(|v| v.commit.operation == "append" && v.commit.shards_added == 1));
    assert_eq!(log[threads].commit.operation, "create");
}

fn concurrent_overwrites_and_appends(location: &Location, threads: usize, cache: &CacheOptions) {
    let (appended, overwritten) = race_commits(location, threads, true);
    let newest = check_linear_history(location, cache);
    assert_eq!(
        newest,
        (appended.len() + overwritten) as u64,
        "a commit was lost"
    );
    // Every append that landed after the last overwrite is in the head, and
    // every append is in the version it made.
    for info in history::log(location).unwrap() {
        if info.commit.operation == "append" {
            let index = location
                .load_index_at(&VersionSpec::Version(info.version))
                .unwrap();
            assert!(index
                .shards
                .iter()
                .any(|s| s.write_id == info.commit.write_id));
        }
    }
}

#[test]
fn concurrent_appends_on_local_disk_make_a_linear_history() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_appends(&Location::local(dir.path()), 8, &CacheOptions::default());
}

#[test]
fn concurrent_overwrites_and_appends_on_local_disk_make_a_linear_history() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_overwrites_and_appends(&Location::local(dir.path()), 9, &CacheOptions::default());
}

#[test]
fn concurrent_commits_on_s3_make_a_linear_history() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("history");
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = CacheOptions {
        cache_dir: cache_dir.path().to_path_buf(),
        ..Default::default()
    };
    concurrent_appends(&moto.location("s3://history/appends"), 6, &cache);
    concurrent_overwrites_and_appends(&moto.location("s3://history/mixed"), 6, &cache);
}

/// Commits `rows` rows as write `id` with `mode` and metadata `run=<id>`.
fn commit_rows(location: &Location, id: &str, rows: usize, mode: SaveMode) -> u64 {
    let batch = simple_batch(rows, 0);
    let shards = write_at(
        location,
        id,
        std::slice::from_ref(&batch),
        Default::default(),
    );
    let mut options = CommitOptions::default();
    options.metadata.insert("run".into(), id.into());
    options.writer.insert("engine".into(), "test".into());
    let out = commit_at_with(location, &batch.schema(), id, shards, mode, None, &options).unwrap();
    out.version.expect("committed")
}

#[test]
fn log_diff_and_restore_report_what_each_commit_did() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::local(dir.path());
    assert_eq!(commit_rows(&location, "a", 10, SaveMode::ErrorIfExists), 0);
    assert_eq!(commit_rows(&location, "b", 5, SaveMode::Append), 1);
    assert_eq!(commit_rows(&location, "c", 7, SaveMode::Overwrite), 2);

    let log = history::log(&location).unwrap();
    let summary: Vec<(u64, &str, u64, u64, u64)> = log
        .iter()
        .map(|v| {
            let c = &v.commit;
            (
                v.version,
                c.operation.as_str(),
                c.rows_added,
                c.rows_removed,
                v.total_rows,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, "overwrite", 7, 15, 7),
            (1, "append", 5, 0, 15),
            (0, "create", 10, 0, 10)
        ]
    );
    assert_eq!(log[1].commit.metadata["run"], "b");
    assert_eq!(log[1].commit.writer["engine"], "test");
    assert_eq!(log[0].commit.shards_removed, 2);
    assert!(log[0].commit.committed_at_ms >= log[1].commit.committed_at_ms);

    let d = history::diff(&location, 1, 2).unwrap();
    assert_eq!((d.rows_added, d.rows_removed), (7, 15));
    assert_eq!((d.shards_added.len(), d.shards_removed.len()), (1, 2));
    assert_eq!(d.schema_change, None);
    let back = history::diff(&location, 2, 1).unwrap();
    assert_eq!(back.shards_added, d.shards_removed);

    // Restore version 1: a new version 3 with version 1's content.
    let out = history::restore(&location, 1, &CommitOptions::default()).unwrap();
    assert_eq!((out.version, out.total_rows), (Some(3), 15));
    let v3 = Dataset::open_version(
        &location,
        &CacheOptions::default(),
        &Default::default(),
        &VersionSpec::Latest,
    )
    .unwrap();
    assert_eq!(v3.version(), 3);
    let v1 = location.load_index_at(&VersionSpec::Version(1)).unwrap();
    assert_eq!(v3.index().shards, v1.shards);
    let commit: &CommitInfo = v3.index().commit.as_ref().unwrap();
    assert_eq!(
        (
            commit.operation.as_str(),
            commit.restored_from,
            commit.rows_added,
            commit.rows_removed
        ),
        ("restore", Some(1), 15, 7)
    );
    // Old versions stay readable with their own rows.
    for (version, rows) in [(0, 10), (1, 15), (2, 7)] {
        let d = Dataset::open_version(
            &location,
            &CacheOptions::default(),
            &Default::default(),
            &VersionSpec::Version(version),
        )
        .unwrap();
        assert_eq!((d.version(), d.num_rows()), (version, rows));
    }
    let missing = history::restore(&location, 9, &CommitOptions::default()).unwrap_err();
    assert!(
        matches!(missing, Error::VersionNotFound { version: 9, .. }),
        "{missing}"
    );
}

#[test]
fn vacuum_keeps_the_shards_of_kept_versions_and_names_removed_versions() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::local(dir.path());
    commit_rows(&location, "a", 10, SaveMode::ErrorIfExists); // 0
    std::thread::sleep(Duration::from_millis(5));
    commit_rows(&location, "b", 5, SaveMode::Append); // 1
    let t1 = history::log(&location).unwrap()[0].commit.committed_at_ms;
    std::thread::sleep(Duration::from_millis(5));
    commit_rows(&location, "c", 7, SaveMode::Overwrite); // 2: drops a, b
    commit_rows(&location, "d", 2, SaveMode::Append); // 3

    // Timestamps: the newest version committed at or before the time.
    let at = |ms| location.load_index_at(&VersionSpec::AsOfTimestampMs(ms));
    assert_eq!(at(t1).unwrap().version, 1);
    assert_eq!(at(t1 + 1).unwrap().version, 1);
    assert_eq!(at(u64::MAX).unwrap().version, 3);
    assert!(matches!(at(0), Err(Error::InvalidArgument(_))));

    let shards_of = |v: u64| -> Vec<String> {
        let index = location.load_index_at(&VersionSpec::Version(v)).unwrap();
        index.shards.into_iter().map(|s| s.path).collect()
    };
    let (v1, v3) = (shards_of(1), shards_of(3));
    let dry = history::vacuum(
        &location,
        &Retention {
            versions: Some(2),
            hours: None,
            grace: Duration::ZERO,
        },
        true,
    )
    .unwrap();
    assert_eq!(dry.versions_removed, [0, 1]);
    assert!(!dry.deleted);
    assert_eq!(check_linear_history(&location, &CacheOptions::default()), 3);

    let report = history::vacuum(
        &location,
        &Retention {
            versions: Some(2),
            hours: None,
            grace: Duration::ZERO,
        },
        false,
    )
    .unwrap();
    assert_eq!(report.versions_removed, [0, 1]);
    assert_eq!(report.oldest_kept, Some(2));
    let mut removed: Vec<String> = report.removable.iter().map(|(n, _)| n.clone()).collect();
    removed.sort();
    let mut expected = v1.clone();
    expected.sort();
    assert_eq!(removed, expected, "the shards only versions 0 and 1 listed");
    let files = files_in(dir.path());
    assert!(
        v3.iter().all(|s| files.contains(s)),
        "a kept version's shard went"
    );
    assert_eq!(check_linear_history(&location, &CacheOptions::default()), 3);

    // Removed versions: an error naming the version and the oldest kept.
    let Err(err) = Dataset::open_version(
        &location,
        &CacheOptions::default(),
        &Default::default(),
        &VersionSpec::Version(1),
    ) else {
        panic!("version 1 was vacuumed")
    };
    assert!(
        matches!(
            err,
            Error::VersionNotFound {
                version: 1,
                oldest_kept: Some(2),
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("version 1") && message.contains("oldest kept version is 2"));
    assert!(matches!(at(t1), Err(Error::InvalidArgument(_))));

    // Keep one version: the newest stays, with its shards.
    let report = history::vacuum(
        &location,
        &Retention {
            versions: Some(0),
            hours: None,
            grace: Duration::ZERO,
        },
        false,
    )
    .unwrap();
    assert_eq!(report.versions_removed, [2]);
    assert_eq!(check_linear_history(&location, &CacheOptions::default()), 3);
    // Hours: everything was committed in the last hour, so all stays.
    let report = history::vacuum(
        &location,
        &Retention {
            versions: None,
            hours: Some(1.0),
            grace: Duration::ZERO,
        },
        false,
    )
    .unwrap();
    assert!(report.versions_removed.is_empty() && report.removable.is_empty());
}

/// Writes the record of the next version without replacing the head: the
/// state a commit killed between its two writes leaves. Returns that version.
fn record_without_head(location: &Location, id: &str, rows: usize) -> u64 {
    let head = location.load_index().unwrap();
    let batch = simple_batch(rows, 0);
    let mut shards = head.shards.clone();
    shards.extend(write_at(location, id, &[batch], Default::default()));
    let mut index = Index::new(&head.arrow_schema().unwrap(), shards, head.writes.clone()).unwrap();
    index.version = head.version + 1;
    index.commit = Some(CommitInfo {
        operation: "append".into(),
        committed_at_ms: 1,
        write_id: id.into(),
        ..CommitInfo::default()
    });
    let dir = location.as_local().unwrap();
    std::fs::write(
        dir.join(version_record_name(index.version)),
        index.to_json().unwrap(),
    )
    .unwrap();
    index.version
}

#[test]
fn a_record_without_its_head_is_readable_and_rolled_forward() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::local(dir.path());
    commit_rows(&location, "a", 10, SaveMode::ErrorIfExists);
    let stale = record_without_head(&location, "b", 4);
    assert_eq!(stale, 1);
    // The head still reads the old version, whole; the record reads too.
    assert_eq!(location.load_index().unwrap().version, 0);
    assert_eq!(
        location
            .load_index_at(&VersionSpec::Version(1))
            .unwrap()
            .total_rows,
        14
    );
    // The next commit lands on top of the record and moves the head past it.
    assert_eq!(commit_rows(&location, "c", 3, SaveMode::Append), 2);
    let head = location.load_index().unwrap();
    assert_eq!((head.version, head.total_rows), (2, 17));
    assert_eq!(check_linear_history(&location, &CacheOptions::default()), 2);

    // repair_head alone rolls a stale head forward too.
    record_without_head(&location, "d", 1);
    assert_eq!(location.load_index().unwrap().version, 2);
    assert_eq!(history::repair_head(&location).unwrap(), Some(3));
    let bytes = std::fs::read(dir.path().join(INDEX_FILE)).unwrap();
    let record = std::fs::read(dir.path().join(version_record_name(3))).unwrap();
    assert_eq!(
        bytes, record,
        "the head is byte-identical to the newest record"
    );
}

#[test]
fn format_1_datasets_read_and_continue_their_history() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::local(dir.path());
    commit_rows(&location, "a", 10, SaveMode::ErrorIfExists);
    commit_rows(&location, "b", 5, SaveMode::Append);
    // Rewrite it as format 1 wrote it: no records, no version, no commit.
    std::fs::remove_dir_all(dir.path().join("_versions")).unwrap();
    let path = dir.path().join(INDEX_FILE);
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let object = json.as_object_mut().unwrap();
    object.remove("version");
    object.remove("commit");
    object.insert("format_version".into(), 1.into());
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();

    let dataset = Dataset::open(dir.path()).unwrap();
    assert_eq!((dataset.version(), dataset.num_rows()), (1, 15));
    let log = history::log(&location).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].version, log[0].commit.operation.as_str()),
        (1, "append")
    );
    let err = location
        .load_index_at(&VersionSpec::Version(0))
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::VersionNotFound {
                version: 0,
                oldest_kept: Some(1),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(commit_rows(&location, "c", 1, SaveMode::Append), 2);
    assert_eq!(check_linear_history(&location, &CacheOptions::default()), 2);
    assert_eq!(location.load_index().unwrap().format_version, 2);
}

/// Set in the child process of the kill test: the dataset it commits to.
const KILL_CHILD_ENV: &str = "MOSAICRS_HISTORY_KILL_CHILD";

/// Runs only as the kill test's child: appends forever until killed.
#[test]
fn kill_child_appends_until_killed() {
    let Some(dir) = std::env::var_os(KILL_CHILD_ENV) else {
        return;
    };
    let location = Location::local(Path::new(&dir));
    for i in 0.. {
        commit_rows(&location, &format!("k{i}"), 2, SaveMode::Append);
    }
}

#[test]
fn kill_9_during_commits_leaves_a_readable_history() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::local(dir.path());
    commit_rows(&location, "a", 10, SaveMode::ErrorIfExists);
    let exe = std::env::current_exe().unwrap();
    for round in 0..3 {
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", "kill_child_appends_until_killed", "--nocapture"])
            .env(KILL_CHILD_ENV, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Let it commit a while, then kill -9 wherever it is.
        std::thread::sleep(Duration::from_millis(300 + 70 * round));
        child.kill().unwrap();
        child.wait().unwrap();
        let newest = check_linear_history(&location, &CacheOptions::default());
        let head = location.load_index().unwrap().version;
        assert!(
            head == newest || head + 1 == newest,
            "head {head}, newest {newest}"
        );
        // The next commit lands after the newest version, and the head follows.
        let next = commit_rows(&location, &format!("after{round}"), 1, SaveMode::Append);
        assert_eq!(next, newest + 1);
        assert_eq!(location.load_index().unwrap().version, next);
    }
    assert!(
        location.load_index().unwrap().version >= 4,
        "the child committed nothing"
    );
}

#[test]
fn the_head_keeps_the_newest_writes_and_the_records_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::local(dir.path());
    let commits = WRITES_KEPT as u64 + 2;
    commit_rows(&location, "w0", 1, SaveMode::ErrorIfExists);
    for i in 1..commits {
        commit_rows(&location, &format!("w{i}"), 1, SaveMode::Append);
    }
    let head = location.load_index().unwrap();
    assert_eq!((head.version, head.total_rows), (commits - 1, commits));
    assert_eq!(head.writes.len(), WRITES_KEPT);
    assert_eq!(head.writes[0].write_id, "w2");
    let log = history::log(&location).unwrap();
    assert_eq!(log.len() as u64, commits);
    assert_eq!(log.last().unwrap().commit.write_id, "w0");
}
