//! Real PostgreSQL clusters for tests, of every major barman-rs supports,
//! from `scripts/install-postgres.sh` (`$BARMAN_RS_PG_ROOT`, by default
//! `/opt/barman-rs-pg/<major>/bin`). A test that needs a major which is not
//! installed fails naming the install command: nothing is skipped.
//! `BARMAN_RS_TEST_PG` picks the major of the suite's default clusters (15
//! unless set; CI runs the suite on 15 and on 18).
//!
//! PostgreSQL refuses to run as root, so clusters run as the `postgres`
//! user (via `runuser` when the tests run as root) in a directory that user
//! owns, listening only on a unix socket inside it. A template data
//! directory is initdb'd once per major and copied per cluster. Every
//! cluster lives under `$TMPDIR/barman-rs-it/`, so `.ci/run` can stop
//! leftovers of a killed test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every major the matrix installs.
pub const MAJORS: [u32; 6] = [13, 14, 15, 16, 17, 18];

/// The major of the suite's default clusters.
pub fn default_major() -> u32 {
    match std::env::var("BARMAN_RS_TEST_PG") {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|m| MAJORS.contains(m))
            .unwrap_or_else(|| panic!("BARMAN_RS_TEST_PG={v}: not one of {MAJORS:?}")),
        Err(_) => 15,
    }
}

/// `bin/` of PostgreSQL `major`: the server's programs and client tools.
pub fn bindir_of(major: u32) -> PathBuf {
    let root = std::env::var_os("BARMAN_RS_PG_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/barman-rs-pg"));
    let bin = root.join(major.to_string()).join("bin");
    assert!(
        bin.join("postgres").exists() && bin.join("psql").exists(),
        "PostgreSQL {major} is not installed in {}: run `bash scripts/install-postgres.sh {major}` as root",
        bin.display()
    );
    bin
}

/// `bin/` of the default major (for `path_prefix` and client tools).
pub fn bindir() -> PathBuf {
    bindir_of(default_major())
}

/// Whether PostgreSQL `major` was built with `feature` (`lz4`, `zstd`,
/// `openssl`...), from `pg_config --configure`.
pub fn built_with(major: u32, feature: &str) -> bool {
    let out = Command::new(bindir_of(major).join("pg_config"))
        .arg("--configure")
        .output()
        .expect("run pg_config");
    String::from_utf8_lossy(&out.stdout).contains(&format!("'--with-{feature}'"))
}

fn am_root() -> bool {
    nix::unistd::getuid().is_root()
}

/// Runs a PostgreSQL program of `major` as the postgres user.
fn pg_cmd_of(major: u32, program: &str) -> Command {
    let path = bindir_of(major).join(program);
    if am_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
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

/// One initdb'd template per major and checksum setting, shared by every
/// test process (nextest runs each test in its own process), built once
/// under a file lock and copied per cluster: `cp -a` takes ~0.07 s where
/// initdb takes ~0.6 s. Checksums are set explicitly both ways, as 18
/// turned them on by default.
fn template(major: u32, checksums: bool) -> PathBuf {
    let root = root_dir();
    let dir = root.join(format!(
        "template-{major}{}",
        if checksums { "-k" } else { "" }
    ));
    let data = dir.join("data");
    let _lock =
        barman::catalog::lock::acquire(&root.join(".template.lock"), true).expect("template lock");
    if dir.join("ready").exists() {
        return data;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    chown_postgres(&dir);
    let mut initdb = pg_cmd_of(major, "initdb");
    if checksums {
        initdb.arg("--data-checksums");
    } else if major >= 18 {
        initdb.arg("--no-data-checksums");
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
        "initdb of PostgreSQL {major} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join("ready"), "").unwrap();
    data
}

/// A running cluster; stopped (and removed) on drop.
pub struct PgCluster {
    pub major: u32,
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
        PgCluster::start_major(default_major(), name, extra, checksums)
    }

    /// A cluster of PostgreSQL `major`.
    pub fn start_major(major: u32, name: &str, extra: &str, checksums: bool) -> PgCluster {
        let dir = root_dir().join(format!("{name}-{major}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let data = dir.join("data");
        let st = Command::new("cp")
            .arg("-a")
            .arg(template(major, checksums))
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
            major,
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
        let out = self
            .cmd("psql")
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
    /// A program of this cluster's major, run as postgres.
    pub fn cmd(&self, program: &str) -> Command {
        pg_cmd_of(self.major, program)
    }

    /// `bin/` of this cluster's major.
    pub fn bindir(&self) -> PathBuf {
        bindir_of(self.major)
    }

    fn pg_ctl(&self, opts: &[&str], action: &str) {
        let status = self
            .cmd("pg_ctl")
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

impl PgCluster {
    /// The primary rebuilt in place: same socket, port and settings, a new
    /// initdb, hence a new system identifier (the template's copies all
    /// share one).
    pub fn rebuild(&self) {
        self.pg_ctl(&["-m", "fast"], "stop");
        let old = self.dir.join("data-before-rebuild");
        std::fs::rename(&self.data, &old).unwrap();
        let mut initdb = self.cmd("initdb");
        if self.major >= 18 {
            initdb.arg("--no-data-checksums");
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
            .arg(&self.data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for f in ["postgresql.conf", "pg_hba.conf"] {
            std::fs::copy(old.join(f), self.data.join(f)).unwrap();
        }
        chown_postgres(&self.data);
        self.pg_ctl(&["-t", "30"], "start");
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .cmd("pg_ctl")
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

/// Runs a PostgreSQL client program (pgbench, pg_verifybackup...) of the
/// default major as the postgres user.
pub fn pg_program(program: &str) -> Command {
    pg_cmd_of(default_major(), program)
}

/// A cluster started on a recovered directory; stopped on drop, even when
/// the test fails.
pub struct Recovered {
    pub major: u32,
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
        Recovered::start_major(default_major(), data, socket, port, log, opts)
    }

    /// Starts PostgreSQL `major` on `data` with `opts` as server options.
    pub fn start_major(
        major: u32,
        data: &Path,
        socket: &Path,
        port: u16,
        log: &Path,
        opts: &str,
    ) -> Recovered {
        let rec = Recovered {
            major,
            data: data.to_path_buf(),
            socket: socket.to_path_buf(),
            port,
            log: log.to_path_buf(),
        };
        let opts = format!(
            "-p {port} -k {} -c listen_addresses='' {opts}",
            socket.display()
        );
        let st = pg_cmd_of(major, "pg_ctl")
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
        let out = pg_cmd_of(self.major, "psql")
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
        let _ = pg_cmd_of(self.major, "pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
