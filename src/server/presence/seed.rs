//! The benchmark's seeding path (`altsock seed-bench`, hidden): writes N
//! accounts that are all members of one group (their active group) straight
//! into the database file, hashed once with argon2id at its smallest cost so
//! that neither seeding nor the benchmark's logins pay the real cost per
//! member. Never used by `altsock serve`; accounts seeded this way have weak
//! hashes and belong in throwaway benchmark databases only.

use std::path::Path;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rusqlite::{params, Connection};

/// Creates (or migrates) the database at `path`, then adds `group` and the
/// accounts `names` (all with `password`, all members of `group`, with
/// `group` active). Existing rows are left alone. Returns how many accounts
/// were added.
pub fn seed_bench(
    path: &Path,
    group: &str,
    names: &[String],
    password: &str,
) -> std::io::Result<usize> {
    let err = |e: rusqlite::Error| std::io::Error::other(format!("{}: {e}", path.display()));
    // The schema is the server's own: open it as the server does, then let
    // that database thread go.
    drop(super::db::open(path, &super::db::StoreConfig::default())?);
    let hash = weak_hash(password)?;
    let mut conn = Connection::open(path).map_err(err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(err)?;
    let now = super::ids::unix_now();
    let tx = conn.transaction().map_err(err)?;
    tx.execute(
        "INSERT OR IGNORE INTO groups (name, hash, creator, created) VALUES (?1, NULL, ?2, ?3)",
        params![group, names.first().map_or("", String::as_str), now],
    )
    .map_err(err)?;
    let mut added = 0;
    {
        let mut user = tx
            .prepare(
                "INSERT OR IGNORE INTO users (name, hash, active, created) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(err)?;
        let mut member = tx
            .prepare("INSERT OR IGNORE INTO members (grp, user) VALUES (?1, ?2)")
            .map_err(err)?;
        for name in names {
            added += user.execute(params![name, hash, group, now]).map_err(err)?;
            member.execute(params![group, name]).map_err(err)?;
        }
    }
    tx.commit().map_err(err)?;
    Ok(added)
}

/// An argon2id PHC string of `password` at the smallest cost argon2 allows
/// (8 KiB, one pass): the verifier reads the cost from the string.
fn weak_hash(password: &str) -> std::io::Result<String> {
    let params = Params::new(8, 1, 1, None).map_err(|e| std::io::Error::other(e.to_string()))?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(b"altsock-bench-salt")
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_hashes_verify_with_the_servers_verifier() {
        let hash = weak_hash("correct horse").unwrap();
        assert!(hash.contains("m=8,t=1,p=1"), "{hash}");
        let mut argon = super::super::hashing::Argon::default();
        assert!(argon.verify("correct horse", &hash));
        assert!(!argon.verify("wrong", &hash));
    }
}
