//! Malformed configs against the real binary: every file in
//! `tests/corpus/bad-configs/*.toml` (syntax, types, ranges, addresses,
//! CIDRs, unknown keys in every table, duplicates across drop-ins, paths
//! that are folders, unix paths too long, bad encodings) is rejected by
//! `sockhostd --check -c FILE` with exit status 1 and a message naming the
//! file and line (or file and key); nothing panics. Also: a config path
//! that is a folder or missing, and a few hundred mutated configs (none may
//! panic, whatever they say).
//!
//! Corpus format: the first line is `# expect: TOKEN...`. A token `L:C`
//! must appear as `FILE:L:C` (FILE the case itself); `dropins/X.toml:L:C`
//! as that drop-in's path with `:L:C`; anything else (a key such as
//! `listener.mixin`, or a "quoted phrase") must appear as written. Cases
//! run on a copy of the corpus folder next to an empty `libfake.so`, so
//! relative handler paths resolve.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/bad-configs")
}

/// A copy of the corpus (drop-ins included) with the fake handler.
fn corpus_copy() -> (TestDir, PathBuf) {
    let dir = TestDir::new("bad-configs");
    copy_tree(&corpus(), &dir.path);
    dir.write("libfake.so", "");
    let path = dir.path.clone();
    (dir, path)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read corpus") {
        let entry = entry.expect("corpus entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// `sockhostd --check -c PATH`: (exit status, stderr).
fn check(config: &Path) -> (i32, String) {
    let (code, _out, err) = run_cli(&[
        "--check",
        "-c",
        &config.display().to_string(),
        "--log",
        "stderr",
    ]);
    (code, err)
}

/// The tokens of an `# expect:` line: words, or "quoted phrases" (with
/// `\"` for a quote inside).
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut phrase = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => phrase.extend(chars.next()),
                    '"' => break,
                    c => phrase.push(c),
                }
            }
            out.push(phrase);
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
            out.push(word);
        }
    }
    out
}

/// What a token must look like in stderr, for the case at `case`.
fn expected_text(token: &str, case: &Path, root: &Path) -> String {
    let is_position = |s: &str| {
        let mut parts = s.split(':');
        let ok = |p: Option<&str>| {
            p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
    };
    if is_position(token) {
        return format!("{}:{token}", case.display());
    }
    if let Some((file, at)) = token.split_once(".toml:") {
        if is_position(at) {
            return format!("{}:{at}", root.join(format!("{file}.toml")).display());
        }
    }
    token.to_string()
}

/// Protects: every malformed config is refused up front, with exit 1, a
/// message that names the file and line (or the file and key) and says
/// what is wrong, and no panic.
#[test]
fn every_malformed_config_in_the_corpus_is_rejected_with_its_file_line_and_key() {
    let (_dir, root) = corpus_copy();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("read corpus copy")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let bytes = std::fs::read(case).expect("read case");
        let first = String::from_utf8_lossy(bytes.split(|&b| b == b'\n').next().unwrap_or(&[]))
            .into_owned();
        let Some(expect) = first.strip_prefix("# expect:") else {
            failures.push(format!("{}: no `# expect:` first line", case.display()));
            continue;
        };
        let (code, err) = check(case);
        let mut problems = Vec::new();
        if code != 1 {
            problems.push(format!("exit status {code}, expected 1"));
        }
        if err.contains("panicked") {
            problems.push("panicked".to_string());
        }
        let names_a_file = err.contains(&case.display().to_string())
            || err.contains(&root.join("dropins").display().to_string());
        if !names_a_file {
            problems.push("the message names no config file".to_string());
        }
        for token in tokens(expect) {
            let want = expected_text(&token, case, &root);
            if !err.contains(&want) {
                problems.push(format!("missing {want:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}: {}\n{err}",
                case.display(),
                problems.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Protects: the token reader used above (a broken one would pass
/// everything).
#[test]
fn expect_lines_are_read_as_positions_keys_and_phrases() {
    let t = tokens(r#" 6:9 listener.mixin "expected one of \"sync\"" dropins/x.toml:1:2"#);
    assert_eq!(
        t,
        [
            "6:9",
            "listener.mixin",
            "expected one of \"sync\"",
            "dropins/x.toml:1:2"
        ]
    );
    let (case, root) = (Path::new("/c/a.toml"), Path::new("/c"));
    assert_eq!(expected_text("6:9", case, root), "/c/a.toml:6:9");
    assert_eq!(
        expected_text("dropins/x.toml:1:2", case, root),
        "/c/dropins/x.toml:1:2"
    );
    assert_eq!(
        expected_text("listener.mixin", case, root),
        "listener.mixin"
    );
    assert_eq!(expected_text("1.5:3", case, root), "1.5:3");
}

/// Protects: a config path that is a folder, or missing, is exit 1 with
/// the path named (for `--check` and for a real start alike).
#[test]
fn a_config_path_that_is_a_folder_or_missing_is_refused_naming_it() {
    let dir = TestDir::new("cfg-folder");
    let folder = dir.join("conf.toml");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let missing = dir.join("missing.toml");
    for path in [&folder, &missing] {
        let (code, err) = check(path);
        assert_eq!(code, 1, "{}: {err}", path.display());
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("cannot read config file"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        let (code, _, err) = run_cli(&["-c", &path.display().to_string(), "--log", "stderr"]);
        assert_eq!(code, 1, "start: {err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}

/// Protects: whatever bytes a config holds, `--check` ends with 0 or 1 and
/// never panics: a valid config mutated byte by byte, spliced, cut short,
/// and with TOML's punctuation sprinkled in.
#[test]
fn mutated_configs_never_panic_the_checker() {
    let dir = TestDir::new("mutated");
    dir.write("libfake.so", "");
    let seed = "[daemon]\nshutdown_timeout = 1.5\nstrict_plugin_permissions = false\n\n\
                [[listener]]\nname = \"m\"\nfamily = \"inet\"\ntype = \"stream\"\n\
                address = \"127.0.0.1:0\"\nmixin = \"thread\"\nhandler = \"libfake.so\"\n\
                max_threads = 4\nallow = [\"127.0.0.0/8\"]\nrate_limit_per_source = 5\n\
                refuse_message = \"busy\\r\\n\"\n[listener.config]\ngreeting = \"hi\"\n";
    let punctuation = b"[]{}=\"'.,#\n\\:-+0eE_";
    let mut rng = Rng(0x5eed_cafe_f00d_1234);
    let mut panics = Vec::new();
    for i in 0..120 {
        let mut bytes = seed.as_bytes().to_vec();
        for _ in 0..(1 + rng.below(6)) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] = punctuation[rng.below(punctuation.len())],
                1 => bytes[at] = rng.next() as u8,
                2 => bytes.truncate(at.max(1)),
                _ => {
                    let from = rng.below(bytes.len());
                    let len = rng.below(40).min(bytes.len() - from);
                    let piece = bytes[from..from + len].to_vec();
                    let at = at.min(bytes.len());
                    bytes.splice(at..at, piece);
                }
            }
        }
        let path = dir.join(&format!("m{i}.toml"));
        std::fs::write(&path, &bytes).expect("write");
        let (code, err) = check(&path);
        if err.contains("panicked") || !(code == 0 || code == 1) {
            panics.push(format!(
                "case {i} (exit {code}): {:?}\n{err}",
                String::from_utf8_lossy(&bytes)
            ));
        }
    }
    assert!(panics.is_empty(), "{}", panics.join("\n"));
}
