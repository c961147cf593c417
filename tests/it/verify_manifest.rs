//! `generate-manifest`, `verify-backup` and the catalog lines of `status`,
//! run side by side with real Barman 3.19.1 on the same catalog: the same
//! messages, exit statuses and (for generate-manifest) the same manifest
//! bytes; pg_verifybackup accepts what either generates.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::catalog::env_with;
use crate::harness::{Run, TestEnv};

fn python_barman() -> PathBuf {
    let path = std::env::var_os("BARMAN_PY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/barman-rs-peers/barman/bin/barman"));
    assert!(
        path.exists(),
        "Barman 3.19.1 not found at {}",
        path.display()
    );
    path
}

/// Runs Barman (`python`) or barman-rs on `env` with `PATH` set to `path`.
fn run(env: &TestEnv, python: bool, path: &str, args: &[&str]) -> Run {
    let mut cmd = if python {
        let mut c = Command::new(python_barman());
        c.arg("-c")
            .arg(env.config_path())
            .args(args)
            .current_dir("/");
        c
    } else {
        env.command(args)
    };
    let out = cmd.env("PATH", path).output().expect("run barman");
    Run {
        stdout: env.redact(&String::from_utf8_lossy(&out.stdout)),
        stderr: env.redact(&String::from_utf8_lossy(&out.stderr)),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Both give the same stdout, stderr and exit status; returns ours.
fn same(env: &TestEnv, path: &str, args: &[&str]) -> Run {
    let theirs = run(env, true, path, args);
    let ours = run(env, false, path, args);
    assert_eq!(ours.stdout, theirs.stdout, "stdout of {args:?}");
    assert_eq!(ours.stderr, theirs.stderr, "stderr of {args:?}");
    assert_eq!(ours.code, theirs.code, "exit status of {args:?}");
    ours
}

/// Barman generates the manifest, then (after removing it) barman-rs does:
/// same messages, same bytes. Leaves barman-rs's manifest in place.
fn generate_both(env: &TestEnv, path: &str, server: &str, id: &str, data: &Path) -> String {
    let manifest = data.join("backup_manifest");
    let theirs = run(env, true, path, &["generate-manifest", server, id]);
    let theirs_bytes = std::fs::read_to_string(&manifest).expect("Barman wrote a manifest");
    std::fs::remove_file(&manifest).unwrap();
    let ours = run(env, false, path, &["generate-manifest", server, id]);
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(ours.stderr, theirs.stderr);
    assert_eq!(ours.code, theirs.code);
    assert_eq!(
        ours.stdout,
        format!(
            "Backup manifest for backup '{id}' successfully generated for server ['{server}']\n"
        )
    );
    let ours_bytes = std::fs::read_to_string(&manifest).expect("we wrote a manifest");
    assert_eq!(ours_bytes, theirs_bytes, "the manifests differ");
    // Nothing else was left next to it (the staging file is gone).
    let stray: Vec<_> = std::fs::read_dir(data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("barman-rs"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    ours_bytes
}

fn with_pg(path: &str) -> String {
    format!("{}:{path}", crate::harness::pg::bindir().display())
}

const SYS_PATH: &str = "/usr/local/bin:/usr/bin:/bin";
const ID: &str = "20261125T031642";

/// An odd little data directory for backup `ID` of `pgr`: nested
/// directories, a symlinked directory (listed, not entered), a symlinked
/// file (hashed through the link), names with quotes and non-ASCII.
fn make_data(env: &TestEnv) -> PathBuf {
    let data = env.home().join("pgr/base").join(ID).join("data");
    for d in ["base/1", "global", "pg_wal", "sub/deeper", "é dir"] {
        std::fs::create_dir_all(data.join(d)).unwrap();
    }
    std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
    std::fs::write(data.join("base/1/1259"), vec![7u8; 40000]).unwrap();
    std::fs::write(data.join("global/pg_control"), vec![1u8; 8192]).unwrap();
    std::fs::write(data.join("sub/deeper/f"), "a\n").unwrap();
    std::fs::write(data.join("é dir/x\"y\\z"), "q").unwrap();
    std::fs::write(data.join("empty"), "").unwrap();
    std::os::unix::fs::symlink("sub", data.join("linkdir")).unwrap();
    std::os::unix::fs::symlink("../PG_VERSION", data.join("sub/linkfile")).unwrap();
    data
}

#[test]
fn generate_manifest_like_barman() {
    let (env, _) = env_with("catalog.after-backups");
    let data = make_data(&env);
    let text = generate_both(&env, SYS_PATH, "pgr", ID, &data);
    assert!(text.starts_with(
        "{\"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n{\"Checksum\": \""
    ));
    assert!(
        text.contains("\"Path\": \"\\u00e9 dir/x\\\"y\\\\z\""),
        "{text}"
    );
    assert!(
        text.contains("\"Path\": \"sub/linkfile\", \"Size\": 3}"),
        "{text}"
    );
    assert!(!text.contains("linkdir/"), "{text}");
    // Our own parser (and so the reuse of a previous backup) reads it.
    let m = barman::backup::manifest::parse(text.as_bytes()).unwrap();
    assert_eq!(m.files.len(), 7);

    // A manifest exists: Barman's exception, nothing rewritten.
    let r = same(&env, SYS_PATH, &["generate-manifest", "pgr", "latest"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.ends_with(&format!(
        "EXCEPTION: File @HOME@/pgr/base/{ID}/data/backup_manifest already exists.\nSee log file for more details.\n"
    )));
    assert_eq!(
        std::fs::read_to_string(data.join("backup_manifest")).unwrap(),
        text
    );
    same(
        &env,
        SYS_PATH,
        &["-f", "json", "generate-manifest", "pgr", "latest"],
    );
    // No data directory (the older backup has none here), unknown backup,
    // unknown server, `all`.
    let r = same(&env, SYS_PATH, &["generate-manifest", "pgr", "oldest"]);
    assert!(r
        .stderr
        .contains("EXCEPTION: @HOME@/pgr/base/20261125T031637/data\n"));
    same(
        &env,
        SYS_PATH,
        &["generate-manifest", "pgr", "20261125T000000"],
    );
    same(&env, SYS_PATH, &["generate-manifest", "nosuch", "latest"]);
    same(&env, SYS_PATH, &["generate-manifest", "all", "latest"]);
}

#[test]
fn verify_backup_like_barman() {
    let (env, _) = env_with("catalog.after-backups");
    let data = make_data(&env);
    // No manifest yet: pg_verifybackup's complaint, through Barman's lines.
    let r = same(
        &env,
        &with_pg(SYS_PATH),
        &["verify-backup", "pgr", "latest"],
    );
    assert_eq!(r.code, 1);
    // The symlinked directory would be walked by pg_verifybackup but is not
    // in Barman's manifest: drop it to get a clean verification.
    std::fs::remove_file(data.join("linkdir")).unwrap();
    generate_both(&env, SYS_PATH, "pgr", ID, &data);
    for args in [
        &["verify-backup", "pgr", "latest"][..],
        &["verify", "pgr", ID],
        &["-f", "json", "verify", "pgr", "latest"],
    ] {
        let r = same(&env, &with_pg(SYS_PATH), args);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let r = run(
        &env,
        false,
        &with_pg(SYS_PATH),
        &["verify", "pgr", "latest"],
    );
    assert_eq!(
        r.stdout,
        "Verifying backup 'latest' on server ['pgr']\nCalling pg_verifybackup\nbackup successfully verified\n"
    );
    // pg_verifybackup not on PATH.
    let r = same(&env, SYS_PATH, &["verify", "pgr", "latest"]);
    assert!(r.stderr.ends_with("ERROR: pg_verifybackup not found\n"));
    // A damaged backup: Barman's failure line, then pg_verifybackup's own.
    std::fs::write(data.join("PG_VERSION"), "16\n").unwrap();
    std::fs::remove_file(data.join("empty")).unwrap();
    std::fs::write(data.join("extra"), "x").unwrap();
    for args in [
        &["verify", "pgr", "latest"][..],
        &["-f", "json", "verify", "pgr", "latest"],
        &["-q", "verify", "pgr", "latest"],
    ] {
        let r = same(&env, &with_pg(SYS_PATH), args);
        assert_eq!(r.code, 1);
    }
    let r = run(
        &env,
        false,
        &with_pg(SYS_PATH),
        &["verify", "pgr", "latest"],
    );
    assert!(
        r.stderr.contains(&format!(
            "ERROR: verify backup failure on directory '@HOME@/pgr/base/{ID}/data'\nERROR: pg_verifybackup: error: "
        )),
        "{}",
        r.stderr
    );
    assert!(r
        .stderr
        .contains("\"extra\" is present on disk but not in the manifest"));
    same(&env, SYS_PATH, &["verify", "pgr", "20261125T000000"]);
    same(&env, SYS_PATH, &["verify", "nosuch", "latest"]);
}

/// status' catalog lines: DONE backups counted, first/last among DONE and
/// WAITING_FOR_WALS, minimum redundancy against DONE non-incremental ones.
#[test]
fn status_counts_backups_like_barman() {
    let (env, _) = env_with("catalog.after-backups");
    let r = same(&env, SYS_PATH, &["status", "all"]);
    assert!(r.stdout.contains(
        "\tNo. of available backups: 2\n\tFirst available backup: 20261125T031550\n\tLast available backup: 20261125T031632\n\tMinimum redundancy requirements: satisfied (2/1)\n"
    ), "{}", r.stdout);
    let edit = |file: &Path, from: &str, to: &str| {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains(from), "{from} in {}", file.display());
        std::fs::write(file, text.replace(from, to)).unwrap();
    };
    let meta = env.home().join("pg/meta");
    // The newest pg backup waits for WAL, a newer one failed.
    let newest = meta.join("20261125T031632-backup.info");
    edit(&newest, "status=DONE", "status=WAITING_FOR_WALS");
    let failed = std::fs::read_to_string(&newest)
        .unwrap()
        .replace("status=WAITING_FOR_WALS", "status=FAILED");
    std::fs::write(meta.join("20261125T031700-backup.info"), failed).unwrap();
    // pgr: the newest is incremental; an older legacy one waits for WAL.
    let pgr = env.home().join("pgr");
    let inc = pgr.join("meta/20261125T031642-backup.info");
    edit(
        &inc,
        "parent_backup_id=None",
        "parent_backup_id=20261125T031637",
    );
    edit(&inc, "mode=rsync-concurrent", "mode=postgres");
    let legacy = pgr.join("base/20261125T031500");
    std::fs::create_dir_all(&legacy).unwrap();
    let waiting = std::fs::read_to_string(pgr.join("meta/20261125T031637-backup.info"))
        .unwrap()
        .replace("status=DONE", "status=WAITING_FOR_WALS");
    std::fs::write(legacy.join("backup.info"), waiting).unwrap();
    let r = same(&env, SYS_PATH, &["status", "all"]);
    assert!(r.stdout.contains(
        "\tNo. of available backups: 1\n\tFirst available backup: 20261125T031550\n\tLast available backup: 20261125T031632\n\tMinimum redundancy requirements: satisfied (1/1)\n"
    ), "{}", r.stdout);
    assert!(r.stdout.contains(
        "\tNo. of available backups: 2\n\tFirst available backup: 20261125T031500\n\tLast available backup: 20261125T031642\n\tMinimum redundancy requirements: satisfied (1/0)\n"
    ), "{}", r.stdout);
    same(&env, SYS_PATH, &["-f", "json", "status", "pg"]);
    // Below minimum redundancy.
    edit(
        &meta.join("20261125T031550-backup.info"),
        "status=DONE",
        "status=FAILED",
    );
    let r = same(&env, SYS_PATH, &["status", "pg"]);
    assert!(r.stdout.contains(
        "\tNo. of available backups: 0\n\tFirst available backup: 20261125T031632\n\tLast available backup: 20261125T031632\n\tMinimum redundancy requirements: FAILED (0/1)\n"
    ), "{}", r.stdout);
    // An unreadable backup.info stops status after the lines so far, with
    // an exception (its wording is the catalog loader's, not Barman's).
    let oldest = meta.join("20261125T031550-backup.info");
    let text = std::fs::read_to_string(&oldest).unwrap();
    std::fs::write(&oldest, text + "garbage line\n").unwrap();
    let theirs = run(&env, true, SYS_PATH, &["status", "pg"]);
    let ours = run(&env, false, SYS_PATH, &["status", "pg"]);
    assert_eq!(ours.stdout, theirs.stdout);
    assert_eq!(ours.code, 1);
    assert_eq!(theirs.code, 1);
    assert!(ours.stdout.ends_with("\tRetention policies: enforced (mode: auto, retention: REDUNDANCY 2, WAL retention: MAIN)\n"));
    assert!(ours.stderr.contains("EXCEPTION: ") && ours.stderr.contains("garbage line"));
}

/// A real PostgreSQL 15 backup taken by barman-rs (local-rsync, with the
/// PostgreSQL-layout manifest it writes): verified alike by both; its
/// manifest removed, generated alike by both; verified again; then damaged.
#[test]
fn pg_generate_manifest_and_verify_backup_like_barman() {
    let (_pg, env) = crate::pg_backup::setup(false, "backup_method = local-rsync\n");
    let r = env.barman(&["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let (id, _) = crate::pg_backup::only_backup(&env);
    let data = env.home().join("pg/base").join(&id).join("data");
    // path_prefix finds pg_verifybackup: PATH need not have it.
    let r = same(&env, SYS_PATH, &["verify-backup", "pg", &id]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r
        .stdout
        .ends_with("Calling pg_verifybackup\nbackup successfully verified\n"));

    std::fs::remove_file(data.join("backup_manifest")).unwrap();
    let text = generate_both(&env, SYS_PATH, "pg", &id, &data);
    assert!(text.contains("\"Path\": \"global/pg_control\""));
    let r = same(&env, SYS_PATH, &["verify", "pg", "latest"]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // status sees the backup as Barman does (other lines are live values).
    let lines = |r: &Run| -> Vec<String> {
        r.stdout
            .lines()
            .filter(|l| l.contains("backup") || l.contains("redundancy"))
            .map(str::to_string)
            .collect()
    };
    let ours = run(&env, false, SYS_PATH, &["status", "pg"]);
    let theirs = run(&env, true, SYS_PATH, &["status", "pg"]);
    assert_eq!(lines(&ours), lines(&theirs));
    assert!(ours
        .stdout
        .contains(&format!("\tLast available backup: {id}\n")));

    // A damaged relation file.
    let victim = walkdir::WalkDir::new(data.join("base"))
        .into_iter()
        .flatten()
        .find(|e| e.file_type().is_file() && e.metadata().unwrap().len() >= 8192)
        .unwrap()
        .into_path();
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();
    let r = same(&env, SYS_PATH, &["verify", "pg", "latest"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("checksum mismatch"), "{}", r.stderr);
}
