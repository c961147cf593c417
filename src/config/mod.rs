//! Barman's configuration: which files are read, in what order, and how a
//! server's effective value for each option is found.
//!
//! Resolution, as Barman 3.19 does it: a server's option comes from its own
//! section (where `[DEFAULT]` keys also appear), else from `[barman]` when the
//! option is inheritable, else from Barman's default (interpolated with the
//! options resolved before it), else None. A value of `None` or empty text
//! means "unset" and stops the search.
//!
//! Where barman-rs is stricter than Barman, on purpose: a value that does not
//! parse (`compression = foo`, a bad retention policy, `active = maybe`) is a
//! fatal one-line error naming file, line, section, option and value, not a
//! warning followed by a silently different configuration; so is a server
//! section defined twice, or a server name that cannot be a directory or lock
//! file name. Everything is validated before any command touches barman_home.

// A configuration error happens at most once per run, before any work:
// its size on the error path does not matter, its detail does.
#![allow(clippy::result_large_err)]

pub mod ini;
pub mod json;
pub mod model;
pub mod options;
pub mod types;
pub mod update;

pub use model::Model;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use options::{Scope, Support, SERVER_OPTIONS};
use types::{RetentionPolicy, Value};

/// The default configuration files, in search order.
pub const DEFAULT_FILES: &[&str] = &[
    "~/.barman.conf",
    "/etc/barman.conf",
    "/etc/barman/barman.conf",
];

/// A configuration problem that stops every command. `Display` is the one
/// line the user sees.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Configuration file '{0}' does not exist")]
    Missing(String),
    #[error("Could not find any configuration file at default locations.\nCheck Barman's documentation for more help.")]
    NoDefault,
    #[error("Cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("Cannot parse configuration file {path}, {err}")]
    Parse { path: PathBuf, err: ini::ParseError },
    #[error("Parameter \"barman_home\" is required in [barman] section ({path})")]
    NoHome { path: PathBuf },
    #[error("Invalid configuration value '{value}' for key {key} in [{section}] section ({path}, line {line}): {why}")]
    Value {
        path: PathBuf,
        line: usize,
        section: String,
        key: String,
        value: String,
        why: String,
    },
    #[error("Bad value substitution: option '{key}' in [{section}] section ({path}, line {line}): {err}. Raw value: '{raw}'")]
    Interpolation {
        path: PathBuf,
        line: usize,
        section: String,
        key: String,
        raw: String,
        err: ini::InterpolationError,
    },
    #[error("Invalid server name [{name}] ({path}, line {line}): {why}")]
    ServerName {
        path: PathBuf,
        line: usize,
        name: String,
        why: &'static str,
    },
    #[error("the reserved word 'all' is not allowed as server name.Please rename it.")]
    ReservedAll,
    #[error("Server '{name}' is defined twice: {first} and {second}")]
    Duplicate {
        name: String,
        first: String,
        second: String,
    },
    #[error("the configuration file {0} contains a not empty [barman] section")]
    GlobalInInclude(String),
}

impl ConfigError {
    /// Barman prints these two with `FATAL: ` rather than `ERROR: `.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ConfigError::ReservedAll | ConfigError::GlobalInInclude(_)
        )
    }
}

/// Where one raw value was written.
#[derive(Debug, Clone)]
struct RawValue {
    value: String,
    path: PathBuf,
    line: usize,
}

/// All sections of all files read so far, merged as configparser merges
/// them (later files and later occurrences win per key).
#[derive(Debug, Default)]
struct RawConfig {
    sections: BTreeMap<String, BTreeMap<String, RawValue>>,
    /// Section names in first-seen order (configparser's `sections()`).
    order: Vec<String>,
    /// Where each server section was first declared, for duplicate errors.
    declared: BTreeMap<String, (PathBuf, usize)>,
    /// Files whose sections merge with another file's instead of being a
    /// duplicate: `.barman.auto.conf`, where config-update writes.
    mergeable: Vec<PathBuf>,
}

impl RawConfig {
    fn read(&mut self, path: &Path) -> Result<(), ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8(bytes).map_err(|_| ConfigError::Read {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "not valid UTF-8"),
        })?;
        let sections = ini::parse(&text).map_err(|err| ConfigError::Parse {
            path: path.to_path_buf(),
            err,
        })?;
        for section in sections {
            let is_special = section.name == "barman" || section.name == "DEFAULT";
            if !is_special {
                let merges = |p: &Path| {
                    p != path
                        && (self.mergeable.iter().any(|m| m == p)
                            || self.mergeable.iter().any(|m| m == path))
                };
                if let Some((p, l)) = self.declared.get(&section.name).filter(|(p, _)| !merges(p)) {
                    return Err(ConfigError::Duplicate {
                        name: section.name.clone(),
                        first: format!("{} line {}", p.display(), l),
                        second: format!("{} line {}", path.display(), section.line),
                    });
                }
                self.declared
                    .insert(section.name.clone(), (path.to_path_buf(), section.line));
            }
            if !self.sections.contains_key(&section.name) {
                self.order.push(section.name.clone());
            }
            let map = self.sections.entry(section.name).or_default();
            for e in section.entries {
                map.insert(
                    e.key,
                    RawValue {
                        value: e.value,
                        path: path.to_path_buf(),
                        line: e.line,
                    },
                );
            }
        }
        Ok(())
    }

    fn raw(&self, section: &str, key: &str) -> Option<&RawValue> {
        self.sections
            .get(section)
            .and_then(|s| s.get(key))
            .or_else(|| self.sections.get("DEFAULT").and_then(|d| d.get(key)))
    }

    /// configparser's `get()`: interpolated, `None` mapped to unset, one pair
    /// of surrounding quotes stripped (Barman's `_QUOTE_RE`).
    fn get(&self, section: &str, key: &str) -> Result<Option<(String, &RawValue)>, ConfigError> {
        if !self.sections.contains_key(section) {
            return Ok(None);
        }
        let Some(raw) = self.raw(section, key) else {
            return Ok(None);
        };
        let lookup = |k: &str| self.raw(section, k).map(|r| r.value.clone());
        let value =
            ini::interpolate(&raw.value, &lookup).map_err(|err| ConfigError::Interpolation {
                path: raw.path.clone(),
                line: raw.line,
                section: section.to_string(),
                key: key.to_string(),
                raw: raw.value.clone(),
                err,
            })?;
        Ok(Some((strip_quotes(&value).to_string(), raw)))
    }

    /// Keys visible in a section: its own plus `[DEFAULT]`'s.
    fn keys(&self, section: &str) -> Vec<String> {
        let mut keys: Vec<String> = self
            .sections
            .get(section)
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        if section != "DEFAULT" {
            if let Some(d) = self.sections.get("DEFAULT") {
                keys.extend(
                    d.keys()
                        .filter(|k| !keys.contains(k))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
        keys.sort();
        keys
    }

    fn global_snapshot(&self) -> Vec<(String, String)> {
        self.keys("barman")
            .into_iter()
            .filter_map(|k| self.raw("barman", &k).map(|r| (k, r.value.clone())))
            .collect()
    }
}

fn strip_quotes(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2
        && (b[0] == b'"' || b[0] == b'\'')
        && b[b.len() - 1] == b[0]
        && !v.contains('\n')
    {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

fn expand_user(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return Path::new(&home).join(rest);
        }
    }
    PathBuf::from(p)
}

/// The loaded configuration.
#[derive(Debug)]
pub struct Config {
    /// The main file (`-c`, `BARMAN_CONFIG_FILE` or a default location).
    pub file: PathBuf,
    pub barman_home: PathBuf,
    pub barman_user: String,
    pub lock_directory: PathBuf,
    pub lock_directory_cleanup: bool,
    pub config_changes_queue: PathBuf,
    pub log_file: Option<PathBuf>,
    pub log_level: String,
    pub log_format: Option<String>,
    /// Raw `[barman]` items (with `[DEFAULT]`), for `diagnose`.
    pub global_items: Vec<(String, String)>,
    pub servers: BTreeMap<String, ServerConfig>,
    /// Configuration models (`model = true` sections), by name.
    pub models: BTreeMap<String, Model>,
    /// Barman's non-fatal warnings (unknown options, forced archiver...),
    /// printed once output is set up.
    pub warnings: Vec<String>,
    /// Path clashes between servers: every command fails with these.
    pub global_errors: Vec<String>,
    raw: RawConfig,
}

/// One server's resolved options.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub name: String,
    values: BTreeMap<&'static str, Value>,
    /// Which file set each option (absent: Barman's default).
    sources: BTreeMap<&'static str, PathBuf>,
    /// Why the server is disabled, if it is.
    pub msg_list: Vec<String>,
    /// Options set to a non-default value that barman-rs does not act on.
    pub unsupported: Vec<String>,
    /// Warnings Barman prints when this server is selected by a command
    /// (forced archiver, default backup strategy).
    pub warnings: Vec<String>,
    pub barman_home: PathBuf,
    /// The configuration model applied on top, if any.
    pub active_model: Option<String>,
}

impl Config {
    /// Finds and reads the main configuration file, as `barman -c FILE` or
    /// `BARMAN_CONFIG_FILE` or the default locations select it. Only the
    /// main file: includes need the global section first (see [`Config::finish`]).
    pub fn load_main(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let env = std::env::var_os("BARMAN_CONFIG_FILE").map(PathBuf::from);
        let mut raw = RawConfig::default();
        let file = match explicit.map(Path::to_path_buf).or(env) {
            Some(f) => {
                let expanded = expand_user(&f.to_string_lossy());
                if !expanded.exists() {
                    return Err(ConfigError::Missing(f.display().to_string()));
                }
                raw.read(&expanded)?;
                expanded
            }
            None => {
                let found = DEFAULT_FILES
                    .iter()
                    .map(|p| expand_user(p))
                    .find(|p| p.exists());
                let f = found.ok_or(ConfigError::NoDefault)?;
                raw.read(&f)?;
                f
            }
        };
        let get = |k: &str| {
            raw.get("barman", k)
                .map(|o| o.map(|(v, _)| v).filter(|v| v != "None"))
        };
        let home = get("barman_home")?;
        let barman_home = match home {
            Some(h) if !h.is_empty() => PathBuf::from(h),
            _ => return Err(ConfigError::NoHome { path: file.clone() }),
        };
        let or_home = |v: Option<String>, d: PathBuf| {
            v.filter(|s| !s.is_empty()).map(PathBuf::from).unwrap_or(d)
        };
        let lock_directory = or_home(get("barman_lock_directory")?, barman_home.clone());
        let config_changes_queue = or_home(
            get("config_changes_queue")?,
            barman_home.join("cfg_changes.queue"),
        );
        let cleanup_raw = get("lock_directory_cleanup")?.filter(|s| !s.is_empty());
        let lock_directory_cleanup = match cleanup_raw {
            None => true,
            Some(v) => types::parse_boolean(&v)
                .map_err(|why| value_error(&raw, "barman", "lock_directory_cleanup", &v, why))?,
        };
        let barman_user = get("barman_user")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "barman".into());
        let log_file = get("log_file")?
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        let log_level = get("log_level")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "INFO".into());
        let log_format = get("log_format")?.filter(|s| !s.is_empty());
        Ok(Config {
            file,
            barman_home,
            barman_user,
            lock_directory,
            lock_directory_cleanup,
            config_changes_queue,
            log_file,
            log_level,
            log_format,
            global_items: Vec::new(),
            servers: BTreeMap::new(),
            models: BTreeMap::new(),
            warnings: Vec::new(),
            global_errors: Vec::new(),
            raw,
        })
    }

    /// Reads `configuration_files_directory` and `.barman.auto.conf`, then
    /// validates everything and resolves every server.
    pub fn finish(&mut self) -> Result<(), ConfigError> {
        let before = self.raw.global_snapshot();
        if let Some((dir, _)) = self.raw.get("barman", "configuration_files_directory")? {
            let dir = expand_user(&dir);
            if dir.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                    .map_err(|source| ConfigError::Read {
                        path: dir.clone(),
                        source,
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                    .collect();
                files.sort();
                for f in files {
                    self.include(&f, &before)?;
                }
            } else {
                log::warn!(
                    "Ignoring the \"configuration_files_directory\" option as \"{}\" is not a directory",
                    dir.display()
                );
            }
        }
        let auto = self.barman_home.join(".barman.auto.conf");
        if auto.exists() {
            self.raw.mergeable.push(auto.clone());
            self.include(&auto, &before)?;
        }
        self.global_items = self.raw.global_snapshot();

        // Unknown keys in [barman] are warnings, as in Barman.
        for key in self.raw.keys("barman") {
            let known = options::GLOBAL_ONLY.contains(&key.as_str())
                || options::server_option(&key).is_some();
            if !known {
                self.warnings.push(format!(
                    "Invalid configuration option \"{key}\" in [barman] section."
                ));
            }
        }

        let names: Vec<String> = self
            .raw
            .order
            .iter()
            .filter(|s| *s != "barman" && *s != "DEFAULT")
            .cloned()
            .collect();
        for name in names {
            validate_server_name(&self.raw, &name)?;
            if let Some(model) = self.resolve_model(&name)? {
                self.models.insert(name, model);
                continue;
            }
            let server = self.resolve_server(&name)?;
            self.servers.insert(name, server);
        }
        self.check_conflicting_paths();
        self.apply_active_models();
        Ok(())
    }

    /// A `model = true` section (Barman's ModelConfig): its options other
    /// than paths and hooks override a server of its `cluster` while it is
    /// the server's active model.
    fn resolve_model(&mut self, name: &str) -> Result<Option<Model>, ConfigError> {
        let Some((flag, _)) = self.raw.get(name, "model")? else {
            return Ok(None);
        };
        if types::parse_boolean(&flag) != Ok(true) {
            return Ok(None);
        }
        let mut model = Model {
            name: name.to_string(),
            cluster: None,
            overrides: Vec::new(),
        };
        let source = format!("[{name}] section");
        for key in self.raw.keys(name) {
            if key == "model" {
                continue;
            }
            let Some((text, _)) = self.raw.get(name, &key)? else {
                continue;
            };
            if key == "cluster" {
                model.cluster = Some(text);
                continue;
            }
            match options::server_option(&key) {
                Some(def) if !model::BLACKLIST.contains(&def.name) => {
                    if text.is_empty() || text == "None" {
                        continue;
                    }
                    match options::parse_value(def, &text, &source) {
                        Ok(v) => model.overrides.push((def.name, v)),
                        Err(why) => return Err(value_error(&self.raw, name, &key, &text, why)),
                    }
                }
                _ => self.warnings.push(format!(
                    "Invalid configuration option \"{key}\" in [{name}] section."
                )),
            }
        }
        Ok(Some(model))
    }

    /// Barman's `_apply_models`: each server's `.active-model.auto`.
    fn apply_active_models(&mut self) {
        let names: Vec<String> = self.servers.keys().cloned().collect();
        for name in names {
            let server = self.servers.get_mut(&name).expect("listed");
            let file = server.path("backup_directory").join(model::ACTIVE_FILE);
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let active = text.trim();
            if active.is_empty() {
                continue;
            }
            match self.models.get(active) {
                None => server.disable(format!(
                    "Model '{active}' is set as the active model for the server '{name}' but the model does not exist."
                )),
                Some(m) => {
                    let _ = model::apply(server, m, &mut |msg| log::debug!("{msg}"));
                }
            }
        }
    }

    fn include(&mut self, path: &Path, before: &[(String, String)]) -> Result<(), ConfigError> {
        if path.is_file() {
            log::debug!("Including configuration file: {}", file_name(path));
            self.raw.read(path)?;
            if self.raw.global_snapshot() != before {
                return Err(ConfigError::GlobalInInclude(file_name(path)));
            }
        } else {
            log::warn!(
                "Discarding configuration file: {} (not a file)",
                file_name(path)
            );
        }
        Ok(())
    }

    fn resolve_server(&mut self, name: &str) -> Result<ServerConfig, ConfigError> {
        let raw = &self.raw;
        for key in raw.keys(name) {
            if options::server_option(&key).is_none() {
                self.warnings.push(format!(
                    "Invalid configuration option \"{key}\" in [{name}] section."
                ));
            }
        }
        let mut values: BTreeMap<&'static str, Value> = BTreeMap::new();
        let mut sources = BTreeMap::new();
        let mut unsupported = Vec::new();
        // Barman interpolates its defaults with the attributes set so far,
        // each as Python's str() of its value.
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert("name".into(), name.to_string());
        vars.insert("barman_home".into(), self.barman_home.display().to_string());

        for def in SERVER_OPTIONS {
            let mut value: Option<Value> = None;
            if !options::FIXED.contains(&def.name) {
                let mut candidates = vec![name];
                if def.scope == Scope::Inherit {
                    candidates.push("barman");
                }
                for section in candidates {
                    if let Some((text, rv)) = raw.get(section, def.name)? {
                        let text = if text == "None" { String::new() } else { text };
                        let source = format!("[{section}] section");
                        let parsed = options::parse_value(def, &text, &source);
                        if text.is_empty() && parsed.is_err() {
                            // Barman warns and falls through to the next source.
                            continue;
                        }
                        let parsed = parsed.map_err(|why| ConfigError::Value {
                            path: rv.path.clone(),
                            line: rv.line,
                            section: section.to_string(),
                            key: def.name.to_string(),
                            value: text.clone(),
                            why,
                        })?;
                        sources.insert(def.name, rv.path.clone());
                        if def.support == Support::Deferred && !text.is_empty() {
                            unsupported.push(def.name.to_string());
                        }
                        value = Some(parsed);
                        break;
                    }
                }
            }
            let value = match value {
                Some(v) => v,
                None => match def.default {
                    Some(d) => {
                        let text = python_percent(d, &vars);
                        options::parse_value(def, &text, "DEFAULTS").unwrap_or(Value::Str(text))
                    }
                    None => Value::None,
                },
            };
            let value = match value {
                Value::Str(s) if s.is_empty() || s == "None" => Value::None,
                v => v,
            };
            vars.insert(def.name.to_string(), value.to_string());
            values.insert(def.name, value);
        }
        values.insert("disabled", Value::Bool(false));

        let mut server = ServerConfig {
            name: name.to_string(),
            values,
            sources,
            msg_list: Vec::new(),
            unsupported,
            warnings: Vec::new(),
            barman_home: self.barman_home.clone(),
            active_model: None,
        };
        let mut warnings = Vec::new();
        server.apply_server_rules(raw, &mut warnings)?;
        server.warnings = warnings;
        Ok(server)
    }

    /// Barman's `_check_conflicting_paths`: a clash inside one server
    /// disables it; a clash between servers fails every command.
    fn check_conflicting_paths(&mut self) {
        let mut seen: BTreeMap<PathBuf, (String, String)> = BTreeMap::new();
        let names: Vec<String> = self.servers.keys().cloned().collect();
        for name in names {
            let mut disable = Vec::new();
            let server = &self.servers[&name];
            let mut paths: Vec<(&str, String)> = [
                "backup_directory",
                "basebackups_directory",
                "errors_directory",
                "incoming_wals_directory",
                "streaming_wals_directory",
                "wals_directory",
            ]
            .iter()
            .filter_map(|k| server.get_str(k).map(|p| (*k, p.to_string())))
            .collect();
            paths.sort();
            for (label, path) in paths {
                if path.contains("://") {
                    continue;
                }
                let real = realpath(Path::new(&path));
                let shown = if real == Path::new(&path) {
                    format!("{label}={path}")
                } else {
                    format!("{label}={path} (symlink to: {})", real.display())
                };
                match seen.get(&real) {
                    None => {
                        seen.insert(real, (label.to_string(), name.clone()));
                    }
                    Some((l2, s2)) if *s2 == name => disable.push(format!(
                        "Conflicting path: {shown} conflicts with '{l2}' for server '{s2}'"
                    )),
                    Some((l2, s2)) => self.global_errors.push(format!(
                        "Conflicting path: {shown} for server '{name}' conflicts with '{l2}' for server '{s2}'"
                    )),
                }
            }
            if !disable.is_empty() {
                let s = self.servers.get_mut(&name).expect("server exists");
                s.msg_list.extend(disable);
                s.values.insert("disabled", Value::Bool(true));
            }
        }
    }

    /// The file that last set `key` in `section`, else the one that set it
    /// in `[barman]` (Barman's `get_config_source`, where config-update
    /// writes a change).
    ///
    /// FIX: when only `[barman]` sets it and the section is declared in
    /// another file, Barman adds a second `[section]` to the main file;
    /// that file gets the change instead, so no section is defined twice.
    pub fn source_file(&self, section: &str, key: &str) -> Option<PathBuf> {
        if let Some(r) = self.raw.sections.get(section).and_then(|s| s.get(key)) {
            return Some(r.path.clone());
        }
        let global = self.raw.sections.get("barman").and_then(|s| s.get(key))?;
        match self.raw.declared.get(section) {
            Some((p, _)) if !self.raw.mergeable.contains(p) => Some(p.clone()),
            _ => Some(global.path.clone()),
        }
    }

    /// `section`'s own value for `key` as Barman's `Config.get` reads it
    /// (interpolated, quotes stripped), if the section sets it.
    pub fn section_value(&self, section: &str, key: &str) -> Option<String> {
        self.raw.get(section, key).ok().flatten().map(|(v, _)| v)
    }

    /// The file that set `key` for `section` (or `[barman]`), for
    /// `diagnose --show-config-source`.
    pub fn source_of(&self, section: &str, key: &str) -> String {
        self.raw
            .sections
            .get(section)
            .and_then(|s| s.get(key))
            .or_else(|| self.raw.sections.get("barman").and_then(|s| s.get(key)))
            .map(|r| r.path.display().to_string())
            .unwrap_or_else(|| "default".to_string())
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn value_error(raw: &RawConfig, section: &str, key: &str, value: &str, why: String) -> ConfigError {
    let (path, line) = raw
        .raw(section, key)
        .map(|r| (r.path.clone(), r.line))
        .unwrap_or_default();
    ConfigError::Value {
        path,
        line,
        section: section.to_string(),
        key: key.to_string(),
        value: value.to_string(),
        why,
    }
}

/// A server name becomes a directory, lock file names and a CLI argument.
fn validate_server_name(raw: &RawConfig, name: &str) -> Result<(), ConfigError> {
    if name == "all" {
        return Err(ConfigError::ReservedAll);
    }
    let why = if name.contains('/') || name.contains('\\') {
        Some("it must not contain '/' or '\\' (it names the server's directory)")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it must not contain blanks or control characters")
    } else if name.starts_with('.') || name.starts_with('-') {
        Some("it must not start with '.' or '-'")
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => {
            let (path, line) = raw.declared.get(name).cloned().unwrap_or_default();
            Err(ConfigError::ServerName {
                path,
                line,
                name: name.to_string(),
                why,
            })
        }
    }
}

/// Python's `"..." % dict` for the `%(key)s` placeholders in defaults.
fn python_percent(template: &str, vars: &BTreeMap<String, String>) -> String {
    let lookup = |k: &str| vars.get(k).cloned();
    ini::interpolate(template, &lookup).unwrap_or_else(|_| template.to_string())
}

/// `os.path.realpath`: resolve what exists, keep the rest lexically.
pub fn realpath(p: &Path) -> PathBuf {
    let mut existing = p.to_path_buf();
    let mut tail = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&existing) {
            let mut out = c;
            for part in tail.iter().rev() {
                out.push(part);
            }
            return normalize(&out);
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                tail.push(name.to_os_string());
                existing = parent.to_path_buf();
            }
            _ => return normalize(p),
        }
    }
}

fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

impl ServerConfig {
    pub fn get(&self, key: &str) -> &Value {
        self.values.get(key).unwrap_or(&Value::None)
    }
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).as_str()
    }
    pub fn get_bool(&self, key: &str) -> bool {
        self.get(key).as_bool().unwrap_or(false)
    }
    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.get(key).as_int()
    }
    pub fn path(&self, key: &str) -> PathBuf {
        PathBuf::from(self.get_str(key).unwrap_or_default())
    }
    pub fn active(&self) -> bool {
        self.get_bool("active")
    }
    pub fn disabled(&self) -> bool {
        self.get_bool("disabled")
    }
    pub fn description(&self) -> Option<&str> {
        self.get_str("description")
    }
    pub fn retention_policy(&self) -> Option<RetentionPolicy> {
        match self.get("retention_policy") {
            Value::Retention(rp) => Some(*rp),
            _ => None,
        }
    }
    pub fn minimum_redundancy(&self) -> i64 {
        self.get_int("minimum_redundancy").unwrap_or(0)
    }
    pub fn source(&self, key: &str) -> Option<&Path> {
        self.sources.get(key).map(PathBuf::as_path)
    }
    /// Every option with its value, sorted by name (Barman's `to_json()`).
    pub fn items(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.values.iter().map(|(k, v)| (*k, v))
    }
    pub fn set(&mut self, key: &'static str, value: Value) {
        self.values.insert(key, value);
    }

    fn disable(&mut self, msg: String) {
        self.msg_list.push(msg);
        self.values.insert("disabled", Value::Bool(true));
    }

    /// What Barman's `Server.__init__` does to the configuration: forced
    /// archiver, typed minimum_redundancy and retention policies, and the
    /// conditions that disable a server.
    fn apply_server_rules(
        &mut self,
        raw: &RawConfig,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let name = self.name.clone();
        let strict_error = |key: &str, value: &str, why: String| {
            let section = if raw.sections.get(&name).is_some_and(|s| s.contains_key(key)) {
                name.as_str()
            } else {
                "barman"
            };
            value_error(raw, section, key, value, why)
        };

        // A passive node (primary_ssh_command) never connects to PostgreSQL
        // and has no archivers nor backup method: Barman skips those rules.
        let passive = self
            .get_str("primary_ssh_command")
            .is_some_and(|c| !c.trim().is_empty());
        // conninfo: Barman splits on blanks and the first '='.
        for (key, label) in [
            ("conninfo", "PostgreSQL connection"),
            ("streaming_conninfo", "Streaming connection"),
        ]
        .into_iter()
        .filter(|_| !passive)
        {
            let needed = key == "conninfo"
                || self.get_str("backup_method") == Some("postgres")
                || self.get_bool("streaming_archiver");
            if !needed {
                continue;
            }
            match self.get_str(key) {
                None if key == "conninfo" => self.disable(format!(
                    "{label}: Missing 'conninfo' parameter for server '{name}'"
                )),
                None => self.disable(format!(
                    "{label}: Missing 'streaming_conninfo' parameter for server '{name}'"
                )),
                Some(ci) => {
                    if ci.split_whitespace().any(|w| !w.contains('=')) {
                        let ci = ci.to_string();
                        self.disable(format!(
                            "{label}: Cannot connect to postgres: \"{ci}\" is not a valid connection string"
                        ));
                    }
                }
            }
        }

        if !passive
            && !self.get_bool("archiver")
            && self.get_bool("streaming_archiver")
            && self.get_str("slot_name").is_none()
        {
            self.disable(
                "Streaming-only archiver requires 'streaming_conninfo' and 'slot_name' options to be properly configured".into(),
            );
        }
        if !passive && !self.get_bool("archiver") && !self.get_bool("streaming_archiver") {
            warnings.push(format!(
                "No archiver enabled for server '{name}'. Please turn on 'archiver', 'streaming_archiver' or both"
            ));
            warnings.push("Forcing 'archiver = on'".into());
            self.values.insert("archiver", Value::Bool(true));
        }

        if let Some(bw) = self.get_str("bandwidth_limit").map(str::to_string) {
            let v =
                types::parse_int(&bw).map_err(|why| strict_error("bandwidth_limit", &bw, why))?;
            self.values.insert("bandwidth_limit", Value::Int(v));
        }

        let mr = self.get("minimum_redundancy").to_string();
        let n =
            types::parse_int(&mr).map_err(|why| strict_error("minimum_redundancy", &mr, why))?;
        if n < 0 {
            return Err(strict_error(
                "minimum_redundancy",
                &mr,
                "it must not be negative".into(),
            ));
        }
        self.values.insert("minimum_redundancy", Value::Int(n));

        if let Some(mode) = self.get_str("retention_policy_mode") {
            if mode != "auto" {
                let mode = mode.to_string();
                return Err(strict_error(
                    "retention_policy_mode",
                    &mode,
                    "the only supported mode is 'auto'".into(),
                ));
            }
        }
        if let Some(rp) = self.get_str("retention_policy").map(str::to_string) {
            let policy = types::parse_retention_policy(&rp)
                .map_err(|why| strict_error("retention_policy", &rp, why))?;
            let wal = self
                .get_str("wal_retention_policy")
                .unwrap_or("main")
                .to_string();
            if !wal.eq_ignore_ascii_case("main") {
                return Err(strict_error(
                    "wal_retention_policy",
                    &wal,
                    "the only supported policy is 'main'".into(),
                ));
            }
            self.values
                .insert("retention_policy", Value::Retention(policy));
            self.values
                .insert("wal_retention_policy", Value::WalRetentionMain);
        }

        match self.get_str("backup_method").filter(|_| !passive) {
            Some("rsync") if self.get_str("ssh_command").is_none() => self.disable(format!(
                "Missing or invalid ssh_command in barman configuration for server {name}"
            )),
            Some("local-rsync") if self.get_str("ssh_command").is_some() => self.disable(format!(
                "Local copy requires ssh_command in barman configuration to be empty for server {name}"
            )),
            Some("postgres") => {
                // Barman's postgres executor always runs a concurrent backup.
                if let Value::Csv(_, set) = self.get("backup_options") {
                    let mut set = set.clone();
                    set.insert("concurrent_backup".into());
                    self.values.insert("backup_options", Value::Csv("BackupOptions", set));
                }
                for (k, msg) in [
                    ("tablespace_bandwidth_limit", "tablespace_bandwidth_limit option is not supported by postgres backup_method"),
                    ("network_compression", "network_compression option is not supported by postgres backup_method"),
                ] {
                    if !matches!(self.get(k), Value::None | Value::Bool(false)) {
                        self.disable(msg.into());
                    }
                }
                if matches!(self.get_str("reuse_backup"), Some("copy" | "link")) {
                    self.disable("reuse_backup option is not supported by postgres backup_method".into());
                }
            }
            Some("snapshot" | "local-to-cloud") => {
                let m = self.get_str("backup_method").unwrap_or_default().to_string();
                self.unsupported.push(format!("backup_method = {m}"));
            }
            _ => {}
        }
        // FIX: the native local-rsync copy writes compressed tar backups
        // (pg_basebackup's layout, which Barman recovers); Barman disables
        // the server instead. rsync over ssh stays as Barman has it.
        let local = !passive && self.get_str("backup_method") == Some("local-rsync");
        if local && self.get_str("backup_compression").is_some() {
            if self.get_str("backup_compression_format") == Some("plain") {
                self.disable(
                    "backup_compression_format = plain is not supported by local-rsync backup_method (a compressed local backup is a tar)".into(),
                );
            }
            if matches!(self.get_str("reuse_backup"), Some("copy" | "link")) {
                self.disable("reuse_backup option is not supported with backup_compression".into());
            }
        }
        if !passive && matches!(self.get_str("backup_method"), Some("rsync" | "local-rsync")) {
            if !local && self.get_str("backup_compression").is_some() {
                self.disable(
                    "backup_compression option is not supported by rsync backup_method".into(),
                );
            }
            if let Value::Csv(_, set) = self.get("backup_options") {
                if !set.contains("concurrent_backup") && !set.contains("exclusive_backup") {
                    let mut set = set.clone();
                    set.insert("concurrent_backup".into());
                    self.values
                        .insert("backup_options", Value::Csv("BackupOptions", set));
                    warnings.push(format!(
                        "No backup strategy set for server '{name}' (using default 'concurrent_backup')."
                    ));
                }
            }
        }
        for key in ["basebackups_directory", "wals_directory"] {
            if self.get_str(key).is_some_and(|p| p.contains("://")) {
                self.unsupported.push(format!("{key} (cloud storage)"));
            }
        }
        if self.get_str("encryption") == Some("gpg") {
            self.unsupported.push("encryption = gpg".into());
        }
        Ok(())
    }
}

impl fmt::Display for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
