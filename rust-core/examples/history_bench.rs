//! What the commit history costs: object-store requests per commit, and the
//! time to open the head of a dataset with many versions.
//!
//! 1. Requests: commits to the S3 test server (moto) through a counting
//!    proxy (one request per connection: the client keeps no idle
//!    connections), each request printed by method and object.
//! 2. Open: commits VERSIONS one-row overwrites to a local dataset (a vacuum
//!    keeping 100 versions every 1,000 commits bounds the disk), then times
//!    reading the head (`Location::load_index`) and `Dataset::open`, against
//!    the same on a dataset with one version and the same shard, measured in
//!    this process.
//!
//! ```text
//! cargo run --release -p mosaicrs --example history_bench -- 10000
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mosaicrs::format::VersionSpec;
use mosaicrs::history::{self, Retention};
use mosaicrs::reader::Dataset;
use mosaicrs::storage::{Location, StorageOptions};
use mosaicrs::testing::moto::Moto;
use mosaicrs::testing::{simple_batch, write_at};
use mosaicrs::writer::{commit_at_with, CommitOptions, SaveMode};

/// Forwards connections to `upstream`, recording each request line.
fn counting_proxy(upstream: u16) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let seen = log.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let seen = seen.clone();
            std::thread::spawn(move || relay(client, upstream, &seen));
        }
    });
    (port, log)
}

fn relay(mut client: TcpStream, upstream: u16, seen: &Mutex<Vec<String>>) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let mut first = [0u8; 512];
    let Ok(n) = client.read(&mut first) else {
        return;
    };
    let line = String::from_utf8_lossy(&first[..n]);
    if let Some(request) = line.lines().next() {
        seen.lock().unwrap().push(request.to_string());
    }
    if server.write_all(&first[..n]).is_err() {
        return;
    }
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}

/// `GET index.json`, `PUT _versions/…` … from a request line.
fn describe(request: &str, dataset: &str) -> String {
    let mut parts = request.split_whitespace();
    let method = parts.next().unwrap_or("?");
    let target = parts.next().unwrap_or("?");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let object = path.split_once(dataset).map_or(path, |(_, rest)| rest);
    let object = object.trim_start_matches('/');
    let object = if object.starts_with("part-") {
        "<shard>"
    } else if object.starts_with("_versions/") {
        "_versions/<N>.json"
    } else {
        object
    };
    if query.contains("list-type") {
        format!("{method} (list)")
    } else {
        format!("{method} {object}")
    }
}

fn commit_one(location: &Location, id: &str, mode: SaveMode) -> u64 {
    let batch = simple_batch(1, 0);
    let shards = write_at(
        location,
        id,
        std::slice::from_ref(&batch),
        Default::default(),
    );
    let out = commit_at_with(
        location,
        &batch.schema(),
        id,
        shards,
        mode,
        None,
        &CommitOptions::default(),
    )
    .unwrap();
    out.version.unwrap()
}

fn requests_per_commit() {
    let Some(moto) = Moto::start() else {
        println!("requests per commit: skipped (no moto in .venv)");
        return;
    };
    moto.create_bucket("bench");
    let (port, log) = counting_proxy(moto.port());
    let mut options: StorageOptions = moto
        .assignments()
        .iter()
        .map(|a| a.split_once('=').unwrap())
        .collect();
    options.insert("aws_endpoint", format!("http://127.0.0.1:{port}"));
    options.insert("pool_max_idle_per_host", "0");
    let location = Location::parse("s3://bench/ds", &options).unwrap();
    commit_one(&location, "w0", SaveMode::ErrorIfExists);
    println!("requests per commit (S3 test server, one 1-row shard each):");
    for (i, mode) in [SaveMode::Append, SaveMode::Append, SaveMode::Overwrite]
        .into_iter()
        .enumerate()
    {
        let id = format!("w{}", i + 1);
        let batch = simple_batch(1, 0);
        let shards = write_at(
            &location,
            &id,
            std::slice::from_ref(&batch),
            Default::default(),
        );
        log.lock().unwrap().clear();
        let version = commit_at_with(
            &location,
            &batch.schema(),
            &id,
            shards,
            mode,
            None,
            &CommitOptions::default(),
        )
        .unwrap()
        .version
        .unwrap();
        let requests = std::mem::take(&mut *log.lock().unwrap());
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        for r in &requests {
            *kinds.entry(describe(r, "/ds")).or_default() += 1;
        }
        let history_only = kinds.get("PUT _versions/<N>.json").copied().unwrap_or(0);
        println!(
            "  {mode:?} -> version {version}: {} requests, {} of them the version record \
             (without history: {}); {kinds:?}",
            requests.len(),
            history_only,
            requests.len() - history_only
        );
    }
    log.lock().unwrap().clear();
    let started = Instant::now();
    let head = location.load_index_at(&VersionSpec::Latest).unwrap();
    let open_requests = log.lock().unwrap().len();
    println!(
        "  open the head (version {}): {open_requests} request(s), {:.1} ms",
        head.version,
        started.elapsed().as_secs_f64() * 1e3
    );
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn open_head(versions: u64) {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::local(dir.path());
    let started = Instant::now();
    commit_one(&location, "w0", SaveMode::ErrorIfExists);
    let keep = Retention {
        versions: Some(100),
        hours: None,
        grace: Duration::ZERO,
    };
    for i in 1..versions {
        commit_one(&location, &format!("w{i}"), SaveMode::Overwrite);
        if i % 1000 == 0 {
            history::vacuum(&location, &keep, false).unwrap();
        }
    }
    let build = started.elapsed();
    let one = tempfile::tempdir().unwrap();
    let one_location = Location::local(one.path());
    commit_one(&one_location, "w0", SaveMode::ErrorIfExists);

    let head_bytes = std::fs::metadata(dir.path().join("index.json"))
        .unwrap()
        .len();
    let one_bytes = std::fs::metadata(one.path().join("index.json"))
        .unwrap()
        .len();
    let head = location.load_index().unwrap();
    assert_eq!(head.version, versions - 1);
    let many_index = median(21, || {
        location.load_index().unwrap();
    });
    let one_index = median(21, || {
        one_location.load_index().unwrap();
    });
    let many_open = median(21, || {
        Dataset::open(dir.path()).unwrap();
    });
    let one_open = median(21, || {
        Dataset::open(one.path()).unwrap();
    });
    let old = median(21, || {
        location
            .load_index_at(&VersionSpec::Version(versions - 50))
            .unwrap();
    });
    println!(
        "open the head of {versions} versions (built in {:.1} s: {:.2} ms a commit); \
         head index {head_bytes} bytes ({} write records), one-version index {one_bytes} bytes:",
        build.as_secs_f64(),
        build.as_secs_f64() * 1e3 / versions as f64,
        head.writes.len()
    );
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  read the head index: {:.3} ms vs {:.3} ms with one version ({:.1}x)",
        ms(many_index),
        ms(one_index),
        ms(many_index) / ms(one_index)
    );
    println!(
        "  Dataset::open:       {:.3} ms vs {:.3} ms with one version ({:.1}x)",
        ms(many_open),
        ms(one_open),
        ms(many_open) / ms(one_open)
    );
    println!(
        "  read version {} (a record): {:.3} ms",
        versions - 50,
        ms(old)
    );
}

fn main() {
    let versions: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("VERSIONS"))
        .unwrap_or(10_000);
    requests_per_commit();
    open_head(versions.max(100));
}
