//! SIGHUP: re-read the configuration and switch generations atomically.
//!
//! Listener identity is its `name`. A listener whose settings, plugin file
//! and the files its plugin named with `depends_on` (ABI 1.1: a Python
//! handler's modules, say) are unchanged keeps its workers. Changed and added listeners get a
//! new generation of workers; only when every one of them reported ready
//! are the old ones told to drain. Any failure (config, bind, plugin,
//! `create`) rolls the whole reload back: the new workers are killed, newly
//! bound sockets closed, and the old generation keeps serving untouched.
//! Sockets of kept addresses stay open in the master across the switch, so
//! the kernel queues connections and nothing is refused.

use crate::config::{self, Config};
use crate::master::{bind_all, Master};
use crate::transport;
use nix::sys::signal::{kill, Signal};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// Identity of a plugin file: replacing it (by rename or in place) changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: Option<SystemTime>,
}

impl FileId {
    pub fn of(path: &Path) -> Option<FileId> {
        let m = std::fs::metadata(path).ok()?;
        Some(FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.modified().ok(),
        })
    }
}

/// The files a listener's plugin said it depends on, with their identity
/// when its workers reported ready.
#[derive(Debug, Clone, Default)]
pub struct Depends(Vec<(PathBuf, Option<FileId>)>);

impl Depends {
    pub fn of<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> Depends {
        let mut seen: Vec<(PathBuf, Option<FileId>)> = Vec::new();
        for p in paths {
            if !seen.iter().any(|(q, _)| q == p) {
                seen.push((p.clone(), FileId::of(p)));
            }
        }
        Depends(seen)
    }

    /// True when every file is as it was (a file that appeared, vanished,
    /// or was replaced or edited counts as a change).
    pub fn unchanged(&self) -> bool {
        self.0.iter().all(|(p, id)| FileId::of(p) == *id)
    }
}

/// What a reload changes, by listener name.
#[derive(Debug, Default)]
struct Plan {
    added: Vec<String>,
    changed: Vec<String>,
    removed: Vec<String>,
    kept: Vec<String>,
    /// Listeners (added or changed) that need a socket bound anew.
    rebind: Vec<String>,
}

impl Master {
    fn plan(&self, new: &Config) -> Plan {
        let mut plan = Plan::default();
        let (old_d, new_d) = (&self.config.daemon, &new.daemon);
        if old_d.user != new_d.user || old_d.group != new_d.group {
            tracing::warn!("[daemon] user/group changed: privileges were dropped at start, so this takes a restart");
        }
        // Workers carry the daemon settings they started with (shutdown
        // timeout, plugin checks): a change restarts every listener.
        let daemon_changed = old_d.shutdown_timeout != new_d.shutdown_timeout
            || old_d.strict_plugin_permissions != new_d.strict_plugin_permissions;
        for l in &new.listeners {
            match self.config.listeners.iter().find(|o| o.name == l.name) {
                None => {
                    plan.added.push(l.name.clone());
                    plan.rebind.push(l.name.clone());
                }
                Some(old) => {
                    let same_plugin = self.plugin_ids.get(&l.name).cloned().flatten()
                        == FileId::of(&l.handler)
                        && self.depends.get(&l.name).is_none_or(Depends::unchanged);
                    if old.same_settings(l) && same_plugin && !daemon_changed {
                        plan.kept.push(l.name.clone());
                    } else {
                        plan.changed.push(l.name.clone());
                        if !old.same_socket(l) {
                            plan.rebind.push(l.name.clone());
                        }
                    }
                }
            }
        }
        for o in &self.config.listeners {
            if !new.listeners.iter().any(|l| l.name == o.name) {
                plan.removed.push(o.name.clone());
            }
        }
        plan
    }

    /// Handle SIGHUP. Never fails: a bad reload is logged and rolled back.
    pub(crate) fn reload(&mut self) {
        let t0 = Instant::now();
        let old_gen = self.generation;
        tracing::info!("SIGHUP: reloading {}", self.config.file.display());
        self.notifier.reloading();
        let outcome = self.try_reload();
        match &outcome {
            Ok(_) => self
                .notifier
                .ready(&format!("reloaded: {}", self.status_line())),
            Err(_) => self.notifier.ready(&format!(
                "reload failed, nothing changed: {}",
                self.status_line()
            )),
        }
        match outcome {
            Ok(plan) => tracing::info!(
                generation = self.generation,
                "reload done in {:.1} ms: generation {}, added [{}], removed [{}], changed [{}], kept [{}]",
                t0.elapsed().as_secs_f64() * 1000.0,
                self.generation,
                plan.added.join(", "),
                plan.removed.join(", "),
                plan.changed.join(", "),
                plan.kept.join(", ")
            ),
            Err(why) => tracing::error!(
                generation = old_gen,
                "reload failed, nothing changed (generation {old_gen} keeps serving): {why}"
            ),
        }
    }

    fn try_reload(&mut self) -> Result<Plan, String> {
        let new = config::load(&self.config.file).map_err(|e| e.to_string())?;
        let plan = self.plan(&new);
        let to_bind = new
            .listeners
            .iter()
            .filter(|l| plan.rebind.contains(&l.name));
        let new_sockets = bind_all(to_bind).map_err(|e| e.to_string())?;
        let mut start: Vec<String> = plan.added.clone();
        start.extend(plan.changed.iter().cloned());
        self.generation += 1;
        let interrupt = -1;
        let workers = match self.start_with_sockets(&new, &start, &new_sockets, interrupt) {
            Ok(w) => w,
            Err(why) => {
                self.generation -= 1;
                for l in new
                    .listeners
                    .iter()
                    .filter(|l| new_sockets.contains_key(&l.name))
                {
                    if !self.config.listeners.iter().any(|o| o.address == l.address) {
                        transport::remove_unix_file(l);
                    }
                }
                return Err(why);
            }
        };
        self.switch(new, &plan, new_sockets, workers);
        Ok(plan)
    }

    /// The new generation is ready: let it serve, drain the old one.
    fn switch(
        &mut self,
        new: Config,
        plan: &Plan,
        new_sockets: HashMap<String, socket2::Socket>,
        workers: Vec<crate::spawn::Worker>,
    ) {
        let retire: Vec<&String> = plan.changed.iter().chain(plan.removed.iter()).collect();
        for w in self
            .workers
            .iter_mut()
            .filter(|w| retire.contains(&&w.listener))
        {
            w.draining = true;
            let _ = kill(w.pid, Signal::SIGTERM);
        }
        self.go(workers);
        for name in &plan.removed {
            self.sockets.remove(name);
            self.plugin_ids.remove(name);
            self.depends.remove(name);
            if let Some(old) = self.config.listeners.iter().find(|l| &l.name == name) {
                if !new.listeners.iter().any(|l| l.address == old.address) {
                    transport::remove_unix_file(old);
                }
            }
        }
        for (name, sock) in new_sockets {
            if let Some(old) = self.config.listeners.iter().find(|l| l.name == name) {
                if !new.listeners.iter().any(|l| l.address == old.address) {
                    transport::remove_unix_file(old);
                }
            }
            self.sockets.insert(name, sock);
        }
        self.config = new;
    }
}
