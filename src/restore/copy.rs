//! The parallel restore of a plain backup: PGDATA and each tablespace
//! copied by the pipeline, every file checked against the backup's
//! `backup_manifest` (size and CRC32C) as it is written, fsynced, with the
//! mode and mtime of the backup's copy (as Barman's `rsync -pt`).
//!
//! Crash and failure protocol: `global/pg_control` is written last, only
//! after every other file is written, verified and fsynced, and after
//! their directories are fsynced. A destination without it is not a
//! cluster PostgreSQL will start, so a restore that fails or is killed
//! midway can never be mistaken for a restored one. A delta restore
//! removes the destination's `pg_control` first for the same reason.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::backup::manifest::Manifest;
use crate::durable::sync_dir;
use crate::fileio::{crc_of, fill, same_content};
use crate::pipeline::{self, Width};

const CHUNK: usize = 1 << 20;
pub(super) const PG_CONTROL: &str = "global/pg_control";

/// PGDATA paths Barman never restores (`rsync --exclude`): the content of
/// these directories, and these top-level files.
const EXCLUDED_DIRS: &[&str] = &["pg_log", "log", "pg_xlog", "pg_wal"];
const EXCLUDED_FILES: &[&str] = &["postmaster.pid", "recovery.conf", "tablespace_map"];

/// One directory tree to restore.
#[derive(Debug, Clone)]
pub struct Tree {
    pub src: PathBuf,
    pub dest: PathBuf,
    /// Prefix of this tree's files in the manifest (`""` for PGDATA,
    /// `pg_tblspc/<oid>/` for a tablespace).
    pub manifest_prefix: String,
    pub is_pgdata: bool,
    /// Relative paths neither copied nor deleted (tablespace links and
    /// tablespaces located inside PGDATA).
    pub protected: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub jobs: usize,
    /// Rewrite only what differs, delete what the backup does not have.
    pub delta: bool,
}

/// What the copy did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: u64,
    pub bytes: u64,
    /// Files a delta restore found already identical.
    pub unchanged: u64,
    pub verified: u64,
}

/// Expected size and CRC32C per manifest path.
pub(super) type Expected = HashMap<String, (u64, Option<u32>)>;

pub(super) fn expected_of(manifest: Option<&Manifest>) -> Expected {
    manifest
        .map(|m| {
            m.files
                .iter()
                .map(|f| (f.path.clone(), (f.size, f.crc32c)))
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug)]
struct Task {
    src: PathBuf,
    dest: PathBuf,
    key: String,
}

#[derive(Debug, Default)]
struct Done {
    bytes: u64,
    unchanged: bool,
    verified: bool,
}

/// Restores `trees`, checking each file against `manifest` when there is
/// one. Errors name the file.
pub fn restore(
    trees: &[Tree],
    manifest: Option<&Manifest>,
    opts: Options,
) -> Result<Report, String> {
    let expected = expected_of(manifest);
    let pgdata = trees.iter().find(|t| t.is_pgdata);
    if opts.delta {
        if let Some(t) = pgdata {
            remove_if_exists(&t.dest.join(PG_CONTROL))?;
        }
    }
    let dirs = Mutex::new(Vec::new());
    let mut report = Report::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut kept: HashSet<PathBuf> = HashSet::new();
    let mut failure: Option<String> = None;
    let mut control: Option<Task> = None;
    {
        let walk = trees.iter().flat_map(|t| walk(t, &dirs));
        let width = Width::new((opts.jobs * 2).max(2));
        pipeline::run(
            width,
            walk,
            || vec![0u8; CHUNK],
            |buf, item: &Result<Task, String>| match item {
                Ok(t) if t.key == PG_CONTROL => Ok(None),
                Ok(t) => copy_file(buf, t, expected.get(&t.key), opts.delta).map(Some),
                Err(e) => Err(e.clone()),
            },
            |batch| {
                for (item, result) in batch {
                    let task = item.expect("errors come back as results");
                    match result {
                        Ok(None) => control = Some(task),
                        Ok(Some(done)) => {
                            report.files += 1;
                            report.bytes += done.bytes;
                            report.unchanged += done.unchanged as u64;
                            report.verified += done.verified as u64;
                            seen.insert(task.key);
                            if opts.delta {
                                kept.insert(task.dest);
                            }
                        }
                        Err(e) => {
                            failure = Some(e);
                            return ControlFlow::Break(());
                        }
                    }
                }
                ControlFlow::Continue(())
            },
        );
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let dirs = dirs.into_inner().unwrap_or_default();
    if opts.delta {
        for t in trees {
            delete_extraneous(t, &kept, &dirs)?;
        }
    }
    if let Some(m) = manifest {
        missing_from(m, &seen, control.is_some())?;
    }
    for d in &dirs {
        sync_dir(d).map_err(|e| format!("cannot sync directory '{}': {e}", d.display()))?;
    }
    if let Some(t) = control {
        let mut buf = vec![0u8; CHUNK];
        // Never "unchanged": it was removed above in delta mode.
        let done = copy_file(&mut buf, &t, expected.get(&t.key), false)?;
        report.files += 1;
        report.bytes += done.bytes;
        report.verified += done.verified as u64;
        sync_dir(crate::durable::parent(&t.dest))
            .map_err(|e| format!("cannot sync directory '{}': {e}", t.dest.display()))?;
    }
    Ok(report)
}

fn remove_if_exists(p: &Path) -> Result<(), String> {
    match fs::remove_file(p) {
        Ok(()) => sync_dir(crate::durable::parent(p))
            .map_err(|e| format!("cannot sync directory of '{}': {e}", p.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove '{}': {e}", p.display())),
    }
}

/// Everything the manifest promises must have been restored.
pub(super) fn missing_from(
    m: &Manifest,
    seen: &HashSet<String>,
    has_control: bool,
) -> Result<(), String> {
    let mut missing: Vec<&str> = m
        .files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| *p != PG_CONTROL && !seen.contains(*p))
        .filter(|p| !excluded_key(p))
        .collect();
    if !has_control && m.files.iter().any(|f| f.path == PG_CONTROL) {
        missing.insert(0, PG_CONTROL);
    }
    match missing.first() {
        None => Ok(()),
        Some(first) => Err(format!(
            "file '{first}' is listed in the backup manifest but missing from the backup{}",
            if missing.len() > 1 {
                format!(" ({} files missing)", missing.len())
            } else {
                String::new()
            }
        )),
    }
}

/// Manifest paths Barman does not restore.
fn excluded_key(p: &str) -> bool {
    let first = p.split('/').next().unwrap_or("");
    (p.contains('/') && EXCLUDED_DIRS.contains(&first)) || EXCLUDED_FILES.contains(&p)
}

/// Whether a path relative to a tree is skipped: excluded (PGDATA only) or
/// protected.
fn skipped(tree: &Tree, rel: &str, is_dir: bool) -> bool {
    if tree
        .protected
        .iter()
        .any(|p| rel == p || rel.starts_with(&format!("{p}/")))
    {
        return true;
    }
    if !tree.is_pgdata {
        return false;
    }
    match rel.split_once('/') {
        Some((first, _)) => EXCLUDED_DIRS.contains(&first),
        None => !is_dir && EXCLUDED_FILES.contains(&rel),
    }
}

/// The files of one tree, lazily; directories are created (with the
/// backup's mode) as the walk meets them.
fn walk<'a>(
    tree: &'a Tree,
    dirs: &'a Mutex<Vec<PathBuf>>,
) -> impl Iterator<Item = Result<Task, String>> + 'a {
    walkdir::WalkDir::new(&tree.src)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(move |e| {
            let rel = rel_of(&tree.src, e.path());
            rel.is_empty() || !skipped(tree, &rel, e.file_type().is_dir())
        })
        .filter_map(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => return Some(Err(format!("cannot read the backup: {e}"))),
            };
            let rel = rel_of(&tree.src, entry.path());
            let dest = if rel.is_empty() {
                tree.dest.clone()
            } else {
                tree.dest.join(&rel)
            };
            if entry.file_type().is_dir() {
                let mode = entry.metadata().map(|m| m.mode() & 0o7777).unwrap_or(0o700);
                return match make_dir(&dest, mode) {
                    Ok(()) => {
                        dirs.lock().expect("no panics hold it").push(dest);
                        None
                    }
                    Err(e) => Some(Err(e)),
                };
            }
            if !entry.file_type().is_file() {
                return None;
            }
            Some(Ok(Task {
                src: entry.path().to_path_buf(),
                dest,
                key: format!("{}{rel}", tree.manifest_prefix),
            }))
        })
}

fn rel_of(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub(super) fn make_dir(dest: &Path, mode: u32) -> Result<(), String> {
    match fs::create_dir(dest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dest.is_dir() => {}
        Err(e) => return Err(format!("cannot create directory '{}': {e}", dest.display())),
    }
    fs::set_permissions(dest, Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of '{}': {e}", dest.display()))
}

/// Copies one file, checking it against the manifest; in delta mode an
/// identical destination file is kept as it is.
fn copy_file(
    buf: &mut Vec<u8>,
    t: &Task,
    expected: Option<&(u64, Option<u32>)>,
    delta: bool,
) -> Result<Done, String> {
    let ctx = |what: &str, e: io::Error| format!("{what} '{}': {e}", t.src.display());
    let meta = fs::metadata(&t.src).map_err(|e| ctx("cannot read", e))?;
    let mode = meta.mode() & 0o7777;
    let mtime = SystemTime::UNIX_EPOCH
        + Duration::new(meta.mtime().max(0) as u64, meta.mtime_nsec() as u32);
    if buf.len() < CHUNK {
        buf.resize(CHUNK, 0);
    }
    if delta && unchanged(buf, t, &meta, expected).unwrap_or(false) {
        return Ok(Done {
            bytes: 0,
            unchanged: true,
            verified: expected.is_some_and(|e| e.1.is_some()),
        });
    }
    let mut src = File::open(&t.src).map_err(|e| ctx("cannot open", e))?;
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&t.dest)
        .map_err(|e| format!("cannot create '{}': {e}", t.dest.display()))?;
    let werr = |e: io::Error| format!("cannot write '{}': {e}", t.dest.display());
    let mut crc = 0u32;
    let mut size = 0u64;
    loop {
        let n = fill(&mut src, buf).map_err(|e| ctx("cannot read", e))?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        size += n as u64;
        out.write_all(&buf[..n]).map_err(werr)?;
    }
    check(&t.src, expected, size, crc)?;
    out.set_permissions(Permissions::from_mode(mode))
        .map_err(werr)?;
    out.set_times(FileTimes::new().set_modified(mtime))
        .map_err(werr)?;
    out.sync_all().map_err(werr)?;
    Ok(Done {
        bytes: size,
        unchanged: false,
        verified: expected.is_some_and(|e| e.1.is_some()),
    })
}

pub(super) fn check(
    src: &Path,
    expected: Option<&(u64, Option<u32>)>,
    size: u64,
    crc: u32,
) -> Result<(), String> {
    let Some(&(want_size, want_crc)) = expected else {
        return Ok(());
    };
    if size != want_size {
        return Err(format!(
            "file '{}' does not match the backup manifest: {size} bytes, {want_size} expected",
            src.display()
        ));
    }
    if let Some(want) = want_crc.filter(|w| *w != crc) {
        return Err(format!(
            "file '{}' does not match the backup manifest: CRC32C {crc:08x}, {want:08x} expected",
            src.display()
        ));
    }
    Ok(())
}

/// Delta restore: is the destination file already the backup's? Judged
/// by checksum (the manifest's CRC32C, or the bytes themselves).
fn unchanged(
    buf: &mut [u8],
    t: &Task,
    meta: &fs::Metadata,
    expected: Option<&(u64, Option<u32>)>,
) -> io::Result<bool> {
    let dest = match fs::symlink_metadata(&t.dest) {
        Ok(m) if m.is_file() => m,
        _ => return Ok(false),
    };
    if dest.len() != meta.len() {
        return Ok(false);
    }
    let same = match expected {
        Some(&(size, Some(crc))) => size == dest.len() && crc_of(&t.dest, buf)? == crc,
        _ => same_content(&t.src, &t.dest, buf)?,
    };
    if same {
        // As rsync -pt would leave it.
        let f = File::options().write(true).open(&t.dest)?;
        f.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))?;
        f.set_times(FileTimes::new().set_modified(
            SystemTime::UNIX_EPOCH
                + Duration::new(meta.mtime().max(0) as u64, meta.mtime_nsec() as u32),
        ))?;
    }
    Ok(same)
}

/// Delta restore: removes from a tree's destination what the backup does
/// not have (Barman's `rsync --delete --delete-excluded`), sparing the
/// protected paths and the excluded directories themselves.
fn delete_extraneous(tree: &Tree, kept: &HashSet<PathBuf>, dirs: &[PathBuf]) -> Result<(), String> {
    let made: HashSet<&PathBuf> = dirs.iter().collect();
    let mut it = walkdir::WalkDir::new(&tree.dest).min_depth(1).into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| format!("cannot read the destination: {e}"))?;
        let rel = rel_of(&tree.dest, entry.path());
        if tree
            .protected
            .iter()
            .any(|p| rel == *p || rel.starts_with(&format!("{p}/")))
        {
            if entry.file_type().is_dir() {
                it.skip_current_dir();
            }
            continue;
        }
        let path = entry.path().to_path_buf();
        if entry.file_type().is_dir() {
            if !made.contains(&path) {
                fs::remove_dir_all(&path)
                    .map_err(|e| format!("cannot remove '{}': {e}", path.display()))?;
                it.skip_current_dir();
            }
        } else if !kept.contains(&path) && rel != PG_CONTROL {
            fs::remove_file(&path)
                .map_err(|e| format!("cannot remove '{}': {e}", path.display()))?;
        }
    }
    Ok(())
}
