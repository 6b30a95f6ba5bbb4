//! Static URLs and pages: `/NAME` (and email and phone aliases) answer `301`
//! to `/call/NAME`, unknown names a `404` page; the communications page shows
//! anyone presence and options, asks for a group's password (`403` when
//! wrong), and gives unregistered requestors a guest session they can chat
//! with; `/home` lists the active group; the chat invitation is added to the
//! invitee's next HTML page; user text is always HTML-escaped.

mod presence_support;
mod util;

use presence_support::*;
use serde_json::{json, Value};

fn register_full(a: std::net::SocketAddr, name: &str, email: &str, phone: &str) {
    let r = post(
        a,
        "/register",
        &json!({"username": name, "password": "correct horse", "email": email, "phone": phone}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
}

/// The boot JSON of a page.
fn boot(html: &str) -> Value {
    let start = html.find("id=\"altsock-boot\">").expect("boot") + "id=\"altsock-boot\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    serde_json::from_str(&html[start..end]).unwrap()
}

#[test]
fn static_urls_redirect_names_and_aliases() {
    let server = server();
    let a = server.addr;
    register_full(a, "alice", "alice@example.com", "+1 555 0100");
    let sid = user(a, "bob");
    act(a, "/groups", "bob", &sid, json!({"name": "team"}));
    for (path, to) in [
        ("/alice", "/call/alice"),
        ("/alice@example.com", "/call/alice"),
        ("/+15550100", "/call/alice"),
        ("/team", "/call/team"),
    ] {
        let r = get(a, path);
        assert_eq!(r.status, 301, "{path}");
        assert_eq!(r.header("location"), Some(to), "{path}");
    }
    let missing = get(a, "/nobody");
    assert_eq!(missing.status, 404);
    assert!(missing
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(missing.text().contains("nobody"));
    let escaped = get(a, "/%3Cscript%3Ex");
    assert_eq!(escaped.status, 404);
    assert!(escaped.text().contains("&lt;script&gt;x") && !escaped.text().contains("<script>x"));
}

#[test]
fn call_page_shows_presence_and_options_to_anyone() {
    let server = server();
    let a = server.addr;
    register_full(a, "alice", "alice@example.com", "+1 555 0100");
    let page = get(a, "/call/alice");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("data-user=\"alice\" class=\"offline\""),
        "{html}"
    );
    assert!(html.contains("class=\"chat\" data-user=\"alice\" disabled"));
    assert!(html.contains("Leave a message"));
    assert!(html.contains("href=\"tel:+15550100\""));
    let cookie = page.header("set-cookie").expect("guest cookie");
    assert!(cookie.contains("HttpOnly"));
    let alice = login(a, "alice");
    let _pipe = Pipe::open(a, "alice", &alice, false);
    let html = get(a, "/call/alice").text();
    assert!(html.contains("data-user=\"alice\" class=\"online\""));
    assert!(html.contains("class=\"chat\" data-user=\"alice\">"));
    assert_eq!(get(a, "/call/nobody").status, 404);
}

#[test]
fn a_guest_gets_a_session_a_pipe_and_can_chat() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let mut alice_pipe = Pipe::open(a, "alice", &alice, false);
    let page = get(a, "/call/alice");
    let b = boot(&page.text());
    let guest = b["me"].as_str().unwrap().to_string();
    let gsid = session_of(&page);
    assert!(guest.starts_with("guest-"));
    assert!(b.get("id").is_none(), "no session id in the page: {b}");
    assert!(!page.text().contains(&gsid), "no session id in the page");
    let mut guest_pipe = Pipe::open_query(a, &format!("me={guest}&id={gsid}&watch=alice"), true);
    let r = get(a, &format!("/initchat?me={guest}&to=alice&id={gsid}"));
    assert_eq!(r.status, 200);
    assert_eq!(alice_pipe.next_of("initChat").data["with"], guest.as_str());
    let r = send_chat(a, &guest, &gsid, "alice", "hello from a guest");
    assert_eq!(r.status, 202);
    assert_eq!(alice_pipe.next_of("chat").data["msg"], "hello from a guest");
    let r = send_chat(a, "alice", &alice, &guest, "welcome");
    assert_eq!(r.status, 202);
    assert_eq!(guest_pipe.next_of("chat").data["msg"], "welcome");
    // The guest watches Alice's presence: she goes offline, the guest hears.
    drop(alice_pipe);
    let ev = guest_pipe.next_of("update");
    assert_eq!(
        (ev.data["user"].as_str(), ev.data["online"].as_bool()),
        (Some("alice"), Some(false))
    );
    // Guests have no groups.
    assert_eq!(
        act(a, "/groups", &guest, &gsid, json!({"name": "g2"})).status,
        403
    );
}

#[test]
fn a_protected_group_page_asks_for_its_password() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    group_with_password(a, "alice", &alice, "club", "sesame");
    let ask = get(a, "/call/club");
    assert_eq!(ask.status, 200);
    assert!(ask.text().contains("type=\"password\""));
    assert!(
        !ask.text().contains("data-user=\"alice\""),
        "members hidden"
    );
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let wrong = call(a, "POST", "/call/club", form, "password=nope");
    assert_eq!(wrong.status, 403);
    let right = call(a, "POST", "/call/club", form, "password=sesame");
    assert_eq!(right.status, 200);
    assert!(right.text().contains("data-user=\"alice\""));
    let open = get(a, "/call/club?password=sesame");
    assert_eq!(open.status, 200);
}

#[test]
fn home_needs_a_session_and_lists_the_active_group() {
    let server = server();
    let a = server.addr;
    let index = get(a, "/");
    assert_eq!(index.status, 200);
    assert!(index.text().contains("id=\"register\"") && index.text().contains("id=\"login\""));
    assert!(index
        .header("content-security-policy")
        .unwrap()
        .contains("script-src 'self'"));
    let home = get(a, "/home");
    assert_eq!(home.status, 303);
    assert_eq!(home.header("location"), Some("/"));
    let alice = user(a, "alice");
    register(a, "bob");
    act(a, "/contacts", "alice", &alice, json!({"name": "bob"}));
    let home = get_with_cookie(a, "/home", &alice);
    assert_eq!(home.status, 200);
    let html = home.text();
    assert!(
        html.contains("data-user=\"bob\" class=\"offline\""),
        "{html}"
    );
    assert_eq!(boot(&html)["me"], "alice");
    assert!(
        html.contains("<script src=\"/altsock.js\"></script>"),
        "the page's pipe is the hub library's shared stream"
    );
    for script in ["/static/presence.js", "/altsock.js"] {
        let js = get(a, script);
        assert_eq!(js.status, 200);
        assert!(
            !js.text().contains("innerHTML"),
            "{script}: live data goes in as text only"
        );
    }
}

#[test]
fn an_invitation_is_added_to_the_invitees_next_page() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let bob = user(a, "bob");
    let msg = "<img src=x onerror=alert(1)> let's talk";
    let r = get(
        a,
        &format!(
            "/initchat?me=alice&to=bob&id={alice}&msg={}",
            "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E%20let's%20talk"
        ),
    );
    assert_eq!(r.status, 200);
    assert_eq!(body(&r)["online"], false);
    // Alice's own pages are untouched.
    assert!(!get_with_cookie(a, "/", &alice)
        .text()
        .contains("chatwin invite"));
    // Bob's next HTML page, whatever it is, carries the invitation window.
    let page = get_with_cookie(a, "/nosuchpage", &bob).text();
    assert!(
        page.contains("class=\"chatwin invite\" data-with=\"alice\""),
        "{page}"
    );
    assert!(page.contains("<header>Chat invitation</header>"));
    assert!(page.contains("class=\"invite-from\">alice</b>"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt; let&#39;s talk"));
    assert!(!page.contains(msg));
    assert!(page.contains("<form class=\"reply\">"));
    assert!(
        page.contains("\"me\":\"bob\""),
        "the window opens Bob's pipe"
    );
    assert!(!page.contains(&bob), "no session id in the page");
    // Shown once.
    assert!(!get_with_cookie(a, "/", &bob)
        .text()
        .contains("chatwin invite"));
}

#[test]
fn a_call_page_pipe_watches_the_page_it_shows() {
    let server = server();
    let a = server.addr;
    let alice = user(a, "alice");
    let carol = user(a, "carol");
    let mut carol_pipe = Pipe::open_query(a, &format!("me=carol&id={carol}&watch=alice"), false);
    let _alice_pipe = Pipe::open(a, "alice", &alice, false);
    let ev = carol_pipe.next();
    assert_eq!(
        (ev.data["user"].as_str(), ev.data["online"].as_bool()),
        (Some("alice"), Some(true))
    );
    // A protected group is watched only by members or after its password.
    group_with_password(a, "alice", &alice, "club", "sesame");
    let bob = user(a, "bob");
    let mut peeker = Pipe::open_query(a, &format!("me=carol&id={carol}&watch=club"), false);
    let _bob_pipe = Pipe::open(a, "bob", &bob, false);
    act(
        a,
        "/groups/club/join",
        "bob",
        &bob,
        json!({"password": "sesame"}),
    );
    peeker.quiet(std::time::Duration::from_millis(100));
}
