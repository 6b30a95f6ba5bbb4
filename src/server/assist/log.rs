//! The activity log: every live-assist event as a row of `assist_log`,
//! written through the database thread (best-effort like the presence
//! activity log: a row the full queue refuses, or whose write fails, is
//! counted in `/metrics`), and `GET /assist/log` reading it back as JSON or
//! CSV for the site's representatives.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use serde_json::{json, Value};

use super::input::{fail, parse_visitor, Input};
use super::store::{self, LogQuery, LogRow};
use super::{console, wall_ms, Assist, Stats};
use crate::server::hub::Groups;
use crate::server::{Job, ServerRouter};
use crate::{Cx, Reply, Request, Response};

impl Assist {
    /// Logs one event.
    pub(super) fn log(
        &self,
        site: &str,
        visitor: Option<u128>,
        rep: &str,
        kind: &'static str,
        detail: Value,
    ) {
        let row = LogRow {
            at: wall_ms(),
            site: site.to_string(),
            visitor: visitor.map(super::input::visitor_text).unwrap_or_default(),
            rep: rep.to_string(),
            kind,
            detail: if detail.is_null() {
                String::new()
            } else {
                detail.to_string()
            },
        };
        self.log_rows(vec![row]);
    }

    /// Logs many events in one write (a presenter push).
    pub(super) fn log_rows(&self, rows: Vec<LogRow>) {
        if rows.is_empty() {
            return;
        }
        let n = rows.len() as u64;
        let stats = self.stats.clone();
        let queued = self.db.write(
            move |c| rows.iter().try_for_each(|row| store::append(c, row)),
            move |r| count(&stats, r.is_ok(), n),
        );
        if queued.is_err() {
            self.stats.log_dropped.fetch_add(n, Relaxed);
        }
    }
}

fn count(stats: &Arc<Stats>, ok: bool, n: u64) {
    let counter = if ok {
        &stats.logged
    } else {
        &stats.log_dropped
    };
    counter.fetch_add(n, Relaxed);
}

/// `GET /assist/log?visitor=ID` or `?site=S&from=T&to=T`, `&format=csv`.
pub fn query(router: &mut ServerRouter, req: &Request, cx: &mut Cx<'_, Job>) -> Reply {
    match start_query(router, req, cx) {
        Ok(reply) => reply,
        Err(refusal) => Reply::Respond(refusal),
    }
}

fn start_query(
    router: &mut ServerRouter,
    req: &Request,
    cx: &mut Cx<'_, Job>,
) -> Result<Reply, Response> {
    if req.method != "GET" {
        return Err(fail(405, "use GET").header("Allow", "GET"));
    }
    let input = Input::of(req)?;
    let me = console::session_user(router, req, &input)?;
    let csv = input.text("format").as_deref() == Some("csv")
        || req.header("accept").is_some_and(|a| a.contains("text/csv"));
    let q = match input.text("visitor") {
        Some(v) => {
            let id = parse_visitor(&v).ok_or_else(|| fail(400, "bad visitor id"))?;
            LogQuery::Visitor(super::input::visitor_text(id))
        }
        None => {
            let site = input.required("site")?;
            console::check_member(router, &site, &me)?;
            let now = wall_ms();
            let num = |name: &str, default: i64| -> Result<i64, Response> {
                match input.text(name) {
                    Some(t) => t
                        .parse()
                        .map_err(|_| fail(400, format!("bad {name}: Unix ms expected"))),
                    None => Ok(default),
                }
            };
            let from = num("from", now - 24 * 3600 * 1000)?;
            let to = num("to", now + 1)?;
            LogQuery::Site { site, from, to }
        }
    };
    let conn = req.conn;
    let handle = cx.handle();
    let read = q.clone();
    let queued = router.assist.db.write(
        move |c| store::read_log(c, &read),
        move |rows| {
            handle.send(Job::new(move |router, cx| {
                let response = match rows {
                    Ok(rows) => answer_rows(router, &q, &me, rows, csv),
                    Err(e) => fail(500, format!("log read failed: {e}")),
                };
                let _ = cx.respond(conn, response);
            }));
        },
    );
    match queued {
        Ok(()) => Ok(Reply::Defer),
        Err(_) => Err(fail(503, "database busy").header("Retry-After", "1")),
    }
}

/// The rows the caller may see, as JSON or CSV. For a visitor, only rows of
/// sites the caller represents; none at all: `403`.
fn answer_rows(
    router: &ServerRouter,
    q: &LogQuery,
    me: &str,
    rows: Vec<Value>,
    csv: bool,
) -> Response {
    let rows: Vec<Value> = match q {
        LogQuery::Site { .. } => rows,
        LogQuery::Visitor(_) => {
            let mine: Vec<Value> = rows
                .into_iter()
                .filter(|r| {
                    router
                        .presence
                        .is_member(r["site"].as_str().unwrap_or(""), me)
                })
                .collect();
            if mine.is_empty() {
                return fail(403, "not a representative of this visitor's site");
            }
            mine
        }
    };
    if csv {
        let mut out = String::from("at,site,visitor,rep,kind,detail\r\n");
        for r in &rows {
            let fields = ["at", "site", "visitor", "rep", "kind", "detail"].map(|k| match &r[k] {
                Value::String(s) => csv_field(s),
                other => other.to_string(),
            });
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        return Response::new(200)
            .header("Content-Type", "text/csv; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(out);
    }
    super::input::answer(200, json!({ "events": rows }))
}

/// One CSV field (RFC 4180), with a leading `'` on text a spreadsheet
/// would run as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
