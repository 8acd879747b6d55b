//! sockhost.toml(5) documents exactly the keys sockhostd accepts, and
//! exactly the `[listener.config]` keys of every plugin we ship: a key
//! cannot be added to or removed from the parser or a plugin without the
//! reference following, nor documented without being accepted.
//!
//! Neither side is a hand-kept list. The parser's keys are read from the
//! parser itself: a key it does not know is refused with the list of those
//! it does (serde's `deny_unknown_fields`, "unknown key `K`, expected one
//! of ..."), so a made-up key in each table yields that table's keys, and a
//! made-up key inside each key tells a leaf (a type error) from a sub-table
//! (its own list) and from a free-form table such as `[listener.config]`
//! (accepted). The shipped plugins are the Makefile's `PLUGINS` and
//! `OPTIONAL_PLUGINS`; a plugin that refuses unknown keys names its keys in
//! backquotes after "unknown key `K`" (`sockhostd --check` shows it), and
//! for one that ignores them, its keys are the `config.get("KEY")` calls in
//! its crate's source. The man page's layout is described at its top.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::path::Path;

/// A key no table has.
const BOGUS: &str = "zz_not_a_key";

/// One table on the way to a key: its name and whether it is an array of
/// tables (`[[listener]]`).
type Parents = Vec<(String, bool)>;

/// What the parser makes of a made-up key under the table `[path]`.
enum Answer {
    /// The table refuses it and lists its own keys.
    Table(Vec<String>),
    /// A free-form table: anything goes (`[listener.config]`).
    FreeForm,
    /// Not a table at all.
    Leaf,
}

/// The parser's message for `text`, parsed as a main config file.
fn parser_says(text: &str, dir: &TestDir) -> String {
    match sockhostd::config::parse_main(text, &dir.join("probe.toml")) {
        Ok(_) => String::new(),
        Err(e) => e.message,
    }
}

/// The words in backquotes after `after`, on its line of `text`.
fn quoted_after(text: &str, after: &str) -> Option<Vec<String>> {
    let rest = &text[text.find(after)? + after.len()..];
    let rest = rest.lines().next().unwrap_or("");
    let words = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some(words)
}

fn unknown_key_phrase() -> String {
    format!("unknown key `{BOGUS}`")
}

/// Ask the parser about the table `name` below `parents`.
fn probe(parents: &Parents, name: &str, dir: &TestDir) -> (Answer, bool) {
    let mut path: Vec<&str> = parents.iter().map(|(p, _)| p.as_str()).collect();
    let mut preamble = String::new();
    for (i, (_, array)) in parents.iter().enumerate() {
        let p = path[..=i].join(".");
        preamble += &if *array {
            format!("[[{p}]]\n")
        } else {
            format!("[{p}]\n")
        };
    }
    path.push(name);
    let p = path.join(".");
    let ask = |header: String| parser_says(&format!("{preamble}{header}\n{BOGUS} = 1\n"), dir);
    let said = ask(format!("[{p}]"));
    if let Some(keys) = quoted_after(&said, &unknown_key_phrase()) {
        return (Answer::Table(keys), false);
    }
    if !said.contains("invalid type") {
        // Taken as it is: nothing below it is the parser's business.
        return (Answer::FreeForm, false);
    }
    // Not a table: an array of tables, or a key with a value.
    match quoted_after(&ask(format!("[[{p}]]")), &unknown_key_phrase()) {
        Some(keys) => (Answer::Table(keys), true),
        None => (Answer::Leaf, false),
    }
}

/// Every key and table the parser accepts below `parents`, as dotted paths;
/// tables as `[path]`.
fn walk(parents: &Parents, keys: &[String], dir: &TestDir, out: &mut BTreeSet<String>) {
    for key in keys {
        let mut path: Vec<&str> = parents.iter().map(|(p, _)| p.as_str()).collect();
        path.push(key);
        let dotted = path.join(".");
        match probe(parents, key, dir) {
            (Answer::Leaf, _) => {
                out.insert(dotted);
            }
            (Answer::FreeForm, _) => {
                out.insert(format!("[{dotted}]"));
            }
            (Answer::Table(inner), array) => {
                out.insert(format!("[{dotted}]"));
                let mut below = parents.clone();
                below.push((key.clone(), array));
                walk(&below, &inner, dir, out);
            }
        }
    }
}

/// The keys and tables the config parser accepts.
fn parser_keys() -> BTreeSet<String> {
    let dir = TestDir::new("docs-keys");
    let said = parser_says(&format!("{BOGUS} = 1\n"), &dir);
    let top = quoted_after(&said, &unknown_key_phrase())
        .unwrap_or_else(|| panic!("the parser lists its top-level tables: {said}"));
    let mut out = BTreeSet::new();
    walk(&Vec::new(), &top, &dir, &mut out);
    out
}

/// The man page, split into what the test reads: per section (or plugin
/// subsection) the keys in bold in its `.TP` tags.
struct ManPage {
    /// `[path]` for every table section, and `path.key` for each key in it.
    keys: BTreeSet<String>,
    /// Per plugin file under `[listener.config]`, its keys.
    plugins: Vec<(String, BTreeSet<String>)>,
}

/// The bold words of a roff line such as `.BR allow ", " deny`.
fn bold_words(line: &str) -> Vec<String> {
    let (macro_name, rest) = line.split_once(' ').unwrap_or((line, ""));
    let args = roff_args(rest);
    let bold: Vec<&String> = match macro_name {
        ".B" => args.iter().collect(),
        ".BR" | ".BI" => args.iter().step_by(2).collect(),
        ".RB" | ".IB" => args.iter().skip(1).step_by(2).collect(),
        _ => Vec::new(),
    };
    bold.into_iter()
        .flat_map(|a| a.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// A roff request's arguments: words, or quoted strings.
fn roff_args(rest: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = rest.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c == ' ' {
            chars.next();
        } else if c == '"' {
            chars.next();
            args.push(chars.by_ref().take_while(|&c| c != '"').collect());
        } else {
            args.push(chars.by_ref().take_while(|&c| c != ' ').collect());
        }
    }
    args
}

fn read_man_page(text: &str) -> ManPage {
    let mut page = ManPage {
        keys: BTreeSet::new(),
        plugins: Vec::new(),
    };
    let mut table: Option<String> = None;
    let mut plugin: Option<usize> = None;
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if let Some(title) = line.strip_prefix(".SH ") {
            let title = title.trim().trim_matches('"');
            table = title
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .map(|t| t.trim_matches(|c| c == '[' || c == ']').to_owned());
            if let Some(t) = &table {
                page.keys.insert(format!("[{t}]"));
            }
            plugin = None;
        } else if let Some(title) = line.strip_prefix(".SS ") {
            if table.as_deref() == Some("listener.config") {
                let name = title.trim().trim_matches('"').to_owned();
                page.plugins.push((name, BTreeSet::new()));
                plugin = Some(page.plugins.len() - 1);
            }
        } else if *line == ".TP" {
            let Some(tag) = lines.get(i + 1) else {
                continue;
            };
            for word in bold_words(tag) {
                match (plugin, &table) {
                    (Some(p), _) => {
                        page.plugins[p].1.insert(word);
                    }
                    (None, Some(t)) => {
                        page.keys.insert(format!("{t}.{word}"));
                    }
                    (None, None) => {}
                }
            }
        }
    }
    page
}

fn man_page() -> ManPage {
    let path = workspace().join("docs/man/sockhost.toml.5");
    read_man_page(&std::fs::read_to_string(&path).expect("read sockhost.toml.5"))
}

/// Two sets as a message: what only each side has.
fn differences(parser: &BTreeSet<String>, man: &BTreeSet<String>, what: &str) -> Option<String> {
    let missing: Vec<_> = parser.difference(man).collect();
    let extra: Vec<_> = man.difference(parser).collect();
    (!missing.is_empty() || !extra.is_empty()).then(|| {
        format!(
            "{what}:\n  accepted but not in docs/man/sockhost.toml.5: {missing:?}\n  \
             in docs/man/sockhost.toml.5 but not accepted: {extra:?}"
        )
    })
}

// Every key and table the parser accepts is in sockhost.toml(5), and the page documents no other.
#[test]
fn man_page_documents_every_config_key_and_no_other() {
    let parser = parser_keys();
    for sure in [
        "[daemon]",
        "[listener]",
        "[listener.config]",
        "daemon.plugin_dir",
        "listener.type",
    ] {
        assert!(
            parser.contains(sure),
            "the parser's keys were read: {parser:?}"
        );
    }
    if let Some(diff) = differences(&parser, &man_page().keys, "config keys") {
        panic!("{diff}");
    }
}

/// The plugin files we ship: the Makefile's PLUGINS and OPTIONAL_PLUGINS.
fn shipped_plugins() -> Vec<String> {
    let makefile = std::fs::read_to_string(workspace().join("Makefile")).expect("read Makefile");
    let mut out = Vec::new();
    for var in ["PLUGINS", "OPTIONAL_PLUGINS"] {
        let line = makefile
            .lines()
            .find(|l| l.split_whitespace().next() == Some(var) && l.contains(":="))
            .unwrap_or_else(|| panic!("the Makefile sets {var}"));
        let list = line.split_once(":=").map_or("", |(_, v)| v);
        out.extend(list.split_whitespace().map(str::to_owned));
    }
    out
}

/// The crate folder under plugins/ that builds `file` (libNAME.so).
fn plugin_crate(file: &str) -> std::path::PathBuf {
    let lib = file.trim_start_matches("lib").trim_end_matches(".so");
    let plugins = workspace().join("plugins");
    let mut found = None;
    for entry in std::fs::read_dir(&plugins)
        .expect("read plugins/")
        .flatten()
    {
        let manifest = std::fs::read_to_string(entry.path().join("Cargo.toml")).unwrap_or_default();
        let name = manifest
            .lines()
            .find_map(|l| l.strip_prefix("name = \""))
            .map(|n| n.trim_end_matches('"').replace('-', "_"));
        if name.as_deref() == Some(lib) {
            found = Some(entry.path());
        }
    }
    found.unwrap_or_else(|| panic!("no crate under plugins/ builds {file}"))
}

/// `config.get("KEY")` literals in the Rust files below `dir`.
fn keys_read_in_source(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir)
        .expect("read source folder")
        .flatten()
    {
        let path = entry.path();
        if path.is_dir() {
            keys_read_in_source(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            for piece in text.split("config.get(\"").skip(1) {
                if let Some((key, _)) = piece.split_once('"') {
                    out.insert(key.to_owned());
                }
            }
        }
    }
}

/// The `[listener.config]` keys `file` accepts: the list it gives when it
/// refuses a made-up key, else the keys its source reads.
fn plugin_keys(file: &str, dir: &TestDir) -> BTreeSet<String> {
    let handler = target_dir().join(file);
    let config = format!(
        "[daemon]\nstrict_plugin_permissions = false\n\n{}[listener.config]\n{BOGUS} = 1\n",
        listener("k", "inet", "stream", "127.0.0.1:0", "sync", &handler, "")
    );
    let path = dir.write(&format!("{file}.toml"), &config);
    let (code, out, err) = run_cli(&["--check", "-c", &path.to_string_lossy()]);
    let said = format!("{out}{err}");
    match quoted_after(&said, &unknown_key_phrase()) {
        Some(keys) => keys.into_iter().collect(),
        None => {
            assert_eq!(
                code, 0,
                "{file} accepts an unknown key or names its keys: {said}"
            );
            let mut keys = BTreeSet::new();
            keys_read_in_source(&plugin_crate(file).join("src"), &mut keys);
            keys
        }
    }
}

// Every shipped plugin has its subsection under [listener.config], listing exactly the keys it accepts.
#[test]
fn man_page_documents_every_shipped_plugins_keys() {
    let shipped = shipped_plugins();
    assert!(
        shipped.iter().any(|p| p == "libsockhost_http_hello.so"),
        "{shipped:?}"
    );
    let page = man_page();
    let documented: Vec<&String> = page.plugins.iter().map(|(name, _)| name).collect();
    let dir = TestDir::new("docs-plugin-keys");
    let mut problems = Vec::new();
    for file in &shipped {
        plugin(file.trim_start_matches("lib").trim_end_matches(".so"));
        let Some((_, man)) = page.plugins.iter().find(|(name, _)| name == file) else {
            problems.push(format!("{file}: no `.SS {file}` under [listener.config]"));
            continue;
        };
        if let Some(diff) = differences(&plugin_keys(file, &dir), man, file) {
            problems.push(diff);
        }
    }
    for name in documented {
        if !shipped.contains(name) {
            problems.push(format!(
                "{name}: documented, but not a plugin the Makefile ships"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// The page reader itself: keys come from bold words of .TP tags, per section and plugin.
#[test]
fn man_page_reader_takes_bold_tag_words_per_section() {
    let page = read_man_page(
        ".SH [daemon]\n.TP\n.BR user \", \" group\nDrop to them.\n.TP\n.B metrics\nText \
         with .B words.\n.SH [[listener]]\n.TP\n.RB \"the \" name\n.SH [listener.config]\n\
         .SS libx.so\n.TP\n.B body\n.SH EXAMPLE\n.TP\n.B nothing\n",
    );
    let want: BTreeSet<String> = ["[daemon]", "daemon.user", "daemon.group", "daemon.metrics"]
        .into_iter()
        .chain(["[listener]", "listener.name", "[listener.config]"])
        .map(str::to_owned)
        .collect();
    assert_eq!(page.keys, want);
    let body: BTreeSet<String> = ["body".to_owned()].into();
    assert_eq!(page.plugins, vec![("libx.so".to_owned(), body)]);
}
