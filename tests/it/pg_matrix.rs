//! The PostgreSQL matrix: one end-to-end case per major the suite does not
//! run in full (13, 14, 16, 17; CI runs everything on 15 and 18). A site
//! as Barman documents it, barman_user = postgres: PostgreSQL archives by
//! `archive_command` (every other segment through `barman put-wal`, the
//! rest into incoming/), `check` is all OK, a `postgres` backup and a
//! native `local-rsync` backup are taken under writes, and each is
//! recovered to a named restore point; the recovered server starts and
//! holds exactly the data of that point (checksum of a table) and none of
//! what came after.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::pg::{PgCluster, Recovered};
use crate::harness::TestEnv;
use crate::pg_backup::mkdir_postgres;

fn ok(env: &TestEnv, args: &[&str]) -> String {
    let run = env.barman(args);
    assert_eq!(
        run.code,
        0,
        "barman {args:?}:\n{}\n{}\nbarman.log:\n{}",
        run.stdout,
        run.stderr,
        std::fs::read_to_string(env.home().join("barman.log")).unwrap_or_default()
    );
    run.stdout
}

/// The archive_command: even segments through put-wal (as
/// barman-wal-archive would send them over ssh: the file and its
/// SHA256SUMS in a tar stream), the others and the history and backup
/// files into incoming/ under a temporary name.
fn archive_script(env: &TestEnv, incoming: &Path) -> std::path::PathBuf {
    let script = env.root().join("archive.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\np=$1 f=$2\n\
             case $f in\n\
             *[02468])\n\
               d=$(mktemp -d)\n\
               cp \"$p\" \"$d/$f\"\n\
               (cd \"$d\" && sha256sum \"$f\" > SHA256SUMS && tar -cf - \"$f\" SHA256SUMS) | {bin} -c {conf} put-wal pg\n\
               rm -rf \"$d\" ;;\n\
             *) cp \"$p\" {inc}/.$f.tmp && mv {inc}/.$f.tmp {inc}/$f ;;\n\
             esac\n",
            bin = env!("CARGO_BIN_EXE_barman"),
            conf = env.config_path().display(),
            inc = incoming.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn checksum(sql: impl Fn(&str) -> String) -> String {
    sql("SELECT md5(string_agg(t::text, ',' ORDER BY g)) FROM t")
}

fn end_to_end(major: u32) {
    let env = TestEnv::new();
    env.write_config("[barman]\nbarman_home = @HOME@\n");
    // PostgreSQL's archive_command runs barman as postgres.
    std::fs::set_permissions(env.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    mkdir_postgres(&env.home());
    let pg = PgCluster::start_major(
        major,
        "matrix",
        "wal_level = replica\narchive_mode = on\nmax_wal_senders = 4\n",
        true,
    );
    let incoming = env.home().join("pg/incoming");
    let script = archive_script(&env, &incoming);
    env.write_config(&format!(
        "[barman]\nbarman_home = @HOME@\nbarman_user = postgres\nlog_file = @HOME@/barman.log\n\n\
         [pg]\ndescription = PostgreSQL {major}\nconninfo = {ci}\nstreaming_conninfo = {ci}\n\
         backup_method = postgres\narchiver = on\npath_prefix = {bin}\nimmediate_checkpoint = true\n",
        ci = pg.conninfo(),
        bin = pg.bindir().display(),
    ));
    std::fs::set_permissions(env.config_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    // check makes the server's directories (as postgres, barman_user); it
    // fails as nothing is archived yet.
    env.barman(&["check", "pg"]);
    pg.reconfigure(&format!("archive_command = '{} %p %f'\n", script.display()));
    pg.psql("CREATE TABLE t AS SELECT g, md5(g::text) AS h FROM generate_series(1, 50000) g");
    pg.psql("CREATE TABLE marker (tag text)");
    ok(
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

    let check = env.barman(&["check", "pg"]);
    assert_eq!(
        check.code, 0,
        "PostgreSQL {major}: check\n{}{}",
        check.stdout, check.stderr
    );
    assert!(!check.stdout.contains("FAILED"), "{}", check.stdout);

    ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    pg.psql("UPDATE t SET h = md5(h) WHERE g % 7 = 0");
    let conf = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::write(
        env.config_path(),
        conf.replace("backup_method = postgres", "backup_method = local-rsync"),
    )
    .unwrap();
    ok(&env, &["backup", "pg", "--wait", "--wait-timeout", "60"]);
    pg.psql("UPDATE t SET h = md5(h) WHERE g % 5 = 0");
    pg.psql("INSERT INTO marker VALUES ('before')");
    let want = checksum(|q| pg.psql(q));
    pg.psql("SELECT pg_create_restore_point('matrix_rp')");
    pg.psql("INSERT INTO marker VALUES ('after')");
    pg.psql("UPDATE t SET h = 'changed after the target'");
    ok(
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

    let list = ok(&env, &["list-backups", "--minimal", "pg"]);
    let ids: Vec<&str> = list.lines().collect();
    assert_eq!(ids.len(), 2, "{list}");
    // Every segment reached the archive, through both paths.
    let xlog = std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db")).unwrap();
    assert!(xlog.lines().count() >= 6, "{xlog}");
    let errors = std::fs::read_dir(env.home().join("pg/errors")).map_or(0, |d| d.count());
    assert_eq!(errors, 0, "PostgreSQL {major}: files went to errors/");

    for (i, id) in ids.iter().enumerate() {
        let dest = pg.dir.join(format!("rec{i}"));
        let socket = pg.dir.join(format!("rec{i}-sock"));
        mkdir_postgres(&socket);
        let out = ok(
            &env,
            &[
                "recover",
                "pg",
                id,
                dest.to_str().unwrap(),
                "--target-name",
                "matrix_rp",
                "--target-action",
                "promote",
            ],
        );
        assert!(
            out.contains("Your PostgreSQL server has been successfully prepared for recovery!"),
            "{out}"
        );
        let rec = Recovered::start_major(
            major,
            &dest,
            &socket,
            pg.port,
            &pg.dir.join(format!("rec{i}.log")),
            "-c archive_mode=off",
        );
        rec.wait_promoted();
        assert!(
            rec.psql("SELECT version()")
                .starts_with(&format!("PostgreSQL {major}.")),
            "the recovered server is not {major}"
        );
        assert_eq!(rec.psql("SELECT tag FROM marker ORDER BY tag"), "before");
        assert_eq!(
            checksum(|q| rec.psql(q)),
            want,
            "PostgreSQL {major}: backup {id} recovered to other data"
        );
    }
    let check = ok(&env, &["check-backup", "pg", ids[0]]);
    assert!(check.is_empty(), "{check}");
}

#[test]
fn pg_matrix_13_end_to_end() {
    end_to_end(13);
}

#[test]
fn pg_matrix_14_end_to_end() {
    end_to_end(14);
}

#[test]
fn pg_matrix_16_end_to_end() {
    end_to_end(16);
}

#[test]
fn pg_matrix_17_end_to_end() {
    end_to_end(17);
}
