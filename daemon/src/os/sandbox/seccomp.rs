//! The seccomp part of the sandbox: one BPF filter, loaded last, whose
//! blocked calls go to the reporter as user notifications.
//!
//! Hand-written BPF rather than `seccompiler`: the filter needs per-call
//! arguments tests (a socket's family, clone's namespace flags), two
//! actions (notify, and a silent ENOSYS for clone3) and a non-native
//! architecture answered with an errno where seccompiler kills; it is
//! ~40 instructions. Why user notifications and not SIGSYS (RET_TRAP):
//! programs the exec plugin runs and threads that block signals would be
//! killed by a trap they have no handler for; a notification waits in the
//! kernel for the reporter, which logs and answers with the errno
//! (`enforce`) or lets the call run (`log`, SECCOMP_USER_NOTIF_FLAG_CONTINUE).
//! Promises: never a kill; clone3 gets ENOSYS under `enforce` (glibc then
//! falls back to clone, whose flags the filter can see). Never loaded
//! before Landlock or without no_new_privs.

use crate::config::{Network, SandboxMode};
use std::os::fd::{FromRawFd, OwnedFd};

/// What `sockhostctl security` and the start line call each group.
pub const FILTER_GROUPS: [&str; 6] = [
    "namespaces (unshare, setns, clone with namespace flags)",
    "tracing (ptrace, process_vm_readv/writev, pidfd_getfd)",
    "kernel modules, kexec, bpf, perf_event_open",
    "identity (setuid family, setgroups, capset)",
    "mounts, chroot, swap, reboot, clock and host name",
    "io_uring (its operations bypass the socket and exec rules)",
];

/// When a call is blocked.
#[derive(Clone, Copy)]
enum When {
    Always,
    /// Argument 0 (low 32 bits) is not this value.
    Arg0Not(u32),
    /// Argument 0 has any of these bits.
    Arg0Any(u32),
}

/// The namespace bits of clone/unshare flags.
pub const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | 0x80) as u32; // CLONE_NEWTIME

#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: u32 = 0xC000_003E; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: u32 = 0xC000_00B7; // AUDIT_ARCH_AARCH64

/// Calls blocked whatever the listener says.
fn always() -> Vec<(i64, When)> {
    use libc::*;
    let mut v = vec![
        (SYS_unshare, When::Arg0Any(NAMESPACE_FLAGS)),
        (SYS_clone, When::Arg0Any(NAMESPACE_FLAGS)),
        (SYS_setns, When::Always),
        (SYS_ptrace, When::Always),
        (SYS_process_vm_readv, When::Always),
        (SYS_process_vm_writev, When::Always),
        (SYS_pidfd_getfd, When::Always),
    ];
    for nr in [
        SYS_init_module,
        SYS_finit_module,
        SYS_delete_module,
        SYS_kexec_load,
        SYS_kexec_file_load,
        SYS_bpf,
        SYS_perf_event_open,
        SYS_setuid,
        SYS_setgid,
        SYS_setreuid,
        SYS_setregid,
        SYS_setresuid,
        SYS_setresgid,
        SYS_setgroups,
        SYS_setfsuid,
        SYS_setfsgid,
        SYS_capset,
        SYS_mount,
        SYS_umount2,
        SYS_pivot_root,
        SYS_chroot,
        SYS_open_tree,
        SYS_move_mount,
        SYS_fsopen,
        SYS_fsconfig,
        SYS_fsmount,
        SYS_fspick,
        SYS_mount_setattr,
        SYS_open_by_handle_at,
        SYS_swapon,
        SYS_swapoff,
        SYS_reboot,
        SYS_settimeofday,
        SYS_clock_settime,
        SYS_clock_adjtime,
        SYS_adjtimex,
        SYS_sethostname,
        SYS_setdomainname,
        SYS_acct,
        SYS_quotactl,
        SYS_userfaultfd,
        SYS_keyctl,
        SYS_add_key,
        SYS_request_key,
        // An io_uring runs socket (IORING_OP_SOCKET), open and the rest
        // without the system calls this filter sees: none at all.
        SYS_io_uring_setup,
        SYS_io_uring_enter,
        SYS_io_uring_register,
    ] {
        v.push((nr, When::Always));
    }
    #[cfg(target_arch = "x86_64")]
    for nr in [SYS_iopl, SYS_ioperm] {
        v.push((nr, When::Always));
    }
    v
}

/// Every blocked call for a listener.
fn rules(network: Network, exec: bool) -> Vec<(i64, When)> {
    let mut v = always();
    if network == Network::None {
        let unix = libc::AF_UNIX as u32;
        v.push((libc::SYS_socket, When::Arg0Not(unix)));
        v.push((libc::SYS_socketpair, When::Arg0Not(unix)));
    }
    if !exec {
        v.push((libc::SYS_execve, When::Always));
        v.push((libc::SYS_execveat, When::Always));
    }
    v
}

/// The start line's summary of the filter.
pub fn describe(mode: SandboxMode, network: Network, exec: bool) -> String {
    let verb = if mode == SandboxMode::Enforce {
        "blocks"
    } else {
        "logs (blocks nothing)"
    };
    let mut parts = Vec::new();
    if network == Network::None {
        parts.push("new sockets other than unix (EAFNOSUPPORT)".to_owned());
    }
    if !exec {
        parts.push("execve/execveat (EPERM)".to_owned());
    }
    parts.push(format!("{} (EPERM)", FILTER_GROUPS.join(", ")));
    let mut text = format!("{verb} {}", parts.join("; "));
    if mode == SandboxMode::Enforce {
        text.push_str("; clone3 answers ENOSYS (threads use clone)");
    }
    text.push_str("; other architectures EPERM");
    #[cfg(target_arch = "x86_64")]
    text.push_str(", x32 calls ENOSYS");
    text
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;

fn op(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (e as u32 & libc::SECCOMP_RET_DATA)
}

/// The BPF program.
fn program(mode: SandboxMode, network: Network, exec: bool) -> Vec<libc::sock_filter> {
    let notify = libc::SECCOMP_RET_USER_NOTIF;
    let allow = libc::SECCOMP_RET_ALLOW;
    let mut p = vec![
        op(LD_W_ABS, 0, 0, ARCH),
        op(JEQ, 1, 0, NATIVE_ARCH),
        op(RET, 0, 0, errno(libc::EPERM)),
        op(LD_W_ABS, 0, 0, NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        // x32 calls share the arch value; their numbers have bit 30 set.
        p.push(op(JGE, 0, 1, 0x4000_0000));
        p.push(op(RET, 0, 0, errno(libc::ENOSYS)));
    }
    if mode == SandboxMode::Enforce {
        p.push(op(JEQ, 0, 1, libc::SYS_clone3 as u32));
        p.push(op(RET, 0, 0, errno(libc::ENOSYS)));
    }
    // Each block starts with A = the call's number and ends in a return.
    for (nr, when) in rules(network, exec) {
        let body = match when {
            When::Always => vec![op(RET, 0, 0, notify)],
            When::Arg0Not(v) => vec![
                op(LD_W_ABS, 0, 0, ARG0_LOW),
                op(JEQ, 0, 1, v),
                op(RET, 0, 0, allow),
                op(RET, 0, 0, notify),
            ],
            When::Arg0Any(bits) => vec![
                op(LD_W_ABS, 0, 0, ARG0_LOW),
                op(JSET, 0, 1, bits),
                op(RET, 0, 0, notify),
                op(RET, 0, 0, allow),
            ],
        };
        p.push(op(JEQ, 0, body.len() as u8, nr as u32));
        p.extend(body);
    }
    p.push(op(RET, 0, 0, allow));
    p
}

/// Load the filter into this process; returns its notification fd.
pub fn install(mode: SandboxMode, network: Network, exec: bool) -> Result<OwnedFd, String> {
    let mut filter = program(mode, network, exec);
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_mut_ptr(),
    };
    // SAFETY: `prog` points at `filter`, alive across the call; the kernel
    // copies the program. no_new_privs was set by the caller.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return Err(format!(
            "sandbox: this kernel cannot load the seccomp filter with a notification fd (needs Linux 5.8): {e}"
        ));
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_lands_inside_the_program_and_it_ends_in_allow() {
        for mode in [SandboxMode::Enforce, SandboxMode::Log] {
            for network in [Network::None, Network::Any] {
                for exec in [false, true] {
                    let p = program(mode, network, exec);
                    assert!(p.len() < 4096);
                    for (i, ins) in p.iter().enumerate() {
                        if ins.code & 0x07 == libc::BPF_JMP as u16 {
                            let far = i + 1 + usize::from(ins.jt.max(ins.jf));
                            assert!(far < p.len(), "jump at {i} leaves the program");
                        }
                    }
                    let last = p.last().expect("non-empty");
                    assert_eq!((last.code, last.k), (RET, libc::SECCOMP_RET_ALLOW));
                }
            }
        }
    }
}
