//! The JSON answers of the presence API.

use serde_json::Value;

use crate::Response;

/// A JSON answer.
pub fn json(status: u16, value: Value) -> Response {
    Response::json(status, value.to_string())
}

/// A JSON error answer: `{"error": why}`.
pub fn error(status: u16, why: &str) -> Response {
    json(status, serde_json::json!({ "error": why }))
}

/// `503` with `Retry-After`: the password-hashing queue is full.
pub fn hashing_busy() -> Response {
    error(503, "too many password checks waiting; try again shortly").header("Retry-After", "1")
}
