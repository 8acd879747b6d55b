//! What /proc says about the daemon: its workers and their children,
//! thread and fd counts, zombies, process states, thread names.

use super::*;

/// Direct children of `pid` (from /proc).
pub fn child_pids(pid: i32) -> Vec<i32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Thread ids of a process, from /proc.
pub fn thread_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Open fds of a process, from /proc.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Children of `pid` in state Z (zombies).
pub fn zombie_children(pid: i32) -> Vec<i32> {
    child_pids(pid)
        .into_iter()
        .filter(|c| {
            std::fs::read_to_string(format!("/proc/{c}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
                .unwrap_or(false)
        })
        .collect()
}

/// Stop aborting test plugins from writing core files (soft limit only);
/// daemons started afterwards inherit it.
pub fn no_core_dumps() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit on a live local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_CORE, &mut lim);
        lim.rlim_cur = 0;
        libc::setrlimit(libc::RLIMIT_CORE, &lim);
    }
}

/// The state letter of a process (`R`, `S`, `Z`, ...), None once it is gone.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Whether `pid` has exited (gone from /proc, or a zombie nobody reaped yet).
pub fn is_dead(pid: i32) -> bool {
    matches!(proc_state(pid), None | Some('Z') | Some('X'))
}

/// The kernel name (`comm`) of thread `tid` of process `pid`.
pub fn comm(pid: i32, tid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
        .unwrap_or_default()
        .trim_end()
        .to_string()
}

/// The live worker of daemon `master` serving listener `name`, found by its
/// process name `shd:NAME` (cut to 15 bytes, like the kernel does).
pub fn worker_of(master: i32, name: &str) -> Option<i32> {
    let mut want = format!("shd:{name}");
    want.truncate(15);
    child_pids(master)
        .into_iter()
        .find(|&w| !is_dead(w) && comm(w, w) == want)
}

/// The worker process serving listener `name` (panics with the log if none).
pub fn worker(d: &Daemon, name: &str) -> i32 {
    worker_of(d.pid(), name).unwrap_or_else(|| panic!("no worker for {name}:\n{}", d.log()))
}
