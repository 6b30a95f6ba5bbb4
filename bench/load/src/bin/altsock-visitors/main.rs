//! `altsock-visitors`: the load tool's visitor mode for live assist (issue
//! 8), run by `bench/assist.sh` against one `altsock serve` whose site's
//! representatives were seeded with `altsock seed-bench`. Each visitor is
//! what the widget makes of a browser: a hub client (`POST /hub/client`),
//! its held hub connection (`GET /poll`, SSE, also following channel
//! `bench`), and an assist visitor opened on it (`POST /assist/open`). In
//! phases, each bounded in time:
//!
//! 1. **idle**: N hub connections alone, then the same N opened as assist
//!    visitors; the server's RSS before, with the hub connections, and with
//!    the visitors, so the cost of a visitor *above* its hub connection is
//!    `(rss_visitors - rss_hub) / N`;
//! 2. **presenter**: the representatives hold their console streams; each
//!    round publishes one hub message to channel `bench` (the hub's fan-out)
//!    and then one presenter card to every visitor of the site (`POST
//!    /assist/console/present {all: true}`), each with a unique marker, and
//!    times the span from the command to every visitor's read of it;
//! 3. **routing**: A of the visitors ask to talk at once (A connections, all
//!    connected first, then every `POST /assist/ask` written back to back);
//!    reports the time until every one is answered (offered or queued) and
//!    checks from the answers and the consoles' `offer` events that no ask
//!    was lost and none offered twice.
//!
//! It only connects to `127.0.0.0/8`. A benchmark, not a test.

#[path = "../../common.rs"]
#[allow(dead_code)]
mod common;
mod http;
mod streams;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use altsock::parse_duration;
use clap::Parser;
use common::{cpu_ticks, source_addr};
use http::Http;
use serde_json::json;
use streams::{Kind, Streams};

/// Linux exposes `/proc` CPU times in USER_HZ, fixed at 100 per second.
const TICKS_PER_SEC: u64 = 100;

/// Holds N live-assist visitors on `altsock serve` and measures their
/// memory, the presenter's push against the hub's fan-out, and routing.
#[derive(Parser, Debug)]
#[command(name = "altsock-visitors", version)]
struct Args {
    /// The server, an address in 127.0.0.0/8.
    #[arg(long, default_value = "127.0.0.1:9000")]
    target: SocketAddr,
    /// The server's process id, for RSS and CPU.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The site (a group whose members are the representatives).
    #[arg(long, default_value = "support")]
    site: String,
    /// Visitors to hold.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    visitors: usize,
    /// Representatives: accounts PREFIX1..PREFIXR of the site, each holding
    /// one console stream (seed them with `altsock seed-bench --group SITE`).
    #[arg(long, default_value_t = 20)]
    reps: usize,
    /// The representatives' account name prefix.
    #[arg(long, default_value = "rep")]
    rep_prefix: String,
    /// The representatives' password.
    #[arg(long, default_value = "bench-password")]
    rep_password: String,
    /// The hub's publisher token (for the hub fan-out next to the presenter's).
    #[arg(long)]
    publish_token: Option<String>,
    /// Visitors asking to talk at once in the routing phase.
    #[arg(long, default_value_t = 1000)]
    askers: usize,
    /// Presenter and hub rounds.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// The first source address; connections spread across the next ones.
    #[arg(long, default_value = "127.1.0.1")]
    source_base: Ipv4Addr,
    /// How many source addresses.
    #[arg(long, default_value_t = 64)]
    source_addrs: u32,
    /// Connections opened at once, at most.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Pause before each RSS reading and between rounds.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    settle: Duration,
    /// Give up on a phase step after this long.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    step_timeout: Duration,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("altsock-visitors: {e}");
        std::process::exit(1);
    }
}

/// One visitor: its hub client and, once opened, its assist id and secret.
struct Visitor {
    client: String,
    key: String,
    id: String,
    secret: String,
}

fn run(args: &Args) -> io::Result<()> {
    if args.target.ip().to_string().split('.').next() != Some("127") {
        return Err(io::Error::other("the target must be in 127.0.0.0/8"));
    }
    let mut setup = Http::new(args.target, Ipv4Addr::new(127, 0, 0, 1));
    let sessions = log_in(&mut setup, args)?;
    let mut streams = Streams::new(args.target)?;
    let rss0 = rss(args)?;
    let mut visitors = hub_clients(&mut setup, args)?;
    hold_visitors(&mut streams, args, &visitors)?;
    streams.drain(args.settle)?;
    let rss_hub = rss(args)?;
    open_visitors(&mut setup, &mut streams, args, &mut visitors)?;
    streams.drain(args.settle)?;
    let rss_visitors = rss(args)?;
    report_memory(args, rss0, rss_hub, rss_visitors, streams.visitors_held());
    hold_consoles(&mut streams, args, &sessions)?;
    presenter_rounds(&mut streams, args, &sessions[0])?;
    routing(&mut streams, args, &visitors)?;
    report_failures(&streams);
    Ok(())
}

fn say(key: &str, value: impl std::fmt::Display) {
    println!("visitors: {key} = {value}");
}

/// The server's `VmRSS` in KiB (0 without a pid).
fn rss(args: &Args) -> io::Result<u64> {
    let Some(pid) = args.server_pid else {
        return Ok(0);
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other("no VmRSS"))
}

fn server_cpu_ms(args: &Args) -> io::Result<u64> {
    Ok(match args.server_pid {
        Some(pid) => cpu_ticks(pid)? * 1000 / TICKS_PER_SEC,
        None => 0,
    })
}

/// Logs every representative in; returns their session ids.
fn log_in(http: &mut Http, args: &Args) -> io::Result<Vec<String>> {
    let mut sessions = Vec::new();
    for i in 1..=args.reps.max(1) {
        let name = format!("{}{i}", args.rep_prefix);
        let body = json!({ "username": name, "password": args.rep_password });
        let a = http.post_json("/login", "", &body)?;
        if a.status != 200 {
            return Err(io::Error::other(format!(
                "login {name}: {} {}; seed with `altsock seed-bench --group {} --prefix {} -n {}`",
                a.status,
                a.text(),
                args.site,
                args.rep_prefix,
                args.reps
            )));
        }
        sessions.push(a.json()["session"].as_str().unwrap_or_default().to_string());
    }
    Ok(sessions)
}

/// `POST /hub/client` N times: each visitor's hub client id and mailbox key.
fn hub_clients(http: &mut Http, args: &Args) -> io::Result<Vec<Visitor>> {
    let started = Instant::now();
    let mut out = Vec::with_capacity(args.visitors);
    for _ in 0..args.visitors {
        let a = http.call("POST", "/hub/client", "", "")?;
        let v = a.json();
        if a.status != 200 {
            return Err(io::Error::other(format!(
                "/hub/client: {} {}",
                a.status,
                a.text()
            )));
        }
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        out.push(Visitor {
            client: text("client"),
            key: text("key"),
            id: String::new(),
            secret: String::new(),
        });
    }
    say(
        "hub_clients_secs",
        format!("{:.2}", started.elapsed().as_secs_f64()),
    );
    Ok(out)
}

/// Opens every visitor's hub connection (`GET /poll`, SSE) and waits until
/// all are held.
fn hold_visitors(streams: &mut Streams, args: &Args, visitors: &[Visitor]) -> io::Result<()> {
    let started = Instant::now();
    for (i, v) in visitors.iter().enumerate() {
        while streams.in_flight() >= args.in_flight {
            streams.turn(Duration::from_millis(20))?;
        }
        let request = format!(
            "GET /poll?client={}&key={}&channels=bench&transport=sse HTTP/1.1\r\nHost: {}\r\n\
             Accept: text/event-stream\r\nOrigin: http://{}\r\n\r\n",
            v.client, v.key, args.target, args.target
        );
        let source = source_addr(args.source_base, args.source_addrs, i);
        streams.open(Kind::Visitor, source, request)?;
    }
    let n = visitors.len();
    streams.run_until(args.step_timeout, |s| s.visitors_held() + s.failed >= n)?;
    say("hub_held", streams.visitors_held());
    say(
        "hub_connect_secs",
        format!("{:.2}", started.elapsed().as_secs_f64()),
    );
    Ok(())
}

/// `POST /assist/open` for every visitor (as the widget does on page load).
fn open_visitors(
    http: &mut Http,
    streams: &mut Streams,
    args: &Args,
    visitors: &mut [Visitor],
) -> io::Result<()> {
    let started = Instant::now();
    let origin = format!("Origin: http://{}\r\n", args.target);
    for (i, v) in visitors.iter_mut().enumerate() {
        let body = json!({
            "site": args.site, "client": v.client, "key": v.key,
            "url": format!("http://{}/assist/demo?v={i}", args.target),
            "title": "Assist demo", "referrer": "https://search.example/?q=altsock",
            "cookies": { "plan": "pro", "cart": (i % 7).to_string() },
        });
        let a = http.post_json("/assist/open", &origin, &body)?;
        if a.status != 200 {
            return Err(io::Error::other(format!(
                "/assist/open: {} {}",
                a.status,
                a.text()
            )));
        }
        let j = a.json();
        v.id = j["visitor"].as_str().unwrap_or_default().to_string();
        v.secret = j["secret"].as_str().unwrap_or_default().to_string();
        if i % 500 == 499 {
            streams.turn(Duration::ZERO)?;
        }
    }
    say("opened", visitors.len());
    say(
        "open_secs",
        format!("{:.2}", started.elapsed().as_secs_f64()),
    );
    Ok(())
}

/// Failed connections so far, and the first failure.
fn report_failures(streams: &Streams) {
    say("failed_connections", streams.failed);
    if let Some(e) = &streams.first_error {
        println!("visitors: note: first failure: {e}");
    }
}

fn report_memory(args: &Args, rss0: u64, hub: u64, visitors: u64, held: usize) {
    if args.server_pid.is_none() || held == 0 {
        return;
    }
    let per = |a: u64, b: u64| (b as f64 - a as f64) * 1024.0 / held as f64;
    say("rss_before_kb", rss0);
    say("rss_hub_kb", hub);
    say("rss_visitors_kb", visitors);
    say("rss_per_hub_conn_bytes", format!("{:.0}", per(rss0, hub)));
    say(
        "rss_per_visitor_above_hub_bytes",
        format!("{:.0}", per(hub, visitors)),
    );
}

/// Each representative holds one console stream of the site.
fn hold_consoles(streams: &mut Streams, args: &Args, sessions: &[String]) -> io::Result<()> {
    let before = streams.held;
    for (i, sid) in sessions.iter().enumerate() {
        let request = format!(
            "GET /assist/stream?site={} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\
             Cookie: altsock_session={sid}\r\n\r\n",
            args.site, args.target
        );
        streams.open(
            Kind::Console,
            Ipv4Addr::new(127, 0, 2, 1 + i as u8),
            request,
        )?;
    }
    let want = before + sessions.len();
    let failed = streams.failed;
    streams.run_until(args.step_timeout, |s| s.held + (s.failed - failed) >= want)?;
    say("consoles_held", streams.held - before);
    report_failures(streams);
    streams.drain(args.settle)?;
    Ok(())
}

/// The rounds: the hub's fan-out to channel `bench`, then the presenter's
/// card to every visitor, each timed from the command to every read.
fn presenter_rounds(streams: &mut Streams, args: &Args, sid: &str) -> io::Result<()> {
    let mut hub_rounds = Vec::new();
    let mut present_rounds = Vec::new();
    let mut control = Http::new(args.target, Ipv4Addr::new(127, 0, 3, 1));
    for r in 1..=args.rounds {
        if let Some(token) = &args.publish_token {
            let marker = format!("hubmark-{r:04}-{}", std::process::id());
            let headers = format!("Authorization: Bearer {token}\r\nContent-Type: text/plain\r\n");
            let round = timed_round(
                streams,
                args,
                r * 2 - 1,
                &marker,
                |c| c.call("POST", "/pub/bench", &headers, &marker),
                &mut control,
            )?;
            print_round("hub", r, &round);
            hub_rounds.push(round);
        }
        let marker = format!("presentmark-{r:04}-{}", std::process::id());
        let body = json!({ "site": args.site, "all": true,
                           "card": { "title": marker, "text": "Webinar at 3" } });
        let headers = format!(
            "Cookie: altsock_session={sid}\r\nOrigin: http://{}\r\n",
            args.target
        );
        let round = timed_round(
            streams,
            args,
            r * 2,
            &marker,
            |c| c.post_json("/assist/console/present", &headers, &body),
            &mut control,
        )?;
        print_round("present", r, &round);
        report_failures(streams);
        present_rounds.push(round);
    }
    summarize("hub", &hub_rounds);
    summarize("present", &present_rounds);
    Ok(())
}

/// One round's figures.
struct Round {
    received: usize,
    p50: f64,
    p99: f64,
    max: f64,
    status: u16,
    server_cpu_ms: u64,
}

fn timed_round(
    streams: &mut Streams,
    args: &Args,
    round: u32,
    marker: &str,
    command: impl FnOnce(&mut Http) -> io::Result<http::Answer>,
    control: &mut Http,
) -> io::Result<Round> {
    let alive = streams.visitors_held();
    let cpu = server_cpu_ms(args)?;
    streams.start_round(round, marker);
    // The command's answer is read before the loop runs: the visitors'
    // reads wait in their sockets and are stamped late by at most that long
    // (the command is answered once its pushes are queued).
    let answer = command(control)?;
    streams.run_until(args.step_timeout, |s| s.latencies.len() >= alive)?;
    let cpu = server_cpu_ms(args)? - cpu;
    let mut lat: Vec<f64> = streams
        .latencies
        .iter()
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    lat.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        lat.get(((lat.len() as f64 * q).ceil() as usize).clamp(1, lat.len().max(1)) - 1)
            .copied()
            .unwrap_or(0.0)
    };
    if !(200..300).contains(&answer.status) {
        println!(
            "visitors: note: round {round} answered {} {}",
            answer.status,
            answer.text()
        );
    }
    streams.drain(args.settle)?;
    Ok(Round {
        received: lat.len(),
        p50: pick(0.50),
        p99: pick(0.99),
        max: lat.last().copied().unwrap_or(0.0),
        status: answer.status,
        server_cpu_ms: cpu,
    })
}

fn print_round(what: &str, r: u32, round: &Round) {
    println!(
        "visitors: {what} round {r}: {} received, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, status {}, server cpu {} ms",
        round.received, round.p50, round.p99, round.max, round.status, round.server_cpu_ms
    );
}

fn summarize(what: &str, rounds: &[Round]) {
    if rounds.is_empty() {
        return;
    }
    let median = |f: &dyn Fn(&Round) -> f64| {
        let mut v: Vec<f64> = rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    say(
        &format!("{what}_p50_ms"),
        format!("{:.2}", median(&|r| r.p50)),
    );
    say(
        &format!("{what}_p99_ms"),
        format!("{:.2}", median(&|r| r.p99)),
    );
    say(
        &format!("{what}_max_ms"),
        format!("{:.2}", median(&|r| r.max)),
    );
    say(
        &format!("{what}_received_min"),
        rounds.iter().map(|r| r.received).min().unwrap_or(0),
    );
    say(
        &format!("{what}_server_cpu_ms"),
        format!("{:.0}", median(&|r| r.server_cpu_ms as f64)),
    );
}

/// A of the visitors ask at once; every answer is timed and checked.
fn routing(streams: &mut Streams, args: &Args, visitors: &[Visitor]) -> io::Result<()> {
    let askers = &visitors[..args.askers.min(visitors.len())];
    let offers_before = streams.offers.len();
    let mut index_of = HashMap::new();
    let origin = format!("http://{}", args.target);
    for (i, v) in askers.iter().enumerate() {
        let body = json!({ "site": args.site, "visitor": v.id, "secret": v.secret }).to_string();
        let request = format!(
            "POST /assist/ask HTTP/1.1\r\nHost: {}\r\nOrigin: {origin}\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            args.target,
            body.len()
        );
        let source = source_addr(Ipv4Addr::new(127, 4, 0, 1), args.source_addrs, i);
        let conn = streams.open(Kind::Once, source, request)?;
        index_of.insert(conn, i);
    }
    let n = askers.len();
    streams.run_until(args.step_timeout, |s| s.ready() >= n)?;
    let cpu = server_cpu_ms(args)?;
    streams.fire();
    streams.run_until(args.step_timeout, |s| s.replies.len() >= n)?;
    let all_answered = streams
        .replies
        .iter()
        .map(|r| r.after)
        .max()
        .unwrap_or_default();
    let cpu = server_cpu_ms(args)? - cpu;
    streams.drain(args.settle)?;
    say("routing_askers", n);
    say("routing_answered", streams.replies.len());
    say(
        "routing_all_answered_ms",
        format!("{:.1}", all_answered.as_secs_f64() * 1e3),
    );
    say("routing_server_cpu_ms", cpu);
    check_routing(streams, askers, &index_of, offers_before);
    Ok(())
}

/// No ask lost (every one answered 200, offered or queued), none offered
/// twice, queue positions distinct, offers match the answers.
fn check_routing(
    streams: &Streams,
    askers: &[Visitor],
    index_of: &HashMap<usize, usize>,
    offers_before: usize,
) {
    let mut offered_now = HashSet::new();
    let mut positions = HashSet::new();
    let mut statuses: HashMap<u16, usize> = HashMap::new();
    let mut queued = 0;
    for r in &streams.replies {
        *statuses.entry(r.status).or_default() += 1;
        let Some(&i) = index_of.get(&r.index) else {
            continue;
        };
        let position = r.body["position"].as_u64();
        match (r.status, position) {
            (200, Some(0)) => {
                offered_now.insert(askers[i].id.clone());
            }
            (200, Some(p)) => {
                queued += 1;
                positions.insert(p);
            }
            _ => {}
        }
    }
    let mut offers: HashMap<String, HashSet<u64>> = HashMap::new();
    let mut per_rep: HashMap<String, usize> = HashMap::new();
    let mut seen_ids = HashSet::new();
    for (id, visitor, rep) in &streams.offers[offers_before..] {
        // Every console of the site hears each offer once: count it once.
        if !seen_ids.insert(*id) {
            continue;
        }
        offers.entry(visitor.clone()).or_default().insert(*id);
        *per_rep.entry(rep.clone()).or_default() += 1;
    }
    let twice = offers.values().filter(|ids| ids.len() > 1).count();
    let unmatched = offered_now
        .iter()
        .filter(|v| !offers.contains_key(*v))
        .count();
    let mut status_text: Vec<String> = statuses.iter().map(|(s, n)| format!("{s}x{n}")).collect();
    status_text.sort();
    say("routing_statuses", status_text.join(","));
    say("routing_offered", offered_now.len());
    say("routing_queued", queued);
    say(
        "routing_queue_positions_distinct",
        positions.len() == queued,
    );
    say("routing_offers_seen", offers.len());
    say("routing_offered_twice", twice);
    say("routing_offered_without_event", unmatched);
    say("routing_reps_offered", per_rep.len());
    say(
        "routing_max_offers_per_rep",
        per_rep.values().max().copied().unwrap_or(0),
    );
    let lost = askers.len() - offered_now.len() - queued;
    say("routing_lost", lost);
    let ok = lost == 0 && twice == 0 && unmatched == 0 && positions.len() == queued;
    say("routing_check", if ok { "ok" } else { "FAILED" });
}
