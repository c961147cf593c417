//! barman-rs against real Barman 3.19.1 outputs captured with the same
//! configuration files (tests/fixtures/barman/<scenario>/, see its README).
//! stdout, stderr and exit status must match byte for byte.

use crate::harness::{fixtures, TestEnv};

/// Runs `slug` of `scenario` (a line of its commands.tsv) and compares.
fn replay(scenario: &str, slugs: &[&str]) {
    let dir = fixtures().join(scenario);
    let env = TestEnv::new();
    env.write_config(&std::fs::read_to_string(dir.join("barman.conf")).unwrap());
    let commands = std::fs::read_to_string(dir.join("commands.tsv")).unwrap();
    let mut ran = 0;
    for line in commands.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let (slug, command, rc) = (f[0], f[1], f[2]);
        if !slugs.contains(&slug) {
            continue;
        }
        let args: Vec<&str> = command
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .into_iter()
            .skip_while(|a| *a == "-c" || *a == "@CONF@")
            .collect();
        let run = env.barman(&args);
        let want_out = std::fs::read_to_string(dir.join(format!("{slug}.out"))).unwrap();
        let want_err = std::fs::read_to_string(dir.join(format!("{slug}.err"))).unwrap();
        assert_eq!(
            run.stdout, want_out,
            "stdout of {scenario}/{slug}: {command}"
        );
        assert_eq!(
            run.stderr, want_err,
            "stderr of {scenario}/{slug}: {command}"
        );
        assert_eq!(
            run.code.to_string(),
            rc,
            "exit status of {scenario}/{slug}: {command}"
        );
        ran += 1;
    }
    assert_eq!(
        ran,
        slugs.len(),
        "every requested slug exists in {scenario}/commands.tsv"
    );
}

#[test]
fn list_servers_like_barman() {
    replay(
        "basic",
        &[
            "list-servers",
            "list-servers_minimal",
            "f_json_list-servers",
            "f_json_list-servers_minimal",
            "list-server",
            "q_list-servers",
        ],
    );
}

#[test]
fn show_servers_like_barman() {
    replay(
        "basic",
        &[
            "show-servers_pg2",
            "show-servers_all",
            "f_json_show-servers_pg1",
            "f_json_show-servers_all",
            "show-servers_pg2_pg1_pg2",
            "show-servers_nosuch",
            "show-servers_pg1_nosuch",
        ],
    );
}

#[test]
fn status_like_barman_when_postgres_is_down() {
    replay(
        "basic",
        &[
            "status_pg2",
            "f_json_status_pg2",
            "status_all",
            "f_json_status_all",
        ],
    );
}

#[test]
fn check_like_barman_when_postgres_is_down() {
    replay(
        "basic",
        &[
            "check_pg2",
            "check_all",
            "f_json_check_pg2",
            "check_pg2_nagios",
            "check_nosuch",
        ],
    );
}

#[test]
fn version_keeps_barmans_number_and_says_what_it_is() {
    // Barman prints "3.19.1 Barman by EnterpriseDB (www.enterprisedb.com)"
    // (tests/fixtures/barman/basic/v.out); scripts parse the first word.
    let env = TestEnv::new();
    env.write_config("[barman]\nbarman_home = @HOME@\n");
    for flag in ["-v", "--version"] {
        let run = env.barman(&[flag]);
        assert_eq!(run.code, 0);
        assert_eq!(
            run.stdout,
            format!(
                "3.19.1 (barman-rs {}, compatible with Barman 3.19.1)\n",
                env!("CARGO_PKG_VERSION")
            )
        );
    }
}

#[test]
fn wal_commands_like_barman() {
    replay(
        "basic",
        &["switch-wal_all", "archive-wal_pg2", "archive-wal_all"],
    );
    replay("bad_conninfo", &["switch-wal_uri"]);
    // (The `disabled` scenario's configuration is refused on purpose: its
    // invalid slot_name is an error here, a warning in Barman.)
    replay(
        "multi_server_args",
        &["switch-wal_all", "archive-wal_c", "archive-wal_zz"],
    );
    replay("bad_path_clash_internal", &["archive-wal_pg"]);
}
