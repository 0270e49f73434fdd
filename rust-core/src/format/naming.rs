//! Shard file names.
//!
//! A name carries the write id, the Spark partition, the task attempt and a
//! sequence number, so two attempts of one partition (retries, speculation)
//! never touch the same file, and the files of a write can be found for
//! clean-up by their prefix alone.

use super::SHARD_EXTENSION;

/// Prefix of files that are still being written; never listed in an index.
pub const TEMP_PREFIX: &str = ".tmp-";

/// The parts of a shard's file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardName {
    /// Unique id of one write job (Spark query id, or a random id for the CLI).
    pub write_id: String,
    /// Spark partition id (0 outside Spark).
    pub partition: u32,
    /// Spark task attempt id (unique per attempt within the application).
    pub attempt: u64,
    /// Sequence number of the shard within the attempt.
    pub seq: u32,
}

impl ShardName {
    /// The file name, `part-<write_id>-<partition>-<attempt>-<seq>.arrow`.
    ///
    /// ```
    /// use mosaicrs::format::ShardName;
    /// let n = ShardName { write_id: "w1".into(), partition: 3, attempt: 7, seq: 0 };
    /// assert_eq!(n.file_name(), "part-w1-00003-7-0000.arrow");
    /// ```
    pub fn file_name(&self) -> String {
        format!(
            "{}{:05}-{}-{:04}.{SHARD_EXTENSION}",
            Self::write_prefix(&self.write_id),
            self.partition,
            self.attempt,
            self.seq
        )
    }

    /// The name prefix shared by every shard of one write.
    pub fn write_prefix(write_id: &str) -> String {
        format!("part-{write_id}-")
    }

    /// The temporary name under which the shard is written before it is sealed.
    pub fn temp_file_name(&self) -> String {
        format!("{TEMP_PREFIX}{}", self.file_name())
    }
}

/// True for names of files still being written.
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX)
}

/// A random token (a version 4 UUID as 32 lowercase hex digits): unique
/// across calls and processes. Safe in file names and write ids.
///
/// ```
/// use mosaicrs::format::unique_token;
/// let (a, b) = (unique_token(), unique_token());
/// assert_ne!(a, b);
/// assert!(a.len() == 32 && a.chars().all(|c| c.is_ascii_hexdigit()));
/// ```
pub fn unique_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
