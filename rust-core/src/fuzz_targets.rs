//! Entry points for the fuzz targets in `fuzz/` and for the test that
//! replays their corpus (`tests/fuzz_corpus.rs`), so that both run the same
//! code on stable and nightly alike. Not a public API.
//!
//! A shard input is `[compression: u8][rows: u32 LE][batches: u32 LE]`
//! followed by the bytes of an Arrow IPC file with [`schema`]'s schema; the
//! header plays the part of the index entry.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int16Array, Int64Array, ListBuilder, StringArray,
    StringBuilder, StructArray, TimestampMicrosecondArray,
};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::format::{Compression, Index, ShardEntry};
use crate::loader::{Loader, LoaderConfig};
use crate::reader::{Dataset, Shard};

/// Header bytes before the shard in a shard input.
pub const HEADER_LEN: usize = 9;

/// The schema of every shard input: the column types Spark writes most.
pub fn schema() -> SchemaRef {
    let point = Fields::from(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]);
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("small", DataType::Int16, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ),
        Field::new("point", DataType::Struct(point), true),
    ]))
}

/// `n` rows of [`schema`], with nulls; seeds the corpus.
pub fn seed_batch(n: usize, start: i64) -> RecordBatch {
    let ids: Vec<i64> = (start..start + n as i64).collect();
    let opt = |i: usize, k: usize| i % k != k - 1;
    let mut tags = ListBuilder::new(StringBuilder::new());
    for i in 0..n {
        if opt(i, 5) {
            for k in 0..i % 3 {
                tags.values().append_value(format!("t{i}{k}"));
            }
            tags.append(true);
        } else {
            tags.append_null();
        }
    }
    let a: ArrayRef = Arc::new(Int64Array::from_iter(
        (0..n).map(|i| opt(i, 4).then_some(i as i64 * 3)),
    ));
    let b: ArrayRef = Arc::new(StringArray::from_iter(
        (0..n).map(|i| opt(i, 3).then(|| format!("p{i}"))),
    ));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids.clone())),
        Arc::new(Float64Array::from_iter(
            (0..n).map(|i| opt(i, 7).then_some(i as f64 * 0.25)),
        )),
        Arc::new(StringArray::from_iter(
            (0..n).map(|i| opt(i, 3).then(|| "é".repeat(i % 5))),
        )),
        Arc::new(BooleanArray::from_iter(
            (0..n).map(|i| opt(i, 4).then_some(i % 2 == 0)),
        )),
        Arc::new(Int16Array::from_iter(
            (0..n).map(|i| opt(i, 6).then_some(i as i16)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                (0..n).map(|i| opt(i, 5).then_some(1_700_000_000_000_000 + i as i64)),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(tags.finish()),
        Arc::new(StructArray::from(vec![
            (Arc::new(Field::new("a", DataType::Int64, true)), a),
            (Arc::new(Field::new("b", DataType::Utf8, true)), b),
        ])),
    ];
    RecordBatch::try_new(schema(), columns).expect("the seed batch matches its schema")
}

/// Splits a shard input into its index entry and shard bytes.
fn entry(data: &[u8]) -> Option<(ShardEntry, &[u8])> {
    let (header, shard) = data.split_first_chunk::<HEADER_LEN>()?;
    let compression = match header[0] % 3 {
        0 => Compression::None,
        1 => Compression::Zstd,
        _ => Compression::Lz4,
    };
    let rows = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    let batches = u32::from_le_bytes([header[5], header[6], header[7], header[8]]);
    let entry = ShardEntry {
        path: "part-fuzz-00000-0-0000.arrow".into(),
        rows: u64::from(rows),
        bytes: shard.len() as u64,
        batches,
        checksum: crate::format::Checksum::of(shard).to_string(),
        compression,
        write_id: "fuzz".into(),
        partition: 0,
        task_attempt: 0,
    };
    Some((entry, shard))
}

/// The header of a shard input for a real shard.
pub fn header(entry: &ShardEntry) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0] = match entry.compression {
        Compression::None => 0,
        Compression::Zstd => 1,
        Compression::Lz4 => 2,
    };
    h[1..5].copy_from_slice(&(entry.rows as u32).to_le_bytes());
    h[5..9].copy_from_slice(&entry.batches.to_le_bytes());
    h
}

/// Parses index bytes; returns whether they were accepted.
pub fn index(data: &[u8]) -> bool {
    Index::parse(data, Path::new("index.json")).is_ok()
}

/// Opens a shard input and decodes every record batch; returns the rows
/// decoded, or `None` where the input was refused.
pub fn shard(data: &[u8]) -> Option<u64> {
    let (entry, bytes) = entry(data)?;
    let shard = Shard::from_bytes(
        PathBuf::from(&entry.path),
        &entry,
        &schema(),
        Buffer::from(bytes),
        false,
    )
    .ok()?;
    let mut rows = 0;
    for b in 0..shard.num_batches() {
        let batch = shard.batch(b).ok()?;
        // A batch the reader hands out must pass Arrow's full validation;
        // one that does not is a finding.
        for column in batch.columns() {
            if let Err(e) = column.to_data().validate_full() {
                panic!("record batch {b} was decoded but is invalid: {e}");
            }
        }
        rows += batch.num_rows() as u64;
    }
    Some(rows)
}

/// Writes a shard input as a one-shard dataset under `dir` and runs a
/// shuffled loader epoch over it, assembling every batch; returns the rows
/// assembled, or `None` where the input was refused.
pub fn assemble(data: &[u8], dir: &Path) -> Option<u64> {
    let (entry, bytes) = entry(data)?;
    std::fs::write(dir.join(&entry.path), bytes).ok()?;
    let total_rows = entry.rows;
    let index = Index::new(&schema(), vec![entry], vec![]).ok()?;
    std::fs::write(dir.join("index.json"), index.to_json().ok()?).ok()?;
    let dataset = Arc::new(Dataset::open(dir).ok()?);
    let config = LoaderConfig {
        batch_size: 7,
        seed: 3,
        workers: 2,
        ..LoaderConfig::default()
    };
    let mut loader = Loader::new(dataset, config).ok()?;
    let mut rows = 0;
    for batch in loader.epoch().ok()? {
        let batch = batch.ok()?;
        for column in batch.data.columns() {
            if let Err(e) = column.to_data().validate_full() {
                panic!("an assembled batch is invalid: {e}");
            }
        }
        rows += batch.data.num_rows() as u64;
    }
    (rows <= total_rows).then_some(rows)
}
