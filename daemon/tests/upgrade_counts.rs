//! Counters across a binary upgrade: every counter a scrape shows goes on
//! from the old daemon's value (requests served by either daemon counted
//! once), and no scrape taken while the upgrade runs sees one go back.

mod common;
use common::observe::{ctl, metrics_addr, scrape};
use common::upgrading::*;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Every counter sample (`_total`, and the histogram's `_bucket`,
/// `_count`, `_sum`) of a scrape, by series.
fn counters(text: &str) -> std::collections::BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let name = series.split('{').next().unwrap_or("");
            ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .any(|s| name.ends_with(s))
        })
        .filter_map(|(series, v)| Some((series.to_string(), v.parse().ok()?)))
        .collect()
}

#[test]
fn counters_go_on_from_the_old_daemons_values_across_an_upgrade() {
    let (mut d, bin) = start_copy(TestDir::new("upgrade-counts"), "");
    let port = d.inet("echo").port();
    let mut served = 0u64;
    for _ in 0..20 {
        echo_once(port).expect("echo");
        served += 1;
    }
    assert_eq!(ctl(&d, &["reload"]).0, 0, "a reload counts too");
    let before = counters(&scrape(&d));
    let echo_total = "sockhost_requests_total{listener=\"echo\"}";
    assert_eq!(before.get(echo_total), Some(&(served as f64)), "{before:?}");

    // Scrape all through the upgrade: no counter may ever go back.
    let metrics = metrics_addr(&d);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let scraper = std::thread::spawn(move || {
        let mut seen: Vec<std::collections::BTreeMap<String, f64>> = Vec::new();
        while !flag.load(Ordering::Relaxed) {
            let answer = common::observe::http(
                metrics,
                "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            );
            if let Some((_, body)) = answer.split_once("\r\n\r\n") {
                seen.push(counters(body));
            }
        }
        seen
    });
    let load = Load::start(port);
    install_binary(&bin, &real_binary());
    let (code, out, err) = ctl(&d, &["upgrade"]);
    assert_eq!(code, 0, "{out}{err}\n{}", d.log());
    let new = handed_over_to(&d);
    let _reap = Reap(new);
    assert!(d.wait_exit(DEADLINE).is_some_and(|s| s.success()));
    let (ok, failures) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
    served += ok;
    stop.store(true, Ordering::Relaxed);
    let seen = scraper.join().expect("scraper");

    let after = counters(&scrape(&d));
    for (series, was) in &before {
        let now = after.get(series).copied().unwrap_or(0.0);
        assert!(
            now >= *was,
            "{series}: {was} before the upgrade, {now} after"
        );
    }
    assert_eq!(
        after.get(echo_total),
        Some(&(served as f64)),
        "every request, served by the old daemon or the new, counted once"
    );
    assert_eq!(
        after.get("sockhost_reloads_total{result=\"ok\"}"),
        Some(&1.0)
    );
    let mut last = before.clone();
    for (i, s) in seen.iter().enumerate() {
        for (series, was) in &last {
            let now = s.get(series).copied().unwrap_or(0.0);
            assert!(
                now >= *was,
                "scrape {i} during the upgrade: {series} went from {was} to {now}"
            );
        }
        last = s.clone();
    }
    assert!(!seen.is_empty(), "scraped during the upgrade");
}
