//! Untrusted bytes: every check that docs/FORMAT.md promises, crafted
//! footers and buffers, files that are not what they claim, both read paths.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use mosaicrs::format::{Checksum, Compression, Index, ShardEntry, FORMAT_VERSION};
use mosaicrs::reader::{validate, Access, Dataset, ReadOptions};
use mosaicrs::writer::WriterOptions;
use mosaicrs::Error;

fn options(compression: Compression) -> WriterOptions {
    WriterOptions {
        max_batch_rows: Some(500),
        compression,
        ..Default::default()
    }
}

/// One shard of 2,000 all-types rows in 4 record batches.
fn dataset(dir: &Path, compression: Compression) -> ShardEntry {
    write_dataset(dir, &[all_types_batch(2000, 0)], options(compression));
    Index::load(dir).unwrap().shards[0].clone()
}

fn open_err(dir: &Path, options: &ReadOptions) -> Error {
    match Dataset::open_with(dir, options) {
        Ok(_) => panic!("opening {} should fail", dir.display()),
        Err(e) => e,
    }
}

/// Rewrites the index with `edit` applied, keeping it otherwise valid JSON.
fn edit_index(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("index.json");
    let mut json: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    edit(&mut json);
    fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
}

/// Replaces the shard's bytes and records their true checksum in the index,
/// so that only the structural checks can catch what was changed.
fn replace_shard(dir: &Path, entry: &ShardEntry, bytes: &[u8]) {
    fs::write(dir.join(&entry.path), bytes).unwrap();
    let checksum = Checksum::of(bytes).to_string();
    edit_index(dir, |j| j["shards"][0]["checksum"] = checksum.into());
}

fn invalid_index_reason(dir: &Path) -> String {
    match Index::load(dir) {
        Err(Error::InvalidIndex { path, reason }) => {
            assert!(path.ends_with("index.json"), "{}", path.display());
            reason
        }
        other => panic!("expected an invalid index, got {other:?}"),
    }
}

// --- One test per row of the index table in docs/FORMAT.md ---

#[test]
fn format_field_must_be_mosaicrs() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), Compression::None);
    edit_index(dir.path(), |j| j["format"] = "parquet".into());
    assert!(invalid_index_reason(dir.path()).contains("\"format\""));
}

#[test]
fn newer_format_version_is_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), Compression::None);
    edit_index(dir.path(), |j| j["format_version"] = 7.into());
    let err = Index::load(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::UnsupportedVersion {
                found: 7,
                supported: FORMAT_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn wrongly_typed_format_version_is_not_called_invalid_json() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), Compression::None);
    edit_index(dir.path(), |j| j["format_version"] = "1".into());
    let reason = invalid_index_reason(dir.path());
    assert!(reason.contains("format_version"), "{reason}");
    assert!(!reason.contains("JSON"), "{reason}");
}

#[test]
fn undecodable_schema_names_the_index() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), Compression::None);
    edit_index(dir.path(), |j| j["schema"] = "AAAA////".into());
    let reason = invalid_index_reason(dir.path());
    assert!(reason.contains("schema"), "{reason}");
}

#[test]
fn total_rows_and_total_bytes_must_be_the_sums() {
    for field in ["total_rows", "total_bytes"] {
        let dir = tempfile::tempdir().unwrap();
        dataset(dir.path(), Compression::None);
        edit_index(dir.path(), |j| {
            j[field] = (j[field].as_u64().unwrap() + 1).into();
        });
        let reason = invalid_index_reason(dir.path());
        assert!(reason.contains(field), "{reason}");
        let err = validate(dir.path()).unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn shard_path_must_be_a_plain_name_listed_once() {
    for bad in ["../x.arrow", "sub/x.arrow", ".hidden.arrow", ""] {
        let dir = tempfile::tempdir().unwrap();
        dataset(dir.path(), Compression::None);
        edit_index(dir.path(), |j| j["shards"][0]["path"] = bad.into());
        assert!(invalid_index_reason(dir.path()).contains("plain file name"));
    }
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), Compression::None);
    edit_index(dir.path(), |j| {
        let first = j["shards"][0].clone();
        j["shards"].as_array_mut().unwrap().push(first);
        for f in ["total_rows", "total_bytes"] {
            j[f] = (j[f].as_u64().unwrap() * 2).into();
        }
    });
    assert!(invalid_index_reason(dir.path()).contains("listed twice"));
}

#[test]
fn shard_rows_bytes_and_batches_must_match_the_file() {
    for (field, words) in [
        ("rows", "rows"),
        ("bytes", "bytes"),
        ("batches", "record batches"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let entry = dataset(dir.path(), Compression::None);
        edit_index(dir.path(), |j| {
            let v = j["shards"][0][field].as_u64().unwrap() + 1;
            j["shards"][0][field] = v.into();
            if field != "batches" {
                let total = format!("total_{field}");
                j[&total] = (j[&total].as_u64().unwrap() + 1).into();
            }
        });
        let err = open_err(dir.path(), &ReadOptions::default());
        assert!(
            matches!(err, Error::CorruptShard { .. }),
            "{field}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&entry.path) && text.contains(words), "{text}");
        let report = validate(dir.path()).unwrap();
        assert_eq!(report.problems.len(), 1, "{field}");
    }
}

#[test]
fn checksum_is_verified_when_asked_and_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    let entry = dataset(dir.path(), Compression::None);
    let path = dir.path().join(&entry.path);
    let mut bytes = fs::read(&path).unwrap();
    // Flip a bit in the middle of the first batch's body: bit-rot that the
    // structure checks cannot see.
    bytes[2000] ^= 0x10;
    fs::write(&path, &bytes).unwrap();
    for access in [Access::Mmap, Access::Pread] {
        let verify = ReadOptions {
            verify_checksums: true,
            access,
            ..Default::default()
        };
        let err = open_err(dir.path(), &verify);
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err:?}");
        assert!(err.to_string().contains(&entry.path));
    }
    let report = validate(dir.path()).unwrap();
    assert!(matches!(
        report.problems[0].error,
        Error::ChecksumMismatch { .. }
    ));
}

#[test]
fn checksum_must_be_xxh3_64_with_sixteen_lowercase_hex_digits() {
    for bad in [
        "xxh3-64:12",
        "xxh3-64:00000000000000AB",
        "md5:00000000000000ab",
        "",
    ] {
        let dir = tempfile::tempdir().unwrap();
        dataset(dir.path(), Compression::None);
        edit_index(dir.path(), |j| j["shards"][0]["checksum"] = bad.into());
        let reason = invalid_index_reason(dir.path());
        assert!(reason.contains("checksum"), "{bad:?}: {reason}");
    }
}

#[test]
fn compression_must_match_the_file() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), Compression::Zstd);
    edit_index(dir.path(), |j| j["shards"][0]["compression"] = "lz4".into());
    let err = open_err(dir.path(), &ReadOptions::default());
    let text = err.to_string();
    assert!(text.contains("zstd") && text.contains("lz4"), "{text}");
    assert_eq!(validate(dir.path()).unwrap().problems.len(), 1);
}

// --- Crafted footers and buffers ---

/// A footer block: where its 24 bytes are in the file, offset, header
/// length, body length.
type BlockAt = (usize, i64, i32, i64);

/// Rewrites footer blocks in a shard's bytes.
type Tamper = fn(&mut Vec<u8>, &[BlockAt]);

/// The footer's blocks, each with the position of its 24 bytes in the file.
fn blocks(bytes: &[u8]) -> Vec<BlockAt> {
    let n = bytes.len();
    let footer_len = i32::from_le_bytes(bytes[n - 10..n - 6].try_into().unwrap()) as usize;
    let footer_start = n - 10 - footer_len;
    let footer = arrow::ipc::root_as_footer(&bytes[footer_start..n - 10]).unwrap();
    footer
        .recordBatches()
        .unwrap()
        .iter()
        .map(|b| {
            let mut key = b.offset().to_le_bytes().to_vec();
            key.extend_from_slice(&b.metaDataLength().to_le_bytes());
            let at = footer_start
                + bytes[footer_start..]
                    .windows(key.len())
                    .position(|w| w == key.as_slice())
                    .expect("block in footer");
            (at, b.offset(), b.metaDataLength(), b.bodyLength())
        })
        .collect()
}

fn corrupt_reason(dir: &Path, access: Access) -> String {
    let options = ReadOptions {
        verify_checksums: false,
        access,
        ..Default::default()
    };
    let result = Dataset::open_with(dir, &options).and_then(|ds| {
        for b in 0..ds.shards()[0].num_batches() {
            ds.record_batch(0, b)?;
        }
        Ok(())
    });
    match result {
        Err(Error::CorruptShard { reason, .. }) => reason,
        other => panic!("expected a corrupt shard, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn swapped_duplicated_and_negative_footer_blocks_are_refused() {
    let cases: [(&str, Tamper); 3] = [
        ("swapped", |bytes, b| {
            let first: Vec<u8> = bytes[b[0].0..b[0].0 + 24].to_vec();
            let second: Vec<u8> = bytes[b[1].0..b[1].0 + 24].to_vec();
            bytes[b[0].0..b[0].0 + 24].copy_from_slice(&second);
            bytes[b[1].0..b[1].0 + 24].copy_from_slice(&first);
        }),
        ("duplicated", |bytes, b| {
            let first: Vec<u8> = bytes[b[0].0..b[0].0 + 24].to_vec();
            bytes[b[1].0..b[1].0 + 24].copy_from_slice(&first);
        }),
        ("negative body", |bytes, b| {
            bytes[b[0].0 + 16..b[0].0 + 24].copy_from_slice(&(-64i64).to_le_bytes());
        }),
    ];
    for (name, tamper) in cases {
        let dir = tempfile::tempdir().unwrap();
        let entry = dataset(dir.path(), Compression::None);
        let mut bytes = fs::read(dir.path().join(&entry.path)).unwrap();
        let b = blocks(&bytes);
        assert_eq!(b.len(), 4);
        tamper(&mut bytes, &b);
        replace_shard(dir.path(), &entry, &bytes);
        for access in [Access::Mmap, Access::Pread] {
            let reason = corrupt_reason(dir.path(), access);
            assert!(reason.contains("record batch"), "{name}: {reason}");
        }
        assert_eq!(validate(dir.path()).unwrap().problems.len(), 1, "{name}");
    }
}

/// The body offset and the first non-empty buffer of batch 0.
fn first_buffer(bytes: &[u8]) -> (usize, usize) {
    let (_, offset, meta_len, _) = blocks(bytes)[0];
    let meta = &bytes[offset as usize..(offset + meta_len as i64) as usize];
    let message = arrow::ipc::root_as_message(&meta[8..]).unwrap();
    let batch = message.header_as_record_batch().unwrap();
    let buffer = batch
        .buffers()
        .unwrap()
        .iter()
        .find(|b| b.length() >= 8)
        .unwrap();
    let body = (offset + meta_len as i64) as usize;
    (body, body + buffer.offset() as usize)
}

#[test]
fn forged_uncompressed_length_is_refused_before_allocating() {
    for compression in [Compression::Zstd, Compression::Lz4] {
        let dir = tempfile::tempdir().unwrap();
        let entry = dataset(dir.path(), compression);
        let mut bytes = fs::read(dir.path().join(&entry.path)).unwrap();
        let (_, at) = first_buffer(&bytes);
        // 1 TiB: an allocation of that size aborts the process.
        bytes[at..at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
        replace_shard(dir.path(), &entry, &bytes);
        for access in [Access::Mmap, Access::Pread] {
            let reason = corrupt_reason(dir.path(), access);
            assert!(reason.contains("declares"), "{compression}: {reason}");
            assert!(reason.contains("record batch 0"), "{reason}");
        }
        let problems = validate(dir.path()).unwrap().problems;
        assert_eq!(problems.len(), 1);
    }
}

#[test]
fn buffer_outside_the_body_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let entry = dataset(dir.path(), Compression::None);
    let mut bytes = fs::read(dir.path().join(&entry.path)).unwrap();
    let (_, offset, meta_len, body_len) = blocks(&bytes)[0];
    // Shrink the body in both the footer block and the message header, so
    // that the buffers run past it.
    let b = blocks(&bytes)[0].0;
    let smaller = body_len - 64;
    bytes[b + 16..b + 24].copy_from_slice(&smaller.to_le_bytes());
    let meta = offset as usize..(offset + meta_len as i64) as usize;
    let key = body_len.to_le_bytes();
    let at = meta.start
        + bytes[meta.clone()]
            .windows(8)
            .position(|w| w == key)
            .expect("body length in the header");
    bytes[at..at + 8].copy_from_slice(&smaller.to_le_bytes());
    replace_shard(dir.path(), &entry, &bytes);
    let reason = corrupt_reason(dir.path(), Access::Mmap);
    assert!(reason.contains("outside"), "{reason}");
}

// --- Files that are not what they claim ---

#[cfg(unix)]
#[test]
fn symlinked_shard_is_refused_without_its_size_or_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let entry = dataset(dir.path(), Compression::None);
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret");
    fs::write(&secret, b"not part of any dataset").unwrap();
    let shard = dir.path().join(&entry.path);
    fs::remove_file(&shard).unwrap();
    std::os::unix::fs::symlink(&secret, &shard).unwrap();
    let err = open_err(dir.path(), &ReadOptions::default());
    let text = err.to_string();
    assert!(text.contains("symbolic link"), "{text}");
    let report = validate(dir.path()).unwrap();
    let text = report.problems[0].error.to_string();
    assert!(text.contains("symbolic link"), "{text}");
    let secret_checksum = Checksum::of(b"not part of any dataset").to_string();
    assert!(
        !text.contains(&secret_checksum) && !text.contains("23"),
        "{text}"
    );
}

#[cfg(unix)]
#[test]
fn fifo_as_shard_or_index_is_refused_at_once() {
    let make_fifo = |path: &Path| {
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    let dir = tempfile::tempdir().unwrap();
    let entry = dataset(dir.path(), Compression::None);
    fs::remove_file(dir.path().join(&entry.path)).unwrap();
    make_fifo(&dir.path().join(&entry.path));
    let (tx, rx) = std::sync::mpsc::channel();
    let d = dir.path().to_path_buf();
    std::thread::spawn(move || {
        let shard = Dataset::open(&d).err().map(|e| e.to_string());
        let index_dir = tempfile::tempdir().unwrap();
        make_fifo(&index_dir.path().join("index.json"));
        let index = Index::load(index_dir.path()).err().map(|e| e.to_string());
        let _ = tx.send((shard, index));
    });
    let (shard, index) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a FIFO must not block");
    assert!(shard.unwrap().contains("not a regular file"));
    assert!(index.unwrap().contains("not a regular file"));
}

// --- Both read paths ---

#[test]
fn pread_and_mmap_read_the_same_values() {
    for compression in [Compression::None, Compression::Zstd, Compression::Lz4] {
        let dir = tempfile::tempdir().unwrap();
        dataset(dir.path(), compression);
        let open = |access| {
            let options = ReadOptions {
                verify_checksums: true,
                access,
                ..Default::default()
            };
            Dataset::open_with(dir.path(), &options).unwrap()
        };
        let (mapped, pread) = (open(Access::Mmap), open(Access::Pread));
        assert!(mapped.shards()[0].bytes().is_some());
        assert!(pread.shards()[0].bytes().is_none());
        assert_eq!(
            mapped.slice(0, 2000).unwrap(),
            pread.slice(0, 2000).unwrap()
        );
        assert_eq!(pread.slice(0, 2000).unwrap(), all_types_batch(2000, 0));
    }
}

#[test]
fn shard_truncated_while_open_gives_a_named_error_on_the_pread_path() {
    let dir = tempfile::tempdir().unwrap();
    let entry = dataset(dir.path(), Compression::None);
    let options = ReadOptions {
        verify_checksums: false,
        access: Access::Pread,
        ..Default::default()
    };
    let ds = Dataset::open_with(dir.path(), &options).unwrap();
    let path = dir.path().join(&entry.path);
    let file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(entry.bytes / 3).unwrap();
    let err = ds.record_batch(0, 3).unwrap_err();
    assert!(matches!(err, Error::CorruptShard { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&entry.path) && text.contains("truncated"),
        "{text}"
    );
}

#[test]
fn shard_replaced_by_rename_while_mapped_keeps_its_old_bytes() {
    // The mapped path's requirement (docs/FORMAT.md): never write into a
    // listed shard. Replacing one by rename is safe: the mapping keeps the
    // old file.
    let dir = tempfile::tempdir().unwrap();
    let entry = dataset(dir.path(), Compression::None);
    let options = ReadOptions {
        verify_checksums: false,
        access: Access::Mmap,
        ..Default::default()
    };
    let ds = Dataset::open_with(dir.path(), &options).unwrap();
    let path = dir.path().join(&entry.path);
    let tmp = dir.path().join("replacement");
    fs::write(&tmp, b"something else").unwrap();
    fs::rename(&tmp, &path).unwrap();
    assert_eq!(ds.slice(0, 2000).unwrap(), all_types_batch(2000, 0));
}

#[test]
fn errors_carry_their_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("index.json")).unwrap();
    let err = Index::load(dir.path()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("index.json"), "{text}");
    assert!(std::error::Error::source(&err).is_none());
    assert_eq!(text.matches("directory").count(), 1, "{text}");
}

#[test]
fn validate_lists_unlisted_files_with_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    dataset(dir.path(), Compression::None);
    fs::write(dir.path().join("part-leftover.arrow"), vec![0u8; 1234]).unwrap();
    let report = validate(dir.path()).unwrap();
    assert!(report.is_ok());
    assert_eq!(report.unlisted.len(), 1);
    assert!(report.unlisted[0].0.ends_with("part-leftover.arrow"));
    assert_eq!(report.unlisted[0].1, 1234);
}
