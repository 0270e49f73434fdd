//! The footer of an Arrow IPC file, decoded and checked before anything
//! trusts it.
//!
//! arrow-rs's `FileDecoder` takes blocks and buffers as given; its users
//! (DataFusion, lance) decode the footer themselves. So do we, and every
//! offset and length it holds is checked against the bytes that are there:
//! no wrapping arithmetic, no negative values, blocks in file order without
//! overlaps, all of them before the footer.

use arrow::datatypes::Schema;
use arrow::ipc::convert::try_fb_to_schema;
use arrow::ipc::{root_as_footer, Block, MetadataVersion};

/// `ARROW1`: the magic at both ends of an Arrow IPC file.
pub(crate) const MAGIC: &[u8; 6] = b"ARROW1";
/// Leading magic and padding (8), then footer length (4) and trailing magic (6).
pub(crate) const MIN_FILE_LEN: u64 = 8 + 4 + 6;
/// Bytes after the footer: its length and the trailing magic.
pub(crate) const TRAILER_LEN: u64 = 10;

/// One record batch's place in the file, checked to lie inside it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockRange {
    /// The block as the footer holds it (what arrow's decoder takes).
    pub block: Block,
    /// Start of the message (its continuation marker) in the file.
    pub offset: u64,
    /// Bytes of the message header, including its length prefix and padding.
    pub meta_len: u64,
    /// Bytes of the message body.
    pub body_len: u64,
}

impl BlockRange {
    /// First byte after the block.
    pub fn end(&self) -> u64 {
        // Cannot overflow: checked when the range was built.
        self.offset + self.meta_len + self.body_len
    }
}

/// A decoded, checked footer.
#[derive(Debug)]
pub(crate) struct Footer {
    pub version: MetadataVersion,
    pub schema: Schema,
    pub blocks: Vec<BlockRange>,
}

/// Where the footer lies, from the file's last [`TRAILER_LEN`] bytes.
///
/// Returns the footer's start offset and length.
pub(crate) fn footer_range(file_len: u64, trailer: &[u8]) -> Result<(u64, u64), String> {
    if file_len < MIN_FILE_LEN {
        return Err(format!(
            "{file_len} bytes is too short for an Arrow IPC file"
        ));
    }
    let [a, b, c, d, magic @ ..] = trailer else {
        return Err("the file ends before its footer length".into());
    };
    if magic != MAGIC {
        return Err(
            "wrong magic at the end: the file is truncated or not an Arrow IPC file".into(),
        );
    }
    let footer_len = i32::from_le_bytes([*a, *b, *c, *d]);
    let footer_len =
        u64::try_from(footer_len).map_err(|_| format!("negative footer length {footer_len}"))?;
    // The footer lies between the leading magic (8 bytes) and the trailer.
    let room = file_len - TRAILER_LEN - 8;
    if footer_len == 0 || footer_len > room {
        return Err(format!(
            "footer length {footer_len} does not fit the file ({room} bytes between the magics)"
        ));
    }
    Ok((file_len - TRAILER_LEN - footer_len, footer_len))
}

impl Footer {
    /// Decodes the footer bytes `bytes`, which start at `footer_start` in the
    /// file: the schema and every record batch block, each checked to lie
    /// between the leading magic and the footer, in order, without overlaps.
    pub fn parse(bytes: &[u8], footer_start: u64) -> Result<Footer, String> {
        let footer = root_as_footer(bytes).map_err(|e| format!("unreadable footer: {e}"))?;
        let version = footer.version();
        if version < MetadataVersion::V4 || version > MetadataVersion::V5 {
            return Err(format!(
                "footer metadata version {version:?} is not one this reader knows (V4, V5)"
            ));
        }
        let fb_schema = footer.schema().ok_or("footer has no schema")?;
        let schema = try_fb_to_schema(fb_schema)
            .map_err(|e| format!("unreadable schema in the footer: {e}"))?;
        if footer.dictionaries().is_some_and(|d| !d.is_empty()) {
            return Err("dictionary-encoded shards are not part of format v1".into());
        }
        let raw: Vec<Block> = footer
            .recordBatches()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default();
        let mut blocks = Vec::with_capacity(raw.len());
        // Record batches follow the leading magic and the schema message.
        let mut previous_end = 8u64;
        for (i, block) in raw.into_iter().enumerate() {
            let range = check_block(i, block, previous_end, footer_start)?;
            previous_end = range.end();
            blocks.push(range);
        }
        Ok(Footer {
            version,
            schema,
            blocks,
        })
    }
}

fn check_block(
    i: usize,
    block: Block,
    previous_end: u64,
    footer_start: u64,
) -> Result<BlockRange, String> {
    let offset = u64::try_from(block.offset())
        .map_err(|_| format!("record batch {i}: negative offset {}", block.offset()))?;
    let meta_len = u64::try_from(block.metaDataLength()).map_err(|_| {
        format!(
            "record batch {i}: negative header length {}",
            block.metaDataLength()
        )
    })?;
    let body_len = u64::try_from(block.bodyLength()).map_err(|_| {
        format!(
            "record batch {i}: negative body length {}",
            block.bodyLength()
        )
    })?;
    if offset % 8 != 0 {
        return Err(format!(
            "record batch {i}: offset {offset} is not 8-byte aligned"
        ));
    }
    if meta_len < 8 {
        return Err(format!(
            "record batch {i}: header length {meta_len} is too short for a message"
        ));
    }
    if offset < previous_end {
        return Err(format!(
            "record batch {i}: starts at byte {offset}, before the end of the previous block \
             ({previous_end}); blocks must be in file order without overlaps"
        ));
    }
    let end = offset
        .checked_add(meta_len)
        .and_then(|e| e.checked_add(body_len))
        .filter(|&e| e <= footer_start)
        .ok_or_else(|| {
            format!(
                "record batch {i}: bytes {offset}+{meta_len}+{body_len} run past the footer \
                 at byte {footer_start}"
            )
        })?;
    debug_assert!(end > offset);
    Ok(BlockRange {
        block,
        offset,
        meta_len,
        body_len,
    })
}
