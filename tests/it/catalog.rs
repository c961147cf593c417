//! Barman's catalog formats (backup.info, xlog.db) against the files real
//! Barman 3.19.1 wrote (tests/fixtures/barman/backups_pg/catalog*).

use std::path::{Path, PathBuf};

/// Every backup.info Barman 3.19.1 wrote in the captured catalog parses
/// and renders back byte for byte; every xlog.db line round-trips.
#[test]
fn barmans_catalog_files_round_trip() {
    let root = crate::harness::fixtures().join("backups_pg");
    let mut infos = 0;
    let mut lines = 0;
    for dir in ["catalog", "catalog.after-backups"] {
        for entry in walk(&root.join(dir)) {
            let text = std::fs::read_to_string(&entry).unwrap();
            let name = entry.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with("-backup.info") {
                let info = barman::catalog::backup_info::BackupInfo::parse(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", entry.display()));
                assert_eq!(info.render(), text, "{}", entry.display());
                for key in [
                    "backup_label",
                    "copy_stats",
                    "tablespaces",
                    "included_files",
                ] {
                    if let Some(v) = info.get(key) {
                        let parsed = barman::catalog::pylit::parse(v).unwrap();
                        assert_eq!(parsed.repr(), v, "{key} of {}", entry.display());
                    }
                }
                infos += 1;
            } else if name.ends_with("-xlog.db") {
                for line in text.lines() {
                    let e = barman::catalog::xlogdb::Entry::parse(line).unwrap();
                    assert_eq!(e.to_line(), format!("{line}\n"));
                    lines += 1;
                }
            }
        }
    }
    assert!(
        infos >= 4 && lines >= 4,
        "{infos} backup.info, {lines} xlog.db lines"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn catalog_at(home: &Path, name: &str) -> barman::catalog::ServerCatalog {
    barman::catalog::ServerCatalog {
        name: name.into(),
        barman_home: home.to_path_buf(),
        backup_directory: home.to_path_buf(),
        basebackups_directory: home.join("base"),
        wals_directory: home.join("wals"),
        incoming_wals_directory: home.join("incoming"),
        streaming_wals_directory: home.join("streaming"),
        errors_directory: home.join("errors"),
        xlogdb_directory: home.join("wals"),
    }
}

/// The backups Barman 3.19.1 took, listed from its catalog; a legacy
/// base/<ID>/backup.info is read too, meta/ wins, keep requests are seen.
#[test]
fn backups_are_listed_from_barmans_catalog() {
    let root = crate::harness::fixtures().join("backups_pg/catalog/pgr");
    let list = barman::catalog::backups::load(&catalog_at(&root, "pgr")).unwrap();
    let ids: Vec<&str> = list.iter().map(|b| b.id.as_str()).collect();
    let mut expected: Vec<String> = std::fs::read_dir(root.join("meta"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix("-backup.info")
                .map(str::to_string)
        })
        .collect();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(list
        .iter()
        .all(|b| b.info.status() == "DONE" && b.info.get("mode") == Some("rsync-concurrent")));

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::fs::create_dir_all(home.join("meta")).unwrap();
    std::fs::create_dir_all(home.join("base/20260101T000000")).unwrap();
    std::fs::create_dir_all(home.join("base/20260102T000000")).unwrap();
    std::fs::write(
        home.join("base/20260101T000000/backup.info"),
        "status=DONE\nbackup_name=legacy\n",
    )
    .unwrap();
    std::fs::write(
        home.join("base/20260102T000000/backup.info"),
        "status=FAILED\n",
    )
    .unwrap();
    std::fs::write(
        home.join("meta/20260102T000000-backup.info"),
        "status=DONE\n",
    )
    .unwrap();
    std::fs::write(home.join("meta/20260101T000000-keep"), "standalone").unwrap();
    let list = barman::catalog::backups::load(&catalog_at(home, "x")).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].info.get("backup_name"), Some("legacy"));
    assert_eq!(list[0].keep.as_deref(), Some("standalone"));
    assert_eq!(
        list[1].info.status(),
        "DONE",
        "meta/ wins over the legacy file"
    );
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A barman_home holding Barman's catalog snapshot `snapshot` of the
/// backups_pg scenario, with the scenario's configuration.
pub fn env_with(snapshot: &str) -> (crate::harness::TestEnv, PathBuf) {
    let fx = crate::harness::fixtures().join("backups_pg");
    let env = crate::harness::TestEnv::new();
    let conf = std::fs::read_to_string(fx.join("barman.conf"))
        .unwrap()
        .replace("barman_user = postgres", "barman_user = root")
        .replace("@SOCK@", "/nonexistent")
        .replace("@PORT@", "5432");
    env.write_config(&conf);
    for srv in ["pg", "pgr"] {
        copy_tree(&fx.join(snapshot).join(srv), &env.home().join(srv));
    }
    (env, fx)
}

pub fn assert_like(env: &crate::harness::TestEnv, fx: &Path, slug: &str, args: &[&str]) {
    let run = env.barman(args);
    let want = |ext: &str| std::fs::read_to_string(fx.join(format!("{slug}.{ext}"))).unwrap();
    assert_eq!(run.stdout, want("out"), "stdout of {slug}");
    assert_eq!(run.stderr, want("err"), "stderr of {slug}");
    assert_eq!(
        run.code.to_string(),
        want("rc").trim(),
        "exit status of {slug}"
    );
}

#[test]
fn list_backups_like_barman() {
    let (env, fx) = env_with("catalog.after-backups");
    assert_like(&env, &fx, "list-backups_pg", &["list-backups", "pg"]);
    assert_like(&env, &fx, "list-backups_all", &["list-backups", "all"]);
    assert_like(
        &env,
        &fx,
        "f_json_list-backups_pg",
        &["-f", "json", "list-backups", "pg"],
    );
    let (env, fx) = env_with("catalog");
    assert_like(
        &env,
        &fx,
        "after_delete__list-backups_pg",
        &["list-backups", "pg"],
    );
    assert_like(
        &env,
        &fx,
        "list-backups_nosuch",
        &["list-backups", "nosuch"],
    );
}

#[test]
fn list_backups_shows_keep_requests_like_barman() {
    let (env, fx) = env_with("catalog.after-backups");
    // What `keep pg oldest --target standalone` wrote.
    std::fs::write(
        env.home().join("pg/meta/20261125T031550-keep"),
        "standalone",
    )
    .unwrap();
    assert_like(&env, &fx, "kept__list-backups_pg", &["list-backups", "pg"]);
}

#[test]
fn keep_like_barman() {
    let (env, fx) = env_with("catalog.after-backups");
    assert_like(
        &env,
        &fx,
        "keep_pg_oldest_target_standalone",
        &["keep", "pg", "oldest", "--target", "standalone"],
    );
    assert_eq!(
        std::fs::read_to_string(env.home().join("pg/meta/20261125T031550-keep")).unwrap(),
        "standalone"
    );
    assert_like(
        &env,
        &fx,
        "keep_status_pg_oldest",
        &["keep", "--status", "pg", "oldest"],
    );
    assert_like(&env, &fx, "kept__list-backups_pg", &["list-backups", "pg"]);
    assert_like(
        &env,
        &fx,
        "keep_release_pg_oldest",
        &["keep", "--release", "pg", "oldest"],
    );
    assert!(!env.home().join("pg/meta/20261125T031550-keep").exists());
    assert_like(&env, &fx, "list-backups_pg", &["list-backups", "pg"]);
    let run = env.barman(&["keep", "--status", "pg", "nosuch"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (1, "ERROR: Unknown backup 'nosuch' for server 'pg'\n")
    );
    let run = env.barman(&["keep", "--status", "pg", "second"]);
    assert_eq!(run.stdout, "Server pg:\n\tKeep: nokeep\n");
    let run = env.barman(&["keep", "pg", "latest"]);
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (
            1,
            "ERROR: one of the arguments -r/--release -s/--status --target is required\n"
        )
    );
}
