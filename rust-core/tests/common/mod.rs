//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use arrow::array::*;
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::*;
use arrow::record_batch::RecordBatch;
use mosaicrs::format::ShardEntry;
use mosaicrs::writer::{commit, SaveMode, ShardWriter, WriterOptions};

/// A batch with every Arrow type Spark produces, `n` rows, nulls in every column.
pub fn all_types_batch(n: usize, start: i64) -> RecordBatch {
    let null_every = |i: usize, k: usize| i % k == k - 1;
    let ids: Vec<i64> = (0..n as i64).map(|i| i + start).collect();
    let opt = |i: usize, k: usize| !null_every(i, k);

    let i8s = Int8Array::from_iter((0..n).map(|i| opt(i, 5).then_some((i % 120) as i8 - 60)));
    let i16s = Int16Array::from_iter((0..n).map(|i| opt(i, 6).then_some(i as i16 * 3)));
    let i32s = Int32Array::from_iter((0..n).map(|i| opt(i, 7).then_some(i as i32 * -7)));
    let i64s = Int64Array::from_iter((0..n).map(|i| opt(i, 4).then_some(ids[i] * 1_000_003)));
    let f32s = Float32Array::from_iter((0..n).map(|i| opt(i, 5).then_some(i as f32 * 0.5)));
    let f64s = Float64Array::from_iter((0..n).map(|i| opt(i, 3).then_some(i as f64 / 7.0)));
    let bools = BooleanArray::from_iter((0..n).map(|i| opt(i, 4).then_some(i % 2 == 0)));
    let strs = StringArray::from_iter((0..n).map(|i| opt(i, 3).then(|| format!("s{}", ids[i]))));
    let lstrs = LargeStringArray::from_iter((0..n).map(|i| opt(i, 5).then(|| "é".repeat(i % 4))));
    let bins = BinaryArray::from_iter((0..n).map(|i| opt(i, 4).then(|| vec![i as u8; i % 5])));
    let dates = Date32Array::from_iter((0..n).map(|i| opt(i, 6).then_some(18_000 + i as i32)));
    let ts = TimestampMicrosecondArray::from_iter(
        (0..n).map(|i| opt(i, 5).then_some(1_700_000_000_000_000 + i as i64)),
    );
    let ts_tz = TimestampMicrosecondArray::from_iter(
        (0..n).map(|i| opt(i, 7).then_some(1_600_000_000_000_000 - i as i64)),
    )
    .with_timezone("UTC");
    let decs = Decimal128Array::from_iter((0..n).map(|i| opt(i, 4).then_some(i as i128 * 12345)))
        .with_precision_and_scale(38, 10)
        .expect("valid decimal");

    let mut list = ListBuilder::new(Int32Builder::new());
    let mut large_list = LargeListBuilder::new(StringBuilder::new());
    let mut fixed = FixedSizeListBuilder::new(Float32Builder::new(), 4);
    for i in 0..n {
        if null_every(i, 6) {
            list.append_null();
            large_list.append_null();
        } else {
            for k in 0..(i % 4) {
                list.values()
                    .append_option((k != 1).then_some((i * 10 + k) as i32));
                large_list.values().append_value(format!("v{i}_{k}"));
            }
            list.append(true);
            large_list.append(true);
        }
        for k in 0..4 {
            fixed.values().append_value((i * 4 + k) as f32);
        }
        fixed.append(!null_every(i, 8));
    }

    let struct_fields = Fields::from(vec![
        Field::new("a", DataType::Int32, true),
        Field::new("b", DataType::Utf8, true),
    ]);
    let sa = Int32Array::from_iter((0..n).map(|i| opt(i, 3).then_some(i as i32)));
    let sb = StringArray::from_iter((0..n).map(|i| Some(format!("b{i}"))));
    let structs = StructArray::new(
        struct_fields,
        vec![Arc::new(sa), Arc::new(sb)],
        Some(NullBuffer::from_iter((0..n).map(|i| opt(i, 5)))),
    );

    let mut map = MapBuilder::new(None, StringBuilder::new(), Int64Builder::new());
    for i in 0..n {
        if null_every(i, 7) {
            map.append(false).expect("map");
        } else {
            for k in 0..(i % 3) {
                map.keys().append_value(format!("k{k}"));
                map.values()
                    .append_option((k != 0).then_some((i * k) as i64));
            }
            map.append(true).expect("map");
        }
    }
    let nested = {
        // list<list<int64>>
        let inner = Int64Array::from_iter_values(0..(n as i64 * 2));
        let inner_list = ListArray::new(
            Arc::new(Field::new_list_field(DataType::Int64, true)),
            OffsetBuffer::from_lengths(std::iter::repeat_n(2usize, n)),
            Arc::new(inner),
            None,
        );
        ListArray::new(
            Arc::new(Field::new_list_field(inner_list.data_type().clone(), true)),
            OffsetBuffer::from_lengths((0..n).map(|i| usize::from(i % 2 == 0))),
            Arc::new(inner_list.slice(0, n.div_ceil(2))),
            None,
        )
    };
    let all_null = NullArray::new(n);

    let columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(Int64Array::from(ids))),
        ("i8", Arc::new(i8s)),
        ("i16", Arc::new(i16s)),
        ("i32", Arc::new(i32s)),
        ("i64", Arc::new(i64s)),
        ("f32", Arc::new(f32s)),
        ("f64", Arc::new(f64s)),
        ("bool", Arc::new(bools)),
        ("utf8", Arc::new(strs)),
        ("large_utf8", Arc::new(lstrs)),
        ("binary", Arc::new(bins)),
        ("date", Arc::new(dates)),
        ("ts", Arc::new(ts)),
        ("ts_utc", Arc::new(ts_tz)),
        ("decimal", Arc::new(decs)),
        ("list", Arc::new(list.finish())),
        ("large_list", Arc::new(large_list.finish())),
        ("fixed_list", Arc::new(fixed.finish())),
        ("struct", Arc::new(structs)),
        ("map", Arc::new(map.finish())),
        ("nested_list", Arc::new(nested)),
        ("nulls", Arc::new(all_null)),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(*name, a.data_type().clone(), name != &"id"))
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("valid batch")
}

/// A two-column batch: `id` (0-based from `start`) and `x = id * 2.5`.
pub fn simple_batch(n: usize, start: i64) -> RecordBatch {
    let ids = Int64Array::from_iter_values(start..start + n as i64);
    let xs = Float64Array::from_iter_values((start..start + n as i64).map(|i| i as f64 * 2.5));
    RecordBatch::try_new(simple_schema(), vec![Arc::new(ids), Arc::new(xs)]).expect("valid batch")
}

pub fn simple_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
    ]))
}

/// Writes `batches` as one task attempt and returns the sealed shards.
pub fn write_shards(
    dir: &Path,
    write_id: &str,
    partition: u32,
    batches: &[RecordBatch],
    options: WriterOptions,
) -> Vec<ShardEntry> {
    let schema = batches[0].schema();
    let mut w = ShardWriter::create(dir, schema, write_id, partition, 0, options).expect("create");
    for b in batches {
        w.write(b).expect("write");
    }
    w.finish().expect("finish")
}

/// Writes and commits `batches` as a new dataset.
pub fn write_dataset(dir: &Path, batches: &[RecordBatch], options: WriterOptions) {
    let shards = write_shards(dir, "w0", 0, batches, options);
    commit(
        dir,
        &batches[0].schema(),
        "w0",
        shards,
        SaveMode::ErrorIfExists,
    )
    .expect("commit");
}

/// Names of the files in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    names.sort();
    names
}
