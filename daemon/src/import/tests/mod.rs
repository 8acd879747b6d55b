//! Unit tests of the importer, per format, on the files Debian's packages
//! ship (daemon/tests/corpus/import, see its README) and on the forms
//! their man pages document.

use super::emit::emit;
use super::model::{Note, Notes, Service};
use super::services::Services;

mod inetd;
mod systemd;
mod xinetd;

/// The /etc/services lines the fixtures need.
fn ports() -> Services {
    Services::parse(
        "echo 7/tcp\necho 7/udp\nchargen 19/tcp ttytst source\nchargen 19/udp ttytst source\n\
         time 37/tcp timserver\ntime 37/udp timserver\ntftp 69/udp\nfinger 79/tcp\n\
         rsync 873/tcp\ngit 9418/tcp\ntalk 517/udp\n",
    )
}

/// The emitted config of `services`, parsed back: the `[[listener]]` list.
fn listeners(services: &[Service]) -> Vec<toml::Table> {
    let text = emit(services, "test", &mut Notes::default());
    let doc: toml::Table = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    doc.get("listener")
        .and_then(|l| l.as_array())
        .map(|a| a.iter().filter_map(|t| t.as_table().cloned()).collect())
        .unwrap_or_default()
}

/// The listener named `name`.
fn named<'a>(ls: &'a [toml::Table], name: &str) -> &'a toml::Table {
    ls.iter()
        .find(|l| l["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no listener {name} in {ls:#?}"))
}

/// A string key of a table.
fn s<'a>(t: &'a toml::Table, key: &str) -> &'a str {
    t.get(key)
        .and_then(|v| v.as_str())
        .unwrap_or_else(|| panic!("{key} in {t:#?}"))
}

/// A list of strings from a table.
fn strs(t: &toml::Table, key: &str) -> Vec<String> {
    t.get(key)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The notes as the lines sockhostctl prints.
fn lines(notes: &[Note]) -> Vec<String> {
    notes.iter().map(|n| n.to_string()).collect()
}

/// Every prefix of every fixture, and odd bytes, through each parser and
/// the emitter: an error or a config, never a panic; every config parses
/// as TOML.
#[test]
fn no_input_panics_and_every_output_is_toml() {
    let fixtures = [
        include_str!("../../../tests/corpus/import/xinetd.d/echo"),
        include_str!("../../../tests/corpus/import/finger.xinetd"),
        include_str!("../../../tests/corpus/import/inetd.conf"),
        include_str!("../../../tests/corpus/import/systemd/micro-httpd.socket"),
        include_str!("../../../tests/corpus/import/systemd/micro-httpd@.service"),
        "service \u{e9}\u{0} {\nonly_from = 1.2.{3,{4}} 1.2.3.4/99 [::1] 256.1.1.1\nport = 99999\n\
         socket_type = stream\nwait = no\nserver = \"\\\nuser = \u{1f600}\n}\n",
        "[Socket]\nListenStream=[::1]:70000\nListenStream=\u{0}\n[Service]\nExecStart=@\nExecStart=+!-\n",
        "[::1]:x stream tcp nowait u:g:h . . . \n:: stream tcp nowait.x a internal\n[ stream udp wait a b\n",
    ];
    for text in fixtures {
        let cuts = text.char_indices().map(|(i, _)| i).chain([text.len()]);
        for cut in cuts {
            let t = &text[..cut];
            let mut notes = Notes::default();
            let mut services = Vec::new();
            if let Ok(entries) = super::xinetd::parse("f", t) {
                let blocks: Vec<_> = entries
                    .into_iter()
                    .filter_map(|e| match e {
                        super::xinetd::Entry::Service(b) => Some(b),
                        _ => None,
                    })
                    .collect();
                services.extend(super::xinetd_map::convert(
                    &[],
                    &blocks,
                    &ports(),
                    &mut notes,
                ));
            }
            if let Ok(s) = super::inetd::parse("f", t, &ports(), &mut notes) {
                services.extend(s);
            }
            if let Ok(unit) = super::systemd::parse("f", t) {
                services.extend(super::systemd_map::convert(
                    "u",
                    &unit,
                    &unit,
                    &[],
                    &mut notes,
                ));
            }
            listeners(&services);
        }
    }
}
