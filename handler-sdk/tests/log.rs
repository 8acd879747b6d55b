//! Logging: `log` reaches the host at its level; the `log!` macro skips
//! levels the host has disabled.

mod common;

use common::*;
use sockhost_sdk::sys::*;
use sockhost_sdk::Level;

#[test]
fn log_reaches_the_host_and_log_macro_skips_disabled_levels() {
    world();
    sockhost_sdk::log(Level::Warn, "plain warning");
    sockhost_sdk::log!(Level::Info, "formatted {}", 7);
    sockhost_sdk::log!(Level::Debug, "hidden {}", 8);
    let logs = LOGS.lock().expect("logs");
    assert!(logs.contains(&(SOCKHOST_LOG_WARN, "plain warning".into())));
    assert!(logs.contains(&(SOCKHOST_LOG_INFO, "formatted 7".into())));
    assert!(!logs.iter().any(|(_, m)| m == "hidden 8"), "{logs:?}");
}
