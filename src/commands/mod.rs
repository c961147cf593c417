//! One file per subcommand: orchestration only. Each takes the [`Ctx`]
//! (configuration + output) and reports through `ctx.out`; the exit status
//! comes from what was reported.

mod archive_wal;
mod backup;
mod check;
mod check_backup;
mod check_wal_archive;
mod config_switch;
mod config_update;
mod cron;
pub mod delete;
mod diagnose;
mod export_backup;
mod generate_manifest;
mod get_wal;
mod import_backup;
mod keep;
pub mod list_backups;
mod list_files;
mod list_servers;
mod put_wal;
mod rebuild_xlogdb;
mod receive_wal;
mod replication_status;
mod restore;
mod show_backup;
mod show_servers;
mod status;
mod switch_wal;
mod sync;
mod verify_backup;

use crate::cli::Command;
use crate::config::{Config, ServerConfig};
use crate::output::Output;

pub struct Ctx {
    pub config: Config,
    pub out: Output,
}

/// What a single-server command does with an inactive server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inactive {
    Error,
    Skip,
    Serve,
}

/// A name given on the command line, resolved (None: unknown server).
pub type Selected<'a> = (String, Option<&'a ServerConfig>);

impl Ctx {
    /// Barman's `get_server_list`: `all` alone or names, deduplicated and
    /// sorted; inter-server path clashes stop the command. Prints the
    /// warnings Barman prints when it builds each selected server.
    pub fn select(&mut self, names: Option<&[String]>) -> Option<Vec<String>> {
        if !self.config.global_errors.is_empty() {
            for e in self.config.global_errors.clone() {
                self.out.error(&e);
            }
            return None;
        }
        let mut list: Vec<String> = match names {
            None => self.config.servers.keys().cloned().collect(),
            Some(n) if n.iter().any(|s| s == "all") => {
                if n.len() != 1 {
                    self.out
                        .error("You cannot use 'all' with other server names");
                }
                self.config.servers.keys().cloned().collect()
            }
            Some(n) => n.to_vec(),
        };
        list.sort();
        list.dedup();
        for name in &list {
            if let Some(s) = self.config.servers.get(name) {
                for w in s.warnings.clone() {
                    self.out.warning(&w);
                }
            }
        }
        Some(list)
    }

    /// Barman's `get_server` for single-server commands: `all` refused,
    /// unknown, inactive and disabled servers reported as Barman does.
    /// `inactive`: whether an inactive server is an error, is skipped (with
    /// Barman's notice), or is served (get-wal).
    pub fn server(&mut self, name: &str, inactive: Inactive) -> Option<ServerConfig> {
        self.server_with(name, inactive, true)
    }

    /// [`Ctx::server`] for commands Barman runs on inactive and disabled
    /// servers alike (`get_server(..., skip_disabled=False,
    /// disabled_is_error=False)`: show-backup, list-files).
    pub fn server_lenient(&mut self, name: &str) -> Option<ServerConfig> {
        self.server_with(name, Inactive::Serve, false)
    }

    fn server_with(
        &mut self,
        name: &str,
        inactive: Inactive,
        disabled_is_error: bool,
    ) -> Option<ServerConfig> {
        if name == "all" {
            self.out
                .error("You cannot use 'all' in a single server context");
            return None;
        }
        let names = self.select(Some(&[name.to_string()]))?;
        let name = names.first()?;
        let Some(cfg) = self.config.servers.get(name).cloned() else {
            self.out.error(&format!("Unknown server '{name}'"));
            return None;
        };
        if !cfg.active() {
            match inactive {
                Inactive::Error => {
                    self.out.error(&format!("Inactive server: {name}"));
                    return None;
                }
                Inactive::Skip => {
                    self.out.info(&format!("Skipping inactive server '{name}'"));
                    return None;
                }
                Inactive::Serve => {}
            }
        }
        if cfg.disabled() && disabled_is_error {
            // Barman reports only the first reason (it returns inside its loop).
            if let Some(first) = cfg.msg_list.first() {
                self.out.error(first);
            }
            return None;
        }
        self.report_unsupported(name);
        Some(cfg)
    }

    /// Barman's `get_server_list(skip_inactive=True)` followed by its loop
    /// with `manage_server_command`: inactive servers are announced first
    /// (while the list is built), then each remaining name in order yields
    /// its configuration, or nothing after "Unknown server" or a disabled
    /// server's first reason has been reported.
    pub fn active_servers(&mut self, names: &[String]) -> Vec<ServerConfig> {
        let Some(list) = self.select(Some(names)) else {
            return Vec::new();
        };
        let mut kept = Vec::new();
        for name in list {
            match self.config.servers.get(&name) {
                Some(cfg) if !cfg.active() => {
                    self.out.info(&format!("Skipping inactive server '{name}'"));
                }
                other => kept.push((name, other.cloned())),
            }
        }
        let mut out = Vec::new();
        for (name, cfg) in kept {
            match cfg {
                None => self.out.error(&format!("Unknown server '{name}'")),
                Some(cfg) if cfg.disabled() => {
                    if let Some(first) = cfg.msg_list.first() {
                        self.out.error(first);
                    }
                }
                Some(cfg) => {
                    self.report_unsupported(&name);
                    out.push(cfg);
                }
            }
        }
        out
    }

    /// Warns about options barman-rs accepts but does not act on yet.
    pub fn report_unsupported(&mut self, server: &str) {
        let Some(s) = self.config.servers.get(server) else {
            return;
        };
        if !s.unsupported.is_empty() {
            let list = s.unsupported.join(", ");
            self.out.warning(&format!(
                "barman-rs does not support these settings of server '{server}' yet, they have no effect: {list}"
            ));
        }
    }
}

/// Every command but those that only show the configuration reads or
/// writes the catalog, so none runs without barman_home (`check` reports
/// it as a failed check instead).
fn touches_catalog(command: &Command) -> bool {
    !matches!(
        command,
        Command::ListServers { .. }
            | Command::ShowServers(_)
            | Command::Diagnose { .. }
            | Command::Check { .. }
    )
}

/// Runs one command; returns the process exit status.
pub fn run(ctx: &mut Ctx, command: Command) -> i32 {
    if let Some(name) = command.not_yet() {
        ctx.out.error(&format!(
            "barman-rs does not implement the '{name}' command yet"
        ));
        ctx.out.close();
        return 2;
    }
    if touches_catalog(&command) {
        if let Err(e) = crate::catalog::require_home(&ctx.config.barman_home) {
            ctx.out.error(&e.to_string());
            return ctx.out.close().max(1);
        }
    }
    match command {
        Command::ListServers { minimal } => list_servers::run(ctx, minimal),
        Command::ShowServers(s) => show_servers::run(ctx, &s.server_name),
        Command::Check {
            servers,
            nagios,
            check_timeout,
        } => check::run(ctx, &servers.server_name, nagios, check_timeout),
        Command::Status(s) => status::run(ctx, &s.server_name),
        Command::Diagnose { show_config_source } => diagnose::run(ctx, show_config_source),
        Command::ArchiveWal { server_name } => archive_wal::run(ctx, &server_name),
        Command::Backup(args) => backup::run(ctx, *args),
        Command::Keep {
            server_name,
            backup_id,
            release,
            status,
            target,
        } => keep::run(
            ctx,
            &server_name,
            &backup_id,
            target.as_deref(),
            status,
            release,
        ),
        Command::ListBackups { servers, minimal } => {
            list_backups::run(ctx, &servers.server_name, minimal)
        }
        Command::ShowBackup {
            server_name,
            backup_id,
        } => show_backup::run(ctx, &server_name, &backup_id),
        Command::ListFiles {
            server_name,
            backup_id,
            target,
            list_empty_directories,
        } => list_files::run(
            ctx,
            &server_name,
            &backup_id,
            target.into(),
            list_empty_directories,
        ),
        Command::Delete {
            server_name,
            backup_id,
        } => delete::run(ctx, &server_name, &backup_id),
        Command::CheckBackup {
            server_name,
            backup_id,
        } => check_backup::run(ctx, &server_name, &backup_id),
        Command::VerifyBackup {
            server_name,
            backup_id,
        } => verify_backup::run(ctx, &server_name, &backup_id),
        Command::GenerateManifest {
            server_name,
            backup_id,
        } => generate_manifest::run(ctx, &server_name, &backup_id),
        Command::Cron { keep_descriptors } => cron::run(ctx, keep_descriptors),
        Command::RebuildXlogdb(s) => rebuild_xlogdb::run(ctx, &s.server_name),
        Command::GetWal(args) => get_wal::run(ctx, args),
        Command::Restore(args) => restore::run(ctx, *args),
        Command::PutWal { server_name, test } => put_wal::run(ctx, &server_name, test),
        Command::SwitchWal(args) => switch_wal::run(ctx, args),
        Command::ReceiveWal(args) => receive_wal::run(ctx, args),
        Command::ExportBackup {
            server_name,
            backup_id,
            output_directory,
            compression,
            compression_level,
        } => export_backup::run(
            ctx,
            &server_name,
            &backup_id,
            &output_directory,
            compression.as_deref(),
            compression_level,
        ),
        Command::ImportBackup {
            server_name,
            input_tarball,
        } => import_backup::run(ctx, &server_name, &input_tarball),
        Command::ConfigUpdate { json_changes } => config_update::run(ctx, &json_changes),
        Command::ConfigSwitch {
            server_name,
            model_name,
            reset,
        } => config_switch::run(ctx, &server_name, model_name.as_deref(), reset),
        Command::ReplicationStatus {
            servers,
            minimal,
            target,
            source,
        } => replication_status::run(ctx, &servers.server_name, minimal, &target, &source),
        Command::CheckWalArchive {
            server_name,
            timeline,
        } => check_wal_archive::run(ctx, &server_name, timeline),
        Command::SyncInfo {
            server_name,
            last_wal,
            last_position,
            primary,
        } => sync::info(
            ctx,
            &server_name,
            last_wal.as_deref(),
            last_position,
            primary,
        ),
        Command::SyncBackup {
            server_name,
            backup_id,
        } => sync::backup(ctx, &server_name, &backup_id),
        Command::SyncWals { server_name } => sync::wals(ctx, &server_name),
        Command::ListProcesses { server_name } => receive_wal::list_processes(ctx, &server_name),
        Command::TerminateProcess { server_name, task } => {
            receive_wal::terminate_process(ctx, &server_name, &task)
        }
        Command::LockDirectoryCleanup => {
            if let Err(e) = crate::catalog::lock::cleanup(&ctx.config.lock_directory) {
                ctx.out.error(&format!(
                    "Cannot clean up lock directory {}: {e}",
                    ctx.config.lock_directory.display()
                ));
            }
        }
        _ => unreachable!("not_yet() covers every other command"),
    }
    ctx.out.close()
}
