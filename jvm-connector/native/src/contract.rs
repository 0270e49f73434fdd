//! The numbers and names that both sides of the JNI boundary use, in one table.
//!
//! The JVM mirrors them in its own constants: `io.mosaicrs.spark.SparkKind`
//! (the type codes of a schema description), the enums
//! `io.mosaicrs.spark.jni.Compression` and `io.mosaicrs.spark.jni.SaveMode`
//! (which cross the boundary by constant name, and whose declaration order is
//! the ordinal listed here), the strides of a scan batch's metadata in
//! `io.mosaicrs.spark.read.NativeScan`, and the exception classes that
//! errors become ([`crate::error::EXCEPTION_CLASSES`]). `NativeBridge.contractTable()` hands
//! this table to the JVM, where a unit test holds every one of those
//! constants against it, so a change on one side alone fails a test.
//!
//! ```text
//! kind.Null=0 ... kind.Map=16, compression.NONE=0 ... compression.LZ4=2,
//! saveMode.ERROR_IF_EXISTS=0 ... saveMode.IGNORE=3, scan.nodeStride=5, scan.bufferStride=3,
//! exception.Io=io/mosaicrs/spark/jni/MosaicrsIOException, ...
//! ```

use jni::objects::JClass;
use jni::sys::jobjectArray;
use jni::JNIEnv;
use mosaicrs::format::Compression;
use mosaicrs::writer::SaveMode;
use mosaicrs::Error;

use crate::convert;
use crate::error::{guard, BridgeResult, EXCEPTION_CLASSES};

/// The Spark SQL types the connector stores, as a schema description numbers
/// them: the discriminant is the code, and [`SPARK_KINDS`] names each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SparkKind {
    Null = 0,
    Boolean = 1,
    Byte = 2,
    Short = 3,
    Int = 4,
    Long = 5,
    Float = 6,
    Double = 7,
    /// `a` = precision, `b` = scale.
    Decimal = 8,
    String = 9,
    Binary = 10,
    Date = 11,
    Timestamp = 12,
    TimestampNtz = 13,
    /// Followed by its element.
    Array = 14,
    /// `a` = number of fields, which follow.
    Struct = 15,
    /// Followed by its key, then its value.
    Map = 16,
}

/// Every [`SparkKind`] in code order, with the name of its JVM constant.
pub(crate) const SPARK_KINDS: [(SparkKind, &str); 17] = [
    (SparkKind::Null, "Null"),
    (SparkKind::Boolean, "Boolean"),
    (SparkKind::Byte, "Byte"),
    (SparkKind::Short, "Short"),
    (SparkKind::Int, "Int"),
    (SparkKind::Long, "Long"),
    (SparkKind::Float, "Float"),
    (SparkKind::Double, "Double"),
    (SparkKind::Decimal, "Decimal"),
    (SparkKind::String, "String"),
    (SparkKind::Binary, "Binary"),
    (SparkKind::Date, "Date"),
    (SparkKind::Timestamp, "Timestamp"),
    (SparkKind::TimestampNtz, "TimestampNtz"),
    (SparkKind::Array, "Array"),
    (SparkKind::Struct, "Struct"),
    (SparkKind::Map, "Map"),
];

impl TryFrom<i32> for SparkKind {
    type Error = Error;

    fn try_from(code: i32) -> Result<Self, Error> {
        usize::try_from(code)
            .ok()
            .and_then(|i| SPARK_KINDS.get(i))
            .map(|&(kind, _)| kind)
            .ok_or_else(|| Error::Internal(format!("unknown Spark type code {code} from the JVM")))
    }
}

/// Shard compressions in the order of the JVM enum `Compression`, by constant name.
pub(crate) const COMPRESSIONS: [(Compression, &str); 3] = [
    (Compression::None, "NONE"),
    (Compression::Zstd, "ZSTD"),
    (Compression::Lz4, "LZ4"),
];

/// Save modes in the order of the JVM enum `SaveMode`, by constant name.
pub(crate) const SAVE_MODES: [(SaveMode, &str); 4] = [
    (SaveMode::ErrorIfExists, "ERROR_IF_EXISTS"),
    (SaveMode::Append, "APPEND"),
    (SaveMode::Overwrite, "OVERWRITE"),
    (SaveMode::Ignore, "IGNORE"),
];

/// Values per column node in a scan batch's metadata (after the row count):
/// length, null count, validity bit offset, values bit offset, data address.
pub(crate) const NODE_STRIDE: usize = 5;
/// Buffers per column node in a scan batch: validity, then up to two data buffers.
pub(crate) const BUFFER_STRIDE: usize = 3;

/// The JVM constant name of `value` in `table`.
pub(crate) fn name_of<T: PartialEq + Copy>(table: &[(T, &'static str)], value: T) -> &'static str {
    table
        .iter()
        .find(|(v, _)| *v == value)
        .map_or("?", |&(_, name)| name)
}

/// The value whose JVM constant is `name` in `table`; `what` names the table in errors.
pub(crate) fn named<T: Copy>(table: &[(T, &str)], name: &str, what: &str) -> BridgeResult<T> {
    table
        .iter()
        .find(|(_, n)| *n == name)
        .map(|&(value, _)| value)
        .ok_or_else(|| Error::Internal(format!("unknown {what} {name:?} from the JVM")).into())
}

/// The whole table as `group.NAME=value` lines, in a stable order.
pub(crate) fn entries() -> Vec<String> {
    fn group<T>(out: &mut Vec<String>, group: &str, table: &[(T, &str)]) {
        out.extend(
            table
                .iter()
                .enumerate()
                .map(|(ordinal, (_, name))| format!("{group}.{name}={ordinal}")),
        );
    }
    let mut out = Vec::new();
    group(&mut out, "kind", &SPARK_KINDS);
    group(&mut out, "compression", &COMPRESSIONS);
    group(&mut out, "saveMode", &SAVE_MODES);
    out.push(format!("scan.nodeStride={NODE_STRIDE}"));
    out.push(format!("scan.bufferStride={BUFFER_STRIDE}"));
    out.extend(
        EXCEPTION_CLASSES
            .iter()
            .map(|(name, class)| format!("exception.{name}={class}")),
    );
    out
}

/// `String[] contractTable()`
///
/// The table of kinds, ordinals, strides and exception classes (see the module docs), as
/// `group.NAME=value` lines, for the JVM's tests of its own constants.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_contractTable<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        Ok(convert::java_strings(env, &entries())?.into_raw())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_codes_are_their_positions() {
        for (i, (kind, _)) in SPARK_KINDS.iter().enumerate() {
            assert_eq!(*kind as usize, i);
            assert_eq!(SparkKind::try_from(i as i32).unwrap(), *kind);
        }
        assert!(SparkKind::try_from(17).is_err());
        assert!(SparkKind::try_from(-1).is_err());
    }

    #[test]
    fn names_round_trip_and_unknown_ones_are_errors() {
        for (c, name) in COMPRESSIONS {
            assert_eq!(name_of(&COMPRESSIONS, c), name);
            assert_eq!(named(&COMPRESSIONS, name, "compression").unwrap(), c);
        }
        for (m, name) in SAVE_MODES {
            assert_eq!(
                named(&SAVE_MODES, name_of(&SAVE_MODES, m), "mode").unwrap(),
                m
            );
            assert_eq!(name_of(&SAVE_MODES, m), name);
        }
        assert!(named(&COMPRESSIONS, "GZIP", "compression").is_err());
    }

    #[test]
    fn the_table_lists_every_constant_once() {
        let lines = entries();
        assert_eq!(lines.len(), 17 + 3 + 4 + 2 + 5);
        assert_eq!(lines[0], "kind.Null=0");
        assert!(lines.contains(&"kind.Map=16".to_string()));
        assert!(lines.contains(&"compression.LZ4=2".to_string()));
        assert!(lines.contains(&"saveMode.IGNORE=3".to_string()));
        assert!(lines.contains(&"scan.nodeStride=5".to_string()));
        assert!(lines.contains(
            &"exception.Conflict=io/mosaicrs/spark/jni/MosaicrsConflictException".into()
        ));
        let keys: std::collections::HashSet<_> =
            lines.iter().map(|l| l.split('=').next().unwrap()).collect();
        assert_eq!(keys.len(), lines.len());
    }
}
