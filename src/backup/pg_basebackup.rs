//! `backup_method = postgres`: pg_basebackup run with Barman's exact
//! arguments over the streaming connection, its output logged, retried as
//! `basebackup_retry_times` says; then the metadata Barman reads back
//! (backup_label, from the plain directory or from inside the tar).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{label, Failure, Job};
use crate::config::ServerConfig;
use crate::postgres::conninfo;
use crate::postgres::session::Session;
use crate::server::find_tool;

/// pg_basebackup's compression settings (Barman's
/// `PgBaseBackupCompression`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    pub kind: String,
    pub format: String,
    pub level: Option<i64>,
    pub location: Option<String>,
    pub workers: Option<i64>,
}

impl Compression {
    pub fn from_config(cfg: &ServerConfig) -> Option<Compression> {
        let kind = cfg.get_str("backup_compression")?.to_string();
        Some(Compression {
            kind,
            format: cfg
                .get_str("backup_compression_format")
                .unwrap_or("tar")
                .to_string(),
            level: cfg.get_int("backup_compression_level"),
            location: cfg
                .get_str("backup_compression_location")
                .map(str::to_string),
            workers: cfg.get_int("backup_compression_workers"),
        })
    }

    /// `--format=... --compress=[location-]type[:level=N[,workers=N]]`
    /// (pg_basebackup 15+ syntax).
    pub fn args(&self) -> Vec<String> {
        let mut arg = String::from("--compress=");
        if let Some(l) = &self.location {
            arg.push_str(l);
            arg.push('-');
        }
        arg.push_str(&self.kind);
        let mut detail = Vec::new();
        if let Some(l) = self.level {
            detail.push(format!("level={l}"));
        }
        if let Some(w) = self.workers {
            detail.push(format!("workers={w}"));
        }
        if !detail.is_empty() {
            arg.push(':');
            arg.push_str(&detail.join(","));
        }
        vec![format!("--format={}", self.format), arg]
    }

    pub fn tar_name(&self, base: &str) -> String {
        tar_name(&self.kind, base)
    }
}

/// `base` plus the tar suffix of `backup_compression = kind` (Barman's
/// `file_extension`): `base.tar.lz4` and the like.
pub fn tar_name(kind: &str, base: &str) -> String {
    match kind {
        "gzip" => format!("{base}.tar.gz"),
        "lz4" => format!("{base}.tar.lz4"),
        "zstd" => format!("{base}.tar.zst"),
        _ => format!("{base}.tar"),
    }
}

/// Barman's streaming DSN: the streaming conninfo's parameters sorted, plus
/// the replication ones, then `application_name` unless given.
pub fn dsn(cfg: &ServerConfig) -> Result<String, String> {
    let text = cfg.get_str("streaming_conninfo").unwrap_or_default();
    let app = cfg
        .get_str("streaming_backup_name")
        .unwrap_or("barman_streaming_backup");
    conninfo::replication_dsn(text, app)
}

/// The full pg_basebackup command line Barman would run.
pub fn arguments(
    cfg: &ServerConfig,
    dest: &Path,
    tablespaces: &[(String, PathBuf)],
    bwlimit: Option<u64>,
    immediate: bool,
    compression: Option<&Compression>,
    incremental: Option<&Path>,
) -> Result<Vec<String>, String> {
    let mut args = vec![
        format!("--dbname={}", dsn(cfg)?),
        "-v".into(),
        "--no-password".into(),
        format!("--pgdata={}", dest.display()),
        "--no-slot".into(),
        "--wal-method=none".into(),
    ];
    for (src, dst) in tablespaces {
        args.push(format!("--tablespace-mapping={src}={}", dst.display()));
    }
    if let Some(b) = bwlimit.filter(|b| *b > 0) {
        args.push(format!("--max-rate={b}"));
    }
    if let Some(m) = incremental {
        args.push(format!("--incremental={}", m.display()));
    }
    if immediate {
        args.push("--checkpoint=fast".into());
    }
    if let Some(c) = compression {
        args.extend(c.args());
    }
    Ok(args)
}

/// Empties and recreates each destination with mode 0700, as Barman's
/// `_prepare_backup_destination`.
fn prepare(dirs: &[PathBuf]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for d in dirs {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d)?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Runs pg_basebackup once, logging its output; Err holds stdout+stderr.
fn run_once(tool: &Path, args: &[String]) -> Result<(), String> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", tool.display()))?;
    let stdout = child.stdout.take();
    let out_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut o) = stdout {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let mut err_text = String::new();
    if let Some(e) = child.stderr.take() {
        for line in BufReader::new(e).lines().map_while(Result::ok) {
            log::info!("{line}");
            err_text.push_str(&line);
            err_text.push('\n');
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let out_text = out_thread.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(format!("{out_text}{err_text}"))
    }
}

/// The postgres method: returns whether every file is already fsynced
/// (pg_basebackup syncs its own output).
pub fn run(job: &mut Job<'_>, action: &mut String) -> Result<bool, Failure> {
    *action = "initialising postgres backup_method".into();
    let conninfo = job.cfg.get_str("conninfo").unwrap_or_default().to_string();
    let session = Session::open(&conninfo, std::time::Duration::from_secs(30))
        .map_err(|e| Failure::new(action, e))?;
    *action = "detecting data directory".into();
    let meta = session.metadata().map_err(|e| Failure::new(action, e))?;
    job.record_metadata(&meta);
    let start = session
        .current_location()
        .map_err(|e| Failure::new(action, e))?;
    job.record_start(&start);
    job.save()?;
    job.print_start();

    *action = "copying files".into();
    let line = format!("Starting backup copy via pg_basebackup for {}", job.id);
    job.out.info(&line);
    job.mark_copy_start();
    let dest = job.data_dir();
    let mut dirs = vec![dest.clone()];
    let mut mapping = Vec::new();
    for (_, oid, loc) in &meta.tablespaces {
        let d = job.base_dir().join(oid.to_string());
        mapping.push((loc.clone(), d.clone()));
        dirs.push(d);
    }
    let compression = Compression::from_config(job.cfg);
    // Barman passes --incremental only while the parent is readable.
    let parent_manifest = job
        .info
        .get("parent_backup_id")
        .filter(|p| super::incremental::parent_exists(&job.cat, p))
        .map(|p| super::incremental::parent_manifest(&job.cat, p));
    let tool = find_tool(job.cfg, &["pg_basebackup"])
        .path
        .ok_or_else(|| Failure::new("copying files", "pg_basebackup not found"))?;
    let args = arguments(
        job.cfg,
        &dest,
        &mapping,
        job.plan.bwlimit,
        job.plan.immediate,
        compression.as_ref(),
        parent_manifest.as_deref(),
    )
    .map_err(|e| Failure::new(action, e))?;
    // The copy does not need the SQL session; Barman closes it too.
    drop(session);
    prepare(&dirs).map_err(|e| Failure::new(action, e))?;
    let mut attempt = 0;
    loop {
        match run_once(&tool, &args) {
            Ok(()) => break,
            Err(text) if attempt < job.plan.retry_times => {
                attempt += 1;
                log::debug!("pg_basebackup failed: {text}");
                job.out.warning(&format!(
                    "Failure executing a backup using pg_basebackup (attempt {attempt})"
                ));
                job.out.warning(&format!(
                    "The files copied so far will be removed and the backup process will restart in {} seconds",
                    job.plan.retry_sleep
                ));
                std::thread::sleep(super::retry_pause(job.plan.retry_sleep));
                prepare(&dirs).map_err(|e| Failure::new("copying files", e))?;
            }
            Err(text) => {
                return Err(Failure::new(
                    "copying files",
                    format!(
                        "data transfer failure on directory '{}'\npg_basebackup error:\n{text}",
                        dest.display()
                    ),
                ))
            }
        }
    }
    let secs = job.copy_seconds();
    job.set(
        "copy_stats",
        Some(super::copy_stats_repr(&[
            ("copy_time", secs),
            ("total_time", secs),
        ])),
    );
    job.print_copy_done(secs);

    // Barman's PostgresBackupStrategy.stop_backup.
    if let Some(c) = compression.as_ref().filter(|c| c.format != "plain") {
        job.set("compression", Some(c.kind.clone()));
    }
    *action = "reading the backup label".into();
    let text = match compression.as_ref().filter(|c| c.format != "plain") {
        Some(c) => {
            let tar = dest.join(c.tar_name("base"));
            read_from_tar(&tar, "backup_label").map_err(|e| Failure::new(action, e))?
        }
        None => std::fs::read_to_string(dest.join("backup_label")).map_err(|e| {
            Failure::new(
                action,
                format!("{}: {e}", dest.join("backup_label").display()),
            )
        })?,
    };
    job.set(
        "backup_label",
        Some(crate::config::types::python_repr_str(&text)),
    );
    let parsed = label::parse(&text).ok_or_else(|| {
        Failure::new(
            action,
            format!("Failure parsing backup_label for backup {}", job.id),
        )
    })?;
    job.set("timeline", Some(parsed.timeline.to_string()));
    job.set("begin_xlog", Some(parsed.start_lsn_text.clone()));
    job.set("begin_wal", Some(parsed.start_wal.clone()));
    job.set(
        "begin_offset",
        Some((parsed.start_lsn % job.segment_size()).to_string()),
    );
    *action = "stopping postgres backup_method".into();
    job.out.info("Finalising the backup.");
    let session = Session::open(&conninfo, std::time::Duration::from_secs(30))
        .map_err(|e| Failure::new(action, e))?;
    if let Ok(loc) = session.current_location() {
        job.record_stop(&loc);
    }
    let _ = session.switch_wal();
    job.purge_before_first();
    session.create_restore_point(&format!("barman_{}", job.id));
    Ok(true)
}

/// A tar archive's bytes, decompressed by its suffix (`.gz`, `.lz4`, `.zst`).
pub fn tar_reader(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let file = std::fs::File::open(path)?;
    let file = std::io::BufReader::with_capacity(1 << 20, file);
    Ok(match path.extension().and_then(|e| e.to_str()) {
        Some("gz") => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Some("lz4") => Box::new(Lz4Frames(lz4_flex::frame::FrameDecoder::new(file))),
        Some("zst") => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
        _ => Box::new(file),
    })
}

/// An LZ4 stream of concatenated frames (the native copy writes one frame
/// per piece): lz4_flex's decoder reports the end of each frame as the end
/// of input, so read on while input remains.
struct Lz4Frames<R: std::io::BufRead>(lz4_flex::frame::FrameDecoder<R>);

impl<R: std::io::BufRead> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.0.read(buf)?;
            if n > 0 || buf.is_empty() || self.0.get_mut().fill_buf()?.is_empty() {
                return Ok(n);
            }
        }
    }
}

/// One member of a (possibly compressed) tar, by name.
pub fn read_from_tar(path: &Path, member: &str) -> Result<String, String> {
    let reader = tar_reader(path)
        .map_err(|e| format!("Could not find {member} in {}: {e}", path.display()))?;
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
        let name = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        if name.trim_start_matches("./") == member {
            let mut s = String::new();
            entry.read_to_string(&mut s).map_err(|e| e.to_string())?;
            return Ok(s);
        }
    }
    Err(format!("Could not find {member} in {}", path.display()))
}
