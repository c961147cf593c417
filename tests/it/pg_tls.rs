//! Connections over TLS as libpq makes them, against a real PostgreSQL 15
//! (Debian's, built with OpenSSL) with `ssl = on`, a CA made by the test,
//! and pg_hba.conf accepting only `hostssl ... cert`: so a connection that
//! works is TLS with the client certificate. `check` and a `postgres`
//! backup (pg_basebackup over the same conninfo) work with `verify-full`;
//! each sslmode's check of the server certificate holds (host name, CA);
//! what cannot connect says why in one line.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::harness::pg::PgCluster;
use crate::harness::TestEnv;
use crate::pg_backup::mkdir_postgres;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, a server certificate for `localhost` only, a client certificate
/// for `postgres`, and an unrelated CA.
fn make_certificates(dir: &Path) {
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN=barman-rs test {ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
            ],
        );
    }
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost\n").unwrap();
    for (name, cn, ext) in [("server", "localhost", true), ("client", "postgres", false)] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ],
        );
        let mut args = vec![
            "x509",
            "-req",
            "-in",
            &*format!("{name}.csr"),
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
        args.push(format!("{name}.crt"));
        if ext {
            args.extend(["-extfile".into(), "server.ext".into()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        openssl(dir, &refs);
    }
    for key in ["server.key", "client.key"] {
        std::fs::set_permissions(dir.join(key), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

fn postgresql_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("\tPostgreSQL: "))
        .unwrap_or_else(|| panic!("no PostgreSQL line in:\n{out}"))
        .to_string()
}

#[test]
fn pg_tls_connections_follow_sslmode_and_certificates() {
    // PostgreSQL 15: the 18 of scripts/install-postgres.sh has no OpenSSL.
    assert!(
        crate::harness::pg::built_with(15, "openssl"),
        "PostgreSQL 15 must be built with OpenSSL (Debian's postgresql-15)"
    );
    let pg = PgCluster::start_major(15, "tls", "wal_level = replica\n", false);
    let certs = pg.dir.join("certs");
    mkdir_postgres(&certs);
    make_certificates(&certs);
    // The server's key must belong to postgres; the client's stays root's.
    mkdir_postgres(&certs.join("server"));
    for f in ["server.crt", "server.key"] {
        std::fs::rename(certs.join(f), certs.join("server").join(f)).unwrap();
    }
    mkdir_postgres(&certs.join("server"));
    std::fs::write(
        pg.data.join("pg_hba.conf"),
        "local all all trust\nlocal replication all trust\n\
         hostssl all postgres 127.0.0.1/32 cert\nhostssl replication postgres 127.0.0.1/32 cert\n",
    )
    .unwrap();
    mkdir_postgres(&pg.data);
    let incoming = pg.dir.join("incoming");
    mkdir_postgres(&incoming);
    pg.reconfigure(&format!(
        "listen_addresses = '127.0.0.1'\nssl = on\nssl_cert_file = '{c}/server/server.crt'\n\
         ssl_key_file = '{c}/server/server.key'\nssl_ca_file = '{c}/ca.crt'\n\
         archive_mode = on\nmax_wal_senders = 4\n\
         archive_command = 'cp %p {i}/.%f.tmp && mv {i}/.%f.tmp {i}/%f'\n",
        c = certs.display(),
        i = incoming.display()
    ));

    let c = certs.display().to_string();
    let tls = |host: &str, extra: &str| {
        format!(
            "host={host} port={} user=postgres dbname=postgres sslrootcert={c}/ca.crt \
             sslcert={c}/client.crt sslkey={c}/client.key {extra}",
            pg.port
        )
    };
    let env = TestEnv::new();
    let configure = |conninfo: &str| {
        env.write_config(&format!(
            "[barman]\nbarman_home = @HOME@\nbarman_user = root\nlog_file = @ROOT@/barman.log\n\n\
             [pg]\ndescription = over TLS\nconninfo = {conninfo}\nstreaming_conninfo = {conninfo}\n\
             backup_method = postgres\narchiver = on\nincoming_wals_directory = {i}\n\
             path_prefix = {bin}\nimmediate_checkpoint = true\ncheck_timeout = 10\n",
            i = incoming.display(),
            bin = pg.bindir().display(),
        ));
    };

    // verify-full with the client certificate: the whole site works.
    configure(&tls("localhost", "sslmode=verify-full"));
    let first = env.barman(&["check", "pg"]);
    assert!(
        first.stdout.contains("\tPostgreSQL: OK\n"),
        "{}{}",
        first.stdout,
        first.stderr
    );
    let run = env.barman(&[
        "switch-wal",
        "--force",
        "--archive",
        "--archive-timeout",
        "60",
        "pg",
    ]);
    assert_eq!(
        run.code,
        0,
        "{}{}\n{}",
        run.stdout,
        run.stderr,
        std::fs::read_to_string(env.root().join("barman.log")).unwrap_or_default()
    );
    let check = env.barman(&["check", "pg"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert_eq!(postgresql_line(&check.stdout), "\tPostgreSQL: OK");
    assert!(
        check.stdout.contains("\tPostgreSQL streaming: OK\n"),
        "{}",
        check.stdout
    );
    let run = env.barman(&["backup", "pg", "--wait", "--wait-timeout", "60"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("Backup completed"), "{}", run.stdout);
    let status = env.barman(&["status", "pg"]);
    assert!(
        status.stdout.contains("\tPostgreSQL version: 15."),
        "{}",
        status.stdout
    );

    // verify-ca checks the chain, not the name; verify-full checks both.
    configure(&tls("127.0.0.1", "sslmode=verify-ca"));
    assert_eq!(
        postgresql_line(&env.barman(&["check", "pg"]).stdout),
        "\tPostgreSQL: OK"
    );
    configure(&tls("127.0.0.1", "sslmode=verify-full"));
    let line = postgresql_line(&env.barman(&["check", "pg"]).stdout);
    assert!(line.starts_with("\tPostgreSQL: FAILED"), "{line}");
    // A certificate from another CA is refused even without a name check.
    configure(&tls("localhost", "sslmode=verify-ca").replace("/ca.crt", "/other-ca.crt"));
    let line = postgresql_line(&env.barman(&["check", "pg"]).stdout);
    assert!(line.starts_with("\tPostgreSQL: FAILED"), "{line}");
    // require with a root certificate present checks the chain, as libpq.
    configure(&tls("localhost", "sslmode=require").replace("/ca.crt", "/other-ca.crt"));
    let line = postgresql_line(&env.barman(&["check", "pg"]).stdout);
    assert!(line.starts_with("\tPostgreSQL: FAILED"), "{line}");
    // Without TLS, or without the client certificate, pg_hba.conf refuses.
    configure(&tls("localhost", "sslmode=disable"));
    let line = postgresql_line(&env.barman(&["check", "pg"]).stdout);
    assert!(line.starts_with("\tPostgreSQL: FAILED"), "{line}");
    configure(&format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=require sslcertmode=disable",
        pg.port
    ));
    let line = postgresql_line(&env.barman(&["check", "pg"]).stdout);
    assert!(line.starts_with("\tPostgreSQL: FAILED"), "{line}");

    // A private key others can read is refused with libpq's reason.
    std::fs::set_permissions(
        certs.join("client.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    configure(&tls("localhost", "sslmode=verify-full"));
    let run = env.barman(&["switch-wal", "pg"]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("Unable to perform pg_switch_wal for server 'pg'."),
        "{}",
        run.stderr
    );
    let log = std::fs::read_to_string(env.root().join("barman.log")).unwrap();
    assert!(log.contains("has group or world access"), "{log}");
    std::fs::set_permissions(
        certs.join("client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();

    // A key barman-rs cannot honour is named, in one line.
    configure(&tls("localhost", "sslmode=verify-full krbsrvname=postgres"));
    let check = env.barman(&["check", "pg"]);
    assert!(postgresql_line(&check.stdout).starts_with("\tPostgreSQL: FAILED"));
    let log = std::fs::read_to_string(env.root().join("barman.log")).unwrap();
    let why = log.lines().rev().find(|l| l.contains("krbsrvname"));
    assert!(why.is_some_and(|l| l.contains("\"krbsrvname\"")), "{log}");
}
