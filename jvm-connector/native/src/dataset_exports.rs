//! Driver-side exports: commit, job abort, pre-checks and option parsing.

use jni::objects::{JClass, JObjectArray, JString};
use jni::sys::{jboolean, jint, jlong, jstring, JNI_FALSE, JNI_TRUE};
use jni::JNIEnv;
use mosaicrs::format::Index;
use mosaicrs::writer::{self, SaveMode};

use crate::convert;
use crate::error::guard;
use crate::writer_exports::writer_options;

/// `String commit(String dir, String schemaBase64, String writeId, String[] shardLists,
/// String saveMode)`
///
/// Commits the shards of every committed task (each a JSON array from
/// `finishWriter`) as one atomic index write, and returns a JSON summary:
/// `{"committed": bool, "total_rows": n, "removed": [file, ...]}`.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_commit<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    dir: JString<'local>,
    schema: JString<'local>,
    write_id: JString<'local>,
    shard_lists: JObjectArray<'local>,
    save_mode: JString<'local>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let dir = convert::path(env, &dir)?;
        let schema = convert::schema(env, &schema)?;
        let write_id = convert::string(env, &write_id)?;
        let shards = convert::shards_from_json(env, &shard_lists)?;
        let mode = convert::string(env, &save_mode)?.parse::<SaveMode>()?;
        let outcome = writer::commit(&dir, &schema, &write_id, shards, mode)?;
        let summary = serde_json::json!({
            "committed": outcome.committed,
            "total_rows": outcome.total_rows,
            "removed": outcome.removed,
        });
        Ok(env.new_string(summary.to_string())?.into_raw())
    })
}

/// `String abortWrite(String dir, String writeId)`
///
/// Job abort: deletes every file of the write that the index does not list,
/// and returns their names as a JSON array.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_abortWrite<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    dir: JString<'local>,
    write_id: JString<'local>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let dir = convert::path(env, &dir)?;
        let write_id = convert::string(env, &write_id)?;
        let removed = writer::abort_write(&dir, &write_id)?;
        Ok(env
            .new_string(serde_json::json!(removed).to_string())?
            .into_raw())
    })
}

/// `void checkAppendSchema(String dir, String schemaBase64)`
///
/// Fails with `MosaicrsInvalidInputException` when the dataset in `dir` has
/// a different schema; passes when there is no dataset yet.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_checkAppendSchema<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    dir: JString<'local>,
    schema: JString<'local>,
) {
    guard(&mut env, (), |env| {
        let dir = convert::path(env, &dir)?;
        let schema = convert::schema(env, &schema)?;
        writer::check_append_schema(&dir, &schema)?;
        Ok(())
    })
}

/// `boolean datasetExists(String dir)`: true when `dir` holds a committed dataset.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_datasetExists<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    dir: JString<'local>,
) -> jboolean {
    guard(&mut env, JNI_FALSE, |env| {
        let dir = convert::path(env, &dir)?;
        Ok(if Index::exists_in(&dir) {
            JNI_TRUE
        } else {
            JNI_FALSE
        })
    })
}

/// `long parseByteSize(String text)`: `67108864`, `64m`, `64MiB`, `1g`, ...
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_parseByteSize<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    text: JString<'local>,
) -> jlong {
    guard(&mut env, -1, |env| {
        let text = convert::string(env, &text)?;
        let bytes = writer::parse_byte_size(&text)?;
        Ok(jlong::try_from(bytes)
            .map_err(|_| mosaicrs::Error::InvalidArgument(format!("size {text:?} is too large")))?)
    })
}

/// `void validateWriterOptions(long maxShardBytes, int maxBatchRows, String compression)`
///
/// The driver's check of the writer options, so a bad value fails before any
/// task starts, with the same rules the task writers apply.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_validateWriterOptions<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    max_shard_bytes: jlong,
    max_batch_rows: jint,
    compression: JString<'local>,
) {
    guard(&mut env, (), |env| {
        writer_options(env, max_shard_bytes, max_batch_rows, &compression)?;
        Ok(())
    })
}
