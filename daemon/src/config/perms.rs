//! Plugin file permission check, in the manner of sshd's StrictModes.
//!
//! Owns [`check_plugin_permissions`]: a plugin may be loaded only when
//! nobody but root or the daemon's user can change it. Promises: the file
//! and every folder above it (both along the path as given and along the
//! path with symlinks resolved) are checked; the reason names the offending
//! path. Never changes permissions and never opens the file.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

const GROUP_WRITE: u32 = 0o020;
const WORLD_WRITE: u32 = 0o002;
const STICKY: u32 = 0o1000;

/// Refuse a plugin that someone other than root or `daemon_uid` could
/// replace: a group- or world-writable file, a file owned by another user,
/// or a folder above it that is owned by another user, or group- or
/// world-writable without the sticky bit. `Err` holds the reason.
pub fn check_plugin_permissions(path: &Path, daemon_uid: u32) -> Result<(), String> {
    let given = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let real = fs::canonicalize(&given).map_err(|e| format!("{}: {e}", given.display()))?;
    check_file(&real, daemon_uid)?;
    check_folders(&real, daemon_uid)?;
    if given != real {
        check_folders(&given, daemon_uid)?;
    }
    Ok(())
}

fn check_file(file: &Path, daemon_uid: u32) -> Result<(), String> {
    let meta = fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", file.display()));
    }
    check_owner(file, &meta, daemon_uid)?;
    if meta.mode() & WORLD_WRITE != 0 {
        return Err(format!("{} is world-writable", file.display()));
    }
    if meta.mode() & GROUP_WRITE != 0 {
        return Err(format!("{} is group-writable", file.display()));
    }
    Ok(())
}

fn check_folders(file: &Path, daemon_uid: u32) -> Result<(), String> {
    for folder in file.ancestors().skip(1) {
        check_folder(folder, daemon_uid)?;
    }
    Ok(())
}

fn check_folder(folder: &Path, daemon_uid: u32) -> Result<(), String> {
    let meta = fs::metadata(folder).map_err(|e| format!("folder {}: {e}", folder.display()))?;
    check_owner(folder, &meta, daemon_uid)?;
    if meta.mode() & STICKY != 0 {
        return Ok(());
    }
    if meta.mode() & WORLD_WRITE != 0 {
        return Err(format!(
            "folder {} is world-writable (and not sticky)",
            folder.display()
        ));
    }
    if meta.mode() & GROUP_WRITE != 0 {
        return Err(format!(
            "folder {} is group-writable (and not sticky)",
            folder.display()
        ));
    }
    Ok(())
}

fn check_owner(path: &Path, meta: &fs::Metadata, daemon_uid: u32) -> Result<(), String> {
    let uid = meta.uid();
    if uid == 0 || uid == daemon_uid {
        return Ok(());
    }
    Err(format!(
        "{} is owned by uid {uid}, not by root or the daemon's uid {daemon_uid}",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    /// A fresh folder (mode 0755) under the temp folder, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir =
                std::env::temp_dir().join(format!("sockhost-perms-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).expect("create scratch folder");
            chmod(&dir, 0o755);
            Scratch(dir)
        }
        fn plugin(&self, sub: &str, mode: u32) -> PathBuf {
            let path = self.0.join(sub).join("libp.so");
            fs::create_dir_all(path.parent().expect("has parent")).expect("create folder");
            fs::write(&path, b"x").expect("write plugin");
            chmod(&path, mode);
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }

    fn me() -> u32 {
        nix::unistd::getuid().as_raw()
    }

    #[test]
    fn private_plugin_is_accepted() {
        let s = Scratch::new("ok");
        let p = s.plugin("lib", 0o644);
        chmod(&s.0.join("lib"), 0o755);
        assert_eq!(check_plugin_permissions(&p, me()), Ok(()));
    }

    #[test]
    fn world_writable_file_is_refused() {
        let s = Scratch::new("ww");
        let p = s.plugin("lib", 0o646);
        chmod(&s.0.join("lib"), 0o755);
        let reason = check_plugin_permissions(&p, me()).expect_err("must refuse");
        assert_eq!(reason, format!("{} is world-writable", p.display()));
    }

    #[test]
    fn group_writable_file_is_refused() {
        let s = Scratch::new("gw");
        let p = s.plugin("lib", 0o664);
        chmod(&s.0.join("lib"), 0o755);
        let reason = check_plugin_permissions(&p, me()).expect_err("must refuse");
        assert!(reason.contains("group-writable"), "{reason}");
    }

    #[test]
    fn group_writable_folder_is_refused_and_named() {
        let s = Scratch::new("gwd");
        let p = s.plugin("lib", 0o644);
        let folder = s.0.join("lib");
        chmod(&folder, 0o775);
        let reason = check_plugin_permissions(&p, me()).expect_err("must refuse");
        assert!(
            reason.starts_with(&format!("folder {} is group-writable", folder.display())),
            "{reason}"
        );
    }

    #[test]
    fn sticky_world_writable_folder_is_accepted() {
        let s = Scratch::new("sticky");
        let p = s.plugin("lib", 0o644);
        chmod(&s.0.join("lib"), 0o1777);
        assert_eq!(check_plugin_permissions(&p, me()), Ok(()));
    }

    #[test]
    fn symlink_in_a_writable_folder_is_refused() {
        let s = Scratch::new("link");
        let p = s.plugin("lib", 0o644);
        chmod(&s.0.join("lib"), 0o755);
        let open = s.0.join("open");
        fs::create_dir(&open).expect("mkdir");
        chmod(&open, 0o777);
        let link = open.join("libp.so");
        std::os::unix::fs::symlink(&p, &link).expect("symlink");
        let reason = check_plugin_permissions(&link, me()).expect_err("must refuse");
        assert!(
            reason.contains(&format!("folder {} is world-writable", open.display())),
            "{reason}"
        );
    }

    #[test]
    fn file_owned_by_another_user_is_refused() {
        let s = Scratch::new("owner");
        let p = s.plugin("lib", 0o644);
        chmod(&s.0.join("lib"), 0o755);
        let daemon_uid = if me() == 0 {
            std::os::unix::fs::chown(&p, Some(4242), None).expect("chown as root");
            4343
        } else {
            me() + 1
        };
        let reason = check_plugin_permissions(&p, daemon_uid).expect_err("must refuse");
        assert!(
            reason.starts_with(&format!("{} is owned by uid", p.display())),
            "{reason}"
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let reason = check_plugin_permissions(Path::new("/nonexistent/libp.so"), 0)
            .expect_err("must refuse");
        assert!(reason.starts_with("/nonexistent/libp.so:"), "{reason}");
    }
}
