//! Driver-side exports: the dataset schema, the options check, commit, job
//! abort and pre-checks.

use jni::objects::{JClass, JIntArray, JObject, JObjectArray, JString};
use jni::sys::{jboolean, jobject, jobjectArray, jstring, JNI_FALSE, JNI_TRUE};
use jni::JNIEnv;
use mosaicrs::format::{encode_schema, Index};
use mosaicrs::storage::{DatasetVersion, Location};
use mosaicrs::writer::{self, SaveMode, WriteOptions};
use mosaicrs::Error;

use crate::column_buffers::SchemaDescription;
use crate::convert::{self, CommitOutcome, FromJava, ToJava, WriterSettings};
use crate::error::{guard, BridgeResult};

/// The writer options as typed values.
///
/// Every key is matched case-insensitively; the first unknown key or bad
/// value fails, naming the option and the value (the rules of
/// [`WriteOptions::from_options`]). Without `batchRows`, a task writes the
/// Spark default ([`WriteOptions::spark_batch_rows`]).
pub(crate) fn parse_options(keys: &[String], values: &[String]) -> BridgeResult<WriterSettings> {
    let options = write_options(keys, values)?;
    let batch_rows = u32::try_from(options.spark_batch_rows())
        .map_err(|_| Error::Internal("rows per batch do not fit an int".into()))?;
    Ok(WriterSettings {
        shard_bytes: options.writer.max_shard_bytes,
        batch_rows,
        compression: options.writer.compression,
        merge_schema: options.merge_schema,
    })
}

/// The write options from their keys and values, as the JVM passes them.
fn write_options(keys: &[String], values: &[String]) -> BridgeResult<WriteOptions> {
    if keys.len() != values.len() {
        return Err(Error::Internal("option keys and values differ in number".into()).into());
    }
    Ok(WriteOptions::from_options(keys.iter().zip(values))?)
}

/// `WriterSettings parseWriterOptions(String[] keys, String[] values)`
///
/// One check of every writer option the user set: returns the settings
/// every task writes with, or throws `MosaicrsInvalidInputException` naming
/// the first bad option.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_parseWriterOptions<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    keys: JObjectArray<'local>,
    values: JObjectArray<'local>,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let keys = convert::strings(env, &keys)?;
        let values = convert::strings(env, &values)?;
        let parsed = parse_options(&keys, &values)?;
        Ok(parsed.to_java(env)?.into_raw())
    })
}

/// `String storedSchema(String schemaBase64, String[] layoutKeys, String[] layoutValues)`
///
/// The schema the shards and the index will hold for rows of
/// `schemaBase64` under the layout options (`pack.<name>`,
/// `fixedLength.<column>`), base64 IPC. Checks the layout against the rows'
/// schema, so a bad column fails on the driver before any task runs.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_storedSchema<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    schema: JString<'local>,
    layout_keys: JObjectArray<'local>,
    layout_values: JObjectArray<'local>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let schema = convert::schema(env, &schema)?;
        let layout = convert::column_layout(env, &layout_keys, &layout_values)?;
        let stored = layout.plan(&schema)?;
        Ok(env.new_string(encode_schema(stored.schema())?)?.into_raw())
    })
}

/// `String arrowSchema(int[] kinds, int[] a, int[] b, String[] names)`
///
/// The dataset's Arrow schema, built from a typed description of the Spark
/// schema (see [`crate::column_buffers::SchemaDescription`]), as base64 of an Arrow
/// IPC schema stream: the encoding that the index and the other exports use.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_arrowSchema<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    kinds: JIntArray<'local>,
    a: JIntArray<'local>,
    b: JIntArray<'local>,
    names: JObjectArray<'local>,
) -> jstring {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let kinds = ints(env, &kinds)?;
        let a = ints(env, &a)?;
        let b = ints(env, &b)?;
        let names = convert::strings(env, &names)?;
        let schema = SchemaDescription {
            kinds: &kinds,
            a: &a,
            b: &b,
            names: &names,
        }
        .to_schema()?;
        Ok(env.new_string(encode_schema(&schema)?)?.into_raw())
    })
}

fn ints(env: &mut JNIEnv<'_>, array: &JIntArray<'_>) -> BridgeResult<Vec<i32>> {
    let len = env.get_array_length(array)?;
    let mut values = vec![0; usize::try_from(len).unwrap_or(0)];
    env.get_int_array_region(array, 0, &mut values)?;
    Ok(values)
}

/// `CommitOutcome commitWith(DatasetLocation location, String schemaBase64, String writeId,
/// ShardEntry[] shards, SaveMode saveMode, String[] optionKeys, String[] optionValues,
/// String[] writerKeys, String[] writerValues)`
///
/// Commits the shards of every committed task as one atomic index write: a
/// compare-and-swap on the index (a lock on local disks, a conditional
/// write on object stores). A lost race ends in `MosaicrsConflictException`.
/// The commit records the writer (`writerKeys` / `writerValues`: the engine,
/// Spark's application id and query) and what the write's options ask of a
/// commit (`metadata.<key>`), parsed as [`WriteOptions::from_options`] parses
/// them; `mergeSchema` among
/// them lets an append add nullable columns.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_commitWith<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    location: JObject<'local>,
    schema: JString<'local>,
    write_id: JString<'local>,
    shards: JObjectArray<'local>,
    save_mode: JObject<'local>,
    option_keys: JObjectArray<'local>,
    option_values: JObjectArray<'local>,
    writer_keys: JObjectArray<'local>,
    writer_values: JObjectArray<'local>,
) -> jobject {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let location = convert::location(env, &location)?;
        let schema = convert::schema(env, &schema)?;
        let write_id = convert::string(env, &write_id)?;
        let shards = convert::array_from_java(env, &shards)?;
        let mode = SaveMode::from_java(env, &save_mode)?;
        let mut options = write_options(
            &convert::strings(env, &option_keys)?,
            &convert::strings(env, &option_values)?,
        )?;
        let (keys, values) = (
            convert::strings(env, &writer_keys)?,
            convert::strings(env, &writer_values)?,
        );
        if keys.len() != values.len() {
            return Err(Error::Internal("writer keys and values differ in number".into()).into());
        }
        options.committer = keys.into_iter().zip(values).collect();
        let outcome = writer::commit_at_with(
            &location,
            &schema,
            &write_id,
            shards,
            mode,
            None,
            &options.commit_options(),
        )?;
        let outcome = CommitOutcome {
            committed: outcome.committed,
            total_rows: outcome.total_rows,
            removed: outcome.removed,
        };
        Ok(outcome.to_java(env)?.into_raw())
    })
}

/// `String[] abortWrite(DatasetLocation location, String writeId)`
///
/// Job abort: deletes every file of the write that the index does not list,
/// and returns their names.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_abortWrite<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    location: JObject<'local>,
    write_id: JString<'local>,
) -> jobjectArray {
    guard(&mut env, std::ptr::null_mut(), |env| {
        let location = convert::location(env, &location)?;
        let write_id = convert::string(env, &write_id)?;
        let removed = writer::abort_write_at(&location, &write_id)?;
        Ok(convert::java_strings(env, &removed)?.into_raw())
    })
}

/// `void checkAppendSchema(DatasetLocation location, String schemaBase64, boolean mergeSchema)`
///
/// Fails with `MosaicrsInvalidInputException` when the dataset at `location` has
/// a different schema (with `mergeSchema`, one that is not the dataset's
/// followed by nullable columns); passes when there is no dataset yet.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_checkAppendSchema<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    location: JObject<'local>,
    schema: JString<'local>,
    merge_schema: jboolean,
) {
    guard(&mut env, (), |env| {
        let location = convert::location(env, &location)?;
        let schema = convert::schema(env, &schema)?;
        let options = commit_options(merge_schema);
        writer::check_save_mode_with(&location, &schema, SaveMode::Append, &options)?;
        Ok(())
    })
}

/// The commit options of a Spark write: `mergeSchema` as the driver parsed it.
fn commit_options(merge_schema: jboolean) -> writer::CommitOptions {
    writer::CommitOptions {
        merge_schema: merge_schema != JNI_FALSE,
        ..writer::CommitOptions::default()
    }
}

/// `boolean datasetExists(DatasetLocation location)`:
/// true when the location holds a committed dataset (an index). Fails when
/// the store cannot be asked (credentials, network), rather than guessing.
#[no_mangle]
pub extern "system" fn Java_io_mosaicrs_spark_jni_NativeBridge_datasetExists<'local>(
    mut env: JNIEnv<'local>,
    _class: JClass<'local>,
    location: JObject<'local>,
) -> jboolean {
    guard(&mut env, JNI_FALSE, |env| {
        let location = convert::location(env, &location)?;
        let exists = match &location {
            Location::Local(dir) => Index::exists_in(dir),
            Location::Remote(_) => writer::dataset_version_at(&location)? != DatasetVersion::Absent,
        };
        Ok(if exists { JNI_TRUE } else { JNI_FALSE })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mosaicrs::format::Compression;

    fn parse(pairs: &[(&str, &str)]) -> Result<(u64, u32, Compression), String> {
        let keys: Vec<String> = pairs.iter().map(|p| p.0.to_string()).collect();
        let values: Vec<String> = pairs.iter().map(|p| p.1.to_string()).collect();
        parse_options(&keys, &values)
            .map(|s| (s.shard_bytes, s.batch_rows, s.compression))
            .map_err(|e| e.message())
    }

    #[test]
    fn options_parse_case_insensitively_with_defaults() {
        assert_eq!(parse(&[]).unwrap(), (64 << 20, 8192, Compression::None));
        // Compressed shards get the writer's smaller default...
        assert_eq!(
            parse(&[("compression", "zstd")]).unwrap(),
            (64 << 20, 4096, Compression::Zstd)
        );
        // ...unless the rows are chosen.
        assert_eq!(
            parse(&[("batchRows", "20000"), ("compression", "lz4")])
                .unwrap()
                .1,
            20000
        );
        assert_eq!(
            parse(&[
                ("SHARDSIZE", "1m"),
                ("batchrows", " 500 "),
                ("Compression", "ZSTD")
            ])
            .unwrap(),
            (1 << 20, 500, Compression::Zstd)
        );
        // mergeSchema reaches the driver's commit through the settings.
        let merge = |pairs: &[(&str, &str)]| {
            let (keys, values): (Vec<String>, Vec<String>) = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .unzip();
            parse_options(&keys, &values).map(|s| s.merge_schema)
        };
        assert!(merge(&[("MergeSchema", "true")]).unwrap());
        assert!(!merge(&[]).unwrap());
        assert!(merge(&[("mergeSchema", "maybe")]).is_err());
    }

    #[test]
    fn the_bad_option_is_named() {
        let cases = [
            (("shardsize2", "1m"), "unknown mosaicrs option 'shardsize2'"),
            (
                ("shardSize", "lots"),
                "invalid value 'lots' for mosaicrs option 'shardSize'",
            ),
            (
                ("shardSize", "0"),
                "invalid value '0' for mosaicrs option 'shardSize'",
            ),
            (
                ("compression", "gzip"),
                "invalid value 'gzip' for mosaicrs option 'compression'",
            ),
            (
                ("batchRows", "0"),
                "invalid value '0' for mosaicrs option 'batchRows'",
            ),
            (
                ("BATCHROWS", "many"),
                "invalid value 'many' for mosaicrs option 'batchRows'",
            ),
        ];
        for ((key, value), expected) in cases {
            let message = parse(&[("compression", "lz4"), (key, value)]).unwrap_err();
            assert!(message.contains(expected), "{message}");
        }
    }
}
