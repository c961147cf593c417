//! The primary's side: `barman sync-info SERVER [LAST_WAL [LAST_POSITION]]`,
//! the JSON document a passive node pulls (Barman's `Server.sync_status`),
//! and the conversions between a backup.info and its JSON form.
//!
//! The document, as Barman 3.19.1 prints it (indent 4, keys in its order,
//! non-ASCII escaped, no final newline): `last_position` (byte offset of
//! the last xlog.db line read), `last_name`, `backups` (DONE and
//! WAITING_FOR_WALS ones: every backup.info field sorted, ints as numbers,
//! `tablespaces`/`included_files`/`copy_stats` decoded, times as `ctime()`
//! plus `*_iso`), `wals` (the xlog.db lines after `last_wal`, or from the
//! oldest backup's first WAL), `version`, `config`. Backups are listed by
//! ID (Barman lists them in directory order; readers must not care).

use std::path::Path;

use serde_json::{Map, Value as J};

use super::SyncError;
use crate::catalog::backup_info::{BackupInfo, FIELDS};
use crate::catalog::backups::{self, Backup};
use crate::catalog::pylit::{self, PyValue};
use crate::catalog::xlogdb::{Entry, XlogDb};
use crate::catalog::ServerCatalog;
use crate::config::types::Value;
use crate::config::ServerConfig;
use crate::output::python_json;

/// A JSON value whose objects keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc {
    Leaf(J),
    Arr(Vec<Doc>),
    Obj(Vec<(String, Doc)>),
}

impl Doc {
    /// `json.dumps(doc, indent=4)`.
    pub fn render(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, 0);
        s
    }

    fn write(&self, s: &mut String, depth: usize) {
        let pad = |s: &mut String, d: usize| {
            s.push('\n');
            s.push_str(&" ".repeat(4 * d));
        };
        match self {
            Doc::Leaf(v) => s.push_str(&python_json(v)),
            Doc::Arr(a) if a.is_empty() => s.push_str("[]"),
            Doc::Obj(o) if o.is_empty() => s.push_str("{}"),
            Doc::Arr(a) => {
                s.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    pad(s, depth + 1);
                    x.write(s, depth + 1);
                }
                pad(s, depth);
                s.push(']');
            }
            Doc::Obj(o) => {
                s.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    pad(s, depth + 1);
                    s.push_str(&python_json(&J::String(k.clone())));
                    s.push_str(": ");
                    v.write(s, depth + 1);
                }
                pad(s, depth);
                s.push('}');
            }
        }
    }
}

/// backup.info fields Barman loads as ints.
const INTS: &[&str] = &[
    "begin_offset",
    "cluster_size",
    "deduplicated_size",
    "end_offset",
    "size",
    "timeline",
    "version",
    "xlog_segment_size",
];
/// Fields whose text is a Python literal that `to_json` decodes.
const DECODED: &[&str] = &[
    "tablespaces",
    "included_files",
    "copy_stats",
    "snapshots_info",
];
const HIDDEN_IF_NONE: &[&str] = &["backup_name", "snapshots_info"];

fn py_to_doc(v: &PyValue) -> Doc {
    match v {
        PyValue::None => Doc::Leaf(J::Null),
        PyValue::Bool(b) => Doc::Leaf(J::Bool(*b)),
        PyValue::Int(n) => Doc::Leaf(J::from(*n)),
        PyValue::Float(f) => Doc::Leaf(serde_json::Number::from_f64(*f).map_or(J::Null, J::Number)),
        PyValue::Str(s) => Doc::Leaf(J::String(s.clone())),
        PyValue::List(l) | PyValue::Tuple(l) => Doc::Arr(l.iter().map(py_to_doc).collect()),
        PyValue::Dict(d) => Doc::Obj(
            d.iter()
                .map(|(k, v)| (crate::catalog::backup_ext::py_str(k), py_to_doc(v)))
                .collect(),
        ),
    }
}

fn json_to_py(v: &J, tuples: bool) -> PyValue {
    match v {
        J::Null => PyValue::None,
        J::Bool(b) => PyValue::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => PyValue::Int(i),
            _ => PyValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => PyValue::Str(s.clone()),
        J::Array(a) if tuples => PyValue::Tuple(a.iter().map(|x| json_to_py(x, false)).collect()),
        J::Array(a) => PyValue::List(a.iter().map(|x| json_to_py(x, false)).collect()),
        J::Object(m) => PyValue::Dict(
            m.iter()
                .map(|(k, v)| (PyValue::Str(k.clone()), json_to_py(v, false)))
                .collect(),
        ),
    }
}

/// A stored time (`2026-01-01 10:00:05.500000+00:00`) as `isoformat()`.
fn iso_of(text: &str) -> String {
    text.replacen(' ', "T", 1)
}

/// `BackupInfo.to_json()` of one backup.
pub fn backup_doc(b: &Backup) -> Doc {
    let mut out: Vec<(String, Doc)> = Vec::new();
    let mut isos = Vec::new();
    for field in FIELDS {
        let text = b.info.get(field);
        let value = match text {
            None if HIDDEN_IF_NONE.contains(field) => continue,
            None => Doc::Leaf(J::Null),
            Some(t) if INTS.contains(field) => match t.parse::<i64>() {
                Ok(n) => Doc::Leaf(J::from(n)),
                Err(_) => Doc::Leaf(J::String(t.to_string())),
            },
            Some(t) if *field == "begin_time" || *field == "end_time" => {
                isos.push((format!("{field}_iso"), Doc::Leaf(J::String(iso_of(t)))));
                Doc::Leaf(J::String(crate::commands::list_backups::ctime_of(t)))
            }
            Some(t) if DECODED.contains(field) => match pylit::parse(t) {
                Ok(v) => py_to_doc(&v),
                Err(_) => Doc::Leaf(J::String(t.to_string())),
            },
            Some(t) => Doc::Leaf(J::String(t.to_string())),
        };
        out.push((field.to_string(), value));
    }
    out.push(("backup_id".into(), Doc::Leaf(J::String(b.id.clone()))));
    out.extend(isos);
    Doc::Obj(out)
}

/// The backup.info a passive node writes for a backup of the primary's
/// sync-info (Barman's `from_json`): the primary's values, this server's
/// name, `mode=passive`. `backup_label` keeps the primary's text (Barman
/// repr()s it a second time; both read back the same).
pub fn info_from_json(m: &Map<String, J>, server: &str) -> BackupInfo {
    let mut info = BackupInfo::default();
    for field in FIELDS {
        let text = match (*field, m.get(*field)) {
            ("begin_time" | "end_time", _) => m
                .get(&format!("{field}_iso"))
                .and_then(J::as_str)
                .map(|iso| iso.replacen('T', " ", 1)),
            (_, None | Some(J::Null)) => None,
            (_, Some(J::String(s))) => Some(s.clone()),
            (_, Some(J::Number(n))) => Some(n.to_string()),
            ("tablespaces", Some(J::Array(a))) => {
                Some(PyValue::List(a.iter().map(|t| json_to_py(t, true)).collect()).repr())
            }
            (_, Some(v)) => Some(json_to_py(v, false).repr()),
        };
        info.set(field, text);
    }
    info.set("server_name", Some(server.to_string()));
    info.set("mode", Some("passive".into()));
    info
}

/// The server's configuration as Barman's `ServerConfig.to_json()`:
/// every option in Barman's order, then `name`.
fn config_doc(cfg: &ServerConfig) -> Doc {
    let mut out = Vec::new();
    for def in crate::config::options::SERVER_OPTIONS {
        let v = cfg.get(def.name);
        let j = match v {
            Value::Interval(secs) => J::String(crate::output::human_duration(*secs as f64)),
            other => other.to_json(),
        };
        out.push((def.name.to_string(), Doc::Leaf(j)));
    }
    out.push(("name".into(), Doc::Leaf(J::String(cfg.name.clone()))));
    Doc::Obj(out)
}

/// Barman's `set_sync_starting_point`: `pos` when the line there is
/// `last_wal`'s, else the start of the file.
fn starting_point(data: &[u8], last_wal: Option<&str>, pos: Option<u64>) -> usize {
    let pos = pos.unwrap_or(0) as usize;
    match last_wal {
        Some(w) if data.get(pos..pos + w.len()) == Some(w.as_bytes()) && w.len() == 24 => pos,
        _ => 0,
    }
}

/// The sync-info document of `cfg`'s catalog.
pub fn sync_status(
    cfg: &ServerConfig,
    lock_dir: &Path,
    last_wal: Option<&str>,
    last_position: Option<u64>,
) -> Result<Doc, SyncError> {
    let cat = ServerCatalog::new(cfg);
    let list = backups::load(&cat).map_err(|e| SyncError(e.to_string()))?;
    let list: Vec<&Backup> = list
        .iter()
        .filter(|b| matches!(b.info.status(), "DONE" | "WAITING_FOR_WALS"))
        .collect();
    let first_useful = list.first().and_then(|b| b.info.get("begin_wal"));

    let db = XlogDb::lock(&cat, lock_dir).map_err(|e| SyncError(e.to_string()))?;
    let data = match std::fs::read(db.path()) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(SyncError(format!("{}: {e}", db.path().display()))),
    };
    drop(db);
    let start = starting_point(&data, last_wal, last_position);
    let mut check_first = start == 0 && last_wal.is_some();
    let mut wals = Vec::new();
    let mut last: Option<(usize, String)> = None;
    let mut at = start;
    for line in data[start..].split_inclusive(|b| *b == b'\n') {
        let here = at;
        at += line.len();
        let text = String::from_utf8_lossy(line);
        let Some(e) = Entry::parse(&text) else {
            continue;
        };
        if check_first {
            if let Some(w) = last_wal.filter(|w| *w < e.name.as_str()) {
                return Err(SyncError(format!(
                    "last_wal '{w}' is older than the first available wal '{}'",
                    e.name
                )));
            }
            check_first = false;
        }
        last = Some((here, e.name.clone()));
        match last_wal {
            Some(w) if e.name.as_str() <= w => continue,
            None if first_useful.is_some_and(|f| e.name.as_str() < f) => continue,
            _ => {}
        }
        wals.push(e);
    }
    let (last_position, last_name) = match last {
        Some((pos, name)) => {
            if let Some(w) = last_wal.filter(|w| *w > name.as_str()) {
                // Barman's message has two spaces before the name.
                return Err(SyncError(format!(
                    "last_wal '{w}' is newer than the last available wal  '{name}'"
                )));
            }
            (pos, name)
        }
        None => (0, String::new()),
    };

    let wal_docs = wals
        .iter()
        .map(|e| {
            Doc::Obj(vec![
                (
                    "compression".into(),
                    Doc::Leaf(e.compression.clone().map_or(J::Null, J::String)),
                ),
                (
                    "encryption".into(),
                    Doc::Leaf(e.encryption.clone().map_or(J::Null, J::String)),
                ),
                ("name".into(), Doc::Leaf(J::String(e.name.clone()))),
                ("size".into(), Doc::Leaf(J::from(e.size))),
                (
                    "time".into(),
                    Doc::Leaf(serde_json::Number::from_f64(e.time).map_or(J::Null, J::Number)),
                ),
            ])
        })
        .collect();
    Ok(Doc::Obj(vec![
        ("last_position".into(), Doc::Leaf(J::from(last_position))),
        ("last_name".into(), Doc::Leaf(J::String(last_name))),
        (
            "backups".into(),
            Doc::Obj(list.iter().map(|b| (b.id.clone(), backup_doc(b))).collect()),
        ),
        ("wals".into(), Doc::Arr(wal_docs)),
        ("version".into(), Doc::Leaf(J::String("3.19.1".into()))),
        ("config".into(), config_doc(cfg)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup() -> Backup {
        let text = "backup_label='START WAL LOCATION: 0/3000028 (file 000000010000000000000003)\\nSTART TIMELINE: 1\\n'\n\
begin_offset=40\nbegin_time=2026-01-01 10:00:00+00:00\nbegin_wal=000000010000000000000003\n\
copy_stats={'copy_time': 2.149341, 'total_time': 2.149341}\nend_time=2026-01-01 10:00:05.500000+00:00\n\
mode=postgres\nserver_name=pg\nsize=28300\nstatus=DONE\nsystemid=7711862123650354339\n\
tablespaces=[('tbs1', 16394, '/srv/tbs1')]\ntimeline=1\nversion=150018\n";
        Backup {
            id: "20260101T100000".into(),
            info: BackupInfo::parse(text).unwrap(),
            keep: None,
        }
    }

    #[test]
    fn a_backup_is_shown_as_barman_shows_it() {
        let doc = backup_doc(&backup()).render();
        for want in [
            "\"begin_offset\": 40,",
            "\"begin_time\": \"Thu Jan  1 10:00:00 2026\",",
            "\"systemid\": \"7711862123650354339\",",
            "\"copy_stats\": {\n        \"copy_time\": 2.149341,",
            "\"tablespaces\": [\n        [\n            \"tbs1\",\n            16394,",
            "\"backup_name\"",
            "\"backup_id\": \"20260101T100000\",\n    \"begin_time_iso\": \"2026-01-01T10:00:00+00:00\",\n    \"end_time_iso\": \"2026-01-01T10:00:05.500000+00:00\"\n}",
        ] {
            if want == "\"backup_name\"" {
                assert!(!doc.contains(want), "{doc}");
            } else {
                assert!(doc.contains(want), "{want} not in {doc}");
            }
        }
    }

    #[test]
    fn json_and_backup_info_round_trip() {
        let b = backup();
        let doc: J = serde_json::from_str(&backup_doc(&b).render()).unwrap();
        let back = info_from_json(doc.as_object().unwrap(), "pg");
        for field in FIELDS {
            if *field == "mode" {
                assert_eq!(back.get(field), Some("passive"));
            } else {
                assert_eq!(back.get(field), b.info.get(field), "{field}");
            }
        }
    }

    #[test]
    fn the_starting_point_needs_the_named_line_there() {
        let db = b"000000010000000000000002\t1\t1.0\tNone\tNone\n000000010000000000000003\t1\t1.0\tNone\tNone\n";
        let w = Some("000000010000000000000003");
        assert_eq!(starting_point(db, w, Some(41)), 41);
        assert_eq!(starting_point(db, w, Some(42)), 0);
        assert_eq!(starting_point(db, w, Some(9999)), 0);
        assert_eq!(starting_point(db, None, Some(41)), 0);
    }
}
