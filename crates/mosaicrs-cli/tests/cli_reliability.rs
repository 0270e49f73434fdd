//! The `mosaicrs` command on damaged, hostile or unusual input: every type
//! prints, errors are said once, nothing is deleted that the command did not
//! create, and nothing is left behind when a write fails.

use std::fs;
use std::process::Command;

use mosaicrs::format::Index;
use mosaicrs::testing::{all_types_batch, files_in, simple_batch, write_batches};
use mosaicrs::writer::WriterOptions;

mod common;
use common::{mosaicrs, p, text};

#[test]
fn head_prints_every_type_the_writer_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let batch = all_types_batch(50, 0);
    write_batches(
        dir.path(),
        std::slice::from_ref(&batch),
        WriterOptions::default(),
    )
    .unwrap();
    let out = mosaicrs(&["head", p(dir.path()), "-n", "8"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for field in batch.schema().fields() {
        assert!(
            stdout.contains(field.name().as_str()),
            "{} missing",
            field.name()
        );
    }
    // Timestamp(us, "UTC"), the type Spark writes for `timestamp`.
    assert!(stdout.contains("2020-09-13T12:26:40"), "{stdout}");
    assert!(stdout.contains("(8 of 50 rows)"), "{stdout}");
}

#[test]
fn head_streams_and_projects_whatever_n_is() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<_> = (0..3).map(|i| simple_batch(1500, i * 1500)).collect();
    write_batches(dir.path(), &batches, WriterOptions::default()).unwrap();
    let out = mosaicrs(&["head", p(dir.path()), "-n", "19000000", "--columns", "x"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("(4500 of 4500 rows)"));
    assert!(!stdout.contains("| id"), "projected to x only");
    // The last row is printed: 4499 * 2.5.
    assert!(
        stdout.contains("11247.5"),
        "{}",
        &stdout[stdout.len() - 300..]
    );
}

#[test]
fn errors_are_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("index.json")).unwrap();
    let out = mosaicrs(&["head", p(dir.path())]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("index.json"), "{stderr}");
    assert_eq!(stderr.matches("directory").count(), 1, "{stderr}");
}

#[test]
fn verify_refuses_bit_rot_that_plain_head_reads() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(
        dir.path(),
        &[simple_batch(3000, 0)],
        WriterOptions::default(),
    )
    .unwrap();
    let shard = dir
        .path()
        .join(&Index::load(dir.path()).unwrap().shards[0].path);
    let mut bytes = fs::read(&shard).unwrap();
    bytes[5000] ^= 1;
    fs::write(&shard, bytes).unwrap();
    assert!(mosaicrs(&["head", p(dir.path())]).status.success());
    let out = mosaicrs(&["head", "--verify", p(dir.path())]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("checksum mismatch"));
}

#[test]
fn validate_reports_unlisted_files() {
    let dir = tempfile::tempdir().unwrap();
    write_batches(
        dir.path(),
        &[simple_batch(100, 0)],
        WriterOptions::default(),
    )
    .unwrap();
    fs::write(
        dir.path().join("part-dead-00000-0-0000.arrow"),
        vec![1u8; 777],
    )
    .unwrap();
    let out = mosaicrs(&["validate", p(dir.path())]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(
        stdout.contains("UNLISTED") && stdout.contains("777 bytes"),
        "{stdout}"
    );
}

#[test]
fn header_only_csv_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("empty.csv");
    fs::write(&csv, "a,b,c\n").unwrap();
    let out_dir = dir.path().join("out");
    let out = mosaicrs(&["convert", p(&csv), p(&out_dir), "--quiet"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("no rows") && stderr.contains("\"a\""),
        "{stderr}"
    );
    let left = fs::read_dir(&out_dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0);
}

/// Runs `convert --mode append` into `dataset` with a file size limit: on a
/// small tmpfs where this process may mount one, else under RLIMIT_FSIZE
/// (`ulimit -f`, SIGXFSZ ignored so writes fail with EFBIG).
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_leaves_the_old_dataset_and_no_files() {
    let scratch = tempfile::tempdir().unwrap();
    let csv = scratch.path().join("big.csv");
    let mut body = String::from("id,x\n");
    for i in 0..200_000 {
        body.push_str(&format!("{i},{}.5\n", i * 3));
    }
    fs::write(&csv, body).unwrap();
    let small = scratch.path().join("small.csv");
    fs::write(&small, "id,x\n1,2.5\n2,3.5\n").unwrap();

    let mount = scratch.path().join("disk");
    fs::create_dir(&mount).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs", p(&mount)])
        .output()
        .is_ok_and(|o| o.status.success());
    /// Unmounts the tmpfs however the test ends.
    struct Unmount(Option<std::path::PathBuf>);
    impl Drop for Unmount {
        fn drop(&mut self) {
            if let Some(m) = &self.0 {
                let _ = Command::new("umount").arg(m).status();
            }
        }
    }
    let _unmount = Unmount(mounted.then(|| mount.clone()));
    let dataset = mount.join("ds");
    let made = mosaicrs(&["convert", p(&small), p(&dataset), "--quiet"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let before = fs::read(dataset.join("index.json")).unwrap();

    let bin = env!("CARGO_BIN_EXE_mosaicrs");
    let limit = if mounted {
        String::new()
    } else {
        "ulimit -f 512; trap '' XFSZ;".to_string()
    };
    let script = format!(
        "{limit} exec '{bin}' convert '{}' '{}' --mode append --shard-size 256k --quiet",
        p(&csv),
        p(&dataset)
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    let stderr = text(&out.stderr);
    let files = files_in(&dataset);
    let after = fs::read(dataset.join("index.json")).unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "a clear error, not a signal: {stderr}"
    );
    assert!(
        stderr.contains("No space") || stderr.contains("too large"),
        "{stderr}"
    );
    assert_eq!(before, after, "the previous dataset is intact");
    assert_eq!(
        files.len(),
        2,
        "only index.json and the first shard: {files:?}"
    );
}
