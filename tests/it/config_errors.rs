//! Bad configuration: one line on stderr naming file, section, option and
//! value; a non-zero exit; nothing created under barman_home.

use crate::harness::{tree, TestEnv};

const GOOD: &str =
    "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n";

/// Runs list-servers and check against `config`; returns the one stderr line.
fn refuses(config: &str) -> (TestEnv, String) {
    let env = TestEnv::new();
    env.write_config(config);
    let before = tree(&env.home());
    for args in [
        &["list-servers"][..],
        &["check", "all"],
        &["show-servers", "all"],
    ] {
        let run = env.barman(args);
        assert_ne!(
            run.code, 0,
            "{args:?} must fail on:\n{config}\nstdout: {}",
            run.stdout
        );
        assert_eq!(run.stdout, "", "{args:?} printed on stdout");
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "one line on stderr, got: {}",
            run.stderr
        );
    }
    assert_eq!(tree(&env.home()), before, "barman_home was touched");
    let line = env.barman(&["list-servers"]).stderr;
    (env, line.trim_end().to_string())
}

fn config(server: &str) -> String {
    format!("{GOOD}\n[pg]\nconninfo = host=/tmp\nssh_command = ssh pg\narchiver = on\nbackup_options = concurrent_backup\n{server}\n")
}

#[test]
fn garbage_line_names_file_and_line() {
    let (_env, line) = refuses(&config("this is not an option"));
    assert!(
        line.contains("@ROOT@/barman.conf") && line.contains("line 11 in [pg]"),
        "{line}"
    );
    assert!(line.contains("this is not an option"), "{line}");
}

#[test]
fn missing_barman_home() {
    let (_e, line) = refuses("[barman]\nbarman_user = root\n\n[pg]\nconninfo = x=y\n");
    assert!(
        line.contains("barman_home") && line.contains("@ROOT@/barman.conf"),
        "{line}"
    );
}

#[test]
fn unknown_compression() {
    let (_e, line) = refuses(&config("compression = foo"));
    for part in [
        "'foo'",
        "compression",
        "[pg]",
        "@ROOT@/barman.conf",
        "line 11",
    ] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
}

#[test]
fn unknown_backup_method_in_barman_section() {
    let (_e, line) = refuses(&format!(
        "{GOOD}backup_method = tape\n[pg]\nconninfo = x=y\n"
    ));
    for part in ["'tape'", "backup_method", "[barman]", "line 5"] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
}

#[test]
fn bad_retention_policy() {
    let (_e, line) = refuses(&config("retention_policy = KEEP 3 FOREVER"));
    for part in ["'KEEP 3 FOREVER'", "retention_policy", "[pg]"] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
}

#[test]
fn invalid_server_names() {
    for name in ["my server", "pg/1", ".hidden"] {
        let (_e, line) = refuses(&format!("{GOOD}\n[{name}]\nconninfo = x=y\n"));
        assert!(line.contains(&format!("[{name}]")), "{line}");
    }
    let (_e, line) = refuses(&format!("{GOOD}\n[all]\nconninfo = x=y\n"));
    assert!(line.starts_with("FATAL: the reserved word 'all'"), "{line}");
}

#[test]
fn unreadable_and_missing_files() {
    let env = TestEnv::new();
    let run = env.barman(&["list-servers"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "Configuration file '@ROOT@/barman.conf' does not exist\n"
    );

    // A directory where the file should be: unreadable even for root.
    std::fs::create_dir_all(env.config_path()).unwrap();
    let run = env.barman(&["list-servers"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .starts_with("ERROR: Cannot read configuration file @ROOT@/barman.conf:"),
        "{}",
        run.stderr
    );
}

#[test]
fn duplicate_server_across_files() {
    let env = TestEnv::new();
    let confd = env.root().join("conf.d");
    std::fs::create_dir_all(&confd).unwrap();
    std::fs::write(
        confd.join("pg.conf"),
        "[pg]\nconninfo = host=/other\nssh_command = ssh x\n",
    )
    .unwrap();
    env.write_config(&format!("{GOOD}configuration_files_directory = @ROOT@/conf.d\n\n[pg]\nconninfo = host=/tmp\nssh_command = ssh pg\n"));
    let run = env.barman(&["list-servers"]);
    assert_eq!(run.code, 1);
    let line = run.stderr.trim_end();
    assert!(
        line.contains("'pg'")
            && line.contains("@ROOT@/barman.conf line 7")
            && line.contains("@ROOT@/conf.d/pg.conf line 1"),
        "{line}"
    );
}

#[test]
fn bad_interpolation_and_values() {
    let (_e, line) = refuses(&config("description = 50% off"));
    assert!(
        line.contains("description") && line.contains("[pg]"),
        "{line}"
    );
    let (_e, line) = refuses(&config("backup_directory = %(name)s/x"));
    assert!(line.contains("'name'"), "{line}");
    let (_e, line) = refuses(&config("active = maybe"));
    assert!(
        line.contains("'maybe'") && line.contains("active"),
        "{line}"
    );
    let (_e, line) = refuses(&config("last_backup_minimum_size = lots"));
    assert!(line.contains("'lots'"), "{line}");
    let (_e, line) = refuses(&config("minimum_redundancy = -1"));
    assert!(
        line.contains("'-1'") && line.contains("minimum_redundancy"),
        "{line}"
    );
}

#[test]
fn unknown_option_is_only_a_warning_as_in_barman() {
    let env = TestEnv::new();
    env.write_config(&config("foo = bar"));
    let run = env.barman(&["list-servers"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout, "pg\n");
    assert_eq!(
        run.stderr,
        "WARNING: Invalid configuration option \"foo\" in [pg] section.\n"
    );
}

#[test]
fn good_configuration_passes() {
    let env = TestEnv::new();
    env.write_config(&config(
        "compression = zstd\nretention_policy = RECOVERY WINDOW OF 2 WEEKS",
    ));
    let run = env.barman(&["list-servers"]);
    assert_eq!(
        (run.code, run.stdout.as_str(), run.stderr.as_str()),
        (0, "pg\n", "")
    );
}
