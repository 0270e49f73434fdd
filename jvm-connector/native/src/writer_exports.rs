//! Exports for one Spark task attempt's writer: open, write batches, finish or abort.

use jni::objects::{JClass, JString};
use jni::sys::{jint, jlong, jstring};
use jni::JNIEnv;
use mosaicrs::format::Compression;
use mosaicrs::writer::{ShardWriter, WriterOptions};
use mosaicrs::Error;

use crate::convert;
use crate::error::{guard, BridgeResult};
use crate::handle::{self, TaskWriter};

/// Writer options from the values the JVM parsed out of the Spark options.
pub(crate) fn writer_options(
    env: &mut JNIEnv<'_>,
    max_shard_bytes: jlong,
    max_batch_rows: jint,
    compression: &JString<'_>,
) -> BridgeResult<WriterOptions> {
    let max_batch_rows = usize::try_from(max_batch_rows).map_err(|_| {
        Error::InvalidArgument(format!(
            "batchRows must be a positive number of rows, got {max_batch_rows}"
        ))
    })?;
    let options = WriterOptions {
        max_shard_bytes: convert::non_negative(max_shard_bytes, "shardSize")?,
        max_batch_rows,
        compression: convert::string(env, compression)?.parse::<Compression>()?,
    };
    options.validate()?;
    Ok(options)
}

/// `long openWriter(String dir, String schemaBase64, String writeId, int partition,
/// long taskAttempt, long maxShardBytes, int maxBatchRows, String compression)`
///
/// Starts the writer of one task attempt and returns its handle.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_openWriter<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    dir: JString<'local>,
    schema: JString<'local>,
    write_id: JString<'local>,
    partition: jint,
    task_attempt: jlong,
    max_shard_bytes: jlong,
    max_batch_rows: jint,
    compression: JString<'local>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let dir = convert::path(env, &dir)?;
        let schema = convert::schema(env, &schema)?;
        let write_id = convert::string(env, &write_id)?;
        let partition = u32::try_from(partition).map_err(|_| {
            Error::InvalidArgument(format!(
                "partition id must not be negative, got {partition}"
            ))
        })?;
        let attempt = convert::non_negative(task_attempt, "task attempt id")?;
        let options = writer_options(env, max_shard_bytes, max_batch_rows, &compression)?;
        let writer = ShardWriter::create(&dir, schema, &write_id, partition, attempt, options)?;
        Ok(handle::into_handle(TaskWriter::new(writer)))
    })
}

/// `void writeBatch(long writer, long arrowArrayAddress, long arrowSchemaAddress)`
///
/// Writes one batch exported through the Arrow C Data Interface. The batch's
/// buffers are released (back to Arrow Java) before this call returns.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_writeBatch<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
    array_address: jlong,
    schema_address: jlong,
) {
    guard(&mut env, (), |_env| {
        // SAFETY: `writer` is a live handle used only by this task's thread
        // (see `handle::borrow`).
        let task = unsafe { handle::borrow(writer) }?;
        let batch = convert::import_batch(task, array_address, schema_address)?;
        task.writer.write(&batch)?;
        Ok(())
    })
}

/// `String finishWriter(long writer)`
///
/// Seals the task's shards and returns their entries as a JSON array (the
/// task's commit message). Consumes the handle.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_finishWriter<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        // SAFETY: the JVM swapped its copy of `writer` to 0 before this call,
        // so the handle is consumed exactly once (see `handle::take`).
        let task = unsafe { handle::take(writer) }?;
        let shards = task.writer.finish()?;
        let json = convert::shards_to_json(&shards)?;
        Ok(env.new_string(json)?.into_raw())
    })
}

/// `void abortWriter(long writer)`
///
/// Deletes every file this task attempt wrote. Consumes the handle.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_abortWriter<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
) {
    guard(&mut env, (), |_env| {
        // SAFETY: as in `finishWriter`: the JVM hands over the handle once.
        let task = unsafe { handle::take(writer) }?;
        task.writer.abort()?;
        Ok(())
    })
}
