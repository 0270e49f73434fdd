//! `vacuum`: removing what failed or killed writes left behind.

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use crate::format::{SHARD_EXTENSION, TEMP_PREFIX};
use crate::storage::Location;
use crate::{Error, Result};

/// What [`vacuum`] found (and, unless a dry run, deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumReport {
    /// Unlisted files old enough to go: (name, bytes).
    pub removable: Vec<(String, u64)>,
    /// Unlisted files younger than the grace period (maybe a live write's).
    pub too_young: Vec<(String, u64)>,
    /// True when the removable files were deleted.
    pub deleted: bool,
}

/// True for names that only mosaicrs writers produce: shards
/// `part-<write id>-<5 digits>-<attempt>-<4 digits>.arrow`, their temp
/// names, and temp index files. Other files (a Spark export's `part-*`) are
/// never touched.
pub fn is_writer_file(name: &str) -> bool {
    if let Some(rest) = name.strip_prefix(TEMP_PREFIX) {
        return rest.starts_with("index.json-") || is_shard_name(rest);
    }
    is_shard_name(name)
}

fn is_shard_name(name: &str) -> bool {
    let Some(stem) = name
        .strip_prefix("part-")
        .and_then(|n| n.strip_suffix(&format!(".{SHARD_EXTENSION}")))
    else {
        return false;
    };
    let parts: Vec<&str> = stem.rsplitn(4, '-').collect();
    let [seq, attempt, partition, write_id] = parts.as_slice() else {
        return false;
    };
    let digits = |s: &str, n: Option<usize>| {
        !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) && n.is_none_or(|n| s.len() == n)
    };
    digits(seq, Some(4))
        && digits(attempt, None)
        && digits(partition, Some(5))
        && !write_id.is_empty()
        && write_id.len() <= 64
        && write_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Finds the files at `location` that no committed index lists, were
/// written by a mosaicrs writer ([`is_writer_file`]) and are older than
/// `grace`; deletes them unless `dry_run`.
///
/// ```
/// use std::time::Duration;
/// use mosaicrs::storage::Location;
/// use mosaicrs::writer::vacuum;
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("part-w1-00000-0-0000.arrow"), b"left by a killed write").unwrap();
/// std::fs::write(dir.path().join("part-00000-spark.arrow"), b"not ours").unwrap();
/// let report = vacuum(&Location::local(dir.path()), Duration::ZERO, false).unwrap();
/// assert_eq!(report.removable.len(), 1);
/// assert!(dir.path().join("part-00000-spark.arrow").exists());
/// ```
pub fn vacuum(location: &Location, grace: Duration, dry_run: bool) -> Result<VacuumReport> {
    // List first, read the index second: a commit landing in between lists
    // its files before we decide, so they are kept.
    let files = list(location)?;
    let listed: HashSet<String> = match location.load_index() {
        Ok(index) => index.shards.into_iter().map(|s| s.path).collect(),
        Err(Error::NotADataset { .. }) => HashSet::new(),
        Err(e) => return Err(e),
    };
    let mut report = VacuumReport::default();
    for (name, bytes, age) in files {
        if listed.contains(&name) || !is_writer_file(&name) {
            continue;
        }
        if age >= grace {
            report.removable.push((name, bytes));
        } else {
            report.too_young.push((name, bytes));
        }
    }
    report.removable.sort();
    report.too_young.sort();
    if !dry_run {
        for (name, _) in &report.removable {
            match location {
                Location::Local(dir) => {
                    let path = dir.join(name);
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(&path, e)),
                    }
                }
                Location::Remote(store) => store.delete(name)?,
            }
        }
        report.deleted = true;
    }
    Ok(report)
}

fn list(location: &Location) -> Result<Vec<(String, u64, Duration)>> {
    match location {
        Location::Remote(store) => store.list(),
        Location::Local(dir) => {
            let now = SystemTime::now();
            let mut out = Vec::new();
            let entries = match fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::NotADataset { path: dir.clone() })
                }
                Err(e) => return Err(Error::io(dir, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| Error::io(dir, e))?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let meta =
                    fs::symlink_metadata(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
                if !meta.is_file() {
                    continue;
                }
                let age = meta
                    .modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .unwrap_or_default();
                out.push((name, meta.len(), age));
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_writer_names_are_candidates() {
        assert!(is_writer_file("part-w1-00003-7-0000.arrow"));
        assert!(is_writer_file(".tmp-part-abc_1-00000-0-0012.arrow"));
        assert!(is_writer_file(".tmp-index.json-0123"));
        assert!(!is_writer_file("part-00000-1b2c3d4e-aaaa-c000.arrow"));
        assert!(!is_writer_file("part-00000-spark.arrow"));
        assert!(!is_writer_file("index.json"));
    }
}
