//! Conversions between Java values and what the mosaicrs library takes.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{Array, StructArray};
use arrow::datatypes::SchemaRef;
use arrow::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow::record_batch::RecordBatch;
use jni::objects::{JObjectArray, JString};
use jni::sys::jlong;
use jni::JNIEnv;
use mosaicrs::format::{decode_schema, ShardEntry};
use mosaicrs::Error;

use crate::error::BridgeResult;
use crate::handle::TaskWriter;

/// A Java string as a Rust string.
pub(crate) fn string(env: &mut JNIEnv<'_>, value: &JString<'_>) -> BridgeResult<String> {
    if value.is_null() {
        return Err(Error::InvalidArgument("a required string argument is null".into()).into());
    }
    Ok(env.get_string(value)?.into())
}

/// A dataset folder path from Java.
pub(crate) fn path(env: &mut JNIEnv<'_>, value: &JString<'_>) -> BridgeResult<PathBuf> {
    Ok(PathBuf::from(string(env, value)?))
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

/// Shard entries as JSON, the form they travel in inside Spark commit messages.
pub(crate) fn shards_to_json(shards: &[ShardEntry]) -> BridgeResult<String> {
    serde_json::to_string(shards)
        .map_err(|e| Error::Internal(format!("serialising shard entries: {e}")).into())
}

/// Every task's shard list (one JSON array per committed task) as one list.
pub(crate) fn shards_from_json(
    env: &mut JNIEnv<'_>,
    lists: &JObjectArray<'_>,
) -> BridgeResult<Vec<ShardEntry>> {
    let count = env.get_array_length(lists)?;
    let mut shards = Vec::new();
    for i in 0..count {
        let element = JString::from(env.get_object_array_element(lists, i)?);
        let text = string(env, &element)?;
        env.delete_local_ref(element)?;
        let list: Vec<ShardEntry> = serde_json::from_str(&text).map_err(|e| {
            Error::Internal(format!("task commit message {i} is not a shard list: {e}"))
        })?;
        shards.extend(list);
    }
    Ok(shards)
}

/// Imports one batch that Arrow Java exported through the C Data Interface.
///
/// `array_address` and `schema_address` point to an `ArrowArray` and an
/// `ArrowSchema` struct filled by `org.apache.arrow.c.Data.exportVectorSchemaRoot`:
/// a struct array whose children are the columns. Ownership of the array
/// moves to Rust (its release callback runs when the batch is dropped); the
/// exported type is checked against the writer's schema before any buffer is
/// read.
pub(crate) fn import_batch(
    writer: &TaskWriter,
    array_address: jlong,
    schema_address: jlong,
) -> BridgeResult<RecordBatch> {
    if array_address == 0 || schema_address == 0 {
        return Err(Error::Internal("null Arrow C Data Interface struct address".into()).into());
    }
    // SAFETY: the JVM passes the addresses of an ArrowArray and an ArrowSchema
    // that Arrow Java just allocated and exported and does not touch until
    // this call returns. `from_raw` moves each struct out and marks the
    // source as released, so Arrow Java will not release it a second time.
    let (array, ffi_schema) = unsafe {
        (
            FFI_ArrowArray::from_raw(array_address as *mut FFI_ArrowArray),
            FFI_ArrowSchema::from_raw(schema_address as *mut FFI_ArrowSchema),
        )
    };
    let exported_type = arrow::datatypes::DataType::try_from(&ffi_schema)
        .map_err(|e| Error::arrow("reading the exported batch type", e))?;
    if exported_type != writer.batch_type {
        return Err(Error::SchemaMismatch {
            path: PathBuf::from("<batch from the JVM>"),
            detail: format!(
                "the JVM exported {exported_type}, the writer expects {}",
                writer.batch_type
            ),
        }
        .into());
    }
    // SAFETY: the array was produced by Arrow Java's C Data exporter and its
    // type, checked just above, is the one `ffi_schema` describes.
    let data = unsafe { from_ffi(array, &ffi_schema) }
        .map_err(|e| Error::arrow("importing a batch through the C Data Interface", e))?;
    let columns = StructArray::from(data);
    if columns.null_count() > 0 {
        return Err(Error::Internal("the exported batch has null rows at top level".into()).into());
    }
    let (_, arrays, _) = columns.into_parts();
    RecordBatch::try_new(Arc::clone(&writer.schema), arrays)
        .map_err(|e| Error::arrow("assembling the imported batch", e).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaicrs::format::Compression;

    #[test]
    fn negative_longs_are_rejected_by_name() {
        assert_eq!(non_negative(5, "shardSize").unwrap(), 5);
        let err = non_negative(-1, "shardSize").unwrap_err();
        assert!(
            matches!(err, crate::error::BridgeError::Core(Error::InvalidArgument(ref m)) if m.contains("shardSize"))
        );
    }

    #[test]
    fn shard_entries_round_trip_through_json() {
        let entry = ShardEntry {
            path: "part-w-00001-7-0000.arrow".into(),
            rows: 10,
            bytes: 1234,
            batches: 1,
            checksum: "xxh3-64:00".into(),
            compression: Compression::None,
            write_id: "w".into(),
            partition: 1,
            task_attempt: 7,
        };
        let text = shards_to_json(std::slice::from_ref(&entry)).unwrap();
        let back: Vec<ShardEntry> = serde_json::from_str(&text).unwrap();
        assert_eq!(back, vec![entry]);
    }
}
