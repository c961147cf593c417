use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Run as `barman-wal-restore` / `barman-wal-archive` (symlinks): barman-cli.
    if let Some(code) = barman::walcli::dispatch() {
        return code;
    }
    let cli = barman::cli::Cli::parse();
    if cli.version {
        println!("{}", barman::cli::VERSION_LINE);
        return ExitCode::SUCCESS;
    }
    ExitCode::from(barman::app::run(cli).clamp(0, 255) as u8)
}
