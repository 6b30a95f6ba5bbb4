//! The outbound SMS gateway client: a few worker threads that take [`Sms`]
//! jobs from a bounded queue and send each with a blocking HTTP client
//! (`ureq`, with a global timeout) in one of two dialects, Kannel's
//! `sendsms` GET query or a Twilio-style form POST with basic auth. The
//! outcome goes back to the engine thread as a [`Job`]; nothing here runs
//! on the engine thread but [`Gateway::submit`], which never blocks.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;

use crate::server::Job;
use crate::Handle;

/// SMS jobs that may wait for a gateway thread; more are refused (`503`).
pub const QUEUE: usize = 256;

/// Threads sending SMS at once (a stalled gateway holds one each).
const THREADS: usize = 4;

/// Most bytes of a gateway's answer kept (for the log and the reason).
const ANSWER_LIMIT: u64 = 4096;

/// How a gateway is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Kannel's `sendsms` interface: a GET with `username`, `password`,
    /// `from`, `to` and `text` in the query; `202` accepted.
    Kannel,
    /// Twilio's Messages resource (and gateways that copy it): a form POST
    /// with `To`, `From` and `Body`, HTTP basic auth; `2xx` accepted.
    Twilio,
}

impl std::str::FromStr for Dialect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "kannel" => Ok(Dialect::Kannel),
            "twilio" => Ok(Dialect::Twilio),
            other => Err(format!("unknown SMS dialect {other:?} (kannel or twilio)")),
        }
    }
}

/// Where and how SMS are sent.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The gateway's URL (Kannel: `http://HOST:13013/cgi-bin/sendsms`;
    /// Twilio: `https://api.twilio.com/2010-04-01/Accounts/SID/Messages.json`).
    pub url: String,
    /// The dialect.
    pub dialect: Dialect,
    /// Kannel `username`, or the Twilio account SID (basic-auth user).
    pub user: Option<String>,
    /// Kannel `password`, or the Twilio auth token (basic-auth password).
    pub password: Option<String>,
    /// The sender number or name (`from` / `From`).
    pub from: Option<String>,
    /// How long one send may take, connect to last byte.
    pub timeout: Duration,
}

/// One SMS to send.
#[derive(Debug, Clone)]
pub struct Sms {
    /// The recipient number.
    pub to: String,
    /// The text.
    pub text: String,
}

/// Why a gateway did not take an SMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// The outcome of one send, run on the engine thread.
pub type Outcome = Box<dyn FnOnce(Result<(), Refused>) -> Job + Send>;

/// The queue full: the SMS was not taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

type Work = (Sms, Outcome, Handle<Job>);

/// The running gateway client.
pub struct Gateway {
    queue: SyncSender<Work>,
}

impl Gateway {
    /// Starts the worker threads.
    pub fn start(config: GatewayConfig) -> std::io::Result<Gateway> {
        let (queue, rx) = mpsc::sync_channel::<Work>(QUEUE);
        let rx = Arc::new(Mutex::new(rx));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let config = Arc::new(config);
        for i in 0..THREADS {
            let (rx, agent, config) = (rx.clone(), agent.clone(), config.clone());
            std::thread::Builder::new()
                .name(format!("altsock-sms-{i}"))
                .spawn(move || work(&rx, &agent, &config))?;
        }
        Ok(Gateway { queue })
    }

    /// Queues `sms`; `done` makes the job the engine runs with the outcome.
    /// Never blocks: `Err(Full)` when the queue is full.
    pub fn submit(&self, sms: Sms, handle: Handle<Job>, done: Outcome) -> Result<(), Full> {
        match self.queue.try_send((sms, done, handle)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => Err(Full),
        }
    }
}

/// A worker's loop: one SMS at a time until the gateway is dropped.
fn work(rx: &Mutex<Receiver<Work>>, agent: &ureq::Agent, config: &GatewayConfig) {
    loop {
        let next = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        let Ok((sms, done, handle)) = next else {
            return;
        };
        let outcome = send(agent, config, &sms);
        match &outcome {
            Ok(()) => log::debug!("sms: sent to {}", sms.to),
            Err(Refused(why)) => log::warn!("sms: not sent to {}: {why}", sms.to),
        }
        handle.send(done(outcome));
    }
}

/// Sends one SMS in the configured dialect.
fn send(agent: &ureq::Agent, config: &GatewayConfig, sms: &Sms) -> Result<(), Refused> {
    let result = match config.dialect {
        Dialect::Kannel => {
            let mut req = agent.get(&config.url);
            for (name, value) in [("username", &config.user), ("password", &config.password)] {
                if let Some(value) = value {
                    req = req.query(name, value);
                }
            }
            if let Some(from) = &config.from {
                req = req.query("from", from);
            }
            req.query("to", &sms.to)
                .query("text", &sms.text)
                .query("charset", "UTF-8")
                .call()
        }
        Dialect::Twilio => {
            let mut req = agent.post(&config.url);
            if let Some(user) = &config.user {
                let pass = config.password.as_deref().unwrap_or("");
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                req = req.header("Authorization", format!("Basic {token}"));
            }
            let mut form = vec![("To", sms.to.as_str()), ("Body", sms.text.as_str())];
            if let Some(from) = &config.from {
                form.push(("From", from.as_str()));
            }
            req.send_form(form)
        }
    };
    let mut response = result.map_err(|e| Refused(format!("gateway unreachable: {e}")))?;
    let status = response.status().as_u16();
    let answer = response
        .body_mut()
        .with_config()
        .limit(ANSWER_LIMIT)
        .read_to_string()
        .unwrap_or_default();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        let answer = answer.trim().chars().take(200).collect::<String>();
        Err(Refused(format!("gateway answered {status}: {answer}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_parse_by_name() {
        assert_eq!("Kannel".parse::<Dialect>(), Ok(Dialect::Kannel));
        assert_eq!("twilio".parse::<Dialect>(), Ok(Dialect::Twilio));
        assert!("smpp".parse::<Dialect>().is_err());
    }
}
