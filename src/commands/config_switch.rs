//! `barman config-switch SERVER [MODEL] [--reset]`: makes a configuration
//! model the server's active one (or none), then restarts its receiver so
//! the new settings take effect, as Barman's `restart_processes`.

use super::Ctx;
use crate::config::model;
use crate::streaming::process;

pub fn run(ctx: &mut Ctx, server: &str, model_name: Option<&str>, reset: bool) {
    if model_name.is_none() && !reset {
        ctx.out
            .error("Either a model name or '--reset' flag need to be given");
        return;
    }
    let Some(mut cfg) = ctx.server_lenient(server) else {
        return;
    };
    let file = cfg.path("backup_directory").join(model::ACTIVE_FILE);
    if reset {
        ctx.out.info(&format!(
            "Resetting the active model for the server {}",
            cfg.name
        ));
        if file.is_file() {
            if let Err(e) = std::fs::remove_file(&file) {
                ctx.out.error(&format!("{}: {e}", file.display()));
                return;
            }
        }
    } else if let Some(name) = model_name {
        let Some(m) = ctx.config.models.get(name).cloned() else {
            ctx.out.error(&format!("Unknown model '{name}'"));
            return;
        };
        let mut said = Vec::new();
        match model::apply(&mut cfg, &m, &mut |msg| said.push(msg)) {
            Err(e) => {
                for msg in said {
                    ctx.out.info(&msg);
                }
                ctx.out.error(&e);
                return;
            }
            Ok(applied) => {
                for msg in said {
                    ctx.out.info(&msg);
                }
                if applied {
                    let dir = cfg.path("backup_directory");
                    if let Err(e) = crate::catalog::ServerCatalog::new(&cfg)
                        .create_directory(&dir)
                        .and_then(|()| {
                            crate::durable::write_replace(&file, m.name.as_bytes(), 0o644)
                                .map_err(|e| format!("{}: {e}", file.display()))
                        })
                    {
                        ctx.out.error(&e);
                        return;
                    }
                }
            }
        }
    }
    // Barman re-reads nothing here: the receiver it restarts reads the new
    // configuration when it starts.
    let lock_dir = ctx.config.lock_directory.clone();
    let stopped = process::stop(&lock_dir, &cfg.name, "receive-wal");
    process::report(&mut ctx.out, &cfg.name, "receive-wal", stopped, false);
    if cfg.get_bool("streaming_archiver") {
        let config_file = ctx.config.file.clone();
        process::start_in_background(&mut ctx.out, &lock_dir, &config_file, &cfg.name, false);
    }
}
