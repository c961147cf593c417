//! `backup.info`: Barman's backup metadata, `key=value` lines. Parsed as
//! Barman's `FieldListFile.load` does (blank and `#` lines skipped, split at
//! the first `=`, both sides trimmed, `None` meaning absent, an unknown key
//! refused) and rendered as its `save` does (keys sorted, every field
//! written, `backup_name` and `snapshots_info` only when set). Values keep
//! Barman's text, so a file read and written back is byte-identical;
//! [`super::pylit`] decodes the `repr()` fields.

use std::collections::BTreeMap;

/// Every field Barman 3.19's `BackupInfo` knows.
pub const FIELDS: &[&str] = &[
    "backup_label",
    "backup_name",
    "begin_offset",
    "begin_time",
    "begin_wal",
    "begin_xlog",
    "children_backup_ids",
    "cluster_size",
    "compression",
    "config_file",
    "copy_stats",
    "data_checksums",
    "deduplicated_size",
    "encryption",
    "end_offset",
    "end_time",
    "end_wal",
    "end_xlog",
    "error",
    "hba_file",
    "ident_file",
    "included_files",
    "mode",
    "parent_backup_id",
    "pgdata",
    "server_name",
    "size",
    "snapshots_info",
    "status",
    "summarize_wal",
    "systemid",
    "tablespaces",
    "timeline",
    "version",
    "xlog_segment_size",
];

/// Fields Barman omits when they are None.
const HIDDEN_IF_NONE: &[&str] = &["backup_name", "snapshots_info"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    #[error(
        "Unsupported field '{0}' found in backup metadata. This indicates the backup was created \
         with a newer version of Barman. Please upgrade to a compatible or newer version."
    )]
    UnknownField(String),
    #[error("invalid line {0}")]
    Syntax(String),
}

/// One backup's metadata: field name → Barman's text for it (None: absent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackupInfo {
    fields: BTreeMap<&'static str, Option<String>>,
}

impl BackupInfo {
    pub fn parse(text: &str) -> Result<BackupInfo, InfoError> {
        let mut info = BackupInfo::default();
        for line in text.lines() {
            if line.trim().is_empty() || line.trim_end().starts_with('#') {
                continue;
            }
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| InfoError::Syntax(line.trim().to_string()))?;
            let (k, v) = (k.trim(), v.trim());
            let key = FIELDS
                .iter()
                .find(|f| **f == k)
                .ok_or_else(|| InfoError::UnknownField(k.to_string()))?;
            info.fields
                .insert(key, (v != "None").then(|| v.to_string()));
        }
        Ok(info)
    }

    /// The file as Barman writes it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for key in FIELDS {
            let value = self.fields.get(key).cloned().flatten();
            if value.is_none() && HIDDEN_IF_NONE.contains(key) {
                continue;
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value.as_deref().unwrap_or("None"));
            out.push('\n');
        }
        out
    }

    /// The text of a field, None when absent or `None`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(|v| v.as_deref())
    }

    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// Sets a field to Barman's text for it (None: `None`).
    pub fn set(&mut self, key: &'static str, value: Option<String>) {
        debug_assert!(FIELDS.contains(&key), "{key} is not a backup.info field");
        self.fields.insert(key, value);
    }

    pub fn status(&self) -> &str {
        self.get("status").unwrap_or("EMPTY")
    }

    /// Python's `repr()` of the `LocalBackupInfo` Barman loads from this
    /// file (its `ERROR: Cannot delete backup (<server> <repr>)`): every
    /// field sorted, ints and datetimes as Python shows them, the others as
    /// quoted strings (repr-encoded fields as the text of their repr).
    pub fn python_repr(&self) -> String {
        use super::pylit::repr_str;
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
        let mut parts = Vec::new();
        for key in FIELDS {
            let value = match *key {
                "status" => Some(self.status()),
                "xlog_segment_size" => Some(self.get(key).unwrap_or("16777216")),
                _ => self.get(key),
            };
            let shown = match value {
                None if HIDDEN_IF_NONE.contains(key) => continue,
                None => "None".to_string(),
                Some(v) if INTS.contains(key) && v.parse::<i64>().is_ok() => v.to_string(),
                Some(v) if matches!(*key, "begin_time" | "end_time") => {
                    datetime_repr(v).unwrap_or_else(|| repr_str(v))
                }
                Some(v) => repr_str(v),
            };
            parts.push(format!("{key}={shown}"));
        }
        format!("LocalBackupInfo({})", parts.join(", "))
    }
}

/// `repr()` of the datetime dateutil parses from `text`:
/// `datetime.datetime(2026, 11, 25, 3, 15, 50, 319146, tzinfo=tzutc())`
/// (zero seconds/microseconds omitted as Python omits them; offset 0 is
/// `tzutc()`, others `tzoffset(None, <s>)`, naive ones `tzlocal()`).
fn datetime_repr(text: &str) -> Option<String> {
    let t = text.trim();
    let civil: jiff::civil::DateTime = t.get(..19)?.replacen(' ', "T", 1).parse().ok()?;
    let mut rest = &t[19..];
    let mut micro = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits: String = r.chars().take_while(char::is_ascii_digit).collect();
        rest = &r[digits.len()..];
        micro = format!("{digits:0<6}").get(..6)?.parse::<i64>().ok()?;
    }
    let tz = if rest.is_empty() {
        "tzlocal()".to_string()
    } else if rest == "Z" {
        "tzutc()".to_string()
    } else {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = rest[1..]
            .split_once(':')
            .unwrap_or((&rest[1..3.min(rest.len())], "00"));
        let secs = sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60);
        if secs == 0 {
            "tzutc()".to_string()
        } else {
            format!("tzoffset(None, {secs})")
        }
    };
    let mut fields = vec![
        civil.year().to_string(),
        civil.month().to_string(),
        civil.day().to_string(),
        civil.hour().to_string(),
        civil.minute().to_string(),
    ];
    if micro != 0 {
        fields.push(civil.second().to_string());
        fields.push(micro.to_string());
    } else if civil.second() != 0 {
        fields.push(civil.second().to_string());
    }
    Some(format!(
        "datetime.datetime({}, tzinfo={tz})",
        fields.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARMAN: &str = "backup_label='START WAL LOCATION: 0/18000028 (file 000000010000000000000018)\\nCHECKPOINT LOCATION: 0/18000060\\n'
begin_offset=40
begin_time=2026-11-24 22:11:18.844158+00:00
begin_wal=000000010000000000000018
begin_xlog=0/18000028
children_backup_ids=None
cluster_size=37157421
compression=None
config_file=/var/lib/postgresql/15/main/postgresql.conf
copy_stats={'copy_time': 2.149341, 'total_time': 2.149341}
data_checksums=off
deduplicated_size=36975251
encryption=None
end_offset=0
end_time=2026-11-24 22:11:21.002758+00:00
end_wal=000000010000000000000018
end_xlog=0/19000000
error=None
hba_file=/var/lib/postgresql/15/main/pg_hba.conf
ident_file=/var/lib/postgresql/15/main/pg_ident.conf
included_files=None
mode=postgres
parent_backup_id=None
pgdata=/var/lib/postgresql/15/main
server_name=pg15
size=36975251
status=DONE
summarize_wal=None
systemid=7711862123650354339
tablespaces=[('tbs1', 16394, '/srv/tbs1')]
timeline=1
version=150018
xlog_segment_size=16777216
";

    #[test]
    fn barmans_file_round_trips_byte_for_byte() {
        let info = BackupInfo::parse(BARMAN).unwrap();
        assert_eq!(info.render(), BARMAN);
        assert_eq!(info.status(), "DONE");
        assert_eq!(info.get("error"), None);
        assert_eq!(info.get_int("timeline"), Some(1));
        let tbs = crate::catalog::pylit::parse(info.get("tablespaces").unwrap()).unwrap();
        assert_eq!(tbs.repr(), "[('tbs1', 16394, '/srv/tbs1')]");
    }

    #[test]
    fn python_repr_like_barmans_error_message() {
        let info = BackupInfo::parse(BARMAN).unwrap();
        let r = info.python_repr();
        assert!(r.starts_with("LocalBackupInfo(backup_label=\"'START WAL LOCATION: 0/18000028 (file 000000010000000000000018)\\\\nCHECKPOINT"), "{r}");
        assert!(r.contains(", begin_offset=40, begin_time=datetime.datetime(2026, 11, 24, 22, 11, 18, 844158, tzinfo=tzutc()), begin_wal='000000010000000000000018', "), "{r}");
        assert!(
            r.contains(", children_backup_ids=None, cluster_size=37157421, "),
            "{r}"
        );
        assert!(
            r.contains(", copy_stats=\"{'copy_time': 2.149341, 'total_time': 2.149341}\", "),
            "{r}"
        );
        assert!(r.contains(", tablespaces=\"[('tbs1', 16394, '/srv/tbs1')]\", timeline=1, version=150018, xlog_segment_size=16777216)"), "{r}");
        assert!(!r.contains("backup_name"));
        assert_eq!(
            datetime_repr("2026-01-02 03:04:00+01:00").unwrap(),
            "datetime.datetime(2026, 1, 2, 3, 4, tzinfo=tzoffset(None, 3600))"
        );
        assert_eq!(
            datetime_repr("2026-01-02 03:04:05").unwrap(),
            "datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=tzlocal())"
        );
    }

    #[test]
    fn named_backups_and_refusals() {
        let mut info = BackupInfo::parse(BARMAN).unwrap();
        info.set("backup_name", Some("first-tar".into()));
        assert!(info
            .render()
            .contains("\nbackup_name=first-tar\nbegin_offset=40\n"));
        let err = BackupInfo::parse("status=DONE\nfuture_field=1\n").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("Unsupported field 'future_field' found in backup metadata."));
        assert!(BackupInfo::parse("no equals sign").is_err());
        assert_eq!(
            BackupInfo::parse("# comment\n\n status = DONE \n")
                .unwrap()
                .status(),
            "DONE"
        );
    }
}
