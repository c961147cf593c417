//! The interop gate for backups, against a real PostgreSQL (15 and 18 in CI) under
//! pgbench load and real Barman 3.19.1 sharing one configuration file and
//! one catalog: Barman lists, shows and recovers what barman-rs backed up
//! (local-rsync with 2 jobs, postgres plain and gzip tar), and the
//! recovered cluster starts with the rows written before the backup; barman-rs lists, shows and deletes what
//! Barman backed up; barman-rs reuses (links) a Barman backup that has no
//! backup_manifest, and Barman recovers the result.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::harness::pg::{PgCluster, Recovered};
use crate::harness::TestEnv;
use crate::interop::barman_py;
use crate::pg_backup::{field, linked_files, load, mkdir_postgres, setup};

/// Real Barman's exit code, stdout and stderr (paths redacted).
fn py(env: &TestEnv, args: &[&str]) -> (i32, String, String) {
    let out = barman_py(env, args);
    (
        out.status.code().unwrap_or(-1),
        env.redact(&String::from_utf8_lossy(&out.stdout)),
        env.redact(&String::from_utf8_lossy(&out.stderr)),
    )
}

/// Runs real Barman and insists on exit 0; returns stdout.
pub(crate) fn py_ok(env: &TestEnv, args: &[&str]) -> String {
    let (code, out, err) = py(env, args);
    assert_eq!(code, 0, "Barman {args:?}:\n{out}\n{err}");
    out
}

/// barman-rs, insisting on exit 0; returns stdout.
pub(crate) fn rs_ok(env: &TestEnv, args: &[&str]) -> String {
    let run = env.barman(args);
    assert_eq!(
        run.code, 0,
        "barman-rs {args:?}:\n{}\n{}",
        run.stdout, run.stderr
    );
    run.stdout
}

/// Replaces the server's trailing method lines (what `setup` appended).
fn set_method(env: &TestEnv, from: &str, to: &str) {
    let conf = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(conf.contains(from), "{conf}");
    std::fs::write(env.config_path(), conf.replace(from, to)).unwrap();
}

fn backup_ids(env: &TestEnv) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(env.home().join("pg/meta"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix("-backup.info"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The backup taken since `before` (exactly one).
fn new_backup(env: &TestEnv, before: &[String]) -> String {
    let now = backup_ids(env);
    let fresh: Vec<&String> = now.iter().filter(|i| !before.contains(i)).collect();
    assert_eq!(fresh.len(), 1, "before {before:?}, now {now:?}");
    fresh[0].clone()
}

fn info(env: &TestEnv, id: &str) -> String {
    std::fs::read_to_string(env.home().join(format!("pg/meta/{id}-backup.info"))).unwrap()
}

/// Writes `n` marker rows tagged `tag` (before a backup).
pub(crate) fn mark(pg: &PgCluster, tag: &str, n: u32) {
    pg.psql("CREATE TABLE IF NOT EXISTS marker (tag text, n int)");
    pg.psql(&format!(
        "INSERT INTO marker SELECT '{tag}', g FROM generate_series(1, {n}) g"
    ));
}

/// xlog.db names every file under wals/ exactly once, and nothing else.
fn assert_xlogdb_consistent(env: &TestEnv) -> BTreeSet<String> {
    let wals = env.home().join("pg/wals");
    let db = std::fs::read_to_string(wals.join("pg-xlog.db")).unwrap();
    let mut listed = BTreeSet::new();
    for l in db.lines() {
        let name = l.split('\t').next().unwrap().to_string();
        assert!(
            listed.insert(name.clone()),
            "{name} twice in xlog.db:\n{db}"
        );
    }
    let mut on_disk = BTreeSet::new();
    for e in walkdir::WalkDir::new(&wals)
        .min_depth(1)
        .into_iter()
        .flatten()
    {
        if e.file_type().is_file() {
            let n = e.file_name().to_str().unwrap().to_string();
            if n != "pg-xlog.db" {
                on_disk.insert(n);
            }
        }
    }
    assert_eq!(listed, on_disk, "xlog.db:\n{db}");
    listed
}

fn chown_postgres(path: &Path) {
    let st = std::process::Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Real Barman recovers backup `id` (WAL copied, no get-wal) into a fresh
/// directory beside the cluster, with the tablespace moved; PostgreSQL
/// starts on it, finishes recovery and has `markers` (tag, rows).
/// `immediate` stops recovery as soon as the backup is consistent (at its
/// end: proves begin/end and the copy itself), else all archived WAL is
/// replayed.
fn recover_and_check(
    pg: &PgCluster,
    env: &TestEnv,
    id: &str,
    tag: &str,
    immediate: bool,
    extra: &[&str],
    markers: &[(&str, u32)],
) {
    recover_with(py_ok, pg, env, id, tag, immediate, extra, markers)
}

/// [`recover_and_check`] with either tool.
#[allow(clippy::too_many_arguments)]
pub(crate) fn recover_with(
    tool: fn(&TestEnv, &[&str]) -> String,
    pg: &PgCluster,
    env: &TestEnv,
    id: &str,
    tag: &str,
    immediate: bool,
    extra: &[&str],
    markers: &[(&str, u32)],
) {
    let dest = pg.dir.join(format!("rec-{tag}"));
    let tbs = pg.dir.join(format!("rec-{tag}-tbs"));
    let socket = pg.dir.join(format!("rec-{tag}-sock"));
    for d in [&dest, &tbs, &socket] {
        mkdir_postgres(d);
    }
    std::fs::set_permissions(&dest, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let tbs_map = format!("tbs:{}", tbs.display());
    let mut args = vec![
        "recover",
        "pg",
        id,
        dest.to_str().unwrap(),
        "--tablespace",
        &tbs_map,
    ];
    if immediate {
        args.extend(["--target-immediate", "--target-action", "promote"]);
    }
    args.extend(extra);
    let out = tool(env, &args);
    assert!(
        out.contains(&format!(
            "Starting local restore for server pg using backup {id}"
        )),
        "{out}"
    );
    assert!(out.contains("Copying required WAL segments."), "{out}");
    assert!(
        out.contains("Your PostgreSQL server has been successfully prepared for recovery!"),
        "{out}"
    );
    // Barman runs as root: hand the result to postgres (as a site would).
    chown_postgres(&dest);
    chown_postgres(&tbs);
    let wal_dir = if immediate { "barman_wal" } else { "pg_wal" };
    let wal_count = std::fs::read_dir(dest.join(wal_dir))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .count();
    assert!(wal_count > 0, "Barman copied no WAL");
    let link = std::fs::read_link(
        std::fs::read_dir(dest.join("pg_tblspc"))
            .unwrap()
            .flatten()
            .next()
            .expect("a pg_tblspc link")
            .path(),
    )
    .unwrap();
    assert_eq!(link, tbs);

    let rec = Recovered::start(
        &dest,
        &socket,
        pg.port,
        &pg.dir.join(format!("rec-{tag}.log")),
    );
    rec.wait_promoted();
    for (t, n) in markers {
        assert_eq!(
            rec.psql(&format!("SELECT count(*) FROM marker WHERE tag = '{t}'")),
            n.to_string(),
            "{tag}: marker {t}"
        );
    }
    assert_eq!(rec.psql("SELECT count(*) FROM t_tbs"), "20000");
    assert_eq!(
        rec.psql("SELECT pg_tablespace_location(oid) FROM pg_tablespace WHERE spcname = 'tbs'"),
        tbs.display().to_string()
    );
    assert_eq!(rec.psql("SELECT count(*) FROM pgbench_branches"), "2");
}

/// list-files, every target: barman-rs lists what Barman lists.
fn list_files_agree(env: &TestEnv, id: &str) {
    for target in ["standalone", "data", "wal", "full"] {
        let args = ["list-files", "pg", id, "--target", target];
        let theirs = py_ok(env, &args);
        assert!(!theirs.is_empty(), "{args:?}");
        let sorted = |t: &str| {
            let mut v: Vec<String> = t.lines().map(str::to_string).collect();
            v.sort();
            v
        };
        assert_eq!(sorted(&rs_ok(env, &args)), sorted(&theirs), "{args:?}");
    }
}

/// Barman's list-backups line for `id` and its show-backup basics, and
/// both print the same as barman-rs.
fn barman_sees(env: &TestEnv, id: &str, method_letter: &str) {
    let list = py_ok(env, &["list-backups", "pg"]);
    assert_eq!(rs_ok(env, &["list-backups", "pg"]), list);
    assert!(
        list.lines()
            .any(|l| l.starts_with(&format!("pg {id} - {method_letter} - "))),
        "{list}"
    );
    let show = py_ok(env, &["show-backup", "pg", id]);
    assert_eq!(
        rs_ok(env, &["show-backup", "pg", id]),
        show,
        "show-backup {id}"
    );
    list_files_agree(env, id);
    let ours = env.barman(&["check-backup", "pg", id]);
    let (code, out, err) = py(env, &["check-backup", "pg", id]);
    assert_eq!(
        (ours.code, ours.stdout, ours.stderr),
        (code, out, err),
        "check-backup {id}"
    );
    for want in [
        format!("Backup {id}:"),
        "Server Name            : pg".to_string(),
        "Status                 : DONE".to_string(),
        format!(
            "PostgreSQL Version     : {}0",
            crate::harness::pg::default_major()
        ),
        "    tbs                  : ".to_string(),
    ] {
        assert!(show.contains(&want), "no {want:?} in\n{show}");
    }
}

/// Two backup.info files of the same server and method, one per tool:
/// the same keys, the same values where nothing changed between the two
/// backups, and copy_stats with the same keys.
fn same_shape(theirs: &str, ours: &str) {
    let map = |t: &str| -> std::collections::BTreeMap<String, String> {
        t.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (a, b) = (map(theirs), map(ours));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "Barman's:\n{theirs}\nours:\n{ours}"
    );
    for k in [
        "backup_type",
        "compression",
        "config_file",
        "data_checksums",
        "encryption",
        "error",
        "hba_file",
        "ident_file",
        "included_files",
        "mode",
        "parent_backup_id",
        "pgdata",
        "server_name",
        "status",
        "summarize_wal",
        "systemid",
        "tablespaces",
        "timeline",
        "version",
        "xlog_segment_size",
    ] {
        assert_eq!(
            a.get(k),
            b.get(k),
            "{k}: Barman's:\n{theirs}\nours:\n{ours}"
        );
    }
    let stat_keys = |v: &str| -> Vec<String> {
        let mut keys: Vec<String> = v
            .split(", '")
            .filter_map(|p| p.trim_start_matches("{'").split_once("':"))
            .map(|(k, _)| k.to_string())
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(
        stat_keys(&a["copy_stats"]),
        stat_keys(&b["copy_stats"]),
        "copy_stats: {} / {}",
        a["copy_stats"],
        b["copy_stats"]
    );
    for (k, v) in [("theirs", &a), ("ours", &b)] {
        assert!(
            v["backup_label"].starts_with("'START WAL LOCATION: "),
            "{k}: {}",
            v["backup_label"]
        );
    }
}

/// Every path under a backup directory with its type and mode.
fn layout(base: &Path) -> BTreeSet<(String, char, u32)> {
    walkdir::WalkDir::new(base)
        .min_depth(1)
        .into_iter()
        .flatten()
        .map(|e| {
            let rel = e.path().strip_prefix(base).unwrap().display().to_string();
            let m = e.path().symlink_metadata().unwrap();
            let kind = if m.is_dir() {
                'd'
            } else if m.file_type().is_symlink() {
                'l'
            } else {
                'f'
            };
            (rel, kind, m.mode() & 0o7777)
        })
        .collect()
}

/// Barman's rsync layout and ours hold the same directories and files
/// with the same modes (our backup_manifest aside; relation forks that
/// autovacuum may create between the two backups aside).
fn same_layout(theirs: &Path, ours: &Path) {
    let volatile = |p: &str| {
        p == "data/backup_manifest"
            || p.ends_with("_fsm")
            || p.ends_with("_vm")
            || p.starts_with("data/pg_stat/")
            || p.starts_with("data/pg_xact/")
            || p.starts_with("data/pg_multixact/")
            || p.starts_with("data/pg_logical/")
    };
    let a: BTreeSet<_> = layout(theirs)
        .into_iter()
        .filter(|(p, _, _)| !volatile(p))
        .collect();
    let b: BTreeSet<_> = layout(ours)
        .into_iter()
        .filter(|(p, _, _)| !volatile(p))
        .collect();
    let only_theirs: Vec<_> = a.difference(&b).collect();
    let only_ours: Vec<_> = b.difference(&a).collect();
    assert!(
        only_theirs.is_empty() && only_ours.is_empty(),
        "only in Barman's: {only_theirs:?}\nonly in ours: {only_ours:?}"
    );
}

const RSYNC: &str = "backup_method = local-rsync\nreuse_backup = link\nparallel_jobs = 2\n";
const POSTGRES: &str = "backup_method = postgres\n";

#[test]
fn pg_interop_barman_recovers_our_backups() {
    let (pg, env) = setup(false, RSYNC);
    mark(&pg, "rsync", 777);
    let mut bench = load(&pg, 3);
    rs_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let _ = bench.wait();
    let rsync_id = new_backup(&env, &[]);
    assert_eq!(field(&info(&env, &rsync_id), "status"), "DONE");

    set_method(&env, RSYNC, POSTGRES);
    mark(&pg, "postgres", 555);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut bench = load(&pg, 3);
    rs_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let _ = bench.wait();
    let pg_id = new_backup(&env, std::slice::from_ref(&rsync_id));
    assert_eq!(field(&info(&env, &pg_id), "status"), "DONE");

    barman_sees(&env, &rsync_id, "R");
    barman_sees(&env, &pg_id, "F");
    // Barman's own postgres backup of the same cluster: same metadata.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    py_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let theirs = new_backup(&env, &[rsync_id.clone(), pg_id.clone()]);
    same_shape(&info(&env, &theirs), &info(&env, &pg_id));
    same_layout(
        &env.home().join("pg/base").join(&theirs),
        &env.home().join("pg/base").join(&pg_id),
    );
    // Stopping at the end of the backup: rows written after it are absent.
    recover_and_check(
        &pg,
        &env,
        &rsync_id,
        "rsync",
        true,
        &[],
        &[("rsync", 777), ("postgres", 0)],
    );
    recover_and_check(
        &pg,
        &env,
        &pg_id,
        "postgres",
        false,
        &[],
        &[("rsync", 777), ("postgres", 555)],
    );
    // Barman deletes what we wrote, and the WAL catalog stays whole.
    for id in [&rsync_id, &pg_id] {
        let out = py_ok(&env, &["delete", "pg", id]);
        assert!(out.contains(&format!("Deleted backup {id} ")), "{out}");
        assert!(!env.home().join("pg/base").join(id).exists());
        assert_xlogdb_consistent(&env);
    }
    assert_eq!(backup_ids(&env), [theirs]);
}

#[test]
fn pg_interop_we_list_show_and_delete_barman_backups() {
    let (pg, env) = setup(false, RSYNC);
    mark(&pg, "rsync", 10);
    let mut bench = load(&pg, 3);
    py_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let _ = bench.wait();
    let rsync_id = new_backup(&env, &[]);
    set_method(&env, RSYNC, POSTGRES);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut bench = load(&pg, 3);
    py_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let _ = bench.wait();
    let pg_id = new_backup(&env, std::slice::from_ref(&rsync_id));
    for id in [&rsync_id, &pg_id] {
        assert_eq!(field(&info(&env, id), "status"), "DONE", "{id}");
    }
    assert_xlogdb_consistent(&env);

    // What we print about Barman's catalog is what Barman prints.
    assert_eq!(
        rs_ok(&env, &["list-backups", "pg"]),
        py_ok(&env, &["list-backups", "pg"])
    );
    for id in [&rsync_id, &pg_id] {
        assert_eq!(
            rs_ok(&env, &["show-backup", "pg", id]),
            py_ok(&env, &["show-backup", "pg", id]),
            "show-backup {id}"
        );
        list_files_agree(&env, id);
    }

    // Delete the oldest: the WAL before the next backup goes with it.
    let next_begin = field(&info(&env, &pg_id), "begin_wal");
    let out = rs_ok(&env, &["delete", "pg", &rsync_id]);
    assert!(
        out.starts_with(&format!("Deleting backup {rsync_id} for server pg\n")),
        "{out}"
    );
    assert!(out.contains("Delete associated WAL segments:\n"), "{out}");
    assert!(
        out.contains(&format!("Deleted backup {rsync_id} (start time: ")),
        "{out}"
    );
    assert!(!env.home().join("pg/base").join(&rsync_id).exists());
    assert!(!env
        .home()
        .join(format!("pg/meta/{rsync_id}-backup.info"))
        .exists());
    let left = assert_xlogdb_consistent(&env);
    assert!(
        left.iter()
            .filter(|n| n.len() >= 24 && !n.ends_with(".history"))
            .all(|n| n[..24] >= *next_begin),
        "WAL before {next_begin} left: {left:?}"
    );
    let list = py_ok(&env, &["list-backups", "pg"]);
    assert!(!list.contains(&rsync_id), "{list}");
    assert!(list.contains(&pg_id), "{list}");
    // Barman rebuilding xlog.db from what we left finds the same files.
    let ours = std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db")).unwrap();
    py_ok(&env, &["rebuild-xlogdb", "pg"]);
    let theirs = std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db")).unwrap();
    let names = |db: &str| -> BTreeSet<String> {
        db.lines()
            .map(|l| l.split('\t').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&ours), names(&theirs));

    // And the last one (a pg_basebackup tree with backup_manifest).
    let out = rs_ok(&env, &["delete", "pg", &pg_id]);
    assert!(
        out.contains(&format!("Deleted backup {pg_id} (start time: ")),
        "{out}"
    );
    assert!(!env.home().join("pg/base").join(&pg_id).exists());
    assert!(backup_ids(&env).is_empty());
    assert_xlogdb_consistent(&env);
    let list = py_ok(&env, &["list-backups", "pg"]);
    assert!(!list.contains(&pg_id), "{list}");
}

#[test]
fn pg_interop_we_link_to_a_barman_backup_and_barman_recovers_it() {
    let (pg, env) = setup(false, RSYNC);
    mark(&pg, "theirs", 11);
    py_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let theirs = new_backup(&env, &[]);
    assert!(!env
        .home()
        .join("pg/base")
        .join(&theirs)
        .join("data/backup_manifest")
        .exists());
    mark(&pg, "ours", 22);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut bench = load(&pg, 3);
    let out = rs_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let _ = bench.wait();
    assert!(out.contains("deduplication ratio)."), "{out}");
    let ours = new_backup(&env, std::slice::from_ref(&theirs));
    assert_eq!(field(&info(&env, &ours), "status"), "DONE");
    let linked = linked_files(&env.home().join("pg/base").join(&ours));
    assert!(linked > 100, "only {linked} files were linked");
    barman_sees(&env, &ours, "R");
    same_shape(&info(&env, &theirs), &info(&env, &ours));
    same_layout(
        &env.home().join("pg/base").join(&theirs),
        &env.home().join("pg/base").join(&ours),
    );
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().mode() & 0o7777;
    for rel in ["pg/base/{}", "pg/meta/{}-backup.info"] {
        assert_eq!(
            mode(env.home().join(rel.replace("{}", &theirs))),
            mode(env.home().join(rel.replace("{}", &ours))),
            "{rel}"
        );
    }
    mark(&pg, "after", 1);
    recover_and_check(
        &pg,
        &env,
        &ours,
        "linked",
        true,
        &[],
        &[("theirs", 11), ("ours", 22), ("after", 0)],
    );
}

#[test]
fn pg_interop_barman_recovers_our_compressed_tar_backup() {
    let (pg, env) = setup(
        false,
        "backup_method = postgres\nbackup_compression = gzip\n\
         backup_compression_format = tar\nbackup_compression_location = client\n",
    );
    mark(&pg, "tar", 33);
    let mut bench = load(&pg, 3);
    rs_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let _ = bench.wait();
    let id = new_backup(&env, &[]);
    let info = info(&env, &id);
    assert_eq!(field(&info, "status"), "DONE");
    assert_eq!(field(&info, "compression"), "gzip");
    let oid = pg.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'tbs'");
    let data = env.home().join("pg/base").join(&id).join("data");
    for f in ["base.tar.gz".to_string(), format!("{oid}.tar.gz")] {
        assert!(data.join(&f).is_file(), "{f}");
    }
    barman_sees(&env, &id, "F");
    mark(&pg, "after", 1);
    let staging = pg.dir.join("staging");
    mkdir_postgres(&staging);
    recover_and_check(
        &pg,
        &env,
        &id,
        "tar",
        true,
        &["--staging-path", staging.to_str().unwrap()],
        &[("tar", 33), ("after", 0)],
    );
}

const NATIVE_LZ4: &str =
    "backup_method = local-rsync\nparallel_jobs = 2\nbackup_compression = lz4\n";

/// The native copy with `backup_compression`: pg_basebackup's tar layout
/// (one LZ4 frame per piece, compressed on both cores), which Barman
/// (tar + the lz4 command) and barman-rs both recover.
#[test]
fn pg_interop_both_recover_our_native_compressed_backup() {
    let (pg, env) = setup(false, NATIVE_LZ4);
    mark(&pg, "lz4", 44);
    let mut bench = load(&pg, 3);
    rs_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let _ = bench.wait();
    let id = new_backup(&env, &[]);
    let info = info(&env, &id);
    assert_eq!(field(&info, "status"), "DONE");
    assert_eq!(field(&info, "compression"), "lz4");
    let oid = pg.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'tbs'");
    let data = env.home().join("pg/base").join(&id).join("data");
    let mut names: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want = vec![
        "backup_manifest".to_string(),
        "base.tar.lz4".to_string(),
        format!("{oid}.tar.lz4"),
    ];
    want.sort();
    assert_eq!(names, want);
    // Barman disables a local-rsync server with backup_compression: it
    // reads the catalog under a configuration it accepts.
    set_method(&env, NATIVE_LZ4, POSTGRES);
    barman_sees(&env, &id, "R");
    mark(&pg, "after", 1);
    let staging = pg.dir.join("staging");
    mkdir_postgres(&staging);
    recover_and_check(
        &pg,
        &env,
        &id,
        "native-lz4",
        true,
        &["--staging-path", staging.to_str().unwrap()],
        &[("lz4", 44), ("after", 0)],
    );
    recover_with(
        rs_ok,
        &pg,
        &env,
        &id,
        "native-lz4-rs",
        false,
        &[],
        &[("lz4", 44)],
    );
    // A damaged archive: the restore stops with an error naming it, and
    // the destination has neither pg_control nor recovery.signal.
    let tar = data.join("base.tar.lz4");
    let mut bytes = std::fs::read(&tar).unwrap();
    let at = bytes.len() / 2;
    bytes[at..at + 64].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(&tar, bytes).unwrap();
    let dest = pg.dir.join("rec-damaged");
    let tbs = pg.dir.join("rec-damaged-tbs");
    mkdir_postgres(&dest);
    let tbs_map = format!("tbs:{}", tbs.display());
    let run = env.barman(&[
        "recover",
        "pg",
        &id,
        dest.to_str().unwrap(),
        "--tablespace",
        &tbs_map,
    ]);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("ERROR: ") && run.stderr.contains("base.tar.lz4"),
        "{}",
        run.stderr
    );
    assert!(!dest.join("global/pg_control").exists());
    assert!(!dest.join("recovery.signal").exists());
}

#[test]
fn pg_interop_barman_reads_and_deletes_our_failed_backup() {
    let (_pg, env) = setup(false, POSTGRES);
    // A pg_basebackup that answers --version but fails the copy.
    let bin = env.root().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fake = bin.join("pg_basebackup");
    let pgbin = crate::harness::pg::bindir();
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && exec {}/pg_basebackup --version\n\
             echo 'pg_basebackup: error: simulated failure' >&2\nexit 1\n",
            pgbin.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    set_method(
        &env,
        &format!("path_prefix = {}", pgbin.display()),
        &format!("path_prefix = {}:{}", bin.display(), pgbin.display()),
    );
    let run = env.barman(&["backup", "pg"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let id = new_backup(&env, &[]);
    let info = info(&env, &id);
    assert_eq!(field(&info, "status"), "FAILED", "{info}");
    let list = py_ok(&env, &["list-backups", "pg"]);
    assert!(list.starts_with(&format!("pg {id} - F - FAILED")), "{list}");
    assert_eq!(rs_ok(&env, &["list-backups", "pg"]), list);
    let show = py_ok(&env, &["show-backup", "pg", &id]);
    assert!(show.contains("Status                 : FAILED"), "{show}");
    assert_eq!(rs_ok(&env, &["show-backup", "pg", &id]), show);
    // Barman failing the same way records the same error.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (code, out, err) = py(&env, &["backup", "pg"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let theirs = new_backup(&env, std::slice::from_ref(&id));
    let their_info = self::info(&env, &theirs);
    assert_eq!(field(&their_info, "status"), "FAILED");
    assert_eq!(
        field(&info, "error").replace(&id, "<ID>"),
        field(&their_info, "error").replace(&theirs, "<ID>")
    );
    let errors = |text: &str, id: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("ERROR") || l.starts_with("DETAILS"))
            .map(|l| l.replace(id, "<ID>"))
            .collect()
    };
    assert!(!errors(&run.stderr, &id).is_empty(), "{}", run.stderr);
    assert_eq!(errors(&run.stderr, &id), errors(&err, &theirs));
    assert_eq!(
        rs_ok(&env, &["list-backups", "pg"]),
        py_ok(&env, &["list-backups", "pg"])
    );
    for id in [&id, &theirs] {
        let out = py_ok(&env, &["delete", "pg", id]);
        assert!(out.contains(&format!("Deleted backup {id} ")), "{out}");
    }
    assert!(backup_ids(&env).is_empty());
    assert!(!env.home().join("pg/base").join(&id).exists());
}

#[test]
fn pg_interop_we_link_to_a_barman_pg_basebackup_and_barman_recovers_it() {
    // The previous backup is a pg_basebackup tree: a PostgreSQL manifest
    // (tablespace files under pg_tblspc/), pg_tblspc/<oid> symlinks, and
    // file mtimes of the copy, not of the source.
    let (pg, env) = setup(false, POSTGRES);
    mark(&pg, "theirs", 5);
    py_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let theirs = new_backup(&env, &[]);
    set_method(&env, POSTGRES, RSYNC);
    mark(&pg, "ours", 6);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut bench = load(&pg, 3);
    let out = rs_ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let _ = bench.wait();
    assert!(out.contains("deduplication ratio)."), "{out}");
    let ours = new_backup(&env, std::slice::from_ref(&theirs));
    assert_eq!(field(&info(&env, &ours), "status"), "DONE");
    barman_sees(&env, &ours, "R");
    mark(&pg, "after", 1);
    recover_and_check(
        &pg,
        &env,
        &ours,
        "linked",
        true,
        &[],
        &[("theirs", 5), ("ours", 6), ("after", 0)],
    );
}
