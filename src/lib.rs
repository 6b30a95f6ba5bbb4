//! altsock: a single-threaded mio engine that holds very many long-lived HTTP
//! connections, knows when each one dies, and pushes messages down them the
//! moment they exist: the "AltSock" socket handler of the presence patent.
//!
//! # Layout
//!
//! - [`engine`]: the loop, the socket table (a slab keyed by token), the tick
//!   that writes keepalives and enforces timeouts, and the [`Handle`].
//! - [`http`]: request parsing (pure, over byte slices), requests, responses.
//! - [`framing`]: how messages look on held connections (chunked, SSE,
//!   multipart, raw, long-poll) and their keepalives.
//! - [`router`]: the trait an embedding program implements.
//! - [`metrics`]: counters, and their Prometheus rendering.
//! - [`ws`]: RFC 6455, a frame codec of our own, pure over byte slices, and
//!   (feature `websocket`) the upgrade check. The engine runs it on held
//!   connections opened with `Hold::websocket`.
//!
//! The core depends only on `mio`, `httparse`, `slab`, `socket2` and `log`;
//! the `websocket` feature adds `sha1` and `base64` for the handshake.
//!
//! ```no_run
//! use altsock::{Cx, Engine, Reply, Request, Response, Router};
//!
//! struct Hello;
//! impl Router for Hello {
//!     type Msg = ();
//!     fn request(&mut self, _req: Request, _cx: &mut Cx<'_, ()>) -> Reply {
//!         Reply::Respond(Response::text(200, "hello\n"))
//!     }
//! }
//!
//! let engine = Engine::builder().listen("127.0.0.1:8080").build(Hello)?;
//! engine.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]

mod conn_id;
mod duration;
pub mod engine;
pub mod framing;
pub mod http;
pub mod metrics;
mod reply;
pub mod router;
pub mod ws;

pub use conn_id::{AnswerTo, ConnId, RequestId};
pub use duration::parse_duration;
pub use engine::handle::{Handle, Receipt};
#[cfg(feature = "tls")]
pub use engine::TlsListen;
pub use engine::{Builder, Config, Engine};
pub use framing::{Framing, Message};
pub use http::{Request, Response};
pub use metrics::{CloseReason, MetricsSnapshot};
pub use router::{Cx, Gone, Hold, Reply, Router};
/// The rustls this crate was built with, for building `listen_tls` configurations.
#[cfg(feature = "tls")]
pub use rustls;
pub use ws::WsMessage;

#[cfg(feature = "server")]
pub mod server;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
