//! Barman 3.19's option table: every server option with its scope, its
//! default and its parser, in Barman's own order (`ServerConfig.KEYS`).
//! The order matters: defaults interpolate options resolved before them
//! (`basebackups_directory = %(backup_directory)s/base`).
//!
//! Generated once from Barman's `ServerConfig.KEYS`, `BARMAN_KEYS`,
//! `DEFAULTS` and `PARSERS`, so that it cannot drift from them by hand.

use super::types::{self, Value, COMPRESSIONS};

/// Where an option may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Server sections only (a `[barman]` value is silently ignored).
    Server,
    /// Server sections, or `[barman]` and inherited by every server.
    Inherit,
}

/// How an option's text becomes a [`Value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Int,
    Size,
    Interval,
    AbsPath,
    DirOrCloud,
    Compression,
    CompressionLevel,
    BackupMethod,
    BackupOptions,
    RecoveryOptions,
    ReuseBackup,
    BackupCompression,
    BackupCompressionFormat,
    BackupCompressionLocation,
    CreateSlot,
    SlotName,
    StagingLocation,
    CombineMode,
    Encryption,
    AwsEncryption,
    SnapshotDisks,
}

/// Whether barman-rs acts on an option. Deferred ones are parsed and shown
/// like Barman does, and a non-default value is reported as unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Supported,
    Deferred,
}

const SUPPORTED: Support = Support::Supported;
const DEFERRED: Support = Support::Deferred;

#[derive(Debug)]
pub struct OptionDef {
    pub name: &'static str,
    pub scope: Scope,
    pub default: Option<&'static str>,
    pub kind: Kind,
    pub support: Support,
}

const fn opt(
    name: &'static str,
    scope: Scope,
    default: Option<&'static str>,
    kind: Kind,
    support: Support,
) -> OptionDef {
    OptionDef {
        name,
        scope,
        default,
        kind,
        support,
    }
}

use Scope::{Inherit, Server};

/// Every server option, in Barman's resolution order.
pub static SERVER_OPTIONS: &[OptionDef] = &[
    opt("active", Server, Some("true"), Kind::Bool, SUPPORTED),
    opt("archiver", Inherit, Some("off"), Kind::Bool, SUPPORTED),
    opt(
        "archiver_batch_size",
        Inherit,
        Some("0"),
        Kind::Int,
        SUPPORTED,
    ),
    opt(
        "autogenerate_manifest",
        Inherit,
        Some("false"),
        Kind::Bool,
        SUPPORTED,
    ),
    opt(
        "aws_check_object_lock",
        Inherit,
        Some("off"),
        Kind::Bool,
        DEFERRED,
    ),
    opt(
        "aws_encryption",
        Inherit,
        None,
        Kind::AwsEncryption,
        DEFERRED,
    ),
    opt("aws_read_timeout", Inherit, None, Kind::Int, DEFERRED),
    opt(
        "aws_await_snapshots_timeout",
        Inherit,
        Some("3600"),
        Kind::Int,
        DEFERRED,
    ),
    opt("aws_snapshot_lock_mode", Inherit, None, Kind::Str, DEFERRED),
    opt(
        "aws_snapshot_lock_duration",
        Inherit,
        None,
        Kind::Int,
        DEFERRED,
    ),
    opt(
        "aws_snapshot_lock_cool_off_period",
        Inherit,
        None,
        Kind::Int,
        DEFERRED,
    ),
    opt(
        "aws_snapshot_lock_expiration_date",
        Inherit,
        None,
        Kind::Str,
        DEFERRED,
    ),
    opt("aws_profile", Inherit, None, Kind::Str, DEFERRED),
    opt("aws_region", Inherit, None, Kind::Str, DEFERRED),
    opt("aws_sse_kms_key_id", Inherit, None, Kind::Str, DEFERRED),
    opt("azure_credential", Inherit, None, Kind::Str, DEFERRED),
    opt("azure_resource_group", Inherit, None, Kind::Str, DEFERRED),
    opt("azure_subscription_id", Inherit, None, Kind::Str, DEFERRED),
    opt(
        "backup_compression",
        Inherit,
        None,
        Kind::BackupCompression,
        SUPPORTED,
    ),
    opt(
        "backup_compression_format",
        Inherit,
        None,
        Kind::BackupCompressionFormat,
        SUPPORTED,
    ),
    opt(
        "backup_compression_level",
        Inherit,
        None,
        Kind::Int,
        SUPPORTED,
    ),
    opt(
        "backup_compression_location",
        Inherit,
        None,
        Kind::BackupCompressionLocation,
        SUPPORTED,
    ),
    opt(
        "backup_compression_workers",
        Inherit,
        None,
        Kind::Int,
        SUPPORTED,
    ),
    opt(
        "backup_directory",
        Server,
        Some("%(barman_home)s/%(name)s"),
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "backup_method",
        Inherit,
        Some("rsync"),
        Kind::BackupMethod,
        SUPPORTED,
    ),
    opt(
        "backup_options",
        Inherit,
        Some(""),
        Kind::BackupOptions,
        SUPPORTED,
    ),
    opt("bandwidth_limit", Inherit, None, Kind::Str, SUPPORTED),
    opt(
        "basebackup_retry_sleep",
        Inherit,
        Some("30"),
        Kind::Int,
        SUPPORTED,
    ),
    opt(
        "basebackup_retry_times",
        Inherit,
        Some("0"),
        Kind::Int,
        SUPPORTED,
    ),
    opt(
        "basebackups_directory",
        Server,
        Some("%(backup_directory)s/base"),
        Kind::DirOrCloud,
        SUPPORTED,
    ),
    opt("check_timeout", Inherit, Some("30"), Kind::Int, SUPPORTED),
    opt(
        "cloud_delete_batch_size",
        Inherit,
        None,
        Kind::Int,
        DEFERRED,
    ),
    opt(
        "cloud_staging_directory",
        Inherit,
        Some("/tmp/barman/cloud-staging"),
        Kind::AbsPath,
        DEFERRED,
    ),
    opt(
        "cloud_staging_max_size",
        Inherit,
        Some("30Gi"),
        Kind::Size,
        DEFERRED,
    ),
    opt(
        "cloud_upload_max_archive_size",
        Server,
        Some("100Gi"),
        Kind::Size,
        DEFERRED,
    ),
    opt(
        "cloud_upload_min_chunk_size",
        Server,
        None,
        Kind::Size,
        DEFERRED,
    ),
    opt(
        "cloud_wal_archive_parallel",
        Inherit,
        Some("0"),
        Kind::Int,
        DEFERRED,
    ),
    opt(
        "cloud_wal_restore_parallel",
        Inherit,
        Some("0"),
        Kind::Int,
        DEFERRED,
    ),
    opt("cluster", Server, Some("%(name)s"), Kind::Str, SUPPORTED),
    opt("compression", Inherit, None, Kind::Compression, SUPPORTED),
    opt(
        "compression_level",
        Inherit,
        Some("medium"),
        Kind::CompressionLevel,
        SUPPORTED,
    ),
    opt("conninfo", Server, None, Kind::Str, SUPPORTED),
    opt(
        "custom_compression_filter",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "custom_decompression_filter",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "custom_compression_magic",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt("description", Server, None, Kind::Str, SUPPORTED),
    opt("disabled", Server, Some("false"), Kind::Bool, SUPPORTED),
    opt(
        "encryption",
        Inherit,
        Some("none"),
        Kind::Encryption,
        SUPPORTED,
    ),
    opt("encryption_key_id", Inherit, None, Kind::Str, DEFERRED),
    opt(
        "encryption_passphrase_command",
        Inherit,
        None,
        Kind::Str,
        DEFERRED,
    ),
    opt(
        "errors_directory",
        Server,
        Some("%(backup_directory)s/errors"),
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "forward_config_path",
        Inherit,
        Some("false"),
        Kind::Bool,
        SUPPORTED,
    ),
    opt("gcp_project", Inherit, None, Kind::Str, DEFERRED),
    opt("gcp_zone", Server, None, Kind::Str, DEFERRED),
    opt(
        "immediate_checkpoint",
        Inherit,
        Some("false"),
        Kind::Bool,
        SUPPORTED,
    ),
    opt(
        "incoming_wals_directory",
        Server,
        Some("%(backup_directory)s/incoming"),
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "keepalive_interval",
        Server,
        Some("60"),
        Kind::Int,
        SUPPORTED,
    ),
    opt(
        "last_backup_maximum_age",
        Inherit,
        None,
        Kind::Interval,
        SUPPORTED,
    ),
    opt(
        "last_backup_minimum_size",
        Inherit,
        None,
        Kind::Size,
        SUPPORTED,
    ),
    opt(
        "last_wal_maximum_age",
        Inherit,
        None,
        Kind::Interval,
        SUPPORTED,
    ),
    opt(
        "combine_mode",
        Inherit,
        Some("copy"),
        Kind::CombineMode,
        SUPPORTED,
    ),
    opt(
        "local_staging_path",
        Inherit,
        None,
        Kind::AbsPath,
        SUPPORTED,
    ),
    opt(
        "max_incoming_wals_queue",
        Inherit,
        None,
        Kind::Int,
        SUPPORTED,
    ),
    opt(
        "minimum_redundancy",
        Inherit,
        Some("0"),
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "network_compression",
        Inherit,
        Some("false"),
        Kind::Bool,
        SUPPORTED,
    ),
    opt("parallel_jobs", Inherit, Some("1"), Kind::Int, SUPPORTED),
    opt(
        "parallel_jobs_start_batch_period",
        Inherit,
        Some("1"),
        Kind::Int,
        SUPPORTED,
    ),
    opt(
        "parallel_jobs_start_batch_size",
        Inherit,
        Some("10"),
        Kind::Int,
        SUPPORTED,
    ),
    opt("path_prefix", Inherit, None, Kind::Str, SUPPORTED),
    opt(
        "post_archive_retry_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt("post_archive_script", Inherit, None, Kind::Str, SUPPORTED),
    opt(
        "post_backup_retry_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt("post_backup_script", Inherit, None, Kind::Str, SUPPORTED),
    opt("post_delete_script", Inherit, None, Kind::Str, SUPPORTED),
    opt(
        "post_delete_retry_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "post_recovery_retry_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt("post_recovery_script", Inherit, None, Kind::Str, SUPPORTED),
    opt(
        "post_wal_delete_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "post_wal_delete_retry_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "pre_archive_retry_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt("pre_archive_script", Inherit, None, Kind::Str, SUPPORTED),
    opt(
        "pre_backup_retry_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt("pre_backup_script", Inherit, None, Kind::Str, SUPPORTED),
    opt("pre_delete_script", Inherit, None, Kind::Str, SUPPORTED),
    opt(
        "pre_delete_retry_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "pre_recovery_retry_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt("pre_recovery_script", Inherit, None, Kind::Str, SUPPORTED),
    opt("pre_wal_delete_script", Inherit, None, Kind::Str, SUPPORTED),
    opt(
        "pre_wal_delete_retry_script",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "primary_checkpoint_timeout",
        Server,
        Some("0"),
        Kind::Int,
        SUPPORTED,
    ),
    opt("primary_conninfo", Server, None, Kind::Str, SUPPORTED),
    opt("primary_ssh_command", Inherit, None, Kind::Str, SUPPORTED),
    opt(
        "recovery_options",
        Inherit,
        Some(""),
        Kind::RecoveryOptions,
        SUPPORTED,
    ),
    opt(
        "recovery_staging_path",
        Inherit,
        None,
        Kind::AbsPath,
        SUPPORTED,
    ),
    opt(
        "create_slot",
        Inherit,
        Some("manual"),
        Kind::CreateSlot,
        SUPPORTED,
    ),
    opt("retention_policy", Inherit, None, Kind::Str, SUPPORTED),
    opt(
        "retention_policy_mode",
        Inherit,
        Some("auto"),
        Kind::Str,
        SUPPORTED,
    ),
    opt("reuse_backup", Inherit, None, Kind::ReuseBackup, SUPPORTED),
    opt("slot_name", Inherit, None, Kind::SlotName, SUPPORTED),
    opt(
        "snapshot_disks",
        Server,
        None,
        Kind::SnapshotDisks,
        DEFERRED,
    ),
    opt("snapshot_gcp_project", Inherit, None, Kind::Str, DEFERRED),
    opt("snapshot_instance", Server, None, Kind::Str, DEFERRED),
    opt("snapshot_provider", Inherit, None, Kind::Str, DEFERRED),
    opt("snapshot_zone", Server, None, Kind::Str, DEFERRED),
    opt("ssh_command", Server, None, Kind::Str, SUPPORTED),
    opt("staging_path", Inherit, None, Kind::AbsPath, SUPPORTED),
    opt(
        "staging_location",
        Inherit,
        Some("local"),
        Kind::StagingLocation,
        SUPPORTED,
    ),
    opt(
        "streaming_archiver",
        Inherit,
        Some("off"),
        Kind::Bool,
        SUPPORTED,
    ),
    opt(
        "streaming_archiver_batch_size",
        Inherit,
        Some("0"),
        Kind::Int,
        SUPPORTED,
    ),
    opt(
        "streaming_archiver_name",
        Inherit,
        Some("barman_receive_wal"),
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "streaming_backup_name",
        Inherit,
        Some("barman_streaming_backup"),
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "streaming_conninfo",
        Server,
        Some("%(conninfo)s"),
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "streaming_wals_directory",
        Server,
        Some("%(backup_directory)s/streaming"),
        Kind::Str,
        SUPPORTED,
    ),
    opt(
        "tablespace_bandwidth_limit",
        Inherit,
        None,
        Kind::Str,
        SUPPORTED,
    ),
    opt("wal_conninfo", Server, None, Kind::Str, SUPPORTED),
    opt(
        "wal_retention_policy",
        Inherit,
        Some("main"),
        Kind::Str,
        SUPPORTED,
    ),
    opt("wal_streaming_conninfo", Server, None, Kind::Str, SUPPORTED),
    opt(
        "wals_directory",
        Server,
        Some("%(backup_directory)s/wals"),
        Kind::DirOrCloud,
        SUPPORTED,
    ),
    opt("warehousepg_dbid", Inherit, None, Kind::Int, DEFERRED),
    opt("worm_mode", Inherit, Some("off"), Kind::Bool, DEFERRED),
    opt(
        "xlogdb_directory",
        Inherit,
        Some("%(wals_directory)s"),
        Kind::Str,
        SUPPORTED,
    ),
];

/// Options only the `[barman]` section knows (plus every server option,
/// which `[barman]` may set for inheritance).
pub static GLOBAL_ONLY: &[&str] = &[
    "barman_home",
    "barman_lock_directory",
    "barman_user",
    "lock_directory_cleanup",
    "config_changes_queue",
    "log_file",
    "log_level",
    "configuration_files_directory",
];

/// `disabled` is computed, never read from the file.
pub const FIXED: &[&str] = &["disabled"];

pub fn server_option(name: &str) -> Option<&'static OptionDef> {
    SERVER_OPTIONS.iter().find(|o| o.name == name)
}

/// Parses `raw` for `def`. `source` is Barman's `[<section>] section` text,
/// used by the CSV options' own messages.
pub fn parse_value(def: &OptionDef, raw: &str, source: &str) -> Result<Value, String> {
    let choice = |allowed: &[&str], why: &dyn Fn(&str) -> String| {
        types::parse_choice(raw, allowed, why).map(Value::Str)
    };
    match def.kind {
        Kind::Str => Ok(Value::Str(raw.to_string())),
        Kind::Bool => types::parse_boolean(raw).map(Value::Bool),
        Kind::Int => types::parse_int(raw).map(Value::Int),
        Kind::Size => {
            if raw.is_empty() {
                Ok(Value::None)
            } else {
                types::parse_si_suffix(raw).map(Value::Int)
            }
        }
        Kind::Interval => {
            if raw.is_empty() {
                Ok(Value::None)
            } else {
                types::parse_time_interval(raw).map(Value::Interval)
            }
        }
        Kind::AbsPath => {
            if raw.starts_with('/') {
                Ok(Value::Str(raw.to_string()))
            } else {
                Err(format!(
                    "Invalid value : '{raw}' (must be an absolute path)"
                ))
            }
        }
        Kind::DirOrCloud => Ok(Value::Str(raw.to_string())),
        Kind::Compression => {
            if raw.is_empty() {
                return Ok(Value::Str(String::new()));
            }
            let l = raw.to_lowercase();
            if COMPRESSIONS.contains(&l.as_str()) {
                Ok(Value::Str(l))
            } else {
                Err(format!(
                    "Invalid value: '{l}' (must be one in: {})",
                    COMPRESSIONS.join(", ")
                ))
            }
        }
        Kind::CompressionLevel => {
            if raw.is_empty() {
                Ok(Value::Str(String::new()))
            } else {
                types::parse_compression_level(raw)
            }
        }
        Kind::BackupMethod => {
            const M: &[&str] = &[
                "rsync",
                "postgres",
                "local-rsync",
                "snapshot",
                "local-to-cloud",
            ];
            choice(M, &|_| {
                format!("Invalid value (must be one in: '{}')", M.join("', '"))
            })
        }
        Kind::BackupOptions => types::parse_csv(
            raw,
            def.name,
            source,
            &[
                "exclusive_backup",
                "concurrent_backup",
                "external_configuration",
            ],
            &[
                ("exclusive_backup", "concurrent_backup"),
                ("concurrent_backup", "exclusive_backup"),
            ],
        )
        .map(|s| Value::Csv("BackupOptions", s)),
        Kind::RecoveryOptions => {
            types::parse_csv(raw, def.name, source, &["get-wal", "delta-restore"], &[])
                .map(|s| Value::Csv("RecoveryOptions", s))
        }
        Kind::ReuseBackup => choice(&["copy", "link", "off"], &|_| {
            "Invalid value (use 'copy', 'link' or 'off')".to_string()
        }),
        Kind::BackupCompression => {
            const C: &[&str] = &["gzip", "lz4", "zstd", "none"];
            choice(C, &|v| {
                format!("Invalid value '{v}'(must be one in: ['gzip', 'lz4', 'zstd', 'none'])")
            })
        }
        Kind::BackupCompressionFormat => choice(&["plain", "tar"], &|_| {
            "Invalid value (must be either `plain` or `tar`)".to_string()
        }),
        Kind::BackupCompressionLocation => choice(&["client", "server"], &|_| {
            "Invalid value (must be either `client` or `server`)".to_string()
        }),
        Kind::CreateSlot => choice(&["manual", "auto"], &|_| {
            "Invalid value (use 'manual' or 'auto')".to_string()
        }),
        Kind::SlotName => {
            let l = raw.to_lowercase();
            if !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'_')
            {
                Ok(Value::Str(l))
            } else {
                Err(
                    "Replication slot names may only contain lower case letters, \
                     numbers, and the underscore character."
                        .to_string(),
                )
            }
        }
        Kind::StagingLocation => {
            if raw == "local" || raw == "remote" {
                Ok(Value::Str(raw.to_string()))
            } else {
                Err(format!("Invalid value: {raw} (options are: local, remote)"))
            }
        }
        Kind::CombineMode => {
            const C: &[&str] = &["copy", "link", "clone", "copy-file-range"];
            choice(C, &|v| {
                format!(
                    "Invalid value: {} (options are: {})",
                    v.to_lowercase(),
                    C.join(", ")
                )
            })
        }
        Kind::Encryption => {
            let l = raw.to_lowercase();
            match l.as_str() {
                "none" => Ok(Value::None),
                "gpg" => Ok(Value::Str(l)),
                _ => Err(format!(
                    "Invalid encryption value '{l}'. Allowed values are: none, gpg."
                )),
            }
        }
        Kind::AwsEncryption => {
            if raw == "AES256" || raw == "aws:kms" {
                Ok(Value::Str(raw.to_string()))
            } else {
                Err(format!(
                    "Invalid value '{raw}' (must be one in: ['AES256', 'aws:kms'])"
                ))
            }
        }
        Kind::SnapshotDisks => {
            let disks: Vec<String> = raw.split(',').map(str::to_string).collect();
            if disks.iter().any(String::is_empty) {
                Err(format!("{:?}", disks))
            } else {
                Ok(Value::List(disks))
            }
        }
    }
}
