//! The single-stream pub/sub service: `GET /sub` holds an SSE stream, `POST
//! /pub` sends its body to every subscriber as one event and answers `202`.

use std::collections::HashSet;

use super::{Job, ServerState, Service};
use crate::{CloseReason, ConnId, Cx, Hold, Message, Reply, Request, Response};

/// Subscribers of the stream, and the id of the last event.
#[derive(Debug, Default)]
pub struct PubSub {
    subscribers: HashSet<ConnId>,
    last_id: u64,
}

impl Service for PubSub {
    fn claims(&self, req: &Request) -> bool {
        matches!(
            (req.method.as_str(), req.path()),
            ("GET", "/sub") | ("POST", "/pub")
        )
    }

    fn handle(&mut self, req: Request, _shared: &mut ServerState, cx: &mut Cx<'_, Job>) -> Reply {
        if req.method == "GET" {
            self.subscribers.insert(req.conn);
            return Reply::Hold(Hold::sse());
        }
        self.last_id += 1;
        let msg = Message::data(req.body).with_id(self.last_id.to_string());
        let reached = cx.broadcast(&self.subscribers, &msg);
        let body = format!("{{\"id\":{},\"subscribers\":{reached}}}", self.last_id);
        Reply::Respond(Response::json(202, body))
    }

    fn closed(&mut self, conn: ConnId, _reason: CloseReason, _cx: &mut Cx<'_, Job>) {
        self.subscribers.remove(&conn);
    }
}
