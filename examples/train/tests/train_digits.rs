//! The training binary on real data: scikit-learn's digits (written by
//! scripts/make_digits_csv.py with the venv's python), converted to a
//! mosaicrs dataset with the real writer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use arrow::array::{AsArray, Float32Builder, Int64Array, ListBuilder, StringArray};
use arrow::csv::reader::Format;
use arrow::csv::ReaderBuilder;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use clap::Parser;
use mosaicrs::reader::Dataset;
use mosaicrs::testing;
use mosaicrs::testing::moto::Moto;
use mosaicrs::testing::publish_each_at;
use mosaicrs::writer::SaveMode;
use mosaicrs_train::train::{run, Report, TrainArgs};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The digits CSV converted to a dataset in `dir`, one shard per `shard_rows` rows.
fn digits_dataset(dir: &Path, shard_rows: usize) -> PathBuf {
    let csv = dir.join("digits.csv");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .arg(repo_root().join("scripts/make_digits_csv.py"))
        .arg(&csv)
        .status()
        .expect("run python (the Makefile puts the venv's python on PATH)");
    assert!(status.success(), "make_digits_csv.py failed");
    let file = std::fs::File::open(&csv).unwrap();
    let (schema, _) = Format::default()
        .with_header(true)
        .infer_schema(std::fs::File::open(&csv).unwrap(), None)
        .unwrap();
    let schema = Arc::new(schema);
    let reader = ReaderBuilder::new(schema.clone())
        .with_header(true)
        .with_batch_size(shard_rows)
        .build(file)
        .unwrap();
    let out = dir.join("digits.mosaicrs");
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(write_partitions(&out, "digits", &batches), 1797);
    out
}

/// Writes each batch as one write partition of a dataset at `out` and
/// commits it; returns the rows committed.
fn write_partitions(out: &Path, write_id: &str, batches: &[RecordBatch]) -> u64 {
    testing::write_partitions(
        out,
        &batches[0].schema(),
        write_id,
        batches.chunks(1),
        Default::default(),
        SaveMode::ErrorIfExists,
    )
    .unwrap()
    .total_rows
}

fn args(data: &Path, extra: &[&str]) -> TrainArgs {
    args_at(data.to_str().unwrap(), extra)
}

fn args_at(data: &str, extra: &[&str]) -> TrainArgs {
    let mut argv = vec![
        "mosaicrs-train",
        "--data",
        data,
        "--device",
        "cpu",
        "--workers",
        "2",
    ];
    argv.extend_from_slice(extra);
    TrainArgs::parse_from(argv)
}

/// Six epochs with seed 3, checkpointing into `checkpoints`, plus `extra`.
fn six_epochs(data: &Path, checkpoints: &Path, extra: &[&str]) -> Report {
    let mut argv = vec![
        "--epochs",
        "6",
        "--seed",
        "3",
        "--checkpoint-dir",
        checkpoints.to_str().unwrap(),
    ];
    argv.extend_from_slice(extra);
    run(&args(data, &argv)).unwrap()
}

#[test]
fn trains_digits_to_high_accuracy_and_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let data = digits_dataset(dir.path(), 1000);

    // Uninterrupted: 6 epochs.
    let full_dir = dir.path().join("full");
    let full = six_epochs(&data, &full_dir, &[]);
    let accuracy = full.accuracy.unwrap();
    assert!(accuracy >= 0.9, "held-out accuracy {accuracy}");
    assert!(full.holdout_rows as f64 / 1797.0 > 0.15);
    assert!(full.line().starts_with(&format!("accuracy={accuracy:.4} ")));
    assert!(full.line().contains("data_wait_s="));

    // Interrupted after 50 steps (mid-epoch), then resumed.
    let part_dir = dir.path().join("part");
    let stopped = six_epochs(&data, &part_dir, &["--stop-after-steps", "50"]);
    assert!(stopped.stopped_early);
    assert_eq!(stopped.steps, 50);
    let resumed = six_epochs(&data, &part_dir, &["--resume"]);
    assert_eq!(
        stopped.steps + resumed.steps,
        full.steps,
        "steps lost or repeated"
    );
    assert_eq!(resumed.accuracy, full.accuracy);
    assert_eq!(
        resumed.last_loss, full.last_loss,
        "the resumed run diverged"
    );
    let weights = |d: &Path| {
        let latest = std::fs::read_to_string(d.join("latest")).unwrap();
        std::fs::read(d.join(latest.trim()).join("model.safetensors")).unwrap()
    };
    assert_eq!(
        weights(&full_dir),
        weights(&part_dir),
        "final weights differ"
    );
}

fn train_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mosaicrs-train"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout),
    )
}

#[test]
fn bad_input_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = digits_dataset(dir.path(), 1000);
    let d = data.to_str().unwrap();

    let (ok, msg) = train_cli(&["--data", d, "--device", "cpu", "--features", "f1,pixels"]);
    assert!(!ok && msg.contains("\"pixels\""), "{msg}");
    let (ok, msg) = train_cli(&["--data", d, "--device", "cpu", "--label", "kind"]);
    assert!(!ok && msg.contains("\"kind\""), "{msg}");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (ok, msg) = train_cli(&["--data", empty.to_str().unwrap(), "--device", "cpu"]);
    assert!(!ok && msg.contains("index.json"), "{msg}");

    // A string column as a feature.
    let text = dir.path().join("text");
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("label", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["a", "b"])),
            Arc::new(Int64Array::from(vec![0, 1])),
        ],
    )
    .unwrap();
    write_one_shard(&text, &batch);
    let (ok, msg) = train_cli(&[
        "--data",
        text.to_str().unwrap(),
        "--device",
        "cpu",
        "--features",
        "name",
    ]);
    assert!(
        !ok && msg.contains("\"name\"") && msg.contains("numeric"),
        "{msg}"
    );

    // Resume with another seed, or onto another dataset, is refused.
    let ckpt = dir.path().join("ckpt");
    let c = ckpt.to_str().unwrap();
    let base = ["--device", "cpu", "--epochs", "1", "--checkpoint-dir", c];
    let (ok, msg) = train_cli(&[&["--data", d, "--stop-after-steps", "3"][..], &base].concat());
    assert!(ok, "{msg}");
    let (ok, msg) = train_cli(&[&["--data", d, "--resume", "--seed", "9"][..], &base].concat());
    assert!(!ok && msg.contains("seed"), "{msg}");
    // Same rows and columns, cut into other shards: a different dataset.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let other = digits_dataset(&other, 600);
    let (ok, msg) =
        train_cli(&[&["--data", other.to_str().unwrap(), "--resume"][..], &base].concat());
    assert!(
        !ok && msg.contains("cannot resume") && msg.contains("dataset"),
        "{msg}"
    );
    let (ok, msg) = train_cli(&[&["--data", d, "--resume"][..], &base].concat());
    assert!(
        ok && msg.contains("accuracy="),
        "resume on the same data must work: {msg}"
    );
}

/// Writes `batch` as a one-shard dataset at `dir`.
fn write_one_shard(dir: &Path, batch: &RecordBatch) {
    write_partitions(dir, "one", std::slice::from_ref(batch));
}

/// `pixels` list<float> (as Spark writes `array<float>`) and `label` bigint.
fn pixels_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new(
            "pixels",
            DataType::List(Arc::new(Field::new("item", DataType::Float32, true))),
            true,
        ),
        Field::new("label", DataType::Int64, false),
    ]))
}

/// The digits as Spark writes an embedding: `pixels` a variable-length list
/// of 64 floats (`array<float>`) plus the label, in shards of `shard_rows`.
fn digits_as_embeddings(dir: &Path, digits: &Path, shard_rows: usize) -> PathBuf {
    let source = mosaicrs::reader::Dataset::open(digits).unwrap();
    let schema = pixels_schema();
    let table = source.slice(0, source.num_rows()).unwrap();
    let columns: Vec<Vec<f64>> = (0..64)
        .map(|i| {
            let c = arrow::compute::cast(
                table.column_by_name(&format!("f{i}")).unwrap(),
                &DataType::Float64,
            )
            .unwrap();
            c.as_primitive::<arrow::datatypes::Float64Type>()
                .values()
                .to_vec()
        })
        .collect();
    let labels = table.column_by_name("label").unwrap().clone();
    let out = dir.join("digits-emb.mosaicrs");
    let batches: Vec<RecordBatch> = (0..table.num_rows())
        .step_by(shard_rows)
        .map(|start| {
            let end = (start + shard_rows).min(table.num_rows());
            let mut pixels = ListBuilder::new(Float32Builder::new());
            for row in start..end {
                for column in &columns {
                    pixels.values().append_value(column[row] as f32);
                }
                pixels.append(true);
            }
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(pixels.finish()), labels.slice(start, end - start)],
            )
            .unwrap()
        })
        .collect();
    write_partitions(&out, "emb", &batches);
    out
}

#[test]
fn trains_on_an_embedding_column_as_spark_writes_it() {
    let dir = tempfile::tempdir().unwrap();
    let digits = digits_dataset(dir.path(), 1000);
    let data = digits_as_embeddings(dir.path(), &digits, 700);
    let report = run(&args(&data, &["--epochs", "6", "--seed", "3"])).unwrap();
    let accuracy = report.accuracy.unwrap();
    assert!(accuracy >= 0.9, "held-out accuracy {accuracy}");
    // The same rows as the 64 scalar columns, so the same split and steps
    // (the order differs: it is tied to the dataset's fingerprint).
    let scalars = run(&args(&digits, &["--epochs", "6", "--seed", "3"])).unwrap();
    assert_eq!(report.holdout_rows, scalars.holdout_rows);
    assert_eq!(report.steps, scalars.steps);

    // A row of another length is named with its row, before any step runs.
    let ragged = dir.path().join("ragged");
    let mut pixels = ListBuilder::new(Float32Builder::new());
    for row in 0..40 {
        let n = if row == 17 { 3 } else { 4 };
        pixels.values().append_slice(&vec![row as f32; n]);
        pixels.append(true);
    }
    let batch = RecordBatch::try_new(
        pixels_schema(),
        vec![
            Arc::new(pixels.finish()),
            Arc::new(Int64Array::from_iter_values((0..40).map(|r| r % 2))),
        ],
    )
    .unwrap();
    write_one_shard(&ragged, &batch);
    let (ok, msg) = train_cli(&["--data", ragged.to_str().unwrap(), "--device", "cpu"]);
    assert!(
        !ok && msg.contains("\"pixels\"") && msg.contains("row 17") && msg.contains("holds 3"),
        "{msg}"
    );
}

#[test]
fn trains_from_s3_through_a_cache_a_third_of_the_dataset() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("digits");
    let dir = tempfile::tempdir().unwrap();
    let local = Dataset::open(digits_dataset(dir.path(), 150)).unwrap();
    let location = moto.location("s3://digits/train");
    publish_each_at(&location, local.batches().map(Result::unwrap));
    let index = location.load_index().unwrap();
    assert_eq!((index.shards.len(), index.total_rows), (12, 1797));
    let largest = index.shards.iter().map(|s| s.bytes).max().unwrap();
    // Two blocks of two shards: the block read and the one fetched ahead.
    let limit = 4 * largest + 4096;
    assert!(
        limit * 5 < index.total_bytes * 2,
        "{limit} vs {}",
        index.total_bytes
    );
    let cache = dir.path().join("cache");
    let mut extra: Vec<String> = [
        "--epochs",
        "6",
        "--seed",
        "3",
        "--shuffle",
        "block-local:2",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--cache-limit",
        &limit.to_string(),
    ]
    .map(String::from)
    .to_vec();
    for assignment in moto.assignments() {
        extra.extend(["--storage".to_string(), assignment]);
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let report = run(&args_at("s3://digits/train", &extra)).unwrap();
    let accuracy = report.accuracy.unwrap();
    eprintln!("{}", report.line());
    assert!(accuracy >= 0.85, "held-out accuracy {accuracy}");
    // Statistics, six epochs and the evaluation each stream the dataset.
    assert!(report.bytes_downloaded >= index.total_bytes);
    assert!(report.cache_peak_bytes > 0 && report.cache_peak_bytes <= limit);
    assert!(mosaicrs::storage::cache_usage(&cache).unwrap() <= limit);
    assert!(report
        .line()
        .contains(&format!("cache_peak_bytes={}", report.cache_peak_bytes)));

    // A global shuffle needs the whole dataset in the cache: refused, naming it.
    let mut global = extra.clone();
    global[5] = "global";
    let err = run(&args_at("s3://digits/train", &global)).err().unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!("at least {} bytes", index.total_bytes)),
        "{msg}"
    );
}
