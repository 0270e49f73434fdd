//! Conversions between Java values and what the mosaicrs library takes.
//!
//! Typed values cross the boundary: save mode and compression as enum
//! ordinals, dataset locations as `io.mosaicrs.spark.jni.DatasetLocation`
//! objects, shard entries as `io.mosaicrs.spark.jni.ShardEntry` objects
//! (serializable, so they travel inside Spark's task commit messages and
//! input partitions). Their fields are read by name.

use jni::objects::{JObject, JObjectArray, JString, JValue};
use jni::sys::{jint, jlong, jobjectArray};
use jni::JNIEnv;
use mosaicrs::format::{decode_schema, Compression, ShardEntry};
use mosaicrs::storage::{Location, StorageOptions};
use mosaicrs::writer::SaveMode;
use mosaicrs::Error;

use crate::error::BridgeResult;
use arrow::datatypes::SchemaRef;

/// Java class of a shard entry.
pub(crate) const SHARD_ENTRY_CLASS: &str = "io/mosaicrs/spark/jni/ShardEntry";
const SHARD_ENTRY_CTOR: &str = "(Ljava/lang/String;JJILjava/lang/String;ILjava/lang/String;IJ)V";
/// Java class of a commit's result.
pub(crate) const COMMIT_OUTCOME_CLASS: &str = "io/mosaicrs/spark/jni/CommitOutcome";
const COMMIT_OUTCOME_CTOR: &str = "(ZJ[Ljava/lang/String;)V";

/// A Java string as a Rust string.
pub(crate) fn string(env: &mut JNIEnv<'_>, value: &JString<'_>) -> BridgeResult<String> {
    if value.is_null() {
        return Err(Error::InvalidArgument("a required string argument is null".into()).into());
    }
    Ok(env.get_string(value)?.into())
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

/// A `String[]` as Rust strings.
pub(crate) fn strings(env: &mut JNIEnv<'_>, array: &JObjectArray<'_>) -> BridgeResult<Vec<String>> {
    let count = env.get_array_length(array)?;
    let mut out = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for i in 0..count {
        let element = JString::from(env.get_object_array_element(array, i)?);
        out.push(string(env, &element)?);
        env.delete_local_ref(element)?;
    }
    Ok(out)
}

/// A `String[]` built from Rust strings.
pub(crate) fn java_strings(env: &mut JNIEnv<'_>, values: &[String]) -> BridgeResult<jobjectArray> {
    let len = jint::try_from(values.len())
        .map_err(|_| Error::Internal("too many strings for a Java array".into()))?;
    let array = env.new_object_array(len, "java/lang/String", JObject::null())?;
    for (i, value) in (0..len).zip(values) {
        let s = env.new_string(value)?;
        env.set_object_array_element(&array, i, &s)?;
        env.delete_local_ref(s)?;
    }
    Ok(array.into_raw())
}

/// A `DatasetLocation` from Java: an absolute local path or a URL, with the
/// `storage.<key>` options the user set (keys without the prefix). The
/// values may be secrets: they go to the object store client only.
pub(crate) fn location(env: &mut JNIEnv<'_>, location: &JObject<'_>) -> BridgeResult<Location> {
    if location.is_null() {
        return Err(Error::InvalidArgument("the dataset location is null".into()).into());
    }
    let url = string_field(env, location, "url")?;
    let keys = strings_field(env, location, "keys")?;
    let values = strings_field(env, location, "values")?;
    if keys.len() != values.len() {
        return Err(
            Error::Internal("storage option keys and values differ in number".into()).into(),
        );
    }
    let options: StorageOptions = keys.into_iter().zip(values).collect();
    Ok(Location::parse(&url, &options)?)
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

/// Compression by its ordinal in `io.mosaicrs.spark.jni.NativeBridge` (`COMPRESSION_*`).
pub(crate) fn compression(ordinal: jint) -> BridgeResult<Compression> {
    match ordinal {
        0 => Ok(Compression::None),
        1 => Ok(Compression::Zstd),
        2 => Ok(Compression::Lz4),
        other => Err(Error::Internal(format!("unknown compression ordinal {other}")).into()),
    }
}

/// The ordinal of `compression` (inverse of [`compression`]).
pub(crate) fn compression_ordinal(compression: Compression) -> jint {
    match compression {
        Compression::None => 0,
        Compression::Zstd => 1,
        Compression::Lz4 => 2,
    }
}

/// Save mode by its ordinal in `io.mosaicrs.spark.jni.NativeBridge` (`MODE_*`).
pub(crate) fn save_mode(ordinal: jint) -> BridgeResult<SaveMode> {
    match ordinal {
        0 => Ok(SaveMode::ErrorIfExists),
        1 => Ok(SaveMode::Append),
        2 => Ok(SaveMode::Overwrite),
        3 => Ok(SaveMode::Ignore),
        other => Err(Error::Internal(format!("unknown save mode ordinal {other}")).into()),
    }
}

fn long(value: u64, what: &str) -> BridgeResult<jlong> {
    jlong::try_from(value)
        .map_err(|_| Error::Internal(format!("{what} {value} does not fit a Java long")).into())
}

fn int(value: u32, what: &str) -> BridgeResult<jint> {
    jint::try_from(value)
        .map_err(|_| Error::Internal(format!("{what} {value} does not fit a Java int")).into())
}

/// Shard entries as a `ShardEntry[]`, the payload of a task's commit message.
pub(crate) fn shards_to_java(
    env: &mut JNIEnv<'_>,
    shards: &[ShardEntry],
) -> BridgeResult<jobjectArray> {
    let len = jint::try_from(shards.len())
        .map_err(|_| Error::Internal("too many shards for a Java array".into()))?;
    let class = env.find_class(SHARD_ENTRY_CLASS)?;
    let array = env.new_object_array(len, &class, JObject::null())?;
    for (i, shard) in (0..len).zip(shards) {
        let path = env.new_string(&shard.path)?;
        let checksum = env.new_string(shard.checksum.to_string())?;
        let write_id = env.new_string(&shard.write_id)?;
        let object = env.new_object(
            &class,
            SHARD_ENTRY_CTOR,
            &[
                JValue::Object(&path),
                JValue::Long(long(shard.rows, "rows")?),
                JValue::Long(long(shard.bytes, "bytes")?),
                JValue::Int(int(shard.batches, "batches")?),
                JValue::Object(&checksum),
                JValue::Int(compression_ordinal(shard.compression)),
                JValue::Object(&write_id),
                JValue::Int(int(shard.partition, "partition")?),
                JValue::Long(long(shard.task_attempt, "task attempt")?),
            ],
        )?;
        env.set_object_array_element(&array, i, &object)?;
        env.delete_local_ref(object)?;
        for local in [path, checksum, write_id] {
            env.delete_local_ref(local)?;
        }
    }
    Ok(array.into_raw())
}

fn string_field(env: &mut JNIEnv<'_>, object: &JObject<'_>, name: &str) -> BridgeResult<String> {
    let value = JString::from(env.get_field(object, name, "Ljava/lang/String;")?.l()?);
    let text = string(env, &value)?;
    env.delete_local_ref(value)?;
    Ok(text)
}

fn long_field(env: &mut JNIEnv<'_>, object: &JObject<'_>, name: &str) -> BridgeResult<u64> {
    let value = env.get_field(object, name, "J")?.j()?;
    non_negative(value, name)
}

fn int_field(env: &mut JNIEnv<'_>, object: &JObject<'_>, name: &str) -> BridgeResult<u32> {
    let value = env.get_field(object, name, "I")?.i()?;
    u32::try_from(value)
        .map_err(|_| Error::Internal(format!("shard entry {name} is negative: {value}")).into())
}

/// A `ShardEntry` object's fields.
pub(crate) fn shard_from_java(
    env: &mut JNIEnv<'_>,
    object: &JObject<'_>,
) -> BridgeResult<ShardEntry> {
    if object.is_null() {
        return Err(Error::Internal("a shard entry is null".into()).into());
    }
    let compression_ordinal = env.get_field(object, "compression", "I")?.i()?;
    Ok(ShardEntry {
        path: string_field(env, object, "path")?,
        rows: long_field(env, object, "rows")?,
        bytes: long_field(env, object, "bytes")?,
        batches: int_field(env, object, "batches")?,
        checksum: string_field(env, object, "checksum")?
            .parse()
            .map_err(|e: String| Error::Internal(format!("a shard entry from the JVM: {e}")))?,
        compression: compression(compression_ordinal)?,
        write_id: string_field(env, object, "writeId")?,
        partition: int_field(env, object, "partition")?,
        task_attempt: long_field(env, object, "taskAttempt")?,
    })
}

/// The entries of a `ShardEntry[]` (every committed task's shards).
pub(crate) fn shards_from_java(
    env: &mut JNIEnv<'_>,
    array: &JObjectArray<'_>,
) -> BridgeResult<Vec<ShardEntry>> {
    let count = env.get_array_length(array)?;
    let mut shards = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for i in 0..count {
        let object = env.get_object_array_element(array, i)?;
        shards.push(shard_from_java(env, &object)?);
        env.delete_local_ref(object)?;
    }
    Ok(shards)
}

/// A `CommitOutcome` object.
pub(crate) fn commit_outcome(
    env: &mut JNIEnv<'_>,
    committed: bool,
    total_rows: u64,
    removed: &[String],
) -> BridgeResult<jni::sys::jobject> {
    let removed = java_strings(env, removed)?;
    // SAFETY: `removed` is a live local reference just returned by `java_strings`.
    let removed = unsafe { JObject::from_raw(removed) };
    let object = env.new_object(
        COMMIT_OUTCOME_CLASS,
        COMMIT_OUTCOME_CTOR,
        &[
            JValue::Bool(u8::from(committed)),
            JValue::Long(long(total_rows, "total rows")?),
            JValue::Object(&removed),
        ],
    )?;
    Ok(object.into_raw())
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
    fn ordinals_round_trip_and_unknown_ones_are_errors() {
        for c in [Compression::None, Compression::Zstd, Compression::Lz4] {
            assert_eq!(compression(compression_ordinal(c)).unwrap(), c);
        }
        assert!(compression(3).is_err());
        assert_eq!(save_mode(0).unwrap(), SaveMode::ErrorIfExists);
        assert_eq!(save_mode(3).unwrap(), SaveMode::Ignore);
        assert!(save_mode(-1).is_err());
    }
}
