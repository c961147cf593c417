//! WAL intake: every WAL-family file in `streaming/` (when
//! `streaming_archiver` is on) and `incoming/` (when `archiver` is on) is
//! validated, hashed, compressed and filed under `wals/<hash dir>/`, with its
//! xlog.db line, through the [`crate::pipeline`]. One run can serve many
//! servers at once (`cron`): their files share one pool of workers.
//!
//! - [`batch`]: which files a run takes (Barman's `get_next_batch`);
//! - [`worker`]: per file, in parallel: read, validate, hash, compress, stage;
//! - [`committer`]: per batch, in order: rename into place, fsync each
//!   directory once, append to xlog.db, remove the sources, print.
//!
//! Together they follow the crash protocol of [`crate::durable`]: a source
//! is removed only after its archived copy and its xlog.db line are durable.
//!
//! Differences from Barman, all on the side of keeping data:
//! - content is validated (page header, size, timeline, system identifier)
//!   and a file that fails goes to `errors/` with an error, not into the
//!   archive;
//! - a same-content duplicate whose xlog.db line is missing (a crash between
//!   the rename and the append) gets its line instead of being forgotten.

mod batch;
mod committer;
pub mod drive;
mod worker;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::catalog::xlogdb;
use crate::catalog::ServerCatalog;
use crate::compression::{self, Codec, CustomFilters, Settings};
use crate::config::ServerConfig;
use crate::durable;
use crate::hooks::Hooks;
use crate::pipeline::{self, CpuSlots, Width};
use crate::wal::header;
use crate::wal::name::{Kind, WalName};

use batch::file_name;
pub use batch::{next_batch, Batch, Origin};
use committer::{Committer, GroupState, ServerState};
use worker::{work, Task, Worker};

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
    /// `pre`/`post` `archive_script` and `archive_retry_script`.
    pub hooks: Hooks,
}

impl ServerIntake {
    /// Reads the server's settings. Errors name the server and option.
    pub fn from_config(
        cfg: &ServerConfig,
        lock_dir: &Path,
        config_file: &Path,
    ) -> Result<ServerIntake, String> {
        let catalog = ServerCatalog::new(cfg);
        let custom = custom_filters(cfg)?;
        let compression = match cfg.get_str("compression") {
            None => None,
            Some(name) => {
                let codec = Codec::from_config(name).ok_or_else(|| {
                    format!("Unknown compression '{name}' for server '{}'", cfg.name)
                })?;
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
        Ok(ServerIntake {
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
            hooks: Hooks::new(cfg, config_file, "archive"),
        })
    }

    /// Looks up the system identifier files must carry (see
    /// [`known_sysid`]). Only intake needs it: readers such as get-wal skip
    /// the lookup, which may decompress an archived segment.
    pub fn with_system_id(mut self) -> ServerIntake {
        self.sysid = known_sysid(&self);
        self
    }

    pub(super) fn target(&self, name: &WalName) -> PathBuf {
        self.catalog
            .wals_directory
            .join(name.hash_dir())
            .join(&name.name)
    }
}

pub fn custom_filters(cfg: &ServerConfig) -> Result<CustomFilters, String> {
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
    let mut committer = Committer {
        servers,
        stopped: &stopped,
        states: servers
            .iter()
            .map(|s| ServerState {
                sysid: s.sysid,
                ..ServerState::default()
            })
            .collect(),
        groups,
        next_group: 0,
        verbose,
        summary,
        source_dirs: Default::default(),
    };

    // Twice as many workers as CPU slots: fsync waits overlap compression.
    let cpu = CpuSlots::new(jobs);
    pipeline::run(
        Width::new(jobs * 2),
        tasks,
        Worker::default,
        |w, t| work(servers, &stopped, &cpu, w, t),
        |batch| {
            committer.commit(batch, report);
            ControlFlow::Continue(())
        },
    );
    committer.finish(report);
    let mut summary = committer.summary;
    for dir in committer.source_dirs {
        if let Err(e) = durable::sync_dir(&dir) {
            report.warning(&format!("Cannot sync directory {}: {e}", dir.display()));
        }
    }
    summary.failed_servers += committer.states.iter().filter(|s| s.failed).count();
    summary
}
