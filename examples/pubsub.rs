//! A complete embedding: `GET /sub` holds an SSE stream (or, asked with a
//! WebSocket upgrade, a WebSocket), `POST /pub` sends its body to every
//! subscriber (one `data:` event, or one text frame) and answers `202`.
//! Run: `cargo run --release --example pubsub -- --listen 127.0.0.1:9000`
use altsock::ws::{check_upgrade, Upgrade};
use altsock::{
    parse_duration, CloseReason, ConnId, Cx, Engine, Hold, Message, Reply, Request, Response,
    Router,
};
use std::collections::HashSet;

#[derive(Default)]
struct PubSub {
    subscribers: HashSet<ConnId>,
}

impl Router for PubSub {
    type Msg = ();

    fn request(&mut self, req: Request, cx: &mut Cx<'_, ()>) -> Reply {
        match (req.method.as_str(), req.path()) {
            ("GET", "/sub") => {
                let hold = match check_upgrade(&req, &[]) {
                    Upgrade::NotWebSocket => Hold::sse(),
                    Upgrade::Accept(accepted) => Hold::websocket(accepted),
                    Upgrade::Refuse(refusal) => return Reply::Respond(refusal),
                };
                self.subscribers.insert(req.conn);
                Reply::Hold(hold)
            }
            ("POST", "/pub") => {
                let reached = cx.broadcast(&self.subscribers, &Message::data(req.body));
                Reply::Respond(Response::text(202, format!("{reached}\n")))
            }
            _ => Reply::Respond(Response::text(404, "not found\n")),
        }
    }

    fn closed(&mut self, conn: ConnId, _why: CloseReason, _cx: &mut Cx<'_, ()>) {
        self.subscribers.remove(&conn);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut listen, mut poll, mut keepalive) = (
        "127.0.0.1:9000".to_string(),
        "4s".to_string(),
        "60s".to_string(),
    );
    let mut args = std::env::args().skip(1);
    while let (Some(flag), Some(value)) = (args.next(), args.next()) {
        match flag.as_str() {
            "--listen" => listen = value,
            "--poll-interval" => poll = value,
            "--keepalive" => keepalive = value,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let engine = Engine::builder()
        .listen(listen.as_str())
        .poll_interval(parse_duration(&poll)?)
        .keepalive_interval(parse_duration(&keepalive)?)
        .build(PubSub::default())?;
    engine.run()?;
    Ok(())
}
