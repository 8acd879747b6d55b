//! The master's account and capabilities at start: it drops to
//! `[daemon] user`/`group` keeping only what starting every listener's
//! workers takes (see os::identity), checks it holds that, and says in one
//! log line what it kept and why. Also logs the config's warnings (the
//! master's start, reload and `--check` call it). Never changes a worker.

use crate::config::Config;
use crate::os::{identity, privileges};

/// Log what the config works with but should change (old key names).
pub(crate) fn log_warnings(config: &Config) {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
}

/// Drop to `[daemon] user`/`group`, keeping only the capabilities needed
/// to start every worker as its listener's account, check they are held,
/// and say what was kept.
pub(super) fn keep_what_workers_need(config: &Config) -> std::io::Result<()> {
    let d = &config.daemon;
    let needs = identity::needs(config, &identity::of_daemon(d)?)?;
    privileges::drop_privileges(d.user.as_deref(), d.group.as_deref(), &needs.caps())?;
    identity::master_can_start(config, false).map_err(std::io::Error::other)?;
    let kept = privileges::held_caps()?;
    let me = identity::Identity::current();
    let who = format!("user {} group {}", me.user_name(), me.group_name());
    if nix::unistd::Uid::effective().is_root() {
        tracing::info!("master runs as {who} (no [daemon] user): it keeps every capability");
        return Ok(());
    }
    let names: Vec<&str> = kept.iter().map(|c| c.name()).collect();
    let mut why = Vec::new();
    if kept.contains(&privileges::Cap::NET_BIND_SERVICE) {
        why.push("binding ports below 1024 on reload".to_owned());
    }
    if let Some(l) = &needs.other_uid {
        why.push(format!(
            "starting workers as other users (listener \"{l}\")"
        ));
    }
    if let Some(l) = &needs.other_gid {
        why.push(format!(
            "starting workers as other groups (listener \"{l}\")"
        ));
    }
    if let Some(l) = &needs.negative_nice {
        why.push(format!("a negative nice (listener \"{l}\")"));
    }
    if names.is_empty() {
        tracing::info!("master runs as {who} and keeps no capability");
    } else {
        tracing::info!(
            "master runs as {who} and keeps {}: for {}",
            names.join(", "),
            why.join(", ")
        );
    }
    Ok(())
}
