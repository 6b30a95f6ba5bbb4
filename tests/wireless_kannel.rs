//! Two-way text through the real Kannel: `bearerbox` with a fake SMS centre,
//! `smsbox` giving altsock `sendsms` and calling `/sms/inbound` by `get-url`,
//! and Kannel's `fakesmsc` as the phone network. The SMS altsock sends
//! reaches fakesmsc with the link in it; the device opens the link; SMS from
//! the phone reach the requester's pipe. Skipped where Kannel is not
//! installed (Debian `kannel` and `kannel-extras`), unless
//! `ALTSOCK_REQUIRE_KANNEL` is set (as `scripts/test` does as root, after
//! installing them), when a missing Kannel is a failure.

mod presence_support;
mod util;
mod wireless_support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use altsock::server::wireless::gateway::{Dialect, GatewayConfig};
use altsock::server::WirelessConfig;
use presence_support::*;
use serde_json::json;
use wireless_support::*;

const BEARERBOX: &str = "/usr/sbin/bearerbox";
const SMSBOX: &str = "/usr/sbin/smsbox";
const FAKESMSC: &str = "/usr/lib/kannel/test/fakesmsc";

/// Children killed (by their own pid) when the test ends.
struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for child in self.0.iter_mut().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Four free loopback ports for Kannel's listeners, below the ephemeral
/// range (32768 and up), where the many client sockets of a busy machine
/// would take a port between our check and Kannel's bind.
fn free_ports() -> [u16; 4] {
    let mut seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    let mut ports = Vec::new();
    while ports.len() < 4 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let port = 20_000 + (seed >> 33) as u16 % 12_000;
        if !ports.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            ports.push(port);
        }
    }
    [ports[0], ports[1], ports[2], ports[3]]
}

/// Waits until something listens on `port`.
fn wait_listening(what: &str, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kannel's configuration: ports, the sendsms user, and the get-url to altsock.
fn kannel_conf(ports: [u16; 4], altsock: SocketAddr) -> String {
    let [admin, smsbox, smsc, sendsms] = ports;
    format!(
        "group = core\nadmin-port = {admin}\nadmin-password = test\nsmsbox-port = {smsbox}\n\
         box-allow-ip = 127.0.0.1\n\n\
         group = smsc\nsmsc = fake\nsmsc-id = fake\nport = {smsc}\nconnect-allow-ip = 127.0.0.1\n\n\
         group = smsbox\nbearerbox-host = 127.0.0.1\nsendsms-port = {sendsms}\n\n\
         group = sendsms-user\nusername = altsock\npassword = s3cret\n\n\
         group = sms-service\nkeyword = default\ncatch-all = true\nmax-messages = 0\n\
         get-url = \"http://{altsock}/sms/inbound?key=kannel-key&msisdn=%p&to=%P&text=%a\"\n"
    )
}

/// Starts a Kannel box with `conf`, logging into `dir`.
fn start_box(bin: &str, conf: &Path, dir: &Path) -> Child {
    let name = Path::new(bin)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
    Command::new(bin)
        .args(["-v", "1"])
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {bin}: {e}"))
}

#[test]
fn real_kannel_with_fakesmsc_carries_the_link_and_the_replies() {
    if ![BEARERBOX, SMSBOX, FAKESMSC]
        .iter()
        .all(|b| Path::new(b).exists())
    {
        assert!(
            std::env::var_os("ALTSOCK_REQUIRE_KANNEL").is_none(),
            "Kannel is required but not installed (kannel, kannel-extras)"
        );
        eprintln!("skipped: Kannel is not installed (apt-get install kannel kannel-extras)");
        return;
    }
    let ports = free_ports();
    let config = WirelessConfig {
        gateway: Some(GatewayConfig {
            url: format!("http://127.0.0.1:{}/cgi-bin/sendsms", ports[3]),
            dialect: Dialect::Kannel,
            user: Some("altsock".into()),
            password: Some("s3cret".into()),
            from: Some("15550000000".into()),
            timeout: Duration::from_secs(5),
        }),
        inbound_key: Some("kannel-key".into()),
        ..WirelessConfig::default()
    };
    let server = server_with_wireless(config);
    let a = server.addr;
    let dir = util::temp_dir("kannel");
    let conf = dir.join("kannel.conf");
    std::fs::write(&conf, kannel_conf(ports, a)).expect("write kannel.conf");
    let mut kids = Kill(vec![start_box(BEARERBOX, &conf, &dir)]);
    wait_listening("bearerbox", ports[1]);
    kids.0.push(start_box(SMSBOX, &conf, &dir));
    wait_listening("smsbox", ports[3]);

    let alice = user(a, "alice");
    let mut pipe = Pipe::open(a, "alice", &alice, false);
    let r = act(
        a,
        "/wireless/text",
        "alice",
        &alice,
        json!({ "to": "+15550101234", "msg": "hello phone" }),
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(pipe.next_of("wireless-sent").data["to"], "+15550101234");

    // The phone network: fakesmsc receives altsock's SMS and sends 5 from the phone.
    let mut phone = Command::new(FAKESMSC)
        .args([
            "-H",
            "127.0.0.1",
            "-r",
            &ports[2].to_string(),
            "-i",
            "0.05",
            "-m",
            "5",
        ])
        .arg("15550101234 15550000000 text reply from the phone")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fakesmsc");
    let (tx, got) = mpsc::channel();
    for out in [
        phone
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn std::io::Read + Send>),
        phone
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains("Got message") {
                    let _ = tx.send(line);
                }
            }
        });
    }
    kids.0.push(phone);
    let line = got
        .recv_timeout(Duration::from_secs(20))
        .expect("the SMS reaches fakesmsc");
    assert!(line.contains("15550101234"), "{line}");
    assert!(line.contains(&format!("http://{a}/w/")), "{line}");
    let link = link_path(&line).trim_end_matches('>').to_string();

    let mut device = Device::open(a, &link);
    device.wait_for("hello phone");
    // fakesmsc sends its five replies on its own clock, so they may reach the
    // pipe before or after the device's connection: take both in any order.
    let (mut connected, mut replies) = (false, 0);
    while !connected || replies < 5 {
        let ev = pipe.next();
        match ev.kind.as_str() {
            "wireless-connected" => {
                assert_eq!(ev.data["to"], "+15550101234");
                connected = true;
            }
            "wireless-reply" => {
                assert_eq!(ev.data["from"], "+15550101234");
                assert_eq!(ev.data["msg"], "reply from the phone");
                assert_eq!(ev.data["via"], "sms");
                replies += 1;
            }
            _ => {}
        }
    }
}
