//! Faults on a streaming site, each on a real PostgreSQL: the streaming
//! directory fills up, pg_receivewal and archive_command deliver the same
//! segments while archive-wal and cron race and the walsender is killed,
//! and the primary is rebuilt with a new system identifier. After each,
//! every segment PostgreSQL completed is in the archive exactly once, with
//! no gap, and the backups taken pass `check-backup`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::harness::pg::{PgCluster, Recovered};
use crate::harness::TestEnv;
use crate::pg_backup::mkdir_postgres;
use crate::pg_streaming::{assert_no_gap, ok, pg_receivewal_pid_in, receiver_running, wait_for};

const REPLICATION: &str = "wal_level = replica\nmax_wal_senders = 4\nmax_replication_slots = 4\n";

/// A streaming server `pg` with a slot, `extra` appended to its section;
/// the receiver is started by cron.
fn streaming_site(pg: &PgCluster, env: &TestEnv, extra: &str) {
    env.write_config(&format!(
        "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n\n\
         [pg]\ndescription = streaming faults\nconninfo = {ci}\nstreaming_conninfo = {ci}\n\
         backup_method = postgres\nstreaming_archiver = on\nslot_name = barman\n\
         path_prefix = {bin}\nimmediate_checkpoint = true\n{extra}",
        ci = pg.conninfo(),
        bin = pg.bindir().display(),
    ));
    ok(env, &["receive-wal", "--create-slot", "pg"]);
    ok(env, &["cron"]);
    wait_for("the receiver", env, || receiver_running(env));
}

fn switch_and_archive(env: &TestEnv) -> String {
    ok(
        env,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "pg",
        ],
    )
}

fn xlog_names(env: &TestEnv) -> Vec<String> {
    std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split('\t').next())
        .map(str::to_string)
        .collect()
}

fn check_backup_passes(env: &TestEnv, id: &str) {
    let run = env.barman(&["check-backup", "pg", id]);
    assert_eq!(
        run.code, 0,
        "check-backup {id}: {}{}",
        run.stdout, run.stderr
    );
    let show = ok(env, &["show-backup", "pg", id]);
    assert!(show.contains("Status                 : DONE"), "{show}");
}

/// cron every second (switching WAL while the receiver runs) until
/// `segment` is archived.
fn drain_until(env: &TestEnv, segment: &str) {
    for _ in 0..60 {
        if xlog_names(env).iter().any(|n| n.as_str() >= segment) {
            return;
        }
        ok(env, &["cron"]);
        std::thread::sleep(std::time::Duration::from_secs(1));
        if receiver_running(env) {
            let _ = env.barman(&["switch-wal", "--force", "pg"]);
        }
    }
    panic!(
        "the archive never reached {segment}:\n{}",
        std::fs::read_to_string(env.root().join("barman.log")).unwrap_or_default()
    );
}

/// A size-limited tmpfs, unmounted (lazily) on drop, even on failure.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&dir).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(
            st.success(),
            "mount a tmpfs on {} (this test runs as root)",
            dir.display()
        );
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Recovers `id` to the end of the archive and returns `count(*)` of `t`.
fn recovered_rows(pg: &PgCluster, env: &TestEnv, id: &str) -> String {
    let dest = pg.dir.join("rec");
    let socket = pg.dir.join("rec-sock");
    mkdir_postgres(&socket);
    let out = ok(env, &["recover", "pg", id, dest.to_str().unwrap()]);
    assert!(out.contains("successfully prepared for recovery"), "{out}");
    let st = std::process::Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(&dest)
        .status()
        .unwrap();
    assert!(st.success());
    let rec = Recovered::start(&dest, &socket, pg.port, &pg.dir.join("rec.log"));
    rec.wait_promoted();
    rec.psql("SELECT count(*) FROM t")
}

#[test]
fn pg_streaming_full_disk_stops_the_receiver_and_loses_nothing() {
    let pg = PgCluster::start("sfull", REPLICATION);
    let env = TestEnv::new();
    // Room for two segments: the third pg_receivewal opens finds no space.
    let fs = Tmpfs::mount(env.root().join("streaming-fs"), "40m");
    streaming_site(
        &pg,
        &env,
        &format!(
            "archiver = off\nstreaming_wals_directory = {}\n",
            fs.0.display()
        ),
    );
    pg.psql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 1000) g");
    switch_and_archive(&env);
    ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let id = ok(&env, &["list-backups", "--minimal", "pg"])
        .trim()
        .to_string();

    // About five segments of WAL, with no cron to drain streaming/.
    pg.psql("INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1001, 700000) g");
    let last = pg.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    wait_for("pg_receivewal to stop on the full disk", &env, || {
        pg_receivewal_pid_in(&fs.0).is_none()
    });
    let log = std::fs::read_to_string(env.root().join("barman.log")).unwrap();
    assert!(log.contains("No space left on device"), "{log}");
    assert!(!xlog_names(&env).contains(&last));

    // Each cron drains what is complete and restarts the receiver, which
    // resumes from the slot; the disk fills again until all is through.
    drain_until(&env, &last);
    let closing = pg.psql("SELECT pg_walfile_name(pg_current_wal_lsn())");
    ok(&env, &["switch-wal", "--force", "pg"]);
    drain_until(&env, &closing);
    assert_no_gap(&env);
    assert!(
        std::fs::read_dir(env.home().join("pg/errors"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "nothing went to errors/"
    );
    check_backup_passes(&env, &id);
    ok(&env, &["receive-wal", "--stop", "pg"]);
    assert_eq!(recovered_rows(&pg, &env, &id), "700000");
}

#[test]
fn pg_streaming_and_archive_command_race_on_the_same_segments() {
    let pg = PgCluster::start("srace", REPLICATION);
    let env = TestEnv::new();
    let incoming = pg.dir.join("incoming");
    mkdir_postgres(&incoming);
    pg.reconfigure(&format!(
        "archive_mode = on\narchive_command = 'cp %p {d}/.%f.tmp && mv {d}/.%f.tmp {d}/%f'\n",
        d = incoming.display()
    ));
    streaming_site(
        &pg,
        &env,
        &format!(
            "archiver = on\nincoming_wals_directory = {}\n",
            incoming.display()
        ),
    );
    pg.psql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 1000) g");
    switch_and_archive(&env);
    ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let id = ok(&env, &["list-backups", "--minimal", "pg"])
        .trim()
        .to_string();

    // archive-wal in a loop while cron runs, WAL is written and switched,
    // and the walsender is killed once: both copies of every segment meet.
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let looper = s.spawn(|| {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                let run = env.barman(&["archive-wal", "pg"]);
                assert!(
                    run.code == 0
                        || run
                            .stderr
                            .contains("Another archive-wal process is already running"),
                    "archive-wal: {}{}",
                    run.stdout,
                    run.stderr
                );
                runs += 1;
            }
            runs
        });
        for round in 0..6 {
            pg.psql(&format!(
                "INSERT INTO t SELECT g, md5(g::text) FROM generate_series({}, {}) g",
                2000 + round * 100_000,
                2000 + round * 100_000 + 99_999
            ));
            pg.psql("SELECT pg_switch_wal()");
            if round == 2 {
                // A dropped connection: the receiver ends, cron starts another.
                pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_replication");
                wait_for("the receiver to end", &env, || !receiver_running(&env));
            }
            ok(&env, &["cron"]);
            wait_for("the receiver", &env, || receiver_running(&env));
        }
        stop.store(true, Ordering::Relaxed);
        assert!(looper.join().unwrap() > 0);
    });
    switch_and_archive(&env);
    // Both archivers delivered every segment: drain what is left.
    let last = pg.psql("SELECT pg_walfile_name(pg_current_wal_lsn() - 1)");
    wait_for("both copies of the last segment", &env, || {
        let _ = env.barman(&["archive-wal", "pg"]);
        std::fs::read_dir(&incoming).unwrap().count() == 0 && xlog_names(&env).contains(&last)
    });
    let names = xlog_names(&env);
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        names.len(),
        unique.len(),
        "a segment recorded twice: {names:?}"
    );
    assert_no_gap(&env);
    let errors: Vec<_> = std::fs::read_dir(env.home().join("pg/errors"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        errors.is_empty(),
        "identical copies are not errors: {errors:?}"
    );
    check_backup_passes(&env, &id);
    ok(&env, &["receive-wal", "--stop", "pg"]);
    assert_eq!(recovered_rows(&pg, &env, &id), "601000");
}

#[test]
fn pg_streaming_refuses_a_primary_with_a_new_system_identifier() {
    let pg = PgCluster::start("ssysid", REPLICATION);
    let env = TestEnv::new();
    streaming_site(&pg, &env, "archiver = off\n");
    pg.psql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 1000) g");
    switch_and_archive(&env);
    ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let id = ok(&env, &["list-backups", "--minimal", "pg"])
        .trim()
        .to_string();
    let before = xlog_names(&env);
    let identity = std::fs::read_to_string(env.home().join("pg/identity.json")).unwrap();

    // The primary is rebuilt: same address, new initdb.
    pg.rebuild();
    wait_for("the receiver to end with the old server", &env, || {
        !receiver_running(&env)
    });
    pg.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 5) g");
    pg.psql("SELECT pg_create_physical_replication_slot('barman')");
    pg.psql("SELECT pg_switch_wal()");

    // cron tries, the receiver refuses to start on another system.
    ok(&env, &["cron"]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!receiver_running(&env));
    let log = std::fs::read_to_string(env.root().join("barman.log")).unwrap();
    assert!(
        log.contains("Check 'systemid coherence' failed for server 'pg'"),
        "{log}"
    );
    let check = env.barman(&["check", "pg"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    assert!(
        check.stdout.contains(
            "\tsystemid coherence: FAILED (the system Id of the connected PostgreSQL server changed, stored in \"@HOME@/pg/identity.json\")\n"
        ),
        "{}",
        check.stdout
    );
    let run = env.barman(&["receive-wal", "pg"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);

    // Segments of the new system put in streaming/ by hand never mix
    // into the archive: they go to errors/.
    let streaming = env.home().join("pg/streaming");
    let foreign = foreign_segments(&pg);
    for f in &foreign {
        std::fs::copy(f, streaming.join(f.file_name().unwrap())).unwrap();
    }
    let foreign: Vec<String> = foreign
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(!foreign.is_empty());
    let cron = env.barman(&["cron"]);
    assert_eq!(cron.code, 1, "{}{}", cron.stdout, cron.stderr);
    for f in &foreign {
        assert!(
            cron.stderr.contains(&format!(
                "ERROR: Invalid WAL file {f} for server pg: system identifier "
            )),
            "{}",
            cron.stderr
        );
    }
    assert_eq!(xlog_names(&env), before, "the archive is unchanged");
    let errors: Vec<String> = std::fs::read_dir(env.home().join("pg/errors"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    for f in &foreign {
        assert!(
            errors.iter().any(|e| e.starts_with(f.as_str())),
            "{f} of the new system in errors/: {errors:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(env.home().join("pg/identity.json")).unwrap(),
        identity
    );
    check_backup_passes(&env, &id);
}

/// Complete segments of `pg` as pg_receivewal writes them, streamed by
/// hand (no slot) into a directory of the cluster's.
fn foreign_segments(pg: &PgCluster) -> Vec<PathBuf> {
    let dir = pg.dir.join("by-hand");
    mkdir_postgres(&dir);
    let mut child = pg
        .cmd("pg_receivewal")
        .args(["--no-loop", "-D"])
        .arg(&dir)
        .arg(format!("--dbname={}", pg.conninfo()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let complete = || -> Vec<PathBuf> {
        std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().unwrap().len() == 24)
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while complete().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "pg_receivewal wrote no segment"
        );
        pg.psql("INSERT INTO t SELECT g FROM generate_series(1, 1000) g");
        pg.psql("SELECT pg_switch_wal()");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    // runuser passes SIGTERM on to pg_receivewal.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    complete()
}
