//! Synthetic datasets written with the real writer, and loaders run to the
//! end of an epoch, for the tests, benches and examples of every crate
//! (cargo feature `testing`). These helpers panic on failure: they are test
//! support, not library code.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let dataset = mosaicrs::testing::write_dataset(dir.path(), 100, 2, 16, Default::default());
//! assert_eq!(dataset.num_rows(), 100);
//! # Ok::<(), std::io::Error>(())
//! ```

#[cfg(unix)]
pub mod moto;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::format::{Compression, ShardEntry};
use crate::loader::{
    Gathered, LoadedBatch, Loader, LoaderConfig, ShuffleMode, SplitMix64, TailPolicy,
};
use crate::reader::Dataset;
use crate::storage::Location;
use crate::writer::{commit, CommitOutcome, SaveMode, ShardWriter, WriterOptions};
use crate::{Error, Result};
use arrow::array::*;
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::*;
use arrow::record_batch::RecordBatch;

/// Writes `batches` as one task attempt (`partition`, attempt 0) of write
/// `write_id` and returns its sealed shards, uncommitted.
pub fn write_shards(
    dir: &Path,
    write_id: &str,
    partition: u32,
    batches: &[RecordBatch],
    options: WriterOptions,
) -> Vec<ShardEntry> {
    let schema = batches
        .first()
        .map(RecordBatch::schema)
        .expect("one batch or more");
    let mut w = ShardWriter::create(dir, schema, write_id, partition, 0, options).expect("create");
    for b in batches {
        w.write(b).expect("write");
    }
    w.finish().expect("finish")
}

/// Writes each slice of `partitions` as one write partition of write
/// `write_id` and commits them all in `mode`; every batch has `schema`.
///
/// ```
/// use mosaicrs::testing::{simple_batch, simple_schema, write_partitions};
/// use mosaicrs::writer::SaveMode;
/// let dir = tempfile::tempdir().unwrap();
/// let parts = [simple_batch(10, 0), simple_batch(5, 10)];
/// let outcome = write_partitions(dir.path(), &simple_schema(), "w0", parts.chunks(1),
///     Default::default(), SaveMode::ErrorIfExists).unwrap();
/// assert_eq!(outcome.total_rows, 15);
/// ```
pub fn write_partitions<'a>(
    dir: &Path,
    schema: &SchemaRef,
    write_id: &str,
    partitions: impl IntoIterator<Item = &'a [RecordBatch]>,
    options: WriterOptions,
    mode: SaveMode,
) -> Result<CommitOutcome> {
    let mut shards = Vec::new();
    for (p, batches) in partitions.into_iter().enumerate() {
        let partition = u32::try_from(p)
            .map_err(|_| Error::InvalidArgument(format!("partition {p} is past u32")))?;
        let mut w = ShardWriter::create(dir, schema.clone(), write_id, partition, 0, options)?;
        for b in batches {
            w.write(b)?;
        }
        shards.extend(w.finish()?);
    }
    commit(dir, schema, write_id, shards, mode)
}

/// Writes and commits `batches` as a new dataset (write `w0`, one partition).
pub fn write_batches(
    dir: &Path,
    batches: &[RecordBatch],
    options: WriterOptions,
) -> Result<CommitOutcome> {
    let schema = batches
        .first()
        .map(RecordBatch::schema)
        .ok_or_else(|| Error::InvalidArgument("write_batches needs one batch or more".into()))?;
    write_partitions(
        dir,
        &schema,
        "w0",
        [batches],
        options,
        SaveMode::ErrorIfExists,
    )
}

/// Writes `n` rows (`id` = row number, `x` = id / 2) as `parts` write
/// partitions (one or more shards each) with record batches of at most
/// `batch_rows` rows, and opens the dataset.
pub fn write_dataset(
    dir: &Path,
    n: u64,
    parts: u64,
    batch_rows: usize,
    compression: Compression,
) -> Arc<Dataset> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float32, false),
    ]));
    let options = WriterOptions {
        max_batch_rows: Some(batch_rows),
        compression,
        ..WriterOptions::default()
    };
    let per_part = n.div_ceil(parts.max(1));
    let partitions: Vec<Vec<RecordBatch>> = (0..parts)
        .map(|p| {
            let start = p * per_part;
            let end = ((p + 1) * per_part).min(n);
            if end <= start {
                return Vec::new();
            }
            let ids = Int64Array::from_iter_values(start as i64..end as i64);
            let xs = Float32Array::from_iter_values((start..end).map(|i| i as f32 / 2.0));
            vec![RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(xs)]).unwrap()]
        })
        .collect();
    write_partitions(
        dir,
        &schema,
        "test",
        partitions.iter().map(Vec::as_slice),
        options,
        SaveMode::ErrorIfExists,
    )
    .expect("write");
    Arc::new(Dataset::open(dir).expect("open"))
}

/// A table of float32 features, as the benchmarks read: an optional `id`
/// (the row number), `f0..fN` pseudo-random in [0, 1) and a `label` in 0..10.
///
/// ```
/// use mosaicrs::testing::FeatureTable;
/// let table = FeatureTable::new(100, 4).with_id();
/// let batches = table.batches();
/// assert_eq!(batches[0].num_columns(), 6);
/// assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 100);
/// ```
#[derive(Debug, Clone)]
pub struct FeatureTable {
    rows: u64,
    features: usize,
    id: bool,
    label: DataType,
    seed: u64,
}

impl FeatureTable {
    /// Rows per record batch.
    const BATCH_ROWS: u64 = 65_536;

    /// `rows` rows of `features` float32 columns and an int64 label.
    pub fn new(rows: u64, features: usize) -> Self {
        FeatureTable {
            rows,
            features,
            id: false,
            label: DataType::Int64,
            seed: 1,
        }
    }

    /// Adds an int64 `id` column first.
    pub fn with_id(mut self) -> Self {
        self.id = true;
        self
    }

    /// The label's type: `Int32` or `Int64`.
    pub fn with_label_type(mut self, label: DataType) -> Self {
        self.label = label;
        self
    }

    /// The seed of the values.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The table's schema.
    pub fn schema(&self) -> SchemaRef {
        let id = self.id.then(|| Field::new("id", DataType::Int64, false));
        let features =
            (0..self.features).map(|i| Field::new(format!("f{i}"), DataType::Float32, false));
        let label = Field::new("label", self.label.clone(), false);
        Arc::new(Schema::new(
            id.into_iter()
                .chain(features)
                .chain([label])
                .collect::<Vec<_>>(),
        ))
    }

    /// The rows, in record batches of at most 65,536 rows.
    pub fn batches(&self) -> Vec<RecordBatch> {
        let schema = self.schema();
        let mut rng = SplitMix64::new(self.seed);
        let mut batches = Vec::new();
        let mut start = 0;
        while start < self.rows {
            let n = Self::BATCH_ROWS.min(self.rows - start);
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.features + 2);
            if self.id {
                columns.push(Arc::new(Int64Array::from_iter_values(
                    start as i64..(start + n) as i64,
                )));
            }
            for _ in 0..self.features {
                columns.push(Arc::new(Float32Array::from_iter_values(
                    (0..n).map(|_| (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32),
                )));
            }
            let labels = (0..n).map(|_| rng.below(10) as i64);
            columns.push(match self.label {
                DataType::Int32 => Arc::new(Int32Array::from_iter_values(labels.map(|l| l as i32))),
                _ => Arc::new(Int64Array::from_iter_values(labels)),
            });
            batches.push(RecordBatch::try_new(schema.clone(), columns).expect("valid batch"));
            start += n;
        }
        batches
    }

    /// Writes the table as one write partition (write id `bench`) and commits it in `mode`.
    pub fn write(
        &self,
        dir: &Path,
        options: WriterOptions,
        mode: SaveMode,
    ) -> Result<CommitOutcome> {
        let batches = self.batches();
        write_partitions(dir, &self.schema(), "bench", [&batches[..]], options, mode)
    }
}

/// A loader configuration for tests.
pub fn config(batch_size: usize, world_size: usize, rank: usize, workers: usize) -> LoaderConfig {
    LoaderConfig {
        batch_size,
        seed: 42,
        shuffle: ShuffleMode::Global,
        tail: TailPolicy::DropLast,
        rank,
        world_size,
        workers,
        prefetch: 2,
        columns: None,
        rows: None,
    }
}

/// The `id` column of a delivered batch.
pub fn ids(batch: &LoadedBatch<RecordBatch>) -> Vec<u64> {
    let col = batch.data.column_by_name("id").expect("id column");
    let ids = col.as_any().downcast_ref::<Int64Array>().expect("int64");
    assert_eq!(ids.null_count(), 0);
    ids.values().iter().map(|&v| v as u64).collect()
}

/// Runs the rest of the current epoch; returns each batch's (position, rows),
/// after checking that the gathered ids equal the reported rows.
pub fn run_epoch(loader: &mut Loader) -> Vec<(u64, Vec<u64>, usize)> {
    run_steps(loader, usize::MAX)
}

/// Runs at most `steps` batches of the current epoch.
pub fn run_steps(loader: &mut Loader, steps: usize) -> Vec<(u64, Vec<u64>, usize)> {
    let mut out = Vec::new();
    for batch in loader.epoch().expect("epoch").take(steps) {
        let batch = batch.expect("batch");
        assert_eq!(ids(&batch), batch.rows, "gathered ids differ from the rows");
        let x = batch.data.column_by_name("x").expect("x column");
        let x = x.as_any().downcast_ref::<Float32Array>().expect("f32");
        for (i, &row) in batch.rows.iter().enumerate() {
            assert_eq!(x.value(i), row as f32 / 2.0);
        }
        out.push((batch.position, batch.rows, batch.padding));
    }
    out
}

/// The first batch of a shuffled epoch (`batch` samples) as the loader's
/// workers gather it, for benches of what happens to a batch next.
pub fn first_gathered(dataset: &Arc<Dataset>, batch: usize) -> Gathered {
    let mut loader = Loader::new(Arc::clone(dataset), config(batch, 1, 0, 1)).expect("loader");
    let first = loader
        .epoch_with(|g| Ok(g.clone()))
        .expect("epoch")
        .next()
        .expect("a batch")
        .expect("batch");
    first.data
}

/// Benches the core's fill of `g`'s features (by `spec`) into a plain f32
/// buffer, and Arrow's `interleave` of the same samples (what the loader did
/// before it wrote straight into the buffer): the baselines of the gather
/// benches.
pub fn bench_fill_baselines(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    g: &Gathered,
    spec: &crate::assemble::TensorSpec,
) {
    use crate::assemble::{BatchPlan, ElementsMut};
    let plan = BatchPlan::new(g.schema(), spec).expect("plan");
    let mut out = vec![0f32; g.len() * plan.feature_width()];
    group.bench_function("plain_buffer", |b| {
        b.iter(|| {
            plan.fill_features(g, ElementsMut::F32(&mut out))
                .expect("fill");
            std::hint::black_box(&out);
        })
    });
    group.bench_function("arrow_interleave_baseline", |b| {
        b.iter(|| std::hint::black_box(g.to_record_batch().expect("interleave")))
    });
}

/// The loader's gather over a mapped dataset (all columns), for the
/// benches: rows to `(source, row)` picks, as a loader worker resolves them.
pub struct RowGather(crate::loader::GatherTable);

impl RowGather {
    /// The gather table of `dataset`, built as [`Loader::new`] builds it.
    pub fn new(dataset: &Arc<Dataset>) -> Self {
        let projection = (0..dataset.schema().fields().len()).collect();
        let source = crate::reader::DataSource::Mapped(Arc::clone(dataset));
        RowGather(crate::loader::GatherTable::new(source, projection).expect("table"))
    }

    /// The picks of `rows`, in order.
    pub fn gather(&self, rows: &[u64]) -> Gathered {
        self.0.gather(rows.to_vec()).expect("gather")
    }
}

/// Short criterion settings for the quick benches (`make bench-quick`).
pub fn quick_criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(800))
}

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

/// The schema of [`simple_batch`].
pub fn simple_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, false),
    ]))
}

/// Names of the files in `dir` (not its folders, such as `_versions`), sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry"))
        .filter(|e| !e.file_type().expect("file type").is_dir())
        .map(|e| e.file_name().into_string().expect("utf8"))
        .collect();
    names.sort();
    names
}

/// Writes `batches` to `location` as write `write_id` (one write task),
/// uncommitted; returns its shards.
pub fn write_at(
    location: &Location,
    write_id: &str,
    batches: &[RecordBatch],
    options: WriterOptions,
) -> Vec<crate::format::ShardEntry> {
    let schema = batches.first().expect("at least one batch").schema();
    let mut w = ShardWriter::create_at(location, schema, write_id, 0, 0, options).expect("create");
    for b in batches {
        w.write(b).expect("write");
    }
    w.finish().expect("finish")
}

/// Writes `batches` to `location` and commits them with `mode`; returns the
/// committed shards.
pub fn publish_at(
    location: &Location,
    write_id: &str,
    batches: &[RecordBatch],
    options: WriterOptions,
    mode: SaveMode,
) -> Vec<crate::format::ShardEntry> {
    let shards = write_at(location, write_id, batches, options);
    let schema = batches[0].schema();
    crate::writer::commit_at(location, &schema, write_id, shards.clone(), mode, None)
        .expect("commit");
    shards
}

/// One of two racing writers: reads the dataset's version at `location`,
/// writes `batch` as write `write_id`, waits for the other writer at
/// `barrier`, then commits with `mode` against the version it read.
pub fn racing_commit(
    location: &Location,
    write_id: &str,
    batch: &RecordBatch,
    mode: SaveMode,
    barrier: &std::sync::Barrier,
) -> crate::Result<crate::writer::CommitOutcome> {
    let base = crate::writer::dataset_version_at(location).expect("version");
    let shards = write_at(
        location,
        write_id,
        std::slice::from_ref(batch),
        Default::default(),
    );
    barrier.wait();
    crate::writer::commit_at(
        location,
        &batch.schema(),
        write_id,
        shards,
        mode,
        Some(&base),
    )
}

/// Publishes each batch as its own committed write (`w00`, `w01`, ...;
/// the first creates the dataset, the others append), so the dataset at
/// `location` has one shard per batch, in order.
pub fn publish_each_at(location: &Location, batches: impl IntoIterator<Item = RecordBatch>) {
    for (i, batch) in batches.into_iter().enumerate() {
        let mode = if i == 0 {
            SaveMode::ErrorIfExists
        } else {
            SaveMode::Append
        };
        publish_at(
            location,
            &format!("w{i:02}"),
            &[batch],
            Default::default(),
            mode,
        );
    }
}
