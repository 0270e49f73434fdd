//! Appends with `mergeSchema`: added nullable columns, older shards read as
//! nulls in every reader, and the schema changes that stay refused.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float32Array, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use mosaicrs::assemble::{BatchPlan, ElementKind, ElementsMut, NullPolicy, TensorSpec};
use mosaicrs::loader::{Loader, LoaderConfig, ShuffleMode};
use mosaicrs::reader::{validate, Dataset};
use mosaicrs::storage::Location;
use mosaicrs::writer::{
    check_save_mode_with, write_batches, CommitOptions, SaveMode, WriteOptions,
};
use mosaicrs::Error;

fn field(name: &str, data_type: DataType, nullable: bool) -> Field {
    Field::new(name, data_type, nullable)
}

fn base_fields() -> Vec<Field> {
    vec![
        field("id", DataType::Int64, false),
        field("x", DataType::Float32, true),
    ]
}

/// `rows` rows from `first`: id, x = id / 2, and for each added field a
/// column of its type (`label` = id * 10, `tag` = "t<id>").
fn batch(fields: Vec<Field>, first: i64, rows: i64) -> (SchemaRef, RecordBatch) {
    let schema = Arc::new(Schema::new(fields));
    let ids = first..first + rows;
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| -> ArrayRef {
            match (f.name().as_str(), f.data_type()) {
                ("id", _) => Arc::new(Int64Array::from_iter_values(ids.clone())),
                (_, DataType::Float32) => Arc::new(Float32Array::from_iter_values(
                    ids.clone().map(|i| i as f32 / 2.0),
                )),
                (_, DataType::Float64) => Arc::new(Float64Array::from_iter_values(
                    ids.clone().map(|i| i as f64 / 2.0),
                )),
                (_, DataType::Utf8) => Arc::new(StringArray::from_iter_values(
                    ids.clone().map(|i| format!("t{i}")),
                )),
                _ => Arc::new(Int64Array::from_iter_values(ids.clone().map(|i| i * 10))),
            }
        })
        .collect();
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
    (schema, batch)
}

fn write(
    dir: &Path,
    fields: Vec<Field>,
    first: i64,
    rows: i64,
    options: &[(&str, &str)],
    mode: SaveMode,
) -> mosaicrs::Result<u64> {
    let (schema, batch) = batch(fields, first, rows);
    let options = WriteOptions::from_options(options.iter().copied())?;
    let report = write_batches(
        &Location::local(dir),
        &schema,
        [Ok(batch)],
        &options,
        mode,
        None,
    )?;
    Ok(report.outcome.total_rows)
}

/// 20 rows without `label` (an uncompressed shard, then a zstd one, in
/// batches of 4 rows), then 6 rows with it, appended with mergeSchema.
fn merged_dataset(dir: &Path) -> Arc<Dataset> {
    write(
        dir,
        base_fields(),
        0,
        10,
        &[("batchRows", "4")],
        SaveMode::ErrorIfExists,
    )
    .unwrap();
    let zstd = [("batchRows", "4"), ("compression", "zstd")];
    write(dir, base_fields(), 10, 10, &zstd, SaveMode::Append).unwrap();
    let mut added = base_fields();
    added.push(field("label", DataType::Int64, true));
    added.push(field("tag", DataType::Utf8, true));
    let merge = [("mergeSchema", "true")];
    assert_eq!(
        write(dir, added, 20, 6, &merge, SaveMode::Append).unwrap(),
        26
    );
    Arc::new(Dataset::open(dir).unwrap())
}

fn labels(batch: &RecordBatch) -> Vec<Option<i64>> {
    let column = batch.column_by_name("label").unwrap();
    let values = column.as_any().downcast_ref::<Int64Array>().unwrap();
    values.iter().collect()
}

#[test]
fn an_append_adds_nullable_columns_and_older_rows_read_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = merged_dataset(dir.path());
    let schema = dataset.schema();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "x", "label", "tag"]);
    assert_eq!(dataset.num_rows(), 26);
    // The commit that added them says so in the history.
    let change = dataset
        .index()
        .commit
        .as_ref()
        .unwrap()
        .schema_change
        .clone();
    let change = change.unwrap();
    assert!(
        change.contains("label") && change.contains("tag"),
        "{change}"
    );
    assert_eq!(dataset.version(), 2);

    // Every batch of every shard has the dataset's schema; the older ones
    // hold nulls in the added columns, mapped and decompressed alike.
    let mut all = Vec::new();
    for batch in dataset.batches() {
        let batch = batch.unwrap();
        assert_eq!(batch.schema(), schema);
        all.extend(labels(&batch));
    }
    let want: Vec<Option<i64>> = (0..26).map(|i| (i >= 20).then_some(i * 10)).collect();
    assert_eq!(all, want);
    let first = dataset.record_batch(0, 0).unwrap();
    assert_eq!(first.column(3).null_count(), 4);
    assert_eq!(first.column(3).data_type(), &DataType::Utf8);

    // take and slice across old and new shards.
    let taken = dataset.take(&[25, 3, 14, 20], None).unwrap();
    assert_eq!(labels(&taken), [Some(250), None, None, Some(200)]);
    let ids = taken
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap();
    assert_eq!(ids.values(), &[25, 3, 14, 20]);
    let sliced = dataset.slice(18, 4).unwrap();
    assert_eq!(labels(&sliced), [None, None, Some(200), Some(210)]);

    // Twice through the decoded-batch cache gives the same batch.
    let zstd_batch = dataset.record_batch(1, 1).unwrap();
    assert_eq!(dataset.record_batch(1, 1).unwrap(), zstd_batch);
    assert_eq!(labels(&zstd_batch), [None; 4]);

    let report = validate(dir.path()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    dataset.verify().unwrap();
}

#[test]
fn the_loader_applies_its_null_policy_to_added_columns() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = merged_dataset(dir.path());
    let schema = dataset.schema();
    let config = LoaderConfig {
        batch_size: 26,
        shuffle: ShuffleMode::Sequential,
        ..LoaderConfig::default()
    };
    let features = |nulls: NullPolicy| {
        let spec = TensorSpec::features(["x", "label"], ElementKind::F32).with_nulls(nulls);
        let plan = BatchPlan::new(&schema, &spec).unwrap();
        move |g: &mosaicrs::loader::Gathered| {
            let mut out = vec![0f32; g.len() * 2];
            plan.fill_features(g, ElementsMut::F32(&mut out))?;
            Ok(out)
        }
    };

    let mut loader = Loader::new(dataset.clone(), config.clone()).unwrap();
    let err = loader
        .epoch_with(features(NullPolicy::Error))
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, Error::NullValue { column, row: 0 } if column == "label"),
        "{err}"
    );

    let mut loader = Loader::new(dataset, config).unwrap();
    let batch = loader
        .epoch_with(features(NullPolicy::Fill(-1.0)))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let label: Vec<f32> = batch.data.chunks(2).map(|row| row[1]).collect();
    let want: Vec<f32> = (0..26)
        .map(|i| if i >= 20 { i as f32 * 10.0 } else { -1.0 })
        .collect();
    assert_eq!(label, want);
    assert_eq!(batch.data[2 * 7], 3.5);
}

#[test]
fn other_schema_changes_stay_refused_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        base_fields(),
        0,
        5,
        &[],
        SaveMode::ErrorIfExists,
    )
    .unwrap();
    let merge = [("mergeSchema", "true")];
    let refused = |fields: Vec<Field>, options: &[(&str, &str)]| {
        let err = write(dir.path(), fields, 5, 5, options, SaveMode::Append).unwrap_err();
        assert!(matches!(err, Error::SchemaMismatch { .. }), "{err}");
        err.to_string()
    };

    let changed = vec![
        field("id", DataType::Int64, false),
        field("x", DataType::Float64, true),
    ];
    let message = refused(changed, &merge);
    assert!(
        message.contains("\"x\"") && message.contains("Float64"),
        "{message}"
    );

    let mut strict = base_fields();
    strict.push(field("label", DataType::Int64, false));
    let message = refused(strict, &merge);
    assert!(
        message.contains("\"label\"") && message.contains("non-nullable"),
        "{message}"
    );

    let removed = vec![field("id", DataType::Int64, false)];
    assert!(refused(removed, &merge).contains("\"x\" is missing"));

    let mut reordered = base_fields();
    reordered.swap(0, 1);
    assert!(refused(reordered, &merge).contains("\"id\" moved"));

    let mut added = base_fields();
    added.push(field("label", DataType::Int64, true));
    let message = refused(added.clone(), &[]);
    assert!(
        message.contains("\"label\"") && message.contains(r#".option("mergeSchema", "true")"#),
        "{message}"
    );
    // The check before any shard is written applies the same rule.
    let (schema, _) = batch(added, 0, 0);
    let location = Location::local(dir.path());
    let plain = check_save_mode_with(&location, &schema, SaveMode::Append, &Default::default());
    assert!(plain.unwrap_err().to_string().contains("mergeSchema"));
    let options = CommitOptions {
        merge_schema: true,
        ..CommitOptions::default()
    };
    check_save_mode_with(&location, &schema, SaveMode::Append, &options).unwrap();

    // Nothing refused reached the dataset, and its files are only its own.
    let dataset = Dataset::open(dir.path()).unwrap();
    assert_eq!(dataset.num_rows(), 5);
    assert_eq!(dataset.schema().fields().len(), 2);
    assert_eq!(mosaicrs::testing::files_in(dir.path()).len(), 2);
}

#[test]
fn projected_decodes_of_older_shards_fill_the_added_columns() {
    let dir = tempfile::tempdir().unwrap();
    let dataset = merged_dataset(dir.path());
    // Shard 0 (uncompressed) and 1 (zstd) predate "label" and "tag";
    // shard 2 has them. Projections mix old and added columns, in any order.
    for shard in 0..3 {
        let full = dataset.shards()[shard].batch(0).unwrap();
        for projection in [vec![2, 0], vec![3], vec![1], vec![3, 1, 2, 0]] {
            let projected = dataset.shards()[shard]
                .batch_projected(0, &projection)
                .unwrap();
            assert_eq!(
                projected,
                full.project(&projection).unwrap(),
                "{shard} {projection:?}"
            );
        }
    }
    assert!(dataset.shards()[0].batch_projected(0, &[4]).is_err());
}
