//! Barman's hook scripts: `<phase>_<name>` options run through the shell
//! with Barman's environment (`BARMAN_VERSION`, `BARMAN_SERVER`,
//! `BARMAN_CONFIGURATION`, `BARMAN_HOOK`, `BARMAN_RETRY`, `BARMAN_PHASE`,
//! `BARMAN_ERROR` and the operation's own variables). A hook never fails the
//! operation, except a retry hook returning 63 (ABORT_STOP) in a pre phase.
//! Retry hooks run until they return 0, 62 (ABORT_CONTINUE) or 63, with
//! Barman's pauses: 3 s between tries, 60 s after every 5 failures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::cli::VERSION_LINE;
use crate::config::ServerConfig;

pub const EXIT_ABORT_CONTINUE: i32 = 62;
pub const EXIT_ABORT_STOP: i32 = 63;

/// A retry hook asked to stop the operation (exit status 63).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortStop {
    pub script: String,
}

/// The hook scripts of one server, for one operation (`archive`, ...).
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    server: String,
    config_file: PathBuf,
    path_prefix: Option<String>,
    /// (option name, script) for every configured script.
    scripts: Vec<(String, String)>,
}

impl Hooks {
    /// The `pre_`/`post_` `<name>_script` and `<name>_retry_script` of `cfg`.
    pub fn new(cfg: &ServerConfig, config_file: &Path, name: &str) -> Hooks {
        let mut scripts = Vec::new();
        for phase in ["pre", "post"] {
            for kind in ["script", "retry_script"] {
                let key = format!("{phase}_{name}_{kind}");
                if let Some(s) = options_value(cfg, &key) {
                    scripts.push((key, s));
                }
            }
        }
        Hooks {
            server: cfg.name.clone(),
            config_file: config_file.to_path_buf(),
            path_prefix: cfg.get_str("path_prefix").map(str::to_string),
            scripts,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    fn script(&self, key: &str) -> Option<&str> {
        self.scripts
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, s)| s.as_str())
    }

    /// Runs the phase's plain script then its retry script ("pre"), or the
    /// retry script then the plain one ("post"), as Barman orders them.
    pub fn run(
        &self,
        phase: &str,
        name: &str,
        env: &[(&str, String)],
        error: Option<&str>,
    ) -> Result<(), AbortStop> {
        let plain = format!("{phase}_{name}_script");
        let retry = format!("{phase}_{name}_retry_script");
        let hook_plain = format!("{name}_script");
        let hook_retry = format!("{name}_retry_script");
        if phase == "pre" {
            self.once(&plain, &hook_plain, phase, env, error, false);
            self.retrying(&retry, &hook_retry, phase, env, error)
        } else {
            if let Err(stop) = self.retrying(&retry, &hook_retry, phase, env, error) {
                log::warn!(
                    "Ignoring stop request after receiving abort (exit code {EXIT_ABORT_STOP}) from post-{name} retry hook script: {}",
                    stop.script
                );
            }
            self.once(&plain, &hook_plain, phase, env, error, false);
            Ok(())
        }
    }

    fn once(
        &self,
        key: &str,
        hook: &str,
        phase: &str,
        env: &[(&str, String)],
        error: Option<&str>,
        retry: bool,
    ) -> Option<i32> {
        let script = self.script(key)?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script);
        cmd.env(
            "BARMAN_VERSION",
            VERSION_LINE.split(' ').next().unwrap_or_default(),
        )
        .env("BARMAN_SERVER", &self.server)
        .env("BARMAN_CONFIGURATION", &self.config_file)
        .env("BARMAN_HOOK", hook)
        .env("BARMAN_RETRY", if retry { "1" } else { "0" })
        .env("BARMAN_PHASE", phase);
        for (k, v) in env {
            cmd.env(k, v);
        }
        if let Some(e) = error {
            cmd.env("BARMAN_ERROR", e);
        }
        if let Some(prefix) = &self.path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            cmd.env("PATH", format!("{prefix}:{path}"));
        }
        match cmd.output() {
            Ok(out) => {
                let status = out.status.code().unwrap_or(-1);
                if status != 0 {
                    log::warn!(
                        "{script} returned {status}\nOutput details:\n{}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                Some(status)
            }
            Err(e) => {
                log::error!("Exception running {hook}: {e}");
                None
            }
        }
    }

    fn retrying(
        &self,
        key: &str,
        hook: &str,
        phase: &str,
        env: &[(&str, String)],
        error: Option<&str>,
    ) -> Result<(), AbortStop> {
        let Some(script) = self.script(key) else {
            return Ok(());
        };
        let mut attempts = 1;
        loop {
            match self.once(key, hook, phase, env, error, true) {
                Some(0) => return Ok(()),
                Some(EXIT_ABORT_CONTINUE) => {
                    log::warn!("{script} was aborted (got exit status {EXIT_ABORT_CONTINUE}, Barman resumes)");
                    return Ok(());
                }
                Some(EXIT_ABORT_STOP) => {
                    log::error!("{script} was aborted (got exit status {EXIT_ABORT_STOP}, Barman requested to stop)");
                    return Err(AbortStop {
                        script: script.to_string(),
                    });
                }
                _ if attempts <= 5 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_secs(3));
                }
                _ => {
                    attempts = 1;
                    std::thread::sleep(Duration::from_secs(60));
                }
            }
        }
    }
}

fn options_value(cfg: &ServerConfig, key: &str) -> Option<String> {
    cfg.get_str(key)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
}
