//! Combining a PostgreSQL 17+ incremental backup chain into a data
//! directory, natively, with pg_combinebackup's rules.
//!
//! Why not run pg_combinebackup: it must be the server's own major version,
//! installed where Barman runs, and it writes a whole combined copy that
//! Barman then copies again into the destination. Here the combined files
//! are written straight into the destination, by the restore's parallel
//! pipeline, and every byte read is checked on the way: each source file
//! (whole or `INCREMENTAL.`) against its own backup's `backup_manifest`
//! (size and CRC32C), and, when the cluster has data checksums, each block
//! written against its page checksum.
//!
//! The rules, as pg_combinebackup applies them: the output holds what the
//! newest backup holds. A file it has whole is copied. An `INCREMENTAL.`
//! file (only under `base/`, `global`, `pg_tblspc/`) is rebuilt: its length
//! is its truncation block length, or further to its highest block; each
//! block comes from the newest backup that carries it, looking back through
//! older `INCREMENTAL.` files (only for blocks below the newest truncation
//! length) down to the first backup that has the file whole; blocks nobody
//! has are zeros. The newest `backup_label` is written without its
//! `INCREMENTAL FROM` lines; the backups' `backup_manifest`s are not
//! copied, a new one describing the output is written if asked (as
//! pg_combinebackup does unless `--no-manifest`). Files and directories get
//! pg_combinebackup's modes: 0600/0700, or 0640/0750 when the newest data
//! directory allows group access.
//!
//! Crash and failure protocol, the restore's ([`super::copy`]): a stale
//! `global/pg_control` in the destination is removed (and its directory
//! fsynced) first; every other file is written, verified and fsynced, every
//! directory fsynced; `global/pg_control` comes last, verified in memory
//! before a byte of it is written, through a staged file renamed into
//! place. A combination that fails or is killed midway leaves no
//! `pg_control`: not a cluster PostgreSQL would start. The tablespace links
//! (`pg_tblspc/<oid>`) are the caller's, as for the plain copy.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::copy::{expected_of, make_dir, Expected, PG_CONTROL};
use super::incremental_file::{self as incr, Header, HeaderError};
use crate::backup::manifest::{self, FileEntry, Manifest};
use crate::backup::page::{self, BLCKSZ, RELSEG_SIZE};
use crate::durable::{parent, sync_dir, Staged};
use crate::fileio::fill;
use crate::pipeline::{self, Width};

const CHUNK: usize = 1 << 20;
const LABEL: &str = "backup_label";
const MANIFEST: &str = "backup_manifest";
/// No backup supplies this block (yet).
const NONE: u16 = u16::MAX;

/// One backup of the chain, as Barman stores it.
#[derive(Debug, Clone)]
pub struct Backup {
    /// How messages name it (the backup ID).
    pub name: String,
    /// Its data directory (`<backup>/data`), holding `backup_label` and
    /// `backup_manifest`.
    pub pgdata: PathBuf,
    /// Its tablespaces: OID and directory (`<backup>/<oid>`).
    pub tablespaces: Vec<(u32, PathBuf)>,
}

/// Where the combined backup goes.
#[derive(Debug, Clone)]
pub struct Destination {
    pub pgdata: PathBuf,
    /// One directory per tablespace of the newest backup.
    pub tablespaces: Vec<(u32, PathBuf)>,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub jobs: usize,
    /// Check the page checksum of every relation block written (the
    /// cluster has data checksums: pg_control, backup.info's
    /// `data_checksums`).
    pub verify_pages: bool,
    /// Write a `backup_manifest` of the output (pg_combinebackup's default).
    pub manifest: bool,
}

/// What the combination did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub files: u64,
    pub bytes: u64,
    /// Files rebuilt from `INCREMENTAL.` files.
    pub reconstructed: u64,
    /// Blocks taken from a backup older than the newest.
    pub older_blocks: u64,
    /// Blocks no backup had, written as zeros.
    pub zero_blocks: u64,
    /// Source files checked against a manifest's CRC32C.
    pub verified: u64,
    /// Pages whose checksum was verified.
    pub pages: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CombineError {
    #[error("no backups to combine")]
    Empty,
    #[error("cannot {action} '{}': {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{0}")]
    Directory(String),
    #[error("backup {backup}: '{}': {reason}", path.display())]
    Manifest {
        backup: String,
        path: PathBuf,
        reason: String,
    },
    #[error("backup {backup}: '{}': {reason}", path.display())]
    Label {
        backup: String,
        path: PathBuf,
        reason: String,
    },
    #[error("backup {backup}: {reason}")]
    Chain { backup: String, reason: String },
    #[error("file '{file}' of backup {backup} does not match its backup_manifest: {detail}")]
    Mismatch {
        backup: String,
        file: String,
        detail: String,
    },
    #[error("file '{file}' of backup {backup} is not in its backup_manifest")]
    Unlisted { backup: String, file: String },
    #[error("file '{file}' is listed in the backup_manifest of backup {backup} but missing from the backup{more}")]
    Missing {
        backup: String,
        file: String,
        more: String,
    },
    #[error("file '{file}' of backup {backup}: {source}")]
    Header {
        backup: String,
        file: String,
        source: HeaderError,
    },
    #[error(
        "file '{file}' of backup {backup} is {have} bytes, its incremental header says {want}"
    )]
    IncrementalSize {
        backup: String,
        file: String,
        have: u64,
        want: u64,
    },
    #[error("file '{file}' is incremental in backup {newer}, but backup {backup} has neither it nor an INCREMENTAL file for it")]
    NotInChain {
        file: String,
        newer: String,
        backup: String,
    },
    #[error("full backup {backup} contains unexpected incremental file '{file}'")]
    IncrementalInFull { backup: String, file: String },
    #[error("block {block} of '{file}' (from backup {backup}) fails its page checksum")]
    Page {
        file: String,
        block: u64,
        backup: String,
    },
    #[error("backup {backup} has both '{file}' and an INCREMENTAL file for it")]
    Conflict { backup: String, file: String },
    #[error("tablespace {oid} of backup {backup} has no destination")]
    NoDestination { oid: u32, backup: String },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CombineError + 'a {
    move |source| CombineError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A chain member as the workers consult it.
struct Member {
    name: String,
    /// (manifest prefix, directory): tablespaces first, PGDATA (`""`) last,
    /// so the first prefix that matches is the right tree.
    trees: Vec<(String, PathBuf)>,
    expected: Expected,
}

impl Member {
    /// Where this backup keeps the file of manifest path `key`.
    fn locate(&self, key: &str) -> PathBuf {
        self.trees
            .iter()
            .find_map(|(prefix, dir)| key.strip_prefix(prefix.as_str()).map(|r| dir.join(r)))
            .unwrap_or_else(|| PathBuf::from(key))
    }

    /// Checks a whole source file read as `size` bytes with `crc`; Ok(false)
    /// for the WAL files no manifest lists.
    fn verify(&self, key: &str, size: u64, crc: u32) -> Result<bool, CombineError> {
        let mismatch = |detail: String| CombineError::Mismatch {
            backup: self.name.clone(),
            file: key.to_string(),
            detail,
        };
        match self.expected.get(key) {
            None if key.starts_with("pg_wal/") => Ok(false),
            None => Err(CombineError::Unlisted {
                backup: self.name.clone(),
                file: key.to_string(),
            }),
            Some(&(want, _)) if want != size => {
                Err(mismatch(format!("{size} bytes, {want} expected")))
            }
            Some(&(_, Some(want))) if want != crc => {
                Err(mismatch(format!("CRC32C {crc:08x}, {want:08x} expected")))
            }
            Some(&(_, c)) => Ok(c.is_some()),
        }
    }
}

struct Ctx {
    members: Vec<Member>,
    opts: Options,
    /// The newest backup's start: a page newer than it may be torn (WAL
    /// replay rewrites it), as when the backup read it.
    start_lsn: u64,
    file_mode: u32,
    dir_mode: u32,
}

impl Ctx {
    fn newest(&self) -> &Member {
        &self.members[self.members.len() - 1]
    }
}

/// One tree of the newest backup to walk.
struct OutTree {
    src: PathBuf,
    dest: PathBuf,
    prefix: String,
    is_pgdata: bool,
    /// Tablespaces given as their own trees (skipped under `pg_tblspc/`).
    declared: Vec<u32>,
}

#[derive(Debug)]
struct Task {
    /// The output file's manifest path (`base/5/16384`).
    key: String,
    /// The newest backup's file (`…/INCREMENTAL.16384` when rebuilt).
    src: PathBuf,
    dest: PathBuf,
    incremental: bool,
    /// The relation segment number, for page checks.
    segment: Option<u64>,
}

impl Task {
    fn src_key(&self) -> String {
        if self.incremental {
            incremental_key(&self.key)
        } else {
            self.key.clone()
        }
    }
}

#[derive(Debug, Default)]
struct Done {
    size: u64,
    crc: u32,
    mtime: i64,
    reconstructed: bool,
    older_blocks: u64,
    zero_blocks: u64,
    verified: u64,
    pages: u64,
}

/// `base/5/16384` → `base/5/INCREMENTAL.16384`.
fn incremental_key(key: &str) -> String {
    match key.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{}{name}", incr::PREFIX),
        None => format!("{}{key}", incr::PREFIX),
    }
}

/// Directories where pg_combinebackup looks for `INCREMENTAL.` files
/// (elsewhere such a name is an ordinary file).
fn incremental_dir(dir: &str) -> bool {
    dir.starts_with("base/") || dir == "global" || dir.starts_with("pg_tblspc/")
}

/// A tablespace OID as pg_combinebackup accepts one: decimal, no leading
/// zero, not 0.
fn parse_oid(s: &str) -> Option<u32> {
    if s.is_empty() || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Combines `chain` (oldest, the full backup, first) into `dest`.
pub fn combine(
    chain: &[Backup],
    dest: &Destination,
    opts: Options,
) -> Result<Report, CombineError> {
    let newest = chain.last().ok_or(CombineError::Empty)?;
    let start_lsn = check_chain(chain)?;
    let (members, newest_manifest) = members(chain)?;
    let data_mode = fs::metadata(&newest.pgdata)
        .map_err(io_err("read", &newest.pgdata))?
        .mode();
    let group = data_mode & 0o750 == 0o750;
    let ctx = Ctx {
        members,
        opts,
        start_lsn,
        file_mode: if group { 0o640 } else { 0o600 },
        dir_mode: if group { 0o750 } else { 0o700 },
    };
    let trees = out_trees(newest, dest)?;
    for t in &trees {
        fs::create_dir_all(&t.dest).map_err(io_err("create directory", &t.dest))?;
    }
    for stale in [PG_CONTROL, MANIFEST] {
        remove_if_exists(&dest.pgdata.join(stale))?;
    }

    let mut report = Report::default();
    let mut seen: HashSet<String> = HashSet::new();
    let mut writer = None;
    if opts.manifest {
        let p = dest.pgdata.join(MANIFEST);
        writer = Some((
            manifest::Writer::create(&p).map_err(io_err("create", &p))?,
            p,
        ));
    }
    let label = write_label(&ctx, newest, dest)?;
    seen.insert(LABEL.to_string());
    report.files += 1;
    report.bytes += label.size;
    report.verified += label.verified;
    if let Some((w, p)) = writer.as_mut() {
        w.add(&entry(LABEL, &label)).map_err(io_err("write", p))?;
    }

    let dirs = Mutex::new(Vec::new());
    let mut control: Option<Task> = None;
    {
        let walk = trees.iter().flat_map(|t| walk(&ctx, t, &dirs));
        let width = Width::new((opts.jobs * 2).max(2));
        pipeline::try_run(
            width,
            walk,
            || vec![0u8; CHUNK],
            |buf, item: &Result<Task, CombineError>| match item {
                Ok(t) if t.key == PG_CONTROL => Ok(None),
                Ok(t) if t.incremental => reconstruct(&ctx, buf, t).map(Some),
                Ok(t) => copy_whole(&ctx, buf, t).map(Some),
                // The committer returns the walk's own error.
                Err(_) => Ok(None),
            },
            |item, result: Result<Option<Done>, CombineError>| {
                let task = item?;
                let Some(done) = result? else {
                    control = Some(task);
                    return Ok(());
                };
                report.files += 1;
                report.bytes += done.size;
                report.reconstructed += done.reconstructed as u64;
                report.older_blocks += done.older_blocks;
                report.zero_blocks += done.zero_blocks;
                report.verified += done.verified;
                report.pages += done.pages;
                if let Some((w, p)) = writer.as_mut() {
                    if !task.key.starts_with("pg_wal/") {
                        w.add(&entry(&task.key, &done))
                            .map_err(io_err("write", p))?;
                    }
                }
                seen.insert(task.src_key());
                Ok(())
            },
        )?;
    }
    let control = control.map(|t| read_control(&ctx, &t)).transpose()?;
    if control.is_some() {
        seen.insert(PG_CONTROL.to_string());
    }
    missing_from(&newest.name, &newest_manifest, &seen)?;
    for d in dirs.into_inner().unwrap_or_default() {
        sync_dir(&d).map_err(io_err("sync directory", &d))?;
    }
    if let Some((mut w, p)) = writer {
        if let Some((_, done)) = &control {
            w.add(&entry(PG_CONTROL, done))
                .map_err(io_err("write", &p))?;
        }
        w.finish(&newest_manifest.wal_ranges)
            .map_err(io_err("write", &p))?;
    }
    if let Some((bytes, done)) = control {
        let target = dest.pgdata.join(PG_CONTROL);
        let mut staged =
            Staged::create(&target, "combine", ctx.file_mode).map_err(io_err("create", &target))?;
        staged
            .write_synced(&bytes)
            .map_err(io_err("write", &target))?;
        staged.commit().map_err(io_err("rename into", &target))?;
        sync_dir(parent(&target)).map_err(io_err("sync directory", parent(&target)))?;
        report.files += 1;
        report.bytes += done.size;
        report.verified += done.verified;
    }
    Ok(report)
}

/// Each backup's trees and manifest; the newest manifest whole.
fn members(chain: &[Backup]) -> Result<(Vec<Member>, Manifest), CombineError> {
    let mut members = Vec::with_capacity(chain.len());
    let mut newest = None;
    for b in chain {
        let m = read_manifest(b)?;
        let mut trees: Vec<(String, PathBuf)> = b
            .tablespaces
            .iter()
            .map(|(oid, dir)| (format!("pg_tblspc/{oid}/"), dir.clone()))
            .collect();
        trees.push((String::new(), b.pgdata.clone()));
        members.push(Member {
            name: b.name.clone(),
            trees,
            expected: expected_of(Some(&m)),
        });
        newest = Some(m);
    }
    Ok((members, newest.ok_or(CombineError::Empty)?))
}

/// The newest backup's trees, each with its destination.
fn out_trees(newest: &Backup, dest: &Destination) -> Result<Vec<OutTree>, CombineError> {
    let mut trees = vec![OutTree {
        src: newest.pgdata.clone(),
        dest: dest.pgdata.clone(),
        prefix: String::new(),
        is_pgdata: true,
        declared: newest.tablespaces.iter().map(|t| t.0).collect(),
    }];
    for (oid, dir) in &newest.tablespaces {
        let to = dest
            .tablespaces
            .iter()
            .find(|t| t.0 == *oid)
            .ok_or_else(|| CombineError::NoDestination {
                oid: *oid,
                backup: newest.name.clone(),
            })?;
        trees.push(OutTree {
            src: dir.clone(),
            dest: to.1.clone(),
            prefix: format!("pg_tblspc/{oid}/"),
            is_pgdata: false,
            declared: Vec::new(),
        });
    }
    Ok(trees)
}

fn entry(key: &str, done: &Done) -> FileEntry {
    FileEntry {
        path: key.to_string(),
        size: done.size,
        mtime: done.mtime,
        crc32c: Some(done.crc),
    }
}

fn remove_if_exists(p: &Path) -> Result<(), CombineError> {
    match fs::remove_file(p) {
        Ok(()) => sync_dir(parent(p)).map_err(io_err("sync directory", parent(p))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", p)(e)),
    }
}

fn read_manifest(b: &Backup) -> Result<Manifest, CombineError> {
    let path = b.pgdata.join(MANIFEST);
    let bytes = fs::read(&path).map_err(|e| CombineError::Manifest {
        backup: b.name.clone(),
        path: path.clone(),
        reason: e.to_string(),
    })?;
    manifest::parse(&bytes).map_err(|e| CombineError::Manifest {
        backup: b.name.clone(),
        path,
        reason: e.to_string(),
    })
}

/// pg_combinebackup's checks that the backups form one chain: the first is
/// full, the others incremental, each starting where the next one says
/// its parent started, and one system identifier (pg_control's first
/// eight bytes, in every version). Returns the newest backup's start LSN.
fn check_chain(chain: &[Backup]) -> Result<u64, CombineError> {
    let mut newest = None;
    let mut parent: Option<(u64, u32)> = None;
    let mut system_id: Option<(u64, &str)> = None;
    for (i, b) in chain.iter().enumerate().rev() {
        let path = b.pgdata.join(LABEL);
        let text = fs::read(&path).map_err(io_err("read", &path))?;
        let l = incr::parse_chain_label(&text).map_err(|reason| CombineError::Label {
            backup: b.name.clone(),
            path: path.clone(),
            reason,
        })?;
        let chain_err = |reason: String| CombineError::Chain {
            backup: b.name.clone(),
            reason,
        };
        match (i, l.from) {
            (0, Some(_)) => {
                return Err(chain_err(
                    "is an incremental backup, but the first backup should be a full backup".into(),
                ))
            }
            (i, None) if i > 0 => {
                return Err(chain_err(
                    "is a full backup, but only the first backup should be a full backup".into(),
                ))
            }
            _ => {}
        }
        if let Some((lsn, tli)) = parent {
            if l.start_tli != tli {
                return Err(chain_err(format!(
                    "starts on timeline {}, but expected {tli}",
                    l.start_tli
                )));
            }
            if l.start_lsn != lsn {
                return Err(chain_err(format!(
                    "starts at LSN {}, but expected {}",
                    crate::wal::name::format_lsn(l.start_lsn),
                    crate::wal::name::format_lsn(lsn)
                )));
            }
        }
        parent = l.from;
        let control = b.pgdata.join(PG_CONTROL);
        let mut id = [0u8; 8];
        File::open(&control)
            .and_then(|f| f.read_exact_at(&mut id, 0))
            .map_err(io_err("read", &control))?;
        let id = u64::from_ne_bytes(id);
        match system_id {
            None => system_id = Some((id, &b.name)),
            Some((want, of)) if want != id => {
                return Err(chain_err(format!(
                    "system identifier {id}, but backup {of} has {want}"
                )))
            }
            Some(_) => {}
        }
        newest.get_or_insert(l.start_lsn);
    }
    newest.ok_or(CombineError::Empty)
}

/// The newest label, checked against its manifest, written without its
/// `INCREMENTAL FROM` lines.
fn write_label(ctx: &Ctx, newest: &Backup, dest: &Destination) -> Result<Done, CombineError> {
    let src = newest.pgdata.join(LABEL);
    let text = fs::read(&src).map_err(io_err("read", &src))?;
    let verified = ctx
        .newest()
        .verify(LABEL, text.len() as u64, crc32c::crc32c(&text))? as u64;
    let out = incr::strip_incremental_lines(&text);
    let target = dest.pgdata.join(LABEL);
    let mut f = create(&target, ctx.file_mode)?;
    f.write_all(&out).map_err(io_err("write", &target))?;
    let mtime = finish(&f, &target, ctx.file_mode)?;
    Ok(Done {
        size: out.len() as u64,
        crc: crc32c::crc32c(&out),
        mtime,
        verified,
        ..Done::default()
    })
}

/// `global/pg_control`, read whole and verified before anything of it is
/// written.
fn read_control(ctx: &Ctx, t: &Task) -> Result<(Vec<u8>, Done), CombineError> {
    let bytes = fs::read(&t.src).map_err(io_err("read", &t.src))?;
    let crc = crc32c::crc32c(&bytes);
    let verified = ctx.newest().verify(&t.key, bytes.len() as u64, crc)? as u64;
    let done = Done {
        size: bytes.len() as u64,
        crc,
        mtime: jiff::Timestamp::now().as_second(),
        verified,
        ..Done::default()
    };
    Ok((bytes, done))
}

/// Everything the newest manifest lists must have been combined.
fn missing_from(backup: &str, m: &Manifest, seen: &HashSet<String>) -> Result<(), CombineError> {
    let missing: Vec<&str> = m
        .files
        .iter()
        .map(|f| f.path.as_str())
        .filter(|p| !seen.contains(*p))
        .collect();
    match missing.first() {
        None => Ok(()),
        Some(first) => Err(CombineError::Missing {
            backup: backup.to_string(),
            file: first.to_string(),
            more: if missing.len() > 1 {
                format!(" ({} files missing)", missing.len())
            } else {
                String::new()
            },
        }),
    }
}

/// The files of one tree of the newest backup, lazily; directories are
/// created as the walk meets them. Symbolic links and special files are
/// skipped as pg_combinebackup skips them (tablespaces come as trees).
fn walk<'a>(
    ctx: &'a Ctx,
    tree: &'a OutTree,
    dirs: &'a Mutex<Vec<PathBuf>>,
) -> impl Iterator<Item = Result<Task, CombineError>> + 'a {
    walkdir::WalkDir::new(&tree.src)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(move |e| {
            let rel = rel_of(&tree.src, e.path());
            let tablespace = rel
                .strip_prefix("pg_tblspc/")
                .and_then(parse_oid)
                .filter(|_| tree.is_pgdata);
            match tablespace {
                Some(oid) => !e.path_is_symlink() && !tree.declared.contains(&oid),
                None => true,
            }
        })
        .filter_map(move |entry| {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    let path = e.path().unwrap_or(&tree.src).to_path_buf();
                    let source = e
                        .into_io_error()
                        .unwrap_or_else(|| io::Error::other("loop"));
                    return Some(Err(CombineError::Io {
                        action: "read",
                        path,
                        source,
                    }));
                }
            };
            let rel = rel_of(&tree.src, entry.path());
            let dest = if rel.is_empty() {
                tree.dest.clone()
            } else {
                tree.dest.join(&rel)
            };
            let kind = entry.file_type();
            if kind.is_dir() {
                return match make_dir(&dest, ctx.dir_mode) {
                    Ok(()) => {
                        dirs.lock().expect("no panics hold it").push(dest);
                        None
                    }
                    Err(e) => Some(Err(CombineError::Directory(e))),
                };
            }
            if !kind.is_file() {
                log::warn!(
                    "skipping {} \"{}\"",
                    if kind.is_symlink() {
                        "symbolic link"
                    } else {
                        "special file"
                    },
                    entry.path().display()
                );
                return None;
            }
            if tree.is_pgdata && (rel == LABEL || rel == MANIFEST) {
                return None;
            }
            let key = format!("{}{rel}", tree.prefix);
            let (dir_key, name) = key.rsplit_once('/').unwrap_or(("", &key));
            let in_rel_dir = incremental_dir(dir_key);
            let bare = name
                .strip_prefix(incr::PREFIX)
                .filter(|b| in_rel_dir && !b.is_empty());
            let out_name = bare.unwrap_or(name);
            let out_key = if dir_key.is_empty() {
                out_name.to_string()
            } else {
                format!("{dir_key}/{out_name}")
            };
            let dest = match bare {
                // Both would be written to one file, by two workers.
                Some(b) if entry.path().with_file_name(b).symlink_metadata().is_ok() => {
                    return Some(Err(CombineError::Conflict {
                        backup: ctx.newest().name.clone(),
                        file: out_key,
                    }))
                }
                Some(b) => dest.with_file_name(b),
                None => dest,
            };
            Some(Ok(Task {
                segment: page::relation_segment(out_name).filter(|_| in_rel_dir),
                key: out_key,
                src: entry.path().to_path_buf(),
                dest,
                incremental: bare.is_some(),
            }))
        })
}

fn rel_of(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn create(path: &Path, mode: u32) -> Result<File, CombineError> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io_err("create", path))
}

/// Sets the mode (whatever the umask), fsyncs; returns the mtime.
fn finish(f: &File, path: &Path, mode: u32) -> Result<i64, CombineError> {
    f.set_permissions(Permissions::from_mode(mode))
        .map_err(io_err("set the mode of", path))?;
    f.sync_all().map_err(io_err("sync", path))?;
    Ok(f.metadata().map_err(io_err("read", path))?.mtime())
}

/// Checks one page being written when pages are verified.
fn check_page(
    ctx: &Ctx,
    t: &Task,
    data: &[u8],
    block: u64,
    member: usize,
    done: &mut Done,
) -> Result<(), CombineError> {
    if let (true, Some(seg)) = (ctx.opts.verify_pages, t.segment) {
        if !page::acceptable(data, seg * RELSEG_SIZE + block, ctx.start_lsn) {
            return Err(CombineError::Page {
                file: t.key.clone(),
                block,
                backup: ctx.members[member].name.clone(),
            });
        }
        done.pages += 1;
    }
    Ok(())
}

/// A file the newest backup has whole.
fn copy_whole(ctx: &Ctx, buf: &mut [u8], t: &Task) -> Result<Done, CombineError> {
    let newest = ctx.members.len() - 1;
    let mut src = File::open(&t.src).map_err(io_err("open", &t.src))?;
    let mut out = create(&t.dest, ctx.file_mode)?;
    let mut done = Done::default();
    let mut bad_page = None;
    loop {
        let n = fill(&mut src, buf).map_err(io_err("read", &t.src))?;
        if n == 0 {
            break;
        }
        let data = &buf[..n];
        for (i, pg) in data.chunks_exact(BLCKSZ).enumerate() {
            let block = done.size / BLCKSZ as u64 + i as u64;
            if let Err(e) = check_page(ctx, t, pg, block, newest, &mut done) {
                bad_page.get_or_insert(e);
            }
        }
        done.crc = crc32c::crc32c_append(done.crc, data);
        done.size += n as u64;
        out.write_all(data).map_err(io_err("write", &t.dest))?;
    }
    // A damaged backup file says more than the bad page it holds.
    done.verified = ctx.newest().verify(&t.key, done.size, done.crc)? as u64;
    if let Some(e) = bad_page {
        return Err(e);
    }
    done.mtime = finish(&out, &t.dest, ctx.file_mode)?;
    Ok(done)
}

/// A file of one backup that supplies blocks.
struct Source {
    member: usize,
    path: PathBuf,
    /// Its path in its backup's manifest.
    key: String,
    file: File,
    /// None for a whole file.
    header: Option<Header>,
}

/// Reads as much as fits in `buf` from `offset` (short only at the end).
fn fill_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], offset + n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads the header of an `INCREMENTAL.` file; the source returned gets
/// it once the caller has used it.
fn open_incremental(
    ctx: &Ctx,
    member: usize,
    path: PathBuf,
    key: String,
    file: File,
    buf: &mut [u8],
) -> Result<(Header, Source), CombineError> {
    let name = &ctx.members[member].name;
    let len = file.metadata().map_err(io_err("read", &path))?.len();
    let n = fill_at(&file, &mut buf[..(len.min(CHUNK as u64) as usize)], 0)
        .map_err(io_err("read", &path))?;
    let header = incr::parse_header(&buf[..n]).map_err(|source| CombineError::Header {
        backup: name.clone(),
        file: key.clone(),
        source,
    })?;
    if header.file_len() != len {
        return Err(CombineError::IncrementalSize {
            backup: name.clone(),
            file: key,
            have: len,
            want: header.file_len(),
        });
    }
    let source = Source {
        member,
        path,
        key,
        file,
        header: None,
    };
    Ok((header, source))
}

/// The output block each block of `s` is (None past its blocks).
fn output_block(s: &Source, offset: u64) -> Option<u64> {
    match &s.header {
        None => Some(offset / BLCKSZ as u64),
        Some(h) => {
            let i = offset.checked_sub(h.header_len())? / BLCKSZ as u64;
            h.blocks.get(i as usize).map(|b| u64::from(*b))
        }
    }
}

/// Rebuilds a file the newest backup has as `INCREMENTAL.`.
fn reconstruct(ctx: &Ctx, buf: &mut [u8], t: &Task) -> Result<Done, CombineError> {
    let newest = ctx.members.len() - 1;
    if newest >= NONE as usize {
        return Err(CombineError::Chain {
            backup: ctx.newest().name.clone(),
            reason: format!("a chain of more than {NONE} backups"),
        });
    }
    let file = File::open(&t.src).map_err(io_err("open", &t.src))?;
    let (h, mut latest) = open_incremental(ctx, newest, t.src.clone(), t.src_key(), file, buf)?;
    let truncation = u64::from(h.truncation_block_length);
    let mut map = vec![NONE; h.reconstructed_blocks() as usize];
    let length = map.len();
    for b in &h.blocks {
        map[*b as usize] = newest as u16;
    }
    latest.header = Some(h);
    let mut sources = vec![latest];
    let mut whole = false;
    for k in (0..newest).rev() {
        let m = &ctx.members[k];
        let path = m.locate(&t.key);
        match File::open(&path) {
            Ok(file) => {
                let len = file.metadata().map_err(io_err("read", &path))?.len();
                for b in 0..(len / BLCKSZ as u64).min(truncation) {
                    if map[b as usize] == NONE {
                        map[b as usize] = k as u16;
                    }
                }
                sources.push(Source {
                    member: k,
                    path,
                    key: t.key.clone(),
                    file,
                    header: None,
                });
                whole = true;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("open", &path)(e)),
        }
        let key = incremental_key(&t.key);
        let path = m.locate(&key);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CombineError::NotInChain {
                    file: t.key.clone(),
                    newer: ctx.members[k + 1].name.clone(),
                    backup: m.name.clone(),
                })
            }
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        let (h, mut s) = open_incremental(ctx, k, path, key, file, buf)?;
        for b in &h.blocks {
            let b = *b as usize;
            if (b as u64) < truncation && map[b] == NONE {
                map[b] = k as u16;
            }
        }
        s.header = Some(h);
        sources.push(s);
    }
    if !whole {
        let s = &sources[sources.len() - 1];
        return Err(CombineError::IncrementalInFull {
            backup: ctx.members[s.member].name.clone(),
            file: s.key.clone(),
        });
    }

    let out = create(&t.dest, ctx.file_mode)?;
    let mut crcs = if ctx.opts.manifest {
        vec![0u32; length]
    } else {
        Vec::new()
    };
    let mut done = Done {
        reconstructed: true,
        ..Done::default()
    };
    // Oldest first: the full file, usually most of the blocks, is then
    // written front to back.
    for s in sources.iter_mut().rev() {
        let (mut pos, mut crc, mut bad_page) = (0u64, 0u32, None);
        loop {
            let n = fill(&mut s.file, buf).map_err(io_err("read", &s.path))?;
            if n == 0 {
                break;
            }
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            // Chunks start on block boundaries: CHUNK and the header length
            // (when there are blocks) are multiples of BLCKSZ.
            let mut at = 0;
            while at + BLCKSZ <= n {
                let offset = pos + at as u64;
                let page = &buf[at..at + BLCKSZ];
                at += BLCKSZ;
                let Some(b) = output_block(s, offset) else {
                    continue;
                };
                if map.get(b as usize) != Some(&(s.member as u16)) {
                    continue;
                }
                if let Err(e) = check_page(ctx, t, page, b, s.member, &mut done) {
                    bad_page.get_or_insert(e);
                }
                if ctx.opts.manifest {
                    crcs[b as usize] = crc32c::crc32c(page);
                }
                out.write_all_at(page, b * BLCKSZ as u64)
                    .map_err(io_err("write", &t.dest))?;
                done.older_blocks += (s.member != newest) as u64;
            }
            pos += n as u64;
        }
        done.verified += ctx.members[s.member].verify(&s.key, pos, crc)? as u64;
        if let Some(e) = bad_page {
            return Err(e);
        }
    }
    let zeros = vec![0u8; BLCKSZ];
    let zero_crc = crc32c::crc32c(&zeros);
    for (b, _) in map.iter().enumerate().filter(|(_, m)| **m == NONE) {
        out.write_all_at(&zeros, (b * BLCKSZ) as u64)
            .map_err(io_err("write", &t.dest))?;
        if ctx.opts.manifest {
            crcs[b] = zero_crc;
        }
        done.zero_blocks += 1;
    }
    done.size = (length * BLCKSZ) as u64;
    done.crc = crcs
        .iter()
        .fold(0, |acc, c| crc32c::crc32c_combine(acc, *c, BLCKSZ));
    done.mtime = finish(&out, &t.dest, ctx.file_mode)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::manifest::{render, WalRange};
    use incr::{encode_header, Header};

    const OID: u32 = 16400;

    /// A page with a valid checksum for relation block `blkno`.
    fn page(tag: u8, blkno: u64) -> Vec<u8> {
        let mut p = vec![0u8; BLCKSZ];
        p[12..14].copy_from_slice(&24u16.to_le_bytes());
        p[14..16].copy_from_slice(&8000u16.to_le_bytes());
        p[8000..].fill(tag);
        let c = page::checksum(&p, blkno);
        p[8..10].copy_from_slice(&c.to_le_bytes());
        p
    }

    /// Pages `tag` for blocks `0..n`.
    fn rel(tag: u8, n: u64) -> Vec<u8> {
        (0..n).flat_map(|b| page(tag, b)).collect()
    }

    fn incremental(blocks: &[(u32, u8)], truncation_block_length: u32) -> Vec<u8> {
        let h = Header {
            blocks: blocks.iter().map(|b| b.0).collect(),
            truncation_block_length,
        };
        let mut out = encode_header(&h);
        for (b, tag) in blocks {
            out.extend(page(*tag, u64::from(*b)));
        }
        out
    }

    fn start(k: usize) -> u64 {
        0x2000028 + ((k as u64) << 24)
    }

    fn label(k: usize) -> String {
        let at = crate::wal::name::format_lsn(start(k));
        let mut s = format!(
            "START WAL LOCATION: {at} (file 0000000100000000000000{:02X})\n\
             CHECKPOINT LOCATION: {at}\nBACKUP METHOD: streamed\nBACKUP FROM: primary\n\
             START TIME: 2025-01-01 00:00:00 UTC\nLABEL: test\nSTART TIMELINE: 1\n",
            k + 2
        );
        if k > 0 {
            let from = crate::wal::name::format_lsn(start(k - 1));
            s.push_str(&format!(
                "INCREMENTAL FROM LSN: {from}\nINCREMENTAL FROM TLI: 1\n"
            ));
        }
        s
    }

    type Files<'a> = &'a [(&'a str, Vec<u8>)];

    /// Backup `k` of a chain under `root`, Barman's layout: `pg_tblspc/<oid>/…`
    /// under `b<k>/<oid>/`, the rest under `b<k>/data/`, with a label,
    /// pg_control and a manifest of it all.
    fn backup_with(root: &Path, k: usize, files: Files, label: &str) -> Backup {
        let base = root.join(format!("b{k}"));
        let pgdata = base.join("data");
        let mut all: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|(p, d)| (p.to_string(), d.clone()))
            .collect();
        all.push((LABEL.into(), label.as_bytes().to_vec()));
        let mut control = vec![0u8; BLCKSZ];
        control[..8].copy_from_slice(&7_000_000_001u64.to_ne_bytes());
        all.push((PG_CONTROL.into(), control));
        let mut tablespaces = Vec::new();
        let mut entries = Vec::new();
        for (key, data) in &all {
            let path = match key
                .strip_prefix("pg_tblspc/")
                .and_then(|r| r.split_once('/'))
            {
                Some((oid, rest)) => {
                    let dir = base.join(oid);
                    if tablespaces.is_empty() {
                        tablespaces.push((oid.parse().unwrap(), dir.clone()));
                    }
                    dir.join(rest)
                }
                None => pgdata.join(key),
            };
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, data).unwrap();
            entries.push(FileEntry {
                path: key.clone(),
                size: data.len() as u64,
                mtime: 0,
                crc32c: Some(crc32c::crc32c(data)),
            });
        }
        let m = Manifest {
            files: entries,
            wal_ranges: vec![WalRange {
                timeline: 1,
                start_lsn: start(k),
                end_lsn: start(k) + 0x100,
            }],
        };
        fs::write(pgdata.join(MANIFEST), render(&m)).unwrap();
        fs::set_permissions(&pgdata, Permissions::from_mode(0o700)).unwrap();
        Backup {
            name: format!("b{k}"),
            pgdata,
            tablespaces,
        }
    }

    fn backup(root: &Path, k: usize, files: Files) -> Backup {
        backup_with(root, k, files, &label(k))
    }

    fn dest(root: &Path) -> Destination {
        Destination {
            pgdata: root.join("out/data"),
            tablespaces: vec![(OID, root.join("out/tbs"))],
        }
    }

    fn run(root: &Path, chain: &[Backup]) -> Result<Report, CombineError> {
        let opts = Options {
            jobs: 2,
            verify_pages: true,
            manifest: true,
        };
        combine(chain, &dest(root), opts)
    }

    fn out(root: &Path, key: &str) -> Vec<u8> {
        let d = dest(root);
        let path = match key.strip_prefix(&format!("pg_tblspc/{OID}/")) {
            Some(rest) => d.tablespaces[0].1.join(rest),
            None => d.pgdata.join(key),
        };
        fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn no_control(root: &Path) -> bool {
        !dest(root).pgdata.join(PG_CONTROL).exists()
    }

    #[test]
    fn blocks_come_from_the_newest_backup_that_has_them() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let ts = "pg_tblspc/16400/PG_18_1/1/500";
        let b0 = backup(
            root,
            0,
            &[
                ("PG_VERSION", b"17\n".to_vec()),
                ("base/1/100", rel(1, 4)),
                ("base/1/300", rel(9, 1)),
                (ts, rel(5, 2)),
            ],
        );
        let b1 = backup(
            root,
            1,
            &[
                ("PG_VERSION", b"17\n".to_vec()),
                ("base/1/INCREMENTAL.100", incremental(&[(1, 2)], 4)),
                ("base/1/INCREMENTAL.300", incremental(&[], 1)),
                (
                    "pg_tblspc/16400/PG_18_1/1/INCREMENTAL.500",
                    incremental(&[], 2),
                ),
            ],
        );
        let b2 = backup(
            root,
            2,
            &[
                ("PG_VERSION", b"18\n".to_vec()),
                ("INCREMENTAL.conf", b"not a relation\n".to_vec()),
                ("base/1/INCREMENTAL.100", incremental(&[(2, 3), (5, 3)], 4)),
                ("base/1/200", rel(4, 1)),
                (
                    "pg_tblspc/16400/PG_18_1/1/INCREMENTAL.500",
                    incremental(&[(0, 6)], 2),
                ),
            ],
        );
        let report = run(root, &[b0, b1, b2]).unwrap();

        let mut want = page(1, 0);
        want.extend(page(2, 1));
        want.extend(page(3, 2));
        want.extend(page(1, 3));
        want.extend(vec![0u8; BLCKSZ]);
        want.extend(page(3, 5));
        assert!(
            out(root, "base/1/100") == want,
            "base/1/100 has the wrong blocks"
        );
        let mut want = page(6, 0);
        want.extend(page(5, 1));
        assert!(
            out(root, ts) == want,
            "the tablespace file has the wrong blocks"
        );
        assert_eq!(out(root, "PG_VERSION"), b"18\n");
        assert_eq!(out(root, "INCREMENTAL.conf"), b"not a relation\n");
        assert!(out(root, "base/1/200") == rel(4, 1));
        assert_eq!(
            out(root, LABEL),
            label(2)
                .replace(
                    &format!(
                        "INCREMENTAL FROM LSN: {}\nINCREMENTAL FROM TLI: 1\n",
                        crate::wal::name::format_lsn(start(1))
                    ),
                    ""
                )
                .as_bytes()
        );
        let d = dest(root);
        assert!(
            !d.pgdata.join("base/1/300").exists(),
            "dropped in the newest"
        );
        assert!(!d.pgdata.join("base/1/INCREMENTAL.100").exists());
        assert_eq!(
            report,
            Report {
                files: 7,
                bytes: (6 + 2 + 1) * BLCKSZ as u64 + 3 + 15 + label(2).len() as u64 - 56
                    + BLCKSZ as u64,
                reconstructed: 2,
                older_blocks: 4,
                zero_blocks: 1,
                // b2: 7 files, b1: 2, b0: 2.
                verified: 11,
                // Zero blocks are not pages.
                pages: 5 + 2 + 1,
            }
        );

        // The combined manifest describes the output, pg_control last.
        let m = manifest::parse(&fs::read(d.pgdata.join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(m.files.first().map(|f| f.path.as_str()), Some(LABEL));
        assert_eq!(m.files.last().map(|f| f.path.as_str()), Some(PG_CONTROL));
        assert_eq!(m.files.len(), 7);
        for f in &m.files {
            let data = out(root, &f.path);
            assert_eq!(f.size, data.len() as u64, "{}", f.path);
            assert_eq!(f.crc32c, Some(crc32c::crc32c(&data)), "{}", f.path);
        }
        assert_eq!(m.wal_ranges[0].start_lsn, start(2));

        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&d.pgdata.join("base/1/100")), 0o600);
        assert_eq!(mode(&d.pgdata.join("base/1")), 0o700);
        assert_eq!(mode(&d.tablespaces[0].1.join("PG_18_1")), 0o700);
    }

    #[test]
    fn truncation_rules() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let b0 = backup(
            root,
            0,
            &[
                ("base/1/100", rel(1, 5)),
                ("base/1/101", rel(1, 2)),
                ("base/1/102", rel(1, 4)),
            ],
        );
        let b1 = backup(
            root,
            1,
            &[
                ("base/1/INCREMENTAL.100", incremental(&[], 5)),
                ("base/1/INCREMENTAL.101", incremental(&[], 2)),
                ("base/1/INCREMENTAL.102", incremental(&[(3, 2)], 4)),
            ],
        );
        let b2 = backup(
            root,
            2,
            &[
                // Truncated by VACUUM since b0.
                ("base/1/INCREMENTAL.100", incremental(&[], 2)),
                // Extended with blocks no WAL touched: zeros.
                ("base/1/INCREMENTAL.101", incremental(&[], 4)),
                // b1's block 3 is past the new length: not used.
                ("base/1/INCREMENTAL.102", incremental(&[], 2)),
            ],
        );
        let report = run(root, &[b0, b1, b2]).unwrap();
        assert!(out(root, "base/1/100") == rel(1, 2));
        let mut want = rel(1, 2);
        want.extend(vec![0u8; 2 * BLCKSZ]);
        assert!(out(root, "base/1/101") == want);
        assert!(out(root, "base/1/102") == rel(1, 2));
        assert_eq!(report.zero_blocks, 2);
        assert_eq!(report.older_blocks, 6);
    }

    #[test]
    fn a_whole_file_in_an_intermediate_backup_ends_the_search() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let b0 = backup(
            root,
            0,
            &[("base/1/100", rel(1, 3)), ("base/1/101", rel(1, 2))],
        );
        let b1 = backup(
            root,
            1,
            &[
                ("base/1/100", rel(2, 2)),
                ("base/1/INCREMENTAL.101", incremental(&[], 2)),
            ],
        );
        let b2 = backup(
            root,
            2,
            &[
                ("base/1/INCREMENTAL.100", incremental(&[(0, 3)], 3)),
                ("base/1/INCREMENTAL.101", incremental(&[], 2)),
            ],
        );
        run(root, &[b0, b1, b2]).unwrap();
        let mut want = page(3, 0);
        want.extend(page(2, 1));
        want.extend(vec![0u8; BLCKSZ]);
        assert!(out(root, "base/1/100") == want, "nothing of b0's copy");
        assert!(
            out(root, "base/1/101") == rel(1, 2),
            "the full file as it was"
        );
    }

    #[test]
    fn a_file_missing_from_the_chain_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let b0 = backup(root, 0, &[("base/1/101", rel(1, 1))]);
        let b1 = backup(
            root,
            1,
            &[("base/1/INCREMENTAL.100", incremental(&[(0, 2)], 2))],
        );
        let e = run(root, &[b0, b1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "file 'base/1/100' is incremental in backup b1, but backup b0 has neither it nor an INCREMENTAL file for it"
        );
        assert!(no_control(root));

        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let b0 = backup(
            root,
            0,
            &[("base/1/INCREMENTAL.100", incremental(&[(0, 1)], 1))],
        );
        let b1 = backup(root, 1, &[("base/1/INCREMENTAL.100", incremental(&[], 1))]);
        let e = run(root, &[b0, b1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "full backup b0 contains unexpected incremental file 'base/1/INCREMENTAL.100'"
        );
        assert!(no_control(root));
    }

    fn chain(root: &Path) -> Vec<Backup> {
        vec![
            backup(
                root,
                0,
                &[("base/1/100", rel(1, 3)), ("PG_VERSION", b"18\n".to_vec())],
            ),
            backup(
                root,
                1,
                &[
                    ("base/1/INCREMENTAL.100", incremental(&[(1, 2)], 3)),
                    ("PG_VERSION", b"18\n".to_vec()),
                ],
            ),
        ]
    }

    fn flip(path: &Path, at: u64) {
        let f = File::options().read(true).write(true).open(path).unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
    }

    #[test]
    fn what_does_not_match_the_manifests_is_refused() {
        type Damage = fn(&[Backup]);
        let cases: [(&str, Damage, &str); 6] = [
            (
                "a block of the full backup",
                |c| flip(&c[0].pgdata.join("base/1/100"), 8100),
                "file 'base/1/100' of backup b0 does not match its backup_manifest: CRC32C",
            ),
            (
                "a block of an INCREMENTAL file",
                |c| flip(&c[1].pgdata.join("base/1/INCREMENTAL.100"), 8192 + 8100),
                "file 'base/1/INCREMENTAL.100' of backup b1 does not match its backup_manifest: CRC32C",
            ),
            (
                "the magic",
                |c| flip(&c[1].pgdata.join("base/1/INCREMENTAL.100"), 0),
                "file 'base/1/INCREMENTAL.100' of backup b1: bad incremental magic number",
            ),
            (
                "a cut INCREMENTAL file",
                |c| {
                    let p = c[1].pgdata.join("base/1/INCREMENTAL.100");
                    File::options().write(true).open(p).unwrap().set_len(9000).unwrap();
                },
                "file 'base/1/INCREMENTAL.100' of backup b1 is 9000 bytes, its incremental header says 16384",
            ),
            (
                "a file the manifest does not list",
                |c| fs::write(c[1].pgdata.join("base/1/999"), b"x").unwrap(),
                "file 'base/1/999' of backup b1 is not in its backup_manifest",
            ),
            (
                "a listed file gone",
                |c| fs::remove_file(c[1].pgdata.join("PG_VERSION")).unwrap(),
                "file 'PG_VERSION' is listed in the backup_manifest of backup b1 but missing from the backup",
            ),
        ];
        for (what, damage, want) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path();
            let c = chain(root);
            run(root, &c).unwrap_or_else(|e| panic!("{what}: undamaged: {e}"));
            fs::remove_dir_all(root.join("out")).unwrap();
            damage(&c);
            let e = run(root, &c).expect_err(what).to_string();
            assert!(e.starts_with(want), "{what}: {e}");
            assert!(no_control(root), "{what}: pg_control written");
        }
    }

    #[test]
    fn a_whole_copy_beside_its_incremental_file_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let b0 = backup(root, 0, &[("base/1/100", rel(1, 2))]);
        let b1 = backup(
            root,
            1,
            &[
                ("base/1/100", rel(2, 2)),
                ("base/1/INCREMENTAL.100", incremental(&[], 2)),
            ],
        );
        let e = run(root, &[b0, b1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "backup b1 has both 'base/1/100' and an INCREMENTAL file for it"
        );
    }

    #[test]
    fn pages_are_verified_when_the_cluster_has_checksums() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let mut bad = rel(1, 3);
        bad[BLCKSZ + 8100] ^= 1;
        let b0 = backup(root, 0, &[("base/1/100", bad)]);
        let b1 = backup(
            root,
            1,
            &[("base/1/INCREMENTAL.100", incremental(&[(0, 2)], 3))],
        );
        let chain = [b0, b1];
        let e = run(root, &chain).unwrap_err();
        assert_eq!(
            e.to_string(),
            "block 1 of 'base/1/100' (from backup b0) fails its page checksum"
        );
        assert!(no_control(root));
        let opts = Options {
            jobs: 1,
            verify_pages: false,
            manifest: false,
        };
        let r = combine(&chain, &dest(root), opts).unwrap();
        assert_eq!(r.pages, 0);
        assert!(!dest(root).pgdata.join(MANIFEST).exists());
        assert!(!no_control(root));
    }

    #[test]
    fn the_backups_must_form_a_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let b0 = backup(root, 0, &[]);
        let b1 = backup_with(
            root,
            1,
            &[],
            &label(1).replace(
                "INCREMENTAL FROM LSN: 0/2000028",
                "INCREMENTAL FROM LSN: 0/2000030",
            ),
        );
        let e = run(root, &[b0.clone(), b1]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "backup b0: starts at LSN 0/2000028, but expected 0/2000030"
        );
        let e = run(root, &[backup(root, 1, &[])]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "backup b1: is an incremental backup, but the first backup should be a full backup"
        );
        let e = run(root, &[b0.clone(), b0]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "backup b0: is a full backup, but only the first backup should be a full backup"
        );
        assert!(matches!(run(root, &[]), Err(CombineError::Empty)));
    }

    #[test]
    fn crc_of_blocks_combines_to_the_crc_of_the_file() {
        let data = rel(7, 3);
        let folded = data.chunks(BLCKSZ).fold(0, |acc, c| {
            crc32c::crc32c_combine(acc, crc32c::crc32c(c), BLCKSZ)
        });
        assert_eq!(folded, crc32c::crc32c(&data));
    }
}
