//! `check`/`status`/`show-servers` against a real PostgreSQL (15 and 18 in CI).

use crate::harness::pg::PgCluster;
use crate::harness::TestEnv;

fn setup(extra_pg: &str) -> (PgCluster, TestEnv) {
    let env = TestEnv::new();
    let pg = PgCluster::start(
        "check",
        &format!("wal_level = replica\narchive_mode = on\narchive_command = 'cp %p {}/pg/incoming/%f'\n{extra_pg}", env.home().display()),
    );
    env.write_config(&format!(
        "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n\n\
         [pg]\ndescription = PostgreSQL 15 test cluster\nconninfo = {ci}\nstreaming_conninfo = {ci}\n\
         backup_method = postgres\narchiver = on\npath_prefix = {bin}\ncheck_timeout = 10\n",
        ci = pg.conninfo(),
        bin = pg.bindir().display()
    ));
    (pg, env)
}

fn line<'a>(out: &'a str, check: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("\t{check}: ")))
        .unwrap_or_else(|| panic!("no '{check}' line in:\n{out}"))
}

#[test]
fn pg_check_verdicts_follow_the_server() {
    let (pg, env) = setup("");
    let run = env.barman(&["check", "pg"]);
    let out = &run.stdout;
    assert!(out.starts_with("Server pg:\n"), "{out}");
    for ok in [
        "PostgreSQL",
        "superuser or standard user with backup privileges",
        "PostgreSQL streaming",
        "wal_level",
        "directories",
        "pg_basebackup",
        "pg_basebackup compatible",
        "pg_basebackup supports tablespaces mapping",
        "archive_mode",
        "archive_command",
        "compression settings",
    ] {
        assert_eq!(line(out, ok), format!("\t{ok}: OK"), "in:\n{out}");
    }
    assert_eq!(
        line(out, "systemid coherence"),
        "\tsystemid coherence: OK (no system Id stored on disk)"
    );
    assert!(env.home().join("pg/meta").is_dir() && env.home().join("pg/incoming").is_dir());

    let status = env.barman(&["status", "pg"]).stdout;
    let version = pg
        .psql("SHOW server_version")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(
        status.contains(&format!("\tPostgreSQL version: {version}\n")),
        "{status}"
    );
    assert!(
        status.contains("\tCluster state: in production\n"),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "\tPostgreSQL Data directory: {}\n",
            pg.data.display()
        )),
        "{status}"
    );

    let show = env.barman(&["show-servers", "pg"]).stdout;
    let sysid = pg.psql("SELECT system_identifier FROM pg_control_system()");
    assert!(
        show.contains(&format!("\tpostgres_systemid: {sysid}\n")),
        "{show}"
    );
    assert!(show.contains("\twal_level: replica\n"), "{show}");

    // Break wal_level: check turns FAILED with Barman's hint, exit 1.
    pg.reconfigure("wal_level = minimal\narchive_mode = off\nmax_wal_senders = 0");
    let run = env.barman(&["check", "pg"]);
    assert_eq!(
        line(&run.stdout, "wal_level"),
        "\twal_level: FAILED (please set it to a higher level than 'minimal')"
    );
    assert_eq!(
        line(&run.stdout, "archive_mode"),
        "\tarchive_mode: FAILED (please set it to 'on' or 'always')"
    );
    assert_eq!(run.code, 1);
}

#[test]
fn pg_check_wrong_port_fails_postgresql() {
    let (pg, env) = setup("");
    let bad = std::fs::read_to_string(env.config_path())
        .unwrap()
        .replace(&format!("port={}", pg.port), "port=1");
    std::fs::write(env.config_path(), bad).unwrap();
    let run = env.barman(&["check", "pg"]);
    assert_eq!(line(&run.stdout, "PostgreSQL"), "\tPostgreSQL: FAILED");
    assert_eq!(run.code, 1);
    let nagios = env.barman(&["check", "pg", "--nagios"]);
    assert_eq!(nagios.code, 2);
    assert!(
        nagios
            .stdout
            .starts_with("BARMAN CRITICAL - server pg has issues * pg FAILED: "),
        "{}",
        nagios.stdout
    );
    assert!(
        nagios.stdout.contains("pg.PostgreSQL: FAILED\n"),
        "{}",
        nagios.stdout
    );
}
