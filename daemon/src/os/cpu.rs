//! Keeping a worker on one CPU (`cpu_affinity`).
//!
//! Why: a plugin whose request threads take turns on one lock of its own
//! (an embedded Python's GIL) pays for every hand-over between threads
//! on different CPUs: a cross-CPU wake-up each time the lock passes, many
//! per request. On one CPU the hand-over is a local switch; the threads
//! could not run Python at the same time anyway.
//!
//! Promises: only CPUs the daemon itself may use are chosen (its affinity
//! mask, as systemd's CPUAffinity= or a cpuset leave it); the listener's
//! workers are spread over them by `slot` (master/spawn.rs: the workers
//! of earlier listeners that may be kept on one CPU, plus the worker's
//! index), so two such workers land on different CPUs when there are two; the mask is set on the calling
//! thread (the worker's main one, before the plugin's create), so every
//! thread it starts and every process it forks from then on inherit it.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

/// Keep this process (its calling, only, thread) on one of the CPUs it
/// may use now, chosen by `slot`. Returns (the CPU, how many it could use).
pub fn keep_on_one(slot: usize) -> Result<(usize, usize), String> {
    let me = Pid::from_raw(0);
    let allowed = sched_getaffinity(me).map_err(|e| format!("sched_getaffinity: {e}"))?;
    let cpus: Vec<usize> = (0..CpuSet::count())
        .filter(|&c| allowed.is_set(c).unwrap_or(false))
        .collect();
    let Some(&cpu) = cpus.get(slot % cpus.len().max(1)) else {
        return Err("the daemon may use no CPU (empty affinity mask)".into());
    };
    let mut one = CpuSet::new();
    one.set(cpu).map_err(|e| format!("CPU {cpu}: {e}"))?;
    sched_setaffinity(me, &one).map_err(|e| format!("sched_setaffinity(CPU {cpu}): {e}"))?;
    Ok((cpu, cpus.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(set: &CpuSet) -> Vec<usize> {
        (0..CpuSet::count())
            .filter(|&c| set.is_set(c).unwrap_or(false))
            .collect()
    }

    /// Protects: slot k gets the k-th CPU the process may use (in turn),
    /// and the calling thread's mask then holds that CPU alone. Each slot
    /// runs on a thread of its own (an affinity set with pid 0 is the
    /// calling thread's), so the test runner keeps its own mask.
    #[test]
    fn slots_take_the_allowed_cpus_in_turn_and_the_mask_is_set() {
        let allowed = listed(&sched_getaffinity(Pid::from_raw(0)).expect("affinity"));
        for slot in 0..3 {
            let (got, now) = std::thread::spawn(move || {
                let got = keep_on_one(slot);
                let now = listed(&sched_getaffinity(Pid::from_raw(0)).expect("affinity"));
                (got, now)
            })
            .join()
            .expect("thread");
            let want = allowed[slot % allowed.len()];
            assert_eq!(got, Ok((want, allowed.len())), "slot {slot}");
            assert_eq!(now, vec![want], "slot {slot}");
        }
    }
}
