//! Task writers owned by the JVM through `long` handles.
//!
//! A handle is `Box::into_raw` of a [`TaskWriter`], cast to `jlong`. The JVM
//! keeps it in an `AtomicLong` and swaps it to 0 before handing it to the one
//! export that consumes it, so a handle is freed exactly once, and 0 always
//! means "closed".

use arrow::datatypes::SchemaRef;
use jni::sys::jlong;
use mosaicrs::writer::{LayoutPlan, ShardWriter};

use crate::error::BridgeResult;

/// One Spark task attempt's writer and the schema its batches are built with.
pub(crate) struct TaskWriter {
    pub(crate) writer: ShardWriter,
    /// The rows' schema: the JVM's buffers are assembled and checked against it.
    pub(crate) schema: SchemaRef,
    /// Turns each assembled batch into the stored one (packed columns,
    /// fixed-size lists); the writer's schema is its output.
    pub(crate) layout: LayoutPlan,
}

impl TaskWriter {
    /// Wraps `writer`, whose schema is `layout`'s output; batches arrive
    /// with `layout`'s input schema.
    pub(crate) fn new(writer: ShardWriter, schema: SchemaRef, layout: LayoutPlan) -> Self {
        TaskWriter {
            writer,
            schema,
            layout,
        }
    }
}

/// Moves `writer` to the heap and returns the handle the JVM will hold.
pub(crate) fn into_handle(writer: TaskWriter) -> jlong {
    Box::into_raw(Box::new(writer)) as jlong
}

fn closed() -> crate::error::BridgeError {
    mosaicrs::Error::Internal(
        "the native mosaicrs writer was already closed (handle 0); this is a connector bug".into(),
    )
    .into()
}

/// Borrows the writer behind `handle`.
///
/// # Safety
///
/// `handle` must be 0 or a value returned by [`into_handle`] that has not
/// been passed to [`take`], and no other thread may use it during the call.
/// The JVM side guarantees this: a task's writer is used by its task thread
/// only, and the handle is swapped to 0 before it is consumed.
pub(crate) unsafe fn borrow<'a>(handle: jlong) -> BridgeResult<&'a mut TaskWriter> {
    let ptr = handle as *mut TaskWriter;
    // SAFETY: by this function's contract `ptr` is null or points to a live,
    // exclusively used `TaskWriter` allocated by `into_handle`.
    unsafe { ptr.as_mut() }.ok_or_else(closed)
}

/// Takes back ownership of the writer behind `handle`.
///
/// # Safety
///
/// As for [`borrow`]; afterwards the handle must not be used again (the JVM
/// has already replaced it with 0).
pub(crate) unsafe fn take(handle: jlong) -> BridgeResult<Box<TaskWriter>> {
    if handle == 0 {
        return Err(closed());
    }
    // SAFETY: by this function's contract `handle` came from `Box::into_raw`
    // in `into_handle` and is consumed here exactly once.
    Ok(unsafe { Box::from_raw(handle as *mut TaskWriter) })
}
