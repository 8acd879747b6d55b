//! SIGHUP: re-read the configuration and switch generations atomically.
//!
//! Listener identity is its `name`. A listener whose settings and plugin
//! file are unchanged keeps its workers. Changed and added listeners get a
//! new generation of workers; only when every one of them reported ready
//! are the old ones told to drain. Any failure (config, bind, plugin,
//! `create`) rolls the whole reload back: the new workers are killed, newly
//! bound sockets closed, and the old generation keeps serving untouched.
//! Sockets of kept addresses stay open in the master across the switch, so
//! the kernel queues connections and nothing is refused. The reload is
//! reported done once the retired workers acknowledged that they stopped
//! accepting (`retire`), so a connection made after that reaches the new
//! generation.

use super::launch::{Launch, LaunchState};
use super::retire::Retiring;
use super::spawn::Worker;
use super::{bind_all, Master};
use crate::config::{self, Config};
use crate::os::transport;
use crate::plugin::{Depends, FileId};
use nix::sys::signal::{kill, Signal};
use socket2::Socket;
use std::collections::HashMap;
use std::time::Instant;

/// A reload in flight: its new workers are loading their plugins.
pub(super) struct Pending {
    t0: Instant,
    new: Config,
    plan: Plan,
    new_sockets: HashMap<String, Socket>,
    launch: Launch,
}

/// The reload in flight, if any (starting its workers, or retiring the
/// old ones), and whether another was asked for.
#[derive(Default)]
pub(super) struct Reloads {
    pending: Option<Pending>,
    retiring: Option<Retiring>,
    queued: bool,
}

impl Reloads {
    pub fn idle(&self) -> bool {
        self.pending.is_none() && self.retiring.is_none()
    }

    pub fn retiring(&self) -> Option<&Retiring> {
        self.retiring.as_ref()
    }

    pub fn retiring_mut(&mut self) -> Option<&mut Retiring> {
        self.retiring.as_mut()
    }

    pub fn take_retiring(&mut self) -> Option<Retiring> {
        self.retiring.take()
    }

    pub fn launch(&self) -> Option<&Launch> {
        self.pending.as_ref().map(|p| &p.launch)
    }

    pub fn launch_mut(&mut self) -> Option<&mut Launch> {
        self.pending.as_mut().map(|p| &mut p.launch)
    }
}

/// What a reload changes, by listener name.
#[derive(Debug, Default)]
pub(super) struct Plan {
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
            tracing::warn!("[daemon] user/group changed: the master keeps the account it dropped to at start (a restart changes it); the workers restart as the new one");
        }
        if old_d.metrics != new_d.metrics || old_d.control_socket != new_d.control_socket {
            tracing::warn!("[daemon] metrics/control_socket changed: they are opened at start, so this takes a restart");
        }
        // Workers carry the daemon settings they started with (shutdown
        // timeout, plugin checks, account): a change restarts every listener.
        // [daemon] user/group is the account of every listener without
        // its own: a change restarts them all too.
        let daemon_changed = old_d.shutdown_timeout != new_d.shutdown_timeout
            || old_d.strict_plugin_permissions != new_d.strict_plugin_permissions
            || old_d.user != new_d.user
            || old_d.group != new_d.group;
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

    /// SIGHUP. A reload already in flight (or the first start) runs to
    /// its end first; SIGHUPs meanwhile coalesce into one more reload.
    pub(super) fn request_reload(&mut self) {
        if self.stop_deadline.is_some() {
            return;
        }
        if self.starting.is_some() || !self.reload.idle() || self.upgrade.in_flight() {
            if !self.reload.queued {
                tracing::info!("SIGHUP: a reload is in progress; another one follows it");
            }
            self.reload.queued = true;
            return;
        }
        self.begin_reload();
    }

    fn begin_reload(&mut self) {
        let t0 = Instant::now();
        self.obs.reload_started();
        tracing::info!("SIGHUP: reloading {}", self.config.file.display());
        self.notifier.reloading();
        match self.prepare_reload(t0) {
            Ok(pending) => self.reload.pending = Some(pending),
            Err(why) => self.finish_reload(t0, Err(why)),
        }
    }

    /// Load, plan, bind what is new and fork the new generation's workers;
    /// their readiness is awaited by the loop.
    fn prepare_reload(&mut self, t0: Instant) -> Result<Pending, String> {
        let new = config::load(&self.config.file).map_err(|e| e.to_string())?;
        super::accounts::log_warnings(&new);
        crate::os::identity::master_can_start(&new, true)?;
        let plan = self.plan(&new);
        let to_bind = new
            .listeners
            .iter()
            .filter(|l| plan.rebind.contains(&l.name));
        let new_sockets = bind_all(to_bind).map_err(|e| e.to_string())?;
        let mut start: Vec<String> = plan.added.clone();
        start.extend(plan.changed.iter().cloned());
        let gen = self.generation + 1;
        match self.spawn_workers(&new, &start, &new_sockets, gen) {
            Ok(workers) => Ok(Pending {
                t0,
                launch: Launch::new(workers, new.daemon.start_timeout),
                new,
                plan,
                new_sockets,
            }),
            Err(why) => {
                self.release_new_sockets(&new, &new_sockets);
                Err(why)
            }
        }
    }

    /// Switch to a reload's generation once it is ready (then wait for
    /// the retired workers' acknowledgements); roll back when one of its
    /// workers failed. Then run a reload that was asked for meanwhile.
    pub(super) fn advance_reload(&mut self) {
        let state = self.reload.pending.as_ref().map(|p| p.launch.state());
        match state {
            None => self.advance_retiring(),
            Some(LaunchState::Pending) => return,
            Some(LaunchState::Ready) => {
                if let Some(p) = self.reload.pending.take() {
                    self.record_depends(p.launch.depends());
                    let workers = p.launch.into_workers();
                    let retired = self.switch(p.new, &p.plan, p.new_sockets, workers);
                    let timeout = self.config.daemon.shutdown_timeout;
                    let r = Retiring::new(p.t0, p.plan, retired, timeout);
                    self.reload.retiring = Some(r);
                    self.advance_retiring();
                }
            }
            Some(LaunchState::Failed(why)) => {
                if let Some(p) = self.reload.pending.take() {
                    let t0 = p.t0;
                    self.roll_back(p);
                    self.finish_reload(t0, Err(why));
                }
            }
        }
        if self.reload.queued
            && self.reload.idle()
            && self.starting.is_none()
            && !self.upgrade.in_flight()
            && self.stop_deadline.is_none()
        {
            self.reload.queued = false;
            self.begin_reload();
        }
    }

    /// SIGTERM/SIGINT while a reload is in flight: drop it (one that
    /// already switched is reported done: every worker drains now).
    pub(super) fn abandon_reload(&mut self, sig: nix::sys::signal::Signal) {
        self.reload.queued = false;
        if let Some(r) = self.reload.retiring.take() {
            self.finish_reload(r.t0, Ok(r.plan));
        }
        if let Some(p) = self.reload.pending.take() {
            tracing::warn!(
                "{}: reload abandoned, generation {} unchanged",
                sig.as_str(),
                self.generation
            );
            self.roll_back(p);
        }
    }

    /// Kill a failed or abandoned reload's workers and close what it bound.
    fn roll_back(&mut self, p: Pending) {
        self.dying.extend(p.launch.abort());
        self.release_new_sockets(&p.new, &p.new_sockets);
    }

    /// Remove the unix socket files a reload bound that the old
    /// configuration does not use (the sockets close when dropped).
    fn release_new_sockets(&self, new: &Config, new_sockets: &HashMap<String, Socket>) {
        for l in new
            .listeners
            .iter()
            .filter(|l| new_sockets.contains_key(&l.name))
        {
            if !self.config.listeners.iter().any(|o| o.address == l.address) {
                transport::remove_unix_file(l);
            }
        }
    }

    /// Tell the service manager and the log how a reload ended.
    pub(super) fn finish_reload(&mut self, t0: Instant, outcome: Result<Plan, String>) {
        match &outcome {
            Ok(_) => self
                .notifier
                .ready(&format!("reloaded: {}", self.status_line())),
            Err(_) => self.notifier.ready(&format!(
                "reload failed, nothing changed: {}",
                self.status_line()
            )),
        }
        let gen = self.generation;
        let line = match outcome {
            Ok(plan) => {
                let line = format!(
                    "reload done in {:.1} ms: generation {gen}, added [{}], removed [{}], changed [{}], kept [{}]",
                    t0.elapsed().as_secs_f64() * 1000.0,
                    plan.added.join(", "),
                    plan.removed.join(", "),
                    plan.changed.join(", "),
                    plan.kept.join(", ")
                );
                tracing::info!(generation = gen, "{line}");
                Ok(line)
            }
            Err(why) => {
                let line = format!(
                    "reload failed, nothing changed (generation {gen} keeps serving): {why}"
                );
                tracing::error!(generation = gen, "{line}");
                Err(line)
            }
        };
        let names: Vec<String> = self
            .config
            .listeners
            .iter()
            .map(|l| l.name.clone())
            .collect();
        self.obs.reload_finished(&line, &names);
    }

    /// The new generation is ready: let it serve, drain the old one.
    /// Returns the workers told to drain.
    fn switch(
        &mut self,
        new: Config,
        plan: &Plan,
        new_sockets: HashMap<String, Socket>,
        workers: Vec<Worker>,
    ) -> Vec<nix::unistd::Pid> {
        let retire: Vec<&String> = plan.changed.iter().chain(plan.removed.iter()).collect();
        let retired: Vec<String> = retire.iter().map(|s| s.to_string()).collect();
        self.cancel_respawns(Some(&retired));
        let mut told = Vec::new();
        for w in self
            .workers
            .iter_mut()
            .filter(|w| retire.contains(&&w.listener) && !w.draining)
        {
            w.draining = true;
            let _ = kill(w.pid, Signal::SIGTERM);
            told.push(w.pid);
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
        self.fdstore
            .reloaded(&plan.removed, &plan.rebind, &self.sockets);
        let started: Vec<String> = plan.added.iter().chain(&plan.changed).cloned().collect();
        self.record_plugins(&new, Some(&started));
        self.generation += 1;
        self.config = new;
        told
    }
}
