//! # mosaicrs-jni
//!
//! The native half of the mosaicrs Spark connector: JNI entry points that the
//! JVM class `io.mosaicrs.spark.jni.NativeBridge` declares as static native
//! methods. This crate holds no format logic; every export converts its Java
//! arguments, calls the `mosaicrs` library (`mosaicrs::writer`,
//! `mosaicrs::format`) and converts the result back.
//!
//! Rules every export follows:
//!
//! - its body runs inside [`error::guard`], which catches panics and turns
//!   every error into a Java exception of a class chosen by
//!   [`mosaicrs::Error::category`], carrying the Rust message; nothing unwinds
//!   into the JVM;
//! - a task's writer and a partition's scan live on the heap behind a `long`
//!   handle that the JVM holds ([`handle::Handle`]); the JVM swaps the handle
//!   to 0 before the one call that consumes it (`finishWriter`,
//!   `abortWriter`, `closeScan`), so it is freed exactly once;
//! - exports that dereference a JVM-supplied handle are `unsafe fn`s whose
//!   `# Safety` section states what the JVM side guarantees;
//! - values cross as objects of connector classes, built and read by the
//!   traits of [`convert`]; the kinds, ordinals and strides both sides number
//!   are in one table, [`contract`], which the JVM's tests read.
//!
//! Rows arrive as Arrow-layout buffers that the connector's own JVM writer
//! filled (the JVM carries no Arrow library); [`column_buffers`] copies and validates
//! them into arrow-rs arrays, and builds the Arrow schema from a typed
//! description of the Spark schema.
//!
//! ```
//! // The exports are called by the JVM; from Rust the crate is only linked.
//! assert_eq!(mosaicrs_jni::JAVA_BRIDGE_CLASS, "io/mosaicrs/spark/jni/NativeBridge");
//! ```

mod column_buffers;
mod contract;
mod convert;
mod dataset_exports;
mod error;
mod handle;
mod read_exports;
mod writer_exports;

/// The JVM class whose static native methods this library implements.
pub const JAVA_BRIDGE_CLASS: &str = "io/mosaicrs/spark/jni/NativeBridge";
