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

/// Barman's streaming DSN: the conninfo's parameters sorted, the
/// replication ones forced (a user `options` is lost, as in Barman), then
/// `application_name=<app>` unless the conninfo names one.
pub fn replication_dsn(conninfo: &str, app: &str) -> Result<String, String> {
    let mut params = parse(conninfo).map_err(|e| e.to_string())?;
    params.insert("dbname".into(), "replication".into());
    params.insert("replication".into(), "true".into());
    params.insert("options".into(), "-cdatestyle=iso".into());
    let has_app = params.contains_key("application_name");
    let mut s: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if !has_app {
        s.push(format!("application_name={app}"));
    }
    Ok(s.join(" "))
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

/// libpq's keys that barman-rs honours, with their environment variables.
const SUPPORTED: &[(&str, &str)] = &[
    ("host", "PGHOST"),
    ("hostaddr", "PGHOSTADDR"),
    ("port", "PGPORT"),
    ("user", "PGUSER"),
    ("password", "PGPASSWORD"),
    ("dbname", "PGDATABASE"),
    ("options", "PGOPTIONS"),
    ("application_name", "PGAPPNAME"),
    ("fallback_application_name", ""),
    ("connect_timeout", "PGCONNECT_TIMEOUT"),
    ("passfile", "PGPASSFILE"),
    ("service", "PGSERVICE"),
    ("keepalives", ""),
    ("keepalives_idle", ""),
    ("keepalives_interval", ""),
    ("keepalives_count", ""),
    ("tcp_user_timeout", ""),
    ("target_session_attrs", "PGTARGETSESSIONATTRS"),
    ("load_balance_hosts", "PGLOADBALANCEHOSTS"),
    ("channel_binding", "PGCHANNELBINDING"),
    ("replication", ""),
    ("client_encoding", "PGCLIENTENCODING"),
    ("sslmode", "PGSSLMODE"),
    ("sslnegotiation", "PGSSLNEGOTIATION"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcrl", "PGSSLCRL"),
    ("sslcrldir", "PGSSLCRLDIR"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("sslpassword", ""),
    ("sslcertmode", "PGSSLCERTMODE"),
    ("sslsni", "PGSSLSNI"),
    ("ssl_min_protocol_version", "PGSSLMINPROTOCOLVERSION"),
    ("ssl_max_protocol_version", "PGSSLMAXPROTOCOLVERSION"),
    // Obsolete in libpq (ignored there too).
    ("sslcompression", "PGSSLCOMPRESSION"),
    ("gssencmode", "PGGSSENCMODE"),
];

/// libpq's keys barman-rs cannot honour, refused by name (one line) rather
/// than ignored: each changes how, or to what, the connection is made.
const UNSUPPORTED: &[&str] = &[
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "requirepeer",
    "require_auth",
    "sslkeylogfile",
    "min_protocol_version",
    "max_protocol_version",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
];

/// Keepalive settings, as libpq's keys give them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keepalives {
    pub enabled: bool,
    pub idle: Option<Duration>,
    pub interval: Option<Duration>,
    pub count: Option<u32>,
}

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
    pub keepalives: Keepalives,
    pub tcp_user_timeout: Option<Duration>,
    pub target_session_attrs: postgres::config::TargetSessionAttrs,
    pub load_balance: bool,
    pub channel_binding: postgres::config::ChannelBinding,
    pub tls: super::tls::Settings,
}

/// What a file read by [`resolve`] is for (a password file is read only
/// under libpq's permission rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Password,
    Service,
}

/// libpq's service files, in its order: the user's, then the system's.
fn service_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    match env("PGSERVICEFILE") {
        Some(f) => files.push(PathBuf::from(f)),
        None => {
            if let Some(h) = env("HOME") {
                files.push(Path::new(&h).join(".pg_service.conf"));
            }
        }
    }
    // Debian's libpq is built with sysconfdir /etc/postgresql-common.
    let sysconf = env("PGSYSCONFDIR").unwrap_or_else(|| "/etc/postgresql-common".into());
    files.push(Path::new(&sysconf).join("pg_service.conf"));
    files
}

/// Applies `PG*` variables (given as a lookup, for tests), a service file,
/// libpq defaults and `.pgpass` to a parsed conninfo. Precedence as in
/// libpq: the conninfo, then the service, then the environment.
pub fn resolve(
    conninfo: &str,
    env: &dyn Fn(&str) -> Option<String>,
    read_file: &dyn Fn(&Path, FileKind) -> Option<String>,
) -> Result<Resolved, ConninfoError> {
    let mut kv = parse(conninfo)?;
    for k in kv.keys() {
        if UNSUPPORTED.contains(&k.as_str()) || !SUPPORTED.iter().any(|(s, _)| s == k) {
            return Err(ConninfoError::Unsupported {
                key: k.clone(),
                conninfo: conninfo.to_string(),
            });
        }
    }
    let bad = |key: &str, value: &str| ConninfoError::BadValue {
        key: key.into(),
        value: value.into(),
    };
    let service = kv
        .get("service")
        .cloned()
        .or_else(|| env("PGSERVICE"))
        .filter(|v| !v.is_empty());
    if let Some(name) = service {
        let mut found = None;
        for file in service_files(env) {
            let Some(text) = read_file(&file, FileKind::Service) else {
                continue;
            };
            match super::service::lookup(&text, &name) {
                Ok(Some(map)) => {
                    found = Some(map);
                    break;
                }
                Ok(None) => {}
                Err(line) => {
                    return Err(bad(
                        "service",
                        &format!(
                            "{name} (syntax error in service file \"{}\", line {line})",
                            file.display()
                        ),
                    ))
                }
            }
        }
        let map = found.ok_or_else(|| {
            bad(
                "service",
                &format!("{name} (definition of service not found)"),
            )
        })?;
        for (k, v) in map {
            if k == "service"
                || UNSUPPORTED.contains(&k.as_str())
                || !SUPPORTED.iter().any(|(s, _)| *s == k)
            {
                return Err(ConninfoError::Unsupported {
                    key: k,
                    conninfo: format!("service={name}"),
                });
            }
            kv.entry(k).or_insert(v);
        }
    }
    let get = |key: &str| {
        let var = SUPPORTED
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .unwrap_or("");
        kv.get(key)
            .cloned()
            .or_else(|| (!var.is_empty()).then(|| env(var)).flatten())
            .filter(|v| !v.is_empty())
    };
    let seconds = |key: &str| -> Result<Option<u64>, ConninfoError> {
        get(key)
            .map(|t| t.trim().parse::<u64>().map_err(|_| bad(key, &t)))
            .transpose()
    };
    let hosts: Vec<String> = get("host")
        .or_else(|| get("hostaddr"))
        .map(|h| h.split(',').map(str::to_string).collect())
        .unwrap_or_else(|| vec![DEFAULT_SOCKET_DIR.to_string()]);
    let port_text = get("port").unwrap_or_else(|| "5432".into());
    let port: u16 = port_text.parse().map_err(|_| bad("port", &port_text))?;
    let user = get("user")
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "postgres".into());
    let dbname = get("dbname").unwrap_or_else(|| user.clone());
    let connect_timeout = seconds("connect_timeout")?
        .filter(|s| *s > 0)
        .map(|s| Duration::from_secs(s.max(2)));
    let mut password = get("password");
    if password.is_none() {
        let passfile = get("passfile")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")));
        if let Some(text) = passfile
            .as_deref()
            .and_then(|p| read_file(p, FileKind::Password))
        {
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
    let keepalives = Keepalives {
        enabled: get("keepalives").is_none_or(|v| v.trim() != "0"),
        idle: seconds("keepalives_idle")?.map(Duration::from_secs),
        interval: seconds("keepalives_interval")?.map(Duration::from_secs),
        count: seconds("keepalives_count")?.map(|c| c as u32),
    };
    // tcp_user_timeout is in milliseconds.
    let tcp_user_timeout = seconds("tcp_user_timeout")?
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis);
    use postgres::config::{ChannelBinding, TargetSessionAttrs};
    let target_session_attrs = match get("target_session_attrs").as_deref() {
        None | Some("any") => TargetSessionAttrs::Any,
        Some("read-write") => TargetSessionAttrs::ReadWrite,
        Some("read-only") => TargetSessionAttrs::ReadOnly,
        Some(v) => {
            return Err(bad(
                "target_session_attrs",
                &format!("{v} (barman-rs supports any, read-write and read-only)"),
            ))
        }
    };
    let load_balance = match get("load_balance_hosts").as_deref() {
        None | Some("disable") => false,
        Some("random") => true,
        Some(v) => return Err(bad("load_balance_hosts", v)),
    };
    let channel_binding = match get("channel_binding").as_deref() {
        None | Some("prefer") => ChannelBinding::Prefer,
        Some("disable") => ChannelBinding::Disable,
        Some("require") => ChannelBinding::Require,
        Some(v) => return Err(bad("channel_binding", v)),
    };
    if let Some(enc) = get("client_encoding") {
        if !matches!(enc.to_ascii_uppercase().as_str(), "UTF8" | "UTF-8" | "AUTO") {
            return Err(bad(
                "client_encoding",
                &format!("{enc} (barman-rs talks UTF8)"),
            ));
        }
    }
    if let Some(g) = get("gssencmode") {
        match g.as_str() {
            "disable" | "prefer" => {}
            "require" => {
                return Err(bad(
                    "gssencmode",
                    "require (barman-rs has no GSSAPI encryption)",
                ))
            }
            v => return Err(bad("gssencmode", v)),
        }
    }
    let tls = tls_settings(&get)?;
    Ok(Resolved {
        hosts,
        port,
        user,
        dbname,
        password,
        options: get("options"),
        application_name: get("application_name")
            .or_else(|| kv.get("fallback_application_name").cloned()),
        connect_timeout,
        keepalives,
        tcp_user_timeout,
        target_session_attrs,
        load_balance,
        channel_binding,
        tls,
    })
}

fn tls_settings(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<super::tls::Settings, ConninfoError> {
    use super::tls::{parse_protocol, CertMode, Mode, Settings};
    let bad = |key: &str, value: &str| ConninfoError::BadValue {
        key: key.into(),
        value: value.into(),
    };
    let mut s = Settings::default();
    if let Some(m) = get("sslmode") {
        s.mode = Mode::parse(&m).ok_or_else(|| bad("sslmode", &m))?;
    }
    s.rootcert = get("sslrootcert");
    // libpq: the system store makes verify-full the default sslmode.
    if get("sslmode").is_none() && s.rootcert.as_deref() == Some("system") {
        s.mode = Mode::VerifyFull;
    }
    s.crl = get("sslcrl");
    s.crldir = get("sslcrldir");
    s.cert = get("sslcert");
    s.key = get("sslkey");
    s.password = get("sslpassword");
    if let Some(m) = get("sslcertmode") {
        s.certmode = match m.as_str() {
            "disable" => CertMode::Disable,
            "allow" => CertMode::Allow,
            "require" => CertMode::Require,
            v => return Err(bad("sslcertmode", v)),
        };
    }
    if let Some(v) = get("sslsni") {
        s.sni = v.trim() != "0";
    }
    if let Some(v) = get("ssl_min_protocol_version") {
        s.min_protocol = parse_protocol(&v)
            .flatten()
            .ok_or_else(|| bad("ssl_min_protocol_version", &v))?;
    }
    if let Some(v) = get("ssl_max_protocol_version") {
        s.max_protocol = parse_protocol(&v).ok_or_else(|| bad("ssl_max_protocol_version", &v))?;
    }
    match get("sslnegotiation").as_deref() {
        None | Some("postgres") => {}
        Some("direct") => {
            if !matches!(s.mode, Mode::Require | Mode::VerifyCa | Mode::VerifyFull) {
                return Err(bad(
                    "sslnegotiation",
                    "direct (needs sslmode require, verify-ca or verify-full)",
                ));
            }
            s.direct = true;
        }
        Some(v) => return Err(bad("sslnegotiation", v)),
    }
    Ok(s)
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

/// The `postgres::Config` for a conninfo, with the real environment, and
/// the TLS connector it needs.
pub fn to_pg_config(
    conninfo: &str,
) -> Result<(postgres::Config, postgres_openssl::MakeTlsConnector), String> {
    let r = resolve(conninfo, &|k| std::env::var(k).ok(), &read_file_if_any)
        .map_err(|e| e.to_string())?;
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
    cfg.keepalives(r.keepalives.enabled);
    if let Some(t) = r.keepalives.idle {
        cfg.keepalives_idle(t);
    }
    if let Some(t) = r.keepalives.interval {
        cfg.keepalives_interval(t);
    }
    if let Some(n) = r.keepalives.count {
        cfg.keepalives_retries(n);
    }
    if let Some(t) = r.tcp_user_timeout {
        cfg.tcp_user_timeout(t);
    }
    cfg.target_session_attrs(r.target_session_attrs);
    cfg.channel_binding(r.channel_binding);
    if r.load_balance {
        cfg.load_balance_hosts(postgres::config::LoadBalanceHosts::Random);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let unix_only = r.hosts.iter().all(|h| h.starts_with('/'));
    let (mode, tls) = super::tls::connector(&r.tls, home.as_deref(), unix_only)?;
    cfg.ssl_mode(mode);
    if r.tls.direct && !unix_only {
        cfg.ssl_negotiation(postgres::config::SslNegotiation::Direct);
    }
    Ok((cfg, tls))
}

/// The password file under libpq's permission rule; service files as they are.
fn read_file_if_any(path: &Path, kind: FileKind) -> Option<String> {
    match kind {
        FileKind::Password => read_pgpass(path),
        FileKind::Service => std::fs::read_to_string(path).ok(),
    }
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
        let file = |p: &Path, _: FileKind| {
            (p == Path::new("/home/b/.pgpass")).then(|| "localhost:5499:app:bob:pw\n".to_string())
        };
        let r = resolve("user=bob dbname=app host=/run/pg", &env, &file).unwrap();
        assert_eq!(r.port, 5499);
        assert_eq!(r.password.as_deref(), Some("pw"));
        assert_eq!(r.hosts, vec!["/run/pg".to_string()]);
        let err = resolve("service=main", &env, &file).unwrap_err();
        assert!(err.to_string().contains("service"), "{err}");
        assert!(resolve("sslmode=require", &env, &file).is_ok());
        assert!(resolve("sslmode=sometimes", &env, &file).is_err());
        let err = resolve("krbsrvname=postgres", &env, &file).unwrap_err();
        assert!(err.to_string().contains("\"krbsrvname\""), "{err}");
        let err = resolve("gssencmode=require", &env, &file).unwrap_err();
        assert!(err.to_string().contains("\"gssencmode\""), "{err}");
    }

    #[test]
    fn services_keepalives_and_tls_settings() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/b".to_string()),
            "PGSSLMODE" => Some("require".to_string()),
            "PGPORT" => Some("1".to_string()),
            _ => None,
        };
        let file = |p: &Path, _: FileKind| {
            (p == Path::new("/home/b/.pg_service.conf")).then(|| {
                "[main]\nhost=db.example.com\nport=5433\nsslmode=verify-full\nsslrootcert=/etc/ca.crt\n".to_string()
            })
        };
        // The service beats the environment; the conninfo beats the service.
        let r = resolve(
            "service=main user=barman keepalives_idle=30 tcp_user_timeout=5000",
            &env,
            &file,
        )
        .unwrap();
        assert_eq!(r.hosts, vec!["db.example.com".to_string()]);
        assert_eq!(r.port, 5433);
        assert_eq!(r.tls.mode, crate::postgres::tls::Mode::VerifyFull);
        assert_eq!(r.tls.rootcert.as_deref(), Some("/etc/ca.crt"));
        assert_eq!(r.keepalives.idle, Some(Duration::from_secs(30)));
        assert!(r.keepalives.enabled);
        assert_eq!(r.tcp_user_timeout, Some(Duration::from_millis(5000)));
        let r = resolve("service=main port=6000 sslmode=disable", &env, &file).unwrap();
        assert_eq!(r.port, 6000);
        assert_eq!(r.tls.mode, crate::postgres::tls::Mode::Disable);
        let r = resolve("host=x", &env, &file).unwrap();
        assert_eq!(r.tls.mode, crate::postgres::tls::Mode::Require);
        assert!(resolve("service=nope", &env, &file)
            .unwrap_err()
            .to_string()
            .contains("not found"));
        assert!(resolve("target_session_attrs=standby", &env, &file).is_err());
        assert!(resolve("ssl_min_protocol_version=TLSv9", &env, &file).is_err());
    }
}
