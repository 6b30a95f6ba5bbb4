//! The router `altsock serve` runs until the presence server lands: `GET /sub`
//! holds an SSE stream, `POST /pub` sends its body to every subscriber as one
//! event and answers `202`, and `GET /metrics` serves the engine's counters.

use std::collections::HashSet;

use crate::{CloseReason, ConnId, Cx, Hold, Message, Reply, Request, Response, Router};

/// Subscribers of the single stream, and the id of the next event.
#[derive(Debug, Default)]
pub struct PubSubRouter {
    subscribers: HashSet<ConnId>,
    next_id: u64,
}

impl Router for PubSubRouter {
    type Msg = ();

    fn request(&mut self, req: Request, cx: &mut Cx<'_, ()>) -> Reply {
        match (req.method.as_str(), req.path()) {
            ("GET", "/sub") => {
                self.subscribers.insert(req.conn);
                Reply::Hold(Hold::sse())
            }
            ("POST", "/pub") => {
                self.next_id += 1;
                let msg = Message::data(req.body).with_id(self.next_id.to_string());
                let reached = cx.broadcast(&self.subscribers, &msg);
                Reply::Respond(Response::json(
                    202,
                    format!("{{\"id\":{},\"subscribers\":{reached}}}", self.next_id),
                ))
            }
            ("GET", "/metrics") => Reply::Respond(
                Response::new(200)
                    .header("Content-Type", "text/plain; version=0.0.4")
                    .body(cx.metrics().to_prometheus()),
            ),
            ("GET", "/") => Reply::Respond(Response::text(
                200,
                "altsock: GET /sub, POST /pub, GET /metrics\n",
            )),
            _ => Reply::Respond(Response::text(404, "not found\n")),
        }
    }

    fn closed(&mut self, conn: ConnId, _reason: CloseReason, _cx: &mut Cx<'_, ()>) {
        self.subscribers.remove(&conn);
    }
}
