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
