//! A throwaway sshd on a loopback port with a fresh host key and client
//! key, so rsync-over-ssh backups are tested for real. Killed on drop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn whoami() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map_or_else(|| "root".into(), |u| u.name)
}

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

fn keygen(path: &std::path::Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with_env(&[])
    }

    /// An sshd whose sessions get `env` (sshd_config `SetEnv`): a
    /// passive node's primary needs its `barman` on PATH and its
    /// configuration file (`BARMAN_CONFIG_FILE`).
    pub fn start_with_env(env: &[(&str, String)]) -> Sshd {
        let dir = tempfile::Builder::new()
            .prefix("barman-rs-sshd-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("client_key"));
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        // A free port: bind, read it, release it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let user = whoami();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {k}\nAuthorizedKeysFile {a}\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nPermitRootLogin prohibit-password\nAllowUsers {user}\n\
                 PidFile {p}\nSubsystem sftp internal-sftp\n{setenv}",
                k = d.join("host_key").display(),
                a = d.join("authorized_keys").display(),
                p = d.join("sshd.pid").display(),
                setenv = if env.is_empty() {
                    String::new()
                } else {
                    let vars: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!("SetEnv {}\n", vars.join(" "))
                },
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").ok();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("sshd.log")).unwrap())
            .spawn()
            .expect("start sshd");
        let sshd = Sshd { dir, port, child };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not start: {}",
                std::fs::read_to_string(sshd.dir.path().join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        sshd
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// Barman's `ssh_command` for this server.
    pub fn ssh_command(&self) -> String {
        let user = whoami();
        format!(
            "ssh -p {} -i {} -o UserKnownHostsFile=/dev/null {user}@127.0.0.1",
            self.port,
            self.client_key().display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
