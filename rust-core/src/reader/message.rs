//! A record batch message checked before arrow's decoder sees it.
//!
//! arrow-rs's IPC decoder slices the body at the offsets its buffer table
//! gives and allocates what a compressed buffer's length prefix declares. Both
//! come from the file, so both are checked here first: the message header's
//! length prefix, its version, its body length, the field nodes and buffers
//! against the schema, every buffer against the body, and every compressed
//! buffer's declared length against what its column can hold.

use arrow::datatypes::{DataType, Schema};
use arrow::ipc::{
    root_as_message, BodyCompressionMethod, CompressionType, MessageHeader, MetadataVersion,
};

use crate::format::Compression;

/// The most bytes that the buffers of one record batch of a compressed shard
/// may declare once decompressed. A forged length prefix is refused here
/// instead of becoming an allocation that aborts the process.
pub const DECODED_BATCH_LIMIT: u64 = 2 << 30;

/// Bytes of the length prefix of a compressed IPC buffer.
const PREFIX_LEN: usize = 8;

/// What a buffer holds, which bounds how long it can be for `n` values.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A validity or boolean bitmap: one bit per value.
    Bits,
    /// `n + 1` offsets of this many bytes.
    Offsets(u64),
    /// `n` values of this many bytes.
    Fixed(u64),
    /// `n` fixed-size binary values of this many bytes (read as bytes).
    Bytes(u64),
    /// Variable-size data; at most this many bytes.
    Data(u64),
}

impl Kind {
    /// Most bytes a buffer of this kind holds for `n` values, rounded up to
    /// the 64-byte padding that Arrow writers use.
    fn bound(self, n: u64) -> u64 {
        let exact = match self {
            Kind::Bits => n.div_ceil(8),
            Kind::Offsets(w) => n.saturating_add(1).saturating_mul(w),
            Kind::Fixed(w) | Kind::Bytes(w) => n.saturating_mul(w),
            Kind::Data(max) => max,
        };
        exact.saturating_add(63) / 64 * 64
    }

    /// The size of the values Arrow reads this buffer as: its length must
    /// be a multiple (Arrow's typed views panic otherwise).
    fn unit(self) -> u64 {
        match self {
            Kind::Offsets(w) | Kind::Fixed(w) => w,
            Kind::Bits | Kind::Bytes(_) | Kind::Data(_) => 1,
        }
    }
}

/// The record batch's row count, after checking its header; with `body`,
/// also every compressed buffer's declared length.
///
/// `meta` is the message header as the block gives it (length prefix
/// included), `body_len` the block's body length, `version` the footer's.
pub(crate) fn check_message(
    meta: &[u8],
    body_len: u64,
    body: Option<&[u8]>,
    version: MetadataVersion,
    schema: &Schema,
    compression: Compression,
    max_rows: u64,
) -> Result<u64, String> {
    let flatbuffer = message_bytes(meta)?;
    let message = root_as_message(flatbuffer).map_err(|e| format!("unreadable header: {e}"))?;
    if message.version() != version {
        return Err(format!(
            "message version {:?} differs from the footer's {version:?}",
            message.version()
        ));
    }
    if message.header_type() != MessageHeader::RecordBatch {
        return Err(format!(
            "message is a {:?}, not a record batch",
            message.header_type()
        ));
    }
    let batch = message
        .header_as_record_batch()
        .ok_or("message has no record batch header")?;
    if u64::try_from(message.bodyLength()).ok() != Some(body_len) {
        return Err(format!(
            "message body length {} differs from the footer's {body_len}",
            message.bodyLength()
        ));
    }
    let rows = u64::try_from(batch.length())
        .map_err(|_| format!("negative row count {}", batch.length()))?;
    if rows > max_rows {
        return Err(format!(
            "{rows} rows, more than the {max_rows} that the index records for the shard"
        ));
    }
    let found = match batch.compression() {
        None => Compression::None,
        Some(c) => {
            if c.method() != BodyCompressionMethod::BUFFER {
                return Err(format!("unknown compression method {:?}", c.method()));
            }
            match c.codec() {
                CompressionType::LZ4_FRAME => Compression::Lz4,
                CompressionType::ZSTD => Compression::Zstd,
                other => return Err(format!("unknown compression codec {other:?}")),
            }
        }
    };
    if found != compression {
        return Err(format!(
            "buffers are compressed with {}, the index records {}",
            found.as_str(),
            compression.as_str()
        ));
    }

    let nodes: Vec<(u64, u64)> = batch
        .nodes()
        .map(|n| {
            n.iter()
                .map(|n| (n.length(), n.null_count()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, (len, nulls))| {
            let len =
                u64::try_from(len).map_err(|_| format!("field node {i}: negative length {len}"))?;
            let nulls = u64::try_from(nulls)
                .map_err(|_| format!("field node {i}: negative null count {nulls}"))?;
            if nulls > len {
                return Err(format!("field node {i}: {nulls} nulls in {len} values"));
            }
            Ok((len, nulls))
        })
        .collect::<Result<_, String>>()?;
    let buffers: Vec<(u64, u64)> = batch
        .buffers()
        .map(|b| {
            b.iter()
                .map(|b| (b.offset(), b.length()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, (offset, len))| {
            let start = u64::try_from(offset)
                .map_err(|_| format!("buffer {i}: negative offset {offset}"))?;
            let len =
                u64::try_from(len).map_err(|_| format!("buffer {i}: negative length {len}"))?;
            start
                .checked_add(len)
                .filter(|&end| end <= body_len)
                .ok_or_else(|| {
                    format!("buffer {i}: bytes {start}+{len} lie outside the {body_len}-byte body")
                })?;
            Ok((start, len))
        })
        .collect::<Result<_, String>>()?;

    // Which kind each buffer is, and the length of its node, from the schema.
    let mut walk = BufferWalk {
        nodes: &nodes,
        next_node: 0,
        buffer_kinds: Vec::with_capacity(buffers.len()),
    };
    for field in schema.fields() {
        walk.field(field.name(), field.data_type(), Some(rows))?;
    }
    if walk.next_node != nodes.len() {
        return Err(format!(
            "{} field nodes for a schema that has {}",
            nodes.len(),
            walk.next_node
        ));
    }
    if walk.buffer_kinds.len() != buffers.len() {
        return Err(format!(
            "{} buffers for a schema that has {}",
            buffers.len(),
            walk.buffer_kinds.len()
        ));
    }

    if compression == Compression::None {
        for (i, (&(_, len), &(kind, _))) in buffers.iter().zip(walk.buffer_kinds.iter()).enumerate()
        {
            if len % kind.unit() != 0 {
                return Err(format!(
                    "buffer {i}: {len} bytes is not a whole number of {}-byte values",
                    kind.unit()
                ));
            }
        }
    }
    if let (Some(body), true) = (body, compression != Compression::None) {
        if body.len() as u64 != body_len {
            return Err(format!(
                "body holds {} bytes, the footer says {body_len}",
                body.len()
            ));
        }
        let mut total = 0u64;
        for (i, (&(start, len), &(kind, n))) in
            buffers.iter().zip(walk.buffer_kinds.iter()).enumerate()
        {
            if len == 0 {
                continue;
            }
            // In range: checked against body_len above.
            let bytes = &body[start as usize..(start + len) as usize];
            let Some(prefix) = bytes.first_chunk::<PREFIX_LEN>() else {
                return Err(format!(
                    "compressed buffer {i}: {len} bytes is too short for its length prefix"
                ));
            };
            let declared = i64::from_le_bytes(*prefix);
            if declared == -1 {
                // Stored uncompressed: the bytes after the prefix are the data.
                if (len - PREFIX_LEN as u64) % kind.unit() != 0 {
                    return Err(format!(
                        "buffer {i}: {} bytes is not a whole number of {}-byte values",
                        len - PREFIX_LEN as u64,
                        kind.unit()
                    ));
                }
                continue;
            }
            let declared = u64::try_from(declared).map_err(|_| {
                format!("compressed buffer {i}: negative uncompressed length {declared}")
            })?;
            if declared % kind.unit() != 0 {
                return Err(format!(
                    "compressed buffer {i}: {declared} uncompressed bytes is not a whole number \
                     of {}-byte values",
                    kind.unit()
                ));
            }
            let bound = kind.bound(n);
            if declared > bound {
                return Err(format!(
                    "compressed buffer {i}: declares {declared} uncompressed bytes, more than \
                     the {bound} that {n} values can hold"
                ));
            }
            total = total.saturating_add(declared);
            if total > DECODED_BATCH_LIMIT {
                return Err(format!(
                    "compressed buffers declare more than {DECODED_BATCH_LIMIT} uncompressed \
                     bytes for one record batch"
                ));
            }
        }
    }
    Ok(rows)
}

/// The flatbuffer inside an encapsulated message header:
/// `[0xFFFFFFFF][i32 length][flatbuffer][padding]`, or the pre-1.0 form
/// without the continuation marker.
fn message_bytes(meta: &[u8]) -> Result<&[u8], String> {
    let (len_at, start): (usize, usize) = match meta.first_chunk::<4>() {
        Some(&[0xff, 0xff, 0xff, 0xff]) => (4, 8),
        Some(_) => (0, 4),
        None => return Err("message header is too short".into()),
    };
    let len = meta
        .get(len_at..len_at + 4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_le_bytes)
        .ok_or("message header is too short")?;
    let len = usize::try_from(len).map_err(|_| format!("negative message length {len}"))?;
    start
        .checked_add(len)
        .and_then(|end| meta.get(start..end))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            format!(
                "message length {len} does not fit its {}-byte header",
                meta.len()
            )
        })
}

/// Walks the schema in the order Arrow lays out field nodes and buffers.
struct BufferWalk<'a> {
    nodes: &'a [(u64, u64)],
    next_node: usize,
    /// For each buffer: its kind and the length of its node.
    buffer_kinds: Vec<(Kind, u64)>,
}

impl BufferWalk<'_> {
    fn field(
        &mut self,
        name: &str,
        data_type: &DataType,
        expected: Option<u64>,
    ) -> Result<(), String> {
        let Some(&(n, _)) = self.nodes.get(self.next_node) else {
            return Err(format!(
                "column {name:?}: field node {} is missing",
                self.next_node
            ));
        };
        if let Some(expected) = expected {
            if n != expected {
                return Err(format!(
                    "column {name:?}: field node {} holds {n} values, expected {expected}",
                    self.next_node
                ));
            }
        }
        self.next_node += 1;
        let mut push = |kinds: &[Kind]| {
            for &k in kinds {
                self.buffer_kinds.push((k, n));
            }
        };
        match data_type {
            DataType::Null => {}
            DataType::Boolean => push(&[Kind::Bits, Kind::Bits]),
            DataType::Utf8 | DataType::Binary => {
                push(&[Kind::Bits, Kind::Offsets(4), Kind::Data(i32::MAX as u64)])
            }
            DataType::LargeUtf8 | DataType::LargeBinary => {
                push(&[Kind::Bits, Kind::Offsets(8), Kind::Data(u64::MAX)])
            }
            DataType::FixedSizeBinary(w) => {
                let w =
                    u64::try_from(*w).map_err(|_| format!("column {name:?}: negative width"))?;
                push(&[Kind::Bits, Kind::Bytes(w)])
            }
            DataType::List(child) | DataType::Map(child, _) => {
                push(&[Kind::Bits, Kind::Offsets(4)]);
                self.field(name, child.data_type(), None)?;
            }
            DataType::LargeList(child) => {
                push(&[Kind::Bits, Kind::Offsets(8)]);
                self.field(name, child.data_type(), None)?;
            }
            DataType::FixedSizeList(child, size) => {
                push(&[Kind::Bits]);
                let size =
                    u64::try_from(*size).map_err(|_| format!("column {name:?}: negative size"))?;
                let values = n.checked_mul(size).ok_or_else(|| {
                    format!("column {name:?}: {n} lists of {size} values overflow")
                })?;
                self.field(name, child.data_type(), Some(values))?;
            }
            DataType::Struct(fields) => {
                push(&[Kind::Bits]);
                for f in fields {
                    self.field(f.name(), f.data_type(), Some(n))?;
                }
            }
            other => match other.primitive_width() {
                Some(w) => push(&[Kind::Bits, Kind::Fixed(w as u64)]),
                None => {
                    return Err(format!(
                        "column {name:?}: type {other} is not readable by this reader"
                    ))
                }
            },
        }
        Ok(())
    }
}
