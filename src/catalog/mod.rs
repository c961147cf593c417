//! Barman's on-disk catalog for one server: where its directories are, and
//! creating them as Barman does. The formats inside (backup.info, xlog.db)
//! live in their own modules as they are built.
//!
//! One rule Barman lacks: `barman_home` is never created. A missing one is
//! most often a backup volume that is not mounted, and creating it would
//! fill the root disk with WAL while every command succeeds. Likewise a
//! server directory configured outside barman_home is created only when
//! its parent exists (the root of the volume it lives on).

pub mod backup_ext;
pub mod backup_info;
pub mod backups;
pub mod delete;
pub mod files;
pub mod lock;
pub mod pylit;
pub mod retention;
pub mod wal_check;
pub mod wal_removal;
pub mod xlogdb;

use std::path::{Path, PathBuf};

use crate::config::ServerConfig;

/// barman_home is missing: nothing that would write there may run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("barman_home '{}' does not exist (is its volume mounted?): barman-rs never creates it", .0.display())]
pub struct HomeMissing(pub PathBuf);

/// Ok when `home` is an existing directory (or a symlink to one).
pub fn require_home(home: &Path) -> Result<(), HomeMissing> {
    if home.is_dir() {
        Ok(())
    } else {
        Err(HomeMissing(home.to_path_buf()))
    }
}

/// The directories of one server, resolved from its configuration.
#[derive(Debug, Clone)]
pub struct ServerCatalog {
    pub name: String,
    pub barman_home: PathBuf,
    pub backup_directory: PathBuf,
    pub basebackups_directory: PathBuf,
    pub wals_directory: PathBuf,
    pub incoming_wals_directory: PathBuf,
    pub streaming_wals_directory: PathBuf,
    pub errors_directory: PathBuf,
    pub xlogdb_directory: PathBuf,
}

impl ServerCatalog {
    pub fn new(server: &ServerConfig) -> ServerCatalog {
        ServerCatalog {
            name: server.name.clone(),
            barman_home: server.barman_home.clone(),
            backup_directory: server.path("backup_directory"),
            basebackups_directory: server.path("basebackups_directory"),
            wals_directory: server.path("wals_directory"),
            incoming_wals_directory: server.path("incoming_wals_directory"),
            streaming_wals_directory: server.path("streaming_wals_directory"),
            errors_directory: server.path("errors_directory"),
            xlogdb_directory: server.path("xlogdb_directory"),
        }
    }

    pub fn meta_directory(&self) -> PathBuf {
        self.backup_directory.join("meta")
    }

    pub fn xlogdb_file(&self) -> PathBuf {
        self.xlogdb_directory.join(format!("{}-xlog.db", self.name))
    }

    pub fn identity_file(&self) -> PathBuf {
        self.backup_directory.join("identity.json")
    }

    /// The directories `check` creates, in Barman's order.
    pub fn directories(&self, streaming: bool) -> Vec<&Path> {
        let mut dirs = vec![
            self.backup_directory.as_path(),
            self.basebackups_directory.as_path(),
            self.wals_directory.as_path(),
            self.incoming_wals_directory.as_path(),
        ];
        if streaming {
            dirs.push(self.streaming_wals_directory.as_path());
        }
        dirs.push(self.errors_directory.as_path());
        dirs
    }

    /// Creates every directory (and `meta/`) as Barman's `mkpath` does
    /// (mode 0777 less the umask). Stops at the first failure, naming it.
    pub fn create_directories(&self, streaming: bool) -> Result<(), String> {
        let meta = self.meta_directory();
        for dir in self
            .directories(streaming)
            .into_iter()
            .chain([meta.as_path()])
        {
            self.create_directory(dir)?;
        }
        Ok(())
    }

    /// Creates `dir` and its missing parents, never barman_home itself
    /// nor the parent of a directory configured outside it.
    pub fn create_directory(&self, dir: &Path) -> Result<(), String> {
        if dir.is_dir() {
            return Ok(());
        }
        if dir.starts_with(&self.barman_home) {
            require_home(&self.barman_home).map_err(|e| e.to_string())?;
        } else {
            let root = if dir.starts_with(&self.backup_directory) {
                &self.backup_directory
            } else {
                dir
            };
            let parent = crate::durable::parent(root);
            if !parent.is_dir() {
                return Err(format!(
                    "{}: the parent directory '{}' does not exist (is its volume mounted?): barman-rs never creates it",
                    dir.display(),
                    parent.display()
                ));
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {}", dir.display(), strerror(&e)))
    }
}

/// The C library's message for an I/O error, without Rust's "(os error N)".
pub fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// `errors/<name>.<UTC YYYYMMDDTHHMMSSZ>.<suffix>` as Barman names it; `n` > 0
/// (a name already taken in the same second) adds `-<n>` to the stamp, so
/// Barman's check still counts the file by its suffix.
pub fn errors_destination(errors: &Path, name: &str, suffix: &str, n: usize) -> PathBuf {
    let stamp = jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let stamp = if n == 0 {
        stamp
    } else {
        format!("{stamp}-{n}")
    };
    errors.join(format!("{name}.{stamp}.{suffix}"))
}
