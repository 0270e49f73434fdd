//! Exports for one Spark task attempt's writer: open, write batches, finish or abort.

use arrow::buffer::{Buffer, MutableBuffer};
use arrow::datatypes::SchemaRef;
use jni::objects::{JByteArray, JClass, JIntArray, JObject, JObjectArray, JString};
use jni::sys::{jbyte, jint, jlong, jobjectArray};
use jni::JNIEnv;
use mosaicrs::writer::{LayoutPlan, ShardWriter};
use mosaicrs::Error;

use crate::column_buffers::{self, BatchLayout};
use crate::convert::{self, FromJava, WriterSettings};
use crate::error::{guard, BridgeResult};
use crate::handle::{Handle, Owned};

/// One Spark task attempt's writer and the schema its batches are built with.
pub(crate) struct TaskWriter {
    writer: ShardWriter,
    /// The rows' schema: the JVM's buffers are assembled and checked against it.
    schema: SchemaRef,
    /// Turns each assembled batch into the stored one (packed columns,
    /// fixed-size lists); the writer's schema is its output.
    layout: LayoutPlan,
}

impl Owned for TaskWriter {
    const WHAT: &'static str = "task writer";
    const TAG: u64 = 0x6d6f_7361_6963_7277; // "mosaicrw"
}

/// `long openWriter(DatasetLocation location, String schemaBase64, String writeId,
/// int partition, long taskAttempt, WriterSettings settings, String[] layoutKeys,
/// String[] layoutValues)`
///
/// Starts the writer of one task attempt and returns its handle. On an
/// object store its shards stream straight to the store. `schemaBase64` is
/// the rows' schema; the layout options (`pack.*`, `fixedLength.*`) say how
/// the shards store them.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_openWriter<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    location: JObject<'local>,
    schema: JString<'local>,
    write_id: JString<'local>,
    partition: jint,
    task_attempt: jlong,
    settings: JObject<'local>,
    layout_keys: JObjectArray<'local>,
    layout_values: JObjectArray<'local>,
) -> jlong {
    guard(&mut env, 0, |env| {
        let location = convert::location(env, &location)?;
        let schema = convert::schema(env, &schema)?;
        let write_id = convert::string(env, &write_id)?;
        let partition = u32::try_from(partition).map_err(|_| {
            Error::InvalidArgument(format!(
                "partition id must not be negative, got {partition}"
            ))
        })?;
        let attempt = convert::non_negative(task_attempt, "task attempt id")?;
        let options = WriterSettings::from_java(env, &settings)?.writer_options()?;
        let layout = convert::column_layout(env, &layout_keys, &layout_values)?.plan(&schema)?;
        let writer = ShardWriter::create_at(
            &location,
            layout.schema().clone(),
            &write_id,
            partition,
            attempt,
            options,
        )?;
        Ok(Handle::create(TaskWriter {
            writer,
            schema,
            layout,
        }))
    })
}

/// `void writeColumns(long writer, int rows, int[] nodeLengths, byte[][] buffers,
/// int[] bufferLengths)`
///
/// Writes one batch that the JVM laid out as Arrow buffers in byte arrays
/// (see [`crate::column_buffers`]). Each array's used bytes are copied once,
/// by JNI, into an aligned Arrow buffer (JNI checks the range against the
/// array), then validated; so the JVM may reuse its arrays when this returns.
///
/// # Safety
///
/// `writer` must be a live handle from `openWriter`, used by no other
/// thread during the call.
#[no_mangle]
pub unsafe extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_writeColumns<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
    rows: jint,
    node_lengths: JIntArray<'local>,
    buffers: JObjectArray<'local>,
    buffer_lengths: JIntArray<'local>,
) {
    guard(&mut env, (), |env| {
        // SAFETY: `writer` is a live handle used only by this task's thread
        // (this function's contract, see `Handle::borrow`).
        let task = unsafe { Handle::<TaskWriter>::from_raw(writer).borrow() }?;
        let rows = usize::try_from(rows)
            .map_err(|_| Error::Internal(format!("negative row count {rows}")))?;
        let nodes = int_array(env, &node_lengths)?;
        let lengths = int_array(env, &buffer_lengths)?;
        let count = env.get_array_length(&buffers)?;
        if usize::try_from(count).ok() != Some(lengths.len()) {
            return Err(Error::Internal(format!(
                "{count} buffers but {} buffer lengths",
                lengths.len()
            ))
            .into());
        }
        let mut copied = Vec::with_capacity(lengths.len());
        for (i, &len) in (0..count).zip(&lengths) {
            let len = usize::try_from(len)
                .map_err(|_| Error::Internal(format!("buffer {i} has negative length {len}")))?;
            let array = JByteArray::from(env.get_object_array_element(&buffers, i)?);
            copied.push(copy_bytes(env, &array, len, i)?);
            env.delete_local_ref(array)?;
        }
        let batch = column_buffers::import_batch(
            &task.schema,
            &BatchLayout {
                rows,
                node_lengths: &nodes,
                buffers: &copied,
            },
        )?;
        let stored = task.layout.apply(&batch, task.writer.rows_written())?;
        task.writer.write(&stored)?;
        Ok(())
    })
}

/// The first `len` bytes of `array` in an Arrow buffer; an error naming
/// buffer `index` when the array is shorter.
fn copy_bytes(
    env: &mut JNIEnv<'_>,
    array: &JByteArray<'_>,
    len: usize,
    index: jint,
) -> BridgeResult<Buffer> {
    if len == 0 {
        return Ok(Buffer::from(MutableBuffer::new(0)));
    }
    let capacity = usize::try_from(env.get_array_length(array)?).unwrap_or(0);
    if len > capacity {
        return Err(Error::Internal(format!(
            "buffer {index}: length {len} exceeds its array's {capacity} bytes"
        ))
        .into());
    }
    let mut bytes = MutableBuffer::from_len_zeroed(len);
    // SAFETY: `u8` and `i8` (`jbyte`) have the same size and alignment, and
    // the slice covers exactly the `len` initialised bytes of `bytes`, which
    // nothing else borrows while it lives.
    let target =
        unsafe { std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<jbyte>(), bytes.len()) };
    env.get_byte_array_region(array, 0, target)?;
    Ok(bytes.into())
}

fn int_array(env: &mut JNIEnv<'_>, array: &JIntArray<'_>) -> BridgeResult<Vec<i32>> {
    let len = env.get_array_length(array)?;
    let mut values = vec![0; usize::try_from(len).unwrap_or(0)];
    env.get_int_array_region(array, 0, &mut values)?;
    Ok(values)
}

/// `ShardEntry[] finishWriter(long writer)`
///
/// Seals the task's shards and returns their entries (the payload of the
/// task's commit message). Consumes the handle.
///
/// # Safety
///
/// `writer` must be a handle from `openWriter` that the JVM passes to this
/// function or `abortWriter` exactly once (it swaps its copy to 0 first).
#[no_mangle]
pub unsafe extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_finishWriter<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        // SAFETY: the handle is consumed exactly once (this function's contract).
        let task = unsafe { Handle::<TaskWriter>::from_raw(writer).take() }?;
        let shards = task.writer.finish()?;
        Ok(convert::array_into_java(env, &shards)?.into_raw())
    })
}

/// `void abortWriter(long writer)`
///
/// Deletes every file this task attempt wrote. Consumes the handle; 0 (a
/// writer already finished or aborted) is ignored.
///
/// # Safety
///
/// As for `finishWriter`: the JVM hands over the handle once.
#[no_mangle]
pub unsafe extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_abortWriter<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    writer: jlong,
) {
    guard(&mut env, (), |_env| {
        if writer == 0 {
            return Ok(());
        }
        // SAFETY: the handle is consumed exactly once (this function's contract).
        let task = unsafe { Handle::<TaskWriter>::from_raw(writer).take() }?;
        task.writer.abort()?;
        Ok(())
    })
}
