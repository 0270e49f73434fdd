//! Column buffers from the JVM into Arrow arrays: the connector's own
//! contract for rows crossing from the JVM, a typed description of the Spark
//! schema (from which the Arrow schema is built here, with the type codes of
//! [`crate::contract::SparkKind`]), and batches as plain Arrow-layout buffers
//! that the JVM filled.
//!
//! The JVM carries no Arrow library. Its row writer
//! (`io.mosaicrs.spark.ArrowLayoutWriter`) appends each column into
//! little-endian byte arrays laid out as Arrow buffers. At each batch it
//! passes, in a pre-order walk of the schema, every node's length and that
//! node's buffers; the JNI export copies each into an Arrow buffer once, and
//! this module assembles and validates the arrays with
//! [`ArrayData::try_new`], so a JVM-side bug becomes an error, never
//! undefined behaviour, and the JVM may reuse its arrays as soon as the call
//! returns.
//!
//! Buffers per node, in order (an empty validity buffer means "no nulls"):
//!
//! | Arrow type | buffers | children |
//! |---|---|---|
//! | Null | none | |
//! | Boolean, fixed width | validity, values | |
//! | Utf8, Binary | validity, offsets (i32), values | |
//! | List | validity, offsets (i32) | element |
//! | Struct | validity | fields |
//! | Map | validity, offsets (i32) | `entries` struct (key, value) |

use std::sync::Arc;

use arrow::array::{make_array, ArrayData, ArrayRef};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use mosaicrs::Error;

use crate::contract::SparkKind;
use crate::error::BridgeResult;

/// Time zone of `timestamp` columns: stored as UTC instants whatever the
/// session time zone, so a dataset's schema does not depend on the session.
pub(crate) const TIMESTAMP_ZONE: &str = "UTC";

/// Deepest nesting of arrays, structs and maps that a schema may have.
const MAX_DEPTH: usize = 256;

/// A typed description of a Spark schema: one entry per type node, in pre-order.
pub(crate) struct SchemaDescription<'a> {
    pub(crate) kinds: &'a [i32],
    pub(crate) a: &'a [i32],
    pub(crate) b: &'a [i32],
    /// Field names; only read for top-level columns and struct fields.
    pub(crate) names: &'a [String],
}

impl SchemaDescription<'_> {
    /// The dataset's Arrow schema: every column, element and map value
    /// nullable (as Spark's file sources store them), map entries and keys not.
    ///
    /// ```text
    /// int -> Int32, decimal(p,s) -> Decimal128(p,s), timestamp -> Timestamp(us, "UTC"),
    /// timestamp_ntz -> Timestamp(us), array<T> -> List<element: T>,
    /// map<K,V> -> Map<entries: Struct<key: K, value: V>>
    /// ```
    pub(crate) fn to_schema(&self) -> BridgeResult<Schema> {
        let n = self.kinds.len();
        if self.a.len() != n || self.b.len() != n || self.names.len() != n {
            return Err(internal("the schema description's arrays differ in length"));
        }
        if n == 0 {
            return Err(Error::InvalidArgument(
                "mosaicrs cannot write a DataFrame without columns".into(),
            )
            .into());
        }
        let mut next = 0;
        let mut fields = Vec::new();
        while next < n {
            let name = self.names[next].clone();
            fields.push(self.field(&mut next, name, true, 0)?);
        }
        Ok(Schema::new(fields))
    }

    fn field(
        &self,
        next: &mut usize,
        name: String,
        nullable: bool,
        depth: usize,
    ) -> BridgeResult<Field> {
        if depth > MAX_DEPTH {
            return Err(Error::InvalidArgument(format!(
                "column {name}: types nest deeper than {MAX_DEPTH} levels"
            ))
            .into());
        }
        let i = *next;
        let kind = SparkKind::try_from(
            *self
                .kinds
                .get(i)
                .ok_or_else(|| internal("the schema description ends inside a type"))?,
        )?;
        *next += 1;
        let data_type = match kind {
            SparkKind::Null => DataType::Null,
            SparkKind::Boolean => DataType::Boolean,
            SparkKind::Byte => DataType::Int8,
            SparkKind::Short => DataType::Int16,
            SparkKind::Int => DataType::Int32,
            SparkKind::Long => DataType::Int64,
            SparkKind::Float => DataType::Float32,
            SparkKind::Double => DataType::Float64,
            SparkKind::Decimal => {
                let (p, s) = (self.a[i], self.b[i]);
                match (u8::try_from(p), i8::try_from(s)) {
                    (Ok(p @ 1..=38), Ok(s)) => DataType::Decimal128(p, s),
                    _ => {
                        return Err(Error::InvalidArgument(format!(
                            "column {name}: decimal({p}, {s}) does not fit Decimal128"
                        ))
                        .into())
                    }
                }
            }
            SparkKind::String => DataType::Utf8,
            SparkKind::Binary => DataType::Binary,
            SparkKind::Date => DataType::Date32,
            SparkKind::Timestamp => {
                DataType::Timestamp(TimeUnit::Microsecond, Some(TIMESTAMP_ZONE.into()))
            }
            SparkKind::TimestampNtz => DataType::Timestamp(TimeUnit::Microsecond, None),
            SparkKind::Array => {
                let element = self.field(next, "element".into(), true, depth + 1)?;
                DataType::List(Arc::new(element))
            }
            SparkKind::Struct => {
                let count = usize::try_from(self.a[i])
                    .map_err(|_| internal("negative struct field count"))?;
                let mut children = Vec::with_capacity(count.min(self.kinds.len()));
                for _ in 0..count {
                    let child_name =
                        self.names.get(*next).cloned().ok_or_else(|| {
                            internal("the schema description ends inside a struct")
                        })?;
                    children.push(self.field(next, child_name, true, depth + 1)?);
                }
                DataType::Struct(Fields::from(children))
            }
            SparkKind::Map => {
                let key = self.field(next, "key".into(), false, depth + 1)?;
                let value = self.field(next, "value".into(), true, depth + 1)?;
                let entries = Field::new(
                    "entries",
                    DataType::Struct(Fields::from(vec![key, value])),
                    false,
                );
                DataType::Map(Arc::new(entries), false)
            }
        };
        Ok(Field::new(name, data_type, nullable))
    }
}

/// One batch as the JVM laid it out: every node's length, and the buffers
/// of all nodes, in the pre-order of the schema (see the module docs).
pub(crate) struct BatchLayout<'a> {
    pub(crate) rows: usize,
    pub(crate) node_lengths: &'a [i32],
    pub(crate) buffers: &'a [Buffer],
}

/// Assembles and validates a batch laid out by the JVM into a record batch of
/// `schema`; the arrays share `layout`'s buffers.
pub(crate) fn import_batch(
    schema: &SchemaRef,
    layout: &BatchLayout<'_>,
) -> BridgeResult<RecordBatch> {
    let mut cursor = Cursor {
        layout,
        next_node: 0,
        next_buffer: 0,
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let data = cursor.array(field.name(), field.data_type())?;
        if data.len() != layout.rows {
            return Err(internal(&format!(
                "column {} has {} rows in a batch of {}",
                field.name(),
                data.len(),
                layout.rows
            )));
        }
        columns.push(make_array(data));
    }
    if cursor.next_node != layout.node_lengths.len() || cursor.next_buffer != layout.buffers.len() {
        return Err(internal(&format!(
            "the JVM sent {} nodes and {} buffers, the schema has {} and {}",
            layout.node_lengths.len(),
            layout.buffers.len(),
            cursor.next_node,
            cursor.next_buffer
        )));
    }
    RecordBatch::try_new(Arc::clone(schema), columns)
        .map_err(|e| Error::arrow("assembling a batch from the JVM", e).into())
}

struct Cursor<'l, 'a> {
    layout: &'l BatchLayout<'a>,
    next_node: usize,
    next_buffer: usize,
}

impl Cursor<'_, '_> {
    fn length(&mut self, column: &str) -> BridgeResult<usize> {
        let raw = *self
            .layout
            .node_lengths
            .get(self.next_node)
            .ok_or_else(|| internal(&format!("column {column}: the JVM sent too few nodes")))?;
        self.next_node += 1;
        usize::try_from(raw)
            .map_err(|_| internal(&format!("column {column}: negative length {raw}")))
    }

    /// The next buffer (shared, not copied).
    fn buffer(&mut self, column: &str) -> BridgeResult<Buffer> {
        let bytes =
            self.layout.buffers.get(self.next_buffer).ok_or_else(|| {
                internal(&format!("column {column}: the JVM sent too few buffers"))
            })?;
        self.next_buffer += 1;
        Ok(bytes.clone())
    }

    /// The next validity buffer; empty means "no nulls".
    fn validity(&mut self, column: &str) -> BridgeResult<Option<Buffer>> {
        let bytes = self.buffer(column)?;
        Ok((!bytes.is_empty()).then_some(bytes))
    }

    fn array(&mut self, column: &str, data_type: &DataType) -> BridgeResult<ArrayData> {
        let len = self.length(column)?;
        let (nulls, buffers, children) = match data_type {
            DataType::Null => (None, vec![], vec![]),
            DataType::Utf8 | DataType::Binary => {
                let nulls = self.validity(column)?;
                let offsets = self.buffer(column)?;
                let values = self.buffer(column)?;
                (nulls, vec![offsets, values], vec![])
            }
            DataType::List(element) => {
                let nulls = self.validity(column)?;
                let offsets = self.buffer(column)?;
                let child = self.array(column, element.data_type())?;
                (nulls, vec![offsets], vec![child])
            }
            DataType::Map(entries, _) => {
                let nulls = self.validity(column)?;
                let offsets = self.buffer(column)?;
                let child = self.array(column, entries.data_type())?;
                (nulls, vec![offsets], vec![child])
            }
            DataType::Struct(fields) => {
                let nulls = self.validity(column)?;
                let mut children = Vec::with_capacity(fields.len());
                for f in fields {
                    children.push(self.array(column, f.data_type())?);
                }
                (nulls, vec![], children)
            }
            _ => {
                let nulls = self.validity(column)?;
                let values = self.buffer(column)?;
                (nulls, vec![values], vec![])
            }
        };
        // `try_new` checks buffer sizes, offsets, UTF-8 and child lengths.
        ArrayData::try_new(data_type.clone(), len, nulls, 0, buffers, children).map_err(|e| {
            Error::Internal(format!(
                "column {column}: the JVM's {data_type} buffers are not valid Arrow: {e}"
            ))
            .into()
        })
    }
}

fn internal(message: &str) -> crate::error::BridgeError {
    Error::Internal(message.to_string()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;

    fn owned(buffers: &[&[u8]]) -> Vec<Buffer> {
        buffers.iter().map(Buffer::from_slice_ref).collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn description_builds_spark_mapping() {
        // id long, tags array<string>, m map<string, decimal(20,4)>, s struct<ts timestamp>
        let kinds = [5, 14, 9, 16, 9, 8, 15, 12];
        let a = [0, 0, 0, 0, 0, 20, 1, 0];
        let b = [0, 0, 0, 0, 0, 4, 0, 0];
        let n = names(&["id", "tags", "", "m", "", "", "s", "ts"]);
        let schema = SchemaDescription {
            kinds: &kinds,
            a: &a,
            b: &b,
            names: &n,
        }
        .to_schema()
        .unwrap();
        assert_eq!(schema.fields().len(), 4);
        assert_eq!(
            schema.field(1).data_type(),
            &DataType::List(Arc::new(Field::new("element", DataType::Utf8, true)))
        );
        let DataType::Map(entries, false) = schema.field(2).data_type() else {
            panic!("not a map")
        };
        let DataType::Struct(kv) = entries.data_type() else {
            panic!()
        };
        assert_eq!(kv[0].as_ref(), &Field::new("key", DataType::Utf8, false));
        assert_eq!(kv[1].data_type(), &DataType::Decimal128(20, 4));
        let DataType::Struct(s) = schema.field(3).data_type() else {
            panic!()
        };
        assert_eq!(
            s[0].data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert!(schema.fields().iter().all(|f| f.is_nullable()));
    }

    #[test]
    fn bad_descriptions_are_errors() {
        let n = names(&["x"]);
        for kinds in [[99], [14], [-1]] {
            let d = SchemaDescription {
                kinds: &kinds,
                a: &[0],
                b: &[0],
                names: &n,
            };
            assert!(d.to_schema().is_err(), "{kinds:?}");
        }
        let d = SchemaDescription {
            kinds: &[8],
            a: &[40],
            b: &[0],
            names: &n,
        };
        assert!(d.to_schema().is_err());
    }

    fn schema_of(kinds: &[i32], n: &[&str]) -> SchemaRef {
        let zeros = vec![0; kinds.len()];
        let n = names(n);
        Arc::new(
            SchemaDescription {
                kinds,
                a: &zeros,
                b: &zeros,
                names: &n,
            }
            .to_schema()
            .unwrap(),
        )
    }

    #[test]
    fn buffers_import_and_bad_ones_are_errors() {
        // x long (one null), s string
        let schema = schema_of(&[5, 9], &["x", "s"]);
        let validity = [0b101u8];
        let values: Vec<u8> = [1i64, 0, 3].iter().flat_map(|v| v.to_le_bytes()).collect();
        let offsets: Vec<u8> = [0i32, 1, 3, 3]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let text = b"abc";
        let buffers: Vec<&[u8]> = vec![&validity, &values, &[], &offsets, text];
        let batch = import_batch(
            &schema,
            &BatchLayout {
                rows: 3,
                node_lengths: &[3, 3],
                buffers: &owned(&buffers),
            },
        )
        .unwrap();
        let x = batch.column(0).as_primitive::<Int64Type>();
        assert_eq!(x.null_count(), 1);
        assert_eq!(x.value(2), 3);
        assert_eq!(batch.column(1).as_string::<i32>().value(1), "bc");

        // Offsets past the values, short values, a wrong count: errors, not UB.
        let bad_offsets: Vec<u8> = [0i32, 1, 9, 9]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let short = &values[..16];
        for (buffers, nodes) in [
            (
                vec![&validity[..], &values, &[], &bad_offsets, text],
                vec![3, 3],
            ),
            (vec![&validity[..], short, &[], &offsets, text], vec![3, 3]),
            (vec![&validity[..], &values, &[], &offsets], vec![3, 3]),
            (
                vec![&validity[..], &values, &[], &offsets, text],
                vec![3, 2],
            ),
            (
                vec![&validity[..], &values, &[], &offsets, text],
                vec![3, -3],
            ),
        ] {
            let layout = BatchLayout {
                rows: 3,
                node_lengths: &nodes,
                buffers: &owned(&buffers),
            };
            assert!(import_batch(&schema, &layout).is_err());
        }
        let bad_utf8 = [0xffu8, 0xfe, 0xfd];
        let buffers: Vec<&[u8]> = vec![&validity, &values, &[], &offsets, &bad_utf8];
        let layout = BatchLayout {
            rows: 3,
            node_lengths: &[3, 3],
            buffers: &owned(&buffers),
        };
        assert!(import_batch(&schema, &layout).is_err());
    }
}
