//! A remote dataset larger than the trainer's cache streams through it with
//! block-local shuffle, on a real S3-compatible server (moto, started by the
//! test; see [`mosaicrs::testing::moto`]).

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::*;
use mosaicrs::loader::mix::{MixConfig, Stream};
use mosaicrs::loader::{Loader, LoaderConfig, LoaderState, ShuffleMode};
use mosaicrs::reader::{DataSource, ReadOptions};
use mosaicrs::storage::{cache_usage, clear_cache, CacheOptions, Location};
use mosaicrs::testing::moto::Moto;
use mosaicrs::testing::{config, ids, publish_each_at};
use mosaicrs::Error;

const SHARDS: usize = 12;
const ROWS_PER_SHARD: usize = 2000;
const ROWS: u64 = (SHARDS * ROWS_PER_SHARD) as u64;
const BLOCK: ShuffleMode = ShuffleMode::BlockLocal {
    shards_per_block: 2,
};

/// Twelve shards of 2000 rows (`id` = row number) at `s3://<bucket>/ds`;
/// returns the location, the dataset's bytes and its largest shard's.
fn dataset(moto: &Moto, bucket: &str) -> (Location, u64, u64) {
    moto.create_bucket(bucket);
    let location = moto.location(&format!("s3://{bucket}/ds"));
    publish_each_at(
        &location,
        (0..SHARDS).map(|i| simple_batch(ROWS_PER_SHARD, (i * ROWS_PER_SHARD) as i64)),
    );
    let index = location.load_index().unwrap();
    assert_eq!(index.shards.len(), SHARDS);
    let largest = index.shards.iter().map(|s| s.bytes).max().unwrap();
    (location, index.total_bytes, largest)
}

/// Room for two blocks of two shards (the one read, one fetched ahead): about
/// a third of the dataset.
fn tight_cache(dir: &std::path::Path, total: u64, largest: u64) -> CacheOptions {
    let limit = 4 * largest + 1024;
    assert!(
        limit * 5 < total * 2,
        "limit {limit} is not below 40% of {total}"
    );
    CacheOptions::new(dir, limit)
}

fn block_config(batch_size: usize, world_size: usize, rank: usize) -> LoaderConfig {
    LoaderConfig {
        shuffle: BLOCK,
        ..config(batch_size, world_size, rank, 2)
    }
}

/// Samples the cache's size every millisecond until dropped; the peak seen.
struct UsageProbe {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UsageProbe {
    fn start(dir: &std::path::Path) -> UsageProbe {
        let (stop, peak) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (s, p, dir) = (stop.clone(), peak.clone(), dir.to_path_buf());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(used) = cache_usage(&dir) {
                    p.fetch_max(used, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        UsageProbe {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn peak(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// Delivers `steps` batches (all when `None`) of the current epoch; checks
/// that each batch's ids are its rows; returns the rows and the state.
fn consume(loader: &mut Loader, steps: Option<usize>) -> (Vec<u64>, LoaderState) {
    let mut rows = Vec::new();
    for batch in loader.epoch().unwrap().take(steps.unwrap_or(usize::MAX)) {
        let batch = batch.unwrap();
        assert_eq!(ids(&batch), batch.rows);
        rows.extend(batch.rows);
    }
    (rows, loader.state().clone())
}

#[test]
fn s3_a_dataset_three_times_the_cache_streams_through_it_each_shard_once_per_epoch() {
    let Some(moto) = Moto::start() else { return };
    let (location, total, largest) = dataset(&moto, "stream");
    let cache = tempfile::tempdir().unwrap();
    let options = tight_cache(cache.path(), total, largest);
    let source = DataSource::open_at(&location, &options, &ReadOptions::default()).unwrap();
    assert!(source.is_streamed());
    assert_eq!(source.bytes_downloaded(), 0, "opening downloads nothing");
    let mut loader = Loader::new(&source, block_config(100, 1, 0)).unwrap();
    let probe = UsageProbe::start(cache.path());
    let mut downloaded = 0;
    for epoch in 0..2 {
        let expected = loader.order(epoch);
        let (mut rows, state) = consume(&mut loader, None);
        assert_eq!(state.epoch, epoch + 1);
        assert_eq!(rows, expected, "the block-local order of epoch {epoch}");
        rows.sort_unstable();
        assert_eq!(rows, (0..ROWS).collect::<Vec<_>>(), "each sample once");
        let this_epoch = source.bytes_downloaded() - downloaded;
        downloaded = source.bytes_downloaded();
        if epoch == 0 {
            assert_eq!(this_epoch, total, "a cold cache downloads each shard once");
        } else {
            // The shards the last epoch left cached are not downloaded again.
            assert!(this_epoch <= total && this_epoch + options.cache_limit >= total);
        }
        eprintln!("epoch {epoch}: downloaded {this_epoch} of {total} bytes");
    }
    let sampled = probe.peak();
    let peak = source.peak_cache_bytes();
    eprintln!(
        "cache peak {peak} (sampled {sampled}), limit {}",
        options.cache_limit
    );
    assert!(sampled <= options.cache_limit && peak <= options.cache_limit);
    assert!(peak >= 2 * largest, "the next block was prefetched");
}

#[test]
fn s3_pinned_shards_survive_a_cache_clear_mid_epoch() {
    let Some(moto) = Moto::start() else { return };
    let (location, total, largest) = dataset(&moto, "pinned");
    let cache = tempfile::tempdir().unwrap();
    let options = tight_cache(cache.path(), total, largest);
    let source = DataSource::open_at(&location, &options, &ReadOptions::default()).unwrap();
    let mut loader = Loader::new(&source, block_config(100, 1, 0)).unwrap();
    let mut rows = Vec::new();
    let mut epoch = loader.epoch().unwrap();
    for step in 0..240 {
        let batch = epoch.next().unwrap().unwrap();
        assert_eq!(ids(&batch), batch.rows);
        rows.extend(batch.rows);
        if step % 50 == 25 {
            // Removes only what no reader pins: the blocks being read stay.
            clear_cache(cache.path()).unwrap();
        }
    }
    assert!(epoch.next().is_none());
    drop(epoch);
    rows.sort_unstable();
    assert_eq!(rows, (0..ROWS).collect::<Vec<_>>());
    assert_eq!(
        source.bytes_downloaded(),
        total,
        "nothing was fetched twice"
    );
}

#[test]
fn s3_resuming_mid_epoch_through_the_cache_yields_exactly_the_rest() {
    let Some(moto) = Moto::start() else { return };
    let (location, total, largest) = dataset(&moto, "resume");
    let cache = tempfile::tempdir().unwrap();
    let options = tight_cache(cache.path(), total, largest);
    let source = DataSource::open_at(&location, &options, &ReadOptions::default()).unwrap();
    let mut first = Loader::new(&source, block_config(64, 1, 0)).unwrap();
    let expected = first.order(0);
    let (mut rows, state) = consume(&mut first, Some(150));
    assert_eq!(state.samples_consumed, 150 * 64);
    drop(first);
    // A new process: its own view of the dataset, the state as JSON.
    let json = serde_json::to_string(&state).unwrap();
    let source = DataSource::open_at(&location, &options, &ReadOptions::default()).unwrap();
    let state: LoaderState = serde_json::from_str(&json).unwrap();
    let mut resumed = Loader::resume(&source, block_config(64, 1, 0), state).unwrap();
    let (rest, after) = consume(&mut resumed, None);
    rows.extend(rest);
    // Drop-last: 24000 = 375 × 64, so nothing is dropped.
    assert_eq!(rows, expected);
    assert_eq!(after.epoch, 1);
    assert!(source.bytes_downloaded() <= total);
}

#[test]
fn s3_a_cache_too_small_for_the_shuffle_is_refused_naming_the_size() {
    let Some(moto) = Moto::start() else { return };
    let (location, total, largest) = dataset(&moto, "refuse");
    let cache = tempfile::tempdir().unwrap();
    let needed = 4 * largest; // two blocks of two shards
    let options = CacheOptions::new(cache.path(), needed - 1);
    let source = DataSource::open_at(&location, &options, &ReadOptions::default()).unwrap();
    let refused = |shuffle: ShuffleMode| match Loader::new(
        &source,
        LoaderConfig {
            shuffle,
            ..config(100, 1, 0, 2)
        },
    ) {
        Err(e) => e,
        Ok(_) => panic!("{shuffle} was accepted"),
    };
    let err = refused(BLOCK);
    assert!(
        matches!(err, Error::CacheTooSmall { needed: n, .. } if n == needed),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("at least {needed} bytes")),
        "{err}"
    );
    let err = refused(ShuffleMode::Global);
    assert!(
        err.to_string().contains(&format!("at least {total} bytes")),
        "{err}"
    );
    assert!(err.to_string().contains("global shuffle"), "{err}");
    assert_eq!(cache_usage(cache.path()).unwrap(), 0, "nothing downloaded");
    // One shard per block (sequential) fits.
    let mut sequential = Loader::new(
        &source,
        LoaderConfig {
            shuffle: ShuffleMode::Sequential,
            ..config(100, 1, 0, 2)
        },
    )
    .unwrap();
    let (rows, _) = consume(&mut sequential, None);
    assert_eq!(rows, (0..ROWS).collect::<Vec<_>>());
}

#[test]
fn s3_two_ranks_sharing_one_cache_download_each_shard_once() {
    let Some(moto) = Moto::start() else { return };
    let (location, total, largest) = dataset(&moto, "ranks");
    let cache = tempfile::tempdir().unwrap();
    let options = tight_cache(cache.path(), total, largest);
    let probe = UsageProbe::start(cache.path());
    // Each rank opens the dataset on its own (its own descriptors and locks,
    // as separate processes have) and steps in lockstep with the other, as
    // the collectives of a training step make ranks do.
    let barrier = Barrier::new(2);
    let results: Vec<(Vec<u64>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|rank| {
                let (location, options, barrier) = (&location, &options, &barrier);
                s.spawn(move || {
                    let source =
                        DataSource::open_at(location, options, &ReadOptions::default()).unwrap();
                    let mut loader = Loader::new(&source, block_config(50, 2, rank)).unwrap();
                    let mut rows = Vec::new();
                    for batch in loader.epoch().unwrap() {
                        let batch = batch.unwrap();
                        assert_eq!(ids(&batch), batch.rows);
                        rows.extend(batch.rows);
                        barrier.wait();
                    }
                    (rows, source.bytes_downloaded())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = results.iter().flat_map(|r| r.0.clone()).collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (0..ROWS).collect::<Vec<_>>(),
        "each sample once across ranks"
    );
    let downloaded: u64 = results.iter().map(|r| r.1).sum();
    eprintln!(
        "two ranks downloaded {} + {} = {downloaded} bytes of a {total} byte dataset",
        results[0].1, results[1].1
    );
    assert_eq!(downloaded, total, "each shard downloaded once in all");
    assert!(probe.peak() <= options.cache_limit);
}

/// Where the ids of mix source `i` start.
const MIX_FIRST_ID: [u64; 2] = [0, 1_000_000];

/// Two sources at `s3://<bucket><i>/ds`, twelve shards each (1000 and 800
/// rows, `id` = the first id of the source + the row), to stream through
/// a cache; their locations, total bytes, and the cache both need with
/// `BLOCK` (each source's two blocks of two shards: the one read, one ahead).
fn mix_sources(moto: &Moto, bucket: &str) -> (Vec<Location>, Vec<u64>, u64) {
    let mut locations = Vec::new();
    let (mut totals, mut largest) = (Vec::new(), Vec::new());
    for (i, rows) in [1000usize, 800].into_iter().enumerate() {
        let bucket = format!("{bucket}{i}");
        moto.create_bucket(&bucket);
        let location = moto.location(&format!("s3://{bucket}/ds"));
        let first = MIX_FIRST_ID[i] as usize;
        publish_each_at(
            &location,
            (0..SHARDS).map(|s| simple_batch(rows, (first + s * rows) as i64)),
        );
        let index = location.load_index().unwrap();
        totals.push(index.total_bytes);
        largest.push(index.shards.iter().map(|s| s.bytes).max().unwrap());
        locations.push(location);
    }
    (locations, totals, largest.iter().map(|l| 4 * l).sum())
}

fn open_streams(locations: &[Location], options: &CacheOptions) -> Vec<Stream<DataSource>> {
    locations
        .iter()
        .enumerate()
        .map(|(i, at)| {
            let source = DataSource::open_at(at, options, &ReadOptions::default()).unwrap();
            assert!(source.is_streamed(), "source {i} is larger than the cache");
            let stream = Stream::new(source);
            // Source 1 gives one and a half passes: a pass boundary mid-epoch.
            if i == 1 {
                stream.repeat(1.5)
            } else {
                stream
            }
        })
        .collect()
}

/// Delivers `steps` batches of the current epoch (all when `None`),
/// checking each sample's id against its source and row; the (source, row)
/// picks and the state after them.
fn consume_mix(loader: &mut Loader, steps: Option<usize>) -> (Vec<(usize, u64)>, LoaderState) {
    let mut picks = Vec::new();
    for batch in loader.epoch().unwrap().take(steps.unwrap_or(usize::MAX)) {
        let batch = batch.unwrap();
        for ((id, &row), &s) in ids(&batch).into_iter().zip(&batch.rows).zip(&batch.sources) {
            assert_eq!(id, MIX_FIRST_ID[s as usize] + row, "source {s} row {row}");
            picks.push((s as usize, row));
        }
    }
    (picks, loader.state().clone())
}

#[test]
fn s3_two_sources_each_larger_than_the_cache_mix_through_it_and_resume_exactly() {
    let Some(moto) = Moto::start() else { return };
    let cache = tempfile::tempdir().unwrap();
    let (locations, totals, needed) = mix_sources(&moto, "mixstream");
    let options = CacheOptions::new(cache.path(), needed + 1024);
    assert!(options.cache_limit < *totals.iter().min().unwrap());
    let mut loader = Loader::mixed(
        open_streams(&locations, &options),
        MixConfig::default(),
        block_config(100, 1, 0),
    )
    .unwrap();
    let counts = loader.mix_counts();
    assert_eq!(counts, vec![12_000, 14_400]);
    let order = loader.mixed_order(0).unwrap();
    let expected: Vec<(usize, u64)> = (0..order.len()).map(|p| order.get(p)).collect();
    let probe = UsageProbe::start(cache.path());
    let (picks, state) = consume_mix(&mut loader, None);
    assert_eq!(state.epoch, 1);
    assert_eq!(picks, expected, "the mixed order, whole");
    // Exact counts per source; source 0's rows once, source 1's once or twice.
    for (s, rows) in [(0usize, 12_000u64), (1, 9_600)] {
        let mut seen = vec![0u32; rows as usize];
        picks
            .iter()
            .filter(|p| p.0 == s)
            .for_each(|p| seen[p.1 as usize] += 1);
        assert_eq!(seen.iter().map(|&n| u64::from(n)).sum::<u64>(), counts[s]);
        let most = if s == 0 { 1 } else { 2 };
        assert!(seen.iter().all(|&n| (1..=most).contains(&n)), "source {s}");
    }
    let peak = probe.peak();
    eprintln!(
        "mix: cache peak {peak} of limit {} (sources {totals:?})",
        options.cache_limit
    );
    assert!(peak <= options.cache_limit);

    // Resume mid-epoch 1 in a new process: its own sources, the state as JSON.
    let (head, state) = consume_mix(&mut loader, Some(97));
    assert_eq!(state.samples_consumed, 9_700);
    let json = serde_json::to_string(&state).unwrap();
    let expected = loader.mixed_order(1).unwrap();
    drop(loader);
    let state: LoaderState = serde_json::from_str(&json).unwrap();
    let mut resumed = Loader::resume_mixed(
        open_streams(&locations, &options),
        MixConfig::default(),
        block_config(100, 1, 0),
        state,
    )
    .unwrap();
    let (rest, after) = consume_mix(&mut resumed, None);
    assert_eq!(after.epoch, 2);
    let whole: Vec<(usize, u64)> = head.into_iter().chain(rest).collect();
    // 26,400 = 264 × 100: nothing dropped.
    assert_eq!(
        whole,
        (0..expected.len())
            .map(|p| expected.get(p))
            .collect::<Vec<_>>()
    );
}

#[test]
fn s3_a_cache_too_small_for_a_mix_of_streamed_sources_is_refused_naming_them() {
    let Some(moto) = Moto::start() else { return };
    let cache = tempfile::tempdir().unwrap();
    let (locations, _, needed) = mix_sources(&moto, "mixrefuse");
    // Each source alone fits; both together do not.
    let options = CacheOptions::new(cache.path(), needed - 1);
    let err = match Loader::mixed(
        open_streams(&locations, &options),
        MixConfig::default(),
        block_config(100, 1, 0),
    ) {
        Err(e) => e,
        Ok(_) => panic!("a cache of {} bytes was accepted", needed - 1),
    };
    assert!(
        matches!(err, Error::CacheTooSmall { needed: n, .. } if n == needed),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("at least {needed} bytes")),
        "{message}"
    );
    for i in 0..2 {
        assert!(
            message.contains(&format!("s3://mixrefuse{i}/ds")),
            "{message}"
        );
    }
    assert_eq!(cache_usage(cache.path()).unwrap(), 0, "nothing downloaded");
}
