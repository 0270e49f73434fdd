//! `vacuum`: removing versions beyond retention, the shards no kept version
//! lists, and what failed or killed writes left behind.

use std::collections::HashSet;
use std::time::Duration;

use crate::format::{
    is_temp_name, version_record_name, SHARD_EXTENSION, TEMP_PREFIX, VERSIONS_DIR,
};
use crate::storage::{committed_at_ms, Location};
use crate::writer::commit::{newest_version, now_ms, publish_newest, DirLock};
use crate::{Error, Result};

/// What [`vacuum`] found (and, unless a dry run, deleted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VacuumReport {
    /// Files no kept version lists, old enough to go: (name, bytes).
    pub removable: Vec<(String, u64)>,
    /// Unlisted files younger than the grace period (maybe a live write's).
    pub too_young: Vec<(String, u64)>,
    /// Versions beyond retention whose records go (oldest first).
    pub versions_removed: Vec<u64>,
    /// The oldest version kept afterwards (`None`: no dataset).
    pub oldest_kept: Option<u64>,
    /// True when the removable files and records were deleted.
    pub deleted: bool,
}

/// Which versions [`vacuum_versions`] keeps. A version goes only when every
/// rule given lets it go; with no rule every version stays. The newest
/// version is always kept.
///
/// ```
/// use std::time::Duration;
/// use mosaicrs::history::Retention;
/// let keep_ten = Retention { versions: Some(10), ..Retention::default() };
/// assert_eq!(keep_ten.grace, Duration::from_secs(3600));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Retention {
    /// Keep the newest `versions` versions (at least 1).
    pub versions: Option<u64>,
    /// Keep the versions committed in the last `hours` hours, and the one
    /// that was newest when that window opened (so a read as of any time in
    /// the window finds its version).
    pub hours: Option<f64>,
    /// Unlisted files younger than this may be a live write's and stay.
    pub grace: Duration,
}

impl Default for Retention {
    /// Every version kept; one hour of grace.
    fn default() -> Self {
        Retention {
            versions: None,
            hours: None,
            grace: Duration::from_secs(3600),
        }
    }
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

/// Finds the files at `location` that no committed version lists, were
/// written by a mosaicrs writer ([`is_writer_file`]) and are older than
/// `grace`; deletes them unless `dry_run`. Every version is kept
/// ([`vacuum_versions`] with [`Retention`] `grace` only).
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
    let retention = Retention {
        grace,
        ..Retention::default()
    };
    vacuum_versions(location, &retention, dry_run)
}

/// Removes the versions beyond `retention` (their records), then every
/// file that no kept version lists and a mosaicrs writer wrote
/// ([`is_writer_file`]), once older than `retention.grace`; with `dry_run`
/// only reports. The newest version is always kept, and a shard that a
/// kept version lists is never deleted. A head left behind its newest
/// record is rolled forward first (not in a dry run).
///
/// This is `mosaicrs::history::vacuum`.
///
/// ```
/// use mosaicrs::history::{vacuum, Retention};
/// use mosaicrs::storage::Location;
/// let dir = tempfile::tempdir().unwrap();
/// let keep_two = Retention { versions: Some(2), ..Retention::default() };
/// let report = vacuum(&Location::local(dir.path()), &keep_two, true).unwrap();
/// assert!(report.versions_removed.is_empty() && report.oldest_kept.is_none());
/// ```
pub fn vacuum_versions(
    location: &Location,
    retention: &Retention,
    dry_run: bool,
) -> Result<VacuumReport> {
    if let Some(hours) = retention.hours {
        if !(hours >= 0.0 && hours.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "retain-hours must be a number of hours >= 0, not {hours}"
            )));
        }
    }
    // Commits wait while a local vacuum decides and deletes.
    let _lock = DirLock::acquire_if_dir(location)?;
    // List first, read the versions second: a commit landing in between
    // lists its files before we decide, so they are kept.
    let files = list(location)?;
    let version_files = location.list_versions_folder()?;
    let (head_version, newest) = match newest_version(location) {
        Ok(found) => found,
        Err(Error::NotADataset { .. }) => (crate::storage::DatasetVersion::Absent, None),
        Err(e) => return Err(e),
    };
    let mut report = VacuumReport::default();
    let mut listed: HashSet<String> = HashSet::new();
    if let Some(newest) = &newest {
        if !dry_run {
            publish_newest(location, &head_version, newest)?;
        }
        let head = location.load_index_versioned()?.1;
        let records: Vec<u64> = location
            .list_version_records()?
            .into_iter()
            .filter(|&v| v < newest.version)
            .collect();
        // Newest first: a version is kept while any rule still wants it.
        let now = now_ms();
        let cutoff = retention
            .hours
            .map(|h| now.saturating_sub((h * 3_600_000.0) as u64));
        let mut kept = vec![newest.clone()];
        let mut window_open = cutoff.is_some_and(|c| committed_at_ms(newest) >= c);
        for &version in records.iter().rev() {
            let Some(index) = location.read_version_record(version)? else {
                continue;
            };
            let by_count = retention
                .versions
                .is_some_and(|k| (kept.len() as u64) < k.max(1));
            // Within the window, and the one version newest at its start.
            let by_time = match cutoff {
                Some(c) if committed_at_ms(&index) >= c => true,
                Some(_) => std::mem::replace(&mut window_open, false),
                None => false,
            };
            let no_rule = retention.versions.is_none() && retention.hours.is_none();
            if no_rule || by_count || by_time {
                kept.push(index);
            } else {
                // Versions stay a contiguous run up to the newest.
                report.versions_removed =
                    records.iter().copied().filter(|&v| v <= version).collect();
                break;
            }
        }
        for index in kept.iter().chain(head.iter()) {
            listed.extend(index.shards.iter().map(|s| s.path.clone()));
        }
        report.oldest_kept = kept.last().map(|i| i.version);
    }
    for (name, bytes, age) in files {
        if listed.contains(&name) || !is_writer_file(&name) {
            continue;
        }
        if age >= retention.grace {
            report.removable.push((name, bytes));
        } else {
            report.too_young.push((name, bytes));
        }
    }
    // Temp files of record writes that died.
    for (name, bytes, age) in version_files {
        if is_temp_name(&name) && age >= retention.grace {
            report
                .removable
                .push((format!("{VERSIONS_DIR}/{name}"), bytes));
        }
    }
    report.removable.sort();
    report.too_young.sort();
    if !dry_run {
        // Records first, oldest first: a crash in between leaves a shorter
        // history and unlisted shards (the next vacuum removes them), never
        // a kept version whose shards are gone.
        for &version in &report.versions_removed {
            location.delete_file(&version_record_name(version))?;
        }
        for (name, _) in &report.removable {
            location.delete_file(name)?;
        }
        report.deleted = true;
    }
    Ok(report)
}

/// The files of the dataset folder; a missing local folder is no dataset.
fn list(location: &Location) -> Result<Vec<(String, u64, Duration)>> {
    location
        .list_files_in("")?
        .ok_or_else(|| Error::NotADataset {
            path: location.display_path(),
        })
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
