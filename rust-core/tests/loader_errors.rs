//! Bad loader input gets a clear, typed error before any work starts.

use mosaicrs::format::Compression;
use mosaicrs::loader::{Loader, ShuffleMode};
use mosaicrs::reader::Dataset;
use mosaicrs::testing::{config, write_dataset};
use mosaicrs::Error;

#[test]
fn bad_options_and_columns_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 50, 1, 16, Compression::None);
    let err = |cfg| match Loader::new(dataset.clone(), cfg) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("accepted a bad configuration"),
    };
    assert!(err(config(0, 1, 0, 1)).contains("batch_size"));
    assert!(err(config(4, 2, 2, 1)).contains("rank 2"));
    assert!(err(config(4, 1, 0, 0)).contains("workers"));
    let mut cfg = config(4, 1, 0, 1);
    cfg.shuffle = ShuffleMode::BlockLocal {
        shards_per_block: 0,
    };
    assert!(err(cfg).contains("shards_per_block"));
    let mut cfg = config(4, 1, 0, 1);
    cfg.columns = Some(vec!["id".into(), "nope".into()]);
    match Loader::new(dataset.clone(), cfg) {
        Err(Error::ColumnNotFound { name, .. }) => assert_eq!(name, "nope"),
        other => panic!("expected ColumnNotFound, got {:?}", other.err()),
    }
    let mut cfg = config(4, 1, 0, 1);
    cfg.rows = Some(vec![3, 2].into());
    assert!(err(cfg).contains("strictly increasing"));
    let mut cfg = config(4, 1, 0, 1);
    cfg.rows = Some(vec![3, 50].into());
    assert!(matches!(
        Loader::new(dataset.clone(), cfg),
        Err(Error::RowOutOfRange { row: 50, rows: 50 })
    ));
    assert!("shuffle-everything".parse::<ShuffleMode>().is_err());
}

#[test]
fn a_folder_without_index_is_not_a_dataset() {
    let dir = tempfile::tempdir().unwrap();
    match Dataset::open(dir.path()) {
        Err(e @ Error::NotADataset { .. }) => assert!(e.to_string().contains("index.json")),
        other => panic!("expected NotADataset, got {:?}", other.err()),
    }
}

#[test]
fn an_empty_dataset_gives_an_empty_epoch_and_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 0, 1, 16, Compression::None);
    let mut loader = Loader::new(dataset, config(4, 1, 0, 2)).unwrap();
    assert_eq!(loader.epoch().unwrap().count(), 0);
    assert_eq!(loader.state().epoch, 1);
}
