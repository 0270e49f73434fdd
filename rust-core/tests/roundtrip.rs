//! Lossless round trips, shard rolling, random access and zero copy.

mod common;

use arrow::array::{Array, Float64Array, Int64Array};
use arrow::compute::concat_batches;
use common::*;
use mosaicrs::format::Compression;
use mosaicrs::reader::{validate, Dataset};
use mosaicrs::writer::WriterOptions;

fn read_all(ds: &Dataset) -> arrow::record_batch::RecordBatch {
    let batches: Vec<_> = ds.batches().collect::<Result<_, _>>().expect("scan");
    concat_batches(&ds.schema(), &batches).expect("concat")
}

#[test]
fn every_spark_type_round_trips_with_nulls_in_each_compression() {
    for compression in [Compression::None, Compression::Zstd, Compression::Lz4] {
        let dir = tempfile::tempdir().unwrap();
        let input = [all_types_batch(1000, 0), all_types_batch(537, 1000)];
        let options = WriterOptions {
            max_batch_rows: Some(300),
            compression,
            ..Default::default()
        };
        write_dataset(dir.path(), &input, options);
        let ds = Dataset::open(dir.path()).unwrap();
        assert_eq!(ds.num_rows(), 1537);
        assert_eq!(*ds.schema(), *input[0].schema());
        let expected = concat_batches(&input[0].schema(), &input).unwrap();
        let actual = read_all(&ds);
        assert_eq!(actual, expected, "compression {compression}");
        for c in 0..expected.num_columns() {
            assert_eq!(
                actual.column(c).null_count(),
                expected.column(c).null_count()
            );
        }
        assert!(validate(dir.path()).unwrap().is_ok());
        assert!(ds
            .shards()
            .iter()
            .all(|s| s.entry().compression == compression));
    }
}

#[test]
fn shards_roll_at_the_size_limit_and_batches_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<_> = (0..10).map(|i| simple_batch(10_000, i * 10_000)).collect();
    let options = WriterOptions {
        max_shard_bytes: 256 * 1024,
        max_batch_rows: Some(4096),
        compression: Compression::None,
    };
    write_dataset(dir.path(), &batches, options);
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(ds.num_rows(), 100_000);
    // 100k rows * 16 bytes = 1.6 MB in 256 KiB shards.
    assert!(ds.num_shards() >= 6, "only {} shards", ds.num_shards());
    for shard in ds.shards() {
        // A shard exceeds the limit by at most one batch (4096 rows * 16 B + framing).
        assert!(shard.entry().bytes < 256 * 1024 + 4096 * 16 + 4096);
        for b in 0..shard.num_batches() {
            assert!(shard.batch(b).unwrap().num_rows() <= 4096);
        }
    }
    let all = read_all(&ds);
    let ids = all.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    assert!(ids.values().iter().copied().eq(0..100_000));
}

/// A shard of several MiB, whose write-back starts while it is written, is
/// whole and matches its checksum.
#[test]
fn a_multi_mib_shard_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<_> = (0..4).map(|i| simple_batch(50_000, i * 50_000)).collect();
    let options = WriterOptions {
        max_batch_rows: Some(4096),
        compression: Compression::None,
        ..Default::default()
    };
    write_dataset(dir.path(), &batches, options);
    assert!(validate(dir.path()).unwrap().is_ok());
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(ds.num_shards(), 1);
    // 200k rows * 16 bytes: past the 1 MiB write-back step twice or more.
    assert!(ds.shards()[0].entry().bytes > 3_000_000);
    let all = read_all(&ds);
    let ids = all.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
    assert!(ids.values().iter().copied().eq(0..200_000));
}

#[test]
fn random_access_by_row_range_and_gather() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<_> = (0..5).map(|i| simple_batch(3000, i * 3000)).collect();
    let options = WriterOptions {
        max_shard_bytes: 20_000,
        max_batch_rows: Some(700),
        ..Default::default()
    };
    write_dataset(dir.path(), &batches, options);
    let ds = Dataset::open(dir.path()).unwrap();
    let id_of = |b: &arrow::record_batch::RecordBatch, i: usize| {
        b.column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(i)
    };
    for row in [0u64, 1, 699, 700, 2999, 3000, 7777, 14_999] {
        let one = ds.row(row).unwrap();
        assert_eq!(one.num_rows(), 1);
        assert_eq!(id_of(&one, 0), row as i64);
        let x = one
            .column(1)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(x.value(0), row as f64 * 2.5);
    }
    let range = ds.slice(650, 2000).unwrap();
    assert_eq!(range.num_rows(), 2000);
    assert!((0..2000).all(|i| id_of(&range, i) == 650 + i as i64));

    let rows = [14_999u64, 3, 8000, 3, 700, 0];
    let gathered = ds.take(&rows, Some(&[0])).unwrap();
    assert_eq!(gathered.num_columns(), 1);
    let got: Vec<i64> = (0..rows.len()).map(|i| id_of(&gathered, i)).collect();
    assert_eq!(got, rows.iter().map(|&r| r as i64).collect::<Vec<_>>());

    assert!(matches!(
        ds.row(15_000),
        Err(mosaicrs::Error::RowOutOfRange {
            row: 15_000,
            rows: 15_000
        })
    ));
    let err = ds.column_indices(&["nope"]).unwrap_err().to_string();
    assert!(err.contains("\"nope\"") && err.contains("id, x"), "{err}");
    let projected: Vec<_> = ds
        .batches_projected(&["x"])
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(projected.iter().all(|b| b.num_columns() == 1));
}

#[test]
fn uncompressed_scan_copies_no_column_buffers() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(
        dir.path(),
        &[all_types_batch(5000, 0)],
        WriterOptions {
            max_batch_rows: Some(1000),
            ..Default::default()
        },
    );
    let ds = Dataset::open(dir.path()).unwrap();
    let mut buffers_checked = 0;
    for shard in ds.shards() {
        let mapped = shard.bytes().expect("mapped").as_ptr_range();
        for b in 0..shard.num_batches() {
            let batch = shard.batch(b).unwrap();
            for column in batch.columns() {
                let mut stack = vec![column.to_data()];
                while let Some(data) = stack.pop() {
                    for buffer in data.buffers() {
                        if buffer.is_empty() {
                            continue;
                        }
                        let p = buffer.as_ptr();
                        assert!(
                            mapped.contains(&p),
                            "a {} buffer was copied out of the mapping",
                            data.data_type()
                        );
                        buffers_checked += 1;
                    }
                    if let Some(nulls) = data.nulls() {
                        assert!(mapped.contains(&nulls.buffer().as_ptr()));
                    }
                    stack.extend(data.child_data().iter().cloned());
                }
            }
        }
    }
    assert!(
        buffers_checked > 50,
        "checked only {buffers_checked} buffers"
    );
}

#[test]
fn empty_dataset_is_valid_and_has_zero_rows() {
    let dir = tempfile::tempdir().unwrap();
    let schema = simple_schema();
    let w = mosaicrs::writer::ShardWriter::create(
        dir.path(),
        schema.clone(),
        "empty",
        0,
        0,
        WriterOptions::default(),
    )
    .unwrap();
    let shards = w.finish().unwrap();
    assert!(shards.is_empty());
    mosaicrs::writer::commit(
        dir.path(),
        &schema,
        "empty",
        shards,
        mosaicrs::writer::SaveMode::ErrorIfExists,
    )
    .unwrap();
    let ds = Dataset::open(dir.path()).unwrap();
    assert_eq!(ds.num_rows(), 0);
    assert_eq!(*ds.schema(), *schema);
    assert_eq!(ds.batches().count(), 0);
    assert!(validate(dir.path()).unwrap().is_ok());
    assert_eq!(ds.take(&[], None).unwrap().num_rows(), 0);
}

#[test]
fn projected_batches_hold_only_their_columns_in_each_compression() {
    for compression in [Compression::None, Compression::Zstd] {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(
            dir.path(),
            &[all_types_batch(3000, 0)],
            WriterOptions {
                max_batch_rows: Some(1000),
                compression,
                ..Default::default()
            },
        );
        let ds = Dataset::open(dir.path()).unwrap();
        let last = ds.schema().fields().len() - 1;
        for shard in ds.shards() {
            for b in 0..shard.num_batches() {
                // Before the whole batch is decoded (only these columns are),
                // then after (projected from the kept batch).
                let projected = shard.batch_projected(b, &[last, 0]).unwrap();
                let whole = shard.batch(b).unwrap().project(&[last, 0]).unwrap();
                assert_eq!(projected, whole, "{compression:?} batch {b}");
                assert_eq!(shard.batch_projected(b, &[last, 0]).unwrap(), whole);
                assert_eq!(shard.batch_projected(b, &[]).unwrap().num_columns(), 0);
            }
            for bad in [vec![0, 0], vec![last + 1]] {
                let err = shard.batch_projected(0, &bad).unwrap_err().to_string();
                assert!(err.contains("projection"), "{err}");
            }
        }
    }
}
