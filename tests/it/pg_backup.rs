//! `barman backup` against a real PostgreSQL (15 and 18 in CI) under pgbench load: the
//! native local-rsync copy (manifest accepted by pg_verifybackup, page
//! checksums verified, reuse_backup = link), pg_basebackup plain and tar,
//! and `backup all` with one broken server.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use crate::harness::pg::{pg_program, PgCluster};
use crate::harness::sshd::Sshd;
use crate::harness::TestEnv;

pub(crate) fn mkdir_postgres(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let st = std::process::Command::new("chown")
        .args(["-R", "postgres:postgres", dir.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// A cluster archiving into `<cluster>/incoming`, with a tablespace and a
/// pgbench database, and a barman configuration with `server` lines.
pub(crate) fn setup(checksums: bool, server: &str) -> (PgCluster, TestEnv) {
    let env = TestEnv::new();
    let pg = PgCluster::start_with(
        "bk",
        "wal_level = replica\narchive_mode = on\nmax_wal_senders = 4\n",
        checksums,
    );
    mkdir_postgres(&pg.dir.join("incoming"));
    mkdir_postgres(&pg.dir.join("tbs"));
    pg.reconfigure(&format!(
        "archive_command = 'cp %p {d}/incoming/.%f.tmp && mv {d}/incoming/.%f.tmp {d}/incoming/%f'\n",
        d = pg.dir.display()
    ));
    pg.psql(&format!(
        "CREATE TABLESPACE tbs LOCATION '{}'",
        pg.dir.join("tbs").display()
    ));
    pg.psql("CREATE TABLE t_tbs TABLESPACE tbs AS SELECT g, md5(g::text) AS h FROM generate_series(1, 20000) g");
    let st = pg_program("pgbench")
        .args(["-q", "-i", "-s", "2", &pg.conninfo()])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    pg.psql("SELECT pg_switch_wal()");
    env.write_config(&format!(
        "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n\n\
         [pg]\ndescription = test\nconninfo = {ci}\nstreaming_conninfo = {ci}\narchiver = on\n\
         incoming_wals_directory = {d}/incoming\npath_prefix = {bin}\n\
         immediate_checkpoint = true\n{server}\n",
        ci = pg.conninfo(),
        bin = pg.bindir().display(),
        d = pg.dir.display()
    ));
    (pg, env)
}

/// pgbench writing for `secs` seconds while a backup runs.
pub(crate) fn load(pg: &PgCluster, secs: u32) -> Child {
    pg_program("pgbench")
        .args(["-n", "-c", "2", "-T", &secs.to_string(), &pg.conninfo()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

pub(crate) fn only_backup(env: &TestEnv) -> (String, PathBuf) {
    let meta = env.home().join("pg/meta");
    let mut ids: Vec<String> = std::fs::read_dir(&meta)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_suffix("-backup.info"))
                .map(str::to_string)
        })
        .collect();
    ids.sort();
    let id = ids.pop().expect("a backup");
    (id.clone(), meta.join(format!("{id}-backup.info")))
}

/// Files under `dir` hard-linked elsewhere (reused from another backup).
pub(crate) fn linked_files(dir: &Path) -> usize {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter(|e| e.metadata().map(|m| m.nlink() > 1).unwrap_or(false))
        .count()
}

pub(crate) fn field(info: &str, key: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in\n{info}"))
        .to_string()
}

fn verifybackup(data: &Path) -> std::process::Output {
    // pg_verifybackup runs as root here (it only reads).
    std::process::Command::new(crate::harness::pg::bindir().join("pg_verifybackup"))
        .arg("-n")
        .arg(data)
        .output()
        .unwrap()
}

#[test]
fn pg_local_rsync_backup_under_load_verifies_and_reuses() {
    let (pg, env) = setup(
        true,
        "backup_method = local-rsync\nparallel_jobs = 2\nreuse_backup = link\n",
    );
    let mut bench = load(&pg, 4);
    let run = env.barman(&["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let _ = bench.wait();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let (id, info_path) = only_backup(&env);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "Starting backup using rsync-concurrent method for server pg in @HOME@/pg/base/{id}"
        )
    );
    assert!(
        lines[1].starts_with("Backup start at LSN: "),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("This is the first backup for server pg\n"));
    assert!(run.stdout.contains(&format!(
        "Starting backup copy via local rsync for {id} (2 jobs)\n"
    )));
    assert!(run
        .stdout
        .contains("Asking PostgreSQL server to finalize the backup.\n"));
    assert!(run.stdout.contains("Backup size: "), "{}", run.stdout);
    assert!(run.stdout.contains("Backup completed (start time: "));
    assert!(
        !run.stderr.contains("invalid data page checksum"),
        "{}",
        run.stderr
    );

    let info = std::fs::read_to_string(&info_path).unwrap();
    assert_eq!(field(&info, "status"), "DONE", "{info}");
    assert_eq!(field(&info, "mode"), "rsync-concurrent");
    assert_eq!(field(&info, "data_checksums"), "on");
    assert!(field(&info, "backup_label").contains(&format!("LABEL: Barman backup pg {id}")));
    assert!(
        field(&info, "tablespaces").starts_with("[('tbs', "),
        "{info}"
    );
    let base = env.home().join("pg/base").join(&id);
    let data = base.join("data");
    assert!(data.join("global/pg_control").is_file());
    assert!(data.join("backup_label").is_file());
    assert!(!data.join("postmaster.pid").exists());
    assert_eq!(std::fs::read_dir(data.join("pg_wal")).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(data.join("pg_tblspc")).unwrap().count(),
        0
    );
    let oid = pg.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'tbs'");
    let tbs_files: Vec<_> = walkdir::WalkDir::new(base.join(&oid))
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .collect();
    assert!(!tbs_files.is_empty(), "the tablespace was copied");
    let v = verifybackup(&data);
    assert!(
        v.status.success(),
        "pg_verifybackup: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    // list-backups sees it.
    let list = env.barman(&["list-backups", "pg"]);
    assert!(
        list.stdout.starts_with(&format!("pg {id} - R - ")),
        "{}",
        list.stdout
    );

    // A second backup of a quiet cluster links what did not change.
    std::thread::sleep(Duration::from_millis(1100));
    let run = env.barman(&["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("deduplication ratio)."),
        "{}",
        run.stdout
    );
    let (id2, _) = only_backup(&env);
    assert_ne!(id, id2);
    let linked = linked_files(&env.home().join("pg/base").join(&id2));
    assert!(linked > 100, "only {linked} files were linked");
    let v = verifybackup(&env.home().join("pg/base").join(&id2).join("data"));
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
}

#[test]
fn pg_local_rsync_reports_a_corrupted_page() {
    corrupted_page_is_reported("");
}

/// The same through the compressed tar form of the native copy.
#[test]
fn pg_local_rsync_zstd_tar_reports_a_corrupted_page() {
    corrupted_page_is_reported("backup_compression = zstd\n");
}

fn corrupted_page_is_reported(compression: &str) {
    let (pg, env) = setup(true, &format!("backup_method = local-rsync\n{compression}"));
    pg.psql(
        "CREATE TABLE victim AS SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 1000) g",
    );
    pg.psql("CHECKPOINT");
    let rel = pg.psql("SELECT pg_relation_filepath('victim')");
    // Flip bytes in the middle of block 1, behind PostgreSQL's back: the
    // page stays as it is on disk as long as nobody reads the table.
    let path = pg.data.join(&rel);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8192 + 4000] ^= 0xFF;
    bytes[8192 + 4001] ^= 0xFF;
    std::fs::write(&path, bytes).unwrap();
    let run = env.barman(&["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "WARNING: invalid data page checksum in file '{rel}', block(s): 1\n"
        )),
        "{}",
        run.stderr
    );
    let (_, info_path) = only_backup(&env);
    let info = std::fs::read_to_string(info_path).unwrap();
    assert!(
        field(&info, "copy_stats").contains(&format!("'invalid_pages': [('{rel}', 1)]")),
        "{info}"
    );
    assert_eq!(field(&info, "status"), "DONE");
}

#[test]
fn pg_postgres_method_plain_and_tar() {
    let (pg, env) = setup(false, "backup_method = postgres\n");
    let mut bench = load(&pg, 3);
    let run = env.barman(&[
        "backup",
        "pg",
        "--wait",
        "--wait-timeout",
        "60",
        "--name",
        "initial",
    ]);
    let _ = bench.wait();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let (id, info_path) = only_backup(&env);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[..1],
        [
            format!("Starting backup using postgres method for server pg in @HOME@/pg/base/{id}")
                .as_str()
        ]
    );
    assert!(
        lines[2] == format!("Starting backup copy via pg_basebackup for {id}"),
        "{}",
        run.stdout
    );
    assert!(lines[3].starts_with("Copy done (time: "));
    assert_eq!(lines[4], "Finalising the backup.");
    assert_eq!(lines[5], "This is the first backup for server pg");
    let info = std::fs::read_to_string(&info_path).unwrap();
    assert_eq!(field(&info, "status"), "DONE", "{info}");
    assert_eq!(field(&info, "mode"), "postgres");
    assert_eq!(field(&info, "backup_name"), "initial");
    assert!(field(&info, "backup_label").contains("BACKUP METHOD: streamed"));
    let data = env.home().join("pg/base").join(&id).join("data");
    let v = verifybackup(&data);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));
    let identity = std::fs::read_to_string(env.home().join("pg/identity.json")).unwrap();
    let sysid = pg.psql("SELECT system_identifier FROM pg_control_system()");
    assert_eq!(
        identity,
        format!(
            "{{\n    \"systemid\": \"{sysid}\",\n    \"version\": \"{}\"\n}}\n",
            pg.major
        )
    );

    // Tar with client-side lz4, or gzip where pg_basebackup was built
    // without lz4 (the PostgreSQL 18 of scripts/install-postgres.sh).
    let codec = if crate::harness::pg::built_with(pg.major, "lz4") {
        "lz4"
    } else {
        "gzip"
    };
    let ext = if codec == "lz4" { "lz4" } else { "gz" };
    let mut conf = std::fs::read_to_string(env.config_path()).unwrap();
    conf.push_str(&format!("backup_compression = {codec}\nbackup_compression_format = tar\nbackup_compression_location = client\n"));
    std::fs::write(env.config_path(), conf).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let run = env.barman(&["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let (id2, info_path) = only_backup(&env);
    let info = std::fs::read_to_string(info_path).unwrap();
    assert_eq!(field(&info, "compression"), codec);
    assert_eq!(field(&info, "status"), "DONE");
    assert!(field(&info, "backup_label").contains("START WAL LOCATION"));
    assert!(env
        .home()
        .join("pg/base")
        .join(&id2)
        .join(format!("data/base.tar.{ext}"))
        .is_file());
}

#[test]
fn pg_backup_all_goes_on_past_a_broken_server() {
    let (pg, env) = setup(false, "backup_method = local-rsync\n");
    let mut conf = std::fs::read_to_string(env.config_path()).unwrap();
    conf.push_str(&format!(
        "\n[broken]\ndescription = nothing listens here\nconninfo = host={d} port=1 user=postgres dbname=postgres\nbackup_method = local-rsync\narchiver = on\n",
        d = pg.dir.display()
    ));
    std::fs::write(env.config_path(), conf).unwrap();
    let run = env.barman(&["backup", "all"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "ERROR: Impossible to start the backup. Check the log for more details, or run 'barman check broken'"
        ),
        "{}",
        run.stderr
    );
    assert!(run
        .stdout
        .contains("Starting backup using rsync-concurrent method for server pg"));
    let (_, info_path) = only_backup(&env);
    let info = std::fs::read_to_string(info_path).unwrap();
    assert_ne!(field(&info, "status"), "FAILED", "{info}");
}

#[test]
fn pg_rsync_over_ssh_backup_with_two_jobs_and_reuse() {
    let sshd = Sshd::start();
    let (pg, env) = setup(
        false,
        &format!(
            "backup_method = rsync\nssh_command = {}\nparallel_jobs = 2\nreuse_backup = link\n",
            sshd.ssh_command()
        ),
    );
    let mut bench = load(&pg, 3);
    let run = env.barman(&["backup", "pg", "--wait", "--wait-timeout", "60"]);
    let _ = bench.wait();
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let (id, info_path) = only_backup(&env);
    assert!(
        run.stdout.contains(&format!(
            "Starting backup copy via rsync/SSH for {id} (2 jobs)\n"
        )),
        "{}",
        run.stdout
    );
    let info = std::fs::read_to_string(&info_path).unwrap();
    assert_eq!(field(&info, "status"), "DONE", "{info}");
    assert_eq!(field(&info, "mode"), "rsync-concurrent");
    let data = env.home().join("pg/base").join(&id).join("data");
    assert_eq!(
        std::fs::read(data.join("PG_VERSION")).unwrap(),
        std::fs::read(pg.data.join("PG_VERSION")).unwrap()
    );
    assert!(data.join("global/pg_control").is_file());
    assert!(data.join("backup_label").is_file());
    assert!(!data.join("postmaster.pid").exists());
    assert_eq!(std::fs::read_dir(data.join("pg_wal")).unwrap().count(), 0);
    let oid = pg.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'tbs'");
    let tbs = env.home().join("pg/base").join(&id).join(&oid);
    assert!(
        std::fs::read_dir(&tbs).unwrap().flatten().any(|e| e
            .file_name()
            .to_string_lossy()
            .starts_with(&format!("PG_{}_", pg.major))),
        "tablespace copied under {}",
        tbs.display()
    );
    // Every relation file of the cluster made it (sizes may differ: live).
    let filenode = pg.psql("SELECT pg_relation_filepath('pgbench_accounts')");
    assert!(data.join(&filenode).is_file(), "{filenode}");

    std::thread::sleep(Duration::from_millis(1100));
    let run = env.barman(&["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("deduplication ratio)."),
        "{}",
        run.stdout
    );
    let (id2, _) = only_backup(&env);
    let linked = linked_files(&env.home().join("pg/base").join(&id2));
    assert!(linked > 100, "only {linked} files were linked");
}
