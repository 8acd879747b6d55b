//! The Landlock part of `enforce`: a ruleset handling every filesystem
//! right of the ABI in force (up to the newest this code knows, 7), the
//! signal and abstract-unix-socket scopes (ABI 6), and TCP bind/connect
//! when `network = "none"` (ABI 4; seccomp stops the other families).
//!
//! Owns turning grants into Landlock rules. Promises: everything asked is
//! a hard requirement (the crate's `CompatLevel::HardRequirement`): a
//! kernel without Landlock, or older than ABI 6, fails the start with a
//! message naming what is missing. Never called in `log` mode: Landlock
//! has no log-only mode.

use super::needs::{Access, Grant};
use landlock::{
    Access as _, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

/// The newest Landlock ABI whose rights this code has been checked with.
const NEWEST: i64 = 7;

/// The ABI the running kernel offers (0: none).
pub fn kernel_abi() -> i64 {
    // SAFETY: landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    // only returns a number; no memory is passed.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            1u32,
        )
    };
    v.max(0)
}

/// Restrict this thread (and all it starts later) to `grants`. Returns the
/// ABI enforced.
pub fn restrict(grants: &[Grant], network_none: bool) -> Result<i64, String> {
    let have = kernel_abi();
    if have < 6 {
        let what = if have == 0 {
            "no Landlock (not built in or not enabled at boot: add `landlock` to the lsm= boot parameter)".to_owned()
        } else {
            format!("Landlock ABI {have}")
        };
        return Err(format!(
            "sandbox: mode = \"enforce\" needs Landlock ABI 6 (Linux 6.12) for its file rules and for scoping signals and abstract unix sockets; this kernel has {what}"
        ));
    }
    let used = have.min(NEWEST);
    let abi = if used >= 7 { ABI::V7 } else { ABI::V6 };
    let fail = |what: &str, e: &dyn std::fmt::Display| format!("sandbox: Landlock {what}: {e}");
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| fail("file rights", &e))?
        .scope(Scope::from_all(abi))
        .map_err(|e| fail("scopes", &e))?;
    if network_none {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(abi))
            .map_err(|e| fail("network rights", &e))?;
    }
    let mut created = ruleset.create().map_err(|e| fail("ruleset", &e))?;
    for g in grants {
        let fd = match PathFd::new(&g.path) {
            Ok(fd) => fd,
            // A runtime path that vanished since it was listed is no loss.
            Err(_) if !matches!(g.why, "plugin" | "read_only" | "read_write") => continue,
            Err(e) => return Err(format!("sandbox: {}: {e}", g.path.display())),
        };
        let is_dir = g.path.is_dir();
        let access = rights(g.access, abi, is_dir);
        created = created
            .add_rule(PathBeneath::new(fd, access))
            .map_err(|e| format!("sandbox: Landlock rule for {}: {e}", g.path.display()))?;
    }
    let status = created
        .restrict_self()
        .map_err(|e| fail("restrict_self", &e))?;
    if status.ruleset != RulesetStatus::FullyEnforced {
        return Err(format!(
            "sandbox: Landlock could not enforce the whole ruleset ({:?})",
            status.ruleset
        ));
    }
    Ok(used)
}

fn rights(access: Access, abi: ABI, is_dir: bool) -> BitFlags<AccessFs> {
    let read = AccessFs::ReadFile | AccessFs::ReadDir;
    let wanted = match access {
        Access::Read => read,
        Access::ReadExec => read | AccessFs::Execute,
        Access::ReadWrite => AccessFs::from_all(abi),
        Access::FileReadWrite => {
            AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate | AccessFs::IoctlDev
        }
    };
    // A rule on a file may only hold the rights that apply to files.
    if is_dir {
        wanted & AccessFs::from_all(abi)
    } else {
        wanted & AccessFs::from_file(abi)
    }
}
