//! Byte sizes as people write them in options: `67108864`, `64m`, `64MiB`,
//! `1g`, `512k`. Shard sizes, cache limits and bench sizes share the one
//! grammar, so every entry point accepts the same spellings.

use crate::{Error, Result};

/// Parses a byte size such as `67108864`, `64m`, `64MiB`, `1g` or `512k`
/// (units are powers of 1,024, case-insensitive).
///
/// ```
/// use mosaicrs::units::parse_byte_size;
/// assert_eq!(parse_byte_size("64m").unwrap(), 64 << 20);
/// assert_eq!(parse_byte_size("1024").unwrap(), 1024);
/// assert!(parse_byte_size("lots").is_err());
/// ```
pub fn parse_byte_size(text: &str) -> Result<u64> {
    let t = text.trim().to_ascii_lowercase();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let bad = || {
        Error::InvalidArgument(format!(
            "size {text:?} is not a byte count; use e.g. 67108864, 64m or 1g"
        ))
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::parse_byte_size;

    #[test]
    fn units_and_overflow() {
        assert_eq!(parse_byte_size(" 512K ").unwrap(), 512 << 10);
        assert_eq!(parse_byte_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_byte_size("7b").unwrap(), 7);
        assert!(parse_byte_size("99999999999999999999g").is_err());
        assert!(parse_byte_size("17179869184g").is_err());
        assert!(parse_byte_size("1t").is_err());
        assert!(parse_byte_size("").is_err());
    }
}
