//! TLS as libpq makes it (OpenSSL, through postgres-openssl), so a
//! conninfo that works with Barman (psycopg2, libpq) works here:
//!
//! - `sslmode`: `disable`; `allow` and `prefer` (TLS when the server offers
//!   it; `allow` tries it first too); `require` (no certificate check,
//!   unless a root certificate file exists, when it checks the chain as
//!   libpq does); `verify-ca` (chain); `verify-full` (chain and host name).
//!   Unix sockets never use TLS, as in libpq.
//! - `sslrootcert` (`system` for the system's roots), `sslcrl`,
//!   `sslcrldir`, `sslcert`, `sslkey` (+ `sslpassword`), `sslcertmode`,
//!   `sslsni`, `ssl_min_protocol_version`, `ssl_max_protocol_version`, with
//!   libpq's defaults under `~/.postgresql/` and its private key
//!   permission rule.
//!
//! Errors are one line, with libpq's wording where it has one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use openssl::pkey::PKey;
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode, SslVersion};
use openssl::x509::store::X509Lookup;
use openssl::x509::verify::X509VerifyFlags;
use postgres_openssl::MakeTlsConnector;

/// `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "disable" => Mode::Disable,
            "allow" => Mode::Allow,
            "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            _ => return None,
        })
    }
}

/// `sslcertmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertMode {
    Disable,
    Allow,
    Require,
}

/// The TLS part of a resolved conninfo (values as given; defaults and
/// files are applied by [`connector`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub mode: Mode,
    pub rootcert: Option<String>,
    pub crl: Option<String>,
    pub crldir: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub password: Option<String>,
    pub certmode: CertMode,
    pub sni: bool,
    pub min_protocol: SslVersion,
    pub max_protocol: Option<SslVersion>,
    /// `sslnegotiation=direct` (PostgreSQL 17+): TLS from the first byte.
    pub direct: bool,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            mode: Mode::Prefer,
            rootcert: None,
            crl: None,
            crldir: None,
            cert: None,
            key: None,
            password: None,
            certmode: CertMode::Allow,
            sni: true,
            min_protocol: SslVersion::TLS1_2,
            max_protocol: None,
            direct: false,
        }
    }
}

/// libpq's protocol version names.
pub fn parse_protocol(s: &str) -> Option<Option<SslVersion>> {
    Some(Some(match s {
        "" => return Some(None),
        "TLSv1" => SslVersion::TLS1,
        "TLSv1.1" => SslVersion::TLS1_1,
        "TLSv1.2" => SslVersion::TLS1_2,
        "TLSv1.3" => SslVersion::TLS1_3,
        _ => return None,
    }))
}

/// The connector for `s`, and the `postgres` crate's mode. `home` is the
/// directory of libpq's defaults (`~/.postgresql/`); `unix_only` when
/// every host is a socket directory (no TLS there, as in libpq).
pub fn connector(
    s: &Settings,
    home: Option<&Path>,
    unix_only: bool,
) -> Result<(postgres::config::SslMode, MakeTlsConnector), String> {
    use postgres::config::SslMode;
    let pg_mode = match s.mode {
        _ if unix_only => SslMode::Disable,
        Mode::Disable => SslMode::Disable,
        Mode::Allow | Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    };
    let default = |name: &str| home.map(|h| h.join(".postgresql").join(name));
    let ssl_err = |what: &str, e: openssl::error::ErrorStack| format!("{what}: {e}");

    let mut b = SslConnector::builder(SslMethod::tls_client())
        .map_err(|e| ssl_err("could not create SSL context", e))?;
    b.set_min_proto_version(Some(s.min_protocol))
        .map_err(|e| ssl_err("invalid ssl_min_protocol_version", e))?;
    b.set_max_proto_version(s.max_protocol)
        .map_err(|e| ssl_err("invalid ssl_max_protocol_version", e))?;

    // Root certificates: required for verify-*, used when present otherwise.
    let system = s.rootcert.as_deref() == Some("system");
    if system && matches!(s.mode, Mode::Allow | Mode::Prefer | Mode::Require) {
        let mode = format!("{:?}", s.mode).to_lowercase();
        return Err(format!(
            "weak sslmode \"{mode}\" may not be used with sslrootcert=system (use \"verify-full\")"
        ));
    }
    let root: Option<PathBuf> = match s.rootcert.as_deref() {
        Some("system") => None,
        Some(p) => Some(PathBuf::from(p)),
        None => default("root.crt"),
    };
    let root_exists = root.as_deref().is_some_and(Path::exists);
    let verify_chain = pg_mode != SslMode::Disable
        && (system || matches!(s.mode, Mode::VerifyCa | Mode::VerifyFull) || root_exists);
    if verify_chain {
        if system {
            b.set_default_verify_paths()
                .map_err(|e| ssl_err("could not load the system root certificates", e))?;
        } else {
            let path = root.unwrap_or_else(|| PathBuf::from("~/.postgresql/root.crt"));
            if !path.exists() {
                return Err(format!(
                    "root certificate file \"{}\" does not exist: provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification",
                    path.display()
                ));
            }
            b.set_ca_file(&path).map_err(|e| {
                ssl_err(
                    &format!(
                        "could not read root certificate file \"{}\"",
                        path.display()
                    ),
                    e,
                )
            })?;
            let crl = s
                .crl
                .as_ref()
                .map(PathBuf::from)
                .or_else(|| default("root.crl"))
                .filter(|p| p.exists());
            let mut crl_loaded = false;
            if let Some(crl) = crl {
                b.cert_store_mut()
                    .add_lookup(X509Lookup::file())
                    .and_then(|l| l.load_crl_file(&crl, SslFiletype::PEM))
                    .map_err(|e| {
                        ssl_err(
                            &format!(
                                "could not load SSL certificate revocation list \"{}\"",
                                crl.display()
                            ),
                            e,
                        )
                    })?;
                crl_loaded = true;
            }
            if let Some(dir) = s.crldir.as_deref().filter(|d| Path::new(d).is_dir()) {
                b.cert_store_mut()
                    .add_lookup(X509Lookup::hash_dir())
                    .and_then(|l| l.add_dir(dir, SslFiletype::PEM))
                    .map_err(|e| {
                        ssl_err(
                            &format!("could not load SSL certificate revocation list directory \"{dir}\""),
                            e,
                        )
                    })?;
                crl_loaded = true;
            }
            if crl_loaded {
                b.cert_store_mut()
                    .set_flags(X509VerifyFlags::CRL_CHECK | X509VerifyFlags::CRL_CHECK_ALL)
                    .map_err(|e| ssl_err("could not enable CRL checks", e))?;
            }
        }
        b.set_verify(SslVerifyMode::PEER);
    } else {
        b.set_verify(SslVerifyMode::NONE);
    }

    // The client certificate, when there is one (a missing file is no
    // certificate, as in libpq).
    if s.certmode != CertMode::Disable {
        let cert = s
            .cert
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| default("postgresql.crt"))
            .filter(|p| p.exists());
        match cert {
            Some(cert) => {
                b.set_certificate_chain_file(&cert).map_err(|e| {
                    ssl_err(
                        &format!("could not read certificate file \"{}\"", cert.display()),
                        e,
                    )
                })?;
                let key = s
                    .key
                    .as_ref()
                    .map(PathBuf::from)
                    .or_else(|| default("postgresql.key"))
                    .unwrap_or_default();
                let key_pem = read_private_key(&key)?;
                let pkey = match &s.password {
                    Some(pw) => PKey::private_key_from_pem_passphrase(&key_pem, pw.as_bytes()),
                    None => PKey::private_key_from_pem(&key_pem),
                }
                .map_err(|e| {
                    ssl_err(
                        &format!("could not load private key file \"{}\"", key.display()),
                        e,
                    )
                })?;
                b.set_private_key(&pkey).map_err(|e| {
                    ssl_err(
                        &format!("could not load private key file \"{}\"", key.display()),
                        e,
                    )
                })?;
                b.check_private_key().map_err(|e| {
                    ssl_err(
                        &format!(
                            "certificate \"{}\" does not match private key file \"{}\"",
                            cert.display(),
                            key.display()
                        ),
                        e,
                    )
                })?;
            }
            None if s.certmode == CertMode::Require => {
                return Err(
                    "sslcertmode=require, but no client certificate file was found".to_string(),
                );
            }
            None => {}
        }
    }

    let mut tls = MakeTlsConnector::new(b.build());
    let verify_host = verify_chain && s.mode == Mode::VerifyFull || system;
    let sni = s.sni;
    tls.set_callback(move |cfg, _host| {
        cfg.set_verify_hostname(verify_host);
        cfg.set_use_server_name_indication(sni);
        Ok(())
    });
    Ok((pg_mode, tls))
}

/// A private key file, refused as libpq refuses it when others can read it.
fn read_private_key(path: &Path) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|_| {
        format!(
            "certificate present, but not private key file \"{}\"",
            path.display()
        )
    })?;
    let mode = meta.mode() & 0o777;
    let too_open = if meta.uid() == 0 {
        mode & 0o137 != 0
    } else {
        mode & 0o077 != 0
    };
    if !meta.is_file() || too_open {
        return Err(format!(
            "private key file \"{}\" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| {
        format!(
            "could not open private key file \"{}\": {e}",
            path.display()
        )
    })
}
