//! The `altsock` command: `altsock serve` runs the server on the engine.

use std::path::PathBuf;
use std::time::Duration;

use altsock::server::hub::HubSecret;
use altsock::server::presence::db::{DbSync, StoreConfig};
use altsock::server::sip::SipConfig;
use altsock::server::tls::CertFiles;
use altsock::server::wireless::gateway::{Dialect, GatewayConfig};
use altsock::server::{
    AssistConfig, HubConfig, PresenceConfig, ServerConfig, ServerRouter, SessionLimits,
    WirelessConfig,
};
use altsock::{parse_duration, Engine};
use clap::{Parser, Subcommand};

/// A server-push and presence engine over plain HTTP.
#[derive(Parser)]
#[command(name = "altsock", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server.
    Serve(Box<ServeArgs>),
    /// Benchmarks only: writes N accounts in one group with a weak hash.
    #[command(hide = true)]
    SeedBench(SeedArgs),
}

/// `altsock seed-bench`: accounts for the presence benchmark, written straight
/// into a throwaway database with an argon2id hash of the smallest cost, so
/// that 10,000 members neither take minutes to create nor to log in. Never
/// point it at a real database.
#[derive(clap::Args)]
struct SeedArgs {
    /// The SQLite database file (created if missing).
    #[arg(long)]
    db: std::path::PathBuf,
    /// The group every account joins and shows.
    #[arg(long, default_value = "bench")]
    group: String,
    /// How many accounts.
    #[arg(long, short = 'n')]
    members: usize,
    /// Account names are this prefix and a number from 1 (`m1`, `m2`, ...).
    #[arg(long, default_value = "m")]
    prefix: String,
    /// Every account's password.
    #[arg(long, default_value = "bench-password")]
    password: String,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Also listen for TLS (HTTPS) on this address; needs --tls-cert and --tls-key.
    #[arg(long, requires_all = ["tls_cert", "tls_key"])]
    listen_tls: Option<String>,
    /// PEM certificate chain (leaf first) of the TLS listener; reloaded on SIGHUP.
    #[arg(long, requires = "listen_tls")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of the TLS listener; reloaded on SIGHUP.
    #[arg(long, requires = "listen_tls")]
    tls_key: Option<PathBuf>,
    /// Tick interval: how often keepalives and timeouts are checked (ms, s, m).
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    poll_interval: Duration,
    /// Keepalive interval for held connections.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    keepalive: Duration,
    /// Most open connections; more get 503.
    #[arg(long, default_value_t = 19_000)]
    max_connections: usize,
    /// The largest WebSocket message a client may send before it is closed
    /// with 1009 (the server's WebSockets are push-only: any message is
    /// answered with close 1003; this bounds what is read first).
    #[arg(long, default_value_t = 64 * 1024)]
    max_ws_message: usize,
    /// TCP_USER_TIMEOUT for accepted sockets: how long a write or keepalive
    /// probe may go unacknowledged before the peer is dropped (0: system default).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    tcp_user_timeout: Duration,
    /// Kernel TCP keepalive (TCP_KEEPIDLE): silence before the first probe,
    /// whole seconds (0: no kernel keepalive).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    tcp_keepalive_idle: Duration,
    /// Kernel TCP keepalive (TCP_KEEPINTVL): time between unanswered probes, whole seconds.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    tcp_keepalive_interval: Duration,
    /// Kernel TCP keepalive (TCP_KEEPCNT): unanswered probes before the peer is
    /// dropped; counts only with --tcp-user-timeout 0.
    #[arg(long, default_value_t = 3)]
    tcp_keepalive_count: u32,
    /// The SQLite database file.
    #[arg(long, default_value = "altsock.db")]
    db: std::path::PathBuf,
    /// How commits reach the disk: `normal` (WAL, survives a process crash
    /// such as kill -9) or `full` (also fsyncs each commit: survives power loss).
    #[arg(long, default_value = "normal")]
    db_sync: DbSync,
    /// Most writes waiting for the database; more are answered 503 with Retry-After.
    #[arg(long, default_value_t = 4096)]
    db_queue: usize,
    /// Most undelivered stored messages per recipient; more get 507.
    #[arg(long, default_value_t = 10_000)]
    max_stored_per_recipient: usize,
    /// Most undelivered stored messages per sender; more get 429.
    #[arg(long, default_value_t = 5_000)]
    max_stored_per_sender: usize,
    /// Pipelined requests one connection may have dispatched while their
    /// answers wait (e.g. stored chats waiting for their commit); 1 turns
    /// parse-ahead off.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pipeline_depth: u32,
    /// This node's id (the patent's host box identifier); default: the host name.
    #[arg(long)]
    node_id: Option<String>,
    /// Bearer token for publishers.
    #[arg(long, env = "ALTSOCK_PUBLISH_TOKEN")]
    publish_token: Option<String>,
    /// Hub: most messages buffered per channel or client mailbox.
    #[arg(long, default_value_t = 100)]
    hub_buffer: usize,
    /// Hub: oldest a buffered message may get (ms, s, m).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    hub_buffer_age: Duration,
    /// Hub: largest published message in bytes (more gets 413).
    #[arg(long, default_value_t = 65_536)]
    hub_max_message: usize,
    /// Hub: longest channel name, client id or app name in bytes.
    #[arg(long, default_value_t = 255)]
    hub_max_name: usize,
    /// Hub: how long a long-poll waits before answering 204.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    hub_longpoll_timeout: Duration,
    /// Hub: channels with this name prefix are private: followed by their owner's
    /// session (PREFIXuser-NAME), a member's (PREFIXgroup-GROUP) or a
    /// subscription token ("" disables).
    #[arg(long, default_value = "private-")]
    hub_private_prefix: String,
    /// Hub: most channels and client mailboxes at once (idle ones are evicted);
    /// strangers get 503 past it, publishers past twice it.
    #[arg(long, default_value_t = 100_000)]
    hub_max_topics: usize,
    /// Presence: the least time between two batches of presence changes to
    /// one group; changes in between go out together, last state wins (0:
    /// every change at once).
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    presence_window: Duration,
    /// Hub: most topics one connection without the publisher token may make (429 past it).
    #[arg(long, default_value_t = 32)]
    hub_max_topics_per_conn: usize,
    /// Hub: most topics one client address (IPv6: /64) without the publisher
    /// token may make (429 past it).
    #[arg(long, default_value_t = 1_000)]
    hub_max_topics_per_addr: usize,
    /// Hub: the server secret (at least 32 bytes) that signs mailbox keys and
    /// subscription tokens (HS256); default: random at start, so keys and
    /// tokens do not survive a restart.
    #[arg(long, env = "ALTSOCK_HUB_SECRET", hide_env_values = true)]
    hub_secret: Option<String>,
    /// Hub: a page origin allowed to use the hub across origins (`*`: any); repeatable.
    #[arg(long)]
    hub_allow_origin: Vec<String>,
    /// Presence: password-hashing threads (each keeps one 19 MiB argon2 block).
    #[arg(long, default_value_t = 1)]
    hash_threads: usize,
    /// Presence: password checks that may wait for a hashing thread (more get 503).
    #[arg(long, default_value_t = 64)]
    hash_queue: usize,
    /// Presence: a session unused this long ends (ms, s, m, h, d).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    session_idle: Duration,
    /// Presence: a session ends this long after login, used or not.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    session_max_age: Duration,
    /// Presence: most guest sessions at once (the oldest guest is ended past it).
    #[arg(long, default_value_t = 10_000)]
    max_guests: usize,
    /// Wireless: the SMS gateway's URL (Kannel's sendsms, or a Twilio-style
    /// Messages resource); without it, texting phones answers 503.
    #[arg(long)]
    sms_gateway: Option<String>,
    /// Wireless: how the gateway is spoken to: `kannel` (GET query) or
    /// `twilio` (form POST with basic auth).
    #[arg(long, default_value = "kannel")]
    sms_dialect: Dialect,
    /// Wireless: Kannel's sendsms username, or the Twilio account SID.
    #[arg(long, env = "ALTSOCK_SMS_USER")]
    sms_user: Option<String>,
    /// Wireless: Kannel's sendsms password, or the Twilio API auth token.
    #[arg(long, env = "ALTSOCK_SMS_PASSWORD", hide_env_values = true)]
    sms_password: Option<String>,
    /// Wireless: the sender number or name of outgoing SMS.
    #[arg(long)]
    sms_from: Option<String>,
    /// Wireless: how long one SMS send may take before the user hears
    /// `wireless-unavailable` (ms, s, m).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    sms_timeout: Duration,
    /// Wireless: the base of the URLs sent by SMS (e.g. https://chat.example.com);
    /// default: http:// and the Host of the user's request.
    #[arg(long)]
    wireless_public_url: Option<String>,
    /// Wireless: Twilio's auth token; /sms/inbound then requires a valid
    /// X-Twilio-Signature (403 otherwise).
    #[arg(long, env = "ALTSOCK_TWILIO_AUTH_TOKEN", hide_env_values = true)]
    twilio_auth_token: Option<String>,
    /// Wireless: a secret /sms/inbound then requires as its `key` query
    /// parameter (403 otherwise), e.g. in Kannel's get-url.
    #[arg(long, env = "ALTSOCK_SMS_INBOUND_KEY", hide_env_values = true)]
    sms_inbound_key: Option<String>,
    /// Wireless: how long the link of an SMS may wait to be opened.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    wireless_token_ttl: Duration,
    /// Wireless: a conversation with no device connected this long ends.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    wireless_idle: Duration,
    /// Wireless: how long the device's refresh page waits for a text.
    #[arg(long, default_value = "25s", value_parser = parse_duration)]
    wireless_poll_wait: Duration,
    /// Wireless: most texts queued for a device that has not received them (429 past it).
    #[arg(long, default_value_t = 100)]
    wireless_queue: usize,
    /// Assist: a page origin allowed to embed the widget (`*`: any); repeatable.
    /// Also allowed to use the hub across origins.
    #[arg(long)]
    assist_origin: Vec<String>,
    /// Assist: open chats a representative may have and still be offered more.
    #[arg(long, default_value_t = 4)]
    assist_chat_cap: usize,
    /// Assist: an offered chat not accepted within this passes to the next representative.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    assist_answer_timeout: Duration,
    /// Assist: a representative whose last console stream closed stays present this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    assist_rep_grace: Duration,
    /// Assist: a visitor without a hub connection and silent this long has left.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    assist_visitor_linger: Duration,
    /// Assist: most visitors per site at once (503 past it).
    #[arg(long, default_value_t = 50_000)]
    assist_max_visitors: usize,
    /// Assist: most visitors waiting per site (503 past it).
    #[arg(long, default_value_t = 200)]
    assist_max_queue: usize,
    /// Assist: longest chat line in bytes (413 past it).
    #[arg(long, default_value_t = 2000)]
    assist_max_chat: usize,
    /// Assist: most canned texts per site (409 past it).
    #[arg(long, default_value_t = 200)]
    assist_max_canned: usize,
    /// Assist: visitor requests per second per visitor, bursts of 3x (429 past it).
    #[arg(long, default_value_t = 10)]
    assist_visitor_rate: u32,
    /// Assist: new visitors per second from one client address (IPv6: /64),
    /// bursts of 3x (429 past it).
    #[arg(long, default_value_t = 20)]
    assist_arrivals_per_addr: u32,
    /// SIP: listen for SIP on this address over UDP and TCP (off when unset).
    #[arg(long)]
    sip_listen: Option<std::net::SocketAddr>,
    /// SIP: the domain of users' addresses of record; enables REGISTER.
    #[arg(long)]
    sip_domain: Option<String>,
    /// SIP: timer T1, the round-trip estimate (E starts at T1; F and J are 64*T1).
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    sip_t1: Duration,
    /// SIP: timer T2, the longest retransmission interval.
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    sip_t2: Duration,
    /// SIP: how long a user has to answer a request by /sip/reply (then 408).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    sip_reply_timeout: Duration,
    /// SIP: the longest registration a phone may hold.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    sip_max_expires: Duration,
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::SeedBench(args) => seed(args),
    };
    if let Err(e) = result {
        eprintln!("altsock: {e}");
        std::process::exit(1);
    }
}

fn serve(args: ServeArgs) -> std::io::Result<()> {
    let cert_files = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(CertFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    let mut builder = Engine::builder().listen(args.listen.as_str());
    if let (Some(addr), Some(files)) = (&args.listen_tls, &cert_files) {
        builder = builder.listen_tls(addr.as_str(), files.load()?);
    }
    let engine = builder
        .poll_interval(args.poll_interval)
        .keepalive_interval(args.keepalive)
        .max_connections(args.max_connections)
        .pipeline_depth(args.pipeline_depth as usize)
        .max_ws_message(args.max_ws_message)
        .tcp_user_timeout(nonzero(args.tcp_user_timeout))
        .tcp_keepalive_idle(nonzero(args.tcp_keepalive_idle))
        .tcp_keepalive_interval(args.tcp_keepalive_interval)
        .tcp_keepalive_count(args.tcp_keepalive_count)
        .build(ServerRouter::new(server_config(&args)?)?)?;
    if let Some(addr) = engine.tls_local_addr() {
        log::info!("altsock listening for TLS on {addr}");
    }
    let handle = engine.handle();
    handle.send(ServerRouter::start_job());
    handle_signals(handle, cert_files)?;
    engine.run()
}

/// SIGINT and SIGTERM shut down gracefully. SIGHUP reloads the certificate
/// when serving TLS (on this thread, not the engine's), and otherwise shuts
/// down as it always did.
fn handle_signals<M: Send + 'static>(
    handle: altsock::Handle<M>,
    cert_files: Option<CertFiles>,
) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                match (signal, &cert_files) {
                    (SIGHUP, Some(files)) => match files.reload(&handle) {
                        Ok(()) => log::info!("SIGHUP: TLS certificate reloaded"),
                        Err(e) => log::warn!("SIGHUP: certificate not reloaded: {e}"),
                    },
                    _ => handle.shutdown(),
                }
            }
        })?;
    Ok(())
}

fn seed(args: SeedArgs) -> std::io::Result<()> {
    let names: Vec<String> = (1..=args.members)
        .map(|i| format!("{}{i}", args.prefix))
        .collect();
    let added =
        altsock::server::presence::seed::seed_bench(&args.db, &args.group, &names, &args.password)?;
    println!(
        "seeded {added} accounts in group {} of {}",
        args.group,
        args.db.display()
    );
    Ok(())
}

fn server_config(args: &ServeArgs) -> std::io::Result<ServerConfig> {
    let node_id = args.node_id.clone().unwrap_or_else(host_name);
    let secret = match &args.hub_secret {
        Some(text) => Some(HubSecret::from_text(text).map_err(std::io::Error::other)?),
        None => None,
    };
    Ok(ServerConfig {
        db_path: args.db.clone(),
        node_id,
        publish_token: args.publish_token.clone(),
        hub: HubConfig {
            buffer_len: args.hub_buffer,
            buffer_age: args.hub_buffer_age,
            max_message: args.hub_max_message,
            max_name: args.hub_max_name,
            longpoll_timeout: args.hub_longpoll_timeout,
            private_prefix: args.hub_private_prefix.clone(),
            max_topics: args.hub_max_topics,
            max_topics_per_conn: args.hub_max_topics_per_conn,
            max_topics_per_addr: args.hub_max_topics_per_addr,
            secret,
            allow_origins: args.hub_allow_origin.clone(),
        },
        presence: PresenceConfig {
            hash_threads: args.hash_threads,
            hash_queue: args.hash_queue,
            max_guests: args.max_guests,
            sessions: SessionLimits {
                idle: args.session_idle,
                absolute: args.session_max_age,
            },
            window: args.presence_window,
        },
        store: StoreConfig {
            sync: args.db_sync,
            queue: args.db_queue,
            max_per_recipient: args.max_stored_per_recipient,
            max_per_sender: args.max_stored_per_sender,
        },
        wireless: wireless_config(args),
        assist: AssistConfig {
            origins: args.assist_origin.clone(),
            chat_cap: args.assist_chat_cap,
            answer_timeout: args.assist_answer_timeout,
            rep_grace: args.assist_rep_grace,
            visitor_linger: args.assist_visitor_linger,
            max_visitors: args.assist_max_visitors,
            max_queue: args.assist_max_queue,
            max_chat: args.assist_max_chat,
            max_canned: args.assist_max_canned,
            visitor_rate: args.assist_visitor_rate,
            arrivals_per_addr: args.assist_arrivals_per_addr,
            ..AssistConfig::default()
        },
        sip: SipConfig {
            listen: args.sip_listen,
            domain: args.sip_domain.clone(),
            t1: args.sip_t1,
            t2: args.sip_t2,
            reply_timeout: args.sip_reply_timeout,
            max_expires: args.sip_max_expires,
            ..SipConfig::default()
        },
    })
}

fn wireless_config(args: &ServeArgs) -> WirelessConfig {
    WirelessConfig {
        gateway: args.sms_gateway.as_ref().map(|url| GatewayConfig {
            url: url.clone(),
            dialect: args.sms_dialect,
            user: args.sms_user.clone(),
            password: args.sms_password.clone(),
            from: args.sms_from.clone(),
            timeout: args.sms_timeout,
        }),
        public_url: args.wireless_public_url.clone(),
        twilio_auth_token: args.twilio_auth_token.clone(),
        inbound_key: args.sms_inbound_key.clone(),
        token_ttl: args.wireless_token_ttl,
        idle: args.wireless_idle,
        poll_wait: args.wireless_poll_wait,
        queue: args.wireless_queue.max(1),
    }
}

/// `None` for a zero duration (the flag's "off").
fn nonzero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// The host name from the kernel, or `local`.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "local".into())
}
