//! Conversions between Java objects and the values the mosaicrs library takes.
//!
//! Every value that crosses the boundary as an object has a connector class
//! on the JVM side, and one of two small traits here: [`ToJava`] builds the
//! object with a constructor call, [`FromJava`] reads its fields by name.
//! Enums (`Compression`, `SaveMode`) cross by constant name, through the
//! table in [`crate::contract`].
//!
//! | Rust | JVM class (`io.mosaicrs.spark...`) | direction |
//! |---|---|---|
//! | [`Location`] | `jni.DatasetLocation` | from Java |
//! | [`ShardEntry`] | `jni.ShardEntry` (serializable: rides in commit messages and input partitions) | both |
//! | [`Compression`], [`SaveMode`] | `jni.Compression`, `jni.SaveMode` | both / from Java |
//! | [`WriterSettings`] | `jni.WriterSettings` | both |
//! | [`CommitOutcome`] | `jni.CommitOutcome` | to Java |
//! | [`ScanDescription`], [`ScanPartition`] | `read.ScanDescription`, `read.MosaicrsInputPartition` | to Java |

use arrow::datatypes::SchemaRef;
use jni::objects::{JObject, JObjectArray, JString, JValue};
use jni::sys::{jint, jlong};
use jni::JNIEnv;
use mosaicrs::format::{decode_schema, Compression, ShardEntry};
use mosaicrs::storage::{Location, StorageOptions};
use mosaicrs::writer::{SaveMode, WriterOptions};
use mosaicrs::Error;

use crate::contract::{self, COMPRESSIONS, SAVE_MODES};
use crate::error::BridgeResult;

/// A Rust value that the JVM receives as a new object of [`ToJava::CLASS`].
pub(crate) trait ToJava {
    /// Binary name of the Java class.
    const CLASS: &'static str;

    /// A new local reference to the Java object for `self`.
    fn to_java<'local>(&self, env: &mut JNIEnv<'local>) -> BridgeResult<JObject<'local>>;
}

/// A Rust value read from a Java object (its fields, by name).
pub(crate) trait FromJava: Sized {
    /// Reads `object`; a null object is an error naming what was expected.
    fn from_java(env: &mut JNIEnv<'_>, object: &JObject<'_>) -> BridgeResult<Self>;
}

/// A Java array of `T`'s class holding `values`.
pub(crate) fn array_into_java<'local, T: ToJava>(
    env: &mut JNIEnv<'local>,
    values: &[T],
) -> BridgeResult<JObjectArray<'local>> {
    let len = jint::try_from(values.len())
        .map_err(|_| Error::Internal(format!("too many {} for a Java array", T::CLASS)))?;
    let array = env.new_object_array(len, T::CLASS, JObject::null())?;
    for (i, value) in (0..len).zip(values) {
        let object = value.to_java(env)?;
        env.set_object_array_element(&array, i, &object)?;
        env.delete_local_ref(object)?;
    }
    Ok(array)
}

/// The elements of a Java array of `T`'s class.
pub(crate) fn array_from_java<T: FromJava>(
    env: &mut JNIEnv<'_>,
    array: &JObjectArray<'_>,
) -> BridgeResult<Vec<T>> {
    if array.is_null() {
        return Err(Error::Internal("a required array argument is null".into()).into());
    }
    let count = env.get_array_length(array)?;
    let mut values = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for i in 0..count {
        let object = env.get_object_array_element(array, i)?;
        values.push(T::from_java(env, &object)?);
        env.delete_local_ref(object)?;
    }
    Ok(values)
}

/// A Java string as a Rust string.
pub(crate) fn string(env: &mut JNIEnv<'_>, value: &JString<'_>) -> BridgeResult<String> {
    if value.is_null() {
        return Err(Error::InvalidArgument("a required string argument is null".into()).into());
    }
    Ok(env.get_string(value)?.into())
}

impl ToJava for String {
    const CLASS: &'static str = "java/lang/String";

    fn to_java<'local>(&self, env: &mut JNIEnv<'local>) -> BridgeResult<JObject<'local>> {
        Ok(env.new_string(self)?.into())
    }
}

impl FromJava for String {
    fn from_java(env: &mut JNIEnv<'_>, object: &JObject<'_>) -> BridgeResult<Self> {
        // SAFETY: the reference is an element of a `String[]` or a `String`
        // field (the JVM's types guarantee it); `JString` only re-types it.
        let text = unsafe { JString::from_raw(object.as_raw()) };
        string(env, &text)
    }
}

/// A `String[]` as Rust strings.
pub(crate) fn strings(env: &mut JNIEnv<'_>, array: &JObjectArray<'_>) -> BridgeResult<Vec<String>> {
    array_from_java(env, array)
}

/// A `String[]` built from Rust strings.
pub(crate) fn java_strings<'local>(
    env: &mut JNIEnv<'local>,
    values: &[String],
) -> BridgeResult<JObjectArray<'local>> {
    array_into_java(env, values)
}

/// The column layout from the layout options' keys and values
/// (`pack.<name>`, `fixedLength.<column>`), each checked.
pub(crate) fn column_layout(
    env: &mut JNIEnv<'_>,
    keys: &JObjectArray<'_>,
    values: &JObjectArray<'_>,
) -> BridgeResult<mosaicrs::writer::ColumnLayout> {
    let keys = strings(env, keys)?;
    let values = strings(env, values)?;
    layout_from_options(&keys, &values)
}

/// The column layout of `keys`/`values`; a key that is not a layout option
/// is an internal error (the driver separated them).
pub(crate) fn layout_from_options(
    keys: &[String],
    values: &[String],
) -> BridgeResult<mosaicrs::writer::ColumnLayout> {
    if keys.len() != values.len() {
        return Err(Error::Internal("layout keys and values differ in number".into()).into());
    }
    let mut layout = mosaicrs::writer::ColumnLayout::default();
    for (key, value) in keys.iter().zip(values) {
        if !layout.set_option(key, value)? {
            return Err(Error::Internal(format!("{key:?} is not a layout option")).into());
        }
    }
    Ok(layout)
}

/// The dataset schema, sent by the JVM as base64 of an Arrow IPC schema stream
/// (the same encoding the index uses).
pub(crate) fn schema(env: &mut JNIEnv<'_>, value: &JString<'_>) -> BridgeResult<SchemaRef> {
    Ok(decode_schema(&string(env, value)?)?)
}

/// A Java `long` that must not be negative, as `u64`; `what` names it in errors.
pub(crate) fn non_negative(value: jlong, what: &str) -> BridgeResult<u64> {
    u64::try_from(value).map_err(|_| {
        Error::InvalidArgument(format!("{what} must not be negative, got {value}")).into()
    })
}

fn long(value: u64, what: &str) -> BridgeResult<jlong> {
    jlong::try_from(value)
        .map_err(|_| Error::Internal(format!("{what} {value} does not fit a Java long")).into())
}

fn int<T: TryInto<jint> + Copy + std::fmt::Display>(value: T, what: &str) -> BridgeResult<jint> {
    value
        .try_into()
        .map_err(|_| Error::Internal(format!("{what} {value} does not fit a Java int")).into())
}

fn require_object(object: &JObject<'_>, class: &str) -> BridgeResult<()> {
    if object.is_null() {
        return Err(Error::Internal(format!("a {class} argument is null")).into());
    }
    Ok(())
}

fn object_field<'local>(
    env: &mut JNIEnv<'local>,
    object: &JObject<'_>,
    name: &str,
    class: &str,
) -> BridgeResult<JObject<'local>> {
    Ok(env.get_field(object, name, format!("L{class};"))?.l()?)
}

fn string_field(env: &mut JNIEnv<'_>, object: &JObject<'_>, name: &str) -> BridgeResult<String> {
    let value = JString::from(object_field(env, object, name, String::CLASS)?);
    let text = string(env, &value)?;
    env.delete_local_ref(value)?;
    Ok(text)
}

fn strings_field(
    env: &mut JNIEnv<'_>,
    object: &JObject<'_>,
    name: &str,
) -> BridgeResult<Vec<String>> {
    let array = JObjectArray::from(env.get_field(object, name, "[Ljava/lang/String;")?.l()?);
    let values = strings(env, &array)?;
    env.delete_local_ref(array)?;
    Ok(values)
}

fn long_field(env: &mut JNIEnv<'_>, object: &JObject<'_>, name: &str) -> BridgeResult<u64> {
    let value = env.get_field(object, name, "J")?.j()?;
    non_negative(value, name)
}

fn int_field(env: &mut JNIEnv<'_>, object: &JObject<'_>, name: &str) -> BridgeResult<u32> {
    let value = env.get_field(object, name, "I")?.i()?;
    u32::try_from(value)
        .map_err(|_| Error::Internal(format!("field {name} is negative: {value}")).into())
}

/// The field `name` of `object`, an enum of `T`'s class.
fn enum_field<T: FromJava + ToJava>(
    env: &mut JNIEnv<'_>,
    object: &JObject<'_>,
    name: &str,
) -> BridgeResult<T> {
    let value = object_field(env, object, name, T::CLASS)?;
    let parsed = T::from_java(env, &value)?;
    env.delete_local_ref(value)?;
    Ok(parsed)
}

/// The constant `name` of the Java enum `class`.
fn enum_constant<'local>(
    env: &mut JNIEnv<'local>,
    class: &str,
    name: &str,
) -> BridgeResult<JObject<'local>> {
    Ok(env
        .get_static_field(class, name, format!("L{class};"))?
        .l()?)
}

/// The constant name of a Java enum object.
fn enum_name(env: &mut JNIEnv<'_>, object: &JObject<'_>, class: &str) -> BridgeResult<String> {
    require_object(object, class)?;
    let name = JString::from(
        env.call_method(object, "name", "()Ljava/lang/String;", &[])?
            .l()?,
    );
    let text = string(env, &name)?;
    env.delete_local_ref(name)?;
    Ok(text)
}

impl ToJava for Compression {
    const CLASS: &'static str = "io/mosaicrs/spark/jni/Compression";

    fn to_java<'local>(&self, env: &mut JNIEnv<'local>) -> BridgeResult<JObject<'local>> {
        enum_constant(env, Self::CLASS, contract::name_of(&COMPRESSIONS, *self))
    }
}

impl FromJava for Compression {
    fn from_java(env: &mut JNIEnv<'_>, object: &JObject<'_>) -> BridgeResult<Self> {
        let name = enum_name(env, object, Self::CLASS)?;
        contract::named(&COMPRESSIONS, &name, "compression")
    }
}

/// Binary name of the Java enum of save modes.
pub(crate) const SAVE_MODE_CLASS: &str = "io/mosaicrs/spark/jni/SaveMode";

impl FromJava for SaveMode {
    fn from_java(env: &mut JNIEnv<'_>, object: &JObject<'_>) -> BridgeResult<Self> {
        let name = enum_name(env, object, SAVE_MODE_CLASS)?;
        contract::named(&SAVE_MODES, &name, "save mode")
    }
}

impl FromJava for Location {
    /// A `DatasetLocation`: an absolute local path or a URL, with the
    /// `storage.<key>` options the user set (keys without the prefix). The
    /// values may be secrets: they go to the object store client only.
    fn from_java(env: &mut JNIEnv<'_>, object: &JObject<'_>) -> BridgeResult<Self> {
        if object.is_null() {
            return Err(Error::InvalidArgument("the dataset location is null".into()).into());
        }
        let url = string_field(env, object, "url")?;
        let keys = strings_field(env, object, "keys")?;
        let values = strings_field(env, object, "values")?;
        if keys.len() != values.len() {
            return Err(
                Error::Internal("storage option keys and values differ in number".into()).into(),
            );
        }
        let options: StorageOptions = keys.into_iter().zip(values).collect();
        Ok(Location::parse(&url, &options)?)
    }
}

/// A `DatasetLocation` from Java (its `FromJava` conversion).
pub(crate) fn location(env: &mut JNIEnv<'_>, object: &JObject<'_>) -> BridgeResult<Location> {
    Location::from_java(env, object)
}

const SHARD_ENTRY_CTOR: &str = "(Ljava/lang/String;JJILjava/lang/String;Lio/mosaicrs/spark/jni/Compression;Ljava/lang/String;IJ)V";

impl ToJava for ShardEntry {
    const CLASS: &'static str = "io/mosaicrs/spark/jni/ShardEntry";

    fn to_java<'local>(&self, env: &mut JNIEnv<'local>) -> BridgeResult<JObject<'local>> {
        let path = env.new_string(&self.path)?;
        let checksum = env.new_string(self.checksum.to_string())?;
        let compression = self.compression.to_java(env)?;
        let write_id = env.new_string(&self.write_id)?;
        let object = env.new_object(
            Self::CLASS,
            SHARD_ENTRY_CTOR,
            &[
                JValue::Object(&path),
                JValue::Long(long(self.rows, "rows")?),
                JValue::Long(long(self.bytes, "bytes")?),
                JValue::Int(int(self.batches, "batches")?),
                JValue::Object(&checksum),
                JValue::Object(&compression),
                JValue::Object(&write_id),
                JValue::Int(int(self.partition, "partition")?),
                JValue::Long(long(self.task_attempt, "task attempt")?),
            ],
        )?;
        env.delete_local_ref(compression)?;
        for local in [path, checksum, write_id] {
            env.delete_local_ref(local)?;
        }
        Ok(object)
    }
}

impl FromJava for ShardEntry {
    fn from_java(env: &mut JNIEnv<'_>, object: &JObject<'_>) -> BridgeResult<Self> {
        require_object(object, Self::CLASS)?;
        Ok(ShardEntry {
            path: string_field(env, object, "path")?,
            rows: long_field(env, object, "rows")?,
            bytes: long_field(env, object, "bytes")?,
            batches: int_field(env, object, "batches")?,
            checksum: string_field(env, object, "checksum")?
                .parse()
                .map_err(|e: String| Error::Internal(format!("a shard entry from the JVM: {e}")))?,
            compression: enum_field(env, object, "compression")?,
            write_id: string_field(env, object, "writeId")?,
            partition: int_field(env, object, "partition")?,
            task_attempt: long_field(env, object, "taskAttempt")?,
        })
    }
}

/// The writer options the driver checked once, as every task applies them
/// (`io.mosaicrs.spark.jni.WriterSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriterSettings {
    /// A shard is sealed once it holds this many bytes; positive, below 8 EiB.
    pub(crate) shard_bytes: u64,
    /// Rows per record batch, from the JVM to Rust and in the shards; positive.
    pub(crate) batch_rows: u32,
    /// Arrow IPC buffer compression of the shards.
    pub(crate) compression: Compression,
    /// An append may add nullable columns (`mergeSchema`): the driver's commit reads it.
    pub(crate) merge_schema: bool,
}

impl WriterSettings {
    /// The writer's options, checked.
    pub(crate) fn writer_options(&self) -> BridgeResult<WriterOptions> {
        let max_batch_rows = usize::try_from(self.batch_rows)
            .map_err(|_| Error::Internal("rows per batch exceed usize".into()))?;
        let options = WriterOptions {
            max_shard_bytes: self.shard_bytes,
            max_batch_rows: Some(max_batch_rows),
            compression: self.compression,
        };
        options.validate()?;
        Ok(options)
    }
}

const WRITER_SETTINGS_CTOR: &str = "(JILio/mosaicrs/spark/jni/Compression;Z)V";

impl ToJava for WriterSettings {
    const CLASS: &'static str = "io/mosaicrs/spark/jni/WriterSettings";

    fn to_java<'local>(&self, env: &mut JNIEnv<'local>) -> BridgeResult<JObject<'local>> {
        let compression = self.compression.to_java(env)?;
        let object = env.new_object(
            Self::CLASS,
            WRITER_SETTINGS_CTOR,
            &[
                JValue::Long(long(self.shard_bytes, "shard size")?),
                JValue::Int(int(self.batch_rows, "rows per batch")?),
                JValue::Object(&compression),
                JValue::Bool(u8::from(self.merge_schema)),
            ],
        )?;
        env.delete_local_ref(compression)?;
        Ok(object)
    }
}

impl FromJava for WriterSettings {
    fn from_java(env: &mut JNIEnv<'_>, object: &JObject<'_>) -> BridgeResult<Self> {
        require_object(object, Self::CLASS)?;
        let shard_bytes = env.get_field(object, "shardBytes", "J")?.j()?;
        let batch_rows = env.get_field(object, "batchRows", "I")?.i()?;
        Ok(WriterSettings {
            shard_bytes: non_negative(shard_bytes, "shardSize")?,
            batch_rows: u32::try_from(batch_rows).map_err(|_| {
                Error::InvalidArgument(format!(
                    "batchRows must be a positive number of rows, got {batch_rows}"
                ))
            })?,
            compression: enum_field(env, object, "compression")?,
            merge_schema: env.get_field(object, "mergeSchema", "Z")?.z()?,
        })
    }
}

/// What the driver's commit did (`io.mosaicrs.spark.jni.CommitOutcome`).
pub(crate) struct CommitOutcome {
    pub(crate) committed: bool,
    pub(crate) total_rows: u64,
    pub(crate) removed: Vec<String>,
}

impl ToJava for CommitOutcome {
    const CLASS: &'static str = "io/mosaicrs/spark/jni/CommitOutcome";

    fn to_java<'local>(&self, env: &mut JNIEnv<'local>) -> BridgeResult<JObject<'local>> {
        let removed = java_strings(env, &self.removed)?;
        let object = env.new_object(
            Self::CLASS,
            "(ZJ[Ljava/lang/String;)V",
            &[
                JValue::Bool(u8::from(self.committed)),
                JValue::Long(long(self.total_rows, "total rows")?),
                JValue::Object(&removed),
            ],
        )?;
        env.delete_local_ref(removed)?;
        Ok(object)
    }
}

/// One scan partition: batches `first..end` of the shard `entry`, `rows` rows
/// (`io.mosaicrs.spark.read.MosaicrsInputPartition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanPartition {
    pub(crate) entry: ShardEntry,
    pub(crate) first: usize,
    pub(crate) end: usize,
    pub(crate) rows: u64,
}

impl ToJava for ScanPartition {
    const CLASS: &'static str = "io/mosaicrs/spark/read/MosaicrsInputPartition";

    fn to_java<'local>(&self, env: &mut JNIEnv<'local>) -> BridgeResult<JObject<'local>> {
        let entry = self.entry.to_java(env)?;
        let object = env.new_object(
            Self::CLASS,
            "(Lio/mosaicrs/spark/jni/ShardEntry;IIJ)V",
            &[
                JValue::Object(&entry),
                JValue::Int(int(self.first, "first batch")?),
                JValue::Int(int(self.end, "end batch")?),
                JValue::Long(long(self.rows, "rows")?),
            ],
        )?;
        env.delete_local_ref(entry)?;
        Ok(object)
    }
}

/// Everything the driver needs to scan a dataset, from one read of its index
/// (`io.mosaicrs.spark.read.ScanDescription`).
pub(crate) struct ScanDescription {
    /// Spark's JSON of the dataset's `StructType`.
    pub(crate) spark_schema_json: String,
    /// The index's Arrow schema, base64 IPC.
    pub(crate) arrow_schema: String,
    pub(crate) total_rows: u64,
    pub(crate) total_bytes: u64,
    pub(crate) partitions: Vec<ScanPartition>,
}

impl ToJava for ScanDescription {
    const CLASS: &'static str = "io/mosaicrs/spark/read/ScanDescription";

    fn to_java<'local>(&self, env: &mut JNIEnv<'local>) -> BridgeResult<JObject<'local>> {
        let spark_schema = env.new_string(&self.spark_schema_json)?;
        let arrow_schema = env.new_string(&self.arrow_schema)?;
        let partitions = array_into_java(env, &self.partitions)?;
        let object = env.new_object(
            Self::CLASS,
            "(Ljava/lang/String;Ljava/lang/String;JJ[Lio/mosaicrs/spark/read/MosaicrsInputPartition;)V",
            &[
                JValue::Object(&spark_schema),
                JValue::Object(&arrow_schema),
                JValue::Long(long(self.total_rows, "total rows")?),
                JValue::Long(long(self.total_bytes, "total bytes")?),
                JValue::Object(&partitions),
            ],
        )?;
        env.delete_local_ref(partitions)?;
        for local in [spark_schema, arrow_schema] {
            env.delete_local_ref(local)?;
        }
        Ok(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_longs_are_rejected_by_name() {
        assert_eq!(non_negative(5, "shardSize").unwrap(), 5);
        let err = non_negative(-1, "shardSize").unwrap_err();
        assert!(
            matches!(err, crate::error::BridgeError::Core(Error::InvalidArgument(ref m)) if m.contains("shardSize"))
        );
    }

    #[test]
    fn settings_become_checked_writer_options() {
        let settings = WriterSettings {
            shard_bytes: 1 << 20,
            batch_rows: 500,
            compression: Compression::Zstd,
            merge_schema: false,
        };
        let options = settings.writer_options().unwrap();
        assert_eq!(options.max_shard_bytes, 1 << 20);
        assert_eq!(options.max_batch_rows, Some(500));
        assert_eq!(options.compression, Compression::Zstd);
        let zero = WriterSettings {
            shard_bytes: 0,
            ..settings
        };
        assert!(zero.writer_options().is_err());
    }

    #[test]
    fn java_values_fit_or_fail() {
        assert_eq!(int(7_usize, "n").unwrap(), 7);
        assert!(int(u32::MAX, "n").is_err());
        assert!(long(u64::MAX, "n").is_err());
    }
}
