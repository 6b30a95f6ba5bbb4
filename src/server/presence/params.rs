//! Request parameters of the presence endpoints: the query string first,
//! then the body (a JSON object when the body is JSON, an urlencoded body
//! otherwise). Decoding goes through the crate's one URL decoder.

use serde_json::Value;

use super::answers::error;
use crate::http::form_pairs;
use crate::{Request, Response};

/// Longest password accepted anywhere (account or group), in bytes; more
/// gets `400` before any hashing.
pub const MAX_PASSWORD: usize = 1024;

/// The parameters of a request.
pub struct Params {
    query: Vec<(String, String)>,
    body: Vec<(String, String)>,
}

impl Params {
    /// Collects the parameters of `req`.
    pub fn of(req: &Request) -> Params {
        let is_json = req
            .header("content-type")
            .is_some_and(|t| t.trim_start().starts_with("application/json"));
        let body = if is_json {
            json_pairs(&req.body)
        } else {
            req.form()
        };
        Params {
            query: form_pairs(req.query().as_bytes()),
            body,
        }
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .chain(self.body.iter())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value of `name`, trimmed.
    pub fn nonempty(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    /// The first non-empty value of `name`, or `400 missing field: NAME`.
    pub fn required(&self, name: &str) -> Result<String, Response> {
        self.nonempty(name)
            .ok_or_else(|| error(400, &format!("missing field: {name}")))
    }

    /// The `password` parameter (empty when absent), or `Err` when it is
    /// over [`MAX_PASSWORD`] bytes.
    pub fn password(&self) -> Result<String, TooLong> {
        let password = self.get("password").unwrap_or("");
        if password.len() > MAX_PASSWORD {
            return Err(TooLong);
        }
        Ok(password.to_string())
    }
}

/// A password over [`MAX_PASSWORD`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// The members of a JSON object body as text pairs (nulls skipped).
fn json_pairs(body: &[u8]) -> Vec<(String, String)> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| match v {
            Value::String(s) => Some((k, s)),
            Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect()
}
