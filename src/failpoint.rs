//! Crash injection for the crash-safety tests: with
//! `BARMAN_RS_FAILPOINT=<name>[:<n>]` in the environment, the process kills
//! itself with SIGKILL (as `kill -9` would) the n-th time (default: first)
//! it passes the point `<name>`. Without the variable this is one relaxed
//! load of a cached value.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

static ARMED: OnceLock<Option<(String, usize)>> = OnceLock::new();
static HITS: AtomicUsize = AtomicUsize::new(0);

fn armed() -> &'static Option<(String, usize)> {
    ARMED.get_or_init(|| {
        let spec = std::env::var("BARMAN_RS_FAILPOINT").ok()?;
        let (name, n) = match spec
            .rsplit_once(':')
            .filter(|(_, n)| n.parse::<usize>().is_ok())
        {
            Some((name, n)) => (name.to_string(), n.parse().ok()?),
            None => (spec, 1),
        };
        Some((name, n))
    })
}

/// Dies here if this point is armed and its count is reached.
pub fn hit(name: &str) {
    if let Some((armed, n)) = armed() {
        if armed == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 >= *n {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGKILL);
            // SIGKILL cannot be caught; this is never reached.
            std::process::abort();
        }
    }
}
