//! xinetd's config syntax, from text to entries: `service NAME { ... }`,
//! `defaults { ... }`, `include FILE`, `includedir DIR`, and inside a block
//! one `attribute OP value...` per line, OP one of `=`, `+=`, `-=`.
//!
//! Pure: text in, [`Entry`] list out, every attribute with its line. What
//! the attributes mean is [`super::xinetd_map`]'s; following includes is
//! [`super`]'s. Lines whose first non-blank character is `#` are comments
//! (xinetd reads a `#` later in a line as part of the value).

use super::model::{Origin, ParseError};

/// How an attribute's values combine with what it had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Set,
    Add,
    Remove,
}

/// One `attribute OP values` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attr {
    pub at: Origin,
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

/// A `service NAME { }` or `defaults { }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub at: Origin,
    pub name: String,
    pub attrs: Vec<Attr>,
}

/// A top-level item of an xinetd file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Defaults(Block),
    Service(Block),
    Include(Origin, String),
    IncludeDir(Origin, String),
}

/// Where the parser is.
enum State {
    Top,
    /// `service NAME` or `defaults` read, `{` not yet.
    Opening(Block, bool),
    /// Inside a block (`true`: defaults).
    Inside(Block, bool),
}

/// The entries of the xinetd file `file` holding `text`.
pub fn parse(file: &str, text: &str) -> Result<Vec<Entry>, ParseError> {
    let mut out = Vec::new();
    let mut state = State::Top;
    for (i, raw) in text.lines().enumerate() {
        let at = Origin::new(file, i + 1);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        state = match state {
            State::Top => top(line, at, &mut out)?,
            State::Opening(block, defaults) => {
                let rest = line.strip_prefix('{').ok_or_else(|| {
                    ParseError::new(
                        at.clone(),
                        format!("expected `{{` to open `{}`", block.name),
                    )
                })?;
                inside(block, defaults, rest.trim(), at, &mut out)?
            }
            State::Inside(block, defaults) => inside(block, defaults, line, at, &mut out)?,
        };
    }
    match state {
        State::Top => Ok(out),
        State::Opening(b, d) | State::Inside(b, d) => {
            let what = if d {
                "defaults".to_string()
            } else {
                format!("service {}", b.name)
            };
            Err(ParseError::new(
                b.at,
                format!("`{what}` is never closed with `}}`"),
            ))
        }
    }
}

/// A line outside any block.
fn top(line: &str, at: Origin, out: &mut Vec<Entry>) -> Result<State, ParseError> {
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let block = |name: &str| Block {
        at: at.clone(),
        name: name.to_string(),
        attrs: Vec::new(),
    };
    match word {
        "service" | "defaults" => {
            let defaults = word == "defaults";
            let (name, tail) = match rest.split_once(char::is_whitespace) {
                Some((n, t)) => (n, t.trim()),
                None => (rest, ""),
            };
            let (name, tail) = if defaults { ("defaults", rest) } else { (name, tail) };
            if name.is_empty() || name == "{" {
                return Err(ParseError::new(at, "`service` needs a name"));
            }
            match tail.strip_prefix('{') {
                Some(after) => inside(block(name), defaults, after.trim(), at, out),
                None if tail.is_empty() => Ok(State::Opening(block(name), defaults)),
                None => Err(ParseError::new(
                    at,
                    format!("unexpected `{tail}` after `{word} {name}`"),
                )),
            }
        }
        "include" | "includedir" if !rest.is_empty() => {
            let path = rest.to_string();
            out.push(if word == "include" {
                Entry::Include(at, path)
            } else {
                Entry::IncludeDir(at, path)
            });
            Ok(State::Top)
        }
        _ => Err(ParseError::new(
            at,
            format!("expected `service NAME`, `defaults`, `include FILE` or `includedir DIR`, found `{line}`"),
        )),
    }
}

/// A line inside a block (possibly empty: what followed a `{`).
fn inside(
    mut block: Block,
    defaults: bool,
    line: &str,
    at: Origin,
    out: &mut Vec<Entry>,
) -> Result<State, ParseError> {
    if line.is_empty() {
        return Ok(State::Inside(block, defaults));
    }
    if line == "}" {
        out.push(if defaults {
            Entry::Defaults(block)
        } else {
            Entry::Service(block)
        });
        return Ok(State::Top);
    }
    let eq = line.find('=').ok_or_else(|| {
        ParseError::new(
            at.clone(),
            format!("expected `attribute = value` or `}}`, found `{line}`"),
        )
    })?;
    let (mut key, values) = (&line[..eq], &line[eq + 1..]);
    let op = if let Some(k) = key.strip_suffix('+') {
        key = k;
        Op::Add
    } else if let Some(k) = key.strip_suffix('-') {
        key = k;
        Op::Remove
    } else {
        Op::Set
    };
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(ParseError::new(
            at,
            format!("`{}` is not an attribute name", line[..eq].trim()),
        ));
    }
    block.attrs.push(Attr {
        at,
        key: key.to_string(),
        op,
        values: values.split_whitespace().map(str::to_string).collect(),
    });
    Ok(State::Inside(block, defaults))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_attributes_and_includes() {
        let text = "# c\ndefaults\n{\n  only_from = 10.0.0.0\n}\n\nservice echo\n{\n\
                    \tid\t\t= echo-stream\n\tonly_from += 127.0.0.1 ::1\n\tenv -= A\n}\n\
                    service x {\nwait=no\n}\nincludedir /etc/xinetd.d\ninclude /x\n";
        let e = parse("f", text).expect("parses");
        assert_eq!(e.len(), 5);
        let Entry::Service(echo) = &e[1] else {
            panic!("{e:?}")
        };
        assert_eq!(echo.name, "echo");
        assert_eq!(echo.at.line, 7);
        assert_eq!(echo.attrs[1].op, Op::Add);
        assert_eq!(echo.attrs[1].values, ["127.0.0.1", "::1"]);
        assert_eq!(echo.attrs[1].at.line, 10);
        assert_eq!(echo.attrs[2].op, Op::Remove);
        let Entry::Service(x) = &e[2] else {
            panic!("{e:?}")
        };
        assert_eq!(x.attrs[0].key, "wait");
        assert_eq!(
            e[3],
            Entry::IncludeDir(Origin::new("f", 16), "/etc/xinetd.d".into())
        );
    }

    #[test]
    fn errors_name_the_line() {
        let err = |t: &str| parse("f", t).expect_err(t).to_string();
        assert_eq!(
            err("service a\n{\nwait = no\n"),
            "f:1: `service a` is never closed with `}`"
        );
        assert!(err("service a\nwait = no\n").starts_with("f:2: expected `{`"));
        assert!(err("service a\n{\nbogus line\n}\n").starts_with("f:3: expected `attribute"));
        assert!(err("frobnicate\n").starts_with("f:1: expected `service NAME`"));
    }
}
