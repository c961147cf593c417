//! Configuration models (Barman 3.10+): a `model = true` section holds
//! overrides for the servers of its `cluster`; `barman config-switch`
//! makes one a server's active model, recorded in
//! `<backup_directory>/.active-model.auto` and applied at every start.

use super::types::Value;
use super::ServerConfig;

/// Where a server's active model is recorded (Barman's file).
pub const ACTIVE_FILE: &str = ".active-model.auto";

/// Options a model may not set: paths and hook scripts.
pub const BLACKLIST: &[&str] = &[
    "backup_directory",
    "basebackups_directory",
    "errors_directory",
    "incoming_wals_directory",
    "streaming_wals_directory",
    "wals_directory",
    "xlogdb_directory",
    "post_archive_retry_script",
    "post_archive_script",
    "post_backup_retry_script",
    "post_backup_script",
    "post_delete_script",
    "post_delete_retry_script",
    "post_recovery_retry_script",
    "post_recovery_script",
    "post_wal_delete_script",
    "post_wal_delete_retry_script",
    "pre_archive_retry_script",
    "pre_archive_script",
    "pre_backup_retry_script",
    "pre_backup_script",
    "pre_delete_script",
    "pre_delete_retry_script",
    "pre_recovery_retry_script",
    "pre_recovery_script",
    "pre_wal_delete_script",
    "pre_wal_delete_retry_script",
];

#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub cluster: Option<String>,
    /// The options it sets, parsed.
    pub overrides: Vec<(&'static str, Value)>,
}

/// Barman's `apply_model`: refuses a model of another cluster, skips the
/// active one, else sets each differing option, telling `say` about it.
/// Returns whether the model was applied.
pub fn apply(
    server: &mut ServerConfig,
    model: &Model,
    say: &mut dyn FnMut(String),
) -> Result<bool, String> {
    let cluster = server
        .get_str("cluster")
        .unwrap_or(&server.name)
        .to_string();
    let model_cluster = model.cluster.clone().unwrap_or_else(|| "None".into());
    if model_cluster != cluster {
        return Err(format!(
            "Model '{}' has 'cluster={model_cluster}', which is not compatible with 'cluster={cluster}' from server '{}'",
            model.name, server.name
        ));
    }
    if server.active_model.as_deref() == Some(model.name.as_str()) {
        say(format!(
            "Model '{}' is already active for server '{}', skipping...",
            model.name, server.name
        ));
        return Ok(false);
    }
    say(format!(
        "Applying model '{}' to server '{}'",
        model.name, server.name
    ));
    for (option, value) in &model.overrides {
        let old = server.get(option).clone();
        if &old != value {
            say(format!(
                "Changing value of option '{option}' for server '{}' from '{old}' to '{value}' through the model '{}'",
                server.name, model.name
            ));
            server.set(option, value.clone());
        }
    }
    server.active_model = Some(model.name.clone());
    Ok(true)
}
