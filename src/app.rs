//! Start-up, in Barman's order: read the main configuration file, become
//! `barman_user`, set up logging and output, read the included files,
//! validate, then run the command. A configuration error stops everything
//! before barman_home is touched.

use std::io::IsTerminal;

use crate::cli::{Cli, Color};
use crate::commands::{self, Ctx};
use crate::config::{Config, ConfigError};
use crate::output::Output;

/// Runs the whole program for parsed arguments; returns the exit status.
pub fn run(cli: Cli) -> i32 {
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        let _ = Cli::command().print_help();
        return 0;
    };
    let mut config = match Config::load_main(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => return config_failure(&e),
    };
    if let Err(msg) = drop_privileges(&config.barman_user) {
        eprintln!("{msg}");
        return 1;
    }
    let level_text = cli
        .log_level
        .clone()
        .unwrap_or_else(|| config.log_level.clone());
    let level = crate::logging::parse_level(&level_text);
    let log_warning = crate::logging::init(
        config.log_file.as_deref(),
        level.unwrap_or(log::LevelFilter::Info),
        config.log_format.as_deref(),
        &config.barman_home,
    );
    if let Some(w) = log_warning {
        log::warn!("{w}");
    }
    if level.is_none() {
        log::warn!("unknown log_level in config file: {level_text}");
    }
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
    };
    let out = Output::new(cli.format, cli.quiet, cli.debug, color);
    if let Err(e) = config.finish() {
        return config_failure(&e);
    }
    let mut ctx = Ctx { config, out };
    for w in std::mem::take(&mut ctx.config.warnings) {
        ctx.out.warning(&w);
    }
    commands::run(&mut ctx, command)
}

fn config_failure(e: &ConfigError) -> i32 {
    log::error!("{e}");
    match e {
        ConfigError::Missing(_) | ConfigError::NoDefault => eprintln!("{e}"),
        e if e.is_fatal() => eprintln!("FATAL: {e}"),
        e => eprintln!("ERROR: {e}"),
    }
    1
}

/// Barman's `drop_privileges`: nothing when already `user`; as root,
/// switch groups, gid, uid and HOME; otherwise refuse.
fn drop_privileges(user: &str) -> Result<(), String> {
    use nix::unistd::{getuid, setgid, setgroups, setuid, Group, User};
    let pw = match User::from_name(user) {
        Ok(Some(pw)) => pw,
        _ => {
            return Err(format!(
                "ERROR: the configured user '{user}' does not exists"
            ))
        }
    };
    if pw.uid == getuid() {
        return Ok(());
    }
    let refuse = || format!("ERROR: please run barman as '{user}' user");
    if !getuid().is_root() {
        return Err(refuse());
    }
    let mut groups: Vec<nix::unistd::Gid> = Vec::new();
    // Supplementary groups the user is a member of, then its primary group.
    if let Ok(text) = std::fs::read_to_string("/etc/group") {
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() == 4 && f[3].split(',').any(|m| m == pw.name) {
                if let Ok(Some(g)) = Group::from_name(f[0]) {
                    groups.push(g.gid);
                }
            }
        }
    }
    groups.push(pw.gid);
    setgroups(&groups).map_err(|_| refuse())?;
    setgid(pw.gid).map_err(|_| refuse())?;
    setuid(pw.uid).map_err(|_| refuse())?;
    // Still single-threaded here: nothing else reads the environment.
    std::env::set_var("HOME", &pw.dir);
    Ok(())
}
