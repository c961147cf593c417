//! Recovering a backup (`barman recover`/`restore`), following Barman's
//! `BackupManager.recover` and `RecoveryExecutor.recover` step by step:
//! intake pass, empty destination checks, pre hooks, PITR targets, the base
//! backup copied ([`copy`] for plain backups, [`untar`] for tar ones, both
//! verified against the backup manifest), `.barman-recover.info`, the
//! required WAL ([`wal`]) or get-wal, the recovery configuration and the
//! neutralised settings ([`conf`]), post hooks, Barman's closing report.
//!
//! A failed restore stops before any recovery configuration is written,
//! and without `global/pg_control` (written last): the destination cannot
//! be started as if it were restored.

pub mod chain;
pub mod combine;
pub mod conf;
pub mod copy;
pub mod frames;
pub mod incremental_file;
pub mod remote;
pub mod targets;
pub mod untar;
pub mod wal;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Map, Value as J};

use crate::backup::manifest;
use crate::catalog::backup_ext::{self, Tablespace};
use crate::catalog::backups::{self, Backup};
use crate::catalog::xlogdb;
use crate::catalog::ServerCatalog;
use crate::config::ServerConfig;
use crate::hooks::Hooks;
use crate::output::{human_duration, python_json, Output};
use crate::wal::archiver::drive::{self, Voice};
use crate::wal::archiver::ServerIntake;
use conf::{Assertion, Fetch, RecoverySettings};
use targets::{python_aware, Required, Targets};

/// Everything a restore needs, checked by the command layer.
pub struct Request<'a> {
    pub cfg: &'a ServerConfig,
    pub config_file: &'a Path,
    pub lock_dir: &'a Path,
    pub barman_user: &'a str,
    pub list: &'a [Backup],
    pub backup: &'a Backup,
    pub dest: String,
    /// `--staging-wal-directory`.
    pub wal_dest: Option<String>,
    /// Tablespace relocation: name → location.
    pub relocate: BTreeMap<String, String>,
    pub remote: Option<String>,
    pub targets: Targets,
    pub standby: bool,
    pub recovery_conf_filename: Option<String>,
    pub recovery_option_port: Option<String>,
    pub custom_restore_command: Option<String>,
    pub copy_partial: bool,
    pub get_wal: bool,
    pub delta: bool,
    pub jobs: usize,
    /// Where tar members of an incremental chain are extracted
    /// (`--staging-path`, `staging_path`, else `/tmp` as Barman).
    pub staging: PathBuf,
}

impl Request<'_> {
    /// The same restore into a local staging directory.
    fn staged(&self, dest: &Path, relocate: BTreeMap<String, String>) -> Request<'_> {
        Request {
            cfg: self.cfg,
            config_file: self.config_file,
            lock_dir: self.lock_dir,
            barman_user: self.barman_user,
            list: self.list,
            backup: self.backup,
            dest: dest.display().to_string(),
            wal_dest: None,
            relocate,
            remote: None,
            targets: self.targets.clone(),
            standby: self.standby,
            recovery_conf_filename: None,
            recovery_option_port: None,
            custom_restore_command: None,
            copy_partial: false,
            get_wal: self.get_wal,
            delta: false,
            jobs: self.jobs,
            staging: self.staging.clone(),
        }
    }

    fn version(&self) -> i64 {
        self.backup.info.get_int("version").unwrap_or(150000)
    }

    fn location(&self, t: &Tablespace) -> String {
        self.relocate
            .get(&t.name)
            .cloned()
            .unwrap_or_else(|| t.location.clone())
    }

    /// Barman's `env_from_recover`.
    fn hook_env(&self, cat: &ServerCatalog) -> Vec<(&'static str, String)> {
        let mut env = backup_ext::hook_env(cat, self.list, self.backup);
        let tbs = if self.relocate.is_empty() {
            String::new()
        } else {
            python_json(&J::Object(
                self.relocate
                    .iter()
                    .map(|(k, v)| (k.clone(), J::String(v.clone())))
                    .collect(),
            ))
        };
        let mut o = Map::new();
        let t = &self.targets;
        let mut put = |k: &str, v: Option<J>| {
            if let Some(v) = v {
                o.insert(k.to_string(), v);
            }
        };
        put(
            "target_tli",
            t.tli.as_ref().map(|x| match x.parse::<u64>() {
                Ok(n) => json!(n),
                Err(_) => json!(x),
            }),
        );
        put("target_time", t.time.as_ref().map(|x| json!(x)));
        put("target_xid", t.xid.as_ref().map(|x| json!(x)));
        put("target_lsn", t.lsn.as_ref().map(|x| json!(x)));
        put("target_name", t.name.as_ref().map(|x| json!(x)));
        put("target_immediate", t.immediate.then_some(json!(true)));
        put("exclusive", t.exclusive.then_some(json!(true)));
        put("target_action", t.action.as_ref().map(|x| json!(x)));
        put("standby_mode", self.standby.then_some(json!(true)));
        put(
            "recovery_conf_filename",
            self.recovery_conf_filename.as_ref().map(|x| json!(x)),
        );
        put(
            "recovery_option_port",
            self.recovery_option_port.as_ref().map(|x| json!(x)),
        );
        put(
            "custom_restore_command",
            self.custom_restore_command.as_ref().map(|x| json!(x)),
        );
        put("copy_partial", self.copy_partial.then_some(json!(true)));
        let options = if o.is_empty() {
            String::new()
        } else {
            python_json(&J::Object(o))
        };
        env.retain(|(k, _)| *k != "BARMAN_ERROR");
        env.extend([
            ("BARMAN_DESTINATION_DIRECTORY", self.dest.clone()),
            ("BARMAN_TABLESPACES", tbs),
            (
                "BARMAN_REMOTE_COMMAND",
                self.remote.clone().unwrap_or_default(),
            ),
            ("BARMAN_RECOVER_OPTIONS", options),
            ("BARMAN_ERROR", String::new()),
        ]);
        env
    }
}

/// What the closing report lists.
#[derive(Default)]
struct Results {
    changes: Vec<Assertion>,
    warnings: Vec<Assertion>,
    missing: Vec<String>,
    get_wal: bool,
    conf_file: String,
}

/// Barman's `ls DEST` test: missing or without visible entries (dot files
/// do not count); an existing non-directory is not empty.
fn is_empty_dir(p: &Path) -> bool {
    match fs::read_dir(p) {
        Ok(rd) => !rd
            .flatten()
            .any(|e| !e.file_name().to_string_lossy().starts_with('.')),
        Err(_) => !p.exists(),
    }
}

/// Runs the restore; every failure is reported on `out` (exit status 1).
pub fn run(out: &mut Output, r: &Request<'_>) {
    let cfg = r.cfg;
    let cat = ServerCatalog::new(cfg);
    let b = r.backup;
    drive::archive_once(out, r.lock_dir, r.config_file, cfg, Voice::Quiet);
    let tablespaces = backup_ext::tablespaces(&b.info);
    if !r.delta {
        if r.remote.is_none() && !is_empty_dir(Path::new(&r.dest)) {
            return out.error(&format!(
                "The restore operation cannot proceed because the destination folder '{}' is not \
                 empty. To prevent accidental data loss, the destination must be empty. Please \
                 choose a different location or manually empty the folder.",
                r.dest
            ));
        }
        for t in &tablespaces {
            let loc = r.location(t);
            if r.remote.is_none() && !is_empty_dir(Path::new(&loc)) {
                return out.error(&format!(
                    "The restore operation cannot proceed. The destination path '{loc}' for the \
                     tablespace '{}' is not empty. To prevent accidental data loss, the tablespace \
                     destination must be empty. Please choose a different location or manually \
                     empty the folder.",
                    t.name
                ));
            }
        }
        if let Some(remote) = &r.remote {
            if let Err(e) = remote::check_empty(remote, &r.dest, &tablespaces, r) {
                return out.error(&e);
            }
        }
    }
    let hooks = Hooks::new(cfg, r.config_file, "recovery");
    let env = r.hook_env(&cat);
    if let Err(stop) = hooks.run("pre", "recovery", &env, None) {
        return out.exception(&format!(
            "Abort 'pre_recovery_retry_script' retry hook script ({}, exit code: {})\nSee log file \
             for more details.",
            stop.script,
            crate::hooks::EXIT_ABORT_STOP
        ));
    }
    let started = jiff::ZonedDateTime::now();
    let clock = Instant::now();
    if execute(out, r, &cat, &tablespaces).is_none() {
        return;
    }
    let _ = hooks.run("post", "recovery", &env, None);
    let results = match RESULTS.with(|c| c.take()) {
        Some(res) => res,
        None => return,
    };
    report(out, &results, &started, clock);
}

thread_local! {
    static RESULTS: std::cell::RefCell<Option<Results>> = const { std::cell::RefCell::new(None) };
}

fn report(out: &mut Output, res: &Results, started: &jiff::ZonedDateTime, clock: Instant) {
    if !res.changes.is_empty() {
        out.info("");
        out.info("IMPORTANT");
        out.info("These settings have been modified to prevent data losses");
        out.info("");
        for a in &res.changes {
            out.info(&a.to_string());
        }
    }
    if !res.warnings.is_empty() {
        out.info("");
        out.info("WARNING");
        out.info("You are required to review the following options as potentially dangerous");
        out.info("");
        for a in &res.warnings {
            out.info(&a.to_string());
        }
    }
    if !res.missing.is_empty() {
        out.info("");
        out.info("WARNING");
        out.info(
            "The following configuration files have not been saved during backup, hence they \
             have not been restored.",
        );
        out.info(
            "You need to manually restore them in order to start the restored PostgreSQL \
             instance:",
        );
        out.info("");
        for f in &res.missing {
            out.info(&format!("    {f}"));
        }
    }
    if res.get_wal {
        out.info("");
        out.info("WARNING: 'get-wal' is in the specified 'recovery_options'.");
        out.info(&format!(
            "Before you start up the PostgreSQL server, please review the {} file",
            res.conf_file
        ));
        out.info(
            "inside the target directory. Make sure that 'restore_command' can be executed by \
             the PostgreSQL user.",
        );
    }
    out.info("");
    out.info(&format!(
        "Restore operation completed (start time: {}, elapsed time: {})",
        python_aware(started),
        human_duration(clock.elapsed().as_secs_f64())
    ));
    out.info("Your PostgreSQL server has been successfully prepared for recovery!");
}

/// Barman's `RecoveryExecutor.recover`; None after an error was reported.
fn execute(
    out: &mut Output,
    r: &Request<'_>,
    cat: &ServerCatalog,
    tablespaces: &[Tablespace],
) -> Option<()> {
    let b = r.backup;
    let dest = PathBuf::from(&r.dest);
    let version = r.version();
    let mut res = Results {
        conf_file: r.recovery_conf_filename.clone().unwrap_or_else(|| {
            if version < 120000 {
                "recovery.conf".into()
            } else {
                "postgresql.auto.conf".into()
            }
        }),
        ..Default::default()
    };
    let kind = if r.remote.is_some() {
        "remote"
    } else {
        "local"
    };
    out.info(&format!(
        "Starting {kind} restore for server {} using backup {}",
        r.cfg.name, b.id
    ));
    out.info(&format!("Destination directory: {}", r.dest));
    if let Some(rc) = &r.remote {
        out.info(&format!("Remote command: {rc}"));
    }
    let waiting = b.info.status() == "WAITING_FOR_WALS";
    if !r.get_wal && waiting {
        out.warning(
            "IMPORTANT: You have requested a recovery operation for a backup that does not have \
             yet all the WAL files that are required for consistency.",
        );
    }
    if r.copy_partial {
        if r.get_wal {
            out.warning("The --partial-wal option was ignored as it only works with --no-get-wal.");
        } else if r.targets.immediate {
            out.warning(
                "The --partial-wal option was ignored as it has no effect with --target-immediate.",
            );
        }
    }

    // PITR targets.
    let entries = xlogdb::read_entries(&cat.xlogdb_file()).unwrap_or_default();
    let backup_tli = b.info.get_int("timeline").unwrap_or(1) as u32;
    let latest = targets::latest_timeline(&entries);
    let t = &r.targets;
    let resolved_tli = t
        .tli
        .as_deref()
        .and_then(|x| targets::resolve_tli(x, backup_tli, latest.or(Some(backup_tli))));
    let pitr = t.is_pitr();
    let mut time_text = None;
    let wal_dest = if pitr {
        if let Some(text) = &t.time {
            let parsed = match targets::parse_time(text, &jiff::tz::TimeZone::system()) {
                Ok(p) => p,
                Err(e) => {
                    out.error(&format!(
                        "Unable to parse the target time parameter {}: {e}",
                        targets::py_str_repr(text)
                    ));
                    return None;
                }
            };
            if parsed.naive {
                out.warning(
                    "No time zone has been specified through '--target-time' command-line \
                     option. Barman assumed the same time zone from the Barman host.",
                );
            }
            if let Some(end) = b
                .info
                .get("end_time")
                .and_then(|e| targets::parse_time(e, &jiff::tz::TimeZone::UTC).ok())
            {
                if end.at.timestamp() > parsed.at.timestamp() {
                    out.error(&format!(
                        "The requested target time {} is before the backup end time {}",
                        python_aware(&parsed.at),
                        python_aware(&end.at)
                    ));
                    return None;
                }
            }
            time_text = Some(python_aware(&parsed.at));
        }
        out.info(&format!(
            "Doing PITR. Recovery target {}",
            t.describe(time_text.as_deref(), resolved_tli)
        ));
        r.wal_dest
            .clone()
            .map(PathBuf::from)
            .unwrap_or_else(|| dest.join("barman_wal"))
    } else {
        if t.action.is_some() {
            out.error("Can't enable recovery target action when PITR is not required");
            return None;
        }
        dest.join(if version < 100000 {
            "pg_xlog"
        } else {
            "pg_wal"
        })
    };

    // Smart copy horizon from an earlier restore in the destination.
    if let Ok(text) = fs::read_to_string(dest.join(".barman-recover.info")) {
        if let (Ok(prev), Some(ours)) = (
            crate::catalog::backup_info::BackupInfo::parse(&text),
            b.info.get("begin_time"),
        ) {
            let parse = |s: &str| targets::parse_time(s, &jiff::tz::TimeZone::UTC).ok();
            if let (Some(a), Some(p)) = (parse(ours), prev.get("begin_time").and_then(parse)) {
                let min = if a.at.timestamp() <= p.at.timestamp() {
                    a.at
                } else {
                    p.at
                };
                out.info(&format!(
                    "Using safe horizon time for smart rsync copy: {}",
                    python_aware(&min)
                ));
            }
        }
    }

    out.info("Copying the base backup.");
    // Barman's local restore of an incremental runs pg_combinebackup
    // straight into the destination, with these lines and no tablespace
    // list; barman-rs combines natively (chain.rs) under the same words.
    let combining = r.remote.is_none() && chain::is_incremental(b);
    if combining {
        out.info(&format!(
            "Start combining backup via pg_combinebackup for backup {} on {}",
            b.id, r.dest
        ));
    }
    let copied = match &r.remote {
        Some(rc) => remote::copy_backup(rc, r, cat, tablespaces).map(|()| None),
        None => copy_base(r, cat, tablespaces, &dest),
    };
    let combine_time = match copied {
        Ok(t) => t,
        Err(e) => {
            out.error(&format!("Failure copying base backup: {e}"));
            return None;
        }
    };
    if combining {
        out.info(&format!(
            "End combining backup via pg_combinebackup for backup {}",
            b.id
        ));
    }
    for t in tablespaces.iter().filter(|_| !combining) {
        out.info(&format!(
            "\t{}, {}, {}",
            t.oid.repr(),
            t.name,
            r.location(t)
        ));
    }

    if let Some(rc) = &r.remote {
        if let Err(e) = remote::finish_copy(rc, r, cat) {
            out.error(&e);
            return None;
        }
    } else {
        if let Err(e) = finish_local_copy(r, &dest, combine_time) {
            out.error(&e);
            return None;
        }
    }

    // The WAL, unless PostgreSQL fetches it with get-wal.
    if !r.get_wal {
        if waiting {
            let still = backups::load(cat)
                .ok()
                .and_then(|l| l.into_iter().find(|x| x.id == b.id))
                .is_some_and(|x| x.info.status() == "WAITING_FOR_WALS");
            if still {
                out.warning(
                    "IMPORTANT: The backup we have restored IS NOT VALID. Required WAL files for \
                     consistency are missing. Please verify that WAL archiving is working \
                     correctly or evaluate using the 'get-wal' option for recovery",
                );
            }
        }
        if r.remote.is_none() {
            if let Err(e) = mkdir_mode(&wal_dest, 0o700) {
                out.error(&format!(
                    "unable to initialise WAL destination directory '{}': {e}",
                    r.wal_dest.as_deref().unwrap_or("None")
                ));
                return None;
            }
        }
        out.info("Copying required WAL segments.");
        let seg = b.info.get_int("xlog_segment_size").unwrap_or(16 << 20) as u64;
        let begin = b.info.get("begin_wal").unwrap_or_default().to_string();
        let end = b.info.get("end_wal").unwrap_or_default().to_string();
        let required = targets::required_wals(
            &entries,
            &Required {
                begin_wal: &begin,
                end_wal: &end,
                segment_size: seg,
                target_tli: resolved_tli,
                target_lsn: t.lsn.as_deref(),
                immediate: t.immediate,
                include_partial: r.copy_partial,
                pg12: version >= 120000,
            },
        );
        let intake = match ServerIntake::from_config(r.cfg, r.lock_dir, r.config_file) {
            Ok(i) => i,
            Err(e) => {
                out.error(&e);
                return None;
            }
        };
        let copied = match &r.remote {
            Some(rc) => remote::copy_wals(rc, &intake, &required, &wal_dest, r.jobs),
            None => wal::copy(&intake, &required, &wal_dest, r.jobs),
        };
        if let Err(e) = copied {
            out.error(&format!("Failure copying WAL files: {e}"));
            return None;
        }
        if !pitr {
            out.info("Generating archive status files");
            let marked = match &r.remote {
                Some(rc) => remote::mark_done(rc, &wal_dest, &required),
                None => wal::mark_done(&wal_dest, &required),
            };
            if let Err(e) = marked {
                out.error(&format!("unable to populate archive_status directory: {e}"));
                return None;
            }
        }
    }

    // The recovery configuration.
    let mut append = Vec::new();
    if pitr || r.get_wal || r.standby {
        out.info("Generating recovery configuration");
        let fetch = if r.get_wal {
            res.get_wal = true;
            if let Some(c) = &r.custom_restore_command {
                let escaped = c.replace('\'', "''");
                out.info(&format!(
                    "Custom restore command override: restore_command = '{escaped}'"
                ));
                Fetch::Custom(escaped)
            } else if r.remote.is_some() {
                Fetch::WalRestore {
                    user: r.barman_user.to_string(),
                    port: r.recovery_option_port.clone(),
                    host: fqdn(),
                    server: r.cfg.name.clone(),
                    jobs: r.jobs as u64,
                }
            } else {
                Fetch::GetWal {
                    user: r.barman_user.to_string(),
                    server: r.cfg.name.clone(),
                }
            }
        } else if !r.standby {
            if r.custom_restore_command.is_some() {
                out.warning(
                    "The provided custom restore command was ignored as it only works with \
                     get-wal mode.",
                );
            }
            Fetch::Copy {
                wal_dest: wal_dest.display().to_string(),
            }
        } else {
            Fetch::None
        };
        let tli_text = t.tli.clone();
        append = conf::recovery_lines(&RecoverySettings {
            fetch,
            standby: r.standby,
            time: time_text.as_deref(),
            xid: t.xid.as_deref(),
            lsn: t.lsn.as_deref(),
            name: t.name.as_deref(),
            immediate: t.immediate,
            exclusive: t.exclusive,
            tli: tli_text.as_deref(),
            action: if pitr { t.action.as_deref() } else { None },
        });
        let signal = if r.standby {
            "standby.signal"
        } else {
            "recovery.signal"
        };
        let written = match &r.remote {
            Some(rc) => remote::touch(rc, &dest.join(signal)),
            None => fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(dest.join(signal))
                .map(|_| ())
                .map_err(|e| format!("cannot create '{}': {e}", dest.join(signal).display())),
        };
        if let Err(e) = written {
            out.error(&e);
            return None;
        }
    }
    let status_dir = wal_dest.join("archive_status");
    let made = match &r.remote {
        Some(rc) => remote::mkdir(rc, &status_dir),
        None => fs::create_dir_all(&status_dir).map_err(|e| e.to_string()),
    };
    if let Err(e) = made {
        out.error(&format!(
            "unable to create the archive_status directory '{}': {e}",
            status_dir.display()
        ));
        return None;
    }

    out.info("Identify dangerous settings in destination directory.");
    let mut files = vec!["postgresql.conf".to_string()];
    if version >= 90400 {
        files.push("postgresql.auto.conf".into());
    }
    let mut present = Vec::new();
    for f in files
        .iter()
        .map(String::as_str)
        .chain(["pg_hba.conf", "pg_ident.conf"])
    {
        let exists = match &r.remote {
            Some(rc) => remote::exists(rc, &dest.join(f)),
            None => dest.join(f).exists(),
        };
        if !exists {
            res.missing.push(f.to_string());
        } else if files.iter().any(|x| x == f) {
            present.push(f.to_string());
        }
    }
    if version >= 120000 && !present.contains(&res.conf_file) {
        present.push(res.conf_file.clone());
    }
    for f in &present {
        let append_here = if f.ends_with(&res.conf_file) {
            append.as_slice()
        } else {
            &[]
        };
        let done = match &r.remote {
            Some(rc) => remote::mangle(rc, &dest, f, append_here),
            None => mangle_local(&dest, f, append_here),
        };
        match done {
            Ok((changes, warnings)) => {
                res.changes.extend(changes);
                res.warnings.extend(warnings);
            }
            Err(e) => {
                out.error(&e);
                return None;
            }
        }
    }
    RESULTS.with(|c| *c.borrow_mut() = Some(res));
    Some(())
}

/// Rewrites one configuration file of the destination as Barman does
/// (original kept as `<file>.origin`, same mode).
fn mangle_local(
    dest: &Path,
    file: &str,
    append: &[String],
) -> Result<(Vec<Assertion>, Vec<Assertion>), String> {
    let path = dest.join(file);
    let origin = dest.join(format!("{file}.origin"));
    let content = match fs::read(&path) {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("cannot read '{}': {e}", path.display())),
    };
    let mode = fs::metadata(&path)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
        .unwrap_or(0o600);
    let (new, changes) = conf::mangle(file, &content, append);
    let warnings = conf::detect(file, &new);
    if path.exists() {
        fs::rename(&path, &origin)
            .map_err(|e| format!("cannot rename '{}': {e}", path.display()))?;
    } else {
        fs::write(&origin, b"").map_err(|e| format!("cannot write '{}': {e}", origin.display()))?;
    }
    crate::backup::write_synced(&path, &new, mode)
        .map_err(|e| format!("cannot write '{}': {e}", path.display()))?;
    Ok((changes, warnings))
}

fn mkdir_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if p.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(mode).create(p)
}

/// The host's fully qualified name, as Python's `socket.getfqdn()`.
fn fqdn() -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into());
    std::process::Command::new("hostname")
        .arg("-f")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or(host)
}

/// The tar archives of a compressed backup, each with where it goes.
fn tar_archives(
    b: &Backup,
    data: &Path,
    dest: &Path,
    tablespaces: &[Tablespace],
    tablespace_dest: impl Fn(&Tablespace) -> PathBuf,
) -> Result<Vec<untar::Archive>, String> {
    let kind = b.info.get("compression").unwrap_or("none");
    let ext = match kind {
        "gzip" => "tar.gz",
        "lz4" => "tar.lz4",
        "zstd" => "tar.zst",
        "none" => "tar",
        other => return Err(format!("Unexpected compression format: {other}")),
    };
    // Only barman-rs's native copy writes a compressed backup in rsync
    // mode; its archives are many independent frames.
    let framed = b.info.get("mode") == Some("rsync-concurrent");
    let mut archives = Vec::new();
    for t in tablespaces {
        let oid = t.oid.repr();
        archives.push(untar::Archive {
            path: data.join(format!("{oid}.{ext}")),
            dest: tablespace_dest(t),
            manifest_prefix: format!("pg_tblspc/{oid}/"),
            is_base: false,
            framed,
        });
    }
    archives.push(untar::Archive {
        path: data.join(format!("base.{ext}")),
        dest: dest.to_path_buf(),
        manifest_prefix: String::new(),
        is_base: true,
        framed,
    });
    Ok(archives)
}

/// The local copy of the base backup: plain (verified copy), tar, or an
/// incremental chain combined; returns the combination's seconds.
fn copy_base(
    r: &Request<'_>,
    cat: &ServerCatalog,
    tablespaces: &[Tablespace],
    dest: &Path,
) -> Result<Option<f64>, String> {
    if chain::is_incremental(r.backup) {
        let secs = chain::restore(r, cat, tablespaces, dest, &r.staging)?;
        link_tablespaces(r, tablespaces, dest)?;
        return Ok(Some(secs));
    }
    let base = cat.basebackups_directory.join(&r.backup.id);
    let data = base.join("data");
    let manifest = read_manifest(&data)?;
    mkdir_mode(dest, 0o700).map_err(|e| format!("cannot create '{}': {e}", dest.display()))?;
    let compressed = r
        .backup
        .info
        .get("compression")
        .is_some_and(|c| c != "None" && !c.is_empty());
    if compressed {
        let archives = tar_archives(r.backup, &data, dest, tablespaces, |t| {
            PathBuf::from(r.location(t))
        })?;
        untar::restore(&archives, manifest.as_ref(), r.jobs)?;
    } else {
        let mut trees = Vec::new();
        let mut protected = Vec::new();
        for t in tablespaces {
            let oid = t.oid.repr();
            let loc = r.location(t);
            if let Some(inside) = loc.strip_prefix(&format!("{}/", r.dest.trim_end_matches('/'))) {
                protected.push(inside.to_string());
            }
            protected.push(format!("pg_tblspc/{oid}"));
            trees.push(copy::Tree {
                src: base.join(&oid),
                dest: PathBuf::from(loc),
                manifest_prefix: format!("pg_tblspc/{oid}/"),
                is_pgdata: false,
                protected: Vec::new(),
            });
        }
        trees.push(copy::Tree {
            src: data,
            dest: dest.to_path_buf(),
            manifest_prefix: String::new(),
            is_pgdata: true,
            protected,
        });
        copy::restore(
            &trees,
            manifest.as_ref(),
            copy::Options {
                jobs: r.jobs,
                delta: r.delta,
            },
        )?;
    }
    link_tablespaces(r, tablespaces, dest)?;
    Ok(None)
}

/// The backup's `backup_manifest`, when it has one in PostgreSQL's format
/// with CRC32C (a damaged one is an error: it is how corruption shows).
fn read_manifest(data: &Path) -> Result<Option<manifest::Manifest>, String> {
    let path = data.join("backup_manifest");
    match fs::read(&path) {
        Ok(bytes) => manifest::parse(&bytes)
            .map(Some)
            .map_err(|e| format!("'{}': {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read '{}': {e}", path.display())),
    }
}

/// `pg_tblspc/<oid>` → each tablespace's location (Barman's
/// `_link_tablespaces`).
fn link_tablespaces(
    r: &Request<'_>,
    tablespaces: &[Tablespace],
    dest: &Path,
) -> Result<(), String> {
    let dir = dest.join("pg_tblspc");
    fs::create_dir_all(&dir).map_err(|e| {
        format!(
            "unable to initialize tablespace directory '{}': {e}",
            dir.display()
        )
    })?;
    for t in tablespaces {
        let link = dir.join(t.oid.repr());
        let loc = r.location(t);
        let _ = fs::remove_file(&link);
        mkdir_mode(Path::new(&loc), 0o700)
            .and_then(|_| std::os::unix::fs::symlink(&loc, &link))
            .map_err(|e| {
                format!(
                    "unable to prepare '{}' tablespace (destination '{loc}'): {e}",
                    t.name
                )
            })?;
    }
    crate::durable::sync_dir(&dir).map_err(|e| e.to_string())
}

/// `.barman-recover.info` and `backup_manifest.<ID>` in the destination.
/// A combined chain's file records only `copy_stats={'combine_time': …}`,
/// as Barman's CombineOperation leaves it.
fn finish_local_copy(
    r: &Request<'_>,
    dest: &Path,
    combine_time: Option<f64>,
) -> Result<(), String> {
    let info = dest.join(".barman-recover.info");
    let mut recorded = r.backup.info.clone();
    if let Some(secs) = combine_time {
        recorded.set(
            "copy_stats",
            Some(crate::backup::copy_stats_repr(&[("combine_time", secs)])),
        );
    }
    crate::backup::write_synced(&info, recorded.render().as_bytes(), 0o600)
        .map_err(|e| format!("cannot write '{}': {e}", info.display()))?;
    let manifest = dest.join("backup_manifest");
    if manifest.exists() {
        let to = dest.join(format!("backup_manifest.{}", r.backup.id));
        fs::rename(&manifest, &to)
            .map_err(|e| format!("cannot rename '{}': {e}", manifest.display()))?;
    }
    Ok(())
}
