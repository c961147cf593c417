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
//!
//! Layout: this module holds the API and the orchestration ([`combine`]:
//! label first, the parallel walk of the newest backup, the combined
//! manifest, `pg_control` last); `checks` reads the chain's labels and
//! manifests and checks that the backups form one chain; `walk` lists the
//! newest backup's files as tasks; `files` writes one output file, copied
//! whole or rebuilt block by block from `INCREMENTAL.` files.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::copy::PG_CONTROL;
use super::incremental_file::{self as incr, HeaderError};
use crate::backup::manifest::{self, FileEntry, Manifest};
use crate::durable::{parent, sync_dir, Staged};
use crate::pipeline::{self, Width};

mod checks;
mod files;
#[cfg(test)]
mod tests;
mod walk;

use checks::{check_chain, members, Member};
use files::{copy_whole, create, finish, reconstruct};
use walk::{out_trees, walk, Task};

const CHUNK: usize = 1 << 20;
const LABEL: &str = "backup_label";
const MANIFEST: &str = "backup_manifest";

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
