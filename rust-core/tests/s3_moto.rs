//! Datasets on a real S3-compatible server: moto in server mode, started on a
//! free port from the project's venv and stopped when the test ends
//! ([`mosaicrs::testing::moto`]).
//!
//! Without `.venv/bin/python` (or without moto in it) the tests print why and
//! pass without running, unless `MOSAICRS_REQUIRE_MOTO=1` (set by `make test`).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use arrow::array::{AsArray, Int64Array};
use arrow::datatypes::Int64Type;
use common::*;
use mosaicrs::format::{Index, ShardEntry};
use mosaicrs::reader::Dataset;
use mosaicrs::storage::{CacheOptions, Location};
use mosaicrs::testing::moto::Moto;
use mosaicrs::testing::{publish_at, racing_commit, write_at};
use mosaicrs::writer::{commit_at, SaveMode, WriterOptions};
use mosaicrs::Error;

fn ids(dataset: &Dataset) -> Vec<i64> {
    let mut out = Vec::new();
    for batch in dataset.batches() {
        let batch = batch.unwrap();
        out.extend(batch.column(0).as_primitive::<Int64Type>().values().iter());
        let xs = batch
            .column(1)
            .as_primitive::<arrow::datatypes::Float64Type>();
        let ids = batch.column(0).as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            assert_eq!(xs.value(i), ids.value(i) as f64 * 2.5);
        }
    }
    out
}

#[test]
fn s3_write_then_read_back_every_value_through_the_cache() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("data");
    let location = moto.location("s3://data/runs/train");
    assert!(!format!("{location:?}").contains("testing-secret"));
    // Small shards (several per write) and one batch large enough for a
    // multipart upload (> 8 MiB).
    let small = WriterOptions {
        max_shard_bytes: 16 << 10,
        max_batch_rows: Some(1000),
        ..Default::default()
    };
    let shards = write_at(
        &location,
        "w1",
        &[simple_batch(20_000, 0), simple_batch(700_000, 20_000)],
        WriterOptions {
            max_shard_bytes: 16 << 20,
            ..Default::default()
        },
    );
    assert!(shards.iter().any(|s| s.bytes > 8 << 20), "{shards:?}");
    let out = commit_at(
        &location,
        &simple_schema(),
        "w1",
        shards,
        SaveMode::ErrorIfExists,
        None,
    )
    .unwrap();
    assert_eq!(out.total_rows, 720_000);
    let more = write_at(&location, "w2", &[simple_batch(5_000, 720_000)], small);
    assert!(more.len() > 1);
    commit_at(
        &location,
        &simple_schema(),
        "w2",
        more,
        SaveMode::Append,
        None,
    )
    .unwrap();

    let cache = tempfile::tempdir().unwrap();
    let options = CacheOptions::new(cache.path(), 64 << 20);
    let dataset = Dataset::open_at(&location, &options).unwrap();
    assert_eq!(dataset.num_rows(), 725_000);
    assert_eq!(dataset.bytes_downloaded(), dataset.index().total_bytes);
    assert_eq!(ids(&dataset), (0..725_000).collect::<Vec<i64>>());
    drop(dataset);
    // A second open finds every shard in the cache.
    let again = Dataset::open_at(&location, &options).unwrap();
    assert_eq!(again.bytes_downloaded(), 0);
    assert_eq!(again.num_rows(), 725_000);
}

/// Commits a dataset of one 10,000-row shard, ids from `first_id`, at `location`.
fn publish_one_shard(location: &Location, first_id: i64) -> Vec<ShardEntry> {
    publish_at(
        location,
        "w1",
        &[simple_batch(10_000, first_id)],
        Default::default(),
        SaveMode::ErrorIfExists,
    )
}

#[test]
fn s3_cache_too_small_is_refused_up_front_naming_the_size() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("small");
    let location = moto.location("s3://small/ds");
    let shards = publish_one_shard(&location, 0);
    let total: u64 = shards.iter().map(|s| s.bytes).sum();
    let cache = tempfile::tempdir().unwrap();
    let err = Dataset::open_at(&location, &CacheOptions::new(cache.path(), total - 1))
        .err()
        .expect("refused");
    let msg = err.to_string();
    assert!(msg.contains(&format!("at least {total}")), "{msg}");
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

#[test]
fn s3_a_corrupt_object_is_never_used() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("rot");
    let location = moto.location("s3://rot/ds");
    let shards = publish_one_shard(&location, 0);
    let shard = shards[0].clone();
    // Replace the shard with another shard of the same size (bit rot on the
    // server, or a bad copy): same length, different bytes.
    let other = moto.location("s3://rot/other");
    let fake = publish_one_shard(&other, 1);
    assert_eq!(fake[0].bytes, shard.bytes);
    let cache_src = tempfile::tempdir().unwrap();
    let fake_ds = Dataset::open_at(&other, &CacheOptions::new(cache_src.path(), 1 << 30)).unwrap();
    let bytes = std::fs::read(fake_ds.path().join(&shard.path)).unwrap();
    let mut upload = location.as_remote().unwrap().create(&shard.path);
    upload.write_all(&bytes).unwrap();
    upload.finish().unwrap();

    let cache = tempfile::tempdir().unwrap();
    let mut options = CacheOptions::new(cache.path(), 1 << 30);
    options.attempts = 2;
    let err = Dataset::open_at(&location, &options)
        .err()
        .expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains(&shard.path) && msg.contains("s3://rot/ds"),
        "{msg}"
    );
    assert!(msg.contains("checksum"), "{msg}");
    let folder = mosaicrs::storage::dataset_folder(&options, "s3://rot/ds");
    assert_eq!(
        std::fs::read_dir(folder).unwrap().count(),
        0,
        "nothing cached"
    );
}

fn committed(location: &Location) -> Vec<(String, u64)> {
    let store = location.as_remote().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let ds = Dataset::open_at(location, &CacheOptions::new(cache.path(), 1 << 30)).unwrap();
    let index: &Index = ds.index();
    // Exactly the shards some version lists remain in the store (an
    // overwrite keeps the replaced ones for the older versions).
    let mut objects: Vec<String> = store.list().unwrap().into_iter().map(|o| o.0).collect();
    objects.sort();
    let mut expected = std::collections::BTreeSet::from(["index.json".to_string()]);
    for version in mosaicrs::history::log(location).unwrap() {
        let spec = mosaicrs::format::VersionSpec::Version(version.version);
        let listed = location.load_index_at(&spec).unwrap().shards;
        expected.extend(listed.into_iter().map(|s| s.path));
    }
    assert_eq!(objects, expected.into_iter().collect::<Vec<_>>());
    let mut out: Vec<(String, u64)> = index
        .shards
        .iter()
        .map(|s| (s.write_id.clone(), s.rows))
        .collect();
    out.sort();
    out
}

#[test]
fn s3_concurrent_appends_and_overwrites_lose_nothing() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("race");
    let pairs = 10;
    let (mut won, mut lost) = (0, 0);
    for i in 0..pairs {
        for overwrite in [false, true] {
            let location = moto.location(&format!("s3://race/ds-{i}-{overwrite}"));
            publish_at(
                &location,
                "w0",
                &[simple_batch(10, 0)],
                Default::default(),
                SaveMode::ErrorIfExists,
            );
            let barrier = Arc::new(Barrier::new(2));
            let second = if overwrite {
                SaveMode::Overwrite
            } else {
                SaveMode::Append
            };
            let (a, b) = std::thread::scope(|s| {
                let ha = s.spawn(|| {
                    racing_commit(
                        &location,
                        "wa",
                        &simple_batch(7, 1000),
                        SaveMode::Append,
                        &barrier,
                    )
                });
                let hb = s.spawn(|| {
                    racing_commit(&location, "wb", &simple_batch(5, 2000), second, &barrier)
                });
                (ha.join().unwrap(), hb.join().unwrap())
            });
            assert!(a.as_ref().is_ok_and(|o| o.committed), "{a:?}");
            let got = committed(&location);
            let set = |v: &[(&str, u64)]| {
                let mut v: Vec<(String, u64)> =
                    v.iter().map(|(w, r)| (w.to_string(), *r)).collect();
                v.sort();
                v
            };
            match (overwrite, b) {
                (false, Ok(_)) => assert_eq!(got, set(&[("w0", 10), ("wa", 7), ("wb", 5)])),
                (true, Ok(_)) => {
                    assert_eq!(got, set(&[("wa", 7), ("wb", 5)]));
                    won += 1;
                }
                (true, Err(Error::Conflict { .. })) => {
                    assert_eq!(got, set(&[("w0", 10), ("wa", 7)]));
                    lost += 1;
                }
                (_, Err(e)) => panic!("{e}"),
            }
        }
    }
    eprintln!("S3 append/overwrite: overwrite won {won}, lost {lost} (conflict)");
    let _ = Int64Array::from(vec![0i64]);
}

/// A loopback TCP proxy in front of moto that misbehaves on purpose, by a
/// fixed schedule over connections: forward, 503, drop, stall, corrupt.
/// Every forwarded request is sent with `Connection: close`, so each request
/// takes a new connection and meets the schedule.
struct FaultyProxy {
    port: u16,
    faults: Arc<std::sync::atomic::AtomicUsize>,
}

impl FaultyProxy {
    fn start(upstream: u16) -> FaultyProxy {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let faults = Arc::new(AtomicUsize::new(0));
        let counted = faults.clone();
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(client) = client else { continue };
                let faults = counted.clone();
                std::thread::spawn(move || {
                    let mode = n % 6;
                    if mode >= 2 {
                        faults.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = serve(client, upstream, mode);
                });
            }
        });
        FaultyProxy { port, faults }
    }
}

fn serve(mut client: TcpStream, upstream: u16, mode: usize) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut first = vec![0u8; 64 << 10];
    let n = client.read(&mut first)?;
    first.truncate(n);
    match mode {
        2 => {
            client.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
        3 => return Ok(()), // dropped without a reply
        4 => {
            std::thread::sleep(Duration::from_secs(3)); // a stall
            return Ok(());
        }
        _ => {}
    }
    let corrupt = mode == 5;
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    // Insert `Connection: close` after the request line.
    if let Some(eol) = first.windows(2).position(|w| w == b"\r\n") {
        first.splice(eol + 2..eol + 2, b"Connection: close\r\n".iter().copied());
    }
    server.write_all(&first)?;
    let mut to_server = server.try_clone()?;
    let mut from_client = client.try_clone()?;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_server);
    });
    // Upstream to client; in corrupt mode flip one body byte.
    let mut buf = vec![0u8; 64 << 10];
    let mut seen = Vec::new();
    let mut flipped = !corrupt;
    loop {
        let n = server.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if !flipped {
            let start = seen.len();
            seen.extend_from_slice(&buf[..n]);
            if let Some(head_end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                let target = head_end + 4 + 100;
                if target < seen.len() && target >= start {
                    buf[target - start] ^= 0x5a;
                    flipped = true;
                }
            }
        }
        client.write_all(&buf[..n])?;
    }
    Ok(())
}

#[test]
fn s3_faults_between_reader_and_server_never_lose_or_repeat_a_sample() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("faulty");
    let location = moto.location("s3://faulty/ds");
    let options = WriterOptions {
        max_shard_bytes: 32 << 10,
        max_batch_rows: Some(1000),
        ..Default::default()
    };
    let rows = 30_000;
    let shards = publish_at(
        &location,
        "w1",
        &[simple_batch(rows, 0)],
        options,
        SaveMode::ErrorIfExists,
    );
    assert!(shards.len() >= 10, "{}", shards.len());

    let proxy = FaultyProxy::start(moto.port());
    let mut through_proxy = moto.options();
    through_proxy.insert("aws_endpoint", format!("http://127.0.0.1:{}", proxy.port));
    let faulty = Location::parse("s3://faulty/ds", &through_proxy).unwrap();
    for epoch in 0..2 {
        let cache = tempfile::tempdir().unwrap();
        let mut cache_options = CacheOptions::new(cache.path(), 1 << 30);
        cache_options.stall_timeout = Duration::from_secs(1);
        cache_options.attempts = 8;
        let dataset = Dataset::open_at(&faulty, &cache_options).unwrap();
        dataset.verify().unwrap();
        assert_eq!(
            ids(&dataset),
            (0..rows as i64).collect::<Vec<i64>>(),
            "epoch {epoch}"
        );
    }
    let faults = proxy.faults.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("faults injected: {faults}");
    assert!(faults >= 10, "only {faults} faults were injected");
}

#[test]
fn s3_readers_sharing_a_cache_download_each_shard_once_and_pins_block_eviction() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("shared");
    let options = WriterOptions {
        max_shard_bytes: 64 << 10,
        max_batch_rows: Some(2000),
        ..Default::default()
    };
    let a = moto.location("s3://shared/a");
    let b = moto.location("s3://shared/b");
    for (location, start) in [(&a, 0), (&b, 1_000_000)] {
        publish_at(
            location,
            "w1",
            &[simple_batch(20_000, start)],
            options,
            SaveMode::ErrorIfExists,
        );
    }
    let size = a.load_index().unwrap().total_bytes;
    let cache = tempfile::tempdir().unwrap();
    // Room for one dataset and a half.
    let cache_options = CacheOptions::new(cache.path(), size + size / 2);

    // Four readers (separate descriptors, as separate processes would have)
    // open the same dataset at once: the shards are downloaded once in all.
    let downloaded: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| Dataset::open_at(&a, &cache_options).unwrap()))
            .collect();
        let opened: Vec<Dataset> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        for d in &opened {
            assert_eq!(ids(d), (0..20_000).collect::<Vec<i64>>());
        }
        opened.iter().map(Dataset::bytes_downloaded).sum()
    });
    assert_eq!(downloaded, size);

    // While a reader holds `a`, its shards are pinned: `b` does not fit.
    let held = Dataset::open_at(&a, &cache_options).unwrap();
    let err = Dataset::open_at(&b, &cache_options).err().expect("no room");
    assert!(err.to_string().contains("raise cache_limit"), "{err}");
    assert_eq!(
        ids(&held).len(),
        20_000,
        "the pinned shards are still readable"
    );
    drop(held);
    // Released: `a` is evicted (least recently used) to make room for `b`.
    let opened_b = Dataset::open_at(&b, &cache_options).unwrap();
    assert_eq!(opened_b.bytes_downloaded(), size);
    assert!(mosaicrs::storage::cache_usage(cache.path()).unwrap() <= cache_options.cache_limit);
}
