//! A WebSocket echo server: any path upgrades, and every text or binary
//! message comes back as it was sent. It is what the Autobahn fuzzing client
//! runs against (`scripts/autobahn`), and the load tool's echo target.
//! Run: `cargo run --release --example ws_echo -- --listen 127.0.0.1:9001`
//!
//! Flags: `--listen ADDR`, `--keepalive DURATION` (the ping interval),
//! `--max-message BYTES` (default 64 MiB, so Autobahn's 16 MiB cases fit).
use altsock::ws::{check_upgrade, Upgrade};
use altsock::{
    parse_duration, ConnId, Cx, Engine, Hold, Reply, Request, Response, Router, WsMessage,
};

struct Echo;

impl Router for Echo {
    type Msg = ();

    fn request(&mut self, req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
        match check_upgrade(&req, &[]) {
            Upgrade::Accept(accepted) => Reply::Hold(Hold::websocket(accepted)),
            Upgrade::Refuse(refusal) => Reply::Respond(refusal),
            Upgrade::NotWebSocket => {
                Reply::Respond(Response::text(426, "this server speaks WebSocket only\n"))
            }
        }
    }

    fn ws_message(&mut self, conn: ConnId, msg: WsMessage, cx: &mut Cx<'_, ()>) {
        // A client gone mid-echo is nothing to report.
        let _ = cx.ws_send(conn, &msg);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut listen, mut keepalive) = ("127.0.0.1:9001".to_string(), "60s".to_string());
    let mut max_message = 64 << 20;
    let mut args = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (args.next(), args.next()) {
        match flag.as_str() {
            "--listen" => listen = value,
            "--keepalive" => keepalive = value,
            "--max-message" => max_message = value.parse()?,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let engine = Engine::builder()
        .listen(listen.as_str())
        .keepalive_interval(parse_duration(&keepalive)?)
        .max_ws_message(max_message)
        // An echo holds a whole message while the client reads it back.
        .max_pending_output(2 * max_message)
        .build(Echo)?;
    println!("listening on {}", engine.local_addr());
    engine.run()?;
    Ok(())
}
