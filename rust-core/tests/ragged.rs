//! Ragged columns (lists of numbers, lists of lists, strings, binary) written
//! from gathered sources: offsets, values, nulls, padding.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryArray, FixedSizeListArray, Float32Array, Int32Array, LargeBinaryArray,
    LargeListArray, LargeStringArray, ListArray, RecordBatch, StringArray,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{
    DataType, Field, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use mosaicrs::assemble::{BatchPlan, ElementKind, ElementsMut, NullPolicy, TensorSpec};
use mosaicrs::loader::Gathered;
use mosaicrs::Error;

fn rows(seed: i64, n: usize) -> Vec<Option<Vec<Option<i64>>>> {
    (0..n as i64)
        .map(|r| {
            (r % 5 != 3).then(|| {
                (0..(r * 7 + seed) % 6)
                    .map(|k| Some((r + k + seed) % 100))
                    .collect()
            })
        })
        .collect()
}

/// Two sources of one column, and picks that interleave them out of order.
fn gathered(a: ArrayRef, b: ArrayRef) -> Gathered {
    let batch = |c: ArrayRef| RecordBatch::try_from_iter([("c", c)]).unwrap();
    let picks = vec![(1, 2), (0, 0), (0, 3), (1, 0), (0, 1), (1, 5), (0, 2)];
    let rows = picks.iter().map(|&(s, r)| (s * 100 + r) as u64).collect();
    Gathered::new(vec![batch(a), batch(b)], picks, rows).unwrap()
}

fn expected(a: &[Option<Vec<Option<i64>>>], b: &[Option<Vec<Option<i64>>>]) -> Vec<Vec<i64>> {
    let picks = [(1, 2), (0, 0), (0, 3), (1, 0), (0, 1), (1, 5), (0, 2)];
    picks
        .iter()
        .map(|&(s, r)| {
            let src = if s == 0 { a } else { b };
            src[r]
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.unwrap())
                .collect()
        })
        .collect()
}

fn plan_for(g: &Gathered, nulls: NullPolicy) -> BatchPlan {
    let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32)
        .with_column("c")
        .with_nulls(nulls);
    BatchPlan::new(g.schema(), &spec).unwrap()
}

fn split(offsets: &[i64], values: &[i64], width: usize) -> Vec<Vec<i64>> {
    offsets
        .windows(2)
        .map(|w| values[w[0] as usize * width..w[1] as usize * width].to_vec())
        .collect()
}

macro_rules! list_of {
    ($t:ty, $rows:expr, $large:expr) => {{
        let rows = $rows
            .iter()
            .map(|r| {
                r.as_ref()
                    .map(|v| v.iter().map(|x| x.map(|x| x as _)).collect::<Vec<_>>())
            })
            .collect::<Vec<_>>();
        if $large {
            Arc::new(LargeListArray::from_iter_primitive::<$t, _, _>(rows)) as ArrayRef
        } else {
            Arc::new(ListArray::from_iter_primitive::<$t, _, _>(rows)) as ArrayRef
        }
    }};
}

#[test]
fn every_numeric_list_type_equals_the_source() {
    let (ra, rb) = (rows(0, 8), rows(3, 8));
    let want = expected(&ra, &rb);
    let cases: Vec<(ArrayRef, ArrayRef)> = vec![
        (list_of!(Int8Type, ra, false), list_of!(Int8Type, rb, false)),
        (
            list_of!(Int16Type, ra, false),
            list_of!(Int16Type, rb, false),
        ),
        (
            list_of!(Int32Type, ra, false),
            list_of!(Int32Type, rb, false),
        ),
        (
            list_of!(Int64Type, ra, false),
            list_of!(Int64Type, rb, false),
        ),
        (
            list_of!(UInt8Type, ra, false),
            list_of!(UInt8Type, rb, false),
        ),
        (
            list_of!(UInt16Type, ra, false),
            list_of!(UInt16Type, rb, false),
        ),
        (
            list_of!(UInt32Type, ra, false),
            list_of!(UInt32Type, rb, false),
        ),
        (
            list_of!(UInt64Type, ra, false),
            list_of!(UInt64Type, rb, false),
        ),
        (
            list_of!(Float32Type, ra, false),
            list_of!(Float32Type, rb, false),
        ),
        (
            list_of!(Float64Type, ra, true),
            list_of!(Float64Type, rb, true),
        ),
        (list_of!(Int32Type, ra, true), list_of!(Int32Type, rb, true)),
    ];
    for (a, b) in cases {
        let dt = a.data_type().clone();
        let g = gathered(a, b);
        // Null rows are an error naming the column and the dataset row.
        let err = plan_for(&g, NullPolicy::Error)
            .ragged(&plan_for(&g, NullPolicy::Error).columns()[0], &g)
            .unwrap_err();
        assert!(
            matches!(&err, Error::NullValue { column, row: 3 } if column == "c"),
            "{dt}: {err}"
        );
        // Under a fill policy they are empty.
        let plan = plan_for(&g, NullPolicy::Fill(0.0));
        let ragged = plan.ragged(&plan.columns()[0], &g).unwrap();
        let mut i64s = vec![0i64; ragged.value_count()];
        ragged.fill_values(ElementsMut::I64(&mut i64s)).unwrap();
        assert_eq!(split(ragged.offsets(), &i64s, 1), want, "{dt}");
        // A cast into another element type.
        let mut f64s = vec![0f64; ragged.value_count()];
        ragged.fill_values(ElementsMut::F64(&mut f64s)).unwrap();
        assert_eq!(f64s, i64s.iter().map(|&v| v as f64).collect::<Vec<_>>());
        // Padded: cut at 3, the rest `-1`.
        let mut padded = vec![0i64; g.len() * 3];
        ragged
            .fill_padded(ElementsMut::I64(&mut padded), 3, -1.0)
            .unwrap();
        for (i, row) in want.iter().enumerate() {
            let mut w: Vec<i64> = row.iter().copied().take(3).collect();
            w.resize(3, -1);
            assert_eq!(&padded[i * 3..i * 3 + 3], &w[..], "{dt}");
        }
        assert_eq!(ragged.longest(), want.iter().map(Vec::len).max().unwrap());
        let cut = ragged.first_longer_than(3).map(|(row, _)| row);
        let first = want.iter().position(|r| r.len() > 3).map(|i| g.rows()[i]);
        assert_eq!(cut, first);
    }
}

#[test]
fn null_elements_follow_the_policy() {
    let a: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), None, Some(3)]),
        Some(vec![Some(4)]),
    ]));
    let g = Gathered::new(
        vec![RecordBatch::try_from_iter([("c", a)]).unwrap()],
        vec![(0, 1), (0, 0)],
        vec![11, 10],
    )
    .unwrap();
    let plan = plan_for(&g, NullPolicy::Error);
    let ragged = plan.ragged(&plan.columns()[0], &g).unwrap();
    let mut out = vec![0i32; 4];
    let err = ragged.fill_values(ElementsMut::I32(&mut out)).unwrap_err();
    assert!(matches!(err, Error::NullValue { row: 10, .. }), "{err}");
    let plan = plan_for(&g, NullPolicy::Fill(-9.0));
    let ragged = plan.ragged(&plan.columns()[0], &g).unwrap();
    ragged.fill_values(ElementsMut::I32(&mut out)).unwrap();
    assert_eq!(out, [4, 1, -9, 3]);
}

#[test]
fn strings_and_binary_are_bytes_and_offsets() {
    let text = [Some("héllo"), None, Some(""), Some("ok")];
    let bytes: Vec<Option<&[u8]>> = text.iter().map(|t| t.map(str::as_bytes)).collect();
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(text.to_vec())),
        Arc::new(LargeStringArray::from(text.to_vec())),
        Arc::new(BinaryArray::from(bytes.clone())),
        Arc::new(LargeBinaryArray::from(bytes.clone())),
    ];
    for a in arrays {
        let dt = a.data_type().clone();
        let batch = RecordBatch::try_from_iter([("c", a)]).unwrap();
        let g = Gathered::new(
            vec![batch],
            vec![(0, 3), (0, 1), (0, 0), (0, 2)],
            vec![3, 1, 0, 2],
        )
        .unwrap();
        let err = plan_for(&g, NullPolicy::Error)
            .bytes(&plan_for(&g, NullPolicy::Error).columns()[0], &g)
            .unwrap_err();
        assert!(
            matches!(err, Error::NullValue { row: 1, .. }),
            "{dt}: {err}"
        );
        let plan = plan_for(&g, NullPolicy::Fill(0.0));
        let (values, offsets) = plan.bytes(&plan.columns()[0], &g).unwrap();
        assert_eq!(values, "okhéllo".as_bytes(), "{dt}");
        assert_eq!(offsets, [0, 2, 2, 8, 8], "{dt}");
        let ragged = plan.ragged(&plan.columns()[0], &g).unwrap();
        let mut padded = vec![0u8; 4 * 3];
        ragged
            .fill_padded(ElementsMut::U8(&mut padded), 3, 0.0)
            .unwrap();
        assert_eq!(padded, *b"ok\0\0\0\0h\xc3\xa9\0\0\0");
    }
}

#[test]
fn lists_of_lists_become_rows_of_d_values() {
    // list<list<f32>> with D = 2: row 1 has a null inner list, row 2 is null.
    let inner = Arc::new(Field::new("item", DataType::Float32, true));
    let inner_lists = ListArray::new(
        Arc::clone(&inner),
        OffsetBuffer::from_lengths([2, 2, 0, 2]),
        Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
        Some(vec![true, true, false, true].into()),
    );
    let outer_field = Arc::new(Field::new("item", inner_lists.data_type().clone(), true));
    let outer = ListArray::new(
        outer_field,
        OffsetBuffer::from_lengths([2, 2, 0]),
        Arc::new(inner_lists),
        Some(vec![true, true, false].into()),
    );
    let batch = RecordBatch::try_from_iter([("c", Arc::new(outer) as ArrayRef)]).unwrap();
    let g = Gathered::from_record_batch(&batch);
    let spec = |nulls| {
        TensorSpec::features(Vec::<String>::new(), ElementKind::F32)
            .with_inner_width("c", 2)
            .with_nulls(nulls)
    };
    let plan = BatchPlan::new(g.schema(), &spec(NullPolicy::Error)).unwrap();
    let err = plan.ragged(&plan.columns()[0], &g).unwrap_err();
    assert!(matches!(err, Error::NullValue { row: 1, .. }), "{err}");
    let plan = BatchPlan::new(g.schema(), &spec(NullPolicy::Fill(0.5))).unwrap();
    let ragged = plan.ragged(&plan.columns()[0], &g).unwrap();
    assert_eq!(ragged.offsets(), [0, 2, 4, 4]);
    assert_eq!(ragged.inner_width(), 2);
    let mut out = vec![0f32; ragged.value_count()];
    ragged.fill_values(ElementsMut::F32(&mut out)).unwrap();
    assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 0.5, 0.5, 5.0, 6.0]);
    // Without the width the plan refuses the column.
    let plain = TensorSpec::features(Vec::<String>::new(), ElementKind::F32).with_column("c");
    assert!(matches!(
        BatchPlan::new(g.schema(), &plain),
        Err(Error::UnsupportedColumn { .. })
    ));
    // An inner list of another length is named with its row.
    let spec3 =
        TensorSpec::features(Vec::<String>::new(), ElementKind::F32).with_inner_width("c", 3);
    let plan = BatchPlan::new(g.schema(), &spec3).unwrap();
    let err = plan.ragged(&plan.columns()[0], &g).unwrap_err().to_string();
    assert!(err.contains("\"c\"") && err.contains("row 0"), "{err}");
}

#[test]
fn lists_of_fixed_size_lists_need_no_width() {
    let inner = FixedSizeListArray::try_new(
        Arc::new(Field::new("item", DataType::Int32, true)),
        2,
        Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5, 6])),
        None,
    )
    .unwrap();
    let field = Arc::new(Field::new("item", inner.data_type().clone(), true));
    let outer = ListArray::new(
        field,
        OffsetBuffer::from_lengths([1, 0, 2]),
        Arc::new(inner),
        None,
    );
    let batch = RecordBatch::try_from_iter([("c", Arc::new(outer) as ArrayRef)]).unwrap();
    let g = Gathered::from_record_batch(&batch);
    let plan = plan_for(&g, NullPolicy::Error);
    let ragged = plan.ragged(&plan.columns()[0], &g).unwrap();
    assert_eq!(
        (ragged.offsets(), ragged.inner_width()),
        (&[0, 1, 1, 3][..], 2)
    );
    let mut out = vec![0i64; 6];
    ragged.fill_values(ElementsMut::I64(&mut out)).unwrap();
    assert_eq!(out, [1, 2, 3, 4, 5, 6]);
}

type Nested = Vec<Option<Vec<Option<Vec<Option<i64>>>>>>;

/// Lists of lists of every shape: null and empty samples, null and empty
/// inner lists, null values.
fn nested_rows(seed: i64, n: usize) -> Nested {
    (0..n as i64)
        .map(|r| {
            (r % 7 != 4).then(|| {
                (0..(r + seed) % 4)
                    .map(|k| {
                        ((r + k) % 5 != 2).then(|| {
                            (0..(r * 3 + k + seed) % 5)
                                .map(|v| ((r + k + v) % 11 != 10).then_some(r * 100 + k * 10 + v))
                                .collect()
                        })
                    })
                    .collect()
            })
        })
        .collect()
}

fn nested_array(rows: &Nested) -> ArrayRef {
    use arrow::array::{Int64Builder, ListBuilder};
    let mut b = ListBuilder::new(ListBuilder::new(Int64Builder::new()));
    for row in rows {
        match row {
            None => b.append(false),
            Some(lists) => {
                for list in lists {
                    match list {
                        None => b.values().append(false),
                        Some(values) => {
                            b.values().values().extend(values.iter().copied());
                            b.values().append(true);
                        }
                    }
                }
                b.append(true);
            }
        }
    }
    Arc::new(b.finish())
}

#[test]
fn nested_lists_have_two_levels_of_offsets() {
    let (a, b) = (nested_rows(0, 12), nested_rows(3, 9));
    let g = gathered(nested_array(&a), nested_array(&b));
    let picks = [(1, 2), (0, 0), (0, 3), (1, 0), (0, 1), (1, 5), (0, 2)];
    // Expected under a fill of -1: null samples and inner lists are empty.
    let samples: Vec<Vec<Vec<i64>>> = picks
        .iter()
        .map(|&(s, r)| {
            let src = if s == 0 { &a } else { &b };
            src[r]
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|l| {
                    l.unwrap_or_default()
                        .into_iter()
                        .map(|v| v.unwrap_or(-1))
                        .collect()
                })
                .collect()
        })
        .collect();
    let spec = |nulls| {
        TensorSpec::features(Vec::<String>::new(), ElementKind::F32)
            .with_nested_list("c")
            .with_nulls(nulls)
    };
    let plan = BatchPlan::new(g.schema(), &spec(NullPolicy::Fill(-1.0))).unwrap();
    let ragged = plan.ragged(&plan.columns()[0], &g).unwrap();
    let inner = ragged.inner_offsets().unwrap().to_vec();
    let mut values = vec![0i64; ragged.value_count()];
    ragged.fill_values(ElementsMut::I64(&mut values)).unwrap();
    let got: Vec<Vec<Vec<i64>>> = ragged
        .offsets()
        .windows(2)
        .map(|w| {
            (w[0] as usize..w[1] as usize)
                .map(|j| values[inner[j] as usize..inner[j + 1] as usize].to_vec())
                .collect()
        })
        .collect();
    assert_eq!(got, samples);
    let longest = samples.iter().map(Vec::len).max().unwrap();
    let longest_inner = samples.iter().flatten().map(Vec::len).max().unwrap();
    assert_eq!(
        (ragged.longest(), ragged.longest_inner()),
        (longest, longest_inner)
    );
    assert!(
        longest >= 2 && longest_inner >= 3,
        "the data covers cutting"
    );

    // Padded [B, L, M], cut to L = 2 lists of M = 2 values, the rest 9.
    let (l, m) = (2, 2);
    let mut padded = vec![0f32; picks.len() * l * m];
    ragged
        .fill_padded_nested(ElementsMut::F32(&mut padded), l, m, 9.0)
        .unwrap();
    for (i, sample) in samples.iter().enumerate() {
        for k in 0..l {
            for v in 0..m {
                let want = sample
                    .get(k)
                    .and_then(|list| list.get(v))
                    .map_or(9.0, |&x| x as f32);
                assert_eq!(
                    padded[(i * l + k) * m + v],
                    want,
                    "sample {i} list {k} value {v}"
                );
            }
        }
    }
    let (row, n) = ragged.first_inner_longer_than(m).unwrap();
    let i = samples
        .iter()
        .position(|s| s.iter().any(|x| x.len() > m))
        .unwrap();
    let (s, r) = picks[i];
    assert_eq!(row, (s * 100 + r) as u64);
    assert_eq!(n, samples[i].iter().map(Vec::len).find(|&x| x > m).unwrap());
    assert!(ragged.first_inner_longer_than(longest_inner).is_none());
    assert!(ragged
        .fill_padded(ElementsMut::F32(&mut padded), l, 0.0)
        .is_err());

    // Under the error policy the first null (sample, inner list or value) is
    // named with its dataset row.
    let plan = BatchPlan::new(g.schema(), &spec(NullPolicy::Error)).unwrap();
    let err = plan.ragged(&plan.columns()[0], &g).unwrap_err();
    assert!(matches!(err, Error::NullValue { .. }), "{err}");
    // A column that is not a list of lists is refused by name.
    let flat = gathered(
        list_of!(Int64Type, rows(0, 8), false),
        list_of!(Int64Type, rows(1, 8), false),
    );
    let refused = BatchPlan::new(
        flat.schema(),
        &TensorSpec::features(Vec::<String>::new(), ElementKind::F32).with_nested_list("c"),
    );
    assert!(matches!(refused, Err(Error::UnsupportedColumn { ref name, .. }) if name == "c"));
}

#[test]
fn nested_lists_skip_the_values_of_null_inner_lists() {
    // Inner list 1 is null but spans one value (7): it must not be copied.
    let inner = ListArray::new(
        Arc::new(Field::new("item", DataType::Int32, true)),
        OffsetBuffer::from_lengths([2, 1, 0, 3]),
        Arc::new(Int32Array::from(vec![1, 2, 7, 4, 5, 6])),
        Some(vec![true, false, true, true].into()),
    );
    let field = Arc::new(Field::new("item", inner.data_type().clone(), true));
    let outer = ListArray::new(
        field,
        OffsetBuffer::from_lengths([3, 1]),
        Arc::new(inner),
        None,
    );
    let batch = RecordBatch::try_from_iter([("c", Arc::new(outer) as ArrayRef)]).unwrap();
    let g = Gathered::from_record_batch(&batch);
    let spec = TensorSpec::features(Vec::<String>::new(), ElementKind::F32)
        .with_nested_list("c")
        .with_nulls(NullPolicy::Fill(0.0));
    let plan = BatchPlan::new(g.schema(), &spec).unwrap();
    let ragged = plan.ragged(&plan.columns()[0], &g).unwrap();
    assert_eq!(ragged.offsets(), [0, 3, 4]);
    assert_eq!(ragged.inner_offsets().unwrap(), [0, 2, 2, 2, 5]);
    let mut out = vec![0i32; ragged.value_count()];
    ragged.fill_values(ElementsMut::I32(&mut out)).unwrap();
    assert_eq!(out, [1, 2, 4, 5, 6]);
    let mut padded = vec![0i32; 2 * 3 * 2];
    ragged
        .fill_padded_nested(ElementsMut::I32(&mut padded), 3, 2, -1.0)
        .unwrap();
    assert_eq!(padded, [1, 2, -1, -1, -1, -1, 4, 5, -1, -1, -1, -1]);
}
