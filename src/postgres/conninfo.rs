//! libpq connection strings (`key=value ...`), `PG*` environment variables
//! and `.pgpass`, turned into a `postgres::Config`. The `postgres` crate
//! reads none of these itself, and Barman's documentation relies on all of
//! them. The parsers are pure and fuzzed; only [`to_pg_config`] reads the
//! environment and the password file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Debian's libpq default socket directory.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConninfoError {
    #[error("invalid connection string \"{conninfo}\": {why}")]
    Syntax { conninfo: String, why: String },
    #[error("connection option \"{key}\" is not supported by barman-rs (in \"{conninfo}\")")]
    Unsupported { key: String, conninfo: String },
    #[error("invalid value for connection option \"{key}\": \"{value}\"")]
    BadValue { key: String, value: String },
}

/// libpq's `conninfo_parse`: `key = value` pairs separated by blanks;
/// a value may be single-quoted, with `\` escaping any character.
pub fn parse(conninfo: &str) -> Result<BTreeMap<String, String>, ConninfoError> {
    let syntax = |why: &str| ConninfoError::Syntax {
        conninfo: conninfo.to_string(),
        why: why.to_string(),
    };
    let mut out = BTreeMap::new();
    let mut chars = conninfo.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(syntax(&format!("missing \"=\" after \"{key}\"")));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some(n) => value.push(n),
                        None => break,
                    },
                    '\'' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(syntax("unterminated quoted string"));
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        value.push(n);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// One `.pgpass` line: `host:port:db:user:password`, `\` escapes `:` and
/// `\`, `*` matches anything in the first four fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgpassEntry {
    pub fields: [String; 4],
    pub password: String,
}

/// Parses a whole `.pgpass` file; malformed lines are skipped, as libpq does.
pub fn parse_pgpass(text: &str) -> Vec<PgpassEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut parts: Vec<String> = vec![String::new()];
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let Some(n) = chars.next() {
                        parts.last_mut().expect("non-empty").push(n);
                    }
                }
                ':' if parts.len() < 5 => parts.push(String::new()),
                c => parts.last_mut().expect("non-empty").push(c),
            }
        }
        if parts.len() == 5 {
            let password = parts.pop().expect("five parts");
            let fields: [String; 4] = parts.try_into().expect("four fields");
            out.push(PgpassEntry { fields, password });
        }
    }
    out
}

/// The password for the first matching entry.
pub fn pgpass_lookup<'a>(
    entries: &'a [PgpassEntry],
    host: &str,
    port: &str,
    db: &str,
    user: &str,
) -> Option<&'a str> {
    let want = [host, port, db, user];
    entries
        .iter()
        .find(|e| e.fields.iter().zip(want).all(|(f, w)| f == "*" || f == w))
        .map(|e| e.password.as_str())
}

/// Keys the connection honours. Others are refused by name.
const SUPPORTED: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "fallback_application_name",
    "connect_timeout",
    "sslmode",
    "passfile",
    "keepalives",
    "keepalives_idle",
    "target_session_attrs",
    "replication",
    "gssencmode",
    "client_encoding",
];

/// Everything needed to connect, once environment and defaults applied.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub hosts: Vec<String>,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    pub password: Option<String>,
    pub options: Option<String>,
    pub application_name: Option<String>,
    pub connect_timeout: Option<Duration>,
}

/// Applies `PG*` variables (given as a lookup, for tests), libpq defaults
/// and `.pgpass` to a parsed conninfo.
pub fn resolve(
    conninfo: &str,
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&Path) -> Option<String>,
) -> Result<Resolved, ConninfoError> {
    let kv = parse(conninfo)?;
    if let Some(k) = kv.keys().find(|k| !SUPPORTED.contains(&k.as_str())) {
        return Err(ConninfoError::Unsupported {
            key: k.clone(),
            conninfo: conninfo.to_string(),
        });
    }
    let get = |key: &str, var: &str| {
        kv.get(key)
            .cloned()
            .or_else(|| env(var))
            .filter(|v| !v.is_empty())
    };
    if let Some(mode) = get("sslmode", "PGSSLMODE") {
        if !matches!(mode.as_str(), "disable" | "allow" | "prefer") {
            return Err(ConninfoError::BadValue {
                key: "sslmode".into(),
                value: format!("{mode} (TLS is not supported yet)"),
            });
        }
    }
    let hosts: Vec<String> = get("host", "PGHOST")
        .or_else(|| get("hostaddr", "PGHOSTADDR"))
        .map(|h| h.split(',').map(str::to_string).collect())
        .unwrap_or_else(|| vec![DEFAULT_SOCKET_DIR.to_string()]);
    let port_text = get("port", "PGPORT").unwrap_or_else(|| "5432".into());
    let port: u16 = port_text.parse().map_err(|_| ConninfoError::BadValue {
        key: "port".into(),
        value: port_text.clone(),
    })?;
    let user = get("user", "PGUSER")
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "postgres".into());
    let dbname = get("dbname", "PGDATABASE").unwrap_or_else(|| user.clone());
    let connect_timeout = match get("connect_timeout", "PGCONNECT_TIMEOUT") {
        None => None,
        Some(t) => {
            let secs: u64 = t.parse().map_err(|_| ConninfoError::BadValue {
                key: "connect_timeout".into(),
                value: t.clone(),
            })?;
            (secs > 0).then(|| Duration::from_secs(secs.max(2)))
        }
    };
    let mut password = get("password", "PGPASSWORD");
    if password.is_none() {
        let passfile = get("passfile", "PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")));
        if let Some(text) = passfile.as_deref().and_then(read_file) {
            let entries = parse_pgpass(&text);
            let host = hosts.first().map(String::as_str).unwrap_or("");
            let host = if host.starts_with('/') || host.is_empty() {
                "localhost"
            } else {
                host
            };
            password = pgpass_lookup(&entries, host, &port.to_string(), &dbname, &user)
                .map(str::to_string);
        }
    }
    Ok(Resolved {
        hosts,
        port,
        user,
        dbname,
        password,
        options: get("options", "PGOPTIONS"),
        application_name: get("application_name", "PGAPPNAME")
            .or_else(|| kv.get("fallback_application_name").cloned()),
        connect_timeout,
    })
}

/// Reads a `.pgpass` only when libpq would: a regular file, not readable by
/// group or others.
pub fn read_pgpass(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// The `postgres::Config` for a conninfo, with the real environment.
pub fn to_pg_config(conninfo: &str) -> Result<postgres::Config, ConninfoError> {
    let r = resolve(conninfo, &|k| std::env::var(k).ok(), &read_pgpass)?;
    let mut cfg = postgres::Config::new();
    for h in &r.hosts {
        if h.starts_with('/') {
            cfg.host_path(h);
        } else {
            cfg.host(h);
        }
    }
    cfg.port(r.port).user(&r.user).dbname(&r.dbname);
    if let Some(p) = &r.password {
        cfg.password(p);
    }
    if let Some(o) = &r.options {
        cfg.options(o);
    }
    if let Some(a) = &r.application_name {
        cfg.application_name(a);
    }
    if let Some(t) = r.connect_timeout {
        cfg.connect_timeout(t);
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libpq_syntax() {
        let kv = parse("host=/tmp  port = 5433 password='a b\\'c' dbname=x\\ y").unwrap();
        assert_eq!(kv["host"], "/tmp");
        assert_eq!(kv["port"], "5433");
        assert_eq!(kv["password"], "a b'c");
        assert_eq!(kv["dbname"], "x y");
        assert!(parse("host").is_err());
        assert!(parse("password='open").is_err());
    }

    #[test]
    fn pgpass_matching() {
        let e = parse_pgpass("# c\nlocalhost:5432:*:bob:s\\:x\n*:*:*:*:fallback\nbad:line\n");
        assert_eq!(e.len(), 2);
        assert_eq!(
            pgpass_lookup(&e, "localhost", "5432", "db", "bob"),
            Some("s:x")
        );
        assert_eq!(pgpass_lookup(&e, "h", "1", "d", "u"), Some("fallback"));
    }

    #[test]
    fn resolution_uses_env_defaults_and_pgpass() {
        let env = |k: &str| match k {
            "PGPORT" => Some("5499".to_string()),
            "HOME" => Some("/home/b".to_string()),
            _ => None,
        };
        let file = |p: &Path| {
            (p == Path::new("/home/b/.pgpass")).then(|| "localhost:5499:app:bob:pw\n".to_string())
        };
        let r = resolve("user=bob dbname=app host=/run/pg", &env, &file).unwrap();
        assert_eq!(r.port, 5499);
        assert_eq!(r.password.as_deref(), Some("pw"));
        assert_eq!(r.hosts, vec!["/run/pg".to_string()]);
        let err = resolve("service=main", &env, &file).unwrap_err();
        assert!(err.to_string().contains("\"service\""), "{err}");
        assert!(resolve("sslmode=require", &env, &file).is_err());
    }
}
