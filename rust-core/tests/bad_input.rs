//! Every kind of damaged or foreign dataset gets a typed error naming the file.

mod common;

use std::fs;
use std::path::Path;

use common::*;
use mosaicrs::format::{Index, INDEX_FILE};
use mosaicrs::reader::{validate, Dataset};
use mosaicrs::writer::{commit, SaveMode, WriterOptions};
use mosaicrs::Error;

/// A committed dataset of 3 shards; returns the first shard's file name.
fn dataset(dir: &Path) -> String {
    let batches: Vec<_> = (0..3).map(|i| simple_batch(2000, i * 2000)).collect();
    let options = WriterOptions {
        max_shard_bytes: 20_000,
        ..Default::default()
    };
    write_dataset(dir, &batches, options);
    Index::load(dir).unwrap().shards[0].path.clone()
}

fn open_err(dir: &Path) -> Error {
    match Dataset::open(dir) {
        Ok(_) => panic!("opening {} should fail", dir.display()),
        Err(e) => e,
    }
}

#[test]
fn truncated_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dataset(dir.path());
    let path = dir.path().join(&shard);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, Error::CorruptShard { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&shard) && msg.contains("truncated"), "{msg}");
    let report = validate(dir.path()).unwrap();
    assert_eq!(report.problems.len(), 1);
    assert!(report.problems[0].path.ends_with(&shard));
}

#[test]
fn wrong_magic_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dataset(dir.path());
    let path = dir.path().join(&shard);
    let mut bytes = fs::read(&path).unwrap();
    bytes[..6].copy_from_slice(b"PAR1xx");
    fs::write(&path, &bytes).unwrap();
    let msg = open_err(dir.path()).to_string();
    assert!(msg.contains(&shard) && msg.contains("magic"), "{msg}");
}

#[test]
fn missing_shard_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dataset(dir.path());
    fs::remove_file(dir.path().join(&shard)).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, Error::MissingShard { .. }), "{err:?}");
    assert!(err.to_string().contains(&shard));
}

#[test]
fn checksum_mismatch_after_one_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let shard = dataset(dir.path());
    let path = dir.path().join(&shard);
    let mut bytes = fs::read(&path).unwrap();
    // A byte in the middle of the data, past the header: structure stays valid.
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    fs::write(&path, &bytes).unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    let err = ds.verify().unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&shard));
    let report = validate(dir.path()).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].path.ends_with(&shard));
}

#[test]
fn schema_that_differs_between_shards_is_named() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    // A shard with another schema, listed in the index by hand.
    let other = tempfile::tempdir().unwrap();
    let batch = all_types_batch(10, 0);
    let shards = write_shards(other.path(), "w9", 0, &[batch], WriterOptions::default());
    let foreign = &shards[0];
    fs::copy(
        other.path().join(&foreign.path),
        dir.path().join(&foreign.path),
    )
    .unwrap();
    let mut index = Index::load(dir.path()).unwrap();
    index.shards.push(foreign.clone());
    index.total_rows += foreign.rows;
    index.total_bytes += foreign.bytes;
    index.store_atomic(dir.path()).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains(&foreign.path), "{err}");
}

#[test]
fn invalid_json_index_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    fs::write(dir.path().join(INDEX_FILE), b"{\"format\": \"mosaicrs\", ").unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, Error::InvalidIndex { .. }), "{err:?}");
    assert!(err.to_string().contains(INDEX_FILE));
    assert!(validate(dir.path()).is_err());
}

#[test]
fn newer_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let path = dir.path().join(INDEX_FILE);
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    json["format_version"] = 3.into();
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let err = open_err(dir.path());
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found: 3,
                supported: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade mosaicrs"));
}

#[test]
fn folder_without_index_is_not_a_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, Error::NotADataset { .. }), "{err:?}");
    assert!(err.to_string().contains("index.json not found"));
}

#[test]
fn unsafe_shard_paths_in_the_index_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path());
    let mut index = Index::load(dir.path()).unwrap();
    index.shards[0].path = "../escape.arrow".into();
    // Written by hand: the writer refuses to publish such an index.
    fs::write(dir.path().join("index.json"), index.to_json().unwrap()).unwrap();
    let msg = open_err(dir.path()).to_string();
    assert!(
        msg.contains("escape.arrow") && msg.contains("plain file name"),
        "{msg}"
    );
}

#[test]
fn bad_writer_options_and_write_ids_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let bad = WriterOptions {
        max_shard_bytes: 0,
        ..Default::default()
    };
    let err = mosaicrs::writer::ShardWriter::create(dir.path(), simple_schema(), "w", 0, 0, bad)
        .err()
        .unwrap();
    assert!(err.to_string().contains("max_shard_bytes"));
    let err = commit(
        dir.path(),
        &simple_schema(),
        "a-b",
        vec![],
        SaveMode::Append,
    )
    .unwrap_err();
    assert!(err.to_string().contains("\"a-b\""));
}
