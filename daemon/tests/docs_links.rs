//! The documentation holds together: every relative link in README.md and
//! docs/**/*.md names a file that exists, every `#anchor` names a heading
//! of the page it points to (by GitHub's rules for heading ids), and every
//! page under docs/ opens, right after its title, with the line saying who
//! it is for ("For ...").
//!
//! Markdown is read with pulldown-cmark, so links inside code blocks and
//! code spans are not taken for links, and reference-style links are.
//! Links with a scheme (https:, mailto:) are not followed: the tests reach
//! no network.

mod common;
use common::workspace;

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// README.md and every .md file below docs/.
fn pages() -> Vec<PathBuf> {
    fn below(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read docs folder").flatten() {
            let path = entry.path();
            if path.is_dir() {
                below(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let root = workspace();
    let mut out = vec![root.join("README.md")];
    below(&root.join("docs"), &mut out);
    out.sort();
    out
}

fn parser(text: &str) -> Parser<'_> {
    Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_FOOTNOTES)
}

/// GitHub's id for a heading's text: lower case; letters, digits, `-` and
/// `_` kept, spaces made `-`, everything else dropped.
fn slug(text: &str) -> String {
    text.trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The ids of a page's headings; a repeated one gets `-1`, `-2`, ... as on
/// GitHub.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in parser(text) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let base = slug(&heading.take().unwrap_or_default());
                let n = seen.entry(base.clone()).or_insert(0);
                out.insert(if *n == 0 {
                    base.clone()
                } else {
                    format!("{base}-{n}")
                });
                *n += 1;
            }
            _ => {}
        }
    }
    out
}

/// Every link and image target in a page.
fn links(text: &str) -> Vec<String> {
    parser(text)
        .filter_map(|event| match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some(dest_url.into_string())
            }
            _ => None,
        })
        .collect()
}

fn has_scheme(target: &str) -> bool {
    let head = target.split(['/', '#', '?']).next().unwrap_or("");
    head.contains(':')
}

/// What is wrong with `target`, linked from `page`; None when it resolves.
fn broken(page: &Path, target: &str) -> Option<String> {
    if has_scheme(target) {
        return None;
    }
    let (path, anchor) = match target.split_once('#') {
        Some((p, a)) => (p, Some(a)),
        None => (target, None),
    };
    let file = if path.is_empty() {
        page.to_path_buf()
    } else if let Some(from_root) = path.strip_prefix('/') {
        workspace().join(from_root)
    } else {
        page.parent().unwrap_or(Path::new(".")).join(path)
    };
    if !file.exists() {
        return Some(format!("{target}: no such file {}", file.display()));
    }
    let anchor = anchor?;
    if file.extension().is_none_or(|e| e != "md") {
        return Some(format!(
            "{target}: an anchor into a file that is not Markdown"
        ));
    }
    let text = std::fs::read_to_string(&file).expect("read linked page");
    let ids = anchors(&text);
    (!ids.contains(anchor))
        .then(|| format!("{target}: no heading with id `{anchor}` (has {ids:?})"))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(workspace())
        .unwrap_or(path)
        .display()
        .to_string()
}

// Every relative link and #anchor in README.md and docs/ resolves.
#[test]
fn every_link_between_pages_resolves() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = std::fs::read_to_string(&page).expect("read page");
        for target in links(&text) {
            checked += 1;
            if let Some(why) = broken(&page, &target) {
                problems.push(format!("{}: {why}", relative(&page)));
            }
        }
    }
    assert!(checked > 20, "the pages' links were read ({checked})");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

// Every page under docs/ says first, after its title, who it is for.
#[test]
fn every_docs_page_opens_with_who_it_is_for() {
    let mut problems = Vec::new();
    for page in pages().into_iter().filter(|p| !p.ends_with("README.md")) {
        let text = std::fs::read_to_string(&page).expect("read page");
        let mut events = parser(&text).skip_while(|e| !matches!(e, Event::End(TagEnd::Heading(_))));
        let title_level_one = parser(&text).find_map(|e| match e {
            Event::Start(Tag::Heading { level, .. }) => Some(level == HeadingLevel::H1),
            _ => None,
        });
        let first_words = events.find_map(|e| match e {
            Event::Text(t) => Some(t.into_string()),
            _ => None,
        });
        let opens_with_for = first_words
            .as_deref()
            .is_some_and(|t| t.starts_with("For "));
        if title_level_one != Some(true) || !opens_with_for {
            problems.push(format!(
                "{}: expected a `# Title`, then a paragraph starting \"For ...\" (found {first_words:?})",
                relative(&page)
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// The slug and anchor rules match GitHub's on the cases our pages use.
#[test]
fn heading_ids_follow_githubs_rules() {
    let text = "# Behind a load balancer: the PROXY protocol\n## `--log` and SIGUSR1\n\
                ## Which Python\n## Which Python\n```\n# not a heading\n```\n";
    let want: BTreeSet<String> = [
        "behind-a-load-balancer-the-proxy-protocol",
        "--log-and-sigusr1",
        "which-python",
        "which-python-1",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(anchors(text), want);
    let links = links("[a](x.md#y) `[b](no.md)`\n\n```\n[c](no.md)\n```\n[d]: z.md\n[e][d]\n");
    assert_eq!(links, vec!["x.md#y".to_owned(), "z.md".to_owned()]);
}
