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
    for (path, bytes) in inputs("assemble") {
        let dir = tempfile::tempdir().unwrap();
        let rows = fuzz_targets::assemble(&bytes, dir.path());
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
    for target in ["index", "shard", "assemble"] {
        fs::create_dir_all(corpus(target)).unwrap();
    }
    for compression in [Compression::None, Compression::Zstd, Compression::Lz4] {
        let dir = tempfile::tempdir().unwrap();
        let schema = fuzz_targets::schema();
        let options = WriterOptions {
            max_batch_rows: 64,
            compression,
            ..Default::default()
        };
        let mut w =
            ShardWriter::create(dir.path(), schema.clone(), "seed", 0, 0, options).expect("writer");
        w.write(&seed_batch(300, 0)).unwrap();
        let shards = w.finish().unwrap();
        commit(dir.path(), &schema, "seed", shards, SaveMode::ErrorIfExists).unwrap();
        let index = Index::load(dir.path()).unwrap();
        let entry = &index.shards[0];
        let mut input = header(entry).to_vec();
        input.extend(fs::read(dir.path().join(&entry.path)).unwrap());
        let name = format!("seed-{compression}");
        fs::write(corpus("shard").join(&name), &input).unwrap();
        fs::write(corpus("assemble").join(&name), &input).unwrap();
        fs::copy(
            dir.path().join("index.json"),
            corpus("index").join(format!("{name}.json")),
        )
        .unwrap();
    }
}
