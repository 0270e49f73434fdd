//! The Arrow schema as stored in the index.
//!
//! The index keeps the schema twice: as an Arrow IPC schema message (base64),
//! which is exact and readable by any Arrow implementation, and as a list of
//! field summaries for people reading the JSON.

use std::io::Cursor;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
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
