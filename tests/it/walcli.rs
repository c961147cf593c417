//! `barman-wal-archive` and `barman-wal-restore` (our binary under those
//! names) over real ssh to a throwaway sshd on loopback, the remote side
//! running our `barman`: round trips through put-wal, archive-wal and
//! get-wal, the spool of a parallel fetch, exit codes, and the same calls
//! made with barman-cli 3.19.1's Python scripts for comparison.
//!
//! barman-cli runs `ssh … user@host barman …` and relies on the remote
//! PATH; here a forced command in authorized_keys prepends a directory
//! holding `barman` (ours, or Barman's for the interop test) and hands the
//! command to the login shell, as sshd would. On the client side an `ssh`
//! wrapper first on PATH adds the test key and skips host key checks.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::harness::sshd::Sshd;
use crate::harness::TestEnv;
use crate::interop::python_barman;
use crate::wal_intake::{config, incoming, put, seg_name, segment, SYSID};

fn whoami() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| "root".into(), |u| u.name)
}

fn write_script(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Remote {
    env: TestEnv,
    sshd: Sshd,
    /// Client PATH head: our two client names and the `ssh` wrapper.
    bin: PathBuf,
}

impl Remote {
    fn start() -> Remote {
        let env = TestEnv::new();
        config(&env, "gzip", "");
        std::fs::create_dir_all(env.home().join("srv")).unwrap();
        let sshd = Sshd::start();
        let d = sshd.dir.path();
        let ours = env.root().join("remote-bin");
        std::fs::create_dir_all(&ours).unwrap();
        symlink(env!("CARGO_BIN_EXE_barman"), ours.join("barman")).unwrap();
        std::fs::write(d.join("remote_path"), ours.display().to_string()).unwrap();
        write_script(
            &d.join("remote.sh"),
            &format!(
                "#!/bin/sh\nPATH=\"$(cat {})\":$PATH\nexport PATH\n\
                 exec \"${{SHELL:-/bin/sh}}\" -c \"$SSH_ORIGINAL_COMMAND\"\n",
                d.join("remote_path").display()
            ),
        );
        let key = std::fs::read_to_string(d.join("client_key.pub")).unwrap();
        std::fs::write(
            d.join("authorized_keys"),
            format!("command=\"{}\" {key}", d.join("remote.sh").display()),
        )
        .unwrap();

        let bin = env.root().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        for name in ["barman-wal-restore", "barman-wal-archive"] {
            symlink(env!("CARGO_BIN_EXE_barman"), bin.join(name)).unwrap();
        }
        write_script(
            &bin.join("ssh"),
            &format!(
                "#!/bin/sh\nexec /usr/bin/ssh -i {} -o UserKnownHostsFile=/dev/null \
                 -o StrictHostKeyChecking=no -o BatchMode=yes \"$@\"\n",
                sshd.client_key().display()
            ),
        );
        Remote { env, sshd, bin }
    }

    /// The remote `barman` becomes the one in `dir`.
    fn remote_barman_in(&self, dir: &Path) {
        std::fs::write(
            self.sshd.dir.path().join("remote_path"),
            dir.display().to_string(),
        )
        .unwrap();
    }

    fn run(&self, program: &Path, port: Option<u16>, args: &[&str]) -> Output {
        let port = port.unwrap_or(self.sshd.port).to_string();
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new(program)
            .args(["-U", &whoami(), "--port", &port, "-c"])
            .arg(self.env.config_path())
            .args(args)
            .env("PATH", path)
            .current_dir(self.env.root())
            .stdin(Stdio::null())
            .output()
            .expect("run client")
    }

    /// Ours, as `barman-wal-restore` / `barman-wal-archive`.
    fn ours(&self, tool: &str, args: &[&str]) -> Output {
        self.run(&self.bin.join(tool), None, args)
    }

    fn ours_on_port(&self, tool: &str, port: u16, args: &[&str]) -> Output {
        self.run(&self.bin.join(tool), Some(port), args)
    }

    /// barman-cli 3.19.1's script of the same name.
    fn python(&self, tool: &str, port: Option<u16>, args: &[&str]) -> Output {
        let py = python_barman().parent().unwrap().join(tool);
        self.run(&py, port, args)
    }

    fn pg_wal(&self) -> PathBuf {
        let p = self.env.root().join("pgdata/pg_wal");
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// Segments `first..first+n` archived on the Barman side.
    fn archived(&self, first: u32, n: u32) -> Vec<(String, Vec<u8>)> {
        let segs: Vec<(String, Vec<u8>)> = (first..first + n)
            .map(|i| {
                let name = seg_name(i);
                let data = segment(&name, SYSID, 7);
                (name, data)
            })
            .collect();
        for (name, data) in &segs {
            put(&self.env, name, data);
        }
        let run = self.env.barman(&["archive-wal", "srv"]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        segs
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[track_caller]
fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn listing(dir: &Path) -> Vec<String> {
    crate::wal_intake::files(dir)
}

#[test]
fn archive_then_restore_round_trip_byte_identical() {
    let r = Remote::start();
    let pg_wal = r.pg_wal();
    let names: Vec<String> = (1..=4).map(seg_name).collect();
    let modes: [&[&str]; 4] = [
        &[],
        &["--md5"],
        &["-z"],
        &["--zstd", "--compression-level", "high"],
    ];
    let mut sent = Vec::new();
    for (name, mode) in names.iter().zip(modes) {
        let data = segment(name, SYSID, 3);
        let path = pg_wal.join(name);
        std::fs::write(&path, &data).unwrap();
        let mut args = mode.to_vec();
        let p = path.display().to_string();
        args.extend(["127.0.0.1", "srv", &p]);
        let out = r.ours("barman-wal-archive", &args);
        ok(&out);
        assert_eq!(
            (text(&out.stdout), text(&out.stderr)),
            (String::new(), String::new())
        );
        sent.push((name.clone(), data));
    }
    // put-wal landed all four; the compressed ones still compressed.
    assert_eq!(listing(&incoming(&r.env)), names);
    let landed = std::fs::read(incoming(&r.env).join(&names[0])).unwrap();
    assert_eq!(landed, sent[0].1);
    assert!(std::fs::read(incoming(&r.env).join(&names[2]))
        .unwrap()
        .starts_with(b"\x1f\x8b\x08"));
    assert!(std::fs::read(incoming(&r.env).join(&names[3]))
        .unwrap()
        .starts_with(b"\x28\xb5\x2f\xfd"));
    // The same file again is a duplicate with the same checksum: accepted.
    let p = pg_wal.join(&names[0]).display().to_string();
    ok(&r.ours("barman-wal-archive", &["127.0.0.1", "srv", &p]));
    let run = r.env.barman(&["archive-wal", "srv"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(listing(&incoming(&r.env)).is_empty());

    // Fetched back through get-wal: decompressed on the server, or sent
    // as stored (gzip archive) and decompressed here, or recompressed.
    let dest_dir = r.env.root().join("standby/pg_wal");
    std::fs::create_dir_all(&dest_dir).unwrap();
    let dest = dest_dir.join("RECOVERYXLOG");
    let d = dest.display().to_string();
    for (mode, (name, data)) in [&[][..], &["--keep-compression"], &["-z"], &["-j", "-P"]]
        .into_iter()
        .zip(&sent)
    {
        let mut args = mode.to_vec();
        args.extend(["127.0.0.1", "srv", name, &d]);
        let out = r.ours("barman-wal-restore", &args);
        ok(&out);
        assert!(
            std::fs::read(&dest).unwrap() == *data,
            "{mode:?}: content differs"
        );
        assert_eq!(listing(&dest_dir), ["RECOVERYXLOG"], "no staging file left");
        let warned = mode.contains(&"-z") || mode.contains(&"-j");
        assert_eq!(text(&out.stdout).contains("WARNING: `"), warned);
        assert_eq!(text(&out.stderr), "");
    }
}

#[test]
fn missing_wal_exits_1_and_leaves_no_file() {
    let r = Remote::start();
    r.archived(1, 1);
    let dest_dir = r.pg_wal();
    let dest = dest_dir.join("RECOVERYXLOG").display().to_string();
    let missing = seg_name(9);
    let out = r.ours("barman-wal-restore", &["127.0.0.1", "srv", &missing, &dest]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!(
            "ERROR: WAL file '{missing}' not found in server 'srv' (SSH host: 127.0.0.1)\n\
             ERROR: Remote 'barman get-wal' command has failed!\n"
        )
    );
    assert!(listing(&dest_dir).is_empty(), "{:?}", listing(&dest_dir));
    // With --parallel the peek decides: barman-cli's exit 2.
    let spool = r.env.root().join("spool").display().to_string();
    let out = r.ours(
        "barman-wal-restore",
        &[
            "-p",
            "3",
            "--spool-dir",
            &spool,
            "127.0.0.1",
            "srv",
            &missing,
            &dest,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("ERROR: The required file is not available: {missing}\n")
    );
    assert!(listing(&dest_dir).is_empty());
}

#[test]
fn test_mode_of_both_clients() {
    let r = Remote::start();
    let out = r.ours("barman-wal-restore", &["-t", "127.0.0.1", "srv", "x", "y"]);
    ok(&out);
    assert_eq!(
        text(&out.stdout),
        "Ready to retrieve WAL files from the server srv\n\n"
    );
    let out = r.ours("barman-wal-archive", &["--test", "127.0.0.1", "srv", "x"]);
    ok(&out);
    assert_eq!(
        text(&out.stdout),
        "Ready to accept WAL files for the server srv\n\n"
    );
    // The remote error comes back on stdout, with the remote status.
    let out = r.ours("barman-wal-archive", &["-t", "127.0.0.1", "nope", "x"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("nope"), "{}", text(&out.stdout));
}

#[test]
fn parallel_fetch_fills_the_spool_and_later_calls_use_it() {
    let r = Remote::start();
    let segs = r.archived(0x10, 4);
    let spool = r.env.root().join("spool");
    let s = spool.display().to_string();
    let dest_dir = r.pg_wal();
    let dest = dest_dir.join("RECOVERYXLOG");
    let d = dest.display().to_string();
    let out = r.ours(
        "barman-wal-restore",
        &[
            "-p",
            "3",
            "--spool-dir",
            &s,
            "127.0.0.1",
            "srv",
            &segs[0].0,
            &d,
        ],
    );
    ok(&out);
    assert!(std::fs::read(&dest).unwrap() == segs[0].1);
    // The next two, complete, under their names and nothing else.
    assert_eq!(listing(&spool), [segs[1].0.clone(), segs[2].0.clone()]);
    for (name, data) in &segs[1..3] {
        assert!(std::fs::read(spool.join(name)).unwrap() == *data, "{name}");
    }
    assert_eq!(listing(&dest_dir), ["RECOVERYXLOG"]);

    // Served from the spool: no connection needed (port 1 is closed).
    let out = r.ours_on_port(
        "barman-wal-restore",
        1,
        &[
            "-p",
            "3",
            "--spool-dir",
            &s,
            "127.0.0.1",
            "srv",
            &segs[1].0,
            &d,
        ],
    );
    ok(&out);
    assert!(std::fs::read(&dest).unwrap() == segs[1].1);
    assert_eq!(listing(&spool), [segs[2].0.clone()]);
    // barman-cli looks in the spool even without --parallel.
    let out = r.ours_on_port(
        "barman-wal-restore",
        1,
        &["--spool-dir", &s, "127.0.0.1", "srv", &segs[2].0, &d],
    );
    ok(&out);
    assert!(std::fs::read(&dest).unwrap() == segs[2].1);
    assert!(listing(&spool).is_empty());
    // The last one is not spooled: now the closed port shows.
    let out = r.ours_on_port(
        "barman-wal-restore",
        1,
        &["--spool-dir", &s, "127.0.0.1", "srv", &segs[3].0, &d],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "ERROR: Connection problem with ssh\n");
    assert_eq!(listing(&dest_dir), ["RECOVERYXLOG"]);
}

#[test]
fn ssh_failures_exit_as_barman_cli() {
    let r = Remote::start();
    let pg_wal = r.pg_wal();
    let name = seg_name(1);
    std::fs::write(pg_wal.join(&name), segment(&name, SYSID, 1)).unwrap();
    let p = pg_wal.join(&name).display().to_string();
    let out = r.ours_on_port("barman-wal-archive", 1, &["127.0.0.1", "srv", &p]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(text(&out.stderr), "ERROR: Connection problem with ssh\n");
    let d = pg_wal.join("RECOVERYXLOG").display().to_string();
    let out = r.ours_on_port("barman-wal-restore", 1, &["127.0.0.1", "srv", &name, &d]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr), "ERROR: Connection problem with ssh\n");
    assert_eq!(listing(&pg_wal), [name]);
}

/// The same calls through barman-cli 3.19.1's scripts and ours give the
/// same stdout, stderr and status.
#[test]
fn same_answers_as_barman_cli() {
    let r = Remote::start();
    let segs = r.archived(1, 2);
    let root = r.env.root().to_path_buf();
    let dest = |who: &str| {
        let d = root.join(who).join("pg_wal");
        std::fs::create_dir_all(&d).unwrap();
        d.join("RECOVERYXLOG").display().to_string()
    };
    let small = root.join("00000001.history");
    std::fs::write(&small, "1\t0/3000000\tno recovery target specified\n").unwrap();
    let small = small.display().to_string();
    let missing = seg_name(9);
    let cases: Vec<(&str, Option<u16>, Vec<String>)> = vec![
        (
            "barman-wal-restore",
            None,
            vec!["127.0.0.1", "srv", &segs[0].0, "@DEST@"],
        ),
        (
            "barman-wal-restore",
            None,
            vec!["127.0.0.1", "srv", &missing, "@DEST@"],
        ),
        (
            "barman-wal-restore",
            None,
            vec![
                "-p",
                "2",
                "--spool-dir",
                "@SPOOL@",
                "127.0.0.1",
                "srv",
                &missing,
                "@DEST@",
            ],
        ),
        (
            "barman-wal-restore",
            None,
            vec!["-t", "127.0.0.1", "srv", "a", "b"],
        ),
        (
            "barman-wal-restore",
            None,
            vec!["-t", "127.0.0.1", "nope", "a", "b"],
        ),
        (
            "barman-wal-restore",
            None,
            vec!["127.0.0.1", "nope", &segs[0].0, "@DEST@"],
        ),
        (
            "barman-wal-restore",
            None,
            vec!["127.0.0.1", "srv", "junk", "@DEST@"],
        ),
        (
            "barman-wal-restore",
            Some(1),
            vec!["127.0.0.1", "srv", &segs[0].0, "@DEST@"],
        ),
        (
            "barman-wal-restore",
            Some(1),
            vec!["-t", "127.0.0.1", "srv", "a", "b"],
        ),
        (
            "barman-wal-restore",
            None,
            vec!["127.0.0.1", "srv", &segs[0].0, "/tmp"],
        ),
        (
            "barman-wal-restore",
            None,
            vec!["-z", "-j", "127.0.0.1", "srv", "a", "b"],
        ),
        ("barman-wal-restore", None, vec!["-V"]),
        (
            "barman-wal-archive",
            None,
            vec!["-t", "127.0.0.1", "srv", "a"],
        ),
        (
            "barman-wal-archive",
            None,
            vec!["-t", "127.0.0.1", "nope", "a"],
        ),
        ("barman-wal-archive", None, vec!["127.0.0.1", "srv", &small]),
        (
            "barman-wal-archive",
            None,
            vec!["127.0.0.1", "nope", &small],
        ),
        (
            "barman-wal-archive",
            Some(1),
            vec!["127.0.0.1", "srv", &small],
        ),
        (
            "barman-wal-archive",
            None,
            vec!["127.0.0.1", "srv", "no-such-file"],
        ),
        ("barman-wal-archive", None, vec!["127.0.0.1", "srv", "/tmp"]),
        ("barman-wal-archive", None, vec!["-V"]),
    ]
    .into_iter()
    .map(|(t, p, a)| (t, p, a.into_iter().map(str::to_string).collect()))
    .collect();
    for (tool, port, args) in &cases {
        let answer = |who: &str| {
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    a.replace("@DEST@", &dest(who)).replace(
                        "@SPOOL@",
                        &root.join(who).join("spool").display().to_string(),
                    )
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = if who == "py" {
                r.python(tool, *port, &args)
            } else {
                r.run(&r.bin.join(tool), *port, &args)
            };
            let redact = |b: &[u8]| text(b).replace(&format!("/{who}/"), "/WHO/");
            (out.status.code(), redact(&out.stdout), redact(&out.stderr))
        };
        let (py, rs) = (answer("py"), answer("rs"));
        if args.contains(&"-z".to_string()) {
            // argparse and clap word usage errors differently.
            assert_eq!((py.0, rs.0), (Some(2), Some(2)), "{tool} {args:?}");
        } else {
            assert_eq!(py, rs, "{tool} {args:?}");
        }
    }
    assert!(std::fs::read(root.join("rs/pg_wal/RECOVERYXLOG")).unwrap() == segs[0].1);
}

/// Our clients against Barman 3.19.1's own put-wal and get-wal (--peek).
#[test]
fn our_clients_against_barman_on_the_server() {
    let r = Remote::start();
    r.remote_barman_in(python_barman().parent().unwrap());
    let pg_wal = r.pg_wal();
    let segs: Vec<(String, Vec<u8>)> = (0x20..0x23)
        .map(|i| {
            let n = seg_name(i);
            let d = segment(&n, SYSID, 5);
            (n, d)
        })
        .collect();
    for (i, (name, data)) in segs.iter().enumerate() {
        let path = pg_wal.join(name);
        std::fs::write(&path, data).unwrap();
        let p = path.display().to_string();
        let mut args = if i == 1 { vec!["--md5"] } else { vec![] };
        args.extend(["127.0.0.1", "srv", &p]);
        ok(&r.ours("barman-wal-archive", &args));
    }
    let run = crate::interop::barman_py(&r.env, &["archive-wal", "srv"]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let spool = r.env.root().join("spool");
    let s = spool.display().to_string();
    let dest = r.env.root().join("RECOVERYXLOG");
    let d = dest.display().to_string();
    ok(&r.ours(
        "barman-wal-restore",
        &[
            "-p",
            "3",
            "--keep-compression",
            "--spool-dir",
            &s,
            "127.0.0.1",
            "srv",
            &segs[0].0,
            &d,
        ],
    ));
    assert!(std::fs::read(&dest).unwrap() == segs[0].1);
    assert_eq!(listing(&spool), [segs[1].0.clone(), segs[2].0.clone()]);
    for (name, data) in &segs[1..] {
        assert!(std::fs::read(spool.join(name)).unwrap() == *data, "{name}");
    }
}
