//! The command line, as Barman 3.19's argparse spells it: global flags,
//! subcommands with their aliases and options. Plain data, no logic.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;

/// What `barman --version` prints: the leading `3.19.1` scripts parse,
/// then what this program really is.
pub const VERSION_LINE: &str = concat!(
    "3.19.1 (barman-rs ",
    env!("CARGO_PKG_VERSION"),
    ", compatible with Barman 3.19.1)"
);

#[derive(Debug, Parser)]
#[command(
    name = "barman",
    about = "Backup and Recovery Manager for PostgreSQL (barman-rs)",
    disable_version_flag = true
)]
pub struct Cli {
    /// Show program's version number and exit.
    #[arg(short = 'v', long = "version")]
    pub version: bool,

    /// Uses a configuration file (defaults: ~/.barman.conf, /etc/barman.conf, /etc/barman/barman.conf).
    #[arg(short = 'c', long = "config", value_name = "CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Whether to use colors in the output.
    #[arg(long = "color", visible_alias = "colour", value_enum, default_value_t = Color::Auto, global = true)]
    pub color: Color,

    /// Override the default log level.
    #[arg(long = "log-level", global = true)]
    pub log_level: Option<String>,

    /// Be quiet.
    #[arg(short = 'q', long = "quiet", global = true)]
    pub quiet: bool,

    /// Debug mode.
    #[arg(short = 'd', long = "debug", global = true)]
    pub debug: bool,

    /// Output format.
    #[arg(short = 'f', long = "format", value_enum, default_value_t = Format::Console, global = true)]
    pub format: Format,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Never,
    Always,
    Auto,
}

/// One or more server names, or `all`.
#[derive(Debug, Args)]
pub struct Servers {
    /// Specifies the server names (`all` for every server).
    #[arg(required = true, value_name = "SERVER_NAME")]
    pub server_name: Vec<String>,
}

/// Arguments of a Barman command barman-rs does not implement yet: accepted
/// as typed so the error can name the command, never silently ignored.
#[derive(Debug, Args)]
pub struct NotYet {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

/// Barman's `check_positive`: an integer above 0. A primary running
/// barman-rs also takes 0 (what a Barman passive stores after a one-line
/// xlog.db, and then sends forever).
fn positive_u64(s: &str) -> Result<u64, String> {
    match s.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n as u64),
        Ok(_) => Err(format!("'{s}' is not a valid positive integer")),
        Err(_) => Err(format!("'{s}' is not a valid input")),
    }
}

/// `receive-wal` options, as Barman's argparse defines them.
#[derive(Debug, Args)]
pub struct ReceiveWal {
    /// Stop the receive-wal subprocess for the server.
    #[arg(long)]
    pub stop: bool,
    /// Reset the status of receive-wal removing any status files.
    #[arg(long)]
    pub reset: bool,
    /// Create the replication slot, if it does not exist.
    #[arg(long = "create-slot")]
    pub create_slot: bool,
    /// Do not error out when --create-slot is specified and a slot with the specified name already exists.
    #[arg(long = "if-not-exists")]
    pub if_not_exists: bool,
    /// Drop the replication slot, if it exists.
    #[arg(long = "drop-slot")]
    pub drop_slot: bool,
    /// Specifies the server name for the command.
    pub server_name: String,
}

/// `get-wal` options, as Barman's argparse defines them.
#[derive(Debug, Args)]
pub struct GetWal {
    /// Specifies the server name for the command.
    pub server_name: String,
    /// The WAL file to get.
    pub wal_name: String,
    /// Put the retrieved WAL file in this directory with the original name.
    #[arg(
        short = 'o',
        long = "output-directory",
        value_name = "OUTPUT_DIRECTORY"
    )]
    pub output_directory: Option<PathBuf>,
    /// Retrieve also partial WAL files (.partial).
    #[arg(short = 'P', long = "partial")]
    pub partial: bool,
    /// Compress the output with gzip.
    #[arg(
        short = 'z',
        long = "gzip",
        short_alias = 'x',
        overrides_with = "bzip2"
    )]
    pub gzip: bool,
    /// Compress the output with bzip2.
    #[arg(short = 'j', long = "bzip2", overrides_with = "gzip")]
    pub bzip2: bool,
    /// Do not decompress the output if compressed.
    #[arg(long = "keep-compression")]
    pub keep_compression: bool,
    /// Peek from the WAL archive up to 'SIZE' WAL files, starting from the requested one.
    #[arg(short = 'p', long = "peek", value_name = "SIZE", value_parser = positive)]
    pub peek: Option<u64>,
    /// Test both the connection and the configuration of the requested server for WAL retrieval.
    #[arg(short = 't', long = "test")]
    pub test: bool,
}

/// `backup` options, as Barman's argparse defines them.
#[derive(Debug, Args)]
pub struct Backup {
    #[command(flatten)]
    pub servers: Servers,
    /// Forces the initial checkpoint to be done as quickly as possible.
    #[arg(
        long = "immediate-checkpoint",
        overrides_with = "no_immediate_checkpoint"
    )]
    pub immediate_checkpoint: bool,
    /// Forces the initial checkpoint to be spread.
    #[arg(
        long = "no-immediate-checkpoint",
        overrides_with = "immediate_checkpoint"
    )]
    pub no_immediate_checkpoint: bool,
    /// Performs an incremental backup from this backup ID (PostgreSQL 17+).
    #[arg(long = "incremental", value_name = "BACKUP_ID")]
    pub incremental: Option<String>,
    /// Use the previous backup to improve transfer-rate ("link" when no argument is given).
    #[arg(long = "reuse-backup", num_args = 0..=1, default_missing_value = "link",
          value_parser = ["off", "copy", "link"])]
    pub reuse_backup: Option<String>,
    /// Number of retries after an error if base backup copy fails.
    #[arg(long = "retry-times", value_parser = non_negative)]
    pub retry_times: Option<u64>,
    /// Wait time after a failed base backup copy, before retrying.
    #[arg(long = "retry-sleep", value_parser = non_negative)]
    pub retry_sleep: Option<u64>,
    /// Disable base backup copy retry logic.
    #[arg(long = "no-retry")]
    pub no_retry: bool,
    /// Run the copy in parallel using NJOBS workers.
    #[arg(short = 'j', long = "jobs", value_name = "NJOBS", value_parser = positive)]
    pub jobs: Option<u64>,
    /// Accepted for compatibility (rsync job batching).
    #[arg(long = "jobs-start-batch-period", value_parser = positive)]
    pub jobs_start_batch_period: Option<u64>,
    /// Accepted for compatibility (rsync job batching).
    #[arg(long = "jobs-start-batch-size", value_parser = positive)]
    pub jobs_start_batch_size: Option<u64>,
    /// Maximum transfer rate in kilobytes per second (0 = unlimited).
    #[arg(long = "bwlimit", value_parser = non_negative)]
    pub bwlimit: Option<u64>,
    /// Wait for all the required WAL files to be archived.
    #[arg(short = 'w', long = "wait")]
    pub wait: bool,
    /// The time, in seconds, spent waiting for the required WAL files to be archived before timing out.
    #[arg(long = "wait-timeout", value_parser = non_negative)]
    pub wait_timeout: Option<u64>,
    /// Interval, in seconds, of the heartbeat query kept on the PostgreSQL session (0 disables).
    #[arg(long = "keepalive-interval", value_parser = non_negative)]
    pub keepalive_interval: Option<u64>,
    /// A name which can be used to reference this backup in barman commands.
    #[arg(long = "name", value_name = "BACKUP_NAME", value_parser = backup_name)]
    pub name: Option<String>,
    /// Forces the creation of the backup manifest file for the rsync backup method.
    #[arg(long = "manifest", overrides_with = "no_manifest")]
    pub manifest: bool,
    /// Disables the creation of the backup manifest file for the rsync backup method.
    #[arg(long = "no-manifest", overrides_with = "manifest")]
    pub no_manifest: bool,
    /// Time limit, in seconds, for the check run before the backup.
    #[arg(long = "check-timeout", value_parser = non_negative)]
    pub check_timeout: Option<u64>,
}

/// Barman's `check_backup_name`.
fn backup_name(v: &str) -> Result<String, String> {
    if v.is_empty() {
        return Err("Backup name cannot be empty".into());
    }
    if crate::catalog::backups::is_backup_id(v) {
        return Err(format!("Backup name '{v}' is not allowed: backup ID"));
    }
    if [
        "latest",
        "last",
        "oldest",
        "first",
        "last-failed",
        "latest-full",
        "last-full",
        "auto",
    ]
    .contains(&v)
    {
        return Err(format!("Backup name '{v}' is not allowed: reserved word"));
    }
    Ok(v.to_string())
}

/// `switch-wal` options.
#[derive(Debug, Args)]
pub struct SwitchWal {
    #[command(flatten)]
    pub servers: Servers,
    /// Forces the switch of a WAL by executing a checkpoint before.
    #[arg(long)]
    pub force: bool,
    /// Wait for one WAL file to be archived.
    #[arg(long)]
    pub archive: bool,
    /// The time, in seconds, the archiver will wait for a new WAL file to be archived before timing out.
    #[arg(long = "archive-timeout", value_name = "TIMEOUT", default_value = "30", value_parser = non_negative)]
    pub archive_timeout: u64,
}

/// `restore` (alias `recover`) options, as Barman's argparse defines them.
#[derive(Debug, Args)]
pub struct Restore {
    /// Specifies the server name for the command.
    pub server_name: String,
    /// Specifies the backup ID to restore.
    pub backup_id: String,
    /// The directory where the new server is created.
    pub destination_directory: String,
    /// Target timeline.
    #[arg(long = "target-tli", value_parser = target_tli)]
    pub target_tli: Option<String>,
    /// Target time. You can use any valid unambiguous representation, e.g. "YYYY-MM-DD HH:MM:SS.mmm".
    #[arg(long = "target-time")]
    pub target_time: Option<String>,
    /// Target transaction ID.
    #[arg(long = "target-xid")]
    pub target_xid: Option<String>,
    /// Target LSN (Log Sequence Number).
    #[arg(long = "target-lsn")]
    pub target_lsn: Option<String>,
    /// Target name created previously with pg_create_restore_point() function call.
    #[arg(long = "target-name")]
    pub target_name: Option<String>,
    /// End recovery as soon as a consistent state is reached.
    #[arg(long = "target-immediate")]
    pub target_immediate: bool,
    /// Set target to be non inclusive.
    #[arg(long = "exclusive")]
    pub exclusive: bool,
    /// Tablespace relocation rule.
    #[arg(long = "tablespace", value_name = "NAME:LOCATION")]
    pub tablespace: Vec<String>,
    /// Activates remote recovery through this secure shell command (e.g. "ssh postgres@db2").
    #[arg(long = "remote-ssh-command", value_name = "SSH_COMMAND")]
    pub remote_ssh_command: Option<String>,
    /// A staging directory in the target host for WAL files when performing PITR.
    #[arg(long = "staging-wal-directory")]
    pub staging_wal_directory: Option<String>,
    /// Maximum transfer rate in kilobytes per second (0: no limit).
    #[arg(long = "bwlimit", value_name = "KBPS", value_parser = non_negative)]
    pub bwlimit: Option<u64>,
    /// Number of retries after an error if base backup copy fails.
    #[arg(long = "retry-times", value_parser = non_negative)]
    pub retry_times: Option<u64>,
    /// Wait time after a failed base backup copy, before retrying.
    #[arg(long = "retry-sleep", value_parser = non_negative)]
    pub retry_sleep: Option<u64>,
    /// Disable base backup copy retry logic.
    #[arg(long = "no-retry")]
    pub no_retry: bool,
    /// Run the copy in parallel using NJOBS processes.
    #[arg(short = 'j', long = "jobs", value_name = "NJOBS", value_parser = positive)]
    pub jobs: Option<u64>,
    /// The time period in seconds over which a single batch of jobs will be started.
    #[arg(long = "jobs-start-batch-period", value_parser = positive)]
    pub jobs_start_batch_period: Option<u64>,
    /// The maximum number of Rsync jobs to start in a single batch.
    #[arg(long = "jobs-start-batch-size", value_parser = positive)]
    pub jobs_start_batch_size: Option<u64>,
    /// Enable the get-wal option during the recovery.
    #[arg(long = "get-wal", overrides_with = "no_get_wal")]
    pub get_wal: bool,
    /// Disable the get-wal option during recovery.
    #[arg(long = "no-get-wal", overrides_with = "get_wal")]
    pub no_get_wal: bool,
    /// Copy .partial WAL files, if any, to the recovery destination (only with --no-get-wal).
    #[arg(long = "partial-wal")]
    pub partial_wal: bool,
    /// Enable network compression during remote recovery.
    #[arg(
        long = "network-compression",
        overrides_with = "no_network_compression"
    )]
    pub network_compression: bool,
    /// Disable network compression during remote recovery.
    #[arg(
        long = "no-network-compression",
        overrides_with = "network_compression"
    )]
    pub no_network_compression: bool,
    /// What the server does once the recovery target is reached.
    #[arg(long = "target-action", value_parser = ["pause", "shutdown", "promote"])]
    pub target_action: Option<String>,
    /// Enable standby mode when starting the restored PostgreSQL instance.
    #[arg(long = "standby-mode")]
    pub standby_mode: bool,
    /// Where compressed backup files are staged during the recovery (deprecated).
    #[arg(long = "recovery-staging-path")]
    pub recovery_staging_path: Option<String>,
    /// Where incremental backups are combined during the recovery (deprecated).
    #[arg(long = "local-staging-path")]
    pub local_staging_path: Option<String>,
    /// A path where intermediate files are staged during restore.
    #[arg(long = "staging-path")]
    pub staging_path: Option<String>,
    /// Whether --staging-path is a local or remote path.
    #[arg(long = "staging-location", value_parser = ["local", "remote"])]
    pub staging_location: Option<String>,
    /// Copy mode for pg_combinebackup when combining incremental backups.
    #[arg(long = "combine-mode", value_parser = ["copy", "link", "clone", "copy-file-range"])]
    pub combine_mode: Option<String>,
    /// File to which recovery options are added for PostgreSQL 12+ (default: postgresql.auto.conf).
    #[arg(long = "recovery-conf-filename")]
    pub recovery_conf_filename: Option<String>,
    /// Port number to use in the restore command when invoking barman-wal-restore.
    #[arg(long = "recovery-option-port")]
    pub recovery_option_port: Option<String>,
    /// Custom restore command overriding Barman's default (get-wal mode only).
    #[arg(long = "restore-command")]
    pub restore_command: Option<String>,
    /// Enable delta restore mode.
    #[arg(long = "delta-restore", overrides_with = "no_delta_restore")]
    pub delta_restore: bool,
    /// Disable delta restore mode.
    #[arg(long = "no-delta-restore", overrides_with = "delta_restore")]
    pub no_delta_restore: bool,
    /// Instance where the disks recovered from the snapshots are attached.
    #[arg(long = "snapshot-recovery-instance")]
    pub snapshot_recovery_instance: Option<String>,
    /// Zone of the snapshot recovery (deprecated: --gcp-zone).
    #[arg(long = "snapshot-recovery-zone")]
    pub snapshot_recovery_zone: Option<String>,
    /// Zone containing the instance and disks for the snapshot recovery.
    #[arg(long = "gcp-zone")]
    pub gcp_zone: Option<String>,
    /// Azure resource group of a snapshot recovery.
    #[arg(long = "azure-resource-group")]
    pub azure_resource_group: Option<String>,
    /// AWS region of a snapshot recovery.
    #[arg(long = "aws-region")]
    pub aws_region: Option<String>,
}

/// Barman's `check_tli`: `current`, `latest` or a positive integer.
fn target_tli(v: &str) -> Result<String, String> {
    match v {
        "current" | "latest" => Ok(v.to_string()),
        _ => positive(v).map(|n| n.to_string()),
    }
}

fn positive(v: &str) -> Result<u64, String> {
    match v.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n as u64),
        Ok(_) => Err(format!("'{v}' is not a valid positive integer")),
        Err(_) => Err(format!("'{v}' is not a valid input")),
    }
}

fn non_negative(v: &str) -> Result<u64, String> {
    match v.parse::<i64>() {
        Ok(n) if n >= 0 => Ok(n as u64),
        _ => Err(format!("'{v}' is not a valid non negative integer")),
    }
}

/// `list-files --target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFilesTarget {
    Standalone,
    Data,
    Wal,
    Full,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List available servers, with useful information.
    #[command(name = "list-servers", visible_alias = "list-server")]
    ListServers {
        /// Machine readable output.
        #[arg(long)]
        minimal: bool,
    },
    /// Show all configuration parameters for the specified servers.
    #[command(name = "show-servers", visible_alias = "show-server")]
    ShowServers(Servers),
    /// Check if the server configuration is working.
    Check {
        #[command(flatten)]
        servers: Servers,
        /// Nagios plugin compatible output.
        #[arg(long)]
        nagios: bool,
        /// Maximum execution time for the check command (seconds, 0 = none).
        #[arg(long = "check-timeout", value_name = "CHECK_TIMEOUT")]
        check_timeout: Option<u64>,
    },
    /// Shows live information and status of the PostgreSQL server.
    Status(Servers),
    /// Diagnostic command (for support and problems detection purpose).
    Diagnose {
        /// Include the source file which provides the effective value for each configuration option.
        #[arg(long = "show-config-source")]
        show_config_source: bool,
    },
    /// Clean up the lock directory of every unused lock file.
    #[command(name = "lock-directory-cleanup")]
    LockDirectoryCleanup,

    // ---- Not implemented yet: parsed, then refused with a clear message.
    /// Run maintenance tasks (global command).
    Cron {
        /// Keep the stdout and the stderr streams attached to Barman subprocesses.
        #[arg(long = "keep-descriptors")]
        keep_descriptors: bool,
    },
    /// Execute maintenance operations on WAL files for a given server.
    #[command(name = "archive-wal")]
    ArchiveWal {
        /// Specifies the server name for the command.
        server_name: String,
    },
    /// Receive a WAL file from SERVER_NAME and securely store it in the incoming directory.
    #[command(name = "put-wal")]
    PutWal {
        /// Specifies the server name for the command.
        server_name: String,
        /// Test the connection and configuration, ready to receive WAL files.
        #[arg(short = 't', long = "test")]
        test: bool,
    },
    /// Retrieve WAL_NAME file from SERVER_NAME archive.
    #[command(name = "get-wal")]
    GetWal(GetWal),
    /// Execute the switch-wal command on the target server.
    #[command(name = "switch-wal", visible_alias = "switch-xlog")]
    SwitchWal(SwitchWal),
    /// Rebuild the WAL file database guessing it from the disk content.
    #[command(name = "rebuild-xlogdb")]
    RebuildXlogdb(Servers),
    /// Start a receive-wal process. The process uses the streaming protocol to receive WAL files from the PostgreSQL server.
    #[command(name = "receive-wal")]
    ReceiveWal(ReceiveWal),
    /// Perform a full backup for the given server (supports 'all').
    Backup(Box<Backup>),
    /// List available backups for the given server (supports 'all').
    #[command(name = "list-backups", visible_alias = "list-backup")]
    ListBackups {
        #[command(flatten)]
        servers: Servers,
        /// Machine readable output.
        #[arg(long)]
        minimal: bool,
    },
    /// Show detailed information about a particular backup.
    #[command(name = "show-backup", visible_alias = "show-backups")]
    ShowBackup {
        /// Specifies the server name for the command.
        server_name: String,
        /// Specifies the backup ID.
        backup_id: String,
    },
    /// List all the files for a particular backup.
    #[command(name = "list-files")]
    ListFiles {
        /// Specifies the server name for the command.
        server_name: String,
        /// Specifies the backup ID.
        backup_id: String,
        /// Possible values are: data (just the data files), standalone (base backup files, including required WAL files), wal (just WAL files between the beginning of base backup and the following one (if any) or the end of the log) and full (same as data + wal). Defaults to standalone.
        #[arg(long, value_enum, default_value_t = ListFilesTarget::Standalone)]
        target: ListFilesTarget,
        /// Also includes empty directories in the list.
        #[arg(long = "list-empty-directories")]
        list_empty_directories: bool,
    },
    /// Delete a backup.
    Delete {
        /// Specifies the server name for the command.
        server_name: String,
        /// Specifies the backup ID.
        backup_id: String,
    },
    /// Tag the specified backup so that it will never be deleted.
    Keep {
        /// Specifies the server name for the command.
        server_name: String,
        /// Specifies the backup ID.
        backup_id: String,
        /// Remove the keep annotation.
        #[arg(short = 'r', long)]
        release: bool,
        /// Return the keep status of the backup.
        #[arg(short = 's', long)]
        status: bool,
        /// Keep this backup with the specified recovery target.
        #[arg(long, value_parser = ["full", "standalone"])]
        target: Option<String>,
    },
    /// Make sure that all the required WAL files to check the consistency of a physical backup (that is, from the beginning to the end of the full backup) are correctly archived.
    #[command(name = "check-backup")]
    CheckBackup {
        /// Specifies the server name for the command.
        server_name: String,
        /// Specifies the backup ID.
        backup_id: String,
    },
    /// Verify a backup for the given server and backup id.
    #[command(name = "verify-backup", visible_alias = "verify")]
    VerifyBackup {
        /// Specifies the server name for the command.
        server_name: String,
        /// Specifies the backup ID.
        backup_id: String,
    },
    /// Generate a manifest-backup for the given server and backup id.
    #[command(name = "generate-manifest")]
    GenerateManifest {
        /// Specifies the server name for the command.
        server_name: String,
        /// Specifies the backup ID.
        backup_id: String,
    },
    /// Restore a server at a given time, name, LSN or xid.
    #[command(visible_alias = "recover")]
    Restore(Box<Restore>),
    /// Check if the WAL archive of the specified server can be safely used for a new server.
    #[command(name = "check-wal-archive")]
    CheckWalArchive {
        /// Specifies the server name for the command.
        server_name: String,
        /// The earliest timeline whose WALs should cause the check to fail.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        timeline: Option<u32>,
    },
    /// Shows live information and status of any streaming client.
    #[command(name = "replication-status")]
    ReplicationStatus {
        #[command(flatten)]
        servers: Servers,
        /// Machine readable output.
        #[arg(long)]
        minimal: bool,
        /// Possible values are: 'hot-standby' (only hot standby servers), 'wal-streamer' (only WAL streaming clients, such as pg_receivewal), 'all' (any of them). Defaults to all.
        #[arg(long, default_value = "all", value_parser = ["hot-standby", "wal-streamer", "all"])]
        target: String,
        /// Possible values are: backup-host (list clients using the backup conninfo of a server) or wal-host (list clients using the WAL streaming conninfo of a server). Defaults to backup-host.
        #[arg(long, default_value = "backup-host", value_parser = ["backup-host", "wal-host"])]
        source: String,
    },
    /// List all the active subprocesses started by the specified server.
    #[command(name = "list-processes", visible_alias = "list-process")]
    ListProcesses {
        /// Specifies the server name.
        server_name: String,
    },
    /// Terminate a Barman server subprocess specified by task name.
    #[command(name = "terminate-process")]
    TerminateProcess {
        /// Specifies the server name.
        server_name: String,
        /// The task name to terminate (e.g. backup, receive-wal).
        task: String,
    },
    /// Change the active configuration for a server by applying a named model on top of it, or by resetting the active model.
    #[command(name = "config-switch")]
    ConfigSwitch {
        /// Specifies the name of the server which configuration should be overriden by the model.
        server_name: String,
        /// Specifies the name of the model which configuration should override the server configuration. This is an optional argument and will not be used when called with the '--reset' flag.
        model_name: Option<String>,
        /// Indicates that we should unapply the currently active model for the server.
        #[arg(long)]
        reset: bool,
    },
    /// Receives a set of configuration changes in json format and applies them.
    #[command(name = "config-update")]
    ConfigUpdate {
        /// specifies the configuration changes to apply, in json format
        json_changes: String,
    },
    /// Export a backup for the given server and backup ID to a tarball.
    #[command(name = "export-backup")]
    ExportBackup {
        /// specifies the server name for the command
        server_name: String,
        /// specifies the backup ID to export
        backup_id: String,
        /// directory where the exported tarball will be saved
        output_directory: String,
        /// if specified, compress the exported tarball using the given algorithm (default: no compression)
        #[arg(long, value_parser = ["gzip", "bzip2", "xz"])]
        compression: Option<String>,
        /// compression level for the specified algorithm, if any. Valid levels are 1-9 for gzip/bzip2, 0-9 for xz (default: algorithm default level)
        #[arg(long = "compression-level", value_name = "COMPRESSION_LEVEL")]
        compression_level: Option<i64>,
    },
    /// Import a previously exported backup tarball into the Barman catalog.
    #[command(name = "import-backup")]
    ImportBackup {
        /// specifies the server name for the command
        server_name: String,
        /// path to the exported backup tarball to import
        input_tarball: String,
    },
    /// Output the internal synchronisation status. Used to sync_backup with a passive node.
    #[command(name = "sync-info")]
    SyncInfo {
        /// Specifies the server name for the command.
        server_name: String,
        /// Specifies the name of the latest WAL read.
        last_wal: Option<String>,
        /// The last position read from xlog database (in bytes).
        #[arg(value_parser = positive_u64)]
        last_position: Option<u64>,
        /// Execute the sync-info on the configured primary node (if set).
        #[arg(long)]
        primary: bool,
    },
    /// Command that synchronises a backup from a master to a passive node.
    #[command(name = "sync-backup")]
    SyncBackup {
        /// Specifies the server name for the command.
        server_name: String,
        /// Specifies the backup ID to be copied on the passive node.
        backup_id: String,
    },
    /// Command that synchronises WAL files from a master to a passive node.
    #[command(name = "sync-wals")]
    SyncWals {
        /// Specifies the server name for the command.
        server_name: String,
    },
    #[command(name = "cloud-wal-archive", hide = true)]
    CloudWalArchive(NotYet),
    #[command(name = "cloud-wal-restore", hide = true)]
    CloudWalRestore(NotYet),
}

impl Command {
    /// The Barman name of a command barman-rs does not implement yet.
    pub fn not_yet(&self) -> Option<&'static str> {
        Some(match self {
            Command::CloudWalArchive(_) => "cloud-wal-archive",
            Command::CloudWalRestore(_) => "cloud-wal-restore",
            _ => return None,
        })
    }
}
