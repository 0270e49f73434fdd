//! Replays the fuzz corpus kept in the repository (`fuzz/corpus/<target>`:
//! real small datasets, and the crashers and interesting inputs that fuzzing
//! and the mutation run found) through the same entry points as the fuzz
//! targets, on stable Rust. A panic fails the test.
//!
//! `cargo test -p mosaicrs --test fuzz_corpus -- --ignored write_seeds`
//! regenerates the seeds.

use std::fs;
use std::path::{Path, PathBuf};

use mosaicrs::format::{Compression, Index};
use mosaicrs::fuzz_targets::{self, header, seed_batch};
use mosaicrs::writer::{commit, SaveMode, ShardWriter, WriterOptions};

fn corpus(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = fs::read_dir(corpus(target))
        .unwrap_or_else(|e| panic!("{}: {e}", corpus(target).display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn index_corpus_replays() {
    let inputs = inputs("index");
    assert!(inputs.len() >= 3);
    for (path, bytes) in &inputs {
        let accepted = fuzz_targets::index(bytes);
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            assert!(accepted, "{} is a real index", path.display());
        }
    }
}

#[test]
fn shard_corpus_replays() {
    let inputs = inputs("shard");
    assert!(inputs.len() >= 3);
    for (path, bytes) in &inputs {
        let rows = fuzz_targets::shard(bytes);
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            assert_eq!(rows, Some(300), "{}", path.display());
        }
    }
}

#[test]
fn assemble_corpus_replays() {
    let inputs = inputs("assemble");
    assert!(inputs.len() >= 3);
    for (path, bytes) in inputs {
        let rows = fuzz_targets::assemble(&bytes);
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            // Under the error policy every batch of 7 holds a null somewhere
            // (nulls every 3 to 8 rows), so only the fill policy converts.
            let fill = bytes[0] & 4 != 0;
            assert_eq!(rows, Some(if fill { 300 } else { 0 }), "{}", path.display());
        }
    }
}

#[test]
fn loader_corpus_replays() {
    for (path, bytes) in inputs("loader") {
        let dir = tempfile::tempdir().unwrap();
        let rows = fuzz_targets::loader(&bytes, dir.path());
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-")
        {
            // 300 rows in batches of 7: 42 full batches, the tail dropped.
            assert_eq!(rows, Some(294), "{}", path.display());
        }
    }
}

#[test]
#[ignore = "regenerates fuzz/corpus seeds"]
fn write_seeds() {
    for target in ["index", "shard", "assemble", "loader"] {
        fs::create_dir_all(corpus(target)).unwrap();
    }
    for compression in [Compression::None, Compression::Zstd, Compression::Lz4] {
        let name = format!("seed-{compression}");
        let dir = tempfile::tempdir().unwrap();
        let (input, index) = seed_input(dir.path(), fuzz_targets::schema(), compression, |n| {
            seed_batch(n, 0)
        });
        fs::write(corpus("shard").join(&name), &input).unwrap();
        fs::write(corpus("loader").join(&name), &input).unwrap();
        fs::write(corpus("index").join(format!("{name}.json")), index).unwrap();
        // The assemble seeds: one under each null policy (bit 2 of the
        // header's first byte).
        let dir = tempfile::tempdir().unwrap();
        let (mut input, _) = seed_input(
            dir.path(),
            fuzz_targets::tensor_schema(),
            compression,
            |n| fuzz_targets::tensor_seed_batch(n, 0),
        );
        fs::write(corpus("assemble").join(&name), &input).unwrap();
        input[0] += 3; // same compression (the byte is taken mod 3), fill policy
        fs::write(corpus("assemble").join(format!("{name}-fill")), &input).unwrap();
    }
}

/// Writes 300 rows of `batch(n)` as a one-shard dataset under `dir`; returns
/// the shard input (header and shard bytes) and the index bytes.
fn seed_input(
    dir: &Path,
    schema: arrow::datatypes::SchemaRef,
    compression: Compression,
    batch: impl Fn(usize) -> arrow::record_batch::RecordBatch,
) -> (Vec<u8>, Vec<u8>) {
    let options = WriterOptions {
        max_batch_rows: Some(64),
        compression,
        ..Default::default()
    };
    let mut w = ShardWriter::create(dir, schema.clone(), "seed", 0, 0, options).expect("writer");
    w.write(&batch(300)).unwrap();
    let shards = w.finish().unwrap();
    commit(dir, &schema, "seed", shards, SaveMode::ErrorIfExists).unwrap();
    let index = Index::load(dir).unwrap();
    let entry = &index.shards[0];
    let mut input = header(entry).to_vec();
    input.extend(fs::read(dir.join(&entry.path)).unwrap());
    (input, fs::read(dir.join("index.json")).unwrap())
}

/// A stable, in-process mutation loop over the corpus through the fuzz
/// entry points, for machines without nightly: `FUZZ_EXECS` executions
/// (default 20,000) per target (or only `FUZZ_TARGET`), seeded by `FUZZ_SEED`. A panic counts even
/// when the library catches it (a panic hook counts every one).
#[test]
#[ignore = "long; run with --ignored"]
fn mutate_corpus_in_process() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    std::panic::set_hook(Box::new(|info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        eprintln!("PANIC: {info}");
    }));
    let execs: usize = std::env::var("FUZZ_EXECS").map_or(20_000, |v| v.parse().unwrap());
    let mut state: u64 = std::env::var("FUZZ_SEED").map_or(1, |v| v.parse().unwrap());
    let mut next = move || {
        // SplitMix64: a small, seedable generator.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let dir = tempfile::tempdir().unwrap();
    let only = std::env::var("FUZZ_TARGET").ok();
    for target in ["index", "shard", "assemble", "loader"] {
        if only.as_deref().is_some_and(|o| o != target) {
            continue;
        }
        let seeds: Vec<Vec<u8>> = inputs(target).into_iter().map(|(_, b)| b).collect();
        let started = std::time::Instant::now();
        let mut accepted = 0usize;
        for _ in 0..execs {
            let mut data = seeds[(next() % seeds.len() as u64) as usize].clone();
            for _ in 0..1 + next() % 4 {
                if data.is_empty() {
                    break;
                }
                let at = (next() % data.len() as u64) as usize;
                match next() % 5 {
                    0 => data[at] ^= 1 << (next() % 8),
                    1 => data[at] = next() as u8,
                    2 => {
                        let hostile = [-1i64, -64, 0, 1 << 31, 1 << 40, i64::MAX];
                        let v = hostile[(next() % hostile.len() as u64) as usize];
                        let at = at - at % 4;
                        let width = if next() % 2 == 0 { 4 } else { 8 };
                        let bytes = v.to_le_bytes();
                        let k = width.min(data.len() - at);
                        data[at..at + k].copy_from_slice(&bytes[..k]);
                    }
                    3 => {
                        let end = (at + 1 + (next() % 64) as usize).min(data.len());
                        data.drain(at..end);
                    }
                    _ => data.truncate(at),
                }
            }
            let ok = match target {
                "index" => fuzz_targets::index(&data),
                "shard" => fuzz_targets::shard(&data).is_some(),
                "assemble" => fuzz_targets::assemble(&data).is_some(),
                _ => fuzz_targets::loader(&data, dir.path()).is_some(),
            };
            accepted += usize::from(ok);
        }
        println!(
            "{target}: {execs} executions in {:.1} s, {accepted} accepted, {} panics so far",
            started.elapsed().as_secs_f64(),
            PANICS.load(Ordering::SeqCst)
        );
    }
    let _ = std::panic::take_hook();
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "panics while mutating the corpus"
    );
}
