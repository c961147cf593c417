//! `config-update`'s engine, as Barman 3.19.1's `ConfigChangesProcessor`:
//! a JSON list of `{"scope": "server"|"model", "server_name"|"model_name":
//! ..., option: value, ...}` sections is validated as a whole, queued in
//! `config_changes_queue` (with, for each change, the file it goes to),
//! then the queue is applied FIFO by editing those files line by line.
//!
//! Barman's line editor glues a new option onto the line before the next
//! section when no blank line separates them, drops an option added to a
//! section whose header is the file's last line, and leaves non-string
//! values stuck at the head of the queue forever. Here the output is the
//! same wherever Barman's is right, those three cases are done right, and
//! files are rewritten durably (staged, fsynced, renamed) instead of in
//! place.

use std::path::{Path, PathBuf};

use super::json::J;
use super::options::{parse_value, server_option};
use super::Config;
use crate::output::Output;

/// Options no change may set (they move the catalog), as Barman's
/// `_KEYS_BLACKLIST` plus every hook script.
fn blacklisted(key: &str) -> bool {
    matches!(
        key,
        "backup_directory"
            | "basebackups_directory"
            | "errors_directory"
            | "incoming_wals_directory"
            | "streaming_wals_directory"
            | "wals_directory"
            | "xlogdb_directory"
    ) || key.starts_with("pre_")
        || key.starts_with("post_")
}

/// One queued change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: String,
    pub value: J,
    pub config_file: String,
}

/// The changes of one section, applied together.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeSet {
    pub section: String,
    pub changes: Vec<Change>,
}

/// Why the command stops: Barman's `ERROR:` or its `EXCEPTION:` text.
#[derive(Debug)]
pub enum UpdateError {
    Error(Vec<String>),
    Exception(String),
}

/// The Python exception Barman's loop raises on an input that is not a
/// list of objects (`None` when the input is fine as far as shape goes).
pub fn shape_error(input: &J) -> Option<String> {
    let items: Vec<J> = match input {
        J::List(v) => v.clone(),
        J::Obj(m) => m.iter().map(|(k, _)| J::Str(k.clone())).collect(),
        J::Str(s) => s.chars().map(|c| J::Str(c.to_string())).collect(),
        other => return Some(format!("'{}' object is not iterable", other.type_name())),
    };
    items.iter().find_map(|item| match item {
        J::Obj(_) => None,
        J::List(_) => Some("pop expected at most 1 argument, got 2".to_string()),
        other => Some(format!(
            "'{}' object has no attribute 'pop'",
            other.type_name()
        )),
    })
}

/// `receive_config_changes`: every section valid, or the first error
/// (nothing is queued then).
pub fn validate(config: &Config, input: &J) -> Result<Vec<ChangeSet>, UpdateError> {
    let J::List(sections) = input else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for raw in sections {
        let J::Obj(fields) = raw else { continue };
        let abort = |why: String| {
            UpdateError::Error(vec![
                why,
                format!(
                    "Aborting config\u{2010}update: invalid section {}",
                    raw.repr()
                ),
            ])
        };
        let invalid = |why: &str| format!("Invalid section {}: {why}", raw.repr());
        let scope = raw.get("scope");
        let scope = match scope.and_then(J::as_str) {
            Some(s @ ("server" | "model")) => s,
            _ => {
                let shown = scope.map_or("None".to_string(), J::display);
                return Err(abort(invalid(&format!(
                    "'scope' is invalid: '{shown}'. It should be either 'server' or 'model'."
                ))));
            }
        };
        let name_key = if scope == "server" {
            "server_name"
        } else {
            "model_name"
        };
        let Some(name) = raw.get(name_key) else {
            return Err(abort(invalid(&format!("'{name_key}' is missing."))));
        };
        let name = name.display();
        let mut opts: Vec<(String, J)> = fields
            .iter()
            .filter(|(k, _)| k != "scope" && k != name_key)
            .cloned()
            .collect();
        let is_server = config.servers.contains_key(&name);
        let is_model = config.models.contains_key(&name);
        if scope == "server" && is_model {
            return Err(abort(invalid(&format!(
                "'{name}' is a model, not a server."
            ))));
        }
        if scope == "model" {
            if is_server {
                return Err(abort(invalid(&format!(
                    "'{name}' is a server, not a model."
                ))));
            }
            if !is_model {
                if !opts.iter().any(|(k, _)| k == "model") {
                    opts.push(("model".into(), J::Str("on".into())));
                }
                if !opts.iter().any(|(k, _)| k == "cluster") {
                    return Err(abort(invalid("new model but 'cluster' is missing.")));
                }
            }
        }
        for (key, value) in &opts {
            let allowed = if key == "model" {
                scope == "model"
            } else {
                server_option(key).is_some() && !(scope == "model" && blacklisted(key))
            };
            if !allowed {
                return Err(abort(format!(
                    "Invalid option '{key}' for {scope} '{name}'"
                )));
            }
            let failed = |why: String| {
                abort(format!(
                    "Validation failed for {scope} '{name}': key '{key}' -> {why}"
                ))
            };
            // Barman queues a non-string as is and then fails on it at
            // every run; it is refused here, in its parsers' words.
            let Some(text) = value.as_str() else {
                return Err(failed(format!(
                    "expected string or bytes-like object, got '{}'",
                    value.type_name()
                )));
            };
            let parsed = if key == "model" {
                super::types::parse_boolean(text).map(|_| ())
            } else {
                let def = server_option(key).expect("allowed above");
                parse_value(def, text, &format!("{scope} '{name}'")).map(|_| ())
            };
            parsed.map_err(failed)?;
        }
        let changes = opts
            .into_iter()
            .map(|(key, value)| {
                let config_file = match config.source_file(&name, &key) {
                    Some(p) => p.display().to_string(),
                    None => format!("{}/.barman.auto.conf", config.barman_home.display()),
                };
                Change {
                    key,
                    value,
                    config_file,
                }
            })
            .collect();
        out.push(ChangeSet {
            section: name,
            changes,
        });
    }
    Ok(out)
}

/// Reads the queue: missing is empty; unreadable JSON is empty with
/// Barman's warning; a wrong shape is its exception.
pub fn read_queue(path: &Path, out: &mut Output) -> Result<Vec<ChangeSet>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let Ok(J::List(items)) = J::parse(&text) else {
        out.warning(&format!(
            "Malformed or empty configuration change queue: {}",
            path.display()
        ));
        return Ok(Vec::new());
    };
    let malformed = |j: &J| format!("Malformed configuration change serialization: {}", j.repr());
    let keys = |j: &J| -> Vec<String> {
        match j {
            J::Obj(m) => {
                let mut k: Vec<String> = m.iter().map(|(k, _)| k.clone()).collect();
                k.sort();
                k
            }
            _ => Vec::new(),
        }
    };
    let mut sets = Vec::new();
    for item in &items {
        let mut changes = Vec::new();
        if let Some(J::List(list)) = item.get("changes_set") {
            for c in list {
                if keys(c) != ["config_file", "key", "value"] {
                    return Err(malformed(c));
                }
                changes.push(Change {
                    key: c.get("key").map(J::display).unwrap_or_default(),
                    value: c.get("value").cloned().unwrap_or(J::Null),
                    config_file: c.get("config_file").map(J::display).unwrap_or_default(),
                });
            }
        }
        if keys(item) != ["changes_set", "section"] {
            return Err(malformed(item));
        }
        sets.push(ChangeSet {
            section: item.get("section").map(J::display).unwrap_or_default(),
            changes,
        });
    }
    Ok(sets)
}

/// Writes the queue as Barman's `json.dump(indent=2)`, durably.
pub fn write_queue(path: &Path, sets: &[ChangeSet]) -> std::io::Result<()> {
    let j = J::List(
        sets.iter()
            .map(|s| {
                J::Obj(vec![
                    ("section".into(), J::Str(s.section.clone())),
                    (
                        "changes_set".into(),
                        J::List(
                            s.changes
                                .iter()
                                .map(|c| {
                                    J::Obj(vec![
                                        ("key".into(), J::Str(c.key.clone())),
                                        ("value".into(), c.value.clone()),
                                        ("config_file".into(), J::Str(c.config_file.clone())),
                                    ])
                                })
                                .collect(),
                        ),
                    ),
                ])
            })
            .collect(),
    );
    crate::durable::write_replace(path, j.dump_indent2().as_bytes(), 0o644)
}

/// Barman's `edit_config` over `lines` (each with its newline), with its
/// three wrong cases done right (see the module comment).
pub fn edit_lines(lines: &mut Vec<String>, section: &str, option: &str, value: &str) {
    let new_line = format!("{option} = {value}\n");
    let header = format!("[{section}]");
    let Some(start) = lines.iter().position(|l| l.trim() == header) else {
        if lines.last().is_some_and(|l| !l.ends_with('\n')) {
            lines.last_mut().expect("non-empty").push('\n');
        }
        lines.push(format!("{header}\n"));
        lines.push(new_line);
        return;
    };
    for idx in start + 1..lines.len() {
        let line = &lines[idx];
        if line.trim().starts_with('[') {
            // Barman replaces the blank line before the next section; with
            // none, it glued the option onto the previous line.
            if idx >= 1 && idx - 1 > start && lines[idx - 1].trim().is_empty() {
                lines[idx - 1] = new_line;
            } else {
                lines.insert(idx, new_line);
            }
            return;
        }
        if line
            .trim()
            .replace(' ', "")
            .starts_with(&format!("{option}="))
        {
            lines[idx] = new_line;
            return;
        }
    }
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        lines.last_mut().expect("non-empty").push('\n');
    }
    lines.push(new_line);
}

fn read_lines(path: &Path) -> std::io::Result<Vec<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t.split_inclusive('\n').map(str::to_string).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Applies one set: every file it touches is edited in memory in change
/// order, then each is replaced durably (mode kept).
fn apply(config: &Config, set: &ChangeSet, out: &mut Output) -> Result<(), String> {
    let mut files: Vec<(PathBuf, Vec<String>)> = Vec::new();
    for c in &set.changes {
        let path = PathBuf::from(&c.config_file);
        let idx = match files.iter().position(|(p, _)| *p == path) {
            Some(i) => i,
            None => {
                let lines = read_lines(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                files.push((path.clone(), lines));
                files.len() - 1
            }
        };
        let Some(value) = c.value.as_str() else {
            return Err(format!(
                "can only concatenate str (not \"{}\") to str",
                c.value.type_name()
            ));
        };
        edit_lines(&mut files[idx].1, &set.section, &c.key, value);
        let old = config
            .section_value(&set.section, &c.key)
            .unwrap_or_else(|| "None".into());
        out.info(&format!(
            "Changing value of option '{}' for section '{}' from '{old}' to '{value}' through config-update.",
            c.key, set.section
        ));
    }
    for (path, lines) in files {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        crate::durable::write_replace(&path, lines.concat().as_bytes(), mode)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// `process_conf_changes_queue`: applies the queue FIFO; returns the sets
/// applied. A set that fails stays at the head of the queue.
pub fn process_queue(config: &Config, out: &mut Output) -> Result<Vec<ChangeSet>, String> {
    let path = &config.config_changes_queue;
    let mut queue = read_queue(path, out)?;
    let mut applied = Vec::new();
    while let Some(set) = queue.first().cloned() {
        if let Err(e) = apply(config, &set, out) {
            out.error("Unable to process a set of changes. Exiting.");
            log::error!(
                "Cannot execute the changes of section '{}': {e}",
                set.section
            );
            break;
        }
        queue.remove(0);
        applied.push(set);
    }
    write_queue(path, &queue).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(applied)
}

/// Queues `sets` after what is already queued.
pub fn enqueue(config: &Config, sets: Vec<ChangeSet>, out: &mut Output) -> Result<(), String> {
    if sets.is_empty() {
        return Ok(());
    }
    let path = &config.config_changes_queue;
    let mut queue = read_queue(path, out)?;
    queue.extend(sets);
    write_queue(path, &queue).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit(text: &str, section: &str, opt: &str, val: &str) -> String {
        let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
        edit_lines(&mut lines, section, opt, val);
        lines.concat()
    }

    #[test]
    fn edits_match_barmans_where_barman_is_right() {
        assert_eq!(
            edit("[pg]\nx = 1\n\n[b]\ny = 2\n", "pg", "compression", "lz4"),
            "[pg]\nx = 1\ncompression = lz4\n[b]\ny = 2\n"
        );
        assert_eq!(
            edit(
                "[pg]\ndescription = \"Main PG\"\nx = 1\n",
                "pg",
                "description",
                "d"
            ),
            "[pg]\ndescription = d\nx = 1\n"
        );
        assert_eq!(
            edit("[a]\nx = 1\n", "pg", "o", "v"),
            "[a]\nx = 1\n[pg]\no = v\n"
        );
        assert_eq!(
            edit("[pg]\nx = 1\n", "pg", "o", "v"),
            "[pg]\nx = 1\no = v\n"
        );
        assert_eq!(edit("", "pg", "o", "v"), "[pg]\no = v\n");
        // compression_level= is not compression=
        assert_eq!(
            edit("[pg]\ncompression_level = 3\n", "pg", "compression", "gzip"),
            "[pg]\ncompression_level = 3\ncompression = gzip\n"
        );
    }

    #[test]
    fn edits_barman_gets_wrong_are_done_right() {
        // Barman: "[pg]\nopt = valx = 1\n[b]\n"
        assert_eq!(
            edit("[pg]\nx = 1\n[b]\n", "pg", "opt", "val"),
            "[pg]\nx = 1\nopt = val\n[b]\n"
        );
        // Barman: "compression = lz4[pg]\n[b]\n"
        assert_eq!(
            edit("[pg]\n[b]\n", "pg", "compression", "lz4"),
            "[pg]\ncompression = lz4\n[b]\n"
        );
        // Barman: dropped
        assert_eq!(
            edit("[a]\nx = 1\n[pg]\n", "pg", "o", "v"),
            "[a]\nx = 1\n[pg]\no = v\n"
        );
        // Barman: "[pg]\nx = 1o = v\n"
        assert_eq!(edit("[pg]\nx = 1", "pg", "o", "v"), "[pg]\nx = 1\no = v\n");
    }

    #[test]
    fn shapes_fail_as_barmans_loop_does() {
        let s = |t: &str| shape_error(&J::parse(t).unwrap());
        assert_eq!(s("5").as_deref(), Some("'int' object is not iterable"));
        assert_eq!(
            s("null").as_deref(),
            Some("'NoneType' object is not iterable")
        );
        assert_eq!(
            s("\"abc\"").as_deref(),
            Some("'str' object has no attribute 'pop'")
        );
        assert_eq!(
            s("{\"scope\": 1}").as_deref(),
            Some("'str' object has no attribute 'pop'")
        );
        assert_eq!(
            s("[[]]").as_deref(),
            Some("pop expected at most 1 argument, got 2")
        );
        assert_eq!(
            s("[1.5]").as_deref(),
            Some("'float' object has no attribute 'pop'")
        );
        assert_eq!(s("[]"), None);
        assert_eq!(s("{}"), None);
        assert_eq!(s("\"\""), None);
    }
}
