//! WAL intake: every WAL-family file in `streaming/` (when
//! `streaming_archiver` is on) and `incoming/` (when `archiver` is on) is
//! validated, hashed, compressed and filed under `wals/<hash dir>/`, with its
//! xlog.db line, through the [`crate::pipeline`]. One run can serve many
//! servers at once (`cron`): their files share one pool of workers.
//!
//! The order of operations per file is the crash protocol of
//! [`crate::durable`]: stage + fsync (worker), rename without replacing and
//! one fsync per target directory (committer, per batch), xlog.db append +
//! fsync, and only then the source is unlinked and its directory fsynced.
//!
//! Differences from Barman, all on the side of keeping data:
//! - content is validated (page header, size, timeline, system identifier)
//!   and a file that fails goes to `errors/` with an error, not into the
//!   archive;
//! - a same-content duplicate whose xlog.db line is missing (a crash between
//!   the rename and the append) gets its line instead of being forgotten.

use std::collections::{HashMap, HashSet};
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::catalog::xlogdb::{self, Entry, XlogDb};
use crate::catalog::{errors_destination, ServerCatalog};
use crate::compression::{self, Codec, Compressor, CustomFilters, Settings};
use crate::config::ServerConfig;
use crate::durable::{self, Pending, Staged};
use crate::pipeline::{self, CpuSlots, Width};
use crate::wal::header;
use crate::wal::name::{Kind, WalName};
use crate::wal::source::SourceBytes;

/// Everything intake needs to know about one server.
#[derive(Debug, Clone)]
pub struct ServerIntake {
    pub name: String,
    pub catalog: ServerCatalog,
    pub lock_dir: PathBuf,
    /// What new files are compressed with (None: stored as they are).
    pub compression: Option<Settings>,
    /// How to read the archive back (custom magic and filters).
    pub custom: CustomFilters,
    /// With `compression = custom` and no magic, Barman labels every file it
    /// cannot identify `custom`.
    pub unidentified: Option<String>,
    /// The system identifier files must carry, when known.
    pub sysid: Option<u64>,
    pub streaming: bool,
    pub archiver: bool,
    pub archiver_batch_size: usize,
    pub streaming_batch_size: usize,
    pub jobs: usize,
}

impl ServerIntake {
    /// Reads the server's settings. Errors name the server and option.
    pub fn from_config(cfg: &ServerConfig, lock_dir: &Path) -> Result<ServerIntake, String> {
        let catalog = ServerCatalog::new(cfg);
        let custom = custom_filters(cfg)?;
        let compression = match cfg.get_str("compression") {
            None => None,
            Some(name) => {
                let codec = Codec::from_config(name).ok_or_else(|| {
                    format!("Unknown compression '{name}' for server '{}'", cfg.name)
                })?;
                if matches!(codec, Codec::Xz | Codec::Snappy) {
                    return Err(format!(
                        "compression = {name} is not supported by barman-rs yet: \
                         WAL files of server '{}' stay where they are",
                        cfg.name
                    ));
                }
                if codec == Codec::Custom && custom.compress.is_none() {
                    return Err(format!(
                        "compression = custom needs custom_compression_filter for server '{}'",
                        cfg.name
                    ));
                }
                Some(Settings {
                    codec,
                    name: name.to_string(),
                    level: codec.level(cfg.get("compression_level")),
                    custom: custom.clone(),
                })
            }
        };
        let unidentified = (cfg.get_str("compression") == Some("custom") && custom.magic.is_none())
            .then(|| "custom".to_string());
        let batch = |key| cfg.get_int(key).unwrap_or(0).max(0) as usize;
        let jobs = match cfg.source("parallel_jobs") {
            Some(_) => cfg.get_int("parallel_jobs").unwrap_or(1).max(1) as usize,
            None => pipeline::cores(),
        };
        let mut intake = ServerIntake {
            name: cfg.name.clone(),
            sysid: None,
            streaming: cfg.get_bool("streaming_archiver"),
            archiver: cfg.get_bool("archiver"),
            archiver_batch_size: batch("archiver_batch_size"),
            streaming_batch_size: batch("streaming_archiver_batch_size"),
            jobs,
            catalog,
            lock_dir: lock_dir.to_path_buf(),
            compression,
            custom,
            unidentified,
        };
        intake.sysid = known_sysid(&intake);
        Ok(intake)
    }

    fn target(&self, name: &WalName) -> PathBuf {
        self.catalog
            .wals_directory
            .join(name.hash_dir())
            .join(&name.name)
    }
}

fn custom_filters(cfg: &ServerConfig) -> Result<CustomFilters, String> {
    let magic = match cfg.get_str("custom_compression_magic") {
        None => None,
        Some(m) => {
            let hex = m
                .strip_prefix("0x")
                .or_else(|| m.strip_prefix("0X"))
                .unwrap_or(m);
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|i| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| {
                    format!(
                        "Invalid custom_compression_magic '{m}' for server '{}': expected hex bytes such as 0x28b52ffd",
                        cfg.name
                    )
                })?;
            Some(bytes)
        }
    };
    Ok(CustomFilters {
        compress: cfg.get_str("custom_compression_filter").map(str::to_string),
        decompress: cfg
            .get_str("custom_decompression_filter")
            .map(str::to_string),
        magic,
    })
}

/// The server's system identifier: identity.json (written by backups), else
/// the header of the newest segment already in the archive.
fn known_sysid(srv: &ServerIntake) -> Option<u64> {
    if let Ok(text) = std::fs::read_to_string(srv.catalog.identity_file()) {
        let id = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("systemid")
                    .and_then(|s| s.as_str())
                    .and_then(|s| s.parse().ok())
            });
        if id.is_some() {
            return id;
        }
    }
    // Only the newest lines matter: read the tail, not a years-long file.
    let entries = xlogdb::read_tail(&srv.catalog.xlogdb_file(), 64 * 1024).ok()?;
    for e in entries.iter().rev().take(16) {
        let Some(name) = WalName::parse(&e.name).filter(|n| n.kind == Kind::Segment) else {
            continue;
        };
        let path = srv.target(&name);
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let mut plain = Vec::new();
        let bytes = match Codec::detect(&data, srv.custom.magic.as_deref()) {
            Some(c) => {
                if compression::decompress(c, &data, &srv.custom, &mut plain).is_err() {
                    continue;
                }
                &plain
            }
            None => &data,
        };
        if let Ok(Some(h)) = header::validate(&name, bytes, None) {
            return Some(h.sysid);
        }
    }
    None
}

/// Where intake reports: archive-wal prints, cron logs.
pub trait Report {
    /// A line Barman prints on stdout (headers, file names).
    fn line(&mut self, text: &str);
    /// A file refused or a server's run stopped: exit status becomes 1.
    fn error(&mut self, text: &str);
    fn warning(&mut self, text: &str);
}

/// Which directory a group of files comes from, named as Barman prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Streaming,
    FileArchival,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::Streaming => "streaming",
            Origin::FileArchival => "file archival",
        }
    }
}

/// One archiver's batch (Barman's `WalArchiverQueue`).
#[derive(Debug)]
pub struct Batch {
    pub server: usize,
    pub origin: Origin,
    pub files: Vec<PathBuf>,
    pub errors: Vec<PathBuf>,
    pub total: usize,
}

/// Python's `glob(dir/*)` sorted: dotfiles (put-wal's staging names) excluded.
fn list_dir(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut names = Vec::new();
    match std::fs::read_dir(dir) {
        Ok(rd) => {
            for e in rd {
                let e = e?;
                if !e.file_name().to_string_lossy().starts_with('.') {
                    names.push(e.path());
                }
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    names.sort();
    Ok(names)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Barman's `get_next_batch` for one directory.
pub fn next_batch(
    server: usize,
    origin: Origin,
    dir: &Path,
    batch_size: usize,
) -> io::Result<Batch> {
    let mut names = list_dir(dir)?;
    let total = names.len();
    if batch_size > 0 {
        names.truncate(batch_size);
    }
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut partials = Vec::new();
    for path in names {
        let base = file_name(&path);
        if base.ends_with(".tmp") {
            continue;
        }
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(_) => continue, // renamed or removed while we listed
        };
        let parsed = WalName::parse(&base);
        match origin {
            Origin::FileArchival => {
                if parsed.is_some() && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                    files.push(path);
                } else {
                    errors.push(path);
                }
            }
            Origin::Streaming => {
                if !meta.is_file() {
                    errors.push(path);
                } else if parsed.as_ref().is_some_and(|n| n.kind == Kind::Partial) {
                    partials.push(path);
                } else if parsed.is_some() {
                    files.push(path);
                } else {
                    errors.push(path);
                }
            }
        }
    }
    if origin == Origin::Streaming {
        // pg_receivewal needs its newest file to find where to restart.
        if partials.len() > 1 {
            let last = partials.len() - 1;
            files.extend(partials.drain(..last));
        } else if partials.is_empty() {
            files.pop();
        }
    }
    Ok(Batch {
        server,
        origin,
        files,
        errors,
        total,
    })
}

/// One file to archive.
struct Task {
    group: usize,
    server: usize,
    path: PathBuf,
    name: WalName,
    /// Incoming files may arrive compressed by the archive_command.
    detect: bool,
}

impl Task {
    /// Distinguishes the staging names of a file that is in streaming/ and
    /// incoming/ at once (both archivers on), which are worked in parallel.
    fn origin_tag(&self) -> &'static str {
        if self.detect {
            "incoming"
        } else {
            "streaming"
        }
    }
}

/// What a worker found.
enum Outcome {
    /// Staged in the archive directory, ready to be renamed into place.
    Store {
        pending: Pending,
        entry: Entry,
        sysid: Option<u64>,
        /// blake3 of the uncompressed content, to compare with a copy
        /// another task of this run archived first.
        hash: blake3::Hash,
    },
    /// The archive already holds this name with the same content.
    Same { entry: Entry },
    /// The archive already holds this name with different content.
    Different,
    /// The content is not a valid WAL file of this server.
    Invalid(String),
    /// An I/O failure: the server's run stops here.
    Failed(String),
    /// The server's run had already stopped.
    Skipped,
}

/// A worker's reusable state.
#[derive(Default)]
struct Worker {
    /// One context per distinct codec setting (not per server: fifty
    /// servers with the same settings share one).
    compressors: Vec<Compressor>,
    out: Vec<u8>,
    plain: Vec<u8>,
    existing: Vec<u8>,
}

/// The worker's reusable compressor for `settings`; a few distinct
/// settings are kept, the oldest is dropped beyond that.
fn compressor<'a>(
    cache: &'a mut Vec<Compressor>,
    settings: &Settings,
) -> io::Result<&'a mut Compressor> {
    let i = match cache.iter().position(|c| c.settings() == settings) {
        Some(i) => i,
        None => {
            if cache.len() >= 4 {
                cache.remove(0);
            }
            cache.push(Compressor::new(settings).map_err(io::Error::other)?);
            cache.len() - 1
        }
    };
    Ok(&mut cache[i])
}

fn work(
    servers: &[ServerIntake],
    stopped: &[AtomicBool],
    cpu: &CpuSlots,
    w: &mut Worker,
    task: &Task,
) -> Outcome {
    if stopped[task.server].load(Ordering::Relaxed) {
        return Outcome::Skipped;
    }
    let srv = &servers[task.server];
    process(srv, cpu, w, task).unwrap_or_else(|e| Outcome::Failed(e.to_string()))
}

fn process(srv: &ServerIntake, cpu: &CpuSlots, w: &mut Worker, task: &Task) -> io::Result<Outcome> {
    let slot = cpu.take();
    let source = SourceBytes::open(&task.path)?;
    let meta = source.metadata();
    let bytes = source.bytes();
    let codec = if task.detect {
        Codec::detect(bytes, srv.custom.magic.as_deref())
    } else {
        None
    };
    let plain: &[u8] = match codec {
        Some(c) => {
            if let Err(e) = compression::decompress(c, bytes, &srv.custom, &mut w.plain) {
                return Ok(Outcome::Invalid(e.to_string()));
            }
            &w.plain
        }
        None => bytes,
    };
    let header = match header::validate(&task.name, plain, srv.sysid) {
        Ok(h) => h,
        Err(e) => return Ok(Outcome::Invalid(e.to_string())),
    };
    let hash = blake3::hash(plain);
    let target = srv.target(&task.name);
    let time = meta.mtime() as f64 + f64::from(meta.mtime_nsec() as u32) * 1e-9;

    if std::fs::symlink_metadata(&target).is_ok() {
        let same = archived_hash(srv, &target, &mut w.existing)? == Some(hash);
        return Ok(if same {
            Outcome::Same {
                entry: xlogdb::describe(
                    &target,
                    &task.name.name,
                    &srv.custom,
                    srv.unidentified.as_deref(),
                )?,
            }
        } else {
            Outcome::Different
        });
    }

    let dir = durable::parent(&target);
    std::fs::create_dir_all(dir)?;
    let sysid = header.map(|h| h.sysid);
    if srv.compression.is_none() || codec.is_some() {
        // Stored as it is: on the same filesystem, link instead of copying.
        if std::fs::metadata(dir)?.dev() == meta.dev() {
            drop(slot);
            std::fs::File::open(&task.path)?.sync_all()?;
            crate::failpoint::hit("intake:staged");
            let entry = Entry {
                name: task.name.name.clone(),
                size: meta.len(),
                time,
                compression: codec.map(|c| c.name().to_string()),
                encryption: None,
            };
            return Ok(Outcome::Store {
                pending: Pending::Link {
                    from: task.path.clone(),
                    to: target,
                },
                entry,
                sysid,
                hash,
            });
        }
    }
    let (stored, compression): (&[u8], Option<String>) = if let Some(c) = codec {
        (bytes, Some(c.name().to_string()))
    } else if let Some(settings) = &srv.compression {
        compressor(&mut w.compressors, settings)?
            .compress(plain, &task.name.name, &mut w.out)
            .map_err(io::Error::other)?;
        (&w.out, Some(settings.name.clone()))
    } else {
        (bytes, None)
    };
    drop(slot); // the rest waits on the disk, not the CPU
    let mut staged = Staged::create(&target, task.origin_tag(), 0o600)?;
    staged
        .file()
        .set_permissions(std::fs::Permissions::from_mode(
            meta.permissions().mode() & 0o7777,
        ))?;
    std::io::Write::write_all(staged.file(), stored)?;
    let times = std::fs::FileTimes::new()
        .set_accessed(meta.accessed()?)
        .set_modified(meta.modified()?);
    staged.file().set_times(times)?;
    staged.file().sync_all()?;
    crate::failpoint::hit("intake:staged");
    let entry = Entry {
        name: task.name.name.clone(),
        size: stored.len() as u64,
        time,
        compression,
        encryption: None,
    };
    Ok(Outcome::Store {
        pending: Pending::Staged(staged),
        entry,
        sysid,
        hash,
    })
}

/// blake3 of the uncompressed content of an archived file (None when it
/// does not decompress: it cannot equal a valid source).
fn archived_hash(
    srv: &ServerIntake,
    target: &Path,
    scratch: &mut Vec<u8>,
) -> io::Result<Option<blake3::Hash>> {
    let existing = std::fs::read(target)?;
    let stored = Codec::detect(&existing, srv.custom.magic.as_deref())
        .or_else(|| srv.unidentified.as_ref().map(|_| Codec::Custom));
    Ok(match stored {
        Some(c) => compression::decompress(c, &existing, &srv.custom, scratch)
            .ok()
            .map(|_| blake3::hash(scratch)),
        None => Some(blake3::hash(&existing)),
    })
}

/// What the committer keeps per server.
#[derive(Default)]
struct ServerState {
    /// Names in xlog.db, loaded on the first same-content duplicate.
    recorded: Option<HashSet<String>>,
    sysid: Option<u64>,
    failed: bool,
}

/// The per-group bookkeeping for Barman's output.
struct GroupState {
    batch: Batch,
    opened: bool,
    processed: usize,
}

/// Totals of a run, for the caller and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub archived: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub failed_servers: usize,
}

/// Archives every pending file of `servers` (each already holding its
/// archive-wal lock). `verbose` is Barman's: print headers even when a
/// directory is empty.
pub fn run(
    servers: &[ServerIntake],
    jobs: usize,
    verbose: bool,
    report: &mut dyn Report,
) -> Summary {
    let mut groups = Vec::new();
    let mut summary = Summary::default();
    for (i, srv) in servers.iter().enumerate() {
        let mut dirs = Vec::new();
        if srv.streaming {
            dirs.push((
                Origin::Streaming,
                &srv.catalog.streaming_wals_directory,
                srv.streaming_batch_size,
            ));
        }
        if srv.archiver {
            dirs.push((
                Origin::FileArchival,
                &srv.catalog.incoming_wals_directory,
                srv.archiver_batch_size,
            ));
        }
        for (origin, dir, size) in dirs {
            match next_batch(i, origin, dir, size) {
                Ok(batch) => groups.push(GroupState {
                    batch,
                    opened: false,
                    processed: 0,
                }),
                Err(e) => {
                    report.error(&format!(
                        "Cannot list {} of server {}: {}",
                        dir.display(),
                        srv.name,
                        crate::catalog::strerror(&e)
                    ));
                    summary.failed_servers += 1;
                }
            }
        }
    }
    let mut tasks = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        for path in &group.batch.files {
            let name = WalName::parse(&file_name(path)).expect("listed files have WAL names");
            tasks.push(Task {
                group: g,
                server: group.batch.server,
                path: path.clone(),
                name,
                detect: group.batch.origin == Origin::FileArchival,
            });
        }
    }

    let stopped: Vec<AtomicBool> = servers.iter().map(|_| AtomicBool::new(false)).collect();
    let mut states: Vec<ServerState> = servers
        .iter()
        .map(|s| ServerState {
            sysid: s.sysid,
            ..ServerState::default()
        })
        .collect();
    let mut next_group = 0usize;
    // Unlinks need no fsync for safety (a source that comes back after a
    // power loss is an identical duplicate, dropped by the next run); the
    // source directories are synced once, at the end, as Barman does.
    let mut source_dirs = HashSet::new();

    // Twice as many workers as CPU slots: fsync waits overlap compression.
    let cpu = CpuSlots::new(jobs);
    pipeline::run(
        Width::new(jobs * 2),
        tasks,
        Worker::default,
        |w, t| work(servers, &stopped, &cpu, w, t),
        |batch| {
            commit(
                servers,
                &mut states,
                &stopped,
                &mut groups,
                &mut next_group,
                verbose,
                batch,
                report,
                &mut summary,
                &mut source_dirs,
            );
            ControlFlow::Continue(())
        },
    );
    while next_group < groups.len() {
        close_group(servers, &mut groups[next_group], verbose, report);
        next_group += 1;
    }
    for dir in source_dirs {
        if let Err(e) = durable::sync_dir(&dir) {
            report.warning(&format!("Cannot sync directory {}: {e}", dir.display()));
        }
    }
    summary.failed_servers += states.iter().filter(|s| s.failed).count();
    summary
}

fn open_group(
    servers: &[ServerIntake],
    g: &mut GroupState,
    verbose: bool,
    report: &mut dyn Report,
) {
    if g.opened {
        return;
    }
    g.opened = true;
    let srv = &servers[g.batch.server];
    let mut header = format!(
        "Processing xlog segments from {} for {}",
        g.batch.origin.label(),
        srv.name
    );
    if g.batch.total > g.batch.files.len() && !g.batch.files.is_empty() {
        header.push_str(&format!(" (batch size: {})", g.batch.files.len()));
    }
    if verbose || !g.batch.files.is_empty() {
        report.line(&header);
    }
}

fn close_group(
    servers: &[ServerIntake],
    g: &mut GroupState,
    verbose: bool,
    report: &mut dyn Report,
) {
    open_group(servers, g, verbose, report);
    let srv = &servers[g.batch.server];
    if g.processed == 0 && verbose {
        report.line("\tno file found");
    }
    if g.batch.errors.is_empty() {
        return;
    }
    report.line(&format!(
        "Some unknown objects have been found while processing xlog segments for {}. \
         Objects moved to errors directory:",
        srv.name
    ));
    log::warn!(
        "Archiver is about to move {} unexpected file(s) to errors directory for {} from {}",
        g.batch.errors.len(),
        srv.name,
        g.batch.origin.label()
    );
    for path in std::mem::take(&mut g.batch.errors) {
        let base = file_name(&path);
        report.line(&format!("\t{base}"));
        if let Err(e) = to_errors(srv, &path, &base, "unknown") {
            report.error(&format!(
                "Cannot move {} of server {} to the errors directory: {e}",
                path.display(),
                srv.name
            ));
        }
    }
}

/// Moves `path` into errors/ as `<base>.<stamp>.<suffix>`, never over an
/// existing file. Returns the name it got.
fn to_errors(srv: &ServerIntake, path: &Path, base: &str, suffix: &str) -> io::Result<String> {
    std::fs::create_dir_all(&srv.catalog.errors_directory)?;
    let mut n = 0;
    loop {
        let dest = errors_destination(&srv.catalog.errors_directory, base, suffix, n);
        let result = if std::fs::symlink_metadata(path)?.is_dir() {
            if dest.exists() {
                Err(io::Error::from(io::ErrorKind::AlreadyExists))
            } else {
                std::fs::rename(path, &dest)
            }
        } else {
            durable::move_file(path, &dest)
        };
        match result {
            Ok(()) => return Ok(file_name(&dest)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            Err(e) => return Err(e),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn commit(
    servers: &[ServerIntake],
    states: &mut [ServerState],
    stopped: &[AtomicBool],
    groups: &mut [GroupState],
    next_group: &mut usize,
    verbose: bool,
    batch: Vec<(Task, Outcome)>,
    report: &mut dyn Report,
    summary: &mut Summary,
    source_dirs: &mut HashSet<PathBuf>,
) {
    // 1. Decide, in order, and rename what is to be stored.
    let mut records: HashMap<usize, Vec<Entry>> = HashMap::new();
    let mut unlink: Vec<(usize, PathBuf)> = Vec::new();
    let mut dirs: HashSet<PathBuf> = HashSet::new();
    let mut after: Vec<(usize, Task, &'static str, String)> = Vec::new();
    for (task, outcome) in batch {
        while *next_group < task.group {
            close_group(servers, &mut groups[*next_group], verbose, report);
            *next_group += 1;
        }
        let g = &mut groups[task.group];
        open_group(servers, g, verbose, report);
        let srv = &servers[task.server];
        let state = &mut states[task.server];
        if state.failed || matches!(outcome, Outcome::Skipped) {
            continue;
        }
        g.processed += 1;
        report.line(&format!("\t{}", task.name));
        let outcome = match outcome {
            Outcome::Store {
                pending,
                entry,
                sysid,
                hash,
            } => {
                if let (Some(want), Some(got)) = (state.sysid, sysid) {
                    if want != got {
                        drop(pending);
                        let why = header::Invalid::SystemId { got, want }.to_string();
                        after.push((task.server, task, "invalid", why));
                        continue;
                    }
                }
                if state.sysid.is_none() {
                    state.sysid = sysid;
                }
                let target = pending.target().to_path_buf();
                match pending.commit() {
                    Ok(()) => {
                        crate::failpoint::hit("intake:renamed");
                        dirs.insert(durable::parent(&target).to_path_buf());
                        if let Some(r) = state.recorded.as_mut() {
                            r.insert(entry.name.clone());
                        }
                        records.entry(task.server).or_default().push(entry);
                        unlink.push((task.server, task.path));
                        summary.archived += 1;
                        continue;
                    }
                    // Another task of this run (streaming/ and incoming/ both
                    // had the file) archived it first: a duplicate after all.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        let mut scratch = Vec::new();
                        match archived_hash(srv, &target, &mut scratch) {
                            Ok(h) if h == Some(hash) => match xlogdb::describe(
                                &target,
                                &entry.name,
                                &srv.custom,
                                srv.unidentified.as_deref(),
                            ) {
                                Ok(entry) => Outcome::Same { entry },
                                Err(e) => Outcome::Failed(e.to_string()),
                            },
                            Ok(_) => Outcome::Different,
                            Err(e) => Outcome::Failed(e.to_string()),
                        }
                    }
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
            other => other,
        };
        match outcome {
            Outcome::Store { .. } => unreachable!("resolved above"),
            Outcome::Same { entry } => {
                summary.duplicates += 1;
                let recorded = match state.recorded.as_mut() {
                    Some(r) => r,
                    None => {
                        let mut names: HashSet<String> =
                            xlogdb::read_entries(&srv.catalog.xlogdb_file())
                                .map(|v| v.into_iter().map(|e| e.name).collect())
                                .unwrap_or_default();
                        // This batch's own lines are not in the file yet.
                        if let Some(batch) = records.get(&task.server) {
                            names.extend(batch.iter().map(|e| e.name.clone()));
                        }
                        state.recorded.insert(names)
                    }
                };
                if recorded.insert(entry.name.clone()) {
                    records.entry(task.server).or_default().push(entry);
                }
                unlink.push((task.server, task.path));
            }
            Outcome::Different => after.push((task.server, task, "duplicate", String::new())),
            Outcome::Invalid(why) => after.push((task.server, task, "invalid", why)),
            Outcome::Failed(why) => fail(srv, state, stopped, &task, &why, report),
            Outcome::Skipped => unreachable!(),
        }
    }

    // 2. Make the renames durable: one fsync per target directory.
    for dir in &dirs {
        if let Err(e) = durable::sync_dir(dir) {
            for (server, state) in states.iter_mut().enumerate() {
                if records.contains_key(&server) && !state.failed {
                    state.failed = true;
                    stopped[server].store(true, Ordering::Relaxed);
                    report.error(&format!(
                        "Cannot sync directory {} of server {}: {e}",
                        dir.display(),
                        servers[server].name
                    ));
                }
            }
            // Nothing is recorded or unlinked: the rerun sees duplicates.
            return;
        }
    }

    crate::failpoint::hit("intake:synced");

    // 3. Record in xlog.db, durably; 4. only then remove the sources.
    let mut unrecorded: HashSet<usize> = HashSet::new();
    for (server, entries) in records {
        let srv = &servers[server];
        let result =
            XlogDb::lock(&srv.catalog, &srv.lock_dir).and_then(|mut db| db.append(&entries));
        if let Err(e) = result {
            unrecorded.insert(server);
            states[server].failed = true;
            stopped[server].store(true, Ordering::Relaxed);
            report.error(&format!(
                "Cannot record WAL files of server {} in xlog.db: {e}",
                srv.name
            ));
        }
    }
    crate::failpoint::hit("intake:recorded");
    for (server, path) in unlink {
        if unrecorded.contains(&server) {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                crate::failpoint::hit("intake:unlinked");
                if !source_dirs.contains(durable::parent(&path)) {
                    source_dirs.insert(durable::parent(&path).to_path_buf());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => report.warning(&format!("Cannot remove {}: {e}", path.display())),
        }
    }
    // 5. Files that go to errors/.
    for (server, task, kind, why) in after {
        let srv = &servers[server];
        let base = task.name.name.clone();
        match kind {
            "duplicate" => match to_errors(srv, &task.path, &base, "duplicate") {
                Ok(_) => {
                    summary.duplicates += 1;
                    report.line(&format!(
                        "\tError: {base} is already present in server {}. File moved to errors directory.",
                        srv.name
                    ));
                }
                Err(e) => report.error(&format!(
                    "Cannot move duplicate {} of server {} to the errors directory: {e}",
                    task.path.display(),
                    srv.name
                )),
            },
            _ => {
                summary.rejected += 1;
                match to_errors(srv, &task.path, &base, "unknown") {
                    Ok(dest) => report.error(&format!(
                        "Invalid WAL file {base} for server {}: {why}. File moved to errors directory as {dest}",
                        srv.name
                    )),
                    Err(e) => report.error(&format!(
                        "Invalid WAL file {base} for server {}: {why}. Cannot move it to the errors directory: {e}",
                        srv.name
                    )),
                }
            }
        }
    }
}

fn fail(
    srv: &ServerIntake,
    state: &mut ServerState,
    stopped: &[AtomicBool],
    task: &Task,
    why: &str,
    report: &mut dyn Report,
) {
    state.failed = true;
    stopped[task.server].store(true, Ordering::Relaxed);
    report.error(&format!(
        "Cannot archive WAL file {} of server {}: {why}. It stays in {} and later files wait for the next run",
        task.name,
        srv.name,
        durable::parent(&task.path).display()
    ));
}
