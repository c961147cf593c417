//! Passive nodes, for real: a primary catalog filled by barman-rs from a
//! live PostgreSQL (postgres backups, archive_command WAL), a loopback sshd
//! whose sessions find the primary's `barman` and configuration, and
//! passive nodes pulling over it with `barman cron` (its background
//! sync-backup and sync-wals): barman-rs from barman-rs, Barman 3.19.1
//! from barman-rs, and barman-rs from Barman 3.19.1 serving the same
//! catalog. The barman-rs passive's copy is byte-identical, passes
//! `check`, and recovers into a cluster that starts with the rows.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::sshd::Sshd;
use crate::harness::TestEnv;
use crate::interop::{barman_py, python_barman};
use crate::pg_backup::{field, setup};
use crate::pg_interop_backup::{mark, recover_with, rs_ok};

/// A directory whose `barman` is `exe`, for the primary's PATH.
fn bin_dir(root: &Path, tag: &str, exe: &Path) -> PathBuf {
    let dir = root.join(format!("bin-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(exe, dir.join("barman")).unwrap();
    dir
}

fn primary_sshd(primary: &TestEnv, tag: &str, exe: &Path) -> Sshd {
    let bin = bin_dir(primary.root(), tag, exe);
    Sshd::start_with_env(&[
        ("PATH", format!("{}:/usr/bin:/bin", bin.display())),
        (
            "BARMAN_CONFIG_FILE",
            primary.config_path().display().to_string(),
        ),
    ])
}

/// The passive's `primary_ssh_command`. Barman's sync-info call adds no
/// `-o` options (its `ssh` check does): the host key is accepted here, and
/// ssh's own notices are silenced, as `ssh output clean` requires.
fn passive_env(sshd: &Sshd) -> TestEnv {
    let ssh = sshd.ssh_command().replacen(
        "ssh ",
        "ssh -o StrictHostKeyChecking=no -o LogLevel=ERROR ",
        1,
    );
    let env = TestEnv::new();
    env.write_config(&format!(
        "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n\
         log_level = DEBUG\n\n[pg]\ndescription = passive\nprimary_ssh_command = {ssh}\n\
         compression = gzip\n"
    ));
    env
}

/// Waits until `cond` holds (background sync processes), or fails with
/// the passive's log.
fn wait_for(env: &TestEnv, what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}; log:\n{}",
            std::fs::read_to_string(env.root().join("barman.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status_of(env: &TestEnv, id: &str) -> String {
    std::fs::read_to_string(env.home().join(format!("pg/meta/{id}-backup.info")))
        .map(|t| field(&t, "status"))
        .unwrap_or_default()
}

fn wal_names(xlogdb: &Path) -> Vec<String> {
    std::fs::read_to_string(xlogdb)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect()
}

/// Every regular file under `dir`, relative, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            (
                e.path().strip_prefix(dir).unwrap().display().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// cron twice (the first run starts the backup copy; WAL follows once a
/// local backup exists), waiting for each background copy.
fn sync_with_cron(env: &TestEnv, id: &str, cron: impl Fn(&TestEnv) -> String) {
    let out = cron(env);
    assert!(
        out.contains(&format!("Starting copy of backup {id} for server pg")),
        "{out}"
    );
    wait_for(env, "the backup copy", || status_of(env, id) == "DONE");
    let sync_info = env.home().join("pg/wals/sync-wals.info");
    let out = cron(env);
    assert!(
        out.contains("Started copy of WAL files for server pg"),
        "{out}"
    );
    wait_for(env, "the WAL copy", || sync_info.is_file());
}

#[test]
fn pg_passive_nodes_pull_backups_and_wal_over_ssh_both_ways_with_barman() {
    let (pg, primary) = setup(false, "backup_method = postgres\ncompression = gzip\n");
    mark(&pg, "before", 7);
    rs_ok(
        &primary,
        &["backup", "pg", "--wait", "--wait-timeout", "60"],
    );
    let list = rs_ok(&primary, &["list-backups", "pg", "--minimal"]);
    let id = list.lines().next().unwrap().trim().to_string();
    let primary_xlogdb = primary.home().join("pg/wals/pg-xlog.db");

    // barman-rs passive, barman-rs primary.
    let sshd = primary_sshd(&primary, "rs", Path::new(env!("CARGO_BIN_EXE_barman")));
    let passive = passive_env(&sshd);
    let fresh = passive.barman(&["check", "pg"]);
    assert_eq!(fresh.code, 1, "{}{}", fresh.stdout, fresh.stderr);
    assert!(
        fresh.stdout.contains("\tWAL archive: FAILED"),
        "{}",
        fresh.stdout
    );
    assert!(
        fresh.stdout.contains("\tssh: OK (Barman primary node)"),
        "{}",
        fresh.stdout
    );
    assert!(!fresh.stdout.contains("PostgreSQL"), "{}", fresh.stdout);
    let servers = rs_ok(&passive, &["list-servers"]);
    assert_eq!(servers.trim(), "pg - passive (Passive)");
    let skipped = rs_ok(&passive, &["backup", "pg"]);
    assert!(
        skipped.contains("Skipping passive server 'pg'"),
        "{skipped}"
    );

    sync_with_cron(&passive, &id, |env| rs_ok(env, &["cron"]));
    let info =
        std::fs::read_to_string(passive.home().join(format!("pg/meta/{id}-backup.info"))).unwrap();
    assert_eq!(field(&info, "mode"), "passive");
    let theirs =
        std::fs::read_to_string(primary.home().join(format!("pg/meta/{id}-backup.info"))).unwrap();
    for key in [
        "begin_wal",
        "end_wal",
        "begin_time",
        "end_time",
        "systemid",
        "backup_label",
        "tablespaces",
    ] {
        assert_eq!(field(&info, key), field(&theirs, key), "{key}");
    }
    let base = |e: &TestEnv| e.home().join("pg/base").join(&id);
    assert_eq!(
        files(&base(&passive)),
        files(&base(&primary)),
        "the copy differs"
    );
    let synced = wal_names(&passive.home().join("pg/wals/pg-xlog.db"));
    let begin = field(&info, "begin_wal");
    let want: Vec<String> = wal_names(&primary_xlogdb)
        .into_iter()
        .filter(|n| n.as_str() >= begin.as_str())
        .collect();
    assert_eq!(synced, want);
    let ok = passive.barman(&["check", "pg"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let again = rs_ok(&passive, &["sync-backup", "pg", &id]);
    assert!(
        again.contains(&format!("Backup {id} is already synced with pg server")),
        "{again}"
    );
    let steady = rs_ok(&passive, &["cron"]);
    assert!(
        steady.contains("No WAL synchronisation required for server pg"),
        "{steady}"
    );
    let status = rs_ok(&passive, &["status", "pg"]);
    assert!(status.contains("Passive node: True\n"), "{status}");
    assert!(
        status.contains("SSH command to primary server: ssh "),
        "{status}"
    );
    recover_with(
        rs_ok,
        &pg,
        &passive,
        &id,
        "passive-rs",
        true,
        &[],
        &[("before", 7)],
    );

    // Barman 3.19.1 passive, barman-rs primary.
    let py_passive = passive_env(&sshd);
    sync_with_cron(&py_passive, &id, |env| {
        let out = barman_py(env, &["cron"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    });
    let out = barman_py(&py_passive, &["check", "pg"]);
    assert!(
        out.status.success(),
        "Barman's check: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(files(&base(&py_passive)), files(&base(&primary)));
    // Barman's sync-wals appends without looking (its first cron's
    // sync-wals can race the second's): the same lines may come twice.
    let mut py_wals = wal_names(&py_passive.home().join("pg/wals/pg-xlog.db"));
    py_wals.sort();
    py_wals.dedup();
    let mut unique = want.clone();
    unique.sort();
    assert_eq!(py_wals, unique);
    drop(sshd);

    // barman-rs passive, Barman 3.19.1 serving the same primary catalog.
    let sshd = primary_sshd(&primary, "py", &python_barman());
    let from_py = passive_env(&sshd);
    sync_with_cron(&from_py, &id, |env| rs_ok(env, &["cron"]));
    assert_eq!(files(&base(&from_py)), files(&base(&primary)));
    assert_eq!(wal_names(&from_py.home().join("pg/wals/pg-xlog.db")), want);
    let ok = from_py.barman(&["check", "pg"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
}
