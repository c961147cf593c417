//! Point-in-time recovery against a real PostgreSQL (15 and 18 in CI), in the style of
//! the most trusted peers: before each target a distinct marker row is
//! written; after each recovery the restored cluster is started and must
//! hold exactly the markers up to its target. One recovery per target
//! type, a timeline switch (recover, promote, new WAL archived from the
//! new timeline, recover again onto it), the configuration Barman writes,
//! and the failures (bad target, corrupted backup file) that must leave
//! the destination unusable.

use std::path::{Path, PathBuf};

use crate::harness::pg::{PgCluster, Recovered};
use crate::harness::TestEnv;
use crate::pg_backup::{mkdir_postgres, only_backup, setup};

fn ok(env: &TestEnv, args: &[&str]) -> String {
    let run = env.barman(args);
    assert_eq!(
        run.code, 0,
        "barman {args:?}:\n{}\n{}",
        run.stdout, run.stderr
    );
    run.stdout
}

fn chown_postgres(p: &Path) {
    let st = std::process::Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Writes marker `tag` (committed when this returns).
fn marker(pg: &PgCluster, tag: &str) {
    pg.psql(&format!("INSERT INTO marker VALUES ('{tag}')"));
}

/// The value an `INSERT … RETURNING` gave (psql adds the command tag).
fn returning(pg: &PgCluster, sql: &str) -> String {
    pg.psql(sql).lines().next().unwrap().to_string()
}

/// Archives everything written so far (switch + intake).
fn archive_all(pg: &PgCluster, env: &TestEnv) {
    pg.psql("SELECT pg_switch_wal()");
    std::thread::sleep(std::time::Duration::from_millis(500));
    ok(
        env,
        &["switch-wal", "--archive", "--archive-timeout", "30", "pg"],
    );
    ok(env, &["archive-wal", "pg"]);
}

struct Dest {
    data: PathBuf,
    tbs: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

fn dest(pg: &PgCluster, tag: &str) -> Dest {
    let d = Dest {
        data: pg.dir.join(format!("rec-{tag}")),
        tbs: pg.dir.join(format!("rec-{tag}-tbs")),
        socket: pg.dir.join(format!("rec-{tag}-sock")),
        log: pg.dir.join(format!("rec-{tag}.log")),
    };
    mkdir_postgres(&d.socket);
    d
}

/// barman-rs recovers `id` with `extra` into a fresh directory; returns
/// its stdout.
fn recover(env: &TestEnv, id: &str, d: &Dest, extra: &[&str]) -> String {
    let tbs = format!("tbs:{}", d.tbs.display());
    let mut args = vec![
        "recover",
        "pg",
        id,
        d.data.to_str().unwrap(),
        "--tablespace",
        &tbs,
    ];
    args.extend(extra);
    let out = ok(env, &args);
    chown_postgres(&d.data);
    chown_postgres(&d.tbs);
    out
}

fn markers(rec: &Recovered) -> Vec<String> {
    rec.psql("SELECT tag FROM marker ORDER BY tag")
        .lines()
        .map(str::to_string)
        .collect()
}

fn start(pg: &PgCluster, d: &Dest) -> Recovered {
    let rec = Recovered::start(&d.data, &d.socket, pg.port, &d.log);
    rec.wait_promoted();
    rec
}

#[test]
fn pg_restore_every_target_type_lands_on_its_marker() {
    let (pg, env) = setup(false, "backup_method = local-rsync\nparallel_jobs = 2\n");
    pg.psql("CREATE TABLE marker (tag text)");
    marker(&pg, "a_before_backup");
    ok(&env, &["backup", "pg"]);
    let (id, _) = only_backup(&env);
    // Recovery targets are judged on commit records: a pause between
    // markers keeps the time target strictly between two commits.
    marker(&pg, "b_time");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let time = pg.psql("SELECT clock_timestamp()");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let xid = returning(
        &pg,
        "INSERT INTO marker VALUES ('c_xid') RETURNING txid_current()",
    );
    pg.psql("SELECT pg_create_restore_point('rp_d')");
    marker(&pg, "d_name");
    let lsn = pg.psql("SELECT pg_current_wal_insert_lsn()");
    marker(&pg, "e_lsn");
    marker(&pg, "f_end");
    archive_all(&pg, &env);

    let all = |upto: &str| -> Vec<String> {
        [
            "a_before_backup",
            "b_time",
            "c_xid",
            "d_name",
            "e_lsn",
            "f_end",
        ]
        .iter()
        .take_while(|t| **t <= upto)
        .map(|t| t.to_string())
        .collect()
    };
    let cases: Vec<(&str, Vec<&str>, Vec<String>)> = vec![
        (
            "immediate",
            vec!["--target-immediate"],
            all("a_before_backup"),
        ),
        ("time", vec!["--target-time", &time], all("b_time")),
        ("xid", vec!["--target-xid", &xid], all("c_xid")),
        (
            "xid-exclusive",
            vec!["--target-xid", &xid, "--exclusive"],
            all("b_time"),
        ),
        ("name", vec!["--target-name", "rp_d"], all("c_xid")),
        ("lsn", vec!["--target-lsn", &lsn], all("d_name")),
        ("none", vec![], all("f_end")),
    ];
    for (tag, extra, want) in cases {
        let d = dest(&pg, tag);
        let mut args = extra.clone();
        if tag != "none" {
            args.extend(["--target-action", "promote"]);
        }
        let out = recover(&env, &id, &d, &args);
        assert!(
            out.contains("Your PostgreSQL server has been successfully prepared for recovery!"),
            "{out}"
        );
        if tag == "none" {
            assert!(!d.data.join("recovery.signal").exists());
            assert!(d.data.join("pg_wal/archive_status").is_dir());
        } else {
            assert!(out.contains("Doing PITR. Recovery target "), "{out}");
            assert!(d.data.join("recovery.signal").exists());
            let auto = std::fs::read_to_string(d.data.join("postgresql.auto.conf")).unwrap();
            assert!(
                auto.contains(&format!(
                    "restore_command = 'cp {}/barman_wal/%f %p'",
                    d.data.display()
                )),
                "{auto}"
            );
        }
        // Barman's neutralised archive_command and the renamed manifest.
        let conf = std::fs::read_to_string(d.data.join("postgresql.conf")).unwrap();
        assert!(conf.contains("\narchive_command = false\n"), "{tag}");
        assert!(d.data.join(format!("backup_manifest.{id}")).exists());
        assert_eq!(
            std::fs::read_to_string(d.data.join(".barman-recover.info")).unwrap(),
            std::fs::read_to_string(env.home().join(format!("pg/meta/{id}-backup.info"))).unwrap()
        );
        let rec = start(&pg, &d);
        assert_eq!(markers(&rec), want, "target {tag}");
        assert_eq!(rec.psql("SELECT count(*) FROM t_tbs"), "20000");
    }
}

#[test]
fn pg_restore_follows_a_new_timeline() {
    let (pg, env) = setup(false, "backup_method = local-rsync\n");
    pg.psql("CREATE TABLE marker (tag text)");
    ok(&env, &["backup", "pg"]);
    let (id, _) = only_backup(&env);
    let xid = returning(
        &pg,
        "INSERT INTO marker VALUES ('a_tli1') RETURNING txid_current()",
    );
    marker(&pg, "b_tli1_lost");
    archive_all(&pg, &env);

    // Recover to a_tli1 and promote: timeline 2, archiving into Barman.
    let d1 = dest(&pg, "tli2");
    recover(
        &env,
        &id,
        &d1,
        &["--target-xid", &xid, "--target-action", "promote"],
    );
    let archive = format!(
        "-c archive_mode=on -c \"archive_command=cp %p {d}/incoming/.%f.tmp && mv {d}/incoming/.%f.tmp {d}/incoming/%f\"",
        d = pg.dir.display()
    );
    let rec = Recovered::start_with(&d1.data, &d1.socket, pg.port, &d1.log, &archive);
    rec.wait_promoted();
    assert_eq!(
        rec.psql("SELECT timeline_id FROM pg_control_checkpoint()"),
        "2"
    );
    rec.psql("INSERT INTO marker VALUES ('c_tli2')");
    rec.psql("SELECT pg_switch_wal()");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !rec
        .psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
        .starts_with("00000002000")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "timeline 2 not archived"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    ok(&env, &["archive-wal", "pg"]);
    drop(rec);
    let db = std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db")).unwrap();
    assert!(db.contains("00000002.history"), "{db}");

    // Again from the same backup, now to the latest timeline.
    let d2 = dest(&pg, "latest");
    let out = recover(
        &env,
        &id,
        &d2,
        &["--target-tli", "latest", "--target-action", "promote"],
    );
    assert!(
        out.contains("Doing PITR. Recovery target timeline: '2'"),
        "{out}"
    );
    let auto = std::fs::read_to_string(d2.data.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("recovery_target_timeline = latest\n"),
        "{auto}"
    );
    let rec = start(&pg, &d2);
    assert_eq!(markers(&rec), ["a_tli1", "c_tli2"]);
    drop(rec);

    // And to timeline 1 explicitly: the lost marker is back.
    let d3 = dest(&pg, "tli1");
    recover(
        &env,
        &id,
        &d3,
        &["--target-tli", "1", "--target-action", "promote"],
    );
    let rec = start(&pg, &d3);
    assert_eq!(markers(&rec), ["a_tli1", "b_tli1_lost"]);
}

#[test]
fn pg_restore_refuses_bad_targets_and_corrupt_backups() {
    let (pg, env) = setup(false, "backup_method = local-rsync\n");
    ok(&env, &["backup", "pg"]);
    let (id, _) = only_backup(&env);
    archive_all(&pg, &env);

    // A target time before the backup's end: Barman's error, exit 1, and
    // nothing written.
    let d = dest(&pg, "early");
    let tbs = format!("tbs:{}", d.tbs.display());
    let run = env.barman(&[
        "recover",
        "pg",
        &id,
        d.data.to_str().unwrap(),
        "--tablespace",
        &tbs,
        "--target-time",
        "2000-01-01 00:00:00+00:00",
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("ERROR: The requested target time 2000-01-01 00:00:00+00:00 is before the backup end time"),
        "{}",
        run.stderr
    );
    assert!(!d.data.exists());

    // Two targets, target action without PITR, ':' in the destination.
    for (args, msg) in [
        (
            vec!["--target-xid", "5", "--target-name", "x"],
            "You cannot specify multiple targets for the recovery operation",
        ),
        (
            vec!["--target-action", "pause"],
            "Can't enable recovery target action when PITR is not required",
        ),
    ] {
        let mut a = vec![
            "recover",
            "pg",
            &id,
            d.data.to_str().unwrap(),
            "--tablespace",
            &tbs,
        ];
        a.extend(args);
        let run = env.barman(&a);
        assert_eq!(run.code, 1);
        assert!(run.stderr.contains(msg), "{}", run.stderr);
    }

    // A corrupted relation file: the restore fails naming it, and the
    // destination has neither pg_control nor recovery.signal.
    let data = env.home().join(format!("pg/base/{id}/data"));
    let victim = walkdir::WalkDir::new(data.join("base"))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file() && e.metadata().unwrap().len() >= 8192 * 4)
        .map(|e| e.into_path())
        .next()
        .expect("a relation file");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[8192 + 100] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let d = dest(&pg, "corrupt");
    let tbs = format!("tbs:{}", d.tbs.display());
    let run = env.barman(&[
        "recover",
        "pg",
        &id,
        d.data.to_str().unwrap(),
        "--tablespace",
        &tbs,
        "--target-immediate",
    ]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let victim_name = victim.file_name().unwrap().to_str().unwrap();
    let errors: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("ERROR"))
        .collect();
    assert!(
        errors.len() == 1
            && errors[0].starts_with("ERROR: Failure copying base backup: file '")
            && errors[0].contains(victim_name)
            && errors[0].contains("does not match the backup manifest"),
        "{}",
        run.stderr
    );
    assert!(!d.data.join("global/pg_control").exists());
    assert!(!d.data.join("recovery.signal").exists());
    assert!(!run.stdout.contains("successfully prepared"));
}

#[test]
fn pg_restore_to_a_remote_host_over_ssh() {
    let sshd = crate::harness::sshd::Sshd::start();
    let (pg, env) = setup(false, "backup_method = local-rsync\nparallel_jobs = 2\n");
    pg.psql("CREATE TABLE marker (tag text)");
    ok(&env, &["backup", "pg"]);
    let (id, _) = only_backup(&env);
    let xid = returning(
        &pg,
        "INSERT INTO marker VALUES ('a') RETURNING txid_current()",
    );
    marker(&pg, "b");
    archive_all(&pg, &env);

    let d = dest(&pg, "remote");
    // A remote recovery uses the ssh command as given (Barman adds no
    // options): the throwaway host key must not be checked.
    let ssh = sshd.ssh_command().replacen(
        "ssh ",
        "ssh -o StrictHostKeyChecking=no -o BatchMode=yes ",
        1,
    );
    let out = recover(
        &env,
        &id,
        &d,
        &[
            "--remote-ssh-command",
            &ssh,
            "--target-xid",
            &xid,
            "--target-action",
            "promote",
        ],
    );
    assert!(
        out.starts_with(&format!(
            "Starting remote restore for server pg using backup {id}\nDestination directory: {}\nRemote command: {ssh}\n",
            d.data.display()
        )),
        "{out}"
    );
    assert!(d.data.join(".barman-recover.info").exists());
    assert!(d.data.join("postgresql.conf.origin").exists());
    let rec = start(&pg, &d);
    assert_eq!(markers(&rec), ["a"]);
    assert_eq!(rec.psql("SELECT count(*) FROM t_tbs"), "20000");
    drop(rec);

    // With get-wal, PostgreSQL on the remote host would call
    // barman-wal-restore back to this host.
    let d = dest(&pg, "remote-getwal");
    recover(
        &env,
        &id,
        &d,
        &["--remote-ssh-command", &ssh, "--get-wal", "--jobs", "3"],
    );
    let auto = std::fs::read_to_string(d.data.join("postgresql.auto.conf")).unwrap();
    assert!(
        auto.contains("# The 'barman-wal-restore' command is provided in the 'barman-cli' package\nrestore_command = 'barman-wal-restore -P -U root ")
            && auto.contains(" pg %f %p -p 3'\n"),
        "{auto}"
    );
    assert!(d.data.join("recovery.signal").exists());
}
