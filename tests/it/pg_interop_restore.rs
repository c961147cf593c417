//! The interop gate for recovery: real Barman 3.19.1 and barman-rs recover
//! the same backups (taken by Barman: postgres method, plain and gzip tar)
//! with the same options, side by side. Their console output, exit status,
//! destination layout and the configuration files they leave must be the
//! same (timestamps aside), and PostgreSQL must start on what barman-rs
//! restored from Barman's backups.

use std::path::{Path, PathBuf};

use crate::harness::pg::{PgCluster, Recovered};
use crate::harness::TestEnv;
use crate::interop::barman_py;
use crate::pg_backup::{mkdir_postgres, setup};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Replaces what legitimately differs: the destination path, the start
/// time and elapsed time of the closing line.
fn normalise(text: &str, dest: &Path) -> String {
    let text = text.replace(&dest.display().to_string(), "DEST");
    text.lines()
        // An intake pass may or may not have had files to archive.
        .filter(|l| {
            !(l.starts_with("Processing xlog segments") || l.starts_with('\t') && l.len() == 25)
        })
        .map(|l| {
            if l.starts_with("Restore operation completed (start time: ") {
                "Restore operation completed (TIMES)".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn run_py(env: &TestEnv, args: &[&str]) -> Run {
    let out = barman_py(env, args);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: env.redact(&String::from_utf8_lossy(&out.stdout)),
        stderr: env.redact(&String::from_utf8_lossy(&out.stderr)),
    }
}

fn run_rs(env: &TestEnv, args: &[&str]) -> Run {
    let r = env.barman(args);
    Run {
        code: r.code,
        stdout: r.stdout,
        stderr: r.stderr,
    }
}

/// The destination as a sorted list of relative paths (with `/` for
/// directories), WAL files named, data files only counted by name.
fn layout(dest: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dest)
        .min_depth(1)
        .into_iter()
        .flatten()
        .map(|e| {
            let rel = e.path().strip_prefix(dest).unwrap().display().to_string();
            if e.file_type().is_dir() {
                format!("{rel}/")
            } else {
                rel
            }
        })
        .collect();
    v.sort();
    v
}

fn read(dest: &Path, f: &str) -> String {
    let t = std::fs::read_to_string(dest.join(f)).unwrap_or_else(|_| "<missing>".into());
    t.replace(&dest.display().to_string(), "DEST")
}

/// Both tools recover `id` with `args`; everything observable must agree.
fn same_recovery(
    pg: &PgCluster,
    env: &TestEnv,
    server: &str,
    id: &str,
    tag: &str,
    args: &[&str],
) -> PathBuf {
    let mut dests = Vec::new();
    let mut runs = Vec::new();
    for tool in ["py", "rs"] {
        let dest = pg.dir.join(format!("{tool}-{tag}"));
        let tbs = pg.dir.join(format!("{tool}-{tag}-tbs"));
        let map = format!("tbs:{}", tbs.display());
        let mut a = vec![
            "recover",
            server,
            id,
            dest.to_str().unwrap(),
            "--tablespace",
            &map,
        ];
        a.extend(args);
        let run = if tool == "py" {
            run_py(env, &a)
        } else {
            run_rs(env, &a)
        };
        runs.push((
            run.code,
            normalise(&run.stdout, &dest).replace(&tbs.display().to_string(), "TBS"),
            normalise(&run.stderr, &dest).replace(&tbs.display().to_string(), "TBS"),
        ));
        dests.push(dest);
    }
    assert_eq!(
        runs[1], runs[0],
        "{tag}: barman-rs (left) vs Barman (right)"
    );
    if runs[0].0 == 0 {
        let (py, rs) = (&dests[0], &dests[1]);
        assert_eq!(layout(rs), layout(py), "{tag}: destination layout");
        for f in [
            "postgresql.conf",
            "postgresql.auto.conf",
            "postgresql.auto.conf.origin",
            ".barman-recover.info",
        ] {
            assert_eq!(read(rs, f), read(py, f), "{tag}: {f}");
        }
    } else {
        for d in &dests {
            assert!(
                !d.join("global/pg_control").exists(),
                "{tag}: a failed restore left pg_control"
            );
        }
    }
    dests.pop().unwrap()
}

#[test]
fn pg_interop_barman_and_barman_rs_recover_alike() {
    let (pg, env) = setup(
        false,
        "backup_method = postgres\n\n[pgtar]\ndescription = tar\n",
    );
    // A second server on the same cluster for gzip tar backups.
    let conf = std::fs::read_to_string(env.config_path()).unwrap();
    let pg_section = conf[conf.find("[pg]").unwrap()..conf.find("[pgtar]").unwrap()]
        .replace("[pg]", "")
        .replace("description = test\n", "")
        .replace("/incoming", "/incoming-tar");
    std::fs::write(
        env.config_path(),
        format!("{conf}{pg_section}backup_compression = gzip\nbackup_compression_format = tar\n"),
    )
    .unwrap();
    mkdir_postgres(&pg.dir.join("incoming-tar"));
    pg.reconfigure(&format!(
        "archive_command = 'cp %p {d}/incoming/.%f.tmp && mv {d}/incoming/.%f.tmp {d}/incoming/%f && cp %p {d}/incoming-tar/%f'\n",
        d = pg.dir.display()
    ));
    pg.psql("CREATE TABLE marker (tag text)");
    pg.psql("INSERT INTO marker VALUES ('before')");
    let out = run_py(&env, &["backup", "pg", "--wait"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let out = run_py(&env, &["backup", "pgtar", "--wait"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let xid = pg
        .psql("INSERT INTO marker VALUES ('xid') RETURNING txid_current()")
        .lines()
        .next()
        .unwrap()
        .to_string();
    pg.psql("INSERT INTO marker VALUES ('after')");
    pg.psql("SELECT pg_switch_wal()");
    for srv in ["pg", "pgtar"] {
        let r = run_rs(&env, &["switch-wal", "--archive", srv]);
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    }

    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("plain", vec![]),
        (
            "xid",
            vec![
                "--target-xid",
                &xid,
                "--exclusive",
                "--target-action",
                "promote",
            ],
        ),
        ("standby-getwal", vec!["--standby-mode", "--get-wal"]),
        ("immediate", vec!["--target-immediate"]),
        ("tli", vec!["--target-tli", "latest"]),
        (
            "custom",
            vec!["--get-wal", "--restore-command", "foo '%f' %p"],
        ),
        ("naive-time", vec!["--target-time", "2100-01-01 00:00:00"]),
        ("early", vec!["--target-time", "2000-01-01 00:00:00+00:00"]),
        ("action-alone", vec!["--target-action", "pause"]),
        (
            "two-targets",
            vec!["--target-xid", "1", "--target-immediate"],
        ),
        ("partial-getwal", vec!["--get-wal", "--partial-wal"]),
    ];
    for (tag, args) in &cases {
        same_recovery(&pg, &env, "pg", "latest", tag, args);
    }
    // Delta restore over each tool's own plain restore, after damage: the
    // same output (safe horizon line included) and the same result.
    let mut outs = Vec::new();
    for tool in ["py", "rs"] {
        let dest = pg.dir.join(format!("{tool}-plain"));
        let tbs = pg.dir.join(format!("{tool}-plain-tbs"));
        std::fs::write(dest.join("PG_VERSION"), "99\n").unwrap();
        std::fs::write(dest.join("stray"), "x").unwrap();
        std::fs::write(dest.join("recovery.signal"), "").unwrap();
        let map = format!("tbs:{}", tbs.display());
        let a = [
            "recover",
            "pg",
            "oldest",
            dest.to_str().unwrap(),
            "--tablespace",
            &map,
            "--delta-restore",
        ];
        let run = if tool == "py" {
            run_py(&env, &a)
        } else {
            run_rs(&env, &a)
        };
        assert_eq!(run.code, 0, "{tool}: {}\n{}", run.stdout, run.stderr);
        assert!(
            run.stdout
                .contains("Using safe horizon time for smart rsync copy: "),
            "{}",
            run.stdout
        );
        assert_eq!(
            std::fs::read_to_string(dest.join("PG_VERSION")).unwrap(),
            format!("{}\n", crate::harness::pg::default_major())
        );
        assert!(!dest.join("stray").exists() && !dest.join("recovery.signal").exists());
        outs.push((normalise(&run.stdout, &dest), layout(&dest)));
    }
    assert_eq!(
        outs[1], outs[0],
        "delta restore: barman-rs (left) vs Barman (right)"
    );
    for (tag, args) in [
        ("tar-plain", vec![]),
        (
            "tar-xid",
            vec!["--target-xid", &xid, "--target-action", "promote"],
        ),
    ] {
        same_recovery(&pg, &env, "pgtar", "latest", tag, &args);
    }
    // Barman's own error texts for references and destinations.
    for (tag, id, extra) in [
        ("unknown-id", "20000101T000000", vec![]),
        ("last-failed", "last-failed", vec![]),
        ("tar-delta", "latest", vec!["--delta-restore"]),
        ("netcomp", "latest", vec!["--network-compression"]),
    ] {
        let srv = if tag.starts_with("tar") {
            "pgtar"
        } else {
            "pg"
        };
        same_recovery(&pg, &env, srv, id, tag, &extra);
    }

    // PostgreSQL starts on what barman-rs restored from Barman's backups.
    for (tag, want) in [("xid", "before"), ("tar-xid", "before\nxid")] {
        // --exclusive stops before the xid; the tar case is inclusive.
        let data = pg.dir.join(format!("rs-{tag}"));
        let tbs = pg.dir.join(format!("rs-{tag}-tbs"));
        let socket = pg.dir.join(format!("rs-{tag}-sock"));
        mkdir_postgres(&socket);
        for p in [&data, &tbs] {
            let st = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(p)
                .status()
                .unwrap();
            assert!(st.success());
        }
        let rec = Recovered::start(
            &data,
            &socket,
            pg.port,
            &pg.dir.join(format!("rs-{tag}.log")),
        );
        rec.wait_promoted();
        assert_eq!(
            rec.psql("SELECT tag FROM marker ORDER BY tag"),
            want,
            "{tag}"
        );
        assert_eq!(rec.psql("SELECT count(*) FROM t_tbs"), "20000");
    }
}
