//! The password-hashing threads: argon2id hashing and verification run here,
//! never on the engine thread. Work arrives as closures over a channel shared
//! by a few threads; results go back to the engine through its handle.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Work for a hashing thread.
type Work = Box<dyn FnOnce() + Send>;

/// The sender side of the hashing threads.
#[derive(Clone)]
pub struct Hasher {
    tx: Sender<Work>,
}

impl Hasher {
    /// Starts `threads` hashing threads.
    pub fn start(threads: usize) -> std::io::Result<Hasher> {
        let (tx, rx) = channel::<Work>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("altsock-hash-{i}"))
                .spawn(move || work(&rx))?;
        }
        Ok(Hasher { tx })
    }

    /// Runs `f` on a hashing thread.
    pub fn run(&self, f: impl FnOnce() + Send + 'static) {
        if self.tx.send(Box::new(f)).is_err() {
            log::error!("presence: hashing threads are gone");
        }
    }
}

fn work(rx: &Mutex<Receiver<Work>>) {
    loop {
        let next = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match next {
            Ok(f) => f(),
            Err(_) => return,
        }
    }
}

/// Hashes `password` with argon2id and a fresh salt from the OS.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// True when `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}
