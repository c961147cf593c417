//! WAL intake from a real PostgreSQL (15 and 18 in CI) whose archive_command copies into
//! incoming/: `cron` archives every segment, `get-wal` gives back the exact
//! bytes PostgreSQL wrote, `switch-wal --archive` closes and waits.

use std::time::{Duration, Instant};

use crate::harness::pg::PgCluster;
use crate::harness::TestEnv;
use crate::pg_backup::mkdir_postgres;
use crate::wal_intake::files;

/// A cluster archiving into `<cluster>/incoming` (and a reference copy in
/// `<cluster>/copy`), and a barman server `pg` reading that incoming/.
fn setup(compression: &str) -> (PgCluster, TestEnv) {
    let env = TestEnv::new();
    let pg = PgCluster::start("wal", "wal_level = replica\narchive_mode = on\n");
    mkdir_postgres(&pg.dir.join("incoming"));
    mkdir_postgres(&pg.dir.join("copy"));
    pg.reconfigure(&format!(
        "archive_command = 'test ! -f {d}/copy/%f && cp %p {d}/copy/%f && cp %p {d}/incoming/.%f.tmp && mv {d}/incoming/.%f.tmp {d}/incoming/%f'\n",
        d = pg.dir.display()
    ));
    env.write_config(&format!(
        "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\ncompression = {compression}\n\n\
         [pg]\ndescription = PostgreSQL 15\nconninfo = {ci}\nbackup_method = postgres\narchiver = on\n\
         incoming_wals_directory = {d}/incoming\npath_prefix = {bin}\n",
        ci = pg.conninfo(),
        bin = pg.bindir().display(),
        d = pg.dir.display()
    ));
    (pg, env)
}

fn wait_archived(pg: &PgCluster, count: usize) {
    let start = Instant::now();
    loop {
        let n: usize = pg
            .psql("SELECT archived_count FROM pg_stat_archiver")
            .parse()
            .unwrap();
        if n >= count {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "PostgreSQL archived only {n} of {count}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn pg_cron_archives_what_postgres_wrote_and_get_wal_gives_it_back() {
    let (pg, env) = setup("zstd");
    for i in 0..4 {
        pg.psql(&format!(
            "CREATE TABLE t{i} AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g"
        ));
        pg.psql("SELECT pg_switch_wal()");
    }
    wait_archived(&pg, 4);
    // What PostgreSQL had archived before cron ran (it may archive more
    // while we look: those wait for the next run).
    let last = pg.psql("SELECT last_archived_wal FROM pg_stat_archiver");
    let copies: Vec<String> = files(&pg.dir.join("copy"))
        .into_iter()
        .filter(|c| *c <= last)
        .collect();
    let run = env.barman(&["cron"]);
    assert_eq!(
        (run.code, run.stdout.as_str()),
        (0, "Starting WAL archiving for server pg\n"),
        "{}",
        run.stderr
    );

    assert!(copies.len() >= 4, "{copies:?}");
    let pending = files(&pg.dir.join("incoming"));
    assert!(
        copies.iter().all(|c| !pending.contains(c)),
        "incoming not drained: {pending:?}"
    );
    let db = std::fs::read_to_string(env.home().join("pg/wals/pg-xlog.db")).unwrap();
    let recorded: Vec<String> = db
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect();
    assert_eq!(
        recorded[..copies.len()],
        copies[..],
        "xlog.db lists every segment, in order"
    );
    for name in &copies {
        let out = env.output(&["get-wal", "pg", name]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let original = std::fs::read(pg.dir.join("copy").join(name)).unwrap();
        assert!(
            out.stdout == original,
            "{name}: get-wal differs from what PostgreSQL archived"
        );
    }
    // The check line that needs an archived WAL is now quiet.
    let check = env.barman(&["check", "pg"]);
    assert!(!check.stdout.contains("WAL archive"), "{}", check.stdout);
}

#[test]
fn pg_switch_wal_archive_waits_for_the_closed_segment() {
    let (pg, env) = setup("lz4");
    pg.psql("CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g");
    let run = env.barman(&["switch-wal", "--archive", "--archive-timeout", "20", "pg"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    let closed = lines[0]
        .strip_prefix("The WAL file ")
        .and_then(|l| l.strip_suffix(" has been closed on server 'pg'"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert_eq!(
        lines[1],
        format!("Waiting for the WAL file {closed} from server 'pg' (max: 20 seconds)")
    );
    assert!(
        run.stdout.contains(&format!("\t{closed}\n")),
        "{}",
        run.stdout
    );
    let hash = &closed[..16];
    assert!(env.home().join("pg/wals").join(hash).join(closed).exists());

    let run = env.barman(&["switch-wal", "pg"]);
    assert_eq!(run.stdout, "No switch required for server 'pg'\n");
    let run = env.barman(&["switch-wal", "--force", "pg"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
