//! config-update against real Barman 3.19.1: the same payloads on two
//! identical configurations give the same console output, exit status and
//! configuration files; the changes are read back (auto conf last), the
//! queue is Barman's, and cron applies what is queued.

use crate::harness::TestEnv;
use crate::interop::barman_py;

const MAIN: &str =
    "[barman]\nbarman_home = @HOME@\nlog_file = @ROOT@/barman.log\nbarman_user = root\n\
configuration_files_directory = @ROOT@/conf.d\n; a comment\ncompression = gzip\n\n\
[pg]\ndescription = \"Main PG\"\n# comment in pg\nconninfo = host=pg user=barman dbname=postgres\n\
backup_method = postgres\nstreaming_conninfo = host=pg user=streaming_barman\narchiver = on\n";

const OTHER: &str = "[other]\ndescription = other server\nconninfo = host=other\nssh_command = ssh other\narchiver = on\n\n\
[mymodel]\ncluster = pg\nmodel = true\ncompression = bzip2\n";

fn site() -> TestEnv {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.home()).unwrap();
    std::fs::create_dir_all(env.root().join("conf.d")).unwrap();
    env.write_config(MAIN);
    std::fs::write(env.root().join("conf.d/other.conf"), OTHER).unwrap();
    env
}

fn read(env: &TestEnv, rel: &str) -> String {
    env.redact(&std::fs::read_to_string(env.root().join(rel)).unwrap_or_else(|_| "<absent>".into()))
}

fn home_file(env: &TestEnv, name: &str) -> String {
    env.redact(
        &std::fs::read_to_string(env.home().join(name)).unwrap_or_else(|_| "<absent>".into()),
    )
}

#[test]
fn config_update_matches_barman_payload_by_payload() {
    let (rs, py) = (site(), site());
    let payloads = [
        r#"[{"scope":"server","server_name":"pg","backup_method":"rsync","compression":"bzip2","bandwidth_limit":"100"}]"#,
        r#"[{"scope":"model","model_name":"mymodel","compression":"gzip","archiver":"on"}]"#,
        r#"[{"scope":"model","model_name":"newm","compression":"lz4"}]"#,
        r#"[{"scope":"model","model_name":"newm","cluster":"pg","compression":"lz4"}]"#,
        r#"[{"scope":"server","server_name":"pg","archiver":"maybe"}]"#,
        r#"[{"scope":"server","server_name":"pg","compression":"none"}]"#,
        r#"[{"scope":"server","server_name":"pg","Compression":"gzip"}]"#,
        r#"[{"scope":"model","model_name":"mymodel","wals_directory":"/x"}]"#,
        r#"[{"scope":"server","server_name":"mymodel","description":"x"}]"#,
        r#"[{"scope":"model","model_name":"pg","description":"x"}]"#,
        r#"[{"scope":"server","server_name":"other","description":"ok"},{"scope":"bogus"}]"#,
        r#"[{"server_name":"pg"}]"#,
        r#"[{"scope":"model","server_name":"pg"}]"#,
        "not json",
        "[1] x",
        "5",
        "null",
        r#"{"scope":"server"}"#,
        "[[]]",
        "[]",
        r#"[{"scope":"server","server_name":"other","description":"changed"}]"#,
        r#"[{"scope":"server","server_name":"newsrv","conninfo":"host=x","description":"it's new"}]"#,
    ];
    for p in payloads {
        let a = rs.barman(&["config-update", p]);
        let b = barman_py(&py, &["config-update", p]);
        let b_out = py.redact(&String::from_utf8_lossy(&b.stdout));
        let b_err = py.redact(&String::from_utf8_lossy(&b.stderr));
        assert_eq!(
            (a.code, a.stdout.as_str(), a.stderr.as_str()),
            (
                b.status.code().unwrap_or(-1),
                b_out.as_str(),
                b_err.as_str()
            ),
            "payload {p}"
        );
        for f in ["barman.conf", "conf.d/other.conf"] {
            assert_eq!(read(&rs, f), read(&py, f), "{f} after {p}");
        }
        for f in [".barman.auto.conf", "cfg_changes.queue"] {
            assert_eq!(home_file(&rs, f), home_file(&py, f), "{f} after {p}");
        }
    }
    // FIX: an option only [barman] sets, for a server of conf.d, goes to
    // the server's own file (Barman adds a second [other] to barman.conf).
    let out = rs.barman(&[
        "config-update",
        r#"[{"scope":"server","server_name":"other","compression":"xz"}]"#,
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(read(&rs, "conf.d/other.conf").contains("[other]\ndescription = changed\nconninfo = host=other\nssh_command = ssh other\narchiver = on\ncompression = xz\n"), "{}", read(&rs, "conf.d/other.conf"));
    assert_eq!(read(&rs, "barman.conf"), read(&py, "barman.conf"));
    assert!(rs
        .barman(&["show-servers", "other"])
        .stdout
        .contains("\tcompression: xz\n"));
    let shown = barman_py(&rs, &["show-servers", "other"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("\tcompression: xz\n"));
    // Both read the result back the same way, the auto conf winning.
    {
        let env = &rs;
        let out = env.barman(&["show-servers", "pg"]);
        assert!(
            out.stdout.contains("\tbandwidth_limit: 100\n"),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("\tbackup_method: rsync\n"),
            "{}",
            out.stdout
        );
        let out = env.barman(&["list-servers"]);
        assert!(out.stdout.contains("newsrv - it's new"), "{}", out.stdout);
    }
    let shown = barman_py(&rs, &["show-servers", "pg"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("\tbandwidth_limit: 100\n"));
    // A model made by config-update is usable by config-switch at once.
    let sw = rs.barman(&["config-switch", "pg", "newm"]);
    assert_eq!(sw.code, 0, "{}{}", sw.stdout, sw.stderr);
    assert!(
        sw.stdout.contains("Applying model 'newm' to server 'pg'"),
        "{}",
        sw.stdout
    );
}

#[test]
fn config_update_queue_is_barmans_and_cron_applies_it() {
    let env = site();
    // Inactive servers: cron has nothing else to do.
    std::fs::write(
        env.config_path(),
        std::fs::read_to_string(env.config_path())
            .unwrap()
            .replace("archiver = on\n", "archiver = on\nactive = false\n"),
    )
    .unwrap();
    std::fs::write(
        env.root().join("conf.d/other.conf"),
        OTHER.replace("archiver = on\n", "archiver = on\nactive = false\n"),
    )
    .unwrap();
    let queue = env.home().join("cfg_changes.queue");
    // What a Barman config-update queued and a crash left unapplied.
    let queued = format!(
        "[\n  {{\n    \"section\": \"pg\",\n    \"changes_set\": [\n      {{\n        \"key\": \"description\",\n        \"value\": \"from the queue\",\n        \"config_file\": \"{}/.barman.auto.conf\"\n      }}\n    ]\n  }}\n]",
        env.home().display()
    );
    std::fs::write(&queue, &queued).unwrap();
    let cron = env.barman(&["cron"]);
    assert_eq!(cron.code, 0, "{}{}", cron.stdout, cron.stderr);
    assert!(
        cron.stdout.starts_with(
            "Changing value of option 'description' for section 'pg' from 'Main PG' to 'from the queue' through config-update.\n"
        ),
        "{}",
        cron.stdout
    );
    assert_eq!(std::fs::read_to_string(&queue).unwrap(), "[]");
    assert_eq!(
        std::fs::read_to_string(env.home().join(".barman.auto.conf")).unwrap(),
        "[pg]\ndescription = from the queue\n"
    );
    assert!(env
        .barman(&["list-servers"])
        .stdout
        .contains("pg - from the queue"));

    // A set Barman queued with a non-string value stays at the head, as in
    // Barman; barman-rs itself refuses such a value before queueing it.
    let stuck = queued.replace("\"from the queue\"", "5");
    std::fs::write(&queue, &stuck).unwrap();
    let run = env.barman(&["config-update", "[]"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        run.stderr,
        "ERROR: Unable to process a set of changes. Exiting.\n"
    );
    assert_eq!(std::fs::read_to_string(&queue).unwrap(), stuck);
    let refused = env.barman(&[
        "config-update",
        r#"[{"scope":"server","server_name":"pg","description":5}]"#,
    ]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.starts_with(
            "ERROR: Validation failed for server 'pg': key 'description' -> expected string or bytes-like object, got 'int'\n"
        ),
        "{}",
        refused.stderr
    );
    // A malformed queue is Barman's warning, and is replaced.
    std::fs::write(&queue, "{garbage").unwrap();
    let run = env.barman(&["config-update", "[]"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("WARNING: Malformed or empty configuration change queue: "),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_to_string(&queue).unwrap(), "[]");
}
