//! A barman_home that does not exist (a backup volume not mounted) is
//! never created, by any command: each one that touches the catalog fails
//! with one line naming the path, `check` reports it as a failed check,
//! and nothing appears on the disk underneath, not even the log file.

use crate::harness::TestEnv;

fn env_without_home() -> TestEnv {
    let env = TestEnv::new();
    env.write_config(
        "[barman]\nbarman_home = @ROOT@/volume/barman\nbarman_user = root\n\
         log_file = @ROOT@/volume/barman/barman.log\n\n\
         [pg]\ndescription = test\nconninfo = host=/nonexistent port=1 user=postgres\n\
         backup_method = postgres\narchiver = on\n",
    );
    std::fs::remove_dir_all(env.home()).unwrap();
    env
}

const LINE: &str = "ERROR: barman_home '@ROOT@/volume/barman' does not exist (is its volume mounted?): barman-rs never creates it\n";

#[test]
fn no_command_creates_a_missing_barman_home() {
    let env = env_without_home();
    let commands: &[&[&str]] = &[
        &["cron"],
        &["archive-wal", "pg"],
        &["put-wal", "pg"],
        &["get-wal", "pg", "000000010000000000000001"],
        &["backup", "pg"],
        &["list-backups", "pg"],
        &["status", "pg"],
        &["show-backup", "pg", "latest"],
        &["delete", "pg", "oldest"],
        &["keep", "pg", "latest", "--target", "full"],
        &["rebuild-xlogdb", "pg"],
        &["switch-wal", "pg"],
        &["recover", "pg", "latest", "/nonexistent/dest"],
        &["check-backup", "pg", "latest"],
        &["lock-directory-cleanup"],
    ];
    for args in commands {
        let run = env.barman(args);
        assert_eq!(run.code, 1, "{args:?}: {}{}", run.stdout, run.stderr);
        assert_eq!(run.stderr, LINE, "{args:?}");
        assert!(
            !env.root().join("volume").exists(),
            "{args:?} created the volume's directory"
        );
    }
    // Commands that only show the configuration still work.
    assert_eq!(env.barman(&["list-servers"]).code, 0);
    assert!(!env.root().join("volume").exists());
}

#[test]
fn check_reports_a_missing_barman_home_as_a_failure() {
    let env = env_without_home();
    let run = env.barman(&["check", "pg"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains(
            "\tdirectories: FAILED (barman_home '@ROOT@/volume/barman' does not exist (is its volume mounted?): barman-rs never creates it)\n"
        ),
        "{}",
        run.stdout
    );
    let nagios = env.barman(&["check", "pg", "--nagios"]);
    assert_eq!(nagios.code, 2, "{}", nagios.stdout);
    assert!(
        nagios.stdout.starts_with("BARMAN CRITICAL"),
        "{}",
        nagios.stdout
    );
    assert!(nagios.stdout.contains("directories"), "{}", nagios.stdout);
    assert!(!env.root().join("volume").exists());
}

#[test]
fn a_directory_configured_outside_barman_home_needs_its_parent() {
    let env = TestEnv::new();
    env.write_config(
        "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n\n\
         [pg]\ndescription = test\nconninfo = host=/nonexistent port=1 user=postgres\n\
         backup_method = postgres\narchiver = on\nbackup_directory = @ROOT@/unmounted/pg\n",
    );
    let run = env.barman(&["check", "pg"]);
    assert!(
        run.stdout.contains(
            "\tdirectories: FAILED (@ROOT@/unmounted/pg: the parent directory '@ROOT@/unmounted' does not exist (is its volume mounted?): barman-rs never creates it)\n"
        ),
        "{}",
        run.stdout
    );
    assert!(!env.root().join("unmounted").exists());
    // Mounted: the server's directories are made as Barman makes them.
    std::fs::create_dir(env.root().join("unmounted")).unwrap();
    let run = env.barman(&["check", "pg"]);
    assert!(run.stdout.contains("\tdirectories: OK\n"), "{}", run.stdout);
    assert!(env.root().join("unmounted/pg/wals").is_dir());
}
