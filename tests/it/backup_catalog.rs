//! show-backup, list-files, delete (and cron's retention) and check-backup
//! against the outputs Barman 3.19.1 printed on its own catalog
//! (tests/fixtures/barman/backups_pg), plus what they do to the catalog.

use crate::catalog::{assert_like, env_with};

#[test]
fn show_backup_like_barman() {
    let (env, fx) = env_with("catalog.after-backups");
    assert_like(
        &env,
        &fx,
        "show-backup_pg_latest",
        &["show-backup", "pg", "latest"],
    );
    assert_like(
        &env,
        &fx,
        "show-backup_pg_second",
        &["show-backup", "pg", "second"],
    );
    assert_like(
        &env,
        &fx,
        "show-backup_pg_oldest",
        &["show-backups", "pg", "oldest"],
    );
    assert_like(
        &env,
        &fx,
        "f_json_show-backup_pg_latest",
        &["-f", "json", "show-backup", "pg", "latest"],
    );
    assert_like(
        &env,
        &fx,
        "show-backup_pg_nosuch",
        &["show-backup", "pg", "nosuch"],
    );
}

/// A backup whose copy never finished: Barman prints the general rows,
/// the server information and the error, nothing computed from the WAL.
#[test]
fn show_backup_of_a_failed_backup() {
    let (env, _fx) = env_with("catalog.after-backups");
    let meta = env.home().join("pg/meta");
    std::fs::write(
        meta.join("20261125T040000-backup.info"),
        "begin_time=2026-11-25 04:00:00+00:00\ndata_checksums=off\n\
         error=failure copying files (pg_basebackup terminated)\nmode=postgres\n\
         server_name=pg\nstatus=FAILED\nsystemid=7711942542221063157\n",
    )
    .unwrap();
    let run = env.barman(&["show-backup", "pg", "last-failed"]);
    assert_eq!(
        run.stdout,
        "Backup 20261125T040000:\n  Server Name            : pg\n  System Id              : 7711942542221063157\n  Status                 : FAILED\n\n  Server information:\n    Checksums            : off\n\n  Error                  : failure copying files (pg_basebackup terminated)\n"
    );
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    let run = env.barman(&["-f", "json", "show-backup", "pg", "20261125T040000"]);
    assert_eq!(
        run.stdout,
        r#"{"pg": {"backup_id": "20261125T040000", "error": "failure copying files (pg_basebackup terminated)", "server_information": {"data_checksums": "off", "summarize_wal": null}, "status": "FAILED", "system_id": "7711942542221063157"}}"#
    );
    // The failed backup is no neighbour of the others.
    let run = env.barman(&["show-backup", "pg", "latest"]);
    assert!(run
        .stdout
        .contains("Next Backup          : - (this is the latest base backup)"));
}

/// Recreates the files of backup 20261125T031632 Barman listed (empty
/// files: list-files looks at names only) plus the pg_tblspc link it did
/// not follow.
fn recreate_backup_files(env: &crate::harness::TestEnv, listing: &str) {
    for line in listing.lines() {
        let path = std::path::PathBuf::from(env.expand(line));
        if line.contains("/base/") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"").unwrap();
        }
    }
    let base = env.home().join("pg/base/20261125T031632");
    std::fs::create_dir_all(base.join("data/pg_tblspc")).unwrap();
    std::os::unix::fs::symlink(base.join("16384"), base.join("data/pg_tblspc/16384")).unwrap();
}

/// Barman's os.walk order: files sorted within each directory, directories
/// in the order the filesystem returns them (so only the grouping can be
/// compared across filesystems), each directory's files together.
fn assert_walk_order_like(ours: &str, barman: &str) {
    let mut a: Vec<&str> = ours.lines().collect();
    let mut b: Vec<&str> = barman.lines().collect();
    let mut seen: Vec<&str> = Vec::new();
    let mut last_dir = "";
    let mut last_name = "";
    for line in &a {
        let (dir, name) = line.rsplit_once('/').unwrap();
        if dir != last_dir {
            assert!(!seen.contains(&dir), "{dir} listed in two runs");
            seen.push(dir);
            last_dir = dir;
        } else {
            assert!(name > last_name, "{line} out of order");
        }
        last_name = name;
    }
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

#[test]
fn list_files_like_barman() {
    let (env, fx) = env_with("catalog.after-backups");
    let want = |slug: &str| std::fs::read_to_string(fx.join(format!("{slug}.out"))).unwrap();
    recreate_backup_files(&env, &want("list-files_target_data_pg_latest"));
    // WAL only: no walk, exact.
    assert_like(
        &env,
        &fx,
        "list-files_target_wal_pg_latest",
        &["list-files", "--target", "wal", "pg", "latest"],
    );
    let run = env.barman(&["list-files", "--target", "data", "pg", "latest"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert_walk_order_like(&run.stdout, &want("list-files_target_data_pg_latest"));
    // standalone (the default) = data + the WAL begin..end.
    let run = env.barman(&["list-files", "pg", "latest"]);
    let barman = want("list-files_pg_latest");
    let (data, wal) = run
        .stdout
        .split_at(run.stdout.rfind("@HOME@/pg/wals/").unwrap());
    let (bdata, bwal) = barman.split_at(barman.rfind("@HOME@/pg/wals/").unwrap());
    assert_eq!(wal, bwal);
    assert_walk_order_like(data, bdata);
    // full = data + WAL until the next backup + history files.
    std::fs::write(
        env.home().join("pg/wals/pg-xlog.db"),
        std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db")).unwrap()
            + "00000002.history\t42\t1795576600.0\tNone\tNone\n",
    )
    .unwrap();
    let run = env.barman(&["list-files", "--target", "full", "pg", "oldest"]);
    assert!(
        run.stdout.ends_with(
            "@HOME@/pg/wals/0000000100000000/000000010000000000000003\n\
         @HOME@/pg/wals/0000000100000000/000000010000000000000004\n\
         @HOME@/pg/wals/0000000100000000/000000010000000000000005\n\
         @HOME@/pg/wals/00000002.history\n"
        ),
        "{}",
        run.stdout
    );
    let run = env.barman(&[
        "list-files",
        "--list-empty-directories",
        "--target",
        "data",
        "pg",
        "oldest",
    ]);
    assert_eq!(run.stdout, "");
    std::fs::create_dir_all(env.home().join("pg/base/20261125T031550/data/pg_wal")).unwrap();
    let run = env.barman(&[
        "list-files",
        "--list-empty-directories",
        "--target",
        "data",
        "pg",
        "oldest",
    ]);
    assert_eq!(run.stdout, "@HOME@/pg/base/20261125T031550/data/pg_wal\n");
}

const OLDEST: &str = "20261125T031550";
const SECOND: &str = "20261125T031632";
const THIRD: &str = "20261125T031650";

/// The pg catalog as it was right before Barman's `cron` in the scenario:
/// three backups (the oldest OBSOLETE under REDUNDANCY 2), their data
/// directories (a tablespace and data/ each), and every archived WAL file
/// on disk and in xlog.db. Sizes of the WAL archived after the second
/// backup are not in the fixtures: these add up to Barman's list-backups
/// figures (WAL Size 418.0 KiB for the second backup).
fn env_before_cron() -> (crate::harness::TestEnv, std::path::PathBuf) {
    let (env, fx) = env_with("catalog.after-backups");
    let pg = env.home().join("pg");
    std::fs::copy(
        fx.join(format!("catalog/pg/meta/{THIRD}-backup.info")),
        pg.join(format!("meta/{THIRD}-backup.info")),
    )
    .unwrap();
    for id in [OLDEST, SECOND, THIRD] {
        for dir in ["data/global", "16384/PG_15_202209061/5"] {
            std::fs::create_dir_all(pg.join("base").join(id).join(dir)).unwrap();
        }
        std::fs::write(pg.join("base").join(id).join("data/PG_VERSION"), "15\n").unwrap();
        std::fs::write(
            pg.join("base")
                .join(id)
                .join("16384/PG_15_202209061/5/16385"),
            "x",
        )
        .unwrap();
    }
    let mut xlogdb = std::fs::read_to_string(pg.join("wals/pg-xlog.db")).unwrap();
    for (name, size, time) in [
        ("000000010000000000000006", 16400, "1795576610.5"),
        ("000000010000000000000007", 91000, "1795576620.5"),
        (
            "000000010000000000000007.00000028.backup",
            250,
            "1795576620.6",
        ),
        ("000000010000000000000008", 16500, "1795576630.5"),
        ("000000010000000000000009", 200000, "1795576640.5"),
        (
            "000000010000000000000009.00000028.backup",
            250,
            "1795576640.6",
        ),
        ("00000001000000000000000A", 16471, "1795576650.5"),
    ] {
        xlogdb.push_str(&format!("{name}\t{size}\t{time}\tgzip\tNone\n"));
    }
    // The last two lines exactly as Barman left them.
    xlogdb.push_str(&std::fs::read_to_string(fx.join("catalog/pg/wals/pg-xlog.db")).unwrap());
    std::fs::write(pg.join("wals/pg-xlog.db"), &xlogdb).unwrap();
    for line in xlogdb.lines() {
        let name = line.split('\t').next().unwrap();
        let dir = pg.join("wals/0000000100000000");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), name).unwrap();
    }
    (env, fx)
}

/// Barman's "(start time: <when the deletion started>, elapsed time: ...)"
/// varies from run to run.
fn normalize_times(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("(start time: ") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(')').map_or(rest.len(), |j| i + j + 1);
        out.push_str("(start time: T, elapsed time: E)");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn assert_like_timed(
    env: &crate::harness::TestEnv,
    fx: &std::path::Path,
    slug: &str,
    args: &[&str],
) {
    let run = env.barman(args);
    let want = |ext: &str| std::fs::read_to_string(fx.join(format!("{slug}.{ext}"))).unwrap();
    assert_eq!(
        normalize_times(&run.stdout),
        normalize_times(&want("out")),
        "stdout of {slug}"
    );
    assert_eq!(run.stderr, want("err"), "stderr of {slug}");
    assert_eq!(
        run.code.to_string(),
        want("rc").trim(),
        "exit status of {slug}"
    );
}

fn wal_files(env: &crate::harness::TestEnv) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(env.home().join("pg/wals/0000000100000000"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// cron applies REDUNDANCY 2 as Barman did: the oldest backup goes with the
/// WAL only it needed; then `delete pg oldest` removes the second backup
/// and every WAL file before the last backup's begin_wal, leaving the
/// catalog exactly as Barman left it.
#[test]
fn cron_retention_and_delete_like_barman() {
    let (env, fx) = env_before_cron();
    assert_like(&env, &fx, "third__list-backups_pg", &["list-backups", "pg"]);
    assert_like_timed(&env, &fx, "cron", &["cron"]);
    let pg = env.home().join("pg");
    assert!(!pg.join(format!("base/{OLDEST}")).exists());
    assert!(!pg.join(format!("meta/{OLDEST}-backup.info")).exists());
    assert!(!pg.join(format!("meta/{OLDEST}-delete_this")).exists());
    assert_eq!(wal_files(&env)[0], "000000010000000000000005");
    assert_like(
        &env,
        &fx,
        "after_cron__list-backups_pg",
        &["list-backups", "pg"],
    );

    assert_like_timed(&env, &fx, "delete_pg_oldest", &["delete", "pg", "oldest"]);
    assert_like(
        &env,
        &fx,
        "after_delete__list-backups_pg",
        &["list-backups", "pg"],
    );
    assert_eq!(
        wal_files(&env),
        [
            "00000001000000000000000B",
            "00000001000000000000000B.00000028.backup"
        ]
    );
    assert_eq!(
        std::fs::read_to_string(pg.join("wals/pg-xlog.db")).unwrap(),
        std::fs::read_to_string(fx.join("catalog/pg/wals/pg-xlog.db")).unwrap()
    );
    let mut meta: Vec<String> = std::fs::read_dir(pg.join("meta"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    meta.sort();
    assert_eq!(meta, [format!("{THIRD}-backup.info")]);
    assert!(!env.home().join(format!(".pg-{SECOND}.lock")).exists());

    // The last backup is the only one: minimum_redundancy 1 refuses.
    let run = env.barman(&["delete", "pg", "latest"]);
    let info = barman::catalog::backup_info::BackupInfo::parse(
        &std::fs::read_to_string(pg.join(format!("meta/{THIRD}-backup.info"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        run.stderr,
        format!(
            "WARNING: Skipping delete of backup {THIRD} for server pg due to minimum redundancy requirements (minimum redundancy = 1, current redundancy = 1)\nERROR: Cannot delete backup (pg {})\n",
            info.python_repr()
        )
    );
    assert_eq!((run.code, run.stdout.as_str()), (1, ""));
    assert!(pg.join(format!("base/{THIRD}/data/PG_VERSION")).exists());
    assert!(!pg.join(format!("meta/{THIRD}-delete_this")).exists());
}

/// A backup between two others needs its predecessor's WAL to stay (point
/// in time recovery from the oldest): deleting it removes no WAL. A kept
/// backup is refused.
#[test]
fn delete_keeps_wal_an_older_backup_needs_and_refuses_kept_backups() {
    let (env, _fx) = env_before_cron();
    let before = wal_files(&env);
    let xlogdb = std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db")).unwrap();
    let run = env.barman(&["delete", "pg", "second"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    let out = normalize_times(&run.stdout);
    assert_eq!(
        out,
        format!("Deleting backup {SECOND} for server pg\nDeleted backup {SECOND} (start time: T, elapsed time: E)\n")
    );
    assert_eq!(wal_files(&env), before);
    assert_eq!(
        std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db")).unwrap(),
        xlogdb
    );

    std::fs::write(env.home().join(format!("pg/meta/{OLDEST}-keep")), "full").unwrap();
    let run = env.barman(&["delete", "pg", OLDEST]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.starts_with(&format!(
        "WARNING: Skipping delete of backup {OLDEST} for server pg as it has a current keep request. If you really want to delete this backup please remove the keep and try again.\nERROR: Cannot delete backup (pg LocalBackupInfo(backup_label="
    )), "{}", run.stderr);
    assert!(env.home().join(format!("pg/base/{OLDEST}/data")).exists());
}

/// An interrupted deletion (marker written, data gone, metadata still
/// there) is finished by the next cron, whatever the retention policy says
/// of the backup; history files are never removed.
#[test]
fn cron_finishes_an_interrupted_delete() {
    let (env, _fx) = env_before_cron();
    let pg = env.home().join("pg");
    // Nothing obsolete: the oldest is kept as standalone.
    std::fs::write(pg.join(format!("meta/{OLDEST}-keep")), "standalone").unwrap();
    let xlogdb = pg.join("wals/pg-xlog.db");
    let text = std::fs::read_to_string(&xlogdb).unwrap();
    std::fs::write(
        &xlogdb,
        format!("00000001.history\t40\t1795576500.0\tNone\tNone\n{text}"),
    )
    .unwrap();
    std::fs::write(pg.join("wals/00000001.history"), "x").unwrap();
    // A crash after the metadata of a deleted backup went.
    std::fs::write(pg.join("meta/20261125T000000-delete_this"), "delete").unwrap();
    // A crash in the middle of deleting the second backup.
    std::fs::write(pg.join(format!("meta/{SECOND}-delete_this")), "delete").unwrap();
    std::fs::remove_dir_all(pg.join(format!("base/{SECOND}/data"))).unwrap();

    let run = env.barman(&["cron"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = normalize_times(&run.stdout);
    // Only the interrupted one goes, with the WAL up to the next backup
    // except the standalone backup's own range (retention's rule).
    assert!(out.starts_with(&format!(
        "Starting WAL archiving for server pg\nEnforcing retention policy: removing backup {SECOND} for server pg\nDeleting backup {SECOND} for server pg\nDelete associated WAL segments:\n"
    )), "{out}");
    assert!(!pg.join(format!("base/{SECOND}")).exists());
    assert!(!pg.join(format!("meta/{SECOND}-backup.info")).exists());
    assert!(!pg.join(format!("meta/{SECOND}-delete_this")).exists());
    assert!(!pg.join("meta/20261125T000000-delete_this").exists());
    assert!(pg.join(format!("base/{OLDEST}/data")).exists());
    // The standalone backup's own WAL (003) stays, the history file too;
    // what only a point-in-time recovery from it would need goes.
    let files = wal_files(&env);
    assert!(
        files.contains(&"000000010000000000000003".to_string()),
        "{files:?}"
    );
    assert!(files.contains(&"000000010000000000000003.00000028.backup".to_string()));
    assert!(
        !files.contains(&"000000010000000000000004".to_string()),
        "{files:?}"
    );
    assert!(
        !files.contains(&"00000001000000000000000A".to_string()),
        "{files:?}"
    );
    assert!(files.contains(&"00000001000000000000000B".to_string()));
    assert!(pg.join("wals/00000001.history").exists());
    assert!(std::fs::read_to_string(&xlogdb)
        .unwrap()
        .starts_with("00000001.history\t"));
}

/// delete runs Barman's pre/post delete hooks with the backup's
/// environment; a pre retry hook returning 63 stops before anything is
/// deleted (and leaves no marker for cron to act on).
#[test]
fn delete_runs_hooks_and_a_stop_request_deletes_nothing() {
    let (env, _fx) = env_before_cron();
    let log = env.root().join("hooks.log");
    let conf = std::fs::read_to_string(env.config_path()).unwrap().replace(
        "[pg]\n",
        &format!(
            "[pg]\npre_delete_script = echo \"$BARMAN_PHASE $BARMAN_HOOK $BARMAN_BACKUP_ID $BARMAN_PREVIOUS_ID $BARMAN_NEXT_ID $BARMAN_STATUS\" >> {0}\n\
             post_delete_retry_script = echo \"$BARMAN_PHASE $BARMAN_HOOK $BARMAN_RETRY\" >> {0}\n",
            log.display()
        ),
    );
    std::fs::write(env.config_path(), conf).unwrap();
    let run = env.barman(&["delete", "pg", SECOND]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        format!("pre delete_script {SECOND} {OLDEST} {THIRD} DONE\npost delete_retry_script 1\n")
    );

    let conf = std::fs::read_to_string(env.config_path())
        .unwrap()
        .replace("[pg]\n", "[pg]\npre_delete_retry_script = exit 63\n");
    std::fs::write(env.config_path(), conf).unwrap();
    let run = env.barman(&["delete", "pg", THIRD]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "EXCEPTION: Abort 'pre_delete_retry_script' retry hook script (exit 63, exit code: 63)\nSee log file for more details.\n"
    );
    assert!(env.home().join(format!("pg/base/{THIRD}/data")).exists());
    assert!(!env
        .home()
        .join(format!("pg/meta/{THIRD}-delete_this"))
        .exists());
}

fn set_status(env: &crate::harness::TestEnv, id: &str, status: &str) -> String {
    let path = env.home().join(format!("pg/meta/{id}-backup.info"));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("status=DONE\n", &format!("status={status}\n")),
    )
    .unwrap();
    text
}

/// check-backup: DONE once begin..end are archived, still waiting while the
/// archive has not reached begin_wal, FAILED (Barman's message, exit 1)
/// when a needed file is missing but a later one exists; a FAILED backup
/// is not checked again.
#[test]
fn check_backup_like_barman() {
    let (env, fx) = env_before_cron();
    assert_like(
        &env,
        &fx,
        "check-backup_pg_latest",
        &["check-backup", "pg", "latest"],
    );
    let meta = |id: &str| {
        std::fs::read_to_string(env.home().join(format!("pg/meta/{id}-backup.info"))).unwrap()
    };
    let original = set_status(&env, THIRD, "WAITING_FOR_WALS");
    let run = env.barman(&["check-backup", "pg", THIRD]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "", "")
    );
    assert_eq!(meta(THIRD), original, "DONE, the file as Barman wrote it");

    set_status(&env, THIRD, "WAITING_FOR_WALS");
    let wals = env.home().join("pg/wals/0000000100000000");
    std::fs::remove_file(wals.join("00000001000000000000000B")).unwrap();
    let run = env.barman(&["check-backup", "pg", THIRD]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert!(meta(THIRD).contains("\nstatus=WAITING_FOR_WALS\n"));

    set_status(&env, SECOND, "WAITING_FOR_WALS");
    std::fs::remove_file(wals.join("000000010000000000000005")).unwrap();
    let run = env.barman(&["check-backup", "pg", SECOND]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (1, "ERROR: This backup has been marked as FAILED due to the following reason: At least one WAL file is missing. The first missing WAL file is 000000010000000000000005\n")
    );
    let text = meta(SECOND);
    assert!(text.contains("\nstatus=FAILED\n"), "{text}");
    assert!(text.contains("\nerror=At least one WAL file is missing. The first missing WAL file is 000000010000000000000005\n"));
    let run = env.barman(&["check-backup", "pg", SECOND]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            1,
            "ERROR: The validity of a failed backup cannot be checked\n"
        )
    );
}

/// cron announces the check of the oldest WAITING_FOR_WALS backup (as
/// Barman does before spawning check-backup) and promotes it once its WAL
/// is archived; retention does not count it yet.
#[test]
fn cron_checks_the_oldest_waiting_backup() {
    let (env, _fx) = env_before_cron();
    set_status(&env, THIRD, "WAITING_FOR_WALS");
    let run = env.barman(&["cron"]);
    assert_eq!(
        run.stdout,
        format!("Starting WAL archiving for server pg\nStarting check-backup for backup {THIRD} of server pg\nStarting WAL archiving for server pgr\n")
    );
    assert_eq!(run.code, 0);
    let text =
        std::fs::read_to_string(env.home().join(format!("pg/meta/{THIRD}-backup.info"))).unwrap();
    assert!(text.contains("\nstatus=DONE\n"));
    assert!(env.home().join(format!("pg/base/{OLDEST}")).exists());
}

/// Without xlog.db, delete rebuilds it from wals/ (as Barman does on any
/// access) instead of forgetting every archived file.
#[test]
fn delete_rebuilds_a_missing_xlogdb() {
    let (env, _fx) = env_before_cron();
    let xlogdb = env.home().join("pg/wals/pg-xlog.db");
    std::fs::remove_file(&xlogdb).unwrap();
    let run = env.barman(&["delete", "pg", "oldest"]);
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    assert!(run.stdout.contains(
        "Delete associated WAL segments:\n\t000000010000000000000003\n\t000000010000000000000003.00000028.backup\n\t000000010000000000000004\nDeleted backup"
    ), "{}", run.stdout);
    let text = std::fs::read_to_string(&xlogdb).unwrap();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names.len(), 11);
    assert_eq!(names[0], "000000010000000000000005");
    assert_eq!(wal_files(&env)[0], "000000010000000000000005");
}

/// A timeline forked after a backup ended shows as reachable from it (not
/// from backups that ended after the fork), with Barman's warning.
#[test]
fn show_backup_reports_reachable_timelines() {
    let (env, _fx) = env_with("catalog.after-backups");
    std::fs::write(
        env.home().join("pg/wals/00000002.history"),
        "1\t0/5000000\tbefore 2026-11-25 03:16:00+00\n",
    )
    .unwrap();
    let run = env.barman(&["show-backup", "pg", "oldest"]);
    assert!(
        run.stdout.contains(
            "    Last available       : 000000010000000000000005\n    Reachable timelines  : 2\n\n"
        ),
        "{}",
        run.stdout
    );
    assert!(run.stdout.ends_with(
        "    Next Backup          : 20261125T031632\n\nWARNING: WAL information is inaccurate due to multiple timelines interacting with this backup\n"
    ), "{}", run.stdout);
    let run = env.barman(&["-f", "json", "show-backup", "pg", "oldest"]);
    assert!(
        run.stdout.contains(r#""timelines": ["2"]"#),
        "{}",
        run.stdout
    );
    let run = env.barman(&["show-backup", "pg", "latest"]);
    assert!(!run.stdout.contains("Reachable"), "{}", run.stdout);
}
