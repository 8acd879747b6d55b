//! Checks across all listeners of the main file and its drop-ins.
//!
//! Owns the rules that no single listener can check: names are unique, and
//! no two listeners bind the same socket. Promises: a clash is reported at
//! the later listener and names the earlier one's file:line:column. Never
//! changes a listener.

use super::error::ConfigError;
use super::listener::Parsed;
use super::model::{Address, ListenerConfig};

/// Refuse duplicate names and duplicate addresses.
pub fn check(listeners: &[Parsed]) -> Result<(), ConfigError> {
    for (at, later) in listeners.iter().enumerate() {
        for earlier in &listeners[..at] {
            check_pair(earlier, later)?;
        }
    }
    Ok(())
}

fn check_pair(earlier: &Parsed, later: &Parsed) -> Result<(), ConfigError> {
    let (a, b) = (&earlier.config, &later.config);
    if a.name == b.name {
        let msg = format!(
            "duplicate listener name \"{}\": already defined at {}",
            b.name, earlier.name_at
        );
        return Err(ConfigError::at(&later.name_at, Some("listener.name"), msg));
    }
    if same_endpoint(a, b) {
        let msg = format!(
            "address {} is already used by listener \"{}\" at {}",
            b.address, a.name, earlier.address_at
        );
        return Err(ConfigError::at(
            &later.address_at,
            Some("listener.address"),
            msg,
        ));
    }
    Ok(())
}

/// Two listeners that would bind the same socket. Inet port 0 (any free
/// port) never clashes; unix paths and abstract names clash whatever the type.
fn same_endpoint(a: &ListenerConfig, b: &ListenerConfig) -> bool {
    match (&a.address, &b.address) {
        (Address::Inet(x), Address::Inet(y)) => x == y && x.port() != 0 && a.socktype == b.socktype,
        (x, y) => x == y,
    }
}
