//! `mosaicrs mix --plan`: the epoch, each source's samples per epoch and per
//! global batch, and how often its rows are seen.

use mosaicrs::format::Compression;
use mosaicrs::testing::write_dataset;

mod common;
use common::{mosaicrs, p, text};

#[test]
fn mix_plan_prints_counts_per_epoch_and_batch() {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<_> = [600, 300, 40]
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            let path = dir.path().join(format!("s{i}"));
            write_dataset(&path, n, 2, 64, Compression::None);
            path
        })
        .collect();
    let specs: Vec<String> = paths
        .iter()
        .zip(["0.6", "0.3", "0.1"])
        .map(|(path, w)| format!("{}#weight={w}", p(path)))
        .collect();
    let mut args = vec![
        "mix",
        "--plan",
        "--batch-size",
        "8",
        "--world-size",
        "2",
        "--json",
    ];
    args.extend(specs.iter().map(String::as_str));
    let run = mosaicrs(&args);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(plan["epoch_len"], 940);
    assert_eq!(plan["global_batch"], 16);
    assert_eq!(plan["whole_batches"], 58);
    let sources = plan["sources"].as_array().unwrap();
    let per_epoch: Vec<u64> = sources
        .iter()
        .map(|s| s["samples_per_epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(per_epoch, vec![564, 282, 94]);
    // 16 x 0.6 = 9.6, 16 x 0.3 = 4.8, 16 x 0.1 = 1.6 per global batch.
    let per_batch: Vec<(u64, u64)> = sources
        .iter()
        .map(|s| {
            (
                s["per_batch_min"].as_u64().unwrap(),
                s["per_batch_max"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(per_batch, vec![(9, 10), (4, 5), (1, 2)]);
    assert_eq!(sources[2]["times_seen"], 2.35);

    // Text, with repeat and choose.
    let specs = [
        format!("{}#choose=100", p(&paths[0])),
        format!("{}#repeat=0.5", p(&paths[1])),
        format!("{}#repeat=2.5", p(&paths[2])),
    ];
    let mut args = vec!["mix", "--plan", "--batch-size", "10"];
    args.extend(specs.iter().map(String::as_str));
    let run = mosaicrs(&args);
    let out = text(&run.stdout);
    assert!(run.status.success(), "{}", text(&run.stderr));
    assert!(out.contains("epoch        350 samples"), "{out}");
    assert!(out.contains("batches      35 of 10"), "{out}");
    assert!(out.contains("2.500x"), "{out}");

    // Errors name the source.
    let bad = format!("{}#weight=-1", p(&paths[0]));
    let run = mosaicrs(&["mix", "--plan", &bad, &specs[1]]);
    assert!(!run.status.success());
    assert!(
        text(&run.stderr).contains("mix source 0"),
        "{}",
        text(&run.stderr)
    );
}
