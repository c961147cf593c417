//! export-backup and import-backup on a real PostgreSQL backup (with a
//! tablespace): Barman 3.19.1's checks and messages, the tarball's layout,
//! a backup moved from one barman-rs host to another and recovered there,
//! and the same both ways with real Barman 3.19.1.

use std::path::{Path, PathBuf};

use crate::harness::TestEnv;
use crate::interop::barman_py;
use crate::pg_backup::{only_backup, setup};
use crate::pg_interop_backup::{mark, py_ok, recover_with, rs_ok};

/// A second backup host for the same PostgreSQL server: the first's
/// configuration with its own home (and its own incoming/), and the
/// server's identity.json as its own backup would have written it.
fn second_host(env: &TestEnv, pg_dir: &Path) -> TestEnv {
    let other = TestEnv::new();
    let incoming = other.root().join("incoming");
    std::fs::create_dir_all(other.home()).unwrap();
    std::fs::create_dir_all(&incoming).unwrap();
    let conf = std::fs::read_to_string(env.config_path())
        .unwrap()
        .replace(
            &env.home().display().to_string(),
            &other.home().display().to_string(),
        )
        .replace(
            &env.root().display().to_string(),
            &other.root().display().to_string(),
        )
        .replace(
            &format!("{}/incoming", pg_dir.display()),
            &incoming.display().to_string(),
        );
    std::fs::write(other.config_path(), conf).unwrap();
    other
}

fn give_identity(from: &TestEnv, to: &TestEnv) {
    std::fs::create_dir_all(to.home().join("pg")).unwrap();
    std::fs::copy(
        from.home().join("pg/identity.json"),
        to.home().join("pg/identity.json"),
    )
    .unwrap();
}

/// The tarball path printed by a successful export.
fn exported(env: &TestEnv, stdout: &str) -> PathBuf {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Export completed successfully: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    PathBuf::from(
        line.replace("@ROOT@", &env.root().display().to_string())
            .replace("@HOME@", &env.home().display().to_string()),
    )
}

fn members(tarball: &Path) -> Vec<String> {
    let out = std::process::Command::new("tar")
        .arg("tf")
        .arg(tarball)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn pg_export_import_moves_a_backup_between_hosts_both_ways() {
    let (pg, env) = setup(false, "backup_method = postgres\n");
    mark(&pg, "before", 10);
    rs_ok(&env, &["backup", "--wait", "pg"]);
    let (id, _) = only_backup(&env);
    let out_dir = env.root().join("exports");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.to_str().unwrap();

    // Barman's checks, in its order and words.
    let missing = env.barman(&["export-backup", "pg", &id, "/nonexistent/dir"]);
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr,
        "ERROR: Output directory '/nonexistent/dir' does not exist\n"
    );
    let lvl = env.barman(&["export-backup", "pg", &id, out, "--compression-level", "3"]);
    assert_eq!(
        lvl.stderr,
        "ERROR: --compression-level requires --compression to be set\n"
    );
    let bad = env.barman(&[
        "export-backup",
        "pg",
        &id,
        out,
        "--compression",
        "gzip",
        "--compression-level",
        "0",
    ]);
    assert_eq!(
        bad.stderr,
        "ERROR: Invalid compression level '0' for algorithm 'gzip'. Valid levels are: 1, 2, 3, 4, 5, 6, 7, 8, 9\n"
    );
    let unknown = env.barman(&["export-backup", "pg", "20000101T000000", out]);
    assert_eq!(
        unknown.stderr,
        "ERROR: Unknown backup '20000101T000000' for server 'pg'\n"
    );

    // A plain export: Barman's member order and name.
    let stdout = rs_ok(&env, &["export-backup", "pg", "latest", out]);
    assert!(
        stdout.starts_with(&env.redact(&format!(
            "Exporting backup 'latest' from server 'pg' to '{out}'\n"
        ))),
        "{stdout}"
    );
    let tarball = exported(&env, &stdout);
    let name = tarball.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with(&format!("backup-export-pg-{id}-")) && name.ends_with(".tar"),
        "{name}"
    );
    let list = members(&tarball);
    assert_eq!(
        &list[..4],
        ["identity.json", "backup.info", "barman.json", "backup"]
    );
    assert_eq!(list.last().unwrap(), "xlog.db");
    assert!(
        list.contains(&"backup/data/PG_VERSION".to_string()),
        "{list:?}"
    );
    assert!(list.iter().any(|m| m.starts_with("wals/")), "{list:?}");

    // Into a second barman-rs host: refused without identity, then
    // imported, kept standalone, refused twice, recovered and started.
    let host2 = second_host(&env, &pg.dir);
    let t = tarball.to_str().unwrap();
    let no_id = host2.barman(&["import-backup", "pg", t]);
    assert_eq!(no_id.code, 1);
    assert_eq!(
        no_id.stderr,
        "ERROR: No identity file found for server 'pg'. The identity file is required to validate the backup during import.\n"
    );
    give_identity(&env, &host2);
    assert_eq!(
        rs_ok(&host2, &["import-backup", "pg", t]),
        host2.redact(&format!("Importing backup from '{t}' to server 'pg'\nSuccessfully imported backup '{id}' into server 'pg'\n"))
    );
    assert_eq!(
        rs_ok(&host2, &["keep", "--status", "pg", &id]),
        "Server pg:\n\tKeep: standalone\n"
    );
    let again = host2.barman(&["import-backup", "pg", t]);
    assert_eq!(again.code, 1);
    assert!(
        again.stderr.ends_with(&format!(
            "EXCEPTION: Backup '{id}' already exists in the catalog for server 'pg'\nSee log file for more details.\n"
        )),
        "{}",
        again.stderr
    );
    assert_eq!(
        std::fs::read(host2.home().join(format!("pg/meta/{id}-backup.info"))).unwrap(),
        std::fs::read(env.home().join(format!("pg/meta/{id}-backup.info"))).unwrap()
    );
    let run = host2.barman(&["check-backup", "pg", &id]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    recover_with(rs_ok, &pg, &host2, &id, "rs2", true, &[], &[("before", 10)]);

    // A damaged copy is refused by its checksum, naming both sums.
    let damaged = out_dir.join("damaged");
    std::fs::create_dir_all(&damaged).unwrap();
    let copy = damaged.join(&name);
    std::fs::copy(&tarball, &copy).unwrap();
    {
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
        f.seek(std::io::SeekFrom::Start(600)).unwrap();
        f.write_all(b"X").unwrap();
    }
    let host3 = second_host(&env, &pg.dir);
    give_identity(&env, &host3);
    let dmg = host3.barman(&["import-backup", "pg", copy.to_str().unwrap()]);
    assert_eq!(dmg.code, 1);
    assert!(
        dmg.stderr
            .starts_with("ERROR: Tarball checksum mismatch: filename contains '"),
        "{}",
        dmg.stderr
    );

    // Real Barman 3.19.1 imports ours (gzip) and recovers it.
    let gz = exported(
        &env,
        &rs_ok(
            &env,
            &[
                "export-backup",
                "pg",
                &id,
                out,
                "--compression",
                "gzip",
                "--compression-level",
                "1",
            ],
        ),
    );
    assert!(gz.to_str().unwrap().ends_with(".tar.gz"));
    let py_host = second_host(&env, &pg.dir);
    give_identity(&env, &py_host);
    let imported = py_ok(&py_host, &["import-backup", "pg", gz.to_str().unwrap()]);
    assert!(
        imported.contains(&format!(
            "Successfully imported backup '{id}' into server 'pg'"
        )),
        "{imported}"
    );
    let listed = py_ok(&py_host, &["list-backups", "pg"]);
    assert!(listed.contains(&id), "{listed}");
    recover_with(
        py_ok,
        &pg,
        &py_host,
        &id,
        "py",
        true,
        &[],
        &[("before", 10)],
    );

    // And barman-rs imports what real Barman exports.
    let py_out = py_host.root().join("py-exports");
    std::fs::create_dir_all(&py_out).unwrap();
    let from_py = exported(
        &py_host,
        &py_ok(
            &py_host,
            &[
                "export-backup",
                "pg",
                &id,
                py_out.to_str().unwrap(),
                "--compression",
                "xz",
            ],
        ),
    );
    let host4 = second_host(&env, &pg.dir);
    give_identity(&env, &host4);
    let p = from_py.to_str().unwrap();
    assert!(rs_ok(&host4, &["import-backup", "pg", p]).contains("Successfully imported backup"));
    assert_eq!(
        rs_ok(&host4, &["list-backups", "--minimal", "pg"]).trim(),
        id
    );
    recover_with(rs_ok, &pg, &host4, &id, "rs4", true, &[], &[("before", 10)]);
    // Barman reads what barman-rs imported.
    let shown = barman_py(&host4, &["show-backup", "pg", &id]);
    assert!(
        shown.status.success(),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
}
