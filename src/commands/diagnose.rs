//! `barman diagnose [--show-config-source]`: one JSON document describing
//! the configuration, the system and every server, for support.

use serde_json::{json, Map, Value as J};

use super::Ctx;
use crate::output::python_json;

pub fn run(ctx: &mut Ctx, show_source: bool) {
    let cfg = &ctx.config;
    let mut global = Map::new();
    for (k, v) in &cfg.global_items {
        global.insert(k.clone(), J::String(v.clone()));
    }
    global.insert(
        "barman_lock_directory".into(),
        J::String(cfg.lock_directory.display().to_string()),
    );
    global.insert(
        "lock_directory_cleanup".into(),
        J::Bool(cfg.lock_directory_cleanup),
    );
    global.insert(
        "config_changes_queue".into(),
        J::String(cfg.config_changes_queue.display().to_string()),
    );
    if show_source {
        for (k, v) in global.iter_mut() {
            *v = json!({"value": v.clone(), "source": cfg.source_of("barman", k)});
        }
    }
    let uname = nix::sys::utsname::uname().ok();
    let system = json!({
        "barman_ver": "3.19.1",
        "implementation": concat!("barman-rs ", env!("CARGO_PKG_VERSION")),
        "kernel_ver": uname.as_ref().map(|u| format!("{} {}", u.sysname().to_string_lossy(), u.release().to_string_lossy())),
        "release": std::fs::read_to_string("/etc/debian_version").ok().map(|s| format!("Debian GNU/Linux {}", s.trim())),
        "timestamp": jiff::ZonedDateTime::now().strftime("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string(),
    });
    let mut servers = Map::new();
    for (name, s) in &cfg.servers {
        let mut config = Map::new();
        for (k, v) in s.items() {
            let j = v.to_json();
            config.insert(
                k.to_string(),
                if show_source {
                    json!({"value": j, "source": s.source(k).map_or("default".to_string(), |p| p.display().to_string())})
                } else {
                    j
                },
            );
        }
        config.insert("name".into(), J::String(name.clone()));
        servers.insert(
            name.clone(),
            json!({
                "active_model": null,
                "backups": {},
                "config": config,
                "msg_list": s.msg_list,
                "status": {},
                "wals": {"last_archived_wal_per_timeline": {}},
            }),
        );
    }
    let doc = json!({
        "global": {"config": global, "system_info": system},
        "models": {},
        "servers": servers,
        "errors_list": cfg.global_errors,
    });
    ctx.out.info_nolog(&python_json(&doc));
}
