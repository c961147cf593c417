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
