//! `mosaicrs-format-bench --dir` deletes nothing it did not create.

use std::fs;
use std::process::{Command, Output};

/// A small run of the bench writing into `dir`.
fn bench_into(dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mosaicrs-format-bench"))
        .args(["--rows", "1000", "--random-reads", "10", "--dir"])
        .arg(dir)
        .output()
        .expect("run mosaicrs-format-bench")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bench_dir_refuses_a_folder_it_did_not_fill() {
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("thesis.tex");
    fs::write(&keep, b"precious").unwrap();
    let out = bench_into(dir.path());
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("thesis.tex"));
    assert_eq!(fs::read(&keep).unwrap(), b"precious");
    // Its own earlier output is replaced.
    let own = dir.path().join("bench-out");
    for _ in 0..2 {
        let out = bench_into(&own);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    // Its version records are its own too, but not a stranger among them.
    let stranger = own.join("_versions").join("notes.txt");
    fs::write(&stranger, b"mine").unwrap();
    let out = bench_into(&own);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("_versions"));
    assert_eq!(fs::read(&stranger).unwrap(), b"mine");
}
