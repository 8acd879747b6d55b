//! Checks `src/sys.rs` against `include/sockhost.h`, the ABI's source of
//! truth: a C program built from the header prints every size, offset and
//! constant, and each must equal what the Rust mirror says. A drift between
//! the two fails here instead of corrupting memory in a plugin.

use sockhost_sdk::sys::*;
use std::collections::BTreeMap;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

/// (C expression, Rust value) pairs: sizes, offsets, constants.
fn expectations() -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = Vec::new();
    macro_rules! layout {
        ($ty:ident { $($field:ident),* $(,)? }) => {
            v.push((format!("sizeof({})", stringify!($ty)), size_of::<$ty>() as u64));
            $(v.push((
                format!("offsetof({}, {})", stringify!($ty), stringify!($field)),
                offset_of!($ty, $field) as u64,
            ));)*
        };
    }
    layout!(sockhost_abi_record {
        magic,
        size,
        major,
        minor
    });
    layout!(sockhost_str { ptr, len });
    layout!(sockhost_listener {
        size,
        family,
        socktype,
        mixin,
        name,
        address,
        config_toml,
        config_dir,
        listen_fd,
        reserved1,
        log_fd,
        max_packet_size
    });
    layout!(sockhost_request {
        size,
        socktype,
        fd,
        family,
        client,
        client_addr,
        client_addr_len,
        reserved,
        data,
        data_len,
        user,
        host_private,
        proxy_tlvs,
        proxy_tlvs_len
    });
    layout!(sockhost_host {
        size,
        abi_major,
        abi_minor,
        log,
        log_enabled,
        set_error,
        reply,
        depends_on,
        take_listener,
        set_detail,
        exec_request,
        refuse_request
    });
    layout!(sockhost_plugin {
        size,
        flags,
        name,
        version,
        create,
        destroy,
        setup,
        handle,
        finish,
        verify_request,
        handle_timeout,
        service_actions,
        handle_error,
        before_fork,
        after_fork_parent,
        after_fork_child
    });
    macro_rules! constant {
        ($($name:ident),*) => { $(v.push((stringify!($name).to_string(), $name as i64 as u64));)* };
    }
    constant!(
        SOCKHOST_ABI_MAJOR,
        SOCKHOST_ABI_MINOR,
        SOCKHOST_OK,
        SOCKHOST_ERROR,
        SOCKHOST_LOG_ERROR,
        SOCKHOST_LOG_WARN,
        SOCKHOST_LOG_INFO,
        SOCKHOST_LOG_DEBUG,
        SOCKHOST_LOG_TRACE,
        SOCKHOST_MIXIN_SYNC,
        SOCKHOST_MIXIN_THREAD,
        SOCKHOST_MIXIN_FORK,
        SOCKHOST_PLUGIN_POLL_SERVICE_ACTIONS,
        SOCKHOST_PLUGIN_TRUNCATE_DATAGRAMS,
        SOCKHOST_PLUGIN_ONE_CPU
    );
    v.push(("SOCKHOST_ABI_MAGIC".into(), SOCKHOST_ABI_MAGIC));
    v
}

/// A scratch folder of one test's own: tests run in parallel, and one
/// removing a shared folder would pull it from under another.
fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sockhost-abi-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

#[test]
fn rust_mirror_matches_the_c_header() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = scratch_dir("layout");
    let exps = expectations();
    let mut c = String::from("#include <stdio.h>\n#include <stddef.h>\n#include \"sockhost.h\"\n");
    c.push_str("int main(void) {\n");
    for (expr, _) in &exps {
        c.push_str(&format!(
            "  printf(\"%s=%llu\\n\", \"{expr}\", (unsigned long long)(long long)({expr}));\n"
        ));
    }
    c.push_str("  return 0;\n}\n");
    let src = dir.join("layout.c");
    let bin = dir.join("layout");
    std::fs::write(&src, c).expect("write layout.c");
    let status = Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(manifest.join("include"))
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .status()
        .expect("run cc");
    assert!(status.success(), "the header does not compile cleanly");
    let out = Command::new(&bin).output().expect("run layout program");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let c_values: BTreeMap<&str, u64> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k, v.parse().expect("number")))
        .collect();
    let mut mismatches = Vec::new();
    for (expr, rust) in &exps {
        match c_values.get(expr.as_str()) {
            Some(c) if c == rust => {}
            other => mismatches.push(format!("{expr}: C says {other:?}, Rust says {rust}")),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        mismatches.is_empty(),
        "ABI drift:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn header_compiles_as_cplusplus_too_if_available() {
    // A plugin author may include the header from C++; make sure it parses.
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = scratch_dir("cxx");
    let src = dir.join("h.cc");
    std::fs::write(
        &src,
        "#include \"sockhost.h\"\nint main() { return SOCKHOST_OK; }\n",
    )
    .expect("write");
    let Ok(status) = Command::new("c++")
        .args(["-Wall", "-Werror", "-fsyntax-only", "-I"])
        .arg(manifest.join("include"))
        .arg(&src)
        .status()
    else {
        eprintln!("no c++ compiler; skipped");
        return;
    };
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "the header does not compile as C++");
}
