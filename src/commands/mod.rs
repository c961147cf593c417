//! One file per subcommand: orchestration only. Each takes the [`Ctx`]
//! (configuration + output) and reports through `ctx.out`; the exit status
//! comes from what was reported.

mod check;
mod diagnose;
mod list_servers;
mod show_servers;
mod status;

use crate::cli::Command;
use crate::config::{Config, ServerConfig};
use crate::output::Output;

pub struct Ctx {
    pub config: Config,
    pub out: Output,
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

/// Runs one command; returns the process exit status.
pub fn run(ctx: &mut Ctx, command: Command) -> i32 {
    if let Some(name) = command.not_yet() {
        ctx.out.error(&format!(
            "barman-rs does not implement the '{name}' command yet"
        ));
        ctx.out.close();
        return 2;
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
