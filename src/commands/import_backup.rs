//! `barman import-backup SERVER TARBALL`: the file checks Barman's CLI
//! makes, then the import (src/export).

use std::path::Path;

use super::{Ctx, Inactive};
use crate::export::{import_backup, TransferError};

pub fn run(ctx: &mut Ctx, server: &str, tarball: &str) {
    let Some(cfg) = ctx.server(server, Inactive::Serve) else {
        return;
    };
    let path = Path::new(tarball);
    if !path.exists() {
        return ctx
            .out
            .error(&format!("Tarball file '{tarball}' does not exist"));
    }
    if !path.is_file() {
        return ctx
            .out
            .error(&format!("Tarball path '{tarball}' is not a file"));
    }
    if nix::unistd::access(path, nix::unistd::AccessFlags::R_OK).is_err() {
        return ctx
            .out
            .error(&format!("Tarball file '{tarball}' is not readable"));
    }
    if !crate::export::is_tarfile(path) {
        return ctx
            .out
            .error(&format!("File '{tarball}' is not a valid tar file"));
    }
    ctx.out.info(&format!(
        "Importing backup from '{tarball}' to server '{}'",
        cfg.name
    ));
    let lock_dir = ctx.config.lock_directory.clone();
    match import_backup(&mut ctx.out, &cfg, &lock_dir, tarball) {
        Ok(_) => {}
        Err(TransferError::Error(e)) => ctx.out.error(&e),
        Err(TransferError::Exception(e)) => ctx
            .out
            .exception(&format!("{e}\nSee log file for more details.")),
    }
}
