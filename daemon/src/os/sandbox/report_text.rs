//! Words for a blocked call: its name and the arguments that tell what it
//! tried (a socket's family, type and protocol; the namespaces asked for;
//! the program an execve named; the pid a ptrace aimed at).
//!
//! Owns the text only. Promises: never fails (unknown numbers are shown as
//! numbers); reading another process's memory for an execve path is best
//! effort (process_vm_readv, the same user) and only for the log line.

/// "socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP)", "execve(/bin/sh)", ...
pub fn describe(nr: i64, args: &[u64; 6], pid: u32) -> String {
    let name = syscall_name(nr);
    match nr {
        libc::SYS_socket | libc::SYS_socketpair => {
            let ty = args[1] as i32 & 0xf;
            let proto = args[2] as i32;
            let mut text = format!("{name}({}, {}", family(args[0] as i32), socktype(ty));
            match proto {
                0 => {}
                libc::IPPROTO_TCP => text.push_str(", IPPROTO_TCP"),
                libc::IPPROTO_UDP => text.push_str(", IPPROTO_UDP"),
                262 => text.push_str(", IPPROTO_MPTCP"),
                p => text.push_str(&format!(", protocol {p}")),
            }
            text.push(')');
            text
        }
        libc::SYS_unshare | libc::SYS_clone => {
            format!("{name}({})", namespaces(args[0] as u32))
        }
        libc::SYS_execve => format!("{name}({})", remote_string(pid, args[0])),
        libc::SYS_execveat => format!("{name}({})", remote_string(pid, args[1])),
        libc::SYS_ptrace => format!("{name}(request {}, pid {})", args[0] as i64, args[1] as i32),
        libc::SYS_process_vm_readv | libc::SYS_process_vm_writev => {
            format!("{name}(pid {})", args[0] as i32)
        }
        _ => format!("{name}()"),
    }
}

/// "EPERM (Operation not permitted)".
pub fn errno_name(errno: i32, err: &std::io::Error) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::ENOSYS => "ENOSYS",
        libc::EACCES => "EACCES",
        _ => "errno",
    };
    let text = err.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text);
    format!("{name} ({text})")
}

fn family(f: i32) -> String {
    match f {
        libc::AF_INET => "AF_INET".into(),
        libc::AF_INET6 => "AF_INET6".into(),
        libc::AF_UNIX => "AF_UNIX".into(),
        libc::AF_NETLINK => "AF_NETLINK".into(),
        libc::AF_PACKET => "AF_PACKET".into(),
        libc::AF_VSOCK => "AF_VSOCK".into(),
        libc::AF_ALG => "AF_ALG".into(),
        other => format!("family {other}"),
    }
}

fn socktype(t: i32) -> String {
    match t {
        libc::SOCK_STREAM => "SOCK_STREAM".into(),
        libc::SOCK_DGRAM => "SOCK_DGRAM".into(),
        libc::SOCK_RAW => "SOCK_RAW".into(),
        libc::SOCK_SEQPACKET => "SOCK_SEQPACKET".into(),
        other => format!("type {other}"),
    }
}

fn namespaces(flags: u32) -> String {
    let names = [
        (libc::CLONE_NEWUSER, "CLONE_NEWUSER"),
        (libc::CLONE_NEWNS, "CLONE_NEWNS"),
        (libc::CLONE_NEWNET, "CLONE_NEWNET"),
        (libc::CLONE_NEWPID, "CLONE_NEWPID"),
        (libc::CLONE_NEWIPC, "CLONE_NEWIPC"),
        (libc::CLONE_NEWUTS, "CLONE_NEWUTS"),
        (libc::CLONE_NEWCGROUP, "CLONE_NEWCGROUP"),
        (0x80, "CLONE_NEWTIME"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| flags & (*bit as u32) != 0)
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() {
        format!("{flags:#x}")
    } else {
        set.join("|")
    }
}

/// A NUL-ended string at `addr` in process `pid`, or the address.
fn remote_string(pid: u32, addr: u64) -> String {
    let mut buf = [0u8; 256];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` covers `buf`, which outlives the call; the kernel
    // checks the remote range and our right to read it.
    let n = unsafe { libc::process_vm_readv(pid as i32, &local, 1, &remote, 1, 0) };
    let Ok(n) = usize::try_from(n) else {
        return format!("{addr:#x}");
    };
    let bytes = buf.get(..n).unwrap_or(&[]);
    let bytes = bytes.split(|b| *b == 0).next().unwrap_or(&[]);
    String::from_utf8_lossy(bytes).into_owned()
}

fn syscall_name(nr: i64) -> String {
    use libc::*;
    let known: &[(i64, &str)] = &[
        (SYS_socket, "socket"),
        (SYS_socketpair, "socketpair"),
        (SYS_execve, "execve"),
        (SYS_execveat, "execveat"),
        (SYS_unshare, "unshare"),
        (SYS_clone, "clone"),
        (SYS_setns, "setns"),
        (SYS_ptrace, "ptrace"),
        (SYS_process_vm_readv, "process_vm_readv"),
        (SYS_process_vm_writev, "process_vm_writev"),
        (SYS_pidfd_getfd, "pidfd_getfd"),
        (SYS_init_module, "init_module"),
        (SYS_finit_module, "finit_module"),
        (SYS_delete_module, "delete_module"),
        (SYS_kexec_load, "kexec_load"),
        (SYS_kexec_file_load, "kexec_file_load"),
        (SYS_bpf, "bpf"),
        (SYS_perf_event_open, "perf_event_open"),
        (SYS_setuid, "setuid"),
        (SYS_setgid, "setgid"),
        (SYS_setreuid, "setreuid"),
        (SYS_setregid, "setregid"),
        (SYS_setresuid, "setresuid"),
        (SYS_setresgid, "setresgid"),
        (SYS_setgroups, "setgroups"),
        (SYS_setfsuid, "setfsuid"),
        (SYS_setfsgid, "setfsgid"),
        (SYS_capset, "capset"),
        (SYS_mount, "mount"),
        (SYS_umount2, "umount2"),
        (SYS_pivot_root, "pivot_root"),
        (SYS_chroot, "chroot"),
        (SYS_open_tree, "open_tree"),
        (SYS_move_mount, "move_mount"),
        (SYS_fsopen, "fsopen"),
        (SYS_fsconfig, "fsconfig"),
        (SYS_fsmount, "fsmount"),
        (SYS_fspick, "fspick"),
        (SYS_mount_setattr, "mount_setattr"),
        (SYS_open_by_handle_at, "open_by_handle_at"),
        (SYS_swapon, "swapon"),
        (SYS_swapoff, "swapoff"),
        (SYS_reboot, "reboot"),
        (SYS_settimeofday, "settimeofday"),
        (SYS_clock_settime, "clock_settime"),
        (SYS_clock_adjtime, "clock_adjtime"),
        (SYS_adjtimex, "adjtimex"),
        (SYS_sethostname, "sethostname"),
        (SYS_setdomainname, "setdomainname"),
        (SYS_acct, "acct"),
        (SYS_quotactl, "quotactl"),
        (SYS_userfaultfd, "userfaultfd"),
        (SYS_keyctl, "keyctl"),
        (SYS_add_key, "add_key"),
        (SYS_request_key, "request_key"),
        (SYS_io_uring_setup, "io_uring_setup"),
        (SYS_io_uring_enter, "io_uring_enter"),
        (SYS_io_uring_register, "io_uring_register"),
    ];
    known
        .iter()
        .find(|(n, _)| *n == nr)
        .map_or_else(|| format!("syscall {nr}"), |(_, s)| (*s).to_owned())
}
