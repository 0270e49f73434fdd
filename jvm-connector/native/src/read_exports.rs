//! Reading a dataset back into Spark: schema, scan planning, and record
//! batches handed to the JVM as raw Arrow buffers.
//!
//! The JVM class `io.mosaicrs.spark.read.NativeScan` declares these exports.
//! No Arrow Java is involved on either side: for each batch, every column is
//! walked depth-first and each of its buffers (validity, offsets, values)
//! becomes a direct `java.nio.ByteBuffer` over the same memory, which for an
//! uncompressed shard is the memory-mapped file itself. Java reads them with
//! its own `ColumnVector` classes. The buffers stay valid until the JVM asks
//! for the next batch or closes the scan: the handle keeps the batch alive.
//!
//! Types that are not in Spark's form (large offsets, other time units,
//! dictionaries, unsigned ints: datasets the CLI converted) are cast in Rust
//! to the canonical Arrow type of their Spark type, so the JVM only ever sees
//! the types the Spark writer produces.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use jni::objects::{JClass, JObject, JObjectArray, JString};
use jni::sys::{jint, jlong, jobject, jobjectArray};
use jni::JNIEnv;
use mosaicrs::format::{Index, ShardEntry, VersionSpec};
use mosaicrs::reader::{ReadOptions, Shard};
use mosaicrs::storage::Location;
use mosaicrs::Error;
use serde_json::{json, Value};

use crate::contract::{BUFFER_STRIDE, NODE_STRIDE};
use crate::convert::{self, FromJava, ScanDescription, ScanPartition, ToJava};
use crate::error::{guard, BridgeError, BridgeResult};
use crate::handle::{Handle, Owned};

/// The Spark type (as Spark's JSON) and the Arrow type the JVM reads for `data_type`.
///
/// `path` names the column (nested fields joined by `.`) in errors.
fn spark_type(path: &str, data_type: &DataType) -> BridgeResult<(Value, DataType)> {
    let unsupported = |reason: &str| -> BridgeError {
        Error::UnsupportedColumn {
            name: path.to_string(),
            data_type: data_type.to_string(),
            reason: format!("{reason}; Spark cannot read this column (select other columns with the mosaicrs reader, or convert it)"),
        }
        .into()
    };
    let simple = |name: &str, arrow: DataType| Ok((Value::String(name.into()), arrow));
    match data_type {
        DataType::Null => simple("void", DataType::Null),
        DataType::Boolean => simple("boolean", DataType::Boolean),
        DataType::Int8 => simple("byte", DataType::Int8),
        DataType::Int16 | DataType::UInt8 => simple("short", DataType::Int16),
        DataType::Int32 | DataType::UInt16 => simple("integer", DataType::Int32),
        DataType::Int64 | DataType::UInt32 => simple("long", DataType::Int64),
        DataType::UInt64 => simple("decimal(20,0)", DataType::Decimal128(20, 0)),
        DataType::Float16 | DataType::Float32 => simple("float", DataType::Float32),
        DataType::Float64 => simple("double", DataType::Float64),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s)
            if *s >= 0 && *s as u8 <= *p && *p <= 38 =>
        {
            simple(&format!("decimal({p},{s})"), DataType::Decimal128(*p, *s))
        }
        DataType::Decimal256(p, s) if *s >= 0 && *s as u8 <= *p && *p <= 38 => {
            simple(&format!("decimal({p},{s})"), DataType::Decimal128(*p, *s))
        }
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => Err(unsupported(
            "Spark decimals have a precision of at most 38 and a scale between 0 and the precision",
        )),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            simple("string", DataType::Utf8)
        }
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => simple("binary", DataType::Binary),
        DataType::Date32 | DataType::Date64 => simple("date", DataType::Date32),
        DataType::Timestamp(_, tz) => {
            let name = if tz.is_some() {
                "timestamp"
            } else {
                "timestamp_ntz"
            };
            simple(name, DataType::Timestamp(TimeUnit::Microsecond, tz.clone()))
        }
        DataType::List(item)
        | DataType::LargeList(item)
        | DataType::ListView(item)
        | DataType::LargeListView(item)
        | DataType::FixedSizeList(item, _) => {
            let (element, arrow) = spark_type(&format!("{path}.element"), item.data_type())?;
            Ok((
                json!({"type": "array", "elementType": element, "containsNull": true}),
                DataType::List(Arc::new(Field::new("element", arrow, true))),
            ))
        }
        DataType::Struct(fields) => {
            let mut spark_fields = Vec::with_capacity(fields.len());
            let mut arrow_fields = Vec::with_capacity(fields.len());
            for field in fields.iter() {
                let (t, arrow) =
                    spark_type(&format!("{path}.{}", field.name()), field.data_type())?;
                spark_fields.push(
                    json!({"name": field.name(), "type": t, "nullable": true, "metadata": {}}),
                );
                arrow_fields.push(Field::new(field.name(), arrow, true));
            }
            Ok((
                json!({"type": "struct", "fields": spark_fields}),
                DataType::Struct(arrow_fields.into()),
            ))
        }
        DataType::Map(entries, sorted) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(unsupported("its map entries are not a struct"));
            };
            if kv.len() != 2 {
                return Err(unsupported("its map entries do not have a key and a value"));
            }
            let (key, key_arrow) = spark_type(&format!("{path}.key"), kv[0].data_type())?;
            let (value, value_arrow) = spark_type(&format!("{path}.value"), kv[1].data_type())?;
            let entries = Field::new(
                entries.name(),
                DataType::Struct(
                    vec![
                        Field::new(kv[0].name(), key_arrow, false),
                        Field::new(kv[1].name(), value_arrow, true),
                    ]
                    .into(),
                ),
                false,
            );
            Ok((
                json!({"type": "map", "keyType": key, "valueType": value, "valueContainsNull": true}),
                DataType::Map(Arc::new(entries), *sorted),
            ))
        }
        DataType::Dictionary(_, value) => spark_type(path, value),
        _ => Err(unsupported("which has no Spark SQL type")),
    }
}

/// The dataset's schema as Spark's JSON for a `StructType`.
fn spark_schema_json(schema: &Schema) -> BridgeResult<String> {
    let mut fields = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let (t, _) = spark_type(field.name(), field.data_type())?;
        fields.push(json!({"name": field.name(), "type": t, "nullable": true, "metadata": {}}));
    }
    Ok(json!({"type": "struct", "fields": fields}).to_string())
}

/// One scan partition: batches `first..end` of the index's shard `shard`.
#[derive(Debug, PartialEq, Eq)]
struct Partition {
    shard: usize,
    first: usize,
    end: usize,
    rows: u64,
}

/// Splits the dataset into scan partitions of about `target_bytes`, from its
/// index and schema (already read: the driver reads the index once per scan).
///
/// Each partition is a range of record batches of one shard. A shard up to
/// `target_bytes` is one partition and needs no more than its index entry. A
/// larger local shard is opened (its footer holds the batch boundaries) and
/// cut at batch boundaries; a larger remote one stays whole, since cutting it
/// would mean downloading it on the driver, and a task verifies the checksum
/// of the whole file anyway.
fn scan_partitions(
    location: &Location,
    index: &Index,
    schema: &SchemaRef,
    target_bytes: u64,
) -> BridgeResult<Vec<Partition>> {
    let target = target_bytes.max(1);
    let mut partitions = Vec::new();
    for (i, entry) in index.shards.iter().enumerate() {
        let batches = usize::try_from(entry.batches)
            .map_err(|_| Error::Internal("batch count exceeds usize".into()))?;
        if batches == 0 {
            continue;
        }
        let pieces = entry
            .bytes
            .div_ceil(target)
            .clamp(1, u64::from(entry.batches)) as usize;
        if pieces == 1 || location.as_local().is_none() {
            partitions.push(Partition {
                shard: i,
                first: 0,
                end: batches,
                rows: entry.rows,
            });
            continue;
        }
        // Only the batch offsets are read here.
        let read = ReadOptions {
            batch_cache_bytes: 0,
            ..ReadOptions::default()
        };
        let shard = Shard::open_at(location, entry, schema, &read)?;
        let offsets = shard.batch_row_offsets();
        // Even batch counts per piece: batches are bounded in rows, so this
        // spreads rows (and bytes, for fixed-width rows) evenly enough.
        for piece in 0..pieces {
            let first = batches * piece / pieces;
            let end = batches * (piece + 1) / pieces;
            if first < end {
                partitions.push(Partition {
                    shard: i,
                    first,
                    end,
                    rows: offsets[end] - offsets[first],
                });
            }
        }
    }
    Ok(partitions)
}

/// `ScanDescription describe(DatasetLocation location, long targetPartitionBytes,
/// long version, long asOfMs)`
///
/// Everything the driver needs to scan the dataset, from one read of the
/// index of the version asked for (`version` when it is 0 or more, else the
/// newest committed at or before `asOfMs` when that is 0 or more, else the
/// newest; an unkept version throws `MosaicrsVersionNotFoundException`
/// naming it and the oldest kept): the Spark schema (Spark's JSON of a `StructType`, read with
/// `DataType.fromJson`), the Arrow schema (base64 IPC), the totals, and the
/// scan partitions, each with its shard's index entry and batch range.
/// Fails naming the path when there is no dataset, and naming the column
/// when a column has no Spark type.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_read_NativeScan_describe<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    location: JObject<'local>,
    target_bytes: jlong,
    version: jlong,
    as_of_ms: jlong,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let location = convert::location(env, &location)?;
        let target = convert::non_negative(target_bytes, "the scan partition size")?;
        let spec = match (u64::try_from(version), u64::try_from(as_of_ms)) {
            (Ok(v), _) => VersionSpec::Version(v),
            (Err(_), Ok(ms)) => VersionSpec::AsOfTimestampMs(ms),
            _ => VersionSpec::Latest,
        };
        let index = location.load_index_at(&spec)?;
        let schema = index.arrow_schema()?;
        let spark_schema = spark_schema_json(&schema)?;
        let partitions = scan_partitions(&location, &index, &schema, target)?
            .into_iter()
            .map(|p| ScanPartition {
                entry: index.shards[p.shard].clone(),
                first: p.first,
                end: p.end,
                rows: p.rows,
            })
            .collect();
        let description = ScanDescription {
            spark_schema_json: spark_schema,
            arrow_schema: index.schema.clone(),
            total_rows: index.total_rows,
            total_bytes: index.total_bytes,
            partitions,
        };
        Ok(description.to_java(env)?.into_raw())
    })
}

/// `long parseSize(String text)`: a byte size such as `67108864`, `64m` or `1g`.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_read_NativeScan_parseSize<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    text: JString<'local>,
) -> jlong {
    guard(&mut env, -1, |env| {
        let text = convert::string(env, &text)?;
        let bytes = mosaicrs::units::parse_byte_size(&text)?;
        Ok(jlong::try_from(bytes)
            .map_err(|_| Error::InvalidArgument(format!("size {text:?} is too large")))?)
    })
}

/// One partition's scan: a range of record batches of one shard, projected.
struct ScanState {
    shard: Shard,
    /// Positions of the requested columns in the shard schema.
    projection: Vec<usize>,
    /// The Arrow type the JVM reads for each projected column.
    targets: Vec<DataType>,
    next: usize,
    end: usize,
    /// The batch whose buffers the JVM is reading now.
    current: Vec<ArrayRef>,
}

impl ScanState {
    fn open(
        location: &Location,
        schema: &SchemaRef,
        entry: &ShardEntry,
        first: usize,
        end: usize,
        columns: &[String],
    ) -> BridgeResult<Self> {
        // A scan decodes each batch once, in order: nothing to keep.
        let read = ReadOptions {
            batch_cache_bytes: 0,
            ..ReadOptions::default()
        };
        let shard = Shard::open_at(location, entry, schema, &read)?;
        if first > end || end > shard.num_batches() {
            return Err(Error::InvalidIndex {
                path: shard.path().to_path_buf(),
                reason: format!(
                    "batches {first}..{end} requested, the shard has {}: the dataset changed while Spark was reading it",
                    shard.num_batches()
                ),
            }
            .into());
        }
        let projection = columns
            .iter()
            .map(|name| mosaicrs::format::column_index(schema, name))
            .collect::<Result<Vec<_>, _>>()?;
        let targets = projection
            .iter()
            .map(|&i| {
                let field = schema.field(i);
                spark_type(field.name(), field.data_type()).map(|(_, t)| t)
            })
            .collect::<BridgeResult<Vec<_>>>()?;
        Ok(ScanState {
            shard,
            projection,
            targets,
            next: first,
            end,
            current: Vec::new(),
        })
    }

    /// Moves to the next batch; returns its row count, or `None` at the end.
    fn advance(&mut self) -> BridgeResult<Option<usize>> {
        self.current.clear();
        if self.next >= self.end {
            return Ok(None);
        }
        let i = self.next;
        self.next += 1;
        let offsets = self.shard.batch_row_offsets();
        let rows = usize::try_from(offsets[i + 1] - offsets[i])
            .map_err(|_| Error::Internal("batch row count exceeds usize".into()))?;
        if self.projection.is_empty() {
            // A row count (count(*)) needs no decoding.
            return Ok(Some(rows));
        }
        // Only the projected columns are decoded: the others' buffers are
        // not touched (nor decompressed, in a compressed shard).
        let batch = self.shard.batch_projected(i, &self.projection)?;
        for (k, target) in self.targets.iter().enumerate() {
            let array = batch.column(k);
            let array = if array.data_type() == target {
                Arc::clone(array)
            } else {
                cast(array, target).map_err(|e| {
                    Error::arrow(
                        format!(
                            "converting column {:?} of {} to {target} for Spark",
                            batch.schema().field(k).name(),
                            self.shard.path().display()
                        ),
                        e,
                    )
                })?
            };
            self.current.push(array);
        }
        Ok(Some(rows))
    }
}

impl Owned for ScanState {
    const WHAT: &'static str = "scan";
    const TAG: u64 = 0x6d6f_7361_6963_7273; // "mosaicrs"
}

/// A buffer to hand to the JVM: start and length in bytes.
#[derive(Clone, Copy)]
struct RawBuffer {
    ptr: *const u8,
    len: usize,
}

/// Appends `array`'s node and buffers (then its children's) depth-first.
///
/// Per node, `meta` gets `[length, null count, validity bit offset, values
/// bit offset, data address]` and `buffers` gets `[validity, buffer 1,
/// buffer 2]`; see `NativeScan.java` for which buffers each type uses.
fn export(
    array: &dyn Array,
    meta: &mut Vec<i64>,
    buffers: &mut Vec<Option<RawBuffer>>,
) -> BridgeResult<()> {
    let n = |v: usize| -> BridgeResult<i64> {
        i64::try_from(v).map_err(|_| Error::Internal("size exceeds i64".into()).into())
    };
    let bitmap = |b: &arrow::buffer::BooleanBuffer| -> (RawBuffer, i64) {
        let byte = b.offset() / 8;
        let inner = b.inner();
        (
            RawBuffer {
                // SAFETY: `byte` <= the buffer length, as the offset lies within it.
                ptr: unsafe { inner.as_ptr().add(byte.min(inner.len())) },
                len: inner.len().saturating_sub(byte),
            },
            (b.offset() % 8) as i64,
        )
    };
    let slice = |s: &[u8]| RawBuffer {
        ptr: s.as_ptr(),
        len: s.len(),
    };
    let (validity, validity_bit) = match array.nulls() {
        Some(nulls) if array.data_type() != &DataType::Null => {
            let (raw, bit) = bitmap(nulls.inner());
            (Some(raw), bit)
        }
        _ => (None, 0),
    };
    let null_count = if array.data_type() == &DataType::Null {
        array.len()
    } else {
        array.null_count()
    };
    let mut values_bit = 0i64;
    let mut data_address = 0i64;
    let mut first: Option<RawBuffer> = None;
    let mut second: Option<RawBuffer> = None;
    let mut children: Vec<&dyn Array> = Vec::new();
    fn bytes_of<T>(values: &[T]) -> &[u8] {
        // SAFETY: any initialised slice of plain numbers can be viewed as bytes;
        // the length covers exactly the same memory.
        unsafe {
            std::slice::from_raw_parts(values.as_ptr().cast::<u8>(), std::mem::size_of_val(values))
        }
    }
    match array.data_type() {
        DataType::Null => {}
        DataType::Boolean => {
            let (raw, bit) = bitmap(array.as_boolean().values());
            first = Some(raw);
            values_bit = bit;
        }
        DataType::Int8 => first = Some(slice(bytes_of(array.as_primitive::<Int8Type>().values()))),
        DataType::Int16 => {
            first = Some(slice(bytes_of(array.as_primitive::<Int16Type>().values())))
        }
        DataType::Int32 => {
            first = Some(slice(bytes_of(array.as_primitive::<Int32Type>().values())))
        }
        DataType::Int64 => {
            first = Some(slice(bytes_of(array.as_primitive::<Int64Type>().values())))
        }
        DataType::Float32 => {
            first = Some(slice(bytes_of(
                array.as_primitive::<Float32Type>().values(),
            )))
        }
        DataType::Float64 => {
            first = Some(slice(bytes_of(
                array.as_primitive::<Float64Type>().values(),
            )))
        }
        DataType::Decimal128(..) => {
            first = Some(slice(bytes_of(
                array.as_primitive::<Decimal128Type>().values(),
            )))
        }
        DataType::Date32 => {
            first = Some(slice(bytes_of(array.as_primitive::<Date32Type>().values())))
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            first = Some(slice(bytes_of(
                array.as_primitive::<TimestampMicrosecondType>().values(),
            )))
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            first = Some(slice(bytes_of(a.value_offsets())));
            second = Some(slice(a.values().as_slice()));
            data_address = a.values().as_ptr() as i64;
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            first = Some(slice(bytes_of(a.value_offsets())));
            second = Some(slice(a.values().as_slice()));
            data_address = a.values().as_ptr() as i64;
        }
        DataType::List(_) => {
            let a = array.as_list::<i32>();
            first = Some(slice(bytes_of(a.value_offsets())));
            children.push(a.values().as_ref());
        }
        DataType::Struct(_) => {
            children.extend(array.as_struct().columns().iter().map(|c| c.as_ref()));
        }
        DataType::Map(..) => {
            let a = array.as_map();
            first = Some(slice(bytes_of(a.value_offsets())));
            children.push(a.keys().as_ref());
            children.push(a.values().as_ref());
        }
        other => {
            return Err(Error::Internal(format!(
                "Arrow type {other} reached the Spark export without a conversion"
            ))
            .into())
        }
    }
    meta.extend([
        n(array.len())?,
        n(null_count)?,
        validity_bit,
        values_bit,
        data_address,
    ]);
    buffers.extend([validity, first, second]);
    for child in children {
        export(child, meta, buffers)?;
    }
    Ok(())
}

/// `long openScan(DatasetLocation location, String schemaBase64, ShardEntry shard,
/// int firstBatch, int endBatch, String[] columns)`
///
/// Opens batches `firstBatch..endBatch` of `shard` (its index entry, which
/// the driver planned with, so the task reads no index), reading only
/// `columns` of a dataset whose schema is `schemaBase64`. Returns a handle for
/// [`nextBatch`](Java_io_mosaicrs_spark_read_NativeScan_nextBatch) and
/// [`closeScan`](Java_io_mosaicrs_spark_read_NativeScan_closeScan).
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_read_NativeScan_openScan<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    location: JObject<'local>,
    schema: JString<'local>,
    shard: JObject<'local>,
    first_batch: jint,
    end_batch: jint,
    columns: JObjectArray<'local>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let location = convert::location(env, &location)?;
        let schema = convert::schema(env, &schema)?;
        let entry = ShardEntry::from_java(env, &shard)?;
        let first = usize::try_from(first_batch).map_err(|_| {
            Error::InvalidArgument(format!("first batch {first_batch} is negative"))
        })?;
        let end = usize::try_from(end_batch)
            .map_err(|_| Error::InvalidArgument(format!("end batch {end_batch} is negative")))?;
        let names = convert::strings(env, &columns)?;
        let state = ScanState::open(&location, &schema, &entry, first, end, &names)?;
        Ok(Handle::create(state))
    })
}

/// `Object[] nextBatch(long scan)`
///
/// Moves to the next record batch and returns `{long[] meta, ByteBuffer[]
/// buffers}`, or null at the end. `meta[0]` is the row count; then five
/// values per node, and `buffers` holds three per node (null where a type has
/// no such buffer). The buffers of the previous batch are invalid from now on.
///
/// # Safety
///
/// `scan` must be a handle from `openScan` that has not been passed to
/// `closeScan`, used by one thread at a time (the JVM's `NativeScan`
/// guarantees both).
#[no_mangle]
pub unsafe extern "system" fn Java_io_mosaicrs_spark_read_NativeScan_nextBatch<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    scan: jlong,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        // SAFETY: by this function's contract `scan` is 0 or a live, exclusively
        // used handle from `openScan`.
        let state = unsafe { Handle::<ScanState>::from_raw(scan).borrow() }?;
        let Some(rows) = state.advance()? else {
            return Ok(std::ptr::null_mut());
        };
        let mut meta = vec![i64::try_from(rows).map_err(|_| Error::Internal("rows".into()))?];
        let mut raw = Vec::new();
        for array in &state.current {
            export(array.as_ref(), &mut meta, &mut raw)?;
        }
        debug_assert_eq!((meta.len() - 1) / NODE_STRIDE, raw.len() / BUFFER_STRIDE);
        let meta_array = env.new_long_array(jint::try_from(meta.len()).map_err(|_| too_many())?)?;
        env.set_long_array_region(&meta_array, 0, &meta)?;
        let buffers = env.new_object_array(
            jint::try_from(raw.len()).map_err(|_| too_many())?,
            "java/nio/ByteBuffer",
            JObject::null(),
        )?;
        for (i, buffer) in raw.iter().enumerate() {
            let Some(buffer) = buffer else { continue };
            if buffer.len > i32::MAX as usize {
                return Err(Error::UnsupportedColumn {
                    name: "(a column)".into(),
                    data_type: "buffer".into(),
                    reason: format!(
                        "one buffer of a record batch holds {} bytes, more than a JVM ByteBuffer can address; write the dataset with fewer rows per batch",
                        buffer.len
                    ),
                }
                .into());
            }
            // SAFETY: the buffer lies inside an array held in `state.current`,
            // which stays alive (and unchanged) until the next `nextBatch` or
            // `closeScan` on this handle; the JVM side only reads it and drops
            // its views before either call. Arrow buffer pointers are never null.
            let byte_buffer =
                unsafe { env.new_direct_byte_buffer(buffer.ptr.cast_mut(), buffer.len) }?;
            env.set_object_array_element(&buffers, i as jint, &byte_buffer)?;
            env.delete_local_ref(byte_buffer)?;
        }
        let result = env.new_object_array(2, "java/lang/Object", JObject::null())?;
        env.set_object_array_element(&result, 0, &meta_array)?;
        env.set_object_array_element(&result, 1, &buffers)?;
        Ok(result.into_raw())
    })
}

fn too_many() -> BridgeError {
    Error::Internal("a record batch has too many buffers for a Java array".into()).into()
}

/// `void closeScan(long scan)`: frees the scan and its current batch; 0 is ignored.
///
/// # Safety
///
/// `scan` must be 0 or a handle from `openScan` not yet closed; the JVM
/// swaps its copy to 0 first, so each handle is closed once.
#[no_mangle]
pub unsafe extern "system" fn Java_io_mosaicrs_spark_read_NativeScan_closeScan<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    scan: jlong,
) {
    guard(&mut env, (), |_| {
        // SAFETY: by this function's contract the handle is 0 or came from
        // `openScan` and is consumed exactly once.
        unsafe { Handle::<ScanState>::from_raw(scan).close() }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_types_follow_the_writer_mapping() {
        let (t, arrow) = spark_type(
            "ts",
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
        )
        .unwrap();
        assert_eq!(t, json!("timestamp"));
        assert_eq!(
            arrow,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        let (t, _) = spark_type("n", &DataType::Timestamp(TimeUnit::Microsecond, None)).unwrap();
        assert_eq!(t, json!("timestamp_ntz"));
        let (t, arrow) = spark_type("s", &DataType::LargeUtf8).unwrap();
        assert_eq!((t, arrow), (json!("string"), DataType::Utf8));
        let list = DataType::LargeList(Arc::new(Field::new(
            "item",
            DataType::Decimal128(10, 2),
            true,
        )));
        let (t, _) = spark_type("l", &list).unwrap();
        assert_eq!(t["elementType"], json!("decimal(10,2)"));
    }

    #[test]
    fn types_without_a_spark_form_name_the_column() {
        let inner = DataType::Struct(
            vec![Field::new("d", DataType::Duration(TimeUnit::Second), true)].into(),
        );
        let err = spark_type("outer", &inner).unwrap_err();
        assert!(err.message().contains("outer.d"), "{}", err.message());
        let err = spark_type("big", &DataType::Decimal256(60, 2)).unwrap_err();
        assert!(err.message().contains("big"), "{}", err.message());
    }
}
