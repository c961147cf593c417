//! The committer's side of intake, on one thread and in input order: it
//! renames a batch into place, fsyncs each target directory once, records
//! the batch in xlog.db, and only then removes the sources; it sends
//! duplicates and invalid files to errors/ and prints Barman's lines.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::batch::{file_name, Batch};
use super::worker::{archived_hash, Outcome, Task};
use super::{Report, ServerIntake, Summary};
use crate::catalog::errors_destination;
use crate::catalog::xlogdb::{self, Entry, XlogDb};
use crate::durable;
use crate::wal::header;

/// What the committer keeps per server.
#[derive(Default)]
pub(super) struct ServerState {
    /// Names in xlog.db, loaded on the first same-content duplicate.
    pub(super) recorded: Option<HashSet<String>>,
    pub(super) sysid: Option<u64>,
    pub(super) failed: bool,
}

/// The per-group bookkeeping for Barman's output.
pub(super) struct GroupState {
    pub(super) batch: Batch,
    pub(super) opened: bool,
    pub(super) processed: usize,
}

/// The run's bookkeeping, owned by the committer thread.
pub(super) struct Committer<'a> {
    pub(super) servers: &'a [ServerIntake],
    pub(super) stopped: &'a [AtomicBool],
    pub(super) states: Vec<ServerState>,
    pub(super) groups: Vec<GroupState>,
    pub(super) next_group: usize,
    pub(super) verbose: bool,
    pub(super) summary: Summary,
    /// Unlinks need no fsync for safety (a source that comes back after a
    /// power loss is an identical duplicate, dropped by the next run); the
    /// source directories are synced once, at the end, as Barman does.
    pub(super) source_dirs: HashSet<PathBuf>,
}

pub(super) fn open_group(
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

pub(super) fn close_group(
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
pub(super) fn to_errors(
    srv: &ServerIntake,
    path: &Path,
    base: &str,
    suffix: &str,
) -> io::Result<String> {
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

impl Committer<'_> {
    /// Commits one batch of results, in order (see the module comment).
    pub(super) fn commit(&mut self, batch: Vec<(Task, Outcome)>, report: &mut dyn Report) {
        let servers = self.servers;
        let stopped = self.stopped;
        let verbose = self.verbose;
        let states = &mut self.states;
        let groups = &mut self.groups;
        let next_group = &mut self.next_group;
        let summary = &mut self.summary;
        let source_dirs = &mut self.source_dirs;
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
                    warning,
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
                    if !srv.hooks.is_empty() {
                        let size = std::fs::metadata(&task.path).map(|m| m.len()).unwrap_or(0);
                        let source_codec = source_compression(srv, &task.path);
                        let env = hook_env(&entry, &task.path, size, source_codec.as_deref());
                        if let Err(stop) = srv.hooks.run("pre", "archive", &env, None) {
                            drop(pending);
                            log::warn!(
                                "Archiving of {}/{} aborted by pre_archive_retry_script.Reason: {}",
                                srv.name,
                                entry.name,
                                stop.script
                            );
                            state.failed = true;
                            stopped[task.server].store(true, Ordering::Relaxed);
                            continue;
                        }
                    }
                    match pending.commit() {
                        Ok(()) => {
                            crate::failpoint::hit("intake:renamed");
                            if let Some(w) = &warning {
                                report.warning(&format!(
                                    "WAL file {} of server {}: {w}",
                                    entry.name, srv.name
                                ));
                            }
                            if !srv.hooks.is_empty() {
                                let env = hook_env(
                                    &entry,
                                    &target,
                                    entry.size,
                                    entry.compression.as_deref(),
                                );
                                let _ = srv.hooks.run("post", "archive", &env, None);
                            }
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
                            // Read under the lock; a torn last line (a crash
                            // mid-append) does not count as recorded.
                            let read = XlogDb::lock(&srv.catalog, &srv.lock_dir)
                                .and_then(|db| db.entries());
                            let mut names: HashSet<String> = match read {
                                Ok(v) => v.into_iter().map(|e| e.name).collect(),
                                Err(e) => {
                                    fail(srv, state, stopped, &task, &e.to_string(), report);
                                    continue;
                                }
                            };
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
                    // The copy may be there from a run that crashed before
                    // syncing its directory: sync it before the source goes.
                    dirs.insert(durable::parent(&srv.target(&task.name)).to_path_buf());
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

    /// Prints the trailers of every group still open.
    pub(super) fn finish(&mut self, report: &mut dyn Report) {
        while self.next_group < self.groups.len() {
            close_group(
                self.servers,
                &mut self.groups[self.next_group],
                self.verbose,
                report,
            );
            self.next_group += 1;
        }
    }
}

pub(super) fn fail(
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

/// The WAL variables of Barman's `env_from_wal_info`.
fn hook_env(
    entry: &Entry,
    file: &Path,
    size: u64,
    compression: Option<&str>,
) -> Vec<(&'static str, String)> {
    vec![
        ("BARMAN_SEGMENT", entry.name.clone()),
        ("BARMAN_FILE", file.display().to_string()),
        ("BARMAN_SIZE", size.to_string()),
        (
            "BARMAN_TIMESTAMP",
            crate::output::python_float_repr(entry.time),
        ),
        (
            "BARMAN_COMPRESSION",
            compression.unwrap_or_default().to_string(),
        ),
        ("BARMAN_ERROR", String::new()),
    ]
}

/// The codec of a source file in incoming/, by magic (for hook variables).
fn source_compression(srv: &ServerIntake, path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .ok()?;
    crate::compression::Codec::detect(&head[..n], srv.custom.magic.as_deref())
        .map(|c| c.name().to_string())
}
