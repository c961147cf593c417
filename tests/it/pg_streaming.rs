//! A streaming-only site (`archiver = off`, `streaming_archiver = on`, a
//! replication slot) on a real PostgreSQL (15 and 18 in CI): the slot is
//! created by `receive-wal --create-slot` with Barman's messages, `cron`
//! starts the receiver in the background, WAL arrives through streaming/
//! and the intake, `check` is all OK, a backup waits for its WAL and is
//! recovered; pg_receivewal killed with -9 mid-stream, and a PostgreSQL
//! restart, are each followed by a new receiver at the next cron and the
//! archive has no gap; `--stop` and `--drop-slot` end it.

use std::time::{Duration, Instant};

use crate::harness::pg::{PgCluster, Recovered};
use crate::harness::TestEnv;
use crate::pg_backup::mkdir_postgres;

pub(crate) fn ok(env: &TestEnv, args: &[&str]) -> String {
    let run = env.barman(args);
    assert_eq!(
        run.code,
        0,
        "barman {args:?}:\n{}\n{}\n{}",
        run.stdout,
        run.stderr,
        std::fs::read_to_string(env.root().join("barman.log")).unwrap_or_default()
    );
    run.stdout
}

pub(crate) fn wait_for(what: &str, env: &TestEnv, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            std::fs::read_to_string(env.root().join("barman.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub(crate) fn receiver_running(env: &TestEnv) -> bool {
    env.barman(&["check", "pg"])
        .stdout
        .contains("\treceive-wal running: OK\n")
}

/// pg_receivewal's pid, found by its --directory argument.
pub(crate) fn pg_receivewal_pid(env: &TestEnv) -> Option<i32> {
    pg_receivewal_pid_in(&env.home().join("pg/streaming"))
}

/// pg_receivewal's pid, found by the directory it writes to.
pub(crate) fn pg_receivewal_pid_in(dir: &std::path::Path) -> Option<i32> {
    let dir = format!("--directory={}", dir.display());
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        if args.first().is_some_and(|a| a.ends_with(b"pg_receivewal"))
            && args.contains(&dir.as_bytes())
        {
            return Some(pid);
        }
    }
    None
}

/// Segment names in xlog.db are contiguous from the first to the last.
pub(crate) fn assert_no_gap(env: &TestEnv) -> usize {
    let xlog = std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db")).unwrap();
    let mut segs: Vec<u64> = xlog
        .lines()
        .filter_map(|l| l.split('\t').next())
        .filter(|n| n.len() == 24)
        .map(|n| {
            u64::from_str_radix(&n[8..16], 16).unwrap() * 256
                + u64::from_str_radix(&n[16..], 16).unwrap()
        })
        .collect();
    segs.sort();
    segs.dedup();
    for w in segs.windows(2) {
        assert_eq!(w[1], w[0] + 1, "a gap in the archive:\n{xlog}");
    }
    segs.len()
}

#[test]
fn pg_streaming_only_site_archives_backs_up_recovers_and_survives_kill() {
    let pg = PgCluster::start(
        "stream",
        "wal_level = replica\nmax_wal_senders = 4\nmax_replication_slots = 4\n",
    );
    let env = TestEnv::new();
    env.write_config(&format!(
        "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n\n\
         [pg]\ndescription = streaming only\nconninfo = {ci}\nstreaming_conninfo = {ci}\n\
         backup_method = postgres\narchiver = off\nstreaming_archiver = on\nslot_name = barman\n\
         path_prefix = {bin}\nimmediate_checkpoint = true\n",
        ci = pg.conninfo(),
        bin = pg.bindir().display(),
    ));
    let check = env.barman(&["check", "pg"]);
    assert!(
        check.stdout.contains(
            "\treplication slot: FAILED (replication slot 'barman' doesn't exist. \
             Please execute 'barman receive-wal --create-slot pg')\n"
        ),
        "{}",
        check.stdout
    );
    assert_eq!(
        ok(&env, &["receive-wal", "--create-slot", "pg"]),
        "Creating physical replication slot 'barman' on server 'pg'\nReplication slot 'barman' created\n"
    );
    let again = env.barman(&["receive-wal", "--create-slot", "pg"]);
    assert_eq!(again.code, 1);
    assert_eq!(
        again.stderr,
        "ERROR: Replication slot 'barman' already exists\n"
    );
    assert!(ok(
        &env,
        &["receive-wal", "--create-slot", "--if-not-exists", "pg"]
    )
    .contains("already exists and --if-not-exists was specified. Skipping creation"));

    // cron starts the receiver; a second cron leaves it alone.
    let cron = ok(&env, &["cron"]);
    assert!(
        cron.contains("Starting streaming archiver for server pg\n"),
        "{cron}"
    );
    wait_for("the receiver", &env, || receiver_running(&env));
    assert!(!ok(&env, &["cron"]).contains("Starting streaming archiver"));
    let procs = ok(&env, &["list-processes", "pg"]);
    assert!(
        procs.starts_with("Active subprocesses for server pg:\n"),
        "{procs}"
    );
    assert!(
        procs.lines().any(|l| l.ends_with(" receive-wal")),
        "{procs}"
    );
    let status = ok(
        &env,
        &[
            "replication-status",
            "--minimal",
            "--target",
            "wal-streamer",
            "pg",
        ],
    );
    assert!(
        status.starts_with("Wal streamers for master 'pg' (LSN @ "),
        "{status}"
    );
    assert!(status.contains("  1. W) postgres@socket S:"), "{status}");
    assert!(status.contains(" AN:barman_receive_wal\n"), "{status}");
    let full = ok(&env, &["replication-status", "pg"]);
    assert!(full.contains("     Replication slot: barman\n"), "{full}");
    assert!(
        full.contains("     Communication   : Unix domain socket\n"),
        "{full}"
    );
    assert_eq!(
        ok(&env, &["check-wal-archive", "pg"]),
        "Server pg:\n - WAL archive check for server pg passed\n"
    );
    let busy = env.barman(&["receive-wal", "pg"]);
    assert!(
        busy.stderr
            .contains("ERROR: Another receive-wal process is already running for server pg."),
        "{}",
        busy.stderr
    );

    pg.psql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g");
    let switched = ok(
        &env,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "pg",
        ],
    );
    assert!(
        switched.contains("has been closed on server 'pg'"),
        "{switched}"
    );
    let check = ok(&env, &["check", "pg"]);
    assert!(!check.contains("FAILED"), "{check}");
    for line in [
        "\treplication slot: OK\n",
        "\tpg_receivexlog: OK\n",
        "\treceive-wal running: OK\n",
    ] {
        assert!(check.contains(line), "{line:?} in\n{check}");
    }

    ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    pg.psql("CREATE TABLE marker AS SELECT 'before'::text AS tag");
    let want = pg.psql("SELECT md5(string_agg(t::text, ',' ORDER BY g)) FROM t");
    pg.psql("SELECT pg_create_restore_point('stream_rp')");

    // kill -9 of pg_receivewal mid-segment: its barman exits, the next
    // cron starts another, which resumes from the partial file.
    pg.psql("INSERT INTO t SELECT g, 'x' FROM generate_series(50001, 60000) g");
    let victim = pg_receivewal_pid(&env).expect("pg_receivewal runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_for("the receiver to stop", &env, || !receiver_running(&env));
    let cron = ok(&env, &["cron"]);
    assert!(
        cron.contains("Starting streaming archiver for server pg\n"),
        "{cron}"
    );
    wait_for("the receiver again", &env, || {
        pg_receivewal_pid(&env).is_some_and(|p| p != victim)
    });
    pg.psql("INSERT INTO t SELECT g, 'y' FROM generate_series(60001, 70000) g");
    let last = ok(
        &env,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "pg",
        ],
    );
    // A PostgreSQL restart ends pg_receivewal (--no-loop): the next cron
    // starts another, which resumes where the slot is.
    let before = pg_receivewal_pid(&env);
    pg.reconfigure("");
    wait_for("the receiver to end with the server", &env, || {
        pg_receivewal_pid(&env).is_none_or(|p| Some(p) != before) && !receiver_running(&env)
    });
    let cron = ok(&env, &["cron"]);
    assert!(
        cron.contains("Starting streaming archiver for server pg\n"),
        "{cron}"
    );
    wait_for("the receiver after the restart", &env, || {
        receiver_running(&env)
    });
    pg.psql("INSERT INTO t SELECT g, 'z' FROM generate_series(70001, 80000) g");
    ok(
        &env,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "pg",
        ],
    );
    let used = env.barman(&["check-wal-archive", "pg"]);
    assert_eq!(used.code, 1);
    assert_eq!(
        used.stderr,
        "ERROR: WAL archive check failed for server pg: Expected empty archive\n"
    );
    assert!(ok(&env, &["check-wal-archive", "--timeline", "2", "pg"]).contains("passed"));
    // The first backup purged what came before it: its WAL and after.
    let count = assert_no_gap(&env);
    assert!(
        count >= 2,
        "{count} segments after {last}:\n{}",
        std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db")).unwrap()
    );
    let log = std::fs::read_to_string(env.root().join("barman.log")).unwrap();
    assert!(
        log.contains("pg: pg_receivewal: starting log streaming at"),
        "{log}"
    );

    let id = ok(&env, &["list-backups", "--minimal", "pg"])
        .trim()
        .to_string();
    let dest = pg.dir.join("rec");
    let socket = pg.dir.join("rec-sock");
    mkdir_postgres(&socket);
    let out = ok(
        &env,
        &[
            "recover",
            "pg",
            &id,
            dest.to_str().unwrap(),
            "--target-name",
            "stream_rp",
            "--target-action",
            "promote",
        ],
    );
    assert!(out.contains("successfully prepared for recovery"), "{out}");
    let st = std::process::Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&dest)
        .status()
        .unwrap();
    assert!(st.success());
    let rec = Recovered::start(&dest, &socket, pg.port, &pg.dir.join("rec.log"));
    rec.wait_promoted();
    assert_eq!(
        rec.psql("SELECT md5(string_agg(t::text, ',' ORDER BY g)) FROM t"),
        want
    );
    assert_eq!(rec.psql("SELECT tag FROM marker"), "before");
    drop(rec);

    let absent = env.barman(&["terminate-process", "pg", "backup"]);
    assert_eq!(
        absent.stderr,
        "ERROR: Termination of backup failed: no such process for server pg\n"
    );
    let stop = ok(&env, &["receive-wal", "--stop", "pg"]);
    assert!(stop.starts_with("Stopped process receive-wal("), "{stop}");
    let none = env.barman(&["receive-wal", "--stop", "pg"]);
    assert_eq!(
        none.stderr,
        "ERROR: Termination of receive-wal failed: no such process for server pg\n"
    );
    assert_eq!(
        ok(&env, &["list-processes", "pg"]),
        "No active subprocesses found for server pg.\n"
    );
    wait_for("the slot to be released", &env, || {
        pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'barman'") == "f"
    });
    // Another client on the slot: receive-wal refuses, naming it.
    let other = pg.dir.join("other");
    mkdir_postgres(&other);
    let mut thief = crate::harness::pg::pg_program("pg_receivewal")
        .args(["--slot", "barman", "--no-loop", "-D"])
        .arg(&other)
        .arg(format!("--dbname={}", pg.conninfo()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the other client", &env, || {
        pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'barman'") == "t"
    });
    let taken = env.barman(&["receive-wal", "pg"]);
    assert_eq!(taken.code, 1);
    assert!(
        taken
            .stderr
            .contains("ERROR: replication slot 'barman' is already in use\n"),
        "{}",
        taken.stderr
    );
    pg.psql("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'barman'");
    let _ = thief.wait();
    wait_for("the slot to be free again", &env, || {
        pg.psql("SELECT active FROM pg_replication_slots WHERE slot_name = 'barman'") == "f"
    });
    assert_eq!(
        ok(&env, &["receive-wal", "--drop-slot", "pg"]),
        "Dropping physical replication slot 'barman' on server 'pg'\nReplication slot 'barman' dropped\n"
    );
    // With create_slot = manual, a missing slot is an error naming the fix.
    let missing = env.barman(&["receive-wal", "pg"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains(
            "ERROR: replication slot 'barman' doesn't exist. Please execute 'barman receive-wal --create-slot pg'\n"
        ),
        "{}",
        missing.stderr
    );
    // With create_slot = auto, the receiver cron starts creates it.
    let conf = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::write(
        env.config_path(),
        conf.replace(
            "slot_name = barman\n",
            "slot_name = barman\ncreate_slot = auto\n",
        ),
    )
    .unwrap();
    ok(&env, &["cron"]);
    wait_for("the receiver with a slot of its own", &env, || {
        pg.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'barman' AND active")
            == "1"
    });
    let log = std::fs::read_to_string(env.root().join("barman.log")).unwrap();
    assert!(log.contains("Replication slot 'barman' created"), "{log}");
    assert!(ok(&env, &["receive-wal", "--stop", "pg"]).starts_with("Stopped process receive-wal("));
}
