//! The Arrow schema as stored in the index.
//!
//! The index keeps the schema twice: as an Arrow IPC schema message (base64),
//! which is exact and readable by any Arrow implementation, and as a list of
//! field summaries for people reading the JSON.

use std::io::Cursor;
use std::sync::Arc;

use arrow::datatypes::{FieldRef, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A field's name, type and nullability, for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSummary {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub nullable: bool,
}

/// Encodes `schema` as base64 of an Arrow IPC stream holding only the schema.
///
/// ```
/// use arrow::datatypes::{DataType, Field, Schema};
/// use mosaicrs::format::{decode_schema, encode_schema};
/// let schema = Schema::new(vec![Field::new("x", DataType::Int64, true)]);
/// let text = encode_schema(&schema).unwrap();
/// assert_eq!(*decode_schema(&text).unwrap(), schema);
/// ```
pub fn encode_schema(schema: &Schema) -> Result<String> {
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, schema)
        .map_err(|e| Error::arrow("encoding the schema", e))?;
    writer
        .finish()
        .map_err(|e| Error::arrow("encoding the schema", e))?;
    drop(writer);
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Decodes a schema written by [`encode_schema`].
pub fn decode_schema(text: &str) -> Result<SchemaRef> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Error::InvalidArgument(format!("schema is not valid base64: {e}")))?;
    // The bytes come from an index file: a panic in arrow's schema decoding
    // becomes an error, not a crash.
    let decoded = std::panic::catch_unwind(|| {
        StreamReader::try_new(Cursor::new(bytes), None).map(|r| Arc::clone(&r.schema()))
    })
    .map_err(|_| Error::InvalidArgument("the schema message cannot be decoded".into()))?;
    decoded.map_err(|e| Error::arrow("decoding the schema", e))
}

/// One summary per top-level field.
pub fn describe_schema(schema: &Schema) -> Vec<FieldSummary> {
    schema
        .fields()
        .iter()
        .map(|f| FieldSummary {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
            nullable: f.is_nullable(),
        })
        .collect()
}

/// Describes the first difference between two schemas, or `None` if their
/// fields agree (names, types, nullability; metadata is ignored).
///
/// ```
/// use arrow::datatypes::{DataType, Field, Schema};
/// use mosaicrs::format::schema_difference;
/// let a = Schema::new(vec![Field::new("x", DataType::Int64, true)]);
/// let b = Schema::new(vec![Field::new("x", DataType::Int32, true)]);
/// assert!(schema_difference(&a, &b).unwrap().contains("\"x\""));
/// assert!(schema_difference(&a, &a).is_none());
/// ```
pub fn schema_difference(expected: &Schema, actual: &Schema) -> Option<String> {
    let names = |s: &Schema| {
        s.fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if expected.fields().len() != actual.fields().len() {
        return Some(format!(
            "expected columns [{}], found [{}]",
            names(expected),
            names(actual)
        ));
    }
    for (e, a) in expected.fields().iter().zip(actual.fields().iter()) {
        if e.name() != a.name() {
            return Some(format!(
                "expected columns [{}], found [{}]",
                names(expected),
                names(actual)
            ));
        }
        if !e.data_type().equals_datatype(a.data_type()) {
            return Some(format!(
                "column {:?}: expected type {}, found {}",
                e.name(),
                e.data_type(),
                a.data_type()
            ));
        }
        if e.is_nullable() != a.is_nullable() {
            let word = |n: bool| if n { "nullable" } else { "non-nullable" };
            return Some(format!(
                "column {:?}: expected {}, found {}",
                e.name(),
                word(e.is_nullable()),
                word(a.is_nullable())
            ));
        }
    }
    None
}

/// The columns that `incoming` adds after all of `existing`'s: `incoming`
/// must hold `existing`'s columns first, in order, with the same names,
/// types and nullability, then columns of new names that are nullable (the
/// rows written before them read as nulls). Otherwise the first difference,
/// naming the column. This is the rule of an append with `mergeSchema`.
///
/// ```
/// use arrow::datatypes::{DataType, Field, Schema};
/// use mosaicrs::format::added_columns;
/// let old = Schema::new(vec![Field::new("x", DataType::Int64, true)]);
/// let new = Schema::new(vec![
///     Field::new("x", DataType::Int64, true),
///     Field::new("y", DataType::Utf8, true),
/// ]);
/// assert_eq!(added_columns(&old, &new).unwrap()[0].name(), "y");
/// assert!(added_columns(&old, &old).unwrap().is_empty());
/// let strict = Schema::new(vec![
///     Field::new("x", DataType::Int64, true),
///     Field::new("z", DataType::Utf8, false),
/// ]);
/// assert!(added_columns(&old, &strict).unwrap_err().contains("\"z\""));
/// ```
pub fn added_columns<'a>(
    existing: &Schema,
    incoming: &'a Schema,
) -> std::result::Result<&'a [FieldRef], String> {
    let (old, new) = (existing.fields(), incoming.fields());
    for (i, e) in old.iter().enumerate() {
        let Some(a) = new.get(i) else {
            return Err(format!("column {:?} is missing", e.name()));
        };
        if e.name() != a.name() {
            let moved = new.iter().any(|f| f.name() == e.name());
            return Err(if moved {
                format!(
                    "column {:?} moved: column {} is {:?} here ({:?} in the dataset); \
                     columns keep their order",
                    e.name(),
                    i + 1,
                    a.name(),
                    e.name()
                )
            } else {
                format!("column {:?} is missing", e.name())
            });
        }
        if let Some(detail) = schema_difference(
            &Schema::new(vec![Arc::clone(e)]),
            &Schema::new(vec![Arc::clone(a)]),
        ) {
            return Err(detail);
        }
    }
    let added = &new[old.len().min(new.len())..];
    for field in added {
        if old.iter().any(|f| f.name() == field.name()) {
            return Err(format!("column {:?} appears twice", field.name()));
        }
        if !field.is_nullable() {
            return Err(format!(
                "column {:?} is added as non-nullable: the rows written before it have no \
                 value, so an added column must be nullable",
                field.name()
            ));
        }
    }
    Ok(added)
}

/// Whether a shard written with `shard` can be read as part of a dataset of
/// schema `dataset`: the shard holds a prefix of the dataset's columns (the
/// same names, types and nullability in order; a shard written before an
/// append added columns), and every column it lacks is nullable (it reads
/// as nulls). `None` when it can; otherwise the first difference.
///
/// ```
/// use arrow::datatypes::{DataType, Field, Schema};
/// use mosaicrs::format::shard_schema_difference;
/// let x = Field::new("x", DataType::Int64, true);
/// let dataset = Schema::new(vec![x.clone(), Field::new("y", DataType::Utf8, true)]);
/// assert!(shard_schema_difference(&dataset, &Schema::new(vec![x])).is_none());
/// let other = Schema::new(vec![Field::new("y", DataType::Utf8, true)]);
/// assert!(shard_schema_difference(&dataset, &other).is_some());
/// ```
pub fn shard_schema_difference(dataset: &Schema, shard: &Schema) -> Option<String> {
    let n = shard.fields().len();
    if n == 0 || n >= dataset.fields().len() {
        return schema_difference(dataset, shard);
    }
    let prefix = Schema::new(dataset.fields()[..n].to_vec());
    if let Some(detail) = schema_difference(&prefix, shard) {
        return Some(detail);
    }
    dataset.fields()[n..]
        .iter()
        .find(|f| !f.is_nullable())
        .map(|f| {
            format!(
                "column {:?} is missing and non-nullable, so it cannot read as nulls",
                f.name()
            )
        })
}

/// The added columns as a change record says them: `added columns: c (Int64), d (Utf8)`.
///
/// ```
/// use std::sync::Arc;
/// use arrow::datatypes::{DataType, Field};
/// use mosaicrs::format::describe_added_columns;
/// let added = [Arc::new(Field::new("c", DataType::Int64, true))];
/// assert_eq!(describe_added_columns(&added), "added columns: c (Int64)");
/// ```
pub fn describe_added_columns(added: &[FieldRef]) -> String {
    let columns = added
        .iter()
        .map(|f| format!("{} ({})", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ");
    format!("added columns: {columns}")
}

/// The position of column `name` in `schema`, or [`Error::ColumnNotFound`]
/// listing the columns there are.
///
/// ```
/// use arrow::datatypes::{DataType, Field, Schema};
/// use mosaicrs::format::column_index;
/// let schema = Schema::new(vec![Field::new("x", DataType::Int64, true)]);
/// assert_eq!(column_index(&schema, "x").unwrap(), 0);
/// assert!(column_index(&schema, "y").unwrap_err().to_string().contains("available columns: x"));
/// ```
pub fn column_index(schema: &Schema, name: &str) -> Result<usize> {
    schema.index_of(name).map_err(|_| Error::ColumnNotFound {
        name: name.to_string(),
        available: schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Positions of the named columns in `schema`, or [`Error::ColumnNotFound`]
/// for the first one missing.
pub(crate) fn column_indices(schema: &Schema, columns: &[&str]) -> Result<Vec<usize>> {
    columns
        .iter()
        .map(|name| column_index(schema, name))
        .collect()
}
