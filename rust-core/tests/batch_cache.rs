//! Random access into compressed shards through the dataset's shared,
//! byte-bounded decoded-batch cache, and the writer's batch size under
//! compression.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, Int64Array};
use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use mosaicrs::format::Compression;
use mosaicrs::loader::{Loader, SplitMix64};
use mosaicrs::reader::{Access, Dataset, ReadOptions};
use mosaicrs::testing::{all_types_batch, config, run_epoch, write_batches, write_dataset};
use mosaicrs::writer::{WriterOptions, DEFAULT_COMPRESSED_BATCH_ROWS};

const COMPRESSED: [Compression; 2] = [Compression::Zstd, Compression::Lz4];

/// Opens the dataset in `dir` with a cache of `bytes`.
fn open(dir: &Path, bytes: u64, access: Access) -> Dataset {
    let options = ReadOptions {
        batch_cache_bytes: bytes,
        access,
        ..Default::default()
    };
    Dataset::open_with(dir, &options).unwrap()
}

/// The bytes one decoded batch of `dataset` holds, as the cache weighs it.
fn one_batch_bytes(dir: &Path) -> u64 {
    let probe = open(dir, 1 << 30, Access::Auto);
    probe.row(0).unwrap();
    probe.batch_cache_stats().bytes
}

#[test]
fn random_reads_through_a_small_cache_equal_the_source() {
    let source: Vec<RecordBatch> = (0..3).map(|i| all_types_batch(700, i * 700)).collect();
    let whole = concat_batches(&source[0].schema(), &source).unwrap();
    for compression in COMPRESSED {
        let dir = tempfile::tempdir().unwrap();
        let options = WriterOptions {
            compression,
            max_batch_rows: Some(128),
            ..Default::default()
        };
        write_batches(dir.path(), &source, options).unwrap();
        // Room for about three of the 17 batches: most reads evict.
        let limit = one_batch_bytes(dir.path()) * 3;
        for access in [Access::Mmap, Access::Pread] {
            let dataset = open(dir.path(), limit, access);
            let mut rng = SplitMix64::new(11);
            for _ in 0..400 {
                let row = rng.next_u64() % whole.num_rows() as u64;
                let got = dataset.row(row).unwrap();
                assert_eq!(
                    got,
                    whole.slice(row as usize, 1),
                    "{compression:?} row {row}"
                );
                let stats = dataset.batch_cache_stats();
                assert!(stats.bytes <= limit, "{stats:?} over {limit}");
            }
            let rows: Vec<u64> = (0..300).map(|_| rng.next_u64() % 2100).collect();
            let taken = dataset.take(&rows, None).unwrap();
            for (i, &row) in rows.iter().enumerate() {
                assert_eq!(taken.slice(i, 1), whole.slice(row as usize, 1));
            }
            let stats = dataset.batch_cache_stats();
            assert!(stats.evictions > 0, "{compression:?} {access:?}: {stats:?}");
            assert!(stats.hits > 0 && stats.misses > 0, "{stats:?}");
            assert!(stats.bytes <= stats.capacity_bytes);
        }
    }
}

#[test]
fn hits_and_misses_are_counted_for_a_known_pattern() {
    let dir = tempfile::tempdir().unwrap();
    // 10 batches of 100 rows, one shard.
    write_dataset(dir.path(), 1_000, 1, 100, Compression::Zstd);
    let dataset = open(dir.path(), 64 << 20, Access::Auto);
    for row in [0, 1, 150, 5, 199, 999, 998, 100] {
        dataset.row(row).unwrap();
    }
    let stats = dataset.batch_cache_stats();
    // Batches 0, 1 and 9 decoded once each; every other read hit.
    assert_eq!((stats.misses, stats.hits, stats.evictions), (3, 5, 0));
    assert_eq!(stats.entries, 3);
    assert!(stats.bytes > 0 && stats.bytes <= stats.capacity_bytes);
    assert_eq!(stats.capacity_bytes, 64 << 20);

    // A cache of 0 bytes decodes every read.
    let off = open(dir.path(), 0, Access::Auto);
    for row in [0, 1, 2] {
        off.row(row).unwrap();
    }
    let stats = off.batch_cache_stats();
    assert_eq!((stats.misses, stats.hits, stats.bytes), (3, 0, 0));
}

#[test]
fn mapped_uncompressed_shards_bypass_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 1_000, 2, 100, Compression::None);
    for row in [0, 500, 999] {
        dataset.row(row).unwrap();
    }
    let stats = dataset.batch_cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.bytes), (0, 0, 0));
    // Read with pread, the same shards are decoded into memory and cached.
    let pread = open(dir.path(), 64 << 20, Access::Pread);
    pread.row(0).unwrap();
    pread.row(1).unwrap();
    assert_eq!(pread.batch_cache_stats().misses, 1);
    assert_eq!(pread.batch_cache_stats().hits, 1);
}

#[test]
fn threads_sharing_a_small_cache_read_the_right_values() {
    for compression in COMPRESSED {
        let dir = tempfile::tempdir().unwrap();
        write_dataset(dir.path(), 20_000, 3, 250, compression);
        let limit = one_batch_bytes(dir.path()) * 6;
        let dataset = Arc::new(open(dir.path(), limit, Access::Auto));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let dataset = Arc::clone(&dataset);
                std::thread::spawn(move || {
                    let mut rng = SplitMix64::new(t);
                    for _ in 0..1_500 {
                        let row = rng.next_u64() % 20_000;
                        let got = dataset.row(row).unwrap();
                        let ids = got.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                        assert_eq!(ids.value(0) as u64, row);
                        assert!(dataset.batch_cache_stats().bytes <= limit);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let stats = dataset.batch_cache_stats();
        assert_eq!(stats.hits + stats.misses, 6_000, "{stats:?}");
        assert!(stats.bytes <= limit && stats.evictions > 0, "{stats:?}");
    }
}

#[test]
fn a_global_shuffle_over_compressed_shards_delivers_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 3_000, 3, 200, Compression::Zstd);
    let mut loader = Loader::new(Arc::clone(&dataset), config(64, 1, 0, 3)).unwrap();
    let seen: Vec<u64> = run_epoch(&mut loader)
        .into_iter()
        .flat_map(|(_, rows, _)| rows)
        .collect();
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len());
    assert_eq!(seen.len(), 3_000 / 64 * 64);
    let stats = dataset.batch_cache_stats();
    // 15 batches, all fit: each decoded once, then shared by the workers.
    assert_eq!(stats.misses, 15, "{stats:?}");
    assert!(stats.hits > 0);
}

#[test]
fn compressed_shards_get_small_batches_unless_the_rows_are_chosen() {
    let source = vec![all_types_batch(10_000, 0)];
    let batch_rows = |options: WriterOptions| {
        let dir = tempfile::tempdir().unwrap();
        write_batches(dir.path(), &source, options).unwrap();
        let dataset = Dataset::open(dir.path()).unwrap();
        let shard = &dataset.shards()[0];
        let offsets = shard.batch_row_offsets();
        offsets.windows(2).map(|w| w[1] - w[0]).max().unwrap()
    };
    for compression in COMPRESSED {
        let default = WriterOptions {
            compression,
            ..Default::default()
        };
        assert_eq!(batch_rows(default), DEFAULT_COMPRESSED_BATCH_ROWS as u64);
        let chosen = WriterOptions {
            max_batch_rows: Some(10_000),
            ..default
        };
        assert_eq!(batch_rows(chosen), 10_000, "{compression:?}");
    }
    assert_eq!(batch_rows(WriterOptions::default()), 10_000);
}
