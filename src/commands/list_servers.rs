//! `barman list-servers [--minimal]`.

use serde_json::json;

use super::Ctx;

pub fn run(ctx: &mut Ctx, minimal: bool) {
    let Some(names) = ctx.select(None) else {
        return;
    };
    for name in names {
        let server = &ctx.config.servers[&name];
        let mut description = server.description().unwrap_or("").to_string();
        if !server.active() {
            description.push_str(" (inactive)");
        } else if server.disabled() {
            description.push_str(" (WARNING: disabled)");
        }
        if crate::passive::is_passive(server) {
            description.push_str(" (Passive)");
        }
        if ctx.out.is_json() {
            ctx.out
                .json_set(&name, json!({ "description": description }));
            continue;
        }
        let line = if minimal || description.is_empty() {
            name.clone()
        } else {
            format!("{name} - {description}")
        };
        ctx.out.info_nolog(&line);
    }
}
