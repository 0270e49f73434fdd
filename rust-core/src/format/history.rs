//! The commit history on disk: what each version record holds beyond the
//! index, where the records live, and how a version is named.
//!
//! Every commit creates `_versions/<version as 20 digits>.json`, the full
//! index of that version, once and never again (create-if-absent), and then
//! replaces `index.json` (the head) with the same bytes. `docs/FORMAT.md`
//! ("History") gives the rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Folder (object-store prefix) of the version records, inside the dataset.
pub const VERSIONS_DIR: &str = "_versions";

/// What one commit did, recorded in the index of the version it made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// `create`, `append`, `overwrite` or `restore`.
    pub operation: String,
    /// Milliseconds since the Unix epoch; never earlier than the previous
    /// version's, so versions are ordered in time as in number.
    pub committed_at_ms: u64,
    /// The write that made the commit.
    pub write_id: String,
    /// Rows the version has that the previous one had not.
    pub rows_added: u64,
    /// Rows of the previous version this one no longer lists.
    pub rows_removed: u64,
    /// Shards the version lists that the previous one did not.
    pub shards_added: u64,
    /// Shards of the previous version this one no longer lists.
    pub shards_removed: u64,
    /// Who wrote: the engine and its identifiers.
    #[serde(default)]
    pub writer: BTreeMap<String, String>,
    /// The user's metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// For `restore`: the version whose content this one has.
    #[serde(default)]
    pub restored_from: Option<u64>,
    /// What changed in the schema (columns added by `mergeSchema`).
    #[serde(default)]
    pub schema_change: Option<String>,
}

/// The name of version `version`'s record inside the dataset
/// (`_versions/` and the number as 20 digits, so names sort as numbers).
///
/// ```
/// use mosaicrs::format::version_record_name;
/// assert_eq!(version_record_name(12), "_versions/00000000000000000012.json");
/// ```
pub fn version_record_name(version: u64) -> String {
    format!("{VERSIONS_DIR}/{version:020}.json")
}

/// The version a record file name (without the folder) holds; `None` for
/// any other name (temp files, strangers).
///
/// ```
/// use mosaicrs::format::parse_version_record_name;
/// assert_eq!(parse_version_record_name("00000000000000000012.json"), Some(12));
/// assert_eq!(parse_version_record_name(".tmp-00000000000000000012.json-ab"), None);
/// ```
pub fn parse_version_record_name(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_suffix(".json")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Which version of a dataset to read.
///
/// Parses from `latest`, a version number, or a timestamp (RFC 3339 /
/// ISO 8601: `2026-12-07T18:00:00Z`, `2026-12-07 18:00:00.250+01:00`,
/// `2026-12-07`, taken as UTC when it names no offset).
///
/// ```
/// use mosaicrs::format::VersionSpec;
/// assert_eq!("latest".parse::<VersionSpec>().unwrap(), VersionSpec::Latest);
/// assert_eq!("12".parse::<VersionSpec>().unwrap(), VersionSpec::Version(12));
/// assert_eq!(
///     "1970-01-01T00:00:01.5Z".parse::<VersionSpec>().unwrap(),
///     VersionSpec::AsOfTimestampMs(1500)
/// );
/// assert!("yesterday".parse::<VersionSpec>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionSpec {
    /// The head: the newest committed version.
    #[default]
    Latest,
    /// Version `N` (0 is the first commit).
    Version(u64),
    /// The newest version committed at or before this time (milliseconds
    /// since the Unix epoch).
    AsOfTimestampMs(u64),
}

impl std::fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSpec::Latest => f.write_str("latest"),
            VersionSpec::Version(v) => write!(f, "version {v}"),
            VersionSpec::AsOfTimestampMs(ms) => write!(f, "as of {}", format_timestamp_ms(*ms)),
        }
    }
}

impl std::str::FromStr for VersionSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let text = s.trim();
        if text.eq_ignore_ascii_case("latest") {
            return Ok(VersionSpec::Latest);
        }
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text.parse().map(VersionSpec::Version).map_err(|_| {
                Error::InvalidArgument(format!("version {text:?} does not fit in 64 bits"))
            });
        }
        parse_timestamp_ms(text).map(VersionSpec::AsOfTimestampMs)
    }
}

/// Parses an RFC 3339 / ISO 8601 timestamp into milliseconds since the
/// Unix epoch: `YYYY-MM-DD`, optionally followed by `T` or a space,
/// `HH:MM[:SS[.fraction]]` and `Z` or `±HH:MM` (UTC when absent).
///
/// ```
/// use mosaicrs::format::parse_timestamp_ms;
/// assert_eq!(parse_timestamp_ms("1970-01-02").unwrap(), 86_400_000);
/// assert_eq!(parse_timestamp_ms("1970-01-01T01:00:00+01:00").unwrap(), 0);
/// ```
pub fn parse_timestamp_ms(text: &str) -> Result<u64> {
    let bad = || {
        Error::InvalidArgument(format!(
            "{text:?} is neither \"latest\", a version number nor a timestamp such as \
             2026-12-07T18:00:00Z"
        ))
    };
    let number = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, rest) = match text.find(['T', 't', ' ']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    let mut parts = date.splitn(3, '-');
    let (year, month, day) = match (parts.next(), parts.next(), parts.next()) {
        (Some(y), Some(m), Some(d)) if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            (number(y), number(m), number(d))
        }
        _ => return Err(bad()),
    };
    let (Some(year), Some(month), Some(day)) = (year, month, day) else {
        return Err(bad());
    };
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return Err(bad());
    }
    // The time of day and the offset.
    let (clock, offset_minutes) = if rest.is_empty() {
        ("00:00", 0)
    } else if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (clock, offset) = rest.split_at(i);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (h, m) = offset[1..].split_once(':').ok_or_else(bad)?;
        let (h, m) = (number(h).ok_or_else(bad)?, number(m).ok_or_else(bad)?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        (clock, sign * (h * 60 + m))
    } else {
        (rest, 0)
    };
    let mut fields = clock.splitn(3, ':');
    let hour = fields.next().and_then(number).ok_or_else(bad)?;
    let minute = fields.next().and_then(number).ok_or_else(bad)?;
    let (second, millis) = match fields.next() {
        None => (0, 0),
        Some(s) => {
            let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
            let second = number(whole).ok_or_else(bad)?;
            let millis = if fraction.is_empty() {
                0
            } else {
                if !fraction.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad());
                }
                let mut ms = fraction
                    .bytes()
                    .take(3)
                    .fold(0i64, |a, b| a * 10 + i64::from(b - b'0'));
                for _ in fraction.len()..3 {
                    ms *= 10;
                }
                ms
            };
            (second, millis)
        }
    };
    if hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let days = days_from_civil(year, month, day);
    let ms = ((days * 24 + hour) * 60 + minute - offset_minutes) * 60_000 + second * 1000 + millis;
    u64::try_from(ms).map_err(|_| {
        Error::InvalidArgument(format!("timestamp {text:?} is before 1970-01-01T00:00:00Z"))
    })
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC
/// (`2026-12-07T18:00:00.000Z`).
///
/// ```
/// use mosaicrs::format::format_timestamp_ms;
/// assert_eq!(format_timestamp_ms(86_400_250), "1970-01-02T00:00:00.250Z");
/// ```
pub fn format_timestamp_ms(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let rest = ms % 86_400_000;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_the_calendar() {
        for ms in [0, 951_782_400_000, 1_796_659_200_123, 4_102_444_800_000] {
            assert_eq!(parse_timestamp_ms(&format_timestamp_ms(ms)).unwrap(), ms);
        }
        assert_eq!(
            parse_timestamp_ms("2000-02-29 00:00").unwrap(),
            951_782_400_000
        );
        assert!(parse_timestamp_ms("2001-02-29").is_err());
        assert!(parse_timestamp_ms("2001-13-01").is_err());
        assert!(parse_timestamp_ms("1969-12-31").is_err());
    }
}
