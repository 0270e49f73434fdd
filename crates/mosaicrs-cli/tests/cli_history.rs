//! `mosaicrs log`, `diff`, `restore`, `vacuum --retain-versions` and
//! `--version` / `--as-of` on a real history: create, append, overwrite.

use std::fs;
use std::path::Path;

use serde_json::Value;

mod common;
use common::{mosaicrs, p, text};

fn ok(args: &[&str]) -> String {
    let out = mosaicrs(args);
    assert!(
        out.status.success(),
        "mosaicrs {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn csv(dir: &Path, name: &str, ids: std::ops::Range<i64>) -> String {
    let path = dir.join(name);
    let mut body = String::from("id,x\n");
    for i in ids {
        body.push_str(&format!("{i},{}\n", i as f64 * 0.5));
    }
    fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn log_diff_restore_and_vacuum_a_history() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = p(&data);
    let first = csv(tmp.path(), "a.csv", 0..10);
    let more = csv(tmp.path(), "b.csv", 10..14);
    let other = csv(tmp.path(), "c.csv", 100..103);
    ok(&["convert", &first, data, "--quiet"]);
    ok(&[
        "convert",
        &more,
        data,
        "--mode",
        "append",
        "--metadata",
        "run=nightly",
        "--quiet",
    ]);
    ok(&["convert", &other, data, "--mode", "overwrite", "--quiet"]);

    // Newest first, with what each commit did and who made it.
    let log: Value = serde_json::from_str(&ok(&["log", data, "--json"])).unwrap();
    let log = log.as_array().unwrap();
    let seen: Vec<(u64, &str, u64, u64, u64)> = log
        .iter()
        .map(|v| {
            let c = &v["commit"];
            (
                v["version"].as_u64().unwrap(),
                c["operation"].as_str().unwrap(),
                c["rows_added"].as_u64().unwrap(),
                c["rows_removed"].as_u64().unwrap(),
                v["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (2, "overwrite", 3, 14, 3),
            (1, "append", 4, 0, 14),
            (0, "create", 10, 0, 10)
        ]
    );
    assert_eq!(log[1]["commit"]["metadata"]["run"], "nightly");
    assert_eq!(log[0]["commit"]["writer"]["engine"], "cli");
    let table = ok(&["log", data]);
    assert!(table.contains("metadata: run=nightly"), "{table}");
    assert!(table.contains("engine=cli"), "{table}");

    // Any kept version reads: by number and by time.
    assert!(ok(&["head", data, "--version", "0", "-n", "100"]).contains("(10 of 10 rows)"));
    assert!(ok(&["head", data]).contains("(3 of 3 rows)"));
    let appended_at = log[1]["commit"]["committed_at"].as_str().unwrap();
    let inspected: Value =
        serde_json::from_str(&ok(&["inspect", data, "--as-of", appended_at, "--json"])).unwrap();
    assert_eq!(
        (inspected["version"].as_u64(), inspected["rows"].as_u64()),
        (Some(1), Some(14))
    );
    assert!(ok(&["validate", data, "--version", "1"]).contains("(version 1): 2 shards, 14 rows"));
    // The shards older versions list are part of the dataset, not leftovers.
    let head = ok(&["validate", data]);
    assert!(!head.contains("UNLISTED"), "{head}");

    let diff = ok(&["diff", data, "0", "1"]);
    assert!(diff.contains("rows         +4 -0"), "{diff}");
    assert!(diff.contains("shards       +1 -0"), "{diff}");

    // Restore: a new commit holding version 0's rows.
    let restored = ok(&["restore", data, "0"]);
    assert!(
        restored.contains("restored version 0 as version 3 (10 rows)"),
        "{restored}"
    );
    let log: Value = serde_json::from_str(&ok(&["log", data, "--json", "-n", "1"])).unwrap();
    assert_eq!(log[0]["commit"]["operation"], "restore");
    assert_eq!(log[0]["commit"]["restored_from"], 0);
    assert!(ok(&["head", data, "-n", "100"]).contains("(10 of 10 rows)"));

    // Keep the newest two versions (3, and 2): version 1 goes, with the shard
    // only it listed; version 0's shard stays (version 3 lists it).
    let vacuum = [
        "vacuum",
        data,
        "--retain-versions",
        "2",
        "--grace-hours",
        "0",
    ];
    let dry = ok(&vacuum);
    assert!(dry.contains("would delete version 1"), "{dry}");
    assert!(dry.contains("dry run"), "{dry}");
    ok(&["head", data, "--version", "1"]);
    let done = ok(&[&vacuum[..], &["--delete"]].concat());
    assert!(done.contains("deleted version 1"), "{done}");
    let gone = mosaicrs(&["head", data, "--version", "1"]);
    assert_eq!(gone.status.code(), Some(2));
    let message = text(&gone.stderr);
    assert!(
        message.contains("version 1") && message.contains("oldest kept version is 2"),
        "{message}"
    );
    assert!(ok(&["head", data, "--version", "2"]).contains("(3 of 3 rows)"));
    assert!(ok(&["validate", data]).contains("OK"));
    let kept: Value = serde_json::from_str(&ok(&["log", data, "--json"])).unwrap();
    let versions: Vec<u64> = kept
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2]);
}

#[test]
fn bad_version_options_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let first = csv(tmp.path(), "a.csv", 0..3);
    ok(&["convert", &first, p(&data), "--quiet"]);
    let out = mosaicrs(&["inspect", p(&data), "--as-of", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--as-of \"yesterday\" is not a timestamp"));
    let out = mosaicrs(&["head", p(&data), "--version", "7"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("version 7"),
        "{}",
        text(&out.stderr)
    );
    let out = mosaicrs(&["vacuum", p(&data), "--retain-versions", "0"]);
    assert!(text(&out.stderr).contains("--retain-versions must be at least 1"));
    let out = mosaicrs(&[
        "inspect",
        p(&data),
        "--version",
        "0",
        "--as-of",
        "2026-01-01",
    ]);
    assert_eq!(out.status.code(), Some(2), "clap refuses both");
}
