//! Which listener keys apply to which kind of listener.
//!
//! Owns the table of keys that only make sense for some family, socket
//! type, mixin or address form. Promises: a key written where it has no
//! effect is an error at that key saying when it applies and what this
//! listener is. Never checks the values themselves.

use std::ops::Range;

use toml::Spanned;

use super::error::ConfigError;
use super::model::{Address, Family, Mixin, SockType};
use super::raw::RawListener;
use super::source::Source;

/// What a listener is, as far as key applicability goes.
#[derive(Clone, Copy, Debug)]
struct Kind<'a> {
    family: Family,
    socktype: SockType,
    mixin: Mixin,
    address: &'a Address,
}

/// One rule: `key` (if written, at `span`) needs `applies`, else `why`.
struct Rule {
    key: &'static str,
    span: Option<Range<usize>>,
    applies: bool,
    why: String,
}

/// Refuse the first key of `raw` that does not apply to a listener of
/// this family, socket type and mixin, bound to `address`.
pub fn check(
    src: &Source,
    raw: &RawListener,
    (family, socktype, mixin): (Family, SockType, Mixin),
    address: &Address,
) -> Result<(), ConfigError> {
    let kind = Kind {
        family,
        socktype,
        mixin,
        address,
    };
    for rule in rules(raw, kind) {
        if let (Some(span), false) = (&rule.span, rule.applies) {
            let key = format!("listener.{}", rule.key);
            return Err(src.key_error(
                span,
                &key,
                format!("`{}` does not apply here: {}", rule.key, rule.why),
            ));
        }
    }
    Ok(())
}

fn at<T>(v: &Option<Spanned<T>>) -> Option<Range<usize>> {
    v.as_ref().map(Spanned::span)
}

fn rules(raw: &RawListener, k: Kind<'_>) -> Vec<Rule> {
    let rule = |key, span, applies, why: &str| Rule {
        key,
        span,
        applies,
        why: why.to_owned(),
    };
    let fork = format!(
        "it is only used with mixin = \"fork\", and this listener has mixin = \"{}\"",
        k.mixin
    );
    let thread = format!(
        "it is only used with mixin = \"thread\", and this listener has mixin = \"{}\"",
        k.mixin
    );
    let dgram = format!(
        "it is only used with type = \"dgram\", and this listener has type = \"{}\"",
        k.socktype
    );
    let stream = format!(
        "it is only used with type = \"stream\", and this listener has type = \"{}\"",
        k.socktype
    );
    let not_unix = "unix sockets have no source IP address (use allow_uids/allow_gids for unix stream listeners)";
    let peer = format!(
        "peer credentials exist only for family = \"unix\" with type = \"stream\", and this listener is {} {}",
        k.family, k.socktype
    );
    let is_unix = k.family == Family::Unix;
    let unix_path = matches!(k.address, Address::Unix(_));
    let proxy =
        k.socktype == SockType::Stream && raw.proxy_protocol.as_ref().is_some_and(|p| *p.get_ref());
    let needs_proxy = "it is only used with proxy_protocol = true on a stream listener";
    let trusted_unix = "a unix peer has no IP address: trust on a unix listener is who may connect to the socket (socket_mode, socket_user, socket_group, allow_uids, allow_gids)";
    let file = "socket file settings need family = \"unix\" with a path address (not inet, not \"@abstract\")";
    vec![
        rule(
            "max_children",
            at(&raw.max_children),
            k.mixin == Mixin::Fork,
            &fork,
        ),
        rule(
            "max_threads",
            at(&raw.max_threads),
            k.mixin == Mixin::Thread,
            &thread,
        ),
        rule(
            "daemon_threads",
            at(&raw.daemon_threads),
            k.mixin == Mixin::Thread,
            &thread,
        ),
        rule(
            "max_packet_size",
            at(&raw.max_packet_size),
            k.socktype == SockType::Dgram,
            &dgram,
        ),
        rule(
            "connection_timeout",
            at(&raw.connection_timeout),
            k.socktype == SockType::Stream,
            &stream,
        ),
        rule(
            "disable_nagle_algorithm",
            at(&raw.disable_nagle_algorithm),
            k.socktype == SockType::Stream,
            &stream,
        ),
        rule(
            "disable_nagle_algorithm",
            at(&raw.disable_nagle_algorithm),
            !is_unix,
            "TCP_NODELAY has no meaning for unix sockets",
        ),
        rule(
            "max_connections_per_source",
            at(&raw.max_connections_per_source),
            k.socktype == SockType::Stream,
            &stream,
        ),
        rule("allow", at(&raw.allow), !is_unix || proxy, not_unix),
        rule("deny", at(&raw.deny), !is_unix || proxy, not_unix),
        rule(
            "proxy_protocol",
            at(&raw.proxy_protocol),
            k.socktype == SockType::Stream,
            &stream,
        ),
        rule("proxy_trusted", at(&raw.proxy_trusted), proxy, needs_proxy),
        rule(
            "proxy_trusted",
            at(&raw.proxy_trusted),
            !is_unix,
            trusted_unix,
        ),
        rule(
            "proxy_header_timeout",
            at(&raw.proxy_header_timeout),
            proxy,
            needs_proxy,
        ),
        rule(
            "allow_uids",
            at(&raw.allow_uids),
            is_unix && k.socktype == SockType::Stream,
            &peer,
        ),
        rule(
            "allow_gids",
            at(&raw.allow_gids),
            is_unix && k.socktype == SockType::Stream,
            &peer,
        ),
        rule("socket_mode", at(&raw.socket_mode), unix_path, file),
        rule("socket_user", at(&raw.socket_user), unix_path, file),
        rule("socket_group", at(&raw.socket_group), unix_path, file),
        rule("mode", at(&raw.mode), unix_path, file),
        rule("owner", at(&raw.owner), unix_path, file),
    ]
}
