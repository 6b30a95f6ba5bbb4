//! Live assist over real sockets and a real SQLite file: the widget's
//! endpoints (from an allowed page origin, with the visitor's secret, its
//! events arriving in its hub mailbox), the console's stream (snapshot,
//! live events, resume by id, long-poll), routing with the queue and
//! requeue, chat, canned texts, push/pull/cards, presenter mode, the
//! activity log, and the bad inputs of issue 8.

mod assist_support;
mod presence_support;
mod util;

use std::time::Duration;

use assist_support::*;
use presence_support::{body, call, get_with_cookie};
use serde_json::json;

/// A console command that must succeed (`200`).
#[track_caller]
fn command_ok(
    addr: std::net::SocketAddr,
    sid: &str,
    path: &str,
    body: &serde_json::Value,
) -> util::Resp {
    let r = command(addr, sid, path, body);
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

#[test]
fn a_visitor_appears_on_the_console_with_its_page_and_cookies() {
    let server = server(|_| {});
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let mut con = console(a, &ann, "support");
    let snap = con.next_of("snapshot");
    assert_eq!(snap["me"], "ann");
    assert_eq!(snap["visitors"], json!([]));
    let v = Visitor::arrive(a, "support", "http://shop.test/cart");
    assert_eq!(v.id.len(), 32, "128 bits as hex");
    assert_eq!(v.opened["state"], "browsing");
    let seen = con.next_where(|e| e["type"] == "visitor" && e["visitor"]["id"] == v.id.as_str());
    let seen = &seen["visitor"];
    assert_eq!(seen["url"], "http://shop.test/cart");
    assert_eq!(seen["title"], "Cart <b>3</b>", "titles stay text");
    assert_eq!(seen["cookies"], json!({"plan": "pro", "cart": "3"}));
    assert_eq!(seen["referrer"], "https://search.example/?q=shoes");
    assert_eq!(seen["state"], "browsing");
    // The next page: the same visitor, opened again with its id and secret.
    let r = v.post(
        "/assist/open",
        json!({"site": "support", "client": v.client, "key": v.key, "url": "http://shop.test/pay", "title": "Pay"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(body(&r)["visitor"], v.id.as_str());
    let moved =
        con.next_where(|e| e["type"] == "visitor" && e["visitor"]["url"] == "http://shop.test/pay");
    assert_eq!(moved["visitor"]["pages"], 2);
    assert_eq!(moved["visitor"]["visit"], 1);
    // An in-page navigation.
    let r = v.post(
        "/assist/page",
        json!({"url": "http://shop.test/pay#card", "title": "Card"}),
    );
    assert_eq!(r.status, 200);
    let moved = con.next_where(|e| e["type"] == "visitor" && e["visitor"]["title"] == "Card");
    assert_eq!(moved["visitor"]["pages"], 3);
    // A second console, opened now, lists the visitor in its snapshot.
    let mut late = console(a, &ann, "support");
    let snap = late.next_of("snapshot");
    assert_eq!(snap["visitors"][0]["id"], v.id.as_str());
}

#[test]
fn asking_routes_to_a_representative_and_chat_goes_both_ways() {
    let server = server(|_| {});
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let mut con = console(a, &ann, "support");
    let mut v = Visitor::arrive(a, "support", "http://shop.test/");
    let r = v.post("/assist/ask", json!({}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(body(&r)["state"], "waiting");
    let offer = con.next_of("offer");
    assert_eq!(
        (offer["visitor"].as_str(), offer["rep"].as_str()),
        (Some(v.id.as_str()), Some("ann"))
    );
    command_ok(
        a,
        &ann,
        "/assist/console/accept",
        &json!({"site": "support", "visitor": v.id}),
    );
    let state = v.next_where_state("chatting");
    assert_eq!(state["rep"], "ann");
    // Markup stays text both ways.
    let text = "<script>alert(1)</script> & <b>hi</b>";
    command_ok(
        a,
        &ann,
        "/assist/console/chat",
        &json!({"site": "support", "visitor": v.id, "text": text}),
    );
    let line = v.next_of("chat");
    assert_eq!(
        (line["text"].as_str(), line["from"].as_str()),
        (Some(text), Some("rep"))
    );
    let r = v.post("/assist/chat", json!({"text": "<i>thanks</i>"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let line = con.next_where(|e| e["type"] == "chat" && e["from"] == "visitor");
    assert_eq!(line["text"], "<i>thanks</i>");
    assert_eq!(line["visitor"], v.id.as_str());
    // The next page gets the chat back with the answer to `open`.
    let again = json!({"site": "support", "client": v.client, "key": v.key, "url": "http://shop.test/next"});
    let r = v.post("/assist/open", again);
    let opened = body(&r);
    assert_eq!(
        (opened["state"].as_str(), opened["rep"].as_str()),
        (Some("chatting"), Some("ann"))
    );
    let texts: Vec<&str> = opened["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec![text, "<i>thanks</i>"]);
    // Typing notices reach the other side.
    assert_eq!(
        v.post("/assist/typing", json!({"typing": true})).status,
        200
    );
    let typing = con.next_of("typing");
    assert_eq!(typing["from"], "visitor");
    command(
        a,
        &ann,
        "/assist/console/typing",
        &json!({"site": "support", "visitor": v.id, "typing": true}),
    );
    assert_eq!(v.next_of("typing")["name"], "ann");
    // Ending.
    let r = command(
        a,
        &ann,
        "/assist/console/end",
        &json!({"site": "support", "visitor": v.id}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(v.next_of("ended")["by"], "rep");
    assert_eq!(
        v.post("/assist/chat", json!({"text": "hello?"})).status,
        409
    );
}

impl Visitor {
    /// The next `state` event with this state.
    fn next_where_state(&mut self, state: &str) -> serde_json::Value {
        loop {
            let ev = self.next_of("state");
            if ev["state"] == state {
                return ev;
            }
        }
    }
}

#[test]
fn without_representatives_visitors_queue_and_see_their_position() {
    let server = server(|c| c.assist.rep_grace = Duration::from_millis(50));
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let bob = rep(a, "bob", "support", false);
    let first = Visitor::arrive(a, "support", "http://shop.test/a");
    let mut second = Visitor::arrive(a, "support", "http://shop.test/b");
    assert_eq!(body(&first.post("/assist/ask", json!({})))["position"], 1);
    assert_eq!(body(&second.post("/assist/ask", json!({})))["position"], 2);
    assert_eq!(second.next_of("queue")["position"], 2);
    // The first leaves the queue: the second moves up.
    assert_eq!(first.post("/assist/end", json!({})).status, 200);
    assert_eq!(second.next_of("queue")["position"], 1);
    assert_eq!(body(&first.post("/assist/ask", json!({})))["position"], 2);
    // ann comes: the head of the queue is offered to her.
    let mut con = console(a, &ann, "support");
    let offer = con.next_of("offer");
    assert_eq!(offer["visitor"], second.id.as_str());
    let offer = con.next_of("offer");
    assert_eq!(offer["visitor"], first.id.as_str(), "cap 4: both offered");
    for v in [&second, &first] {
        let r = command(
            a,
            &ann,
            "/assist/console/accept",
            &json!({"site": "support", "visitor": v.id}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(second.next_where_state("chatting")["rep"], "ann");
    // bob watches; ann's console closes: after the grace her chats go back
    // to the queue, first in line, and bob is offered them.
    let mut bobs = console(a, &bob, "support");
    bobs.next_of("snapshot");
    drop(con);
    let back = second.next_where_state("waiting");
    assert_eq!(back["rep"], serde_json::Value::Null);
    let offer = bobs.next_where(|e| e["type"] == "offer" && e["visitor"] == second.id.as_str());
    assert_eq!(offer["rep"], "bob");
    // Transfer from bob to ann needs ann present: 409.
    command(
        a,
        &bob,
        "/assist/console/accept",
        &json!({"site": "support", "visitor": second.id}),
    );
    let r = command(
        a,
        &bob,
        "/assist/console/transfer",
        &json!({"site": "support", "visitor": second.id, "to": "ann"}),
    );
    assert_eq!(r.status, 409, "{}", r.text());
}

#[test]
fn a_lapsed_offer_passes_to_the_next_representative() {
    let server = server(|c| c.assist.answer_timeout = Duration::from_millis(100));
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let bob = rep(a, "bob", "support", false);
    let mut anns = console(a, &ann, "support");
    anns.next_of("snapshot");
    let mut bobs = console(a, &bob, "support");
    bobs.next_of("snapshot");
    let v = Visitor::arrive(a, "support", "http://shop.test/");
    v.post("/assist/ask", json!({}));
    let first = anns.next_of("offer");
    let second = anns.next_where(|e| e["type"] == "offer" && e["rep"] != first["rep"]);
    assert_ne!(first["rep"], second["rep"], "passed on, not back");
    let who = second["rep"].as_str().unwrap();
    let sid = if who == "ann" { &ann } else { &bob };
    let r = command(
        a,
        sid,
        "/assist/console/accept",
        &json!({"site": "support", "visitor": v.id}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn push_pull_cards_and_presenter_mode() {
    let server = server(|_| {});
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let mut con = console(a, &ann, "support");
    let mut v = Visitor::arrive(a, "support", "http://shop.test/cart");
    let vid = v.id.clone();
    let site = move |extra: serde_json::Value| {
        let mut f = json!({"site": "support", "visitor": vid});
        for (k, val) in extra.as_object().unwrap() {
            f[k] = val.clone();
        }
        f
    };
    // Same origin as the page: pushed.
    command_ok(
        a,
        &ann,
        "/assist/console/push_url",
        &site(json!({"url": "http://shop.test/offer"})),
    );
    let push = v.next_of("push_url");
    assert_eq!(push["url"], "http://shop.test/offer");
    // A foreign origin: refused and logged.
    let r = command(
        a,
        &ann,
        "/assist/console/push_url",
        &site(json!({"url": "https://evil.example/"})),
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(con.next_of("push_refused")["url"], "https://evil.example/");
    // On the site's allowlist: pushed.
    let r = command(
        a,
        &ann,
        "/assist/console/allow",
        &json!({"site": "support", "allow": ["https://docs.example"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    command_ok(
        a,
        &ann,
        "/assist/console/push_url",
        &site(json!({"url": "https://docs.example/faq"})),
    );
    assert_eq!(v.next_of("push_url")["url"], "https://docs.example/faq");
    // Consent is the widget's; the server logs its answer.
    let r = v.post(
        "/assist/consent",
        json!({"push": push["id"], "given": true}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(con.next_of("consent")["given"], true);
    // Pull.
    let r = command(a, &ann, "/assist/console/pull", &site(json!({})));
    let pull_id = body(&r)["id"].clone();
    let pull = v.next_of("pull");
    assert_eq!(pull["id"], pull_id);
    let r = v.post(
        "/assist/pulled",
        json!({"pull": pull_id, "url": "http://shop.test/cart?step=2", "title": "Step 2"}),
    );
    assert_eq!(r.status, 200);
    let pulled = con.next_of("pulled");
    assert_eq!(pulled["url"], "http://shop.test/cart?step=2");
    // A card.
    let card = json!({"title": "<b>Sale</b>", "text": "20% off", "image": "https://cdn.example/a.png", "link": "http://shop.test/sale"});
    command_ok(
        a,
        &ann,
        "/assist/console/card",
        &site(json!({ "card": card })),
    );
    assert_eq!(v.next_of("card")["card"]["title"], "<b>Sale</b>");
    let bad = json!({"title": "x", "link": "javascript:alert(1)"});
    assert_eq!(
        command(
            a,
            &ann,
            "/assist/console/card",
            &site(json!({ "card": bad }))
        )
        .status,
        400
    );
    // Presenter mode: one command to every visitor of the site.
    let mut others: Vec<Visitor> = (0..2)
        .map(|i| Visitor::arrive(a, "support", &format!("http://shop.test/p{i}")))
        .collect();
    let r = command_ok(
        a,
        &ann,
        "/assist/console/present",
        &json!({"site": "support", "all": true, "url": "http://shop.test/live"}),
    );
    assert_eq!(body(&r)["sent"].as_array().unwrap().len(), 3);
    assert_eq!(v.next_of("push_url")["url"], "http://shop.test/live");
    for o in &mut others {
        assert_eq!(o.next_of("push_url")["url"], "http://shop.test/live");
    }
    assert_eq!(con.next_of("present")["sent"], 3);
    // ...or a selected set, with a chat line.
    let set = json!({"site": "support", "visitors": [others[0].id, others[1].id], "text": "Welcome <all>"});
    let r = command(a, &ann, "/assist/console/present", &set);
    assert_eq!(body(&r)["sent"].as_array().unwrap().len(), 2);
    for o in &mut others {
        assert_eq!(o.next_of("chat")["text"], "Welcome <all>");
    }
}

#[test]
fn invitations_open_the_chat_with_the_inviting_representative() {
    let server = server(|_| {});
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let mut con = console(a, &ann, "support");
    con.next_of("snapshot");
    let mut v = Visitor::arrive(a, "support", "http://shop.test/");
    command_ok(
        a,
        &ann,
        "/assist/console/invite",
        &json!({"site": "support", "visitor": v.id, "text": "Need help?"}),
    );
    let inv = v.next_of("invite");
    assert_eq!(
        (inv["rep"].as_str(), inv["text"].as_str()),
        (Some("ann"), Some("Need help?"))
    );
    let r = v.post("/assist/invite", json!({"accept": true}));
    assert_eq!(body(&r)["state"], "chatting", "{}", r.text());
    assert_eq!(body(&r)["rep"], "ann");
    assert_eq!(
        v.post("/assist/invite", json!({"accept": true})).status,
        409,
        "answered already"
    );
}

#[test]
fn canned_texts_are_kept_per_site_and_bounded() {
    let server = server(|c| c.assist.max_canned = 2);
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let mut con = console(a, &ann, "support");
    con.next_of("snapshot");
    let r = command(
        a,
        &ann,
        "/assist/canned/create",
        &json!({"site": "support", "title": "Hi", "text": "Hello, how can I help?"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = body(&r)["id"].as_i64().unwrap();
    assert_eq!(
        con.next_of("canned")["canned"][0]["text"],
        "Hello, how can I help?"
    );
    let r = command(
        a,
        &ann,
        "/assist/canned/update",
        &json!({"site": "support", "id": id, "title": "Hi", "text": "Hi there"}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    command(
        a,
        &ann,
        "/assist/canned/create",
        &json!({"site": "support", "title": "Bye", "text": "Bye"}),
    );
    let r = command(
        a,
        &ann,
        "/assist/canned/create",
        &json!({"site": "support", "title": "3", "text": "3"}),
    );
    assert_eq!(r.status, 409, "bounded: {}", r.text());
    let list = body(&get_with_cookie(a, "/assist/canned?site=support", &ann));
    assert_eq!(list["canned"][0]["text"], "Hi there");
    let r = command(
        a,
        &ann,
        "/assist/canned/delete",
        &json!({"site": "support", "id": id}),
    );
    assert_eq!(r.status, 200);
    let list = body(&get_with_cookie(a, "/assist/canned?site=support", &ann));
    assert_eq!(list["canned"].as_array().unwrap().len(), 1);
    assert_eq!(
        command(
            a,
            &ann,
            "/assist/canned/delete",
            &json!({"site": "support", "id": id})
        )
        .status,
        404
    );
}

#[test]
fn the_console_stream_resumes_by_id_and_long_polls() {
    let server = server(|_| {});
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let mut con = console(a, &ann, "support");
    let (_, snap_id) = con.next_with_id();
    let snap_id = snap_id.expect("the snapshot has an id");
    let v = Visitor::arrive(a, "support", "http://shop.test/");
    let (ev, id) = con.next_with_id();
    assert!(id.unwrap() > snap_id);
    drop(con);
    v.post(
        "/assist/page",
        json!({"url": "http://shop.test/next", "title": "Next"}),
    );
    // Resuming replays what came after the last id seen, without a snapshot.
    let mut again = Stream::open(
        a,
        "/assist/stream?site=support",
        &format!(
            "Cookie: altsock_session={ann}\r\nLast-Event-ID: {}\r\n",
            id.unwrap()
        ),
    );
    let next = again.next();
    assert_ne!(next["type"], "snapshot", "{ev} then {next}");
    let moved = again
        .next_where(|e| e["type"] == "visitor" && e["visitor"]["url"] == "http://shop.test/next");
    // Long-poll: JSON lines after `since`, at once when there are some.
    let since = moved["id"].as_u64().unwrap() - 1;
    let r = get_with_cookie(
        a,
        &format!("/assist/stream?site=support&since={since}&transport=longpoll"),
        &ann,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let line: serde_json::Value = serde_json::from_str(r.text().lines().next().unwrap()).unwrap();
    assert_eq!(line["id"], moved["id"]);
}

#[test]
fn the_activity_log_answers_json_and_csv_to_representatives_only() {
    let server = server(|_| {});
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let eve = rep(a, "eve", "other", true);
    let mut con = console(a, &ann, "support");
    con.next_of("snapshot");
    let v = Visitor::arrive(a, "support", "http://shop.test/");
    v.post("/assist/ask", json!({}));
    con.next_of("offer");
    command(
        a,
        &ann,
        "/assist/console/accept",
        &json!({"site": "support", "visitor": v.id}),
    );
    v.post("/assist/chat", json!({"text": "a, \"quoted\" line"}));
    command(
        a,
        &ann,
        "/assist/console/push_url",
        &json!({"site": "support", "visitor": v.id, "url": "https://evil.example/"}),
    );
    let wanted = ["open", "ask", "routed", "accepted", "chat", "push_refused"];
    let mut kinds = Vec::new();
    util::wait_for("the log rows", || {
        let r = get_with_cookie(a, &format!("/assist/log?visitor={}", v.id), &ann);
        kinds = body(&r)["events"]
            .as_array()
            .map(|e| {
                e.iter()
                    .map(|e| e["kind"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        wanted.iter().all(|k| kinds.iter().any(|have| have == k))
    });
    let csv = get_with_cookie(a, "/assist/log?site=support&format=csv", &ann);
    assert_eq!(csv.status, 200);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = csv.text();
    assert!(
        text.starts_with("at,site,visitor,rep,kind,detail\r\n"),
        "{text}"
    );
    assert!(text.contains("push_refused"), "{text}");
    let r = get_with_cookie(a, "/assist/log?site=support&from=0&to=1", &ann);
    assert_eq!(body(&r)["events"], json!([]), "the range is honoured");
    // Not a representative of the site: 403; no session: 401.
    assert_eq!(
        get_with_cookie(a, "/assist/log?site=support", &eve).status,
        403
    );
    assert_eq!(
        get_with_cookie(a, &format!("/assist/log?visitor={}", v.id), &eve).status,
        403
    );
    assert_eq!(
        call(a, "GET", "/assist/log?site=support", "", "").status,
        401
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_status() {
    let server = server(|c| c.assist.max_chat = 100);
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let eve = rep(a, "eve", "other", true);
    let v = Visitor::arrive(a, "support", "http://shop.test/");
    // A disallowed origin, or none.
    let open =
        json!({"site": "support", "client": v.client, "key": v.key, "url": "http://evil.test/"});
    let r = visitor_post(a, "/assist/open", Some("http://evil.test"), &open);
    assert_eq!(r.status, 403);
    assert_eq!(r.header("access-control-allow-origin"), None);
    assert_eq!(visitor_post(a, "/assist/open", None, &open).status, 403);
    let pre = call(
        a,
        "OPTIONS",
        "/assist/open",
        "Origin: http://evil.test\r\n",
        "",
    );
    assert_eq!(pre.status, 403);
    let pre = call(
        a,
        "OPTIONS",
        "/assist/open",
        &format!("Origin: {SHOP}\r\n"),
        "",
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some(SHOP));
    // A wrong hub key; an unknown site.
    let wrong_key =
        json!({"site": "support", "client": v.client, "key": "AAAA", "url": "http://shop.test/"});
    assert_eq!(
        visitor_post(a, "/assist/open", Some(SHOP), &wrong_key).status,
        401
    );
    let no_site =
        json!({"site": "nope", "client": v.client, "key": v.key, "url": "http://shop.test/"});
    assert_eq!(
        visitor_post(a, "/assist/open", Some(SHOP), &no_site).status,
        404
    );
    let bad_url =
        json!({"site": "support", "client": v.client, "key": v.key, "url": "javascript:alert(1)"});
    assert_eq!(
        visitor_post(a, "/assist/open", Some(SHOP), &bad_url).status,
        400
    );
    // A missing or wrong visitor secret.
    let r = visitor_post(a, "/assist/ask", Some(SHOP), &json!({"visitor": v.id}));
    assert_eq!(r.status, 401);
    let r = visitor_post(
        a,
        "/assist/ask",
        Some(SHOP),
        &json!({"visitor": v.id, "secret": "x".repeat(43)}),
    );
    assert_eq!(r.status, 401);
    let reopen = json!({"site": "support", "client": v.client, "key": v.key, "url": "http://shop.test/", "visitor": v.id, "secret": "nope"});
    assert_eq!(
        visitor_post(a, "/assist/open", Some(SHOP), &reopen).status,
        401
    );
    // Oversized chat.
    assert_eq!(v.post("/assist/ask", json!({})).status, 200);
    let r = v.post("/assist/chat", json!({"text": "x".repeat(101)}));
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(
        v.post("/assist/chat", json!({"text": "x".repeat(100)}))
            .status,
        200
    );
    assert_eq!(v.post("/assist/chat", json!({"text": "  "})).status, 400);
    // A push to a foreign origin (tested with the allowlist above) and a
    // scheme that is not http(s).
    let r = command(
        a,
        &ann,
        "/assist/console/push_url",
        &json!({"site": "support", "visitor": v.id, "url": "javascript:alert(1)"}),
    );
    assert_eq!(r.status, 400);
    // A non-member opening the console, its stream, or a command.
    assert_eq!(
        get_with_cookie(a, "/assist/console?site=support", &eve).status,
        403
    );
    assert_eq!(
        get_with_cookie(a, "/assist/stream?site=support", &eve).status,
        403
    );
    let r = command(
        a,
        &eve,
        "/assist/console/pull",
        &json!({"site": "support", "visitor": v.id}),
    );
    assert_eq!(r.status, 403);
    // No session: the page sends to log in, the stream is 401.
    assert_eq!(
        call(a, "GET", "/assist/console?site=support", "", "").status,
        303
    );
    assert_eq!(
        call(a, "GET", "/assist/stream?site=support", "", "").status,
        401
    );
    // A member's page has the strict CSP.
    let page = get_with_cookie(a, "/assist/console?site=support", &ann);
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));
    // A console command from another origin.
    let cross = call(
        a,
        "POST",
        "/assist/console/pull",
        &format!("Content-Type: application/json\r\nCookie: altsock_session={ann}\r\nOrigin: http://evil.test\r\n"),
        &json!({"site": "support", "visitor": v.id}).to_string(),
    );
    assert_eq!(cross.status, 403);
}

#[test]
fn visitors_are_rate_limited_and_let_go_when_their_channel_is_gone() {
    let server = server(|c| {
        c.assist.visitor_rate = 1;
        c.assist.visitor_linger = Duration::from_millis(100);
    });
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let mut con = console(a, &ann, "support");
    con.next_of("snapshot");
    let v = Visitor::arrive(a, "support", "http://shop.test/");
    let statuses: Vec<u16> = (0..5)
        .map(|_| v.post("/assist/typing", json!({})).status)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let limited = v.post("/assist/typing", json!({}));
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    // The browser goes away: its hub connection closes.
    let Visitor { mailbox, id, .. } = v;
    drop(mailbox);
    let left = con.next_of("visitor_left");
    assert_eq!(left["visitor"], id.as_str());
}

#[test]
fn skills_and_away_steer_routing() {
    let server = server(|_| {});
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let bob = rep(a, "bob", "support", false);
    // bob's console is held first: he has been idle longest.
    let mut bobs = console(a, &bob, "support");
    bobs.next_of("snapshot");
    let mut anns = console(a, &ann, "support");
    anns.next_of("snapshot");
    let r = command(
        a,
        &ann,
        "/assist/console/skills",
        &json!({"site": "support", "skills": ["fr", "Billing"]}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(body(&r)["skills"], json!(["billing", "fr"]));
    let french = Visitor::arrive(a, "support", "http://shop.test/fr");
    french.post("/assist/ask", json!({"skills": ["fr"]}));
    let offer = anns.next_where(|e| e["type"] == "offer" && e["visitor"] == french.id.as_str());
    assert_eq!(offer["rep"], "ann", "only ann speaks French");
    // Away: bob is offered nothing; the visitor waits.
    let r = command(
        a,
        &bob,
        "/assist/console/away",
        &json!({"site": "support", "away": true}),
    );
    assert_eq!(body(&r)["away"], true);
    let rep_ev = anns.next_where(|e| e["type"] == "rep" && e["rep"]["name"] == "bob");
    assert_eq!(rep_ev["rep"]["away"], true);
    assert_eq!(rep_ev["rep"]["available"], false);
    let plain = Visitor::arrive(a, "support", "http://shop.test/");
    let r = plain.post("/assist/ask", json!({}));
    let offer = anns.next_where(|e| e["type"] == "offer" && e["visitor"] == plain.id.as_str());
    assert_eq!(offer["rep"], "ann", "{}", r.text());
}

#[test]
fn new_visitors_from_one_address_are_limited() {
    let server = server(|c| c.assist.arrivals_per_addr = 1);
    let a = server.addr;
    rep(a, "ann", "support", true);
    let r = call(a, "POST", "/hub/client", "", "");
    let creds = body(&r);
    let open = json!({"site": "support", "client": creds["client"], "key": creds["key"], "url": "http://shop.test/"});
    let statuses: Vec<u16> = (0..5)
        .map(|_| visitor_post(a, "/assist/open", Some(SHOP), &open).status)
        .collect();
    assert_eq!(&statuses[..3], &[200, 200, 200], "a burst of three");
    assert_eq!(statuses[3], 429, "{statuses:?}");
}

#[test]
fn a_representative_hands_a_chat_to_another() {
    let server = server(|_| {});
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let bob = rep(a, "bob", "support", false);
    let mut anns = console(a, &ann, "support");
    anns.next_of("snapshot");
    let mut bobs = console(a, &bob, "support");
    bobs.next_of("snapshot");
    let mut v = Visitor::arrive(a, "support", "http://shop.test/");
    v.post("/assist/ask", json!({"text": "hello?"}));
    let offer = anns.next_of("offer");
    let (first, sid, other, other_sid) = if offer["rep"] == "ann" {
        ("ann", &ann, "bob", &bob)
    } else {
        ("bob", &bob, "ann", &ann)
    };
    let r = command(
        a,
        sid,
        "/assist/console/accept",
        &json!({"site": "support", "visitor": v.id}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(v.next_where_state("chatting")["rep"], first);
    command_ok(
        a,
        sid,
        "/assist/console/transfer",
        &json!({"site": "support", "visitor": v.id, "to": other}),
    );
    let offer = bobs.next_where(|e| e["type"] == "offer" && e["rep"] == other);
    assert_eq!(offer["visitor"], v.id.as_str());
    // The new representative sees the chat so far.
    let seen = bobs.next_where(|e| e["type"] == "visitor" && e["visitor"]["rep"] == other);
    assert_eq!(seen["visitor"]["transcript"][0]["text"], "hello?");
    command_ok(
        a,
        other_sid,
        "/assist/console/accept",
        &json!({"site": "support", "visitor": v.id}),
    );
    assert_eq!(v.next_where_state("chatting")["rep"], other);
    // The one who handed it on no longer may write in it.
    let r = command(
        a,
        sid,
        "/assist/console/chat",
        &json!({"site": "support", "visitor": v.id, "text": "hi"}),
    );
    assert_eq!(r.status, 409);
    let r = command(
        a,
        other_sid,
        "/assist/console/chat",
        &json!({"site": "support", "visitor": v.id, "text": "hi"}),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_burst_of_queue_changes_is_announced_after_its_window() {
    // A tick far away: only the alarm can announce the queue's last change.
    let builder = altsock::Engine::builder().poll_interval(Duration::from_secs(60));
    let server = util::spawn_server(builder, |c| c.assist.origins = vec![SHOP.into()]);
    let a = server.addr;
    rep(a, "ann", "support", true);
    let mut visitors: Vec<Visitor> = (0..3)
        .map(|i| Visitor::arrive(a, "support", &format!("http://shop.test/{i}")))
        .collect();
    for (i, v) in visitors.iter().enumerate() {
        assert_eq!(body(&v.post("/assist/ask", json!({})))["position"], i + 1);
    }
    for (i, v) in visitors.iter_mut().enumerate() {
        assert_eq!(v.next_of("queue")["position"], i + 1);
    }
    assert_eq!(visitors[0].post("/assist/end", json!({})).status, 200);
    assert_eq!(visitors[2].next_of("queue")["position"], 2);
}

/// A console's view of the site's queue, following `queue` events (whole or
/// changes) and starting over from a snapshot when told to (`resync`).
struct QueueView {
    ids: Vec<String>,
    /// Streams followed (the first and one per `resync`).
    streams: usize,
    /// `queue` events that carried the whole queue.
    wholes: usize,
}

impl QueueView {
    /// Takes one console event; false when the console must start over.
    fn take(&mut self, ev: &serde_json::Value) -> bool {
        let strings = |v: &serde_json::Value| -> Vec<String> {
            let list = v.as_array().cloned().unwrap_or_default();
            list.iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        };
        match ev["type"].as_str() {
            Some("snapshot") => self.ids = strings(&ev["queue"]),
            Some("resync") => return false,
            Some("queue") if ev["queue"].is_array() => {
                self.wholes += 1;
                self.ids = strings(&ev["queue"]);
            }
            Some("queue") => {
                let gone = strings(&ev["removed"]);
                self.ids.retain(|id| !gone.contains(id));
                for a in ev["added"].as_array().unwrap() {
                    let at = a[0].as_u64().unwrap() as usize;
                    self.ids.insert(at, a[1].as_str().unwrap().to_string());
                }
                assert_eq!(self.ids.len() as u64, ev["length"].as_u64().unwrap());
            }
            _ => {}
        }
        true
    }

    /// Follows `stream` (reopened from a snapshot on `resync`, the only way
    /// a new stream is opened) until the view equals `want`; a stream the
    /// server closed fails the read.
    fn follow_until(&mut self, stream: &mut Stream, reopen: impl Fn() -> Stream, want: &[String]) {
        while self.ids != want {
            if !self.take(&stream.next()) {
                *stream = reopen();
                self.streams += 1;
            }
        }
    }
}

#[test]
fn a_burst_of_asks_keeps_every_console_open_and_its_queue_true() {
    const ASKERS: usize = 1200;
    // A small slow-consumer limit; one console reads through a 4 KiB
    // receive buffer and not at all during the burst.
    let builder = altsock::Engine::builder()
        .poll_interval(Duration::from_millis(20))
        .keepalive_interval(Duration::from_secs(5))
        .max_pending_output(16 * 1024);
    let server = util::spawn_server(builder, |c| {
        c.assist.origins = vec![SHOP.into()];
        c.assist.max_queue = 2 * ASKERS;
        c.assist.arrivals_per_addr = 1_000_000;
        c.hub.max_topics_per_addr = 100_000;
    });
    let a = server.addr;
    let ann = rep(a, "ann", "support", true);
    let open_console = |client: util::Client| {
        let cookie = format!("Cookie: altsock_session={ann}\r\n");
        Stream::open_on(client, a, "/assist/stream?site=support", &cookie)
    };
    let mut quick = console(a, &ann, "support");
    let mut slow = open_console(util::Client::connect_small_rcvbuf(a, 4096));
    let visitors: Vec<Visitor> = (0..ASKERS)
        .map(|i| Visitor::arrive(a, "support", &format!("http://shop.test/{i}")))
        .collect();
    let answers: Vec<(String, serde_json::Value)> = std::thread::scope(|scope| {
        let workers: Vec<_> = visitors
            .chunks(ASKERS / 6)
            .map(|chunk| {
                scope.spawn(move || {
                    let ask = |v: &Visitor| (v.id.clone(), body(&v.post("/assist/ask", json!({}))));
                    chunk.iter().map(ask).collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    // ann takes 4 (her cap); the rest wait, in the order of their answers.
    let mut queued: Vec<(u64, String)> = answers
        .iter()
        .filter_map(|(id, ans)| Some((ans["position"].as_u64().filter(|p| *p > 0)?, id.clone())))
        .collect();
    queued.sort();
    let want: Vec<String> = queued.iter().map(|(_, id)| id.clone()).collect();
    assert_eq!(want.len(), ASKERS - 4, "all but ann's 4 wait");
    assert!(queued
        .iter()
        .enumerate()
        .all(|(i, (p, _))| *p == i as u64 + 1));
    let mut view = QueueView {
        ids: vec![],
        streams: 1,
        wholes: 0,
    };
    view.follow_until(&mut quick, || console(a, &ann, "support"), &want);
    let mut slow_view = QueueView {
        ids: vec![],
        streams: 1,
        wholes: 0,
    };
    slow_view.follow_until(&mut slow, || open_console(util::Client::connect(a)), &want);
    // Visitors only joined the queue: after a stream's first `queue` event
    // (the queue from empty), each one carried the change, not every id.
    for v in [&view, &slow_view] {
        assert!(v.wholes <= v.streams, "{} whole of {}", v.wholes, v.streams);
    }
    // Nobody was cut off as a slow consumer.
    let metrics = get_with_cookie(a, "/metrics", &ann).text();
    assert!(
        !metrics.contains("reason=\"slow_consumer\"}")
            || metrics.contains("reason=\"slow_consumer\"} 0"),
        "{metrics}"
    );
}
