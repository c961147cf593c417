//! Taking a base backup, as Barman's `BackupManager.backup` and its
//! executors do: the backup.info life cycle (EMPTY → STARTED →
//! WAITING_FOR_WALS, FAILED with `error=`), the messages, the hooks, the
//! sizes, and the copy itself by one of the methods:
//! - [`pg_basebackup`]: `backup_method = postgres`, pg_basebackup supervised;
//! - [`local`]: `backup_method = local-rsync`, copied natively by the
//!   pipeline (walk, read, checksum, write, manifest);
//! - [`rsync`]: `backup_method = rsync`, rsync over ssh as Barman runs it.
//!
//! backup.info is written as Barman writes it, at `meta/<ID>-backup.info`,
//! replaced atomically and fsynced at every state change, so a crash leaves
//! a backup that reads as STARTED (or FAILED), never as DONE.

pub mod barman_manifest;
pub mod exclude;
pub mod incremental;
pub mod label;
pub mod local;
pub mod manifest;
pub mod page;
pub mod pg_basebackup;
pub mod rsync;
pub mod tarball;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::catalog::backup_ext::neighbours;
use crate::catalog::backup_info::BackupInfo;
use crate::catalog::backups::{self, Backup};
use crate::catalog::pylit::PyValue;
use crate::catalog::{wal_removal, ServerCatalog};
use crate::config::types::python_repr_str;
use crate::config::ServerConfig;
use crate::hooks::Hooks;
use crate::output::{pretty_size, python_float_repr, Output};
use crate::postgres::session::{Location, Metadata, Session};
use crate::wal::archiver::drive;
use crate::wal::name::{parse_lsn, segment_of};

/// `barman backup` options that override the server's configuration.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub name: Option<String>,
    pub wait: bool,
    pub wait_timeout: Option<u64>,
    pub immediate_checkpoint: Option<bool>,
    pub reuse_backup: Option<String>,
    pub jobs: Option<usize>,
    pub bwlimit: Option<u64>,
    pub retry_times: Option<i64>,
    pub retry_sleep: Option<i64>,
    pub keepalive_interval: Option<i64>,
    pub manifest: Option<bool>,
    /// Show a progress bar (a terminal, not quiet, not cron).
    pub progress: bool,
    /// `--incremental`: each server's resolved parent backup ID.
    pub parents: std::collections::BTreeMap<String, String>,
}

/// Where the process-wide pieces live.
#[derive(Debug, Clone, Copy)]
pub struct Host<'a> {
    pub lock_dir: &'a Path,
    pub config_file: &'a Path,
}

/// The settings a backup runs with: configuration plus command line.
#[derive(Debug, Clone)]
pub struct Plan {
    pub method: String,
    pub immediate: bool,
    pub reuse: Option<String>,
    pub jobs: usize,
    pub bwlimit: Option<u64>,
    pub retry_times: i64,
    pub retry_sleep: i64,
    pub keepalive: i64,
}

impl Plan {
    pub fn new(cfg: &ServerConfig, o: &Options) -> Plan {
        let reuse = o
            .reuse_backup
            .clone()
            .or_else(|| cfg.get_str("reuse_backup").map(str::to_string))
            .filter(|r| r != "off");
        Plan {
            method: cfg.get_str("backup_method").unwrap_or("rsync").to_string(),
            immediate: o
                .immediate_checkpoint
                .unwrap_or_else(|| cfg.get_bool("immediate_checkpoint")),
            reuse,
            jobs: o
                .jobs
                .unwrap_or_else(|| cfg.get_int("parallel_jobs").unwrap_or(1).max(1) as usize),
            bwlimit: o.bwlimit.or_else(|| {
                cfg.get_str("bandwidth_limit")
                    .and_then(|s| s.parse::<u64>().ok())
                    .filter(|n| *n > 0)
            }),
            retry_times: o
                .retry_times
                .unwrap_or_else(|| cfg.get_int("basebackup_retry_times").unwrap_or(0)),
            retry_sleep: o
                .retry_sleep
                .unwrap_or_else(|| cfg.get_int("basebackup_retry_sleep").unwrap_or(30)),
            keepalive: o
                .keepalive_interval
                .unwrap_or_else(|| cfg.get_int("keepalive_interval").unwrap_or(60)),
        }
    }

    /// Barman's `mode` (backup.info and the start message).
    pub fn mode(&self) -> &'static str {
        if self.method == "postgres" {
            "postgres"
        } else {
            "rsync-concurrent"
        }
    }
}

/// A failure with the action Barman names in `Backup failed <action>.`
#[derive(Debug)]
pub struct Failure {
    pub action: String,
    pub message: String,
}

impl Failure {
    pub fn new(action: &str, message: impl std::fmt::Display) -> Failure {
        Failure {
            action: action.to_string(),
            message: message.to_string(),
        }
    }
}

/// One backup in the making.
pub struct Job<'a> {
    pub cfg: &'a ServerConfig,
    pub cat: ServerCatalog,
    pub plan: Plan,
    pub id: String,
    pub info: BackupInfo,
    pub out: &'a mut Output,
    pub host: Host<'a>,
    pub options: &'a Options,
    /// When the copy started (Barman's `copy_start_time`, local, naive).
    pub copy_start: Option<jiff::ZonedDateTime>,
    pub copy_started_at: Option<Instant>,
}

impl Job<'_> {
    pub fn base_dir(&self) -> PathBuf {
        self.cat.basebackups_directory.join(&self.id)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.base_dir().join("data")
    }

    pub fn info_path(&self) -> PathBuf {
        self.cat
            .meta_directory()
            .join(format!("{}-backup.info", self.id))
    }

    /// Writes backup.info durably (staged file, fsync, rename, dir fsync).
    pub fn save(&self) -> Result<(), Failure> {
        backups::save_info(&self.cat, &self.id, &self.info).map_err(|e| {
            Failure::new(
                "saving backup metadata",
                format!("{}: {e}", self.info_path().display()),
            )
        })
    }

    pub fn set(&mut self, key: &'static str, value: Option<String>) {
        self.info.set(key, value);
    }

    /// PostgreSQL metadata into backup.info (Barman's `_pg_get_metadata`).
    pub fn record_metadata(&mut self, m: &Metadata) {
        let s = |v: &Option<String>| v.clone();
        self.set("pgdata", Some(m.data_directory.clone()));
        self.set("version", Some(m.version.to_string()));
        self.set("xlog_segment_size", Some(m.segment_size.to_string()));
        self.set("config_file", s(&m.config_file));
        self.set("hba_file", s(&m.hba_file));
        self.set("ident_file", s(&m.ident_file));
        if !m.included_files.is_empty() {
            let list: Vec<String> = m
                .included_files
                .iter()
                .map(|f| python_repr_str(f))
                .collect();
            self.set("included_files", Some(format!("[{}]", list.join(", "))));
        }
        if !m.tablespaces.is_empty() {
            let list: Vec<String> = m
                .tablespaces
                .iter()
                .map(|(name, oid, loc)| {
                    format!(
                        "({}, {oid}, {})",
                        python_repr_str(name),
                        python_repr_str(loc)
                    )
                })
                .collect();
            self.set("tablespaces", Some(format!("[{}]", list.join(", "))));
            for (name, oid, loc) in &m.tablespaces {
                log::info!("\t{oid}, {name}, {loc}");
            }
        }
        self.set("data_checksums", s(&m.data_checksums));
        self.set("summarize_wal", s(&m.summarize_wal));
        self.set("cluster_size", m.cluster_size.map(|n| n.to_string()));
    }

    pub fn segment_size(&self) -> u64 {
        self.info
            .get_int("xlog_segment_size")
            .map_or(16 << 20, |n| n as u64)
    }

    /// Barman's `_backup_info_from_start_location`.
    pub fn record_start(&mut self, loc: &Location) {
        self.set("status", Some("STARTED".into()));
        self.set("begin_time", Some(loc.time.clone()));
        self.set("begin_xlog", Some(loc.lsn.clone()));
        let file = match (loc.timeline, &loc.file) {
            (_, Some(f)) => Some(f.clone()),
            (Some(tli), None) => {
                parse_lsn(&loc.lsn).map(|l| segment_of(l, tli, self.segment_size()))
            }
            _ => None,
        };
        if let Some(tli) = loc.timeline {
            self.set("timeline", Some(tli.to_string()));
        }
        if let Some((name, offset)) = file {
            if loc.timeline.is_none() {
                let tli = u32::from_str_radix(&name[..8], 16).unwrap_or(1);
                self.set("timeline", Some(tli.to_string()));
            }
            self.set("begin_wal", Some(name));
            self.set("begin_offset", Some(offset.to_string()));
        }
    }

    /// Barman's `_backup_info_from_stop_location`.
    pub fn record_stop(&mut self, loc: &Location) {
        let (name, offset) = match &loc.file {
            Some(f) => f.clone(),
            None => {
                let tli = loc
                    .timeline
                    .or_else(|| self.info.get_int("timeline").map(|t| t as u32))
                    .unwrap_or(1);
                parse_lsn(&loc.lsn)
                    .map(|l| segment_of(l, tli, self.segment_size()))
                    .unwrap_or_default()
            }
        };
        self.set("end_time", Some(loc.time.clone()));
        self.set("end_xlog", Some(loc.lsn.clone()));
        self.set("end_wal", Some(name));
        self.set("end_offset", Some(offset.to_string()));
    }

    /// `Backup start at LSN: ...`
    pub fn print_start(&mut self) {
        let lsn = self.info.get("begin_xlog").unwrap_or_default().to_string();
        match (
            self.info.get("begin_wal"),
            self.info.get_int("begin_offset"),
        ) {
            (Some(w), Some(o)) => {
                let line = format!("Backup start at LSN: {lsn} ({w}, {o:08X})");
                self.out.info(&line);
            }
            _ => self.out.info(&format!("Backup start at LSN: {lsn}")),
        }
    }

    pub fn mark_copy_start(&mut self) {
        self.copy_start = Some(jiff::ZonedDateTime::now());
        self.copy_started_at = Some(Instant::now());
    }

    /// Seconds since the copy started, as Python's `total_seconds()`
    /// (microsecond resolution).
    pub fn copy_seconds(&self) -> f64 {
        let us = self
            .copy_started_at
            .map_or(0, |t| t.elapsed().as_micros() as u64);
        us as f64 / 1e6
    }

    /// `Copy done (time: ...)`
    pub fn print_copy_done(&mut self, seconds: f64) {
        let line = format!(
            "Copy done (time: {})",
            crate::output::human_duration(seconds)
        );
        self.out.info(&line);
    }

    /// The previous backup (Barman's `get_previous_backup`).
    pub fn previous(&self) -> Option<Backup> {
        let list = backups::load(&self.cat).ok()?;
        neighbours(&list, &self.id).0.cloned()
    }

    /// With reuse on, the previous backup's directory and its begin time
    /// (files older than that are judged unchanged by size and mtime).
    pub fn reuse_source(&self) -> (Option<PathBuf>, Option<i64>) {
        let previous = self.plan.reuse.as_ref().and_then(|_| self.previous());
        let base = previous
            .as_ref()
            .map(|b| self.cat.basebackups_directory.join(&b.id));
        let horizon = previous
            .as_ref()
            .and_then(|b| b.info.get("begin_time"))
            .and_then(crate::catalog::retention::parse_time)
            .map(|t| t.as_second());
        (base, horizon)
    }

    /// Barman's `_purge_unused_wal_files`: before the first backup, WAL the
    /// server archived earlier is of no use.
    pub fn purge_before_first(&mut self) {
        let Some(begin) = self.info.get("begin_wal").map(str::to_string) else {
            return;
        };
        if self.previous().is_some() {
            return;
        }
        self.out.info(&format!(
            "This is the first backup for server {}",
            self.cfg.name
        ));
        if self.cfg.get_bool("worm_mode") {
            self.out
                .info("'worm_mode' is enabled, skip purging of unused WAL files.");
            return;
        }
        let removed = match wal_removal::remove_wal(
            self.out,
            self.cfg,
            &self.cat,
            self.host.lock_dir,
            self.host.config_file,
            Some(&begin),
            &Default::default(),
            &[],
        ) {
            Ok(r) => r,
            Err(e) => {
                self.out.error(&e.to_string());
                return;
            }
        };
        if !removed.is_empty() {
            self.out
                .info_nolog("WAL segments preceding the current backup have been found:");
            for w in removed {
                self.out.info(&format!(
                    "\t{w} from server {} has been removed",
                    self.cfg.name
                ));
            }
        }
    }

    /// Barman's `backup_fsync_and_set_sizes`: every file and directory under
    /// `base/<ID>` fsynced, `size` and `deduplicated_size` set.
    pub fn fsync_and_set_sizes(&mut self, already_synced: bool) -> Result<(), Failure> {
        let (size, dedup) = crate::catalog::delete::backup_sizes(&self.base_dir(), !already_synced)
            .map_err(|e| Failure::new("calculating backup size", e))?;
        self.set("size", Some(size.to_string()));
        self.set("deduplicated_size", Some(dedup.to_string()));
        self.save()?;
        if self.plan.reuse.as_deref() == Some("link") {
            let ratio = if size > 0 {
                1.0 - dedup as f64 / size as f64
            } else {
                0.0
            };
            self.out.info(&format!(
                "Backup size: {}. Actual size on disk: {} (-{:.2}% deduplication ratio).",
                pretty_size(size as f64),
                pretty_size(dedup as f64),
                ratio * 100.0
            ));
        } else {
            self.out
                .info(&format!("Backup size: {}", pretty_size(size as f64)));
        }
        Ok(())
    }

    fn hook_env(&self) -> Vec<(&'static str, String)> {
        let list = backups::load(&self.cat).unwrap_or_default();
        let (prev, next) = neighbours(&list, &self.id);
        let (prev, next) = (prev.map(|b| b.id.clone()), next.map(|b| b.id.clone()));
        vec![
            ("BARMAN_BACKUP_DIR", self.base_dir().display().to_string()),
            (
                "BARMAN_BACKUP_INFO_PATH",
                self.info_path().display().to_string(),
            ),
            ("BARMAN_BACKUP_ID", self.id.clone()),
            ("BARMAN_PREVIOUS_ID", prev.unwrap_or_default()),
            ("BARMAN_NEXT_ID", next.unwrap_or_default()),
            ("BARMAN_STATUS", self.info.status().to_string()),
            (
                "BARMAN_ERROR",
                self.info.get("error").unwrap_or_default().to_string(),
            ),
        ]
    }

    fn run_hooks(&self, phase: &str) -> Result<(), crate::hooks::AbortStop> {
        let hooks = Hooks::new(self.cfg, self.host.config_file, "backup");
        if hooks.is_empty() {
            return Ok(());
        }
        let env = self.hook_env();
        let env: Vec<(&str, String)> = env.into_iter().collect();
        hooks.run(phase, "backup", &env, self.info.get("error"))
    }
}

/// Barman's concurrent strategy around a file-level copy (local-rsync,
/// rsync): `pg_backup_start` on one session kept alive, the metadata
/// recorded, `copy` run, then — whatever the copy did — "Asking PostgreSQL
/// server to finalize the backup." and `pg_backup_stop`; the stop location
/// and the label are recorded, the WAL switched. Returns the session (for the restore point),
/// what the copy returned, and the label.
pub fn concurrent<T>(
    job: &mut Job<'_>,
    action: &mut String,
    copy: impl FnOnce(&mut Job<'_>, &mut String, &Metadata) -> Result<T, Failure>,
) -> Result<(Session, T, String), Failure> {
    *action = "starting backup".into();
    let conninfo = job.cfg.get_str("conninfo").unwrap_or_default().to_string();
    let mut session =
        Session::open(&conninfo, Duration::from_secs(30)).map_err(|e| Failure::new(action, e))?;
    *action = "detecting data directory".into();
    let meta = session.metadata().map_err(|e| Failure::new(action, e))?;
    job.record_metadata(&meta);
    *action = "issuing start backup command".into();
    let label = format!("Barman backup {} {}", job.cfg.name, job.id);
    let start = session
        .backup_start(&label, job.plan.immediate)
        .map_err(|e| Failure::new(action, e))?;
    session.start_keepalive(Duration::from_secs(job.plan.keepalive.max(0) as u64));
    job.record_start(&start);

    let copied = copy(job, action, &meta);
    if copied.is_err() {
        job.out.error(&format!("The backup has failed {action}"));
    }
    job.out
        .info("Asking PostgreSQL server to finalize the backup.");
    let stop = session.backup_stop();
    let copied = copied?;
    let (loc, label_text) =
        stop.map_err(|e| Failure::new("issuing stop backup command (native concurrent)", e))?;
    job.set("backup_label", Some(python_repr_str(&label_text)));
    job.record_stop(&loc);
    let _ = session.switch_wal();
    Ok((session, copied, label_text))
}

/// Writes `data/backup_label` (0644, fsynced), as Barman's rsync layout has it.
pub fn write_label(job: &Job<'_>, action: &mut String, text: &str) -> Result<(), Failure> {
    *action = "writing backup label".into();
    let path = job.data_dir().join("backup_label");
    write_synced(&path, text.as_bytes(), 0o644)
        .map_err(|e| Failure::new(action, format!("{}: {e}", path.display())))
}

/// Writes a whole file with `mode` and fsyncs it.
pub fn write_synced(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.sync_all()
}

/// Python's `str()` of a naive local datetime.
pub fn python_naive(z: &jiff::ZonedDateTime) -> String {
    let us = z.subsec_nanosecond() / 1000;
    let base = z.strftime("%Y-%m-%d %H:%M:%S").to_string();
    if us == 0 {
        base
    } else {
        format!("{base}.{us:06}")
    }
}

/// Barman's `repr()` of the copy statistics dict.
pub fn copy_stats_repr(pairs: &[(&str, f64)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("'{k}': {}", python_float_repr(*v)))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// Runs one backup of `cfg` (Barman's `BackupManager.backup`). Returns the
/// backup ID and final backup.info, or None when not even the metadata could be written.
pub fn take(
    out: &mut Output,
    host: Host<'_>,
    cfg: &ServerConfig,
    options: &Options,
    systemid: Option<String>,
) -> Option<(String, BackupInfo)> {
    let cat = ServerCatalog::new(cfg);
    let plan = Plan::new(cfg, options);
    let id = jiff::ZonedDateTime::now()
        .strftime("%Y%m%dT%H%M%S")
        .to_string();
    let mut info = BackupInfo::default();
    info.set("status", Some("EMPTY".into()));
    info.set("server_name", Some(cfg.name.clone()));
    info.set("mode", Some(plan.mode().into()));
    info.set("xlog_segment_size", Some((16u64 << 20).to_string()));
    info.set("systemid", systemid);
    info.set("backup_name", options.name.clone());
    let parent = options.parents.get(&cfg.name).cloned();
    info.set("parent_backup_id", parent.clone());
    let mut job = Job {
        cfg,
        cat,
        plan,
        id,
        info,
        out,
        host,
        options,
        copy_start: None,
        copy_started_at: None,
    };
    if let Err(e) = job.save() {
        job.out.error(&format!(
            "Backup failed {}.\nDETAILS: {}",
            e.action, e.message
        ));
        return None;
    }
    let mut action = "starting backup".to_string();
    let result = (|| -> Result<(), Failure> {
        let line = format!(
            "Starting backup using {} method for server {} in {}",
            job.plan.mode(),
            cfg.name,
            job.base_dir().display()
        );
        job.out.info(&line);
        if let Err(stop) = job.run_hooks("pre") {
            return Err(Failure::new(
                "starting backup",
                format!(
                    "Abort of the backup requested by the pre-backup retry hook script: {}",
                    stop.script
                ),
            ));
        }
        let synced = match job.plan.method.as_str() {
            "postgres" => pg_basebackup::run(&mut job, &mut action)?,
            "local-rsync" => local::run(&mut job, &mut action)?,
            "rsync" => rsync::run(&mut job, &mut action)?,
            other => {
                return Err(Failure::new(
                    "starting backup",
                    format!("barman-rs does not implement backup_method '{other}' yet"),
                ))
            }
        };
        action = "calculating backup size".into();
        job.fsync_and_set_sizes(synced)?;
        job.set("status", Some("WAITING_FOR_WALS".into()));
        Ok(())
    })();
    match result {
        Err(f) => {
            let first = f.message.trim().lines().next().unwrap_or("").to_string();
            let act = if f.action.is_empty() {
                action.clone()
            } else {
                f.action.clone()
            };
            job.set("status", Some("FAILED".into()));
            job.set("error", Some(format!("failure {act} ({first})")));
            job.out.error(&format!(
                "Backup failed {act}.\nDETAILS: {}",
                f.message.trim()
            ));
        }
        Ok(()) => {
            let end = job.info.get("end_xlog").unwrap_or_default().to_string();
            let wal = job.info.get("end_wal").unwrap_or_default().to_string();
            let off = job.info.get_int("end_offset").unwrap_or(0);
            job.out
                .info(&format!("Backup end at LSN: {end} ({wal}, {off:08X})"));
            let start = job
                .copy_start
                .clone()
                .unwrap_or_else(jiff::ZonedDateTime::now);
            let elapsed = job
                .copy_started_at
                .map_or(0.0, |t| t.elapsed().as_secs_f64());
            job.out.info(&format!(
                "Backup completed (start time: {}, elapsed time: {})",
                python_naive(&start),
                crate::output::human_duration(elapsed)
            ));
            if options.wait {
                drive::wait_for_wal(
                    job.out,
                    host.lock_dir,
                    host.config_file,
                    cfg,
                    Some(wal),
                    options.wait_timeout.unwrap_or(0),
                );
                let _ = job.save();
                check_backup(&mut job);
            }
        }
    }
    // Barman's `finally`: the parent learns of its child even when the
    // child failed, and before the child's own last save.
    if let Some(parent) = &parent {
        if let Err(e) = incremental::register_child(&job.cat, parent, &job.id) {
            job.out.error(&e);
        }
    }
    if let Err(e) = job.save() {
        job.out.error(&e.message);
    }
    let _ = job.run_hooks("post");
    Some((job.id, job.info))
}

/// Barman's `check_backup`: a WAITING_FOR_WALS backup becomes DONE once
/// every segment from begin_wal to end_wal is archived, FAILED when one is
/// missing but a later one is there.
pub fn check_backup(job: &mut Job<'_>) {
    if let Some(msg) = crate::catalog::wal_check::apply(&job.cat.wals_directory, &mut job.info) {
        job.out.error(&msg);
    }
    if let Err(e) = job.save() {
        job.out.error(&e.message);
    }
}

/// How long to sleep between pg_basebackup retries.
pub fn retry_pause(secs: i64) -> Duration {
    Duration::from_secs(secs.max(0) as u64)
}

/// Decodes a backup_label's `repr` back from backup.info.
pub fn label_of(info: &BackupInfo) -> Option<String> {
    match crate::catalog::pylit::parse(info.get("backup_label")?) {
        Ok(PyValue::Str(s)) => Some(s),
        _ => None,
    }
}
