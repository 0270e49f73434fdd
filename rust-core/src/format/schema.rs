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
    let reader = StreamReader::try_new(Cursor::new(bytes), None)
        .map_err(|e| Error::arrow("decoding the schema", e))?;
    Ok(Arc::clone(&reader.schema()))
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
