//! The PostgreSQL configuration of a restored cluster, as Barman leaves it:
//! the recovery settings it appends (`_generate_recovery_conf`), the
//! settings it neutralises (`ConfigurationFileMangeler`: `archive_command`
//! becomes `false`, earlier `recovery_target*` lines are commented out), and
//! the location settings it warns about (`ConfigIssueDetection`). Pure over
//! bytes; the caller reads and writes the files.

/// One changed or suspicious setting: `<file> line <n>: <key> = <value>`
/// (Barman counts lines from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    pub file: String,
    pub line: usize,
    pub key: String,
    pub value: String,
}

impl std::fmt::Display for Assertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} line {}: {} = {}",
            self.file, self.line, self.key, self.value
        )
    }
}

/// Settings forced during recovery, and what they become (None: commented).
const MANGLED: &[(&str, Option<&str>)] = &[
    ("archive_command", Some("false")),
    ("recovery_target", None),
    ("recovery_target_name", None),
    ("recovery_target_time", None),
    ("recovery_target_xid", None),
    ("recovery_target_lsn", None),
    ("recovery_target_inclusive", None),
    ("recovery_target_timeline", None),
    ("recovery_target_action", None),
];

/// Settings the user must review after a restore.
const DANGEROUS: &[&str] = &[
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
    "external_pid_file",
    "ssl_cert_file",
    "ssl_key_file",
    "ssl_ca_file",
    "ssl_crl_file",
    "unix_socket_directory",
    "unix_socket_directories",
    "include",
    "include_dir",
    "include_if_exists",
];

/// Barman's `^\s*([^\s=]+)\s*=?\s*(.*)$` on one line (without its end).
fn setting(line: &str) -> Option<(&str, &str)> {
    let l = line.trim_start();
    let end = l
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(l.len());
    if end == 0 {
        return None;
    }
    let (key, rest) = l.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
    Some((key, rest))
}

/// Splits into lines keeping their ends, as Python's `readlines()`.
fn lines(content: &[u8]) -> impl Iterator<Item = &[u8]> {
    content.split_inclusive(|b| *b == b'\n')
}

fn text_of(line: &[u8]) -> String {
    let l = String::from_utf8_lossy(line);
    l.trim_end_matches(['\n', '\r']).to_string()
}

/// Comments out the settings Barman neutralises (`#BARMAN#<line>`, then
/// `archive_command = false`) and appends `append` lines; returns the new
/// content and the changes.
pub fn mangle(file: &str, content: &[u8], append: &[String]) -> (Vec<u8>, Vec<Assertion>) {
    let mut out = Vec::with_capacity(content.len() + 256);
    let mut changes = Vec::new();
    let mut last: Option<&[u8]> = None;
    for (n, line) in lines(content).enumerate() {
        let text = text_of(line);
        if let Some((key, _)) = setting(&text) {
            if let Some((_, value)) = MANGLED.iter().find(|(k, _)| *k == key) {
                out.extend_from_slice(b"#BARMAN#");
                out.extend_from_slice(line);
                if let Some(v) = value {
                    out.extend_from_slice(format!("{key} = {v}\n").as_bytes());
                }
                changes.push(Assertion {
                    file: file.to_string(),
                    line: n,
                    key: key.to_string(),
                    value: value.unwrap_or("None").to_string(),
                });
                continue;
            }
        }
        last = Some(line);
        out.extend_from_slice(line);
    }
    if !append.is_empty() {
        // Barman means "end the last line", but compares an int to bytes:
        // after any line it always writes a newline, hence a blank line.
        if last.is_some_and(|l| !l.is_empty()) {
            out.push(b'\n');
        }
        out.extend_from_slice(append.join("\n").as_bytes());
        out.push(b'\n');
    }
    (out, changes)
}

/// The settings of `content` the user must review.
pub fn detect(file: &str, content: &[u8]) -> Vec<Assertion> {
    let mut found = Vec::new();
    for (n, line) in lines(content).enumerate() {
        let text = text_of(line);
        if let Some((key, value)) = setting(&text) {
            if DANGEROUS.contains(&key) {
                found.push(Assertion {
                    file: file.to_string(),
                    line: n,
                    key: key.to_string(),
                    value: value.to_string(),
                });
            }
        }
    }
    found
}

/// How PostgreSQL fetches WAL during the recovery.
#[derive(Debug, Clone)]
pub enum Fetch {
    /// `--restore-command`, escaped for the configuration file.
    Custom(String),
    /// `barman get-wal` on this host, run as `user`.
    GetWal { user: String, server: String },
    /// `barman-wal-restore` over ssh from the recovery host.
    WalRestore {
        user: String,
        port: Option<String>,
        host: String,
        server: String,
        jobs: u64,
    },
    /// `cp` from the staging WAL directory, removed at the end.
    Copy { wal_dest: String },
    /// Standby without get-wal: the WAL is in pg_wal already.
    None,
}

/// The recovery settings Barman appends, in its order.
#[derive(Debug, Clone)]
pub struct RecoverySettings<'a> {
    pub fetch: Fetch,
    pub standby: bool,
    /// `str()` of the tz-aware target time.
    pub time: Option<&'a str>,
    pub xid: Option<&'a str>,
    pub lsn: Option<&'a str>,
    pub name: Option<&'a str>,
    pub immediate: bool,
    pub exclusive: bool,
    /// As typed (`latest`, `current`, `2`).
    pub tli: Option<&'a str>,
    pub action: Option<&'a str>,
}

pub fn recovery_lines(s: &RecoverySettings<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    let partial = if s.standby { "" } else { "-P" };
    match &s.fetch {
        Fetch::Custom(cmd) => lines.push(format!("restore_command = '{cmd}'")),
        Fetch::GetWal { user, server } => {
            lines.push(format!(
                "# The 'barman get-wal' command must run as '{user}' user"
            ));
            lines.push(format!(
                "restore_command = 'barman get-wal {partial} {server} %f > %p'"
            ));
        }
        Fetch::WalRestore {
            user,
            port,
            host,
            server,
            jobs,
        } => {
            lines.push(
                "# The 'barman-wal-restore' command is provided in the 'barman-cli' package"
                    .to_string(),
            );
            let port = port
                .as_ref()
                .map(|p| format!("--port {p}"))
                .unwrap_or_default();
            let mut cmd =
                format!("restore_command = 'barman-wal-restore {partial} -U {user} {port} {host} {server} %f %p'");
            if *jobs > 1 {
                cmd.pop();
                cmd.push_str(&format!(" -p {jobs}'"));
            }
            // Barman normalises runs of spaces here (not for get-wal).
            lines.push(cmd.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        Fetch::Copy { wal_dest } => {
            lines.push(format!("restore_command = 'cp {wal_dest}/%f %p'"));
            lines.push(format!("recovery_end_command = 'rm -fr {wal_dest}'"));
        }
        Fetch::None => {}
    }
    if let Some(t) = s.time {
        lines.push(format!("recovery_target_time = '{t}'"));
    }
    if let Some(x) = s.xid {
        lines.push(format!("recovery_target_xid = '{x}'"));
    }
    if let Some(l) = s.lsn {
        lines.push(format!("recovery_target_lsn = '{l}'"));
    }
    if let Some(n) = s.name {
        lines.push(format!("recovery_target_name = '{n}'"));
    }
    if s.immediate {
        lines.push("recovery_target = 'immediate'".to_string());
    }
    if (s.xid.is_some() || s.time.is_some() || s.lsn.is_some()) && s.exclusive {
        lines.push("recovery_target_inclusive = 'False'".to_string());
    }
    if let Some(t) = s.tli {
        lines.push(format!("recovery_target_timeline = {t}"));
    }
    if let Some(a) = s.action {
        lines.push(format!("recovery_target_action = '{a}'"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_command_is_neutralised_and_targets_commented() {
        let conf =
            b"# comment\narchive_command = 'cp %p /x/%f'\n  recovery_target_name='a'\nport = 5432";
        let (out, changes) = mangle(
            "postgresql.auto.conf",
            conf,
            &["restore_command = 'x'".into()],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "# comment\n#BARMAN#archive_command = 'cp %p /x/%f'\narchive_command = false\n\
             #BARMAN#  recovery_target_name='a'\nport = 5432\nrestore_command = 'x'\n"
        );
        // Barman's quirk: a blank line before its lines after a full line.
        let (out, _) = mangle("x", b"a = 1\n", &["b = 2".into()]);
        assert_eq!(out, b"a = 1\n\nb = 2\n");
        let (out, _) = mangle("x", b"", &["b = 2".into()]);
        assert_eq!(out, b"b = 2\n");
        let shown: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            shown,
            [
                "postgresql.auto.conf line 1: archive_command = false",
                "postgresql.auto.conf line 2: recovery_target_name = None"
            ]
        );
    }

    #[test]
    fn dangerous_settings_are_found_with_their_values() {
        let found = detect(
            "postgresql.conf",
            b"data_directory = '/var/lib/pg'  # x\n#include = 'a'\ninclude_dir 'conf.d'\n",
        );
        let shown: Vec<String> = found.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            shown,
            [
                "postgresql.conf line 0: data_directory = '/var/lib/pg'  # x",
                "postgresql.conf line 2: include_dir = 'conf.d'"
            ]
        );
    }

    #[test]
    fn recovery_lines_in_barmans_order() {
        let s = RecoverySettings {
            fetch: Fetch::GetWal {
                user: "barman".into(),
                server: "pg".into(),
            },
            standby: true,
            time: None,
            xid: Some("42"),
            lsn: None,
            name: None,
            immediate: false,
            exclusive: true,
            tli: Some("latest"),
            action: Some("promote"),
        };
        assert_eq!(
            recovery_lines(&s),
            [
                "# The 'barman get-wal' command must run as 'barman' user",
                "restore_command = 'barman get-wal  pg %f > %p'",
                "recovery_target_xid = '42'",
                "recovery_target_inclusive = 'False'",
                "recovery_target_timeline = latest",
                "recovery_target_action = 'promote'",
            ]
        );
        let s = RecoverySettings {
            fetch: Fetch::WalRestore {
                user: "barman".into(),
                port: None,
                host: "bk.example".into(),
                server: "pg".into(),
                jobs: 4,
            },
            standby: false,
            ..s
        };
        assert_eq!(
            recovery_lines(&s)[1],
            "restore_command = 'barman-wal-restore -P -U barman bk.example pg %f %p -p 4'"
        );
    }
}
