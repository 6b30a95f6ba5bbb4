//! `EMFILE` on accept: the engine pauses accepting instead of spinning, keeps
//! the waiting connection in the backlog, and accepts it once a descriptor is
//! free again. The test lowers this process's own descriptor limit with
//! `prlimit`, so it lives alone in its own test binary.

mod util;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use altsock::{Cx, Engine, Reply, Request, Response, Router};
use util::spawn;

struct Ok200;

impl Router for Ok200 {
    type Msg = ();
    fn request(&mut self, req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
        Reply::Respond(Response::text(200, format!("ok {}", req.target)))
    }
}

/// Keeps the engine's warnings so the test can count them.
struct Warnings(Mutex<Vec<String>>);

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }
    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
            lines.push(record.args().to_string());
        }
    }
    fn flush(&self) {}
}

static WARNINGS: Warnings = Warnings(Mutex::new(Vec::new()));

fn accept_warnings() -> usize {
    let lines = WARNINGS.0.lock().unwrap_or_else(|p| p.into_inner());
    lines.iter().filter(|l| l.starts_with("accept")).count()
}

/// Sets this process's soft `RLIMIT_NOFILE`.
fn set_soft_nofile(limit: u64) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={limit}:"))
        .status()
        .expect("run prlimit");
    assert!(status.success(), "prlimit failed");
}

fn soft_nofile() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("nofile line");
    line.split_whitespace()
        .nth(3)
        .expect("soft")
        .parse()
        .expect("number")
}

/// User plus system CPU time of this process, in clock ticks, read from an
/// already open `/proc/self/stat` (no descriptor may be free to open it).
fn cpu_ticks(stat: &mut File) -> u64 {
    let mut text = String::new();
    stat.seek(SeekFrom::Start(0)).expect("seek");
    stat.read_to_string(&mut text).expect("read stat");
    let after_name = &text[text.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line; the slice starts at field 3.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

#[test]
fn accept_pauses_on_emfile_and_resumes() {
    log::set_logger(&WARNINGS).expect("logger");
    log::set_max_level(log::LevelFilter::Warn);
    let server = spawn(Engine::builder(), Ok200);
    assert_eq!(
        util::request(server.addr, "GET /warm HTTP/1.1\r\nHost: t\r\n\r\n").status,
        200
    );
    let mut stat = File::open("/proc/self/stat").expect("stat");
    let original = soft_nofile();
    let highest = std::fs::read_dir("/proc/self/fd")
        .expect("fds")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .expect("some fd");
    set_soft_nofile(highest + 8);
    // Take every descriptor that is left.
    let mut spares = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        spares.push(f);
        assert!(spares.len() < 10_000, "the limit did not apply");
    }
    assert!(spares.len() >= 2, "need two spare descriptors");
    // One free descriptor: the client's socket takes it, the server's accept cannot.
    drop(spares.pop());
    let mut client = util::Client::connect(server.addr);
    client.send(b"GET /late HTTP/1.1\r\nHost: t\r\n\r\n");
    let cpu_before = cpu_ticks(&mut stat);
    let quiet = client.read_for(Duration::from_millis(400));
    let cpu_used = cpu_ticks(&mut stat) - cpu_before;
    assert!(quiet.is_empty(), "answered without a descriptor?");
    // A busy loop would burn ~40 ticks (100 Hz) in 400 ms.
    assert!(cpu_used <= 10, "accept spun: {cpu_used} ticks in 400 ms");
    // One warning for the whole episode, not one per retry.
    assert_eq!(accept_warnings(), 1);
    // Free a descriptor: the connection waiting in the backlog is served.
    drop(spares.pop());
    let freed = Instant::now();
    let resp = client.read_response();
    assert_eq!(resp.text(), "ok /late");
    assert!(freed.elapsed() < Duration::from_secs(2));
    drop(spares);
    set_soft_nofile(original);
    assert_eq!(server.handle.metrics().accepted, 2);
}
