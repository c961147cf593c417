//! PostgreSQL 17+ incremental backups against a real PostgreSQL 18 with
//! `summarize_wal = on`, a tablespace and data checksums: `backup
//! --incremental` with Barman's checks and messages, the chain in
//! backup.info, `list-backups`, `show-backup`, `keep` and `delete` of a
//! tree, and `recover` of a chain (combined natively) to a restore point
//! that starts with the data of that point; then the interop gate both
//! ways with real Barman 3.19.1, which recovers barman-rs's chain with
//! pg_combinebackup while barman-rs recovers Barman's.

use std::path::Path;
use std::process::Command;

use crate::harness::pg::{PgCluster, Recovered};
use crate::harness::TestEnv;
use crate::interop::barman_py;
use crate::pg_backup::mkdir_postgres;

const MAJOR: u32 = 18;

fn setup() -> (PgCluster, TestEnv) {
    let env = TestEnv::new();
    let pg = PgCluster::start_major(
        MAJOR,
        "incr",
        "wal_level = replica\narchive_mode = on\nmax_wal_senders = 4\nsummarize_wal = on\n",
        true,
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
    pg.psql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 60000) g");
    pg.psql("CREATE TABLE marker (tag text)");
    pg.psql("SELECT pg_switch_wal()");
    env.write_config(&format!(
        "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n\n\
         [pg]\ndescription = incremental\nconninfo = {ci}\nstreaming_conninfo = {ci}\narchiver = on\n\
         incoming_wals_directory = {d}/incoming\npath_prefix = {bin}\n\
         immediate_checkpoint = true\nbackup_method = postgres\n",
        ci = pg.conninfo(),
        bin = pg.bindir().display(),
        d = pg.dir.display()
    ));
    (pg, env)
}

fn rs_ok(env: &TestEnv, args: &[&str]) -> String {
    let run = env.barman(args);
    assert_eq!(
        run.code,
        0,
        "barman-rs {args:?}:\n{}\n{}\n{}",
        run.stdout,
        run.stderr,
        std::fs::read_to_string(env.root().join("barman.log")).unwrap_or_default()
    );
    run.stdout
}

fn py_ok(env: &TestEnv, args: &[&str]) -> String {
    let out = barman_py(env, args);
    assert!(
        out.status.success(),
        "Barman {args:?}:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Backup IDs are seconds: never two in the same one.
fn backup(tool: fn(&TestEnv, &[&str]) -> String, env: &TestEnv, extra: &[&str]) -> String {
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut args = vec!["backup", "pg", "--wait", "--wait-timeout", "60"];
    args.extend(extra);
    tool(env, &args);
    let list = rs_ok(env, &["list-backups", "--minimal", "pg"]);
    list.lines().next().expect("a backup").to_string()
}

fn info(env: &TestEnv, id: &str) -> String {
    std::fs::read_to_string(env.home().join(format!("pg/meta/{id}-backup.info"))).unwrap()
}

fn checksum(sql: impl Fn(&str) -> String) -> String {
    sql("SELECT md5(string_agg(t::text, ',' ORDER BY g)) FROM t")
}

fn chown_postgres(p: &Path) {
    let st = Command::new("chown")
        .args(["-R", "postgres:postgres"])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

/// Recovers `id` with `tool` to restore point `rp`, starts it and returns
/// the table's checksum and the markers seen.
fn recover(
    tool: fn(&TestEnv, &[&str]) -> String,
    pg: &PgCluster,
    env: &TestEnv,
    id: &str,
    tag: &str,
    rp: &str,
) -> (String, String, String) {
    let dest = pg.dir.join(format!("rec-{tag}"));
    let tbs = pg.dir.join(format!("rec-{tag}-tbs"));
    let socket = pg.dir.join(format!("rec-{tag}-sock"));
    mkdir_postgres(&socket);
    let tbs_map = format!("tbs:{}", tbs.display());
    let out = tool(
        env,
        &[
            "recover",
            "pg",
            id,
            dest.to_str().unwrap(),
            "--tablespace",
            &tbs_map,
            "--target-name",
            rp,
            "--target-action",
            "promote",
        ],
    );
    assert!(
        out.contains("Your PostgreSQL server has been successfully prepared for recovery!"),
        "{out}"
    );
    chown_postgres(&dest);
    chown_postgres(&tbs);
    let rec = Recovered::start_major(
        MAJOR,
        &dest,
        &socket,
        pg.port,
        &pg.dir.join(format!("rec-{tag}.log")),
        "-c archive_mode=off",
    );
    rec.wait_promoted();
    assert_eq!(rec.psql("SELECT count(*) FROM t_tbs"), "20000");
    (
        checksum(|q| rec.psql(q)),
        rec.psql("SELECT string_agg(tag, ',' ORDER BY tag) FROM marker"),
        out,
    )
}

#[test]
fn pg_incremental_chain_is_taken_shown_kept_recovered_and_deleted() {
    let (pg, env) = setup();
    let none = env.barman(&["backup", "pg", "--incremental", "latest"]);
    assert_eq!(none.code, 1);
    assert_eq!(
        none.stderr,
        "ERROR: Unknown backup 'latest' for server 'pg'\n"
    );
    rs_ok(
        &env,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "pg",
        ],
    );

    let full = backup(rs_ok, &env, &[]);
    pg.psql("UPDATE t SET h = md5(h) WHERE g % 7 = 0");
    pg.psql("INSERT INTO marker VALUES ('one')");
    let i1 = backup(rs_ok, &env, &["--incremental", "latest"]);
    pg.psql("UPDATE t SET h = md5(h) WHERE g % 11 = 0");
    pg.psql("DELETE FROM t WHERE g > 55000");
    pg.psql("INSERT INTO marker VALUES ('two')");
    let i2 = backup(rs_ok, &env, &["--incremental", &i1]);
    assert!(info(&env, &i1).contains(&format!("parent_backup_id={full}\n")));
    assert!(info(&env, &i2).contains(&format!("parent_backup_id={i1}\n")));
    assert!(info(&env, &full).contains(&format!("children_backup_ids={i1}\n")));
    assert!(info(&env, &i1).contains(&format!("children_backup_ids={i2}\n")));
    assert!(info(&env, &i2).contains("summarize_wal=on\n"));
    // pg_basebackup got the parent's manifest: the child is small.
    let size = |id: &str| -> u64 {
        info(&env, id)
            .lines()
            .find_map(|l| l.strip_prefix("size="))
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(
        size(&i2) * 3 < size(&full),
        "{} vs {}",
        size(&i2),
        size(&full)
    );

    let list = rs_ok(&env, &["list-backups", "pg"]);
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines[0].starts_with(&format!("pg {i2} - I - ")), "{list}");
    assert!(lines[1].starts_with(&format!("pg {i1} - I - ")), "{list}");
    assert!(lines[2].starts_with(&format!("pg {full} - F - ")), "{list}");
    let show = rs_ok(&env, &["show-backup", "pg", &i2]);
    for row in [
        "    Backup Type          : incremental\n".to_string(),
        format!("    Root Backup          : {full}\n"),
        format!("    Parent Backup        : {i1}\n"),
        "    Backup chain size    : 3".to_string(),
        "    Resources saved      : ".to_string(),
    ] {
        assert!(show.contains(&row), "{row:?} in\n{show}");
    }
    let show = rs_ok(&env, &["show-backup", "pg", &full]);
    assert!(
        show.contains(&format!("    Children Backup(s)   : {i1}\n")),
        "{show}"
    );
    let keep = env.barman(&["keep", "pg", &i1, "--target", "full"]);
    assert_eq!(keep.code, 1);
    assert!(
        keep.stderr.contains("is an incremental backup."),
        "{}",
        keep.stderr
    );

    pg.psql("INSERT INTO marker VALUES ('three')");
    let want = checksum(|q| pg.psql(q));
    pg.psql("SELECT pg_create_restore_point('incr_rp')");
    pg.psql("INSERT INTO marker VALUES ('after')");
    pg.psql("UPDATE t SET h = 'changed after the target'");
    rs_ok(
        &env,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "pg",
        ],
    );
    let (got, markers, out) = recover(rs_ok, &pg, &env, &i2, "rs", "incr_rp");
    assert_eq!(got, want);
    assert_eq!(markers, "one,three,two");
    assert!(
        out.contains(&format!(
            "Start combining backup via pg_combinebackup for backup {i2} on "
        )),
        "{out}"
    );
    let dest = pg.dir.join("rec-rs");
    let recovered = std::fs::read_to_string(dest.join(".barman-recover.info")).unwrap();
    assert!(
        recovered.contains("copy_stats={'combine_time': "),
        "{recovered}"
    );
    assert!(dest.join(format!("backup_manifest.{i2}")).exists());

    // summarize_wal off on the server: Barman's third check.
    pg.psql("ALTER SYSTEM SET summarize_wal = off");
    pg.psql("SELECT pg_reload_conf()");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let off = env.barman(&["backup", "pg", "--incremental", "latest"]);
    assert_eq!(off.code, 1);
    assert_eq!(
        off.stderr,
        "ERROR: failed to start backup: 'summarize_wal' option has to be enabled in the Postgres \
         server to perform an incremental backup using the Postgres backup method\n"
    );

    // Deleting the root deletes the tree, leaves first.
    let del = rs_ok(&env, &["delete", "pg", &full]);
    let order: Vec<&str> = del
        .lines()
        .filter_map(|l| l.strip_prefix("Deleting backup "))
        .collect();
    assert_eq!(
        order,
        [
            format!("{i2} for server pg"),
            format!("{i1} for server pg"),
            format!("{full} for server pg")
        ]
    );
    assert_eq!(rs_ok(&env, &["list-backups", "pg"]), "");
}

#[test]
fn pg_interop_incremental_chains_both_ways() {
    let (pg, env) = setup();
    rs_ok(
        &env,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "pg",
        ],
    );
    // Ours, recovered by Barman (pg_combinebackup 18 from path_prefix).
    let full = backup(rs_ok, &env, &[]);
    pg.psql("UPDATE t SET h = md5(h) WHERE g % 3 = 0");
    pg.psql("INSERT INTO marker VALUES ('ours')");
    let ours = backup(rs_ok, &env, &["--incremental", "latest"]);
    let list = py_ok(&env, &["list-backups", "pg"]);
    assert!(list.contains(&format!("pg {ours} - I - ")), "{list}");
    assert!(list.contains(&format!("pg {full} - F - ")), "{list}");
    let show = py_ok(&env, &["show-backup", "pg", &ours]);
    assert!(
        show.contains(&format!("    Parent Backup        : {full}\n")),
        "{show}"
    );
    assert_eq!(show, rs_ok(&env, &["show-backup", "pg", &ours]));
    let want = checksum(|q| pg.psql(q));
    pg.psql("SELECT pg_create_restore_point('rp_ours')");
    pg.psql("UPDATE t SET h = 'later'");
    rs_ok(
        &env,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "pg",
        ],
    );
    let (got, markers, _) = recover(py_ok, &pg, &env, &ours, "py", "rp_ours");
    assert_eq!(got, want);
    assert_eq!(markers, "ours");

    // Barman's, on top of ours, recovered by barman-rs.
    pg.psql("UPDATE t SET h = md5(h) WHERE g % 5 = 0");
    pg.psql("INSERT INTO marker VALUES ('theirs')");
    let theirs = backup(py_ok, &env, &["--incremental", &ours]);
    assert!(info(&env, &theirs).contains(&format!("parent_backup_id={ours}\n")));
    assert!(info(&env, &ours).contains(&format!("children_backup_ids={theirs}\n")));
    let list = rs_ok(&env, &["list-backups", "pg"]);
    assert!(list.starts_with(&format!("pg {theirs} - I - ")), "{list}");
    assert_eq!(
        rs_ok(&env, &["show-backup", "pg", &theirs]),
        py_ok(&env, &["show-backup", "pg", &theirs])
    );
    let want = checksum(|q| pg.psql(q));
    pg.psql("SELECT pg_create_restore_point('rp_theirs')");
    pg.psql("UPDATE t SET h = 'later again'");
    rs_ok(
        &env,
        &[
            "switch-wal",
            "--force",
            "--archive",
            "--archive-timeout",
            "60",
            "pg",
        ],
    );
    let (got, markers, _) = recover(rs_ok, &pg, &env, &theirs, "rs", "rp_theirs");
    assert_eq!(got, want);
    assert_eq!(markers, "ours,theirs");
    // Barman deletes the tree barman-rs and it wrote together.
    py_ok(&env, &["delete", "pg", &full]);
    assert_eq!(rs_ok(&env, &["list-backups", "pg"]), "");
}
