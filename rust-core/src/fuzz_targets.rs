//! Entry points for the fuzz targets in `fuzz/` and for the test that
//! replays their corpus (`tests/fuzz_corpus.rs`), so that both run the same
//! code on stable and nightly alike. Not a public API.
//!
//! A shard input is `[compression: u8][rows: u32 LE][batches: u32 LE]`
//! followed by the bytes of an Arrow IPC file with [`schema`]'s schema; the
//! header plays the part of the index entry. An assemble input is the same
//! with [`tensor_schema`]'s schema.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, FixedSizeListBuilder, Float32Builder, Float64Array, Float64Builder,
    Int16Array, Int32Builder, Int64Array, ListBuilder, StringArray, StringBuilder, StructArray,
    TimestampMicrosecondArray,
};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::assemble::{
    BatchPlan, ColumnPlan, Conversion, ElementKind, ElementsMut, NullPolicy, TensorSpec,
};
use crate::format::{Compression, Index, ShardEntry};
use crate::loader::{Gathered, Loader, LoaderConfig, SplitMix64};
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

/// The schema of every assemble input: each kind of column the tensor
/// assembler converts (scalars, strings, fixed-size, stacked and ragged
/// lists).
pub fn tensor_schema() -> SchemaRef {
    let item = |t: DataType| Arc::new(Field::new("item", t, true));
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
        Field::new("small", DataType::Int16, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("s", DataType::Utf8, true),
        Field::new(
            "emb",
            DataType::FixedSizeList(item(DataType::Float32), 3),
            true,
        ),
        Field::new("pair", DataType::List(item(DataType::Float64)), true),
        Field::new("seq", DataType::List(item(DataType::Int32)), true),
    ]))
}

/// `n` rows of [`tensor_schema`], with nulls; seeds the assemble corpus.
pub fn tensor_seed_batch(n: usize, start: i64) -> RecordBatch {
    let opt = |i: usize, k: usize| i % k != k - 1;
    let mut emb = FixedSizeListBuilder::new(Float32Builder::new(), 3);
    let mut pair = ListBuilder::new(Float64Builder::new());
    let mut seq = ListBuilder::new(Int32Builder::new());
    for i in 0..n {
        for k in 0..3 {
            emb.values().append_value(i as f32 + k as f32 / 4.0);
        }
        emb.append(opt(i, 6));
        pair.values().append_value(i as f64);
        pair.values().append_value(-(i as f64));
        pair.append(opt(i, 8));
        for k in 0..i % 4 {
            seq.values().append_value((i + k) as i32);
        }
        seq.append(opt(i, 5));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(start..start + n as i64)),
        Arc::new(Float64Array::from_iter(
            (0..n).map(|i| opt(i, 7).then_some(i as f64 * 0.25)),
        )),
        Arc::new(Int16Array::from_iter(
            (0..n).map(|i| opt(i, 6).then_some(i as i16)),
        )),
        Arc::new(BooleanArray::from_iter(
            (0..n).map(|i| opt(i, 4).then_some(i % 2 == 0)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter(
                (0..n).map(|i| opt(i, 5).then_some(1_700_000_000_000_000 + i as i64)),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter(
            (0..n).map(|i| opt(i, 3).then(|| "é".repeat(i % 5))),
        )),
        Arc::new(emb.finish()),
        Arc::new(pair.finish()),
        Arc::new(seq.finish()),
    ];
    RecordBatch::try_new(tensor_schema(), columns).expect("the seed batch matches its schema")
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
        checksum: crate::format::Checksum::of(shard),
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

/// Decodes an assemble input in memory and converts every row, in an order
/// drawn from the input and in batches of 7, into typed buffers through the
/// tensor assembler, as the loader's workers do; returns the rows converted.
/// A refused shard is `None`; a batch refused for its values (a null under
/// [`NullPolicy::Error`], a list of the wrong length) is skipped.
pub fn assemble(data: &[u8]) -> Option<u64> {
    let (entry, bytes) = entry(data)?;
    let schema = tensor_schema();
    let shard = Shard::from_bytes(
        PathBuf::from(&entry.path),
        &entry,
        &schema,
        Buffer::from(bytes),
        false,
    )
    .ok()?;
    let batches = (0..shard.num_batches())
        .map(|b| shard.batch(b))
        .collect::<crate::Result<Vec<_>>>()
        .ok()?;
    let mut picks: Vec<(usize, usize)> = batches
        .iter()
        .enumerate()
        .flat_map(|(s, b)| (0..b.num_rows()).map(move |r| (s, r)))
        .collect();
    let mut rng = SplitMix64::new(u64::from(data[0]) << 32 | u64::from(entry.batches));
    for i in (1..picks.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        picks.swap(i, j);
    }
    let nulls = if data[0] & 4 == 0 {
        NullPolicy::Error
    } else {
        NullPolicy::Fill(-1.0)
    };
    let spec = TensorSpec::features(["id", "x", "small", "flag", "ts"], ElementKind::F32)
        .with_column("s")
        .with_column("emb")
        .with_fixed_list("pair", 2)
        .with_column("seq")
        .with_nulls(nulls);
    let plan = BatchPlan::new(&schema, &spec).ok()?;
    let mut converted = 0;
    for chunk in picks.chunks(7) {
        let rows = chunk
            .iter()
            .map(|&(s, r)| (s * 1_000_000 + r) as u64)
            .collect();
        let g = Gathered::new(batches.clone(), chunk.to_vec(), rows).ok()?;
        let mut features = vec![0f32; g.len() * plan.feature_width()];
        if plan
            .fill_features(&g, ElementsMut::F32(&mut features))
            .is_err()
        {
            continue;
        }
        if plan
            .columns()
            .iter()
            .all(|column| convert(&plan, column, &g).is_ok())
        {
            converted += g.len() as u64;
        }
    }
    Some(converted)
}

/// Converts one column of `g` the way its plan says, into fresh buffers.
fn convert(plan: &BatchPlan, column: &ColumnPlan, g: &Gathered) -> crate::Result<()> {
    let n = match column.conversion {
        Conversion::List { .. } | Conversion::NestedList { .. } => {
            let ragged = plan.ragged(column, g)?;
            let mut values = vec![0f64; ragged.value_count()];
            return ragged.fill_values(ElementsMut::F64(&mut values));
        }
        Conversion::Bytes => return plan.bytes(column, g).map(drop),
        Conversion::Scalar(_) => g.len(),
        Conversion::Fixed { width, .. } | Conversion::StackedList { width, .. } => g.len() * width,
    };
    let kind = column
        .conversion
        .dense_shape()
        .map_or(ElementKind::F64, |(k, _)| k);
    match kind {
        ElementKind::F32 => plan.fill_dense(column, g, ElementsMut::F32(&mut vec![0.0; n])),
        ElementKind::F64 => plan.fill_dense(column, g, ElementsMut::F64(&mut vec![0.0; n])),
        ElementKind::I64 => plan.fill_dense(column, g, ElementsMut::I64(&mut vec![0; n])),
        ElementKind::I32 => plan.fill_dense(column, g, ElementsMut::I32(&mut vec![0; n])),
        ElementKind::I16 => plan.fill_dense(column, g, ElementsMut::I16(&mut vec![0; n])),
        ElementKind::I8 => plan.fill_dense(column, g, ElementsMut::I8(&mut vec![0; n])),
        ElementKind::U8 => plan.fill_dense(column, g, ElementsMut::U8(&mut vec![0; n])),
        ElementKind::Bool => plan.fill_dense(column, g, ElementsMut::Bool(&mut vec![false; n])),
    }
}

/// Writes a shard input as a one-shard dataset under `dir` and runs a
/// shuffled loader epoch over it, assembling every batch; returns the rows
/// assembled, or `None` where the input was refused.
pub fn loader(data: &[u8], dir: &Path) -> Option<u64> {
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
