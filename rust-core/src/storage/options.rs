//! Explicit object-store options, with their values kept out of every log.

use std::collections::BTreeMap;
use std::fmt;

use crate::{Error, Result};

/// Options for the object store, as `object_store` names them
/// (`aws_endpoint`, `aws_region`, `aws_access_key_id`, `allow_http`,
/// `google_service_account`, `azure_storage_account_name`...). Keys are
/// case-insensitive. They override the environment.
///
/// `Debug` and `Display` print the keys only: values may be secrets.
///
/// ```
/// use mosaicrs::storage::StorageOptions;
/// let mut o = StorageOptions::default();
/// o.insert("AWS_SECRET_ACCESS_KEY", "hunter2");
/// o.parse_assignment("aws_endpoint=http://127.0.0.1:9000").unwrap();
/// assert!(!format!("{o:?}").contains("hunter2"));
/// assert_eq!(o.get("aws_endpoint"), Some("http://127.0.0.1:9000"));
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    values: BTreeMap<String, String>,
}

impl StorageOptions {
    /// Adds or replaces an option; the key is lower-cased.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl Into<String>) {
        self.values
            .insert(key.as_ref().to_ascii_lowercase(), value.into());
    }

    /// Parses `KEY=VALUE` (the CLI's `--storage`); the error never repeats the value.
    pub fn parse_assignment(&mut self, assignment: &str) -> Result<()> {
        match assignment.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                self.insert(key.trim(), value);
                Ok(())
            }
            _ => Err(Error::InvalidArgument(
                "storage option must be KEY=VALUE (for example aws_region=eu-west-1)".into(),
            )),
        }
    }

    /// The value of `key` (case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// True when no option is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The options as (key, value) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for StorageOptions {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut o = StorageOptions::default();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

impl fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.values.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

impl fmt::Display for StorageOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<&str> = self.values.keys().map(String::as_str).collect();
        write!(f, "storage options [{}]", keys.join(", "))
    }
}
