//! `[daemon] include` drop-ins: order, globs, and errors that name the drop-in.

use super::{assert_error, tcp, Scratch};

fn include(patterns: &str) -> String {
    format!("[daemon]\ninclude = [{patterns}]\n")
}

#[test]
fn dropins_add_listeners_in_sorted_order_after_the_main_file() {
    let s = Scratch::new();
    s.write("conf.d/20-b.toml", &tcp("b", 7002));
    s.write(
        "conf.d/10-a.toml",
        &format!("{}\n{}", tcp("a1", 7001), tcp("a2", 7003)),
    );
    s.write("conf.d/.hidden.toml", "this is not toml");
    s.write("conf.d/notes.txt", "ignored");
    let text = format!(
        "{}{}",
        include("\"conf.d/*.toml\", \"none.d/*.toml\""),
        tcp("main", 7000)
    );
    let c = s.parse(&text).expect("valid");
    let names: Vec<&str> = c.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["main", "a1", "a2", "b"]);
    assert_eq!(
        c.listeners[1].defined_at.file,
        s.dir.join("conf.d/10-a.toml")
    );
    assert_eq!(c.listeners[2].defined_at.line, 9);
    assert_eq!(
        c.listeners[3].handler,
        s.dir.join("libp.so"),
        "handlers stay relative to plugin_dir"
    );
}

#[test]
fn a_unix_path_in_a_dropin_is_relative_to_the_dropin_folder() {
    let s = Scratch::new();
    let body = super::listener("u", "unix", "stream", "u.sock", "sync");
    s.write("conf.d/u.toml", &body);
    let c = s.parse(&include("\"conf.d/u.toml\"")).expect("valid");
    assert_eq!(
        c.listeners[0].address,
        crate::config::Address::Unix(s.dir.join("conf.d/u.sock"))
    );
    assert_eq!(
        c.listeners[0].handler,
        s.dir.join("libp.so"),
        "handlers stay relative to plugin_dir"
    );
}

#[test]
fn the_main_file_matched_by_its_own_glob_is_skipped() {
    let s = Scratch::new();
    let text = format!("{}{}", include("\"*.toml\""), tcp("main", 7000));
    s.write("sockhost.toml", &text);
    let c = s.parse(&text).expect("valid");
    assert_eq!(c.listeners.len(), 1);
}

#[test]
fn duplicate_name_across_files_names_both_locations() {
    let s = Scratch::new();
    let dropin = s.write("conf.d/a.toml", &format!("\n{}", tcp("echo", 7001)));
    let main = format!("{}{}", include("\"conf.d/*.toml\""), tcp("echo", 7000));
    let err = s.fail(&main);
    assert_error(
        &err,
        &dropin,
        3,
        "listener.name",
        "duplicate listener name \"echo\"",
    );
    let first = format!("{}:4:8", s.main_file().display());
    assert!(
        err.message.contains(&format!("already defined at {first}")),
        "{err}"
    );
}

#[test]
fn daemon_table_in_a_dropin_is_refused_naming_the_dropin() {
    let s = Scratch::new();
    let dropin = s.write(
        "conf.d/a.toml",
        &format!("{}\n[daemon]\nshutdown_timeout = 1\n", tcp("a", 7001)),
    );
    let err = s.fail(&include("\"conf.d/*.toml\""));
    assert_error(
        &err,
        &dropin,
        9,
        "daemon",
        "only allowed in the main config file",
    );
}

#[test]
fn missing_literal_include_is_an_error_but_an_empty_glob_is_not() {
    let s = Scratch::new();
    let err = s.fail(&include("\"conf.d/*.toml\", \"extra.toml\""));
    assert_error(&err, &s.main_file(), 2, "daemon.include", "does not exist");
    assert!(
        err.message
            .contains(&s.dir.join("extra.toml").display().to_string()),
        "{err}"
    );
}

#[test]
fn a_bad_glob_is_an_error_at_its_entry() {
    let s = Scratch::new();
    let err = s.fail(&include("\"conf.d/*.toml\",\n  \"conf.d/[\""));
    assert_error(
        &err,
        &s.main_file(),
        3,
        "daemon.include",
        "bad glob pattern \"conf.d/[\"",
    );
}

#[test]
fn errors_inside_a_dropin_name_the_dropin_line_and_key() {
    let s = Scratch::new();
    let dropin = s.write(
        "conf.d/bad.toml",
        &format!("{}workerz = 2\n", tcp("a", 7001)),
    );
    let err = s.fail(&include("\"conf.d/*.toml\""));
    assert_error(
        &err,
        &dropin,
        8,
        "listener.workerz",
        "unknown key `workerz`",
    );
}

#[test]
fn unknown_top_level_key_in_a_dropin_lists_what_is_allowed() {
    let s = Scratch::new();
    let dropin = s.write("conf.d/bad.toml", "[listeners]\nname = \"x\"\n");
    let err = s.fail(&include("\"conf.d/*.toml\""));
    assert_error(
        &err,
        &dropin,
        1,
        "listeners",
        "expected `daemon` or `listener`",
    );
}

#[test]
fn duplicate_address_across_files_is_refused() {
    let s = Scratch::new();
    let dropin = s.write("conf.d/a.toml", &tcp("second", 7000));
    let err = s.fail(&format!(
        "{}{}",
        include("\"conf.d/*.toml\""),
        tcp("first", 7000)
    ));
    assert_error(
        &err,
        &dropin,
        5,
        "listener.address",
        "already used by listener \"first\"",
    );
}
