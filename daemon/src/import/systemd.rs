//! systemd unit file syntax, from text to settings: `[Section]` headers,
//! `Key=Value` lines, `#`/`;` comments, a trailing `\` continuing a line;
//! and the word splitting systemd applies to `ExecStart=` and
//! `Environment=` (quotes, backslash escapes).
//!
//! Pure: text in, [`Unit`] out with every setting's line. A key assigned
//! the empty string resets the list it builds (systemd.syntax(7)); what
//! the settings mean is [`super::systemd_map`]'s.

use super::model::{Origin, ParseError};

/// One `Key=Value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub at: Origin,
    pub section: String,
    pub key: String,
    pub value: String,
}

/// A unit file's settings, in order.
#[derive(Clone, Debug, Default)]
pub struct Unit {
    pub settings: Vec<Setting>,
}

impl Unit {
    /// The values of `key` in `section` since its last empty assignment.
    pub fn all(&self, section: &str, key: &str) -> Vec<&Setting> {
        let mut out = Vec::new();
        for s in self
            .settings
            .iter()
            .filter(|s| s.section == section && s.key == key)
        {
            if s.value.is_empty() {
                out.clear();
            } else {
                out.push(s);
            }
        }
        out
    }

    /// The last value of `key` in `section`, if any.
    pub fn last(&self, section: &str, key: &str) -> Option<&Setting> {
        self.all(section, key).pop()
    }
}

/// The settings of the unit file `file` holding `text`.
pub fn parse(file: &str, text: &str) -> Result<Unit, ParseError> {
    let mut unit = Unit::default();
    let mut section: Option<String> = None;
    let mut pending: Option<(Origin, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let at = Origin::new(file, i + 1);
        let (start, mut line) = match pending.take() {
            Some((start, mut acc)) => {
                acc.push(' ');
                acc.push_str(raw.trim());
                (start, acc)
            }
            None => {
                let t = raw.trim();
                if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
                    continue;
                }
                (at, t.to_string())
            }
        };
        if let Some(l) = line.strip_suffix('\\') {
            line = l.trim_end().to_string();
            pending = Some((start, line));
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name.strip_suffix(']').ok_or_else(|| {
                ParseError::new(
                    start.clone(),
                    format!("`{line}`: a section header ends with `]`"),
                )
            })?;
            section = Some(name.to_string());
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(ParseError::new(
                start,
                format!("expected `Key=Value`, found `{line}`"),
            ));
        };
        let Some(section) = &section else {
            return Err(ParseError::new(
                start,
                format!("`{}` comes before any [Section]", key.trim()),
            ));
        };
        unit.settings.push(Setting {
            at: start,
            section: section.clone(),
            key: key.trim().to_string(),
            value: value.trim().to_string(),
        });
    }
    if let Some((at, _)) = pending {
        return Err(ParseError::new(at, "the file ends in a `\\` continuation"));
    }
    Ok(unit)
}

/// `value` split into words as systemd splits a command line: blanks
/// separate words, "..." and '...' quote, C escapes inside and outside.
pub fn words(value: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                let e = chars.next().ok_or("a `\\` ends the line")?;
                let real = match e {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'a' => '\x07',
                    'b' => '\x08',
                    'f' => '\x0c',
                    'v' => '\x0b',
                    's' => ' ',
                    other => other,
                };
                word.get_or_insert_with(String::new).push(real);
            }
            (q, Some(open)) if q == open => quote = None,
            (c, Some(_)) => word.get_or_insert_with(String::new).push(c),
            ('"' | '\'', None) => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (c, None) if c.is_whitespace() => out.extend(word.take()),
            (c, None) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        return Err("a quote is never closed".into());
    }
    out.extend(word);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_keys_continuations_and_resets() {
        let u = parse(
            "u",
            "# c\n[Socket]\nListenStream=80\n; c\nListenStream = 81\n[Service]\nExecStart=/bin/a \\\n  -x\n\
             Environment=A=1\nEnvironment=\nEnvironment=B=2\n",
        )
        .expect("parses");
        let ports: Vec<&str> = u
            .all("Socket", "ListenStream")
            .iter()
            .map(|s| s.value.as_str())
            .collect();
        assert_eq!(ports, ["80", "81"]);
        let exec = u.last("Service", "ExecStart").expect("ExecStart");
        assert_eq!(exec.value, "/bin/a -x");
        assert_eq!(exec.at.line, 7);
        assert_eq!(u.all("Service", "Environment").len(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("u", "A=b\n").expect_err("no section").to_string(),
            "u:1: `A` comes before any [Section]"
        );
        assert!(parse("u", "[S]\njunk\n")
            .expect_err("junk")
            .to_string()
            .starts_with("u:2: expected `Key=Value`"));
        assert!(parse("u", "[S\n").is_err());
    }

    #[test]
    fn command_words() {
        assert_eq!(
            words(r#"/bin/sh -c "echo 'a b'" x\ y 'q"q'"#).expect("splits"),
            ["/bin/sh", "-c", "echo 'a b'", "x y", "q\"q"]
        );
        assert_eq!(words(r#"A="1 2" B=3"#).expect("splits"), ["A=1 2", "B=3"]);
        assert!(words("\"open").is_err());
        assert_eq!(words("''").expect("empty word"), [""]);
    }
}
