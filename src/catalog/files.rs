//! The files that make up a backup, as Barman's `get_directory_entries`
//! lists them for `list-files`: the backup directory walked the way
//! Python's `os.walk` walks it, and the archived WAL the backup needs or
//! that follows it.

use std::path::{Path, PathBuf};

use super::backup_ext::{required_segments, wal_path, wal_until_next};
use super::backups::Backup;
use super::xlogdb::Entry;

/// What `list-files --target` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every file of the base backup directory.
    Data,
    /// Data plus the WAL segments begin..=end.
    Standalone,
    /// The WAL until the next backup, plus every history file.
    Wal,
    /// Data plus wal.
    Full,
}

/// Every file under `top` in `os.walk` order: a directory's files sorted by
/// name, then its subdirectories in the order the filesystem lists them
/// (Barman sorts only the files), depth first. Symbolic links to
/// directories (pg_tblspc/<oid>) are not followed nor listed; broken links
/// count as files. With `empty_dirs`, a directory holding nothing is listed
/// itself. An unreadable directory is skipped, as `os.walk` skips it.
pub fn walk(top: &Path, empty_dirs: bool, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(top) else {
        return;
    };
    let mut dirs: Vec<(PathBuf, bool)> = Vec::new();
    let mut files: Vec<std::ffi::OsString> = Vec::new();
    for entry in rd.flatten() {
        let path = entry.path();
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        // `DirEntry.is_dir()` in Python follows links.
        if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            dirs.push((path, !is_link));
        } else {
            files.push(entry.file_name());
        }
    }
    files.sort();
    if empty_dirs && dirs.is_empty() && files.is_empty() {
        out.push(top.to_path_buf());
    }
    out.extend(files.iter().map(|f| top.join(f)));
    for (dir, walk_into) in dirs {
        if walk_into {
            walk(&dir, empty_dirs, out);
        }
    }
}

/// The paths `list-files` prints for `backup`, in Barman's order.
/// `next_end` is the end_wal of the next backup, `entries` the xlog.db.
pub fn list(
    backup: &Backup,
    base_dir: &Path,
    wals: &Path,
    next_end: Option<&str>,
    entries: &[Entry],
    target: Target,
    empty_dirs: bool,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if target != Target::Wal {
        walk(base_dir, empty_dirs, &mut out);
    }
    if target == Target::Standalone {
        if let (Some(begin), Some(end)) = (backup.info.get("begin_wal"), backup.info.get("end_wal"))
        {
            let seg = backup.info.get_int("xlog_segment_size").unwrap_or(16 << 20) as u64;
            let version = backup.info.get_int("version");
            for name in required_segments(begin, end, seg, version) {
                out.push(wal_path(wals, &name));
            }
        }
    }
    if matches!(target, Target::Wal | Target::Full) {
        for e in wal_until_next(backup, next_end, entries, true) {
            out.push(wal_path(wals, &e.name));
        }
    }
    out
}
