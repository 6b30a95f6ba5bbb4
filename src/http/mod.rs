//! The HTTP vocabulary the engine and routers share: parsed requests, responses
//! to write, and the small decoding helpers (query strings and forms) every
//! router needs. Parsing itself lives in `parse.rs`; nothing here touches a socket.

pub mod parse;
mod request;
pub(crate) mod response;
mod urlencoded;

pub use request::Request;
pub use response::{reason_phrase, Response};
pub use urlencoded::{decode_component, decode_path_segment, encode_path_segment, form_pairs};
