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
