//! The commit protocol: save modes, attempts that never commit, clean-up.

mod common;

use common::*;
use mosaicrs::format::Index;
use mosaicrs::reader::Dataset;
use mosaicrs::writer::{
    abort_write, check_append_schema, commit, SaveMode, ShardWriter, WriterOptions,
};
use mosaicrs::Error;

#[test]
fn shards_are_invisible_until_commit() {
    let dir = tempfile::tempdir().unwrap();
    let shards = write_shards(
        dir.path(),
        "w1",
        0,
        &[simple_batch(10, 0)],
        Default::default(),
    );
    assert!(matches!(
        Dataset::open(dir.path()),
        Err(Error::NotADataset { .. })
    ));
    commit(
        dir.path(),
        &simple_schema(),
        "w1",
        shards,
        SaveMode::ErrorIfExists,
    )
    .unwrap();
    assert_eq!(Dataset::open(dir.path()).unwrap().num_rows(), 10);
}

#[test]
fn error_if_exists_refuses_and_cleans_its_shards() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
    let before = files_in(dir.path());
    let shards = write_shards(
        dir.path(),
        "w2",
        0,
        &[simple_batch(5, 0)],
        Default::default(),
    );
    let err = commit(
        dir.path(),
        &simple_schema(),
        "w2",
        shards,
        SaveMode::ErrorIfExists,
    )
    .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }));
    assert_eq!(files_in(dir.path()), before);
    assert_eq!(Dataset::open(dir.path()).unwrap().num_rows(), 10);
}

#[test]
fn append_adds_rows_and_checks_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
    let shards = write_shards(
        dir.path(),
        "w2",
        0,
        &[simple_batch(7, 10)],
        Default::default(),
    );
    let out = commit(dir.path(), &simple_schema(), "w2", shards, SaveMode::Append).unwrap();
    assert_eq!(out.total_rows, 17);
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(ds.num_rows(), 17);
    assert_eq!(ds.index().writes.len(), 2);
    assert_eq!(ds.index().writes[1].mode, "append");

    let other = all_types_batch(3, 0).schema();
    let err = check_append_schema(dir.path(), &other).unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }));
    assert!(err.to_string().contains("cannot append"), "{err}");
}

#[test]
fn overwrite_replaces_the_index_and_keeps_old_shards_for_older_versions() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
    let old: Vec<String> = Index::load(dir.path())
        .unwrap()
        .shards
        .iter()
        .map(|s| s.path.clone())
        .collect();
    let shards = write_shards(
        dir.path(),
        "w3",
        0,
        &[simple_batch(4, 100)],
        Default::default(),
    );
    let out = commit(
        dir.path(),
        &simple_schema(),
        "w3",
        shards,
        SaveMode::Overwrite,
    )
    .unwrap();
    assert_eq!(out.total_rows, 4);
    assert!(out.removed.is_empty(), "{:?}", out.removed);
    // Version 0 still lists them; only vacuum deletes them.
    let files = files_in(dir.path());
    assert!(old.iter().all(|f| files.contains(f)));
    assert_eq!(Dataset::open(dir.path()).unwrap().num_rows(), 4);
}

#[test]
fn ignore_keeps_the_existing_dataset() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
    let before = files_in(dir.path());
    let shards = write_shards(
        dir.path(),
        "w4",
        0,
        &[simple_batch(4, 0)],
        Default::default(),
    );
    let out = commit(dir.path(), &simple_schema(), "w4", shards, SaveMode::Ignore).unwrap();
    assert!(!out.committed);
    assert_eq!(files_in(dir.path()), before);
    assert_eq!(Dataset::open(dir.path()).unwrap().num_rows(), 10);
}

#[test]
fn uncommitted_attempts_are_removed_and_never_listed() {
    let dir = tempfile::tempdir().unwrap();
    let schema = simple_schema();
    // Partition 0: attempt 1 failed half-way (a sealed shard and a temp file
    // stay behind), attempt 2 succeeded. Partition 1: a speculative duplicate.
    let mut failed = ShardWriter::create(
        dir.path(),
        schema.clone(),
        "w5",
        0,
        1,
        WriterOptions {
            max_shard_bytes: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    failed.write(&simple_batch(500, 0)).unwrap();
    failed.write(&simple_batch(500, 500)).unwrap();
    std::mem::forget(failed); // a killed executor runs no destructor
    let mut ok =
        ShardWriter::create(dir.path(), schema.clone(), "w5", 0, 2, Default::default()).unwrap();
    ok.write(&simple_batch(1000, 0)).unwrap();
    let mut shards = ok.finish().unwrap();
    let mut speculative =
        ShardWriter::create(dir.path(), schema.clone(), "w5", 1, 3, Default::default()).unwrap();
    speculative.write(&simple_batch(20, 1000)).unwrap();
    let _loser = speculative.finish().unwrap();
    let mut winner =
        ShardWriter::create(dir.path(), schema.clone(), "w5", 1, 4, Default::default()).unwrap();
    winner.write(&simple_batch(20, 1000)).unwrap();
    shards.extend(winner.finish().unwrap());

    let out = commit(dir.path(), &schema, "w5", shards, SaveMode::ErrorIfExists).unwrap();
    assert_eq!(out.total_rows, 1020);
    assert!(out.removed.len() >= 3, "{:?}", out.removed);
    let index = Index::load(dir.path()).unwrap();
    let mut expected: Vec<String> = index.shards.iter().map(|s| s.path.clone()).collect();
    expected.push("index.json".into());
    expected.sort();
    assert_eq!(files_in(dir.path()), expected);
    let ds = Dataset::open(dir.path()).unwrap();
    let ids: Vec<i64> = ds
        .batches()
        .flat_map(|b| {
            let b = b.unwrap();
            let a = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap()
                .clone();
            a.values().to_vec()
        })
        .collect();
    assert_eq!(ids, (0..1020).collect::<Vec<i64>>());
}

#[test]
fn abort_removes_a_writes_files_but_not_the_committed_dataset() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
    let before = files_in(dir.path());
    let _ = write_shards(
        dir.path(),
        "w6",
        3,
        &[simple_batch(10, 0)],
        Default::default(),
    );
    let mut w =
        ShardWriter::create(dir.path(), simple_schema(), "w6", 4, 9, Default::default()).unwrap();
    w.write(&simple_batch(3, 0)).unwrap();
    w.abort().unwrap();
    let removed = abort_write(dir.path(), "w6").unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(files_in(dir.path()), before);
    assert_eq!(Dataset::open(dir.path()).unwrap().num_rows(), 10);
}

#[test]
fn a_failed_commit_leaves_the_previous_index() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &[simple_batch(10, 0)], Default::default());
    let index_before = std::fs::read(dir.path().join("index.json")).unwrap();
    let mut shards = write_shards(
        dir.path(),
        "w7",
        0,
        &[simple_batch(5, 0)],
        Default::default(),
    );
    std::fs::remove_file(dir.path().join(&shards[0].path)).unwrap();
    shards[0].rows = 5;
    let err = commit(dir.path(), &simple_schema(), "w7", shards, SaveMode::Append).unwrap_err();
    assert!(matches!(err, Error::MissingShard { .. }), "{err:?}");
    assert_eq!(
        std::fs::read(dir.path().join("index.json")).unwrap(),
        index_before
    );
}

#[test]
fn an_append_without_the_layout_options_names_them() {
    use std::collections::HashMap;
    use std::sync::Arc;

    use arrow::array::{FixedSizeListArray, Float32Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use mosaicrs::writer::PACKED_COLUMNS_KEY;

    let dir = tempfile::tempdir().unwrap();
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let packed = Field::new("xy", DataType::FixedSizeList(item.clone(), 2), false).with_metadata(
        HashMap::from([(PACKED_COLUMNS_KEY.to_string(), r#"["x","y"]"#.to_string())]),
    );
    let values = Float32Array::from(vec![1.0, 2.0, 3.0, 4.0]);
    let xy = FixedSizeListArray::new(item, 2, Arc::new(values), None);
    let stored = Arc::new(Schema::new(vec![packed]));
    let batch = RecordBatch::try_new(stored.clone(), vec![Arc::new(xy)]).unwrap();
    write_dataset(dir.path(), &[batch], Default::default());

    // The input's own columns, as an append without `pack.xy=x,y` stores them.
    let plain = Schema::new(vec![
        Field::new("x", DataType::Float32, false),
        Field::new("y", DataType::Float32, false),
    ]);
    let err = check_append_schema(dir.path(), &plain).unwrap_err();
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("pack.xy=x,y"), "{message}");
    // The same layout appends.
    check_append_schema(dir.path(), &stored).unwrap();
}
