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
