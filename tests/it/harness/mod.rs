//! Test helpers: a temporary barman_home with a config file, the real
//! binary, and PostgreSQL clusters.

pub mod pg;
pub mod sshd;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary barman_home plus configuration file.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::Builder::new()
                .prefix("barman-rs-it-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn home(&self) -> PathBuf {
        self.root().join("home")
    }

    pub fn config_path(&self) -> PathBuf {
        self.root().join("barman.conf")
    }

    /// Writes `barman.conf`, replacing `@HOME@` and `@ROOT@`.
    pub fn write_config(&self, text: &str) -> PathBuf {
        std::fs::create_dir_all(self.home()).expect("home");
        let text = self.expand(text);
        std::fs::write(self.config_path(), text).expect("write config");
        self.config_path()
    }

    pub fn expand(&self, text: &str) -> String {
        text.replace("@HOME@", &self.home().display().to_string())
            .replace("@ROOT@", &self.root().display().to_string())
    }

    /// Replaces this environment's paths back with placeholders.
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.home().display().to_string(), "@HOME@")
            .replace(&self.root().display().to_string(), "@ROOT@")
    }

    /// The real binary with this environment's configuration and `args`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_barman"));
        cmd.arg("-c")
            .arg(self.config_path())
            .args(args)
            .current_dir("/");
        cmd
    }

    /// Runs it and keeps stdout as bytes (get-wal's WAL content).
    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run barman")
    }

    pub fn barman(&self, args: &[&str]) -> Run {
        let out = self.output(args);
        Run {
            stdout: self.redact(&String::from_utf8_lossy(&out.stdout)),
            stderr: self.redact(&String::from_utf8_lossy(&out.stderr)),
            code: out.status.code().unwrap_or(-1),
        }
    }
}

/// Every file under `dir`, relative, sorted (to prove nothing was created).
pub fn tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().display().to_string());
                if p.is_dir() {
                    walk(base, &p, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/barman")
}
