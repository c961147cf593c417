//! `generate-manifest`, run side by side with real Barman 3.19.1 on the
//! same catalog: the same messages, exit statuses and manifest bytes.

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
