//! Cross-origin access to the hub: which page origins may publish to,
//! subscribe to and poll it (`--hub-allow-origin`, none by default), the answer
//! to a preflight `OPTIONS`, and the headers added to every hub answer for an
//! allowed origin: plain responses, held streams, and long-poll answers
//! (the engine carries a hold's headers onto its `200` or `204`).

use super::HubConfig;
use crate::{Reply, Request, Response};

/// Headers a page may read from hub answers.
const EXPOSED: &str = "X-Altsock-Id, X-Altsock-Last, X-Altsock-Event";

/// The `Access-Control-Allow-Origin` value for `req`, if its `Origin` is allowed:
/// `*` when any origin is, else the origin itself.
pub fn allowed_origin(cfg: &HubConfig, req: &Request) -> Option<String> {
    let origin = req.header("origin")?;
    if cfg.allow_origins.iter().any(|o| o == "*") {
        return Some("*".into());
    }
    cfg.allow_origins
        .iter()
        .any(|o| o == origin)
        .then(|| origin.to_string())
}

/// Answers a preflight: `204` with what may be sent, or `403`.
pub fn preflight(origin: Option<&str>) -> Response {
    let Some(origin) = origin else {
        return Response::text(403, "origin not allowed\n");
    };
    with_headers(Response::new(204), origin, |r, n, v| r.header(n, v))
        .header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        .header(
            "Access-Control-Allow-Headers",
            "Authorization, Content-Type, Last-Event-ID",
        )
        .header("Access-Control-Max-Age", "600")
}

/// Adds the headers for `origin` to a hub answer.
pub fn decorate(reply: Reply, origin: &str) -> Reply {
    match reply {
        Reply::Respond(r) => Reply::Respond(with_headers(r, origin, |r, n, v| r.header(n, v))),
        Reply::Hold(h) => Reply::Hold(with_headers(h, origin, |h, n, v| h.with_header(n, v))),
        deferred @ (Reply::Defer | Reply::DeferPipelined) => deferred,
    }
}

/// Applies the allow-origin, credentials, vary and expose headers with `add`.
fn with_headers<T>(target: T, origin: &str, add: impl Fn(T, &str, String) -> T) -> T {
    let mut out = add(target, "Access-Control-Allow-Origin", origin.to_string());
    if origin != "*" {
        // Private channels need the session cookie from the page's origin.
        out = add(out, "Access-Control-Allow-Credentials", "true".into());
        out = add(out, "Vary", "Origin".into());
    }
    add(out, "Access-Control-Expose-Headers", EXPOSED.into())
}
