//! The native combination of an incremental chain against PostgreSQL 18's
//! own pg_combinebackup: a full backup and two incremental ones taken by
//! pg_basebackup (`summarize_wal = on`, Barman's layout: `<backup>/data` and
//! `<backup>/<oid>` per tablespace) around inserts, updates, a TRUNCATE, a
//! VACUUM that shortens a table, a new table, a dropped one and tables in a
//! tablespace. Both combine the chain; every output file must be
//! byte-identical with the same mode (the `backup_manifest`s differ by
//! design: pg_combinebackup's mtimes and version 2, ours version 1), ours
//! passes pg_verifybackup, starts, and holds the data. A damaged
//! `INCREMENTAL.` file is refused, naming it and its backup.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use barman::restore::combine::{self, Backup, Destination, Options};
use sha2::{Digest, Sha256};

use crate::harness::pg::{PgCluster, Recovered};
use crate::pg_backup::mkdir_postgres;

const MAJOR: u32 = 18;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `pg_basebackup` into `<dir>/data` and `<dir>/<oid>`, incremental from
/// `parent` when given.
fn basebackup(pg: &PgCluster, dir: &Path, tbs: &Path, oid: u32, parent: Option<&Backup>) -> Backup {
    let data = dir.join("data");
    let mut cmd = pg.cmd("pg_basebackup");
    cmd.arg(format!("--dbname={}", pg.conninfo()))
        .arg(format!("--pgdata={}", data.display()))
        .arg(format!(
            "--tablespace-mapping={}={}",
            tbs.display(),
            dir.join(oid.to_string()).display()
        ))
        .args(["--checkpoint=fast", "--wal-method=stream", "--no-sync"]);
    if let Some(p) = parent {
        cmd.arg(format!(
            "--incremental={}",
            p.pgdata.join("backup_manifest").display()
        ));
    }
    run(&mut cmd);
    Backup {
        name: dir.file_name().unwrap().to_string_lossy().into_owned(),
        pgdata: data,
        tablespaces: vec![(oid, dir.join(oid.to_string()))],
    }
}

/// Every entry under `root` but the skipped ones: kind, mode and a digest
/// of the content (the target of a link).
fn listing(root: &Path, skip: &dyn Fn(&str) -> bool) -> BTreeMap<String, (char, u32, String)> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).follow_links(false) {
        let e = e.unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if skip(&rel) {
            continue;
        }
        let meta = e.path().symlink_metadata().unwrap();
        let mode = meta.mode() & 0o7777;
        let entry = if meta.is_dir() {
            ('d', mode, String::new())
        } else if meta.file_type().is_symlink() {
            let to = fs::read_link(e.path()).unwrap();
            ('l', 0, to.display().to_string())
        } else {
            let digest = Sha256::digest(fs::read(e.path()).unwrap());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            ('f', mode, format!("{} {hex}", meta.len()))
        };
        out.insert(rel, entry);
    }
    out
}

fn assert_same(theirs: &Path, ours: &Path, skip: &dyn Fn(&str) -> bool) {
    let a = listing(theirs, skip);
    let b = listing(ours, skip);
    for (rel, want) in &a {
        assert_eq!(
            b.get(rel),
            Some(want),
            "'{rel}' differs from pg_combinebackup's ({})",
            theirs.display()
        );
    }
    let extra: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        extra.is_empty(),
        "not in pg_combinebackup's output: {extra:?}"
    );
}

/// The relation files (`INCREMENTAL.` with blocks) of a backup.
fn incremental_files(b: &Backup) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [b.pgdata.clone(), b.tablespaces[0].1.clone()]
        .iter()
        .flat_map(|root| walkdir::WalkDir::new(root).follow_links(false))
        .map(|e| e.unwrap())
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with("INCREMENTAL.")
                && e.metadata().unwrap().len() > 2 * 8192
        })
        .map(|e| e.path().to_path_buf())
        .collect();
    v.sort();
    v
}

fn manifest_path(b: &Backup, file: &Path) -> String {
    let (oid, ts) = &b.tablespaces[0];
    match file.strip_prefix(ts) {
        Ok(rest) => format!("pg_tblspc/{oid}/{}", rest.display()),
        Err(_) => file.strip_prefix(&b.pgdata).unwrap().display().to_string(),
    }
}

fn checksums(sql: impl Fn(&str) -> String) -> String {
    ["t", "u", "tr", "v", "n", "ts", "ts2"]
        .iter()
        .map(|t| sql(&format!("SELECT count(*) || ':' || md5(string_agg(x::text, ',' ORDER BY x::text)) FROM {t} x")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn pg_combine_matches_pg_combinebackup_on_a_chain() {
    let pg = PgCluster::start_major(
        MAJOR,
        "combine",
        "wal_level = replica\nsummarize_wal = on\nmax_wal_senders = 4\n",
        true,
    );
    let root = pg.dir.join("chain");
    mkdir_postgres(&root);
    let tbs = pg.dir.join("tbs");
    mkdir_postgres(&tbs);
    pg.psql(&format!(
        "CREATE TABLESPACE tbs LOCATION '{}'",
        tbs.display()
    ));
    let oid: u32 = pg
        .psql("SELECT oid FROM pg_tablespace WHERE spcname = 'tbs'")
        .parse()
        .unwrap();
    for sql in [
        "CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 20000) g",
        "CREATE TABLE u AS SELECT g, repeat('u', 100) AS v FROM generate_series(1, 10000) g",
        "CREATE TABLE tr AS SELECT g FROM generate_series(1, 5000) g",
        "CREATE TABLE d AS SELECT g FROM generate_series(1, 5000) g",
        "CREATE TABLE v AS SELECT g, md5(g::text) AS h FROM generate_series(1, 20000) g",
        "CREATE TABLE ts TABLESPACE tbs AS SELECT g, md5(g::text) AS h FROM generate_series(1, 10000) g",
        "VACUUM",
    ] {
        pg.psql(sql);
    }
    let full = basebackup(&pg, &root.join("full"), &tbs, oid, None);
    for sql in [
        "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(20001, 25000) g",
        "UPDATE u SET v = 'updated' WHERE g % 1000 = 0",
        "TRUNCATE tr",
        "INSERT INTO tr SELECT g FROM generate_series(1, 100) g",
        "DROP TABLE d",
        "CREATE TABLE n AS SELECT g FROM generate_series(1, 3000) g",
        "DELETE FROM v WHERE g > 2000",
        "VACUUM v",
        "UPDATE ts SET h = 'y' WHERE g % 500 = 0",
    ] {
        pg.psql(sql);
    }
    let i1 = basebackup(&pg, &root.join("i1"), &tbs, oid, Some(&full));
    for sql in [
        "UPDATE t SET h = md5(h) WHERE g % 2000 = 0",
        "INSERT INTO n SELECT g FROM generate_series(3001, 4000) g",
        "UPDATE ts SET h = 'z' WHERE g % 700 = 0",
        "CREATE TABLE ts2 TABLESPACE tbs AS SELECT g FROM generate_series(1, 2000) g",
        "UPDATE u SET v = 'again' WHERE g % 1500 = 0",
    ] {
        pg.psql(sql);
    }
    let i2 = basebackup(&pg, &root.join("i2"), &tbs, oid, Some(&i1));
    let want = checksums(|q| pg.psql(q));
    assert!(
        !incremental_files(&i2).is_empty() && !incremental_files(&i1).is_empty(),
        "the incremental backups carry no INCREMENTAL file with blocks"
    );

    let theirs = root.join("theirs");
    run(pg
        .cmd("pg_combinebackup")
        .arg(full.pgdata.as_os_str())
        .arg(i1.pgdata.as_os_str())
        .arg(i2.pgdata.as_os_str())
        .arg("-o")
        .arg(theirs.join("data"))
        .arg(format!(
            "--tablespace-mapping={}={}",
            i2.tablespaces[0].1.display(),
            theirs.join("tbs").display()
        )));

    let chain = [full, i1, i2];
    let ours = pg.dir.join("ours");
    let dest = Destination {
        pgdata: ours.join("data"),
        tablespaces: vec![(oid, ours.join("tbs"))],
    };
    let opts = Options {
        jobs: 2,
        verify_pages: true,
        manifest: true,
    };
    let report = combine::combine(&chain, &dest, opts).unwrap();
    assert!(report.reconstructed > 0, "{report:?}");
    assert!(report.older_blocks > 0, "{report:?}");
    assert!(report.pages > 0, "{report:?}");

    let link = format!("pg_tblspc/{oid}");
    assert_same(&theirs.join("data"), &dest.pgdata, &|rel| {
        rel == "backup_manifest" || rel == link
    });
    assert_same(&theirs.join("tbs"), &ours.join("tbs"), &|_| false);

    // As the restore leaves it: the tablespace linked, owned by postgres.
    std::os::unix::fs::symlink(ours.join("tbs"), dest.pgdata.join(&link)).unwrap();
    mkdir_postgres(&ours);
    run(pg
        .cmd("pg_verifybackup")
        .arg("--no-parse-wal")
        .arg(dest.pgdata.as_os_str()));
    let socket = pg.dir.join("ours-sock");
    mkdir_postgres(&socket);
    let rec = Recovered::start_major(
        MAJOR,
        &dest.pgdata,
        &socket,
        pg.port,
        &pg.dir.join("ours.log"),
        "-c archive_mode=off",
    );
    assert_eq!(checksums(|q| rec.psql(q)), want);
    assert_eq!(
        rec.psql("SELECT count(*) FROM pg_class WHERE relname = 'd'"),
        "0"
    );
    drop(rec);

    // A flipped byte in a block of an INCREMENTAL file, then in its magic.
    let victim = incremental_files(&chain[2]).pop().unwrap();
    let key = manifest_path(&chain[2], &victim);
    let len = fs::metadata(&victim).unwrap().len();
    for (at, says) in [
        (len - 100, "does not match its backup_manifest"),
        (0, "bad incremental magic number"),
    ] {
        let f = fs::File::options()
            .read(true)
            .write(true)
            .open(&victim)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[b[0] ^ 0x20], at).unwrap();
        let bad = pg.dir.join(format!("bad-{at}"));
        let dest = Destination {
            pgdata: bad.join("data"),
            tablespaces: vec![(oid, bad.join("tbs"))],
        };
        let e = combine::combine(&chain, &dest, opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("file '{key}' of backup i2")) && e.contains(says),
            "{e}"
        );
        assert!(!dest.pgdata.join("global/pg_control").exists(), "{e}");
        f.write_all_at(&b, at).unwrap();
    }
}
