//! Port names, as /etc/services gives them: `NAME PORT/PROTO ALIASES...`.
//!
//! Owns [`Services`]: a name (or alias) and a protocol to a port number.
//! Parsed from the file's text so it is testable without the file; a line
//! that does not have the form is skipped, as getservbyname(3) skips it.

use std::collections::HashMap;

/// The /etc/services table.
#[derive(Debug, Default)]
pub struct Services {
    ports: HashMap<(String, String), u16>,
}

impl Services {
    /// The table in `text` (the contents of /etc/services).
    pub fn parse(text: &str) -> Services {
        let mut ports = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((port, proto)) = port_proto.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for n in std::iter::once(name).chain(words) {
                // The first line naming a service wins, as in getservbyname.
                ports
                    .entry((n.to_string(), proto.to_string()))
                    .or_insert(port);
            }
        }
        Services { ports }
    }

    /// The port of `service` (a name, an alias or a number) for `proto`
    /// (`tcp` or `udp`).
    pub fn port(&self, service: &str, proto: &str) -> Option<u16> {
        if let Ok(n) = service.parse::<u16>() {
            return Some(n);
        }
        self.ports
            .get(&(service.to_string(), proto.to_string()))
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_numbers_and_protocols() {
        let s = Services::parse(
            "# comment\nfinger\t\t79/tcp\ntime\t\t37/tcp\t\ttimserver\ntime 37/udp timserver\n\
             tftp 69/udp\nbroken line\nbad x/tcp\n",
        );
        assert_eq!(s.port("finger", "tcp"), Some(79));
        assert_eq!(s.port("finger", "udp"), None);
        assert_eq!(s.port("timserver", "udp"), Some(37));
        assert_eq!(s.port("tftp", "udp"), Some(69));
        assert_eq!(s.port("9418", "tcp"), Some(9418));
        assert_eq!(s.port("nonesuch", "tcp"), None);
    }
}
