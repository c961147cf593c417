//! Real PostgreSQL 15 clusters for tests. PostgreSQL refuses to run as
//! root, so clusters run as the `postgres` user (via `runuser` when the
//! tests run as root) in a directory that user owns, listening only on a
//! unix socket inside it. A template data directory is initdb'd once per
//! test process and copied per cluster. Every cluster lives under
//! `$TMPDIR/barman-rs-it/`, so `.ci/run` can stop leftovers of a killed test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

pub const BINDIR: &str = "/usr/lib/postgresql/15/bin";

fn am_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// Runs a PostgreSQL program as the postgres user.
fn pg_cmd(program: &str) -> Command {
    let path = format!("{BINDIR}/{program}");
    if am_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn chown_postgres(path: &Path) {
    if am_root() {
        let st = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .expect("chown");
        assert!(st.success(), "chown {}", path.display());
    }
}

pub fn root_dir() -> PathBuf {
    let root = std::env::temp_dir().join("barman-rs-it");
    std::fs::create_dir_all(&root).expect("create cluster root");
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).ok();
    root
}

/// One initdb'd template for every test process (nextest runs each test
/// in its own process), built once under a file lock and copied per
/// cluster: `cp -a` takes ~0.07 s where initdb takes ~0.6 s.
fn template(checksums: bool) -> &'static Path {
    static PLAIN: OnceLock<PathBuf> = OnceLock::new();
    static CHECKSUMS: OnceLock<PathBuf> = OnceLock::new();
    let cell = if checksums { &CHECKSUMS } else { &PLAIN };
    cell.get_or_init(|| {
        let root = root_dir();
        let dir = root.join(if checksums {
            "template-15-k"
        } else {
            "template-15"
        });
        let data = dir.join("data");
        let _lock = barman::catalog::lock::acquire(&root.join(".template.lock"), true)
            .expect("template lock");
        if dir.join("ready").exists() {
            return data;
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        chown_postgres(&dir);
        let mut initdb = pg_cmd("initdb");
        if checksums {
            initdb.arg("--data-checksums");
        }
        let out = initdb
            .args([
                "--no-sync",
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale",
                "C",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(dir.join("ready"), "").unwrap();
        data
    })
}

/// A running cluster; stopped (and removed) on drop.
pub struct PgCluster {
    pub dir: PathBuf,
    pub data: PathBuf,
    pub socket: PathBuf,
    pub port: u16,
}

impl PgCluster {
    /// Starts a cluster with `extra` lines appended to postgresql.conf.
    pub fn start(name: &str, extra: &str) -> PgCluster {
        PgCluster::start_with(name, extra, false)
    }

    /// As [`PgCluster::start`], optionally with data checksums on.
    pub fn start_with(name: &str, extra: &str, checksums: bool) -> PgCluster {
        let dir = root_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data");
        let st = Command::new("cp")
            .arg("-a")
            .arg(template(checksums))
            .arg(&data)
            .status()
            .unwrap();
        assert!(st.success());
        let socket = dir.clone();
        // A port derived from the directory keeps concurrent clusters apart
        // even though they only listen on their own socket directory.
        let port = 20000 + (std::process::id() % 20000) as u16;
        let conf = format!(
            "listen_addresses = ''\nunix_socket_directories = '{}'\nport = {port}\nfsync = off\n{extra}\n",
            socket.display()
        );
        let mut text = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        text.push_str(&conf);
        std::fs::write(data.join("postgresql.conf"), text).unwrap();
        chown_postgres(&dir);
        let cluster = PgCluster {
            dir,
            data,
            socket,
            port,
        };
        cluster.pg_ctl(&["-t", "30"], "start");
        cluster
    }

    pub fn conninfo(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.socket.display(),
            self.port
        )
    }

    /// Runs SQL through psql; returns stdout.
    pub fn psql(&self, sql: &str) -> String {
        let out = pg_cmd("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
                &self.conninfo(),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs `pg_ctl -w <opts> -l log -D data <action>`, failing with the
    /// server log. The postmaster inherits pg_ctl's stdio: never pipes, or
    /// waiting for their end would wait for the server to stop.
    fn pg_ctl(&self, opts: &[&str], action: &str) {
        let status = pg_cmd("pg_ctl")
            .arg("-w")
            .args(opts)
            .arg("-l")
            .arg(self.dir.join("log"))
            .arg("-D")
            .arg(&self.data)
            .arg(action)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "pg_ctl {action} failed: {}",
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    /// Changes settings and restarts.
    pub fn reconfigure(&self, extra: &str) {
        let path = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(extra);
        text.push('\n');
        std::fs::write(&path, text).unwrap();
        self.pg_ctl(&["-m", "fast"], "restart");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = pg_cmd("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a PostgreSQL client program (pgbench, pg_verifybackup...) as the
/// postgres user.
pub fn pg_program(program: &str) -> Command {
    pg_cmd(program)
}

/// A cluster started on a recovered directory; stopped on drop, even when
/// the test fails.
pub struct Recovered {
    pub data: PathBuf,
    pub socket: PathBuf,
    pub port: u16,
    pub log: PathBuf,
}

impl Recovered {
    /// Starts PostgreSQL on `data` (owned by postgres) on its own socket.
    pub fn start(data: &Path, socket: &Path, port: u16, log: &Path) -> Recovered {
        Recovered::start_with(data, socket, port, log, "-c archive_mode=off")
    }

    /// As [`Recovered::start`], with `opts` as server options.
    pub fn start_with(data: &Path, socket: &Path, port: u16, log: &Path, opts: &str) -> Recovered {
        let rec = Recovered {
            data: data.to_path_buf(),
            socket: socket.to_path_buf(),
            port,
            log: log.to_path_buf(),
        };
        let opts = format!(
            "-p {port} -k {} -c listen_addresses='' {opts}",
            socket.display()
        );
        let st = pg_cmd("pg_ctl")
            .args(["-w", "-t", "120", "-l"])
            .arg(log)
            .arg("-D")
            .arg(data)
            .args(["-o", &opts, "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(
            st.success(),
            "the recovered cluster did not start:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        rec
    }

    /// pg_ctl -w returns once hot standby accepts connections: waits for
    /// the end of recovery (promotion) itself.
    pub fn wait_promoted(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while self.psql("SELECT pg_is_in_recovery()") != "f" {
            assert!(
                std::time::Instant::now() < deadline,
                "recovery did not finish:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    pub fn conninfo(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.socket.display(),
            self.port
        )
    }

    pub fn psql(&self, sql: &str) -> String {
        let out = pg_cmd("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .arg(self.conninfo())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Recovered {
    fn drop(&mut self) {
        let _ = pg_cmd("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
