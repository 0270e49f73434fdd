//! Tensors equal their source values for every supported type; the null
//! policy; bad specs; device choice; libtorch_cuda stays linked.
//! Needs libtorch (from the venv's torch wheel).

use std::sync::Arc;

use arrow::array::*;
use arrow::datatypes::*;
use arrow::record_batch::RecordBatch;
use mosaicrs::assemble::list_width;
use mosaicrs::format::Compression;
use mosaicrs::loader::Loader;
use mosaicrs::testing::{config, write_dataset};
use mosaicrs::Error;
use mosaicrs_tch::{
    choose_device, element_kind, to_kind, ColumnData, DeviceFeeder, ElementKind, NullPolicy,
    TensorAssembler, TensorSpec,
};
use tch::{Device, Kind, Tensor};

fn vec_f64(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn vec_i64(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(t.to_kind(Kind::Int64).flatten(0, -1)).unwrap()
}

fn all_types() -> RecordBatch {
    let n = 5;
    let fields = vec![
        Field::new("i8", DataType::Int8, false),
        Field::new("i16", DataType::Int16, false),
        Field::new("i32", DataType::Int32, false),
        Field::new("i64", DataType::Int64, false),
        Field::new("u8", DataType::UInt8, false),
        Field::new("u16", DataType::UInt16, false),
        Field::new("u32", DataType::UInt32, false),
        Field::new("u64", DataType::UInt64, false),
        Field::new("f32", DataType::Float32, false),
        Field::new("f64", DataType::Float64, false),
        Field::new("bool", DataType::Boolean, false),
        Field::new("date", DataType::Date32, false),
        Field::new(
            "ts",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(
            "fixed",
            DataType::FixedSizeList(Arc::new(Field::new("item", DataType::Float32, true)), 3),
            false,
        ),
        Field::new(
            "list",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            false,
        ),
        Field::new(
            "llist",
            DataType::LargeList(Arc::new(Field::new("item", DataType::Float64, true))),
            false,
        ),
        Field::new("s", DataType::Utf8, false),
        Field::new("ls", DataType::LargeUtf8, false),
        Field::new("b", DataType::Binary, false),
        Field::new("lb", DataType::LargeBinary, false),
    ];
    let mut fixed = FixedSizeListBuilder::new(Float32Builder::new(), 3);
    let mut list = ListBuilder::new(Int32Builder::new());
    let mut llist = LargeListBuilder::new(Float64Builder::new());
    for i in 0..n {
        for k in 0..3 {
            fixed.values().append_value((i * 3 + k) as f32 + 0.25);
        }
        fixed.append(true);
        for k in 0..i {
            list.values().append_value(i * 10 + k);
            llist.values().append_value(k as f64 * -1.5);
        }
        list.append(true);
        llist.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int8Array::from(vec![-128, -1, 0, 1, 127])),
        Arc::new(Int16Array::from(vec![-32768, -2, 0, 2, 32767])),
        Arc::new(Int32Array::from(vec![i32::MIN, -3, 0, 3, i32::MAX])),
        Arc::new(Int64Array::from(vec![i64::MIN, -4, 0, 4, i64::MAX])),
        Arc::new(UInt8Array::from(vec![0, 1, 2, 200, 255])),
        Arc::new(UInt16Array::from(vec![0, 1, 2, 40000, 65535])),
        Arc::new(UInt32Array::from(vec![0, 1, 2, 3_000_000_000, u32::MAX])),
        Arc::new(UInt64Array::from(vec![0, 1, 2, 1 << 40, 1 << 62])),
        Arc::new(Float32Array::from(vec![-1.5, 0.0, 0.1, 3.25, f32::MAX])),
        Arc::new(Float64Array::from(vec![-1e300, 0.0, 0.1, 3.25, 1e-300])),
        Arc::new(BooleanArray::from(vec![true, false, true, true, false])),
        Arc::new(Date32Array::from(vec![0, 1, 18_000, -5, 20_000])),
        Arc::new(
            TimestampMicrosecondArray::from(vec![0, 1, 1_700_000_000_000_000, -7, 42])
                .with_timezone("UTC"),
        ),
        Arc::new(fixed.finish()),
        Arc::new(list.finish()),
        Arc::new(llist.finish()),
        Arc::new(StringArray::from(vec!["", "a", "bé", "ccc", "dddd"])),
        Arc::new(LargeStringArray::from(vec!["x", "", "yy", "z", "€"])),
        Arc::new(BinaryArray::from(vec![
            &b""[..],
            b"\x00",
            b"\x01\x02",
            b"abc",
            b"\xff",
        ])),
        Arc::new(LargeBinaryArray::from(vec![
            &b"q"[..],
            b"",
            b"rr",
            b"s",
            b"tt",
        ])),
    ];
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

fn scalar_values(array: &dyn Array) -> Vec<f64> {
    let cast = arrow::compute::cast(array, &DataType::Float64).unwrap();
    cast.as_primitive::<Float64Type>().values().to_vec()
}

#[test]
fn every_supported_type_converts_to_its_source_values() {
    let batch = all_types();
    let names: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32);
    spec.columns = names.clone();
    let asm = TensorAssembler::new(&batch.schema(), &spec, Device::Cpu).unwrap();
    let t = asm.convert(&batch).unwrap();
    assert_eq!(t.len, 5);

    let kinds = [
        ("i8", Kind::Int8),
        ("i16", Kind::Int16),
        ("i32", Kind::Int),
        ("i64", Kind::Int64),
        ("u8", Kind::Uint8),
        ("u16", Kind::Int),
        ("u32", Kind::Int64),
        ("u64", Kind::Int64),
        ("f32", Kind::Float),
        ("f64", Kind::Double),
        ("bool", Kind::Bool),
        ("date", Kind::Int),
        ("ts", Kind::Int64),
    ];
    for (name, kind) in kinds {
        let tensor = t.tensor(name).unwrap();
        assert_eq!(tensor.kind(), kind, "{name}");
        assert_eq!(tensor.size(), vec![5], "{name}");
        let col = batch.column_by_name(name).unwrap();
        match name {
            // Exact integer comparison (f64 would round the 64-bit extremes).
            "i64" => assert_eq!(
                vec_i64(tensor),
                col.as_primitive::<Int64Type>().values().to_vec()
            ),
            "u64" => assert_eq!(
                vec_i64(tensor),
                col.as_primitive::<UInt64Type>()
                    .values()
                    .iter()
                    .map(|&v| v as i64)
                    .collect::<Vec<_>>()
            ),
            "ts" => assert_eq!(
                vec_i64(tensor),
                col.as_primitive::<TimestampMicrosecondType>()
                    .values()
                    .to_vec()
            ),
            "bool" => assert_eq!(vec_i64(tensor), vec![1, 0, 1, 1, 0]),
            "date" => assert_eq!(
                vec_i64(tensor),
                col.as_primitive::<Date32Type>()
                    .values()
                    .iter()
                    .map(|&v| i64::from(v))
                    .collect::<Vec<_>>()
            ),
            "f32" => {
                let got = Vec::<f32>::try_from(tensor).unwrap();
                assert_eq!(got, col.as_primitive::<Float32Type>().values().to_vec());
            }
            _ => assert_eq!(vec_f64(tensor), scalar_values(col.as_ref()), "{name}"),
        }
    }

    let fixed = t.tensor("fixed").unwrap();
    assert_eq!(fixed.size(), vec![5, 3]);
    let expect: Vec<f64> = (0..15).map(|v| v as f64 + 0.25).collect();
    assert_eq!(vec_f64(fixed), expect);

    match t.column("list").unwrap() {
        ColumnData::Ragged { values, offsets } => {
            assert_eq!(values.kind(), Kind::Int);
            assert_eq!(vec_i64(offsets), vec![0, 0, 1, 3, 6, 10]);
            assert_eq!(
                vec_i64(values),
                vec![10, 20, 21, 30, 31, 32, 40, 41, 42, 43]
            );
        }
        other => panic!("list became {other:?}"),
    }
    match t.column("llist").unwrap() {
        ColumnData::Ragged { values, offsets } => {
            assert_eq!(values.kind(), Kind::Double);
            assert_eq!(vec_i64(offsets), vec![0, 0, 1, 3, 6, 10]);
            assert_eq!(vec_f64(values)[..3], [0.0, 0.0, -1.5]);
        }
        other => panic!("llist became {other:?}"),
    }
    let bytes = |name: &str| match t.column(name).unwrap() {
        ColumnData::Bytes { values, offsets } => {
            assert_eq!((values.kind(), offsets.kind()), (Kind::Uint8, Kind::Int64));
            let (values, offsets) = (Vec::<u8>::try_from(values).unwrap(), vec_i64(offsets));
            (0..5)
                .map(|i| values[offsets[i] as usize..offsets[i + 1] as usize].to_vec())
                .collect::<Vec<_>>()
        }
        other => panic!("{name} became {other:?}"),
    };
    assert_eq!(
        bytes("s"),
        ["", "a", "bé", "ccc", "dddd"].map(|s| s.as_bytes().to_vec())
    );
    assert_eq!(
        bytes("ls"),
        ["x", "", "yy", "z", "€"].map(|s| s.as_bytes().to_vec())
    );
    assert_eq!(
        bytes("b"),
        vec![
            b"".to_vec(),
            vec![0],
            vec![1, 2],
            b"abc".to_vec(),
            vec![255]
        ]
    );
    assert_eq!(
        bytes("lb"),
        vec![
            b"q".to_vec(),
            vec![],
            b"rr".to_vec(),
            b"s".to_vec(),
            b"tt".to_vec()
        ]
    );
}

#[test]
fn feature_columns_stack_into_b_by_f_in_the_chosen_kind() {
    let batch = all_types();
    for kind in [Kind::Float, Kind::Double, Kind::Int64] {
        let spec = TensorSpec::features(["i16", "f32", "u8", "bool"], element_kind(kind).unwrap());
        let asm = TensorAssembler::new(&batch.schema(), &spec, Device::Cpu).unwrap();
        let f = asm.convert(&batch).unwrap().features.unwrap();
        assert_eq!(f.size(), vec![5, 4]);
        assert_eq!(f.kind(), kind);
        let rows = vec_f64(&f);
        let i16s = scalar_values(batch.column_by_name("i16").unwrap());
        let f32s = scalar_values(batch.column_by_name("f32").unwrap());
        let u8s = scalar_values(batch.column_by_name("u8").unwrap());
        for i in 0..5 {
            assert_eq!(rows[i * 4], i16s[i]);
            let f = f32s[i];
            let want = if kind == Kind::Int64 {
                f.trunc().clamp(i64::MIN as f64, i64::MAX as f64)
            } else {
                f
            };
            if kind == Kind::Float || kind == Kind::Double {
                assert_eq!(rows[i * 4 + 1] as f32, f as f32);
            } else {
                assert_eq!(rows[i * 4 + 1], want);
            }
            assert_eq!(rows[i * 4 + 2], u8s[i]);
            assert_eq!(rows[i * 4 + 3], [1.0, 0.0, 1.0, 1.0, 0.0][i]);
        }
    }
}

#[test]
fn loader_batches_become_tensors_of_the_gathered_rows() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 1_000, 3, 100, Compression::None);
    let mut loader = Loader::new(dataset, config(32, 1, 0, 2)).unwrap();
    let spec = TensorSpec::features(["x", "id"], ElementKind::F32).with_column("id");
    let asm = TensorAssembler::new(loader.schema(), &spec, Device::Cpu).unwrap();
    let epoch = loader.epoch_with(move |g| asm.assemble(g)).unwrap();
    let mut count = 0;
    for batch in DeviceFeeder::new(epoch, Device::Cpu) {
        let batch = batch.unwrap();
        let f = vec_f64(batch.data.features().unwrap());
        let ids = vec_i64(batch.data.tensor("id").unwrap());
        for (i, &row) in batch.rows.iter().enumerate() {
            assert_eq!(ids[i], row as i64);
            assert_eq!(f[2 * i], row as f64 / 2.0);
            assert_eq!(f[2 * i + 1], row as f64);
        }
        count += batch.rows.len();
    }
    assert_eq!(count, 992);

    // Same-typed features take the sample-by-sample path; compressed
    // shards the decode-on-demand path.
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), 500, 2, 64, Compression::Lz4);
    let mut loader = Loader::new(dataset, config(50, 1, 0, 3)).unwrap();
    let spec = TensorSpec::features(["x", "x", "x"], ElementKind::F64);
    let asm = TensorAssembler::new(loader.schema(), &spec, Device::Cpu).unwrap();
    let mut seen = 0;
    for batch in loader.epoch_with(move |g| asm.assemble(g)).unwrap() {
        let batch = batch.unwrap();
        let f = batch.data.features().unwrap();
        assert_eq!(f.size(), vec![50, 3]);
        let f = vec_f64(f);
        for (i, &row) in batch.rows.iter().enumerate() {
            assert_eq!(&f[3 * i..3 * i + 3], &[row as f64 / 2.0; 3]);
        }
        seen += batch.rows.len();
    }
    assert_eq!(seen, 500);
}

/// `emb` row `i` = [i, i + 0.5, i + 0.25] as a variable-length list (what
/// Spark writes for `array<float>`), `id` = i.
fn embeddings(start: u64, end: u64) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new(
            "emb",
            DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
            true,
        ),
    ]));
    let mut emb = ListBuilder::new(Float32Builder::new());
    for i in start..end {
        emb.values()
            .append_slice(&[i as f32, i as f32 + 0.5, i as f32 + 0.25]);
        emb.append(true);
    }
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from_iter_values(start as i64..end as i64)),
            Arc::new(emb.finish()),
        ],
    )
    .unwrap()
}

fn emb_row(i: u64) -> [f64; 3] {
    [i as f64, i as f64 + 0.5, i as f64 + 0.25]
}

#[test]
fn list_columns_of_one_length_stack_as_b_by_d() {
    // Through the loader: several shards and record batches, so one batch
    // gathers rows from many sources.
    let dir = tempfile::tempdir().unwrap();
    let schema = embeddings(0, 0).schema();
    let options = mosaicrs::writer::WriterOptions {
        max_batch_rows: Some(50),
        ..Default::default()
    };
    let mut shards = Vec::new();
    for p in 0..3u64 {
        let mut w = mosaicrs::writer::ShardWriter::create(
            dir.path(),
            schema.clone(),
            "emb",
            p as u32,
            0,
            options,
        )
        .unwrap();
        w.write(&embeddings(p * 200, (p + 1) * 200)).unwrap();
        shards.extend(w.finish().unwrap());
    }
    mosaicrs::writer::commit(
        dir.path(),
        &schema,
        "emb",
        shards,
        mosaicrs::writer::SaveMode::ErrorIfExists,
    )
    .unwrap();
    let dataset = Arc::new(mosaicrs::reader::Dataset::open(dir.path()).unwrap());
    assert_eq!(list_width(&dataset, "emb").unwrap(), 3);
    match list_width(&dataset, "id") {
        Err(e @ Error::UnsupportedColumn { .. }) => assert!(e.to_string().contains("\"id\"")),
        other => panic!("{other:?}"),
    }
    let mut loader = Loader::new(dataset, config(64, 1, 0, 2)).unwrap();
    let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32)
        .with_fixed_list("emb", 3)
        .with_column("id");
    let asm = TensorAssembler::new(loader.schema(), &spec, Device::Cpu).unwrap();
    let mut seen = 0;
    for batch in loader.epoch_with(move |g| asm.assemble(g)).unwrap() {
        let batch = batch.unwrap();
        let emb = batch.data.tensor("emb").unwrap();
        assert_eq!(emb.size(), vec![64, 3]);
        assert_eq!(emb.kind(), Kind::Float);
        let (emb, ids) = (vec_f64(emb), vec_i64(batch.data.tensor("id").unwrap()));
        for (i, &row) in batch.rows.iter().enumerate() {
            assert_eq!(ids[i], row as i64);
            assert_eq!(&emb[3 * i..3 * i + 3], &emb_row(row));
        }
        seen += batch.rows.len();
    }
    assert_eq!(seen, 576);

    // A sliced batch (offsets not starting at 0) and a large list.
    let batch = embeddings(10, 20).slice(3, 4);
    let asm = TensorAssembler::new(&batch.schema(), &spec, Device::Cpu).unwrap();
    let t = asm.convert(&batch).unwrap();
    let want: Vec<f64> = (13..17).flat_map(emb_row).collect();
    assert_eq!(vec_f64(t.tensor("emb").unwrap()), want);
    let large = arrow::compute::cast(
        batch.column(1),
        &DataType::LargeList(Arc::new(Field::new("item", DataType::Float32, true))),
    )
    .unwrap();
    let large = RecordBatch::try_from_iter([("emb", large)]).unwrap();
    let spec =
        TensorSpec::features(Vec::<String>::new(), ElementKind::F32).with_fixed_list("emb", 3);
    let asm = TensorAssembler::new(&large.schema(), &spec, Device::Cpu).unwrap();
    assert_eq!(
        vec_f64(asm.convert(&large).unwrap().tensor("emb").unwrap()),
        want
    );
}

#[test]
fn stacked_lists_refuse_other_lengths_and_follow_the_null_policy() {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "emb",
        DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
        true,
    )]));
    let mut emb = ListBuilder::new(Float64Builder::new());
    emb.values().append_slice(&[1.0, 2.0]);
    emb.append(true);
    emb.append(false);
    emb.values().append_slice(&[3.0]);
    emb.values().append_null();
    emb.append(true);
    emb.values().append_slice(&[4.0, 5.0, 6.0]);
    emb.append(true);
    let batch = RecordBatch::try_new(schema, vec![Arc::new(emb.finish())]).unwrap();
    let spec = |nulls| {
        TensorSpec::features(Vec::<String>::new(), ElementKind::F32)
            .with_fixed_list("emb", 2)
            .with_nulls(nulls)
    };
    let convert = |batch: &RecordBatch, nulls| {
        TensorAssembler::new(&batch.schema(), &spec(nulls), Device::Cpu)
            .unwrap()
            .convert(batch)
    };

    // Row 3 holds three values: named with its row and both lengths.
    match convert(&batch, NullPolicy::Fill(0.0)) {
        Err(
            e @ Error::ListLength {
                row: 3,
                expected: 2,
                found: 3,
                ..
            },
        ) => assert!(e.to_string().contains("\"emb\""), "{e}"),
        other => panic!("expected ListLength, got {other:?}"),
    }
    // The null row (1) and the null element (row 2) follow the policy.
    let first3 = batch.slice(0, 3);
    match convert(&first3, NullPolicy::Error) {
        Err(Error::NullValue { column, row }) => assert_eq!((column.as_str(), row), ("emb", 1)),
        other => panic!("expected NullValue, got {other:?}"),
    }
    let t = convert(&first3, NullPolicy::Fill(-1.0)).unwrap();
    let emb = t.tensor("emb").unwrap();
    assert_eq!(emb.size(), vec![3, 2]);
    assert_eq!(vec_f64(emb), vec![1.0, 2.0, -1.0, -1.0, 3.0, -1.0]);

    // A width that cannot apply is refused when the assembler is built.
    let built = |spec: TensorSpec| TensorAssembler::new(&batch.schema(), &spec, Device::Cpu);
    let none = || TensorSpec::features(Vec::<String>::new(), ElementKind::F32);
    assert!(matches!(
        built(none().with_fixed_list("emb", 0)),
        Err(Error::InvalidArgument(_))
    ));
    let fixed = all_types();
    match TensorAssembler::new(
        &fixed.schema(),
        &none().with_fixed_list("fixed", 4),
        Device::Cpu,
    ) {
        Err(e @ Error::UnsupportedColumn { .. }) => {
            assert!(e.to_string().contains("hold 3 values"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    match TensorAssembler::new(
        &fixed.schema(),
        &none().with_fixed_list("f32", 4),
        Device::Cpu,
    ) {
        Err(e @ Error::UnsupportedColumn { .. }) => {
            assert!(e.to_string().contains("only a list column"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    // A fixed-size list of the same width is accepted as is.
    let t = TensorAssembler::new(
        &fixed.schema(),
        &none().with_fixed_list("fixed", 3),
        Device::Cpu,
    )
    .unwrap()
    .convert(&fixed.slice(0, 1))
    .unwrap();
    assert_eq!(t.tensor("fixed").unwrap().size(), vec![1, 3]);
}

fn with_nulls() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Float32, true),
        Field::new(
            "l",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        ),
        Field::new("s", DataType::Utf8, true),
    ]));
    let mut l = ListBuilder::new(Int64Builder::new());
    l.values().append_value(1);
    l.append(true);
    l.append(false);
    l.values().append_null();
    l.append(true);
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Float32Array::from(vec![Some(1.0), None, Some(3.0)])),
            Arc::new(l.finish()),
            Arc::new(StringArray::from(vec![Some("x"), None, Some("z")])),
        ],
    )
    .unwrap()
}

#[test]
fn nulls_are_an_error_naming_the_column_or_filled() {
    let batch = with_nulls();
    for column in ["a", "l", "s"] {
        let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32).with_column(column);
        let asm = TensorAssembler::new(&batch.schema(), &spec, Device::Cpu).unwrap();
        match asm.convert(&batch) {
            Err(e @ Error::NullValue { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&format!("{column:?}")), "{msg}");
            }
            other => panic!("{column}: expected NullValue, got {other:?}"),
        }
    }
    let spec = TensorSpec::features(["a"], ElementKind::F32);
    let asm = TensorAssembler::new(&batch.schema(), &spec, Device::Cpu).unwrap();
    match asm.convert(&batch) {
        Err(Error::NullValue { column, row }) => assert_eq!((column.as_str(), row), ("a", 1)),
        other => panic!("expected NullValue, got {other:?}"),
    }

    let spec = TensorSpec::features(["a"], ElementKind::F32)
        .with_column("l")
        .with_column("s")
        .with_nulls(NullPolicy::Fill(-9.0));
    let asm = TensorAssembler::new(&batch.schema(), &spec, Device::Cpu).unwrap();
    let t = asm.convert(&batch).unwrap();
    assert_eq!(vec_f64(t.features().unwrap()), vec![1.0, -9.0, 3.0]);
    match t.column("l").unwrap() {
        ColumnData::Ragged { values, offsets } => {
            assert_eq!(vec_i64(offsets), vec![0, 1, 1, 2]);
            assert_eq!(vec_i64(values), vec![1, -9]);
        }
        other => panic!("{other:?}"),
    }
    match t.column("s").unwrap() {
        ColumnData::Bytes { values, offsets } => {
            assert_eq!(Vec::<u8>::try_from(values).unwrap(), b"xz");
            assert_eq!(vec_i64(offsets), [0, 1, 1, 2]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_specs_name_the_column() {
    let batch = all_types();
    let schema = batch.schema();
    let err = |spec: TensorSpec| TensorAssembler::new(&schema, &spec, Device::Cpu).unwrap_err();
    match err(TensorSpec::features(["f32", "pixels"], ElementKind::F32)) {
        Error::ColumnNotFound { name, .. } => assert_eq!(name, "pixels"),
        other => panic!("{other}"),
    }
    match err(TensorSpec::features(["f32", "s"], ElementKind::F32)) {
        e @ Error::UnsupportedColumn { .. } => {
            assert!(
                e.to_string().contains("\"s\"") && e.to_string().contains("numeric"),
                "{e}"
            )
        }
        other => panic!("{other}"),
    }
    let dec = Schema::new(vec![Field::new("d", DataType::Decimal128(10, 2), false)]);
    let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32).with_column("d");
    match TensorAssembler::new(&Arc::new(dec), &spec, Device::Cpu) {
        Err(e @ Error::UnsupportedColumn { .. }) => {
            assert!(e.to_string().contains("decimal"), "{e}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        element_kind(Kind::ComplexFloat),
        Err(Error::InvalidArgument(_))
    ));
    for kind in ElementKind::ALL {
        assert_eq!(element_kind(to_kind(kind)).unwrap(), kind);
    }
}

#[test]
fn device_choice_is_cuda_when_available_else_cpu() {
    assert_eq!(choose_device("cpu").unwrap(), Device::Cpu);
    let auto = choose_device("auto").unwrap();
    if tch::Cuda::is_available() {
        assert!(auto.is_cuda());
        assert_eq!(choose_device("cuda:0").unwrap(), Device::Cuda(0));
    } else {
        assert_eq!(auto, Device::Cpu);
        assert!(choose_device("cuda")
            .unwrap_err()
            .to_string()
            .contains("CUDA"));
    }
    assert!(choose_device("tpu").is_err());
    assert!(choose_device("cuda:x").is_err());
}

#[test]
fn libtorch_cuda_stays_linked_when_the_wheel_has_it() {
    // The build script keeps libtorch_cuda.so linked (--no-as-needed); without
    // it, CUDA would silently read as unavailable on GPU machines.
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        maps.contains("libtorch_cpu.so"),
        "libtorch is not loaded at all"
    );
    let torch_lib = maps
        .lines()
        .find_map(|l| {
            l.split_whitespace()
                .last()
                .filter(|p| p.ends_with("/libtorch_cpu.so"))
        })
        .map(|p| std::path::Path::new(p).parent().unwrap().to_path_buf())
        .unwrap();
    if torch_lib.join("libtorch_cuda.so").exists() {
        assert!(
            maps.contains("libtorch_cuda.so"),
            "libtorch_cuda.so was dropped by the linker"
        );
    }
}

#[test]
fn lists_of_lists_are_values_n_by_d() {
    let inner = Arc::new(Field::new("item", DataType::Float32, true));
    let inner_lists = ListArray::new(
        Arc::clone(&inner),
        arrow::buffer::OffsetBuffer::from_lengths([2, 2, 2]),
        Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
        None,
    );
    let field = Arc::new(Field::new("item", inner_lists.data_type().clone(), true));
    let outer = ListArray::new(
        field,
        arrow::buffer::OffsetBuffer::from_lengths([1, 0, 2]),
        Arc::new(inner_lists),
        None,
    );
    let batch = RecordBatch::try_from_iter([("boxes", Arc::new(outer) as ArrayRef)]).unwrap();
    let spec =
        TensorSpec::features(Vec::<String>::new(), ElementKind::F32).with_inner_width("boxes", 2);
    let asm = TensorAssembler::new(&batch.schema(), &spec, Device::Cpu).unwrap();
    let t = asm.convert(&batch).unwrap();
    match t.column("boxes").unwrap() {
        ColumnData::Ragged { values, offsets } => {
            assert_eq!(values.size(), [3, 2]);
            assert_eq!(vec_f64(values), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
            assert_eq!(vec_i64(offsets), vec![0, 1, 1, 3]);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn nested_lists_are_values_and_two_offsets_tensors() {
    // [[1, 2], null, []], null, [[], [3]] under a fill: null lists are empty.
    let mut b = ListBuilder::new(ListBuilder::new(Int32Builder::new()));
    b.values().values().append_slice(&[1, 2]);
    b.values().append(true);
    b.values().append(false);
    b.values().append(true);
    b.append(true);
    b.append(false);
    b.values().append(true);
    b.values().values().append_value(3);
    b.values().append(true);
    b.append(true);
    let batch = RecordBatch::try_from_iter([("n", Arc::new(b.finish()) as ArrayRef)]).unwrap();
    let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32)
        .with_nested_list("n")
        .with_nulls(NullPolicy::Fill(0.0));
    let asm = TensorAssembler::new(&batch.schema(), &spec, Device::Cpu).unwrap();
    let t = asm.convert(&batch).unwrap();
    match t.column("n").unwrap() {
        ColumnData::Nested {
            values,
            offsets,
            inner_offsets,
        } => {
            assert_eq!(values.kind(), Kind::Int);
            assert_eq!(vec_i64(values), [1, 2, 3]);
            assert_eq!(vec_i64(offsets), [0, 3, 3, 5]);
            assert_eq!(vec_i64(inner_offsets), [0, 2, 2, 2, 2, 3]);
        }
        other => panic!("n became {other:?}"),
    }
}
