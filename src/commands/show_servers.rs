//! `barman show-servers SERVER...|all`: every option plus the live status,
//! sorted, as Python prints each value.

use std::time::Duration;

use serde_json::{Map, Value as J};

use super::Ctx;
use crate::config::types::Value;
use crate::server::Remote;

pub fn run(ctx: &mut Ctx, names: &[String]) {
    let Some(names) = ctx.select(Some(names)) else {
        return;
    };
    for name in names {
        let Some(cfg) = ctx.config.servers.get(&name).cloned() else {
            ctx.out.error(&format!("Unknown server '{name}'"));
            continue;
        };
        ctx.report_unsupported(&name);
        let timeout =
            Duration::from_secs(cfg.get_int("check_timeout").unwrap_or(30).clamp(1, 30) as u64);
        let passive = crate::passive::is_passive(&cfg);
        let remote = if passive {
            Remote::default()
        } else {
            Remote::fetch(&cfg, timeout)
        };
        let mut map = remote.to_map(&cfg);
        for (k, v) in cfg.items() {
            map.insert(k.to_string(), v.clone());
        }
        map.insert("name".into(), Value::Str(name.clone()));
        map.insert("passive_node".into(), Value::Bool(passive));
        map.insert("active_model".into(), Value::None);
        if let Value::Interval(secs) = cfg.get("last_backup_maximum_age") {
            // No backups exist yet in barman-rs's catalog reader.
            let msg = format!(
                "{} (WARNING! latest backup is No available backups old)",
                crate::output::human_duration(*secs as f64)
            );
            map.insert("last_backup_maximum_age".into(), Value::Str(msg));
        } else {
            map.insert("last_backup_maximum_age".into(), Value::Str("None".into()));
        }
        let description = if !cfg.active() {
            Some("(inactive)")
        } else if cfg.disabled() {
            Some("(WARNING: disabled)")
        } else {
            None
        };
        if ctx.out.is_json() {
            let mut obj = Map::new();
            obj.insert(
                "description".into(),
                description.map_or(J::Null, |d| J::String(d.into())),
            );
            for (k, v) in &map {
                let j = v.to_json();
                if j.is_null() && obj.contains_key(k) {
                    continue;
                }
                obj.insert(k.clone(), j);
            }
            ctx.out.json_set(&name, J::Object(obj));
            continue;
        }
        match description {
            Some(d) => ctx.out.info_nolog(&format!("Server {name} {d}:")),
            None => ctx.out.info_nolog(&format!("Server {name}:")),
        }
        for (k, v) in &map {
            ctx.out.info_nolog(&format!("\t{k}: {v}"));
        }
    }
}
