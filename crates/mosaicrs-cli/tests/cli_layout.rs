//! `convert --pack` and `--fixed-length`: the stored layout, what `inspect`
//! says about it, and the errors that name the column or flag; `convert
//! --mode append --merge-schema`: a column added to the stored schema.

use std::fmt::Write as _;
use std::fs;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Float64Type};
use mosaicrs::reader::Dataset;
use mosaicrs::writer::packed_columns;

mod common;
use common::{mosaicrs, text};

#[test]
fn convert_packs_columns_row_major_and_inspect_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    let mut body = String::from("a,b,c,label\n");
    for i in 0..500 {
        writeln!(body, "{},{},{},{}", i as f64 * 0.5, i, -(i as f64), i % 3).unwrap();
    }
    fs::write(&csv, body).unwrap();
    let out = dir.path().join("ds");
    let (csv, out_s) = (csv.to_str().unwrap(), out.to_str().unwrap());

    let run = mosaicrs(&["convert", csv, out_s, "--pack", "x=a,b,c", "--quiet"]);
    assert!(run.status.success(), "{}", text(&run.stderr));

    let ds = Dataset::open(&out).unwrap();
    let schema = ds.schema();
    let field = schema.field_with_name("x").unwrap();
    // Mixed float and integer columns pack as float64.
    assert!(
        matches!(field.data_type(), DataType::FixedSizeList(item, 3) if item.data_type() == &DataType::Float64)
    );
    assert_eq!(
        packed_columns(field),
        Some(vec!["a".into(), "b".into(), "c".into()])
    );
    let batch = ds.take(&[7, 0], None).unwrap();
    let x = batch.column(0).as_fixed_size_list();
    let values = x.values().as_primitive::<Float64Type>();
    assert_eq!(x.len(), 2);
    assert_eq!(&values.values()[..6], &[3.5, 7.0, -7.0, 0.0, 0.0, -0.0]);

    let inspect = mosaicrs(&["inspect", out_s]);
    let stdout = text(&inspect.stdout);
    assert!(
        stdout.contains("x: packed row-major, 3 x Float64: a, b, c"),
        "{stdout}"
    );
    let json = mosaicrs(&["inspect", out_s, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        doc["layout"]["x"]["columns"],
        serde_json::json!(["a", "b", "c"])
    );
    assert_eq!(doc["layout"]["x"]["width"], 3);
}

#[test]
fn bad_layout_flags_fail_before_writing_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("in.csv");
    fs::write(&csv, "a,s\n1.0,x\n").unwrap();
    let csv = csv.to_str().unwrap();
    for (flag, value, expected) in [
        ("--pack", "x=a,nope", "names column \"nope\""),
        ("--pack", "x=a,s", "only integer and floating-point"),
        ("--pack", "x", "expected NAME=VALUE"),
        ("--fixed-length", "a=3", "neither a list"),
    ] {
        let out = dir.path().join("never");
        let run = mosaicrs(&[
            "convert",
            csv,
            out.to_str().unwrap(),
            flag,
            value,
            "--quiet",
        ]);
        let stderr = text(&run.stderr);
        assert!(!run.status.success());
        assert!(stderr.contains(expected), "{flag} {value}: {stderr}");
        assert!(!out.join("index.json").exists());
    }
}

#[test]
fn convert_merge_schema_appends_a_column_that_older_rows_read_as_null() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.csv");
    let new = dir.path().join("new.csv");
    fs::write(&old, "id,x\n0,0.5\n1,1.5\n").unwrap();
    fs::write(&new, "id,x,label\n2,2.5,7\n").unwrap();
    let out = dir.path().join("ds");
    let (old, new, out_s) = (
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    assert!(mosaicrs(&["convert", old, out_s, "--quiet"])
        .status
        .success());

    let refused = mosaicrs(&["convert", new, out_s, "--mode", "append", "--quiet"]);
    let stderr = text(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("\"label\"") && stderr.contains("--merge-schema"),
        "{stderr}"
    );

    let args = ["convert", new, out_s, "--mode", "append", "--merge-schema"];
    let run = mosaicrs(&[&args[..], &["--quiet"]].concat());
    assert!(run.status.success(), "{}", text(&run.stderr));
    let ds = Dataset::open(&out).unwrap();
    let labels = ds.slice(0, 3).unwrap();
    let labels = labels
        .column_by_name("label")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int64Type>();
    assert_eq!(labels.iter().collect::<Vec<_>>(), [None, None, Some(7)]);
}
