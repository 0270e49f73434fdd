//! Which committed state of a dataset a read saw: what a commit's
//! compare-and-swap holds the index to.

use crate::format::Checksum;

/// Which committed state of a dataset a writer started from.
///
/// A writer reads it (with [`dataset_version`](crate::writer::dataset_version))
/// before it writes any shard and hands it to
/// [`commit_from`](crate::writer::commit_from), which publishes only if the
/// dataset is still in that state, or, for an append, re-applies the append
/// to the newer index. On local disks the version is the xxh3 of the index
/// bytes; on object stores it is the index object's e-tag and version.
///
/// It serialises (serde, e.g. JSON) so a Spark driver can carry it from the
/// start of a job to its commit.
///
/// ```
/// use mosaicrs::storage::DatasetVersion;
/// let v = DatasetVersion::Index { e_tag: Some("\"abc\"".into()), version: None };
/// let json = serde_json::to_string(&v).unwrap();
/// assert_eq!(serde_json::from_str::<DatasetVersion>(&json).unwrap(), v);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetVersion {
    /// No committed dataset at the location.
    Absent,
    /// The index as it was read.
    Index {
        /// Content hash (local) or entity tag (object store) of the index.
        e_tag: Option<String>,
        /// Object version, on stores with versioning.
        version: Option<String>,
    },
}

impl DatasetVersion {
    /// The version of a local index: the checksum of its bytes (a local file
    /// has no e-tag, and its modification time can repeat within a tick).
    pub(crate) fn of_local_index(bytes: &[u8]) -> Self {
        DatasetVersion::Index {
            e_tag: Some(Checksum::of(bytes).to_string()),
            version: None,
        }
    }
}
