//! Who made which topics, and the caps on it, so that strangers cannot fill
//! the topic table. A stranger (a subscriber; anyone without the publisher
//! token) makes a topic by following a name nobody has published to. Such a
//! topic counts against the connection and the client address that made it
//! until it goes away or a publisher sends to it (then it is the
//! application's). Publishers (token holders) make topics freely up to a
//! hard ceiling of twice the table cap: strangers can fill at most the cap,
//! so the application always has the other half, and a runaway application
//! still cannot grow the table without bound.
//!
//! Addresses count by IPv4 address, or by IPv6 /64 (one host's usual share).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::HubConfig;
use crate::ConnId;

/// Who made a topic: a stranger's connection and address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Maker {
    /// The connection.
    pub conn: ConnId,
    /// Its address (IPv6 cut to /64), when the socket knew it.
    pub addr: Option<IpAddr>,
}

impl Maker {
    /// The maker of topics `conn` makes from `peer`.
    pub fn new(conn: ConnId, peer: Option<SocketAddr>) -> Self {
        Maker {
            conn,
            addr: peer.map(|p| address_key(p.ip())),
        }
    }
}

/// The address a client counts under.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Why a request may not make the topics it would make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The table holds `max_topics` (strangers) or twice that (publishers).
    Table(usize),
    /// This connection made `max_topics_per_conn`.
    Conn(usize),
    /// This address made `max_topics_per_addr`.
    Addr(usize),
}

/// Topics made by strangers, per connection and per address.
#[derive(Debug, Default)]
pub struct Makers {
    by_conn: HashMap<ConnId, usize>,
    by_addr: HashMap<IpAddr, usize>,
}

impl Makers {
    /// May `maker` (`None`: a publisher) make `new` topics in a table of
    /// `len`?
    pub fn room(
        &self,
        maker: Option<&Maker>,
        new: usize,
        len: usize,
        cfg: &HubConfig,
    ) -> Result<(), Full> {
        if new == 0 {
            return Ok(());
        }
        let Some(maker) = maker else {
            let ceiling = cfg.max_topics.saturating_mul(2);
            return check(len, new, ceiling, Full::Table(ceiling));
        };
        check(len, new, cfg.max_topics, Full::Table(cfg.max_topics))?;
        let by_conn = self.by_conn.get(&maker.conn).copied().unwrap_or(0);
        check(
            by_conn,
            new,
            cfg.max_topics_per_conn,
            Full::Conn(cfg.max_topics_per_conn),
        )?;
        let by_addr = maker.addr.and_then(|a| self.by_addr.get(&a)).copied();
        let max = cfg.max_topics_per_addr;
        check(by_addr.unwrap_or(0), new, max, Full::Addr(max))
    }

    /// `maker` made a topic.
    pub fn add(&mut self, maker: &Maker) {
        *self.by_conn.entry(maker.conn).or_default() += 1;
        if let Some(addr) = maker.addr {
            *self.by_addr.entry(addr).or_default() += 1;
        }
    }

    /// A topic `maker` made went away, or became a publisher's.
    pub fn remove(&mut self, maker: &Maker) {
        decrement(&mut self.by_conn, &maker.conn);
        if let Some(addr) = maker.addr {
            decrement(&mut self.by_addr, &addr);
        }
    }

    /// `conn` closed: its topics no longer count against it (they still
    /// count against its address while they exist).
    pub fn closed(&mut self, conn: ConnId) {
        self.by_conn.remove(&conn);
    }

    /// Topics made by `conn` that still exist.
    pub fn of_conn(&self, conn: ConnId) -> usize {
        self.by_conn.get(&conn).copied().unwrap_or(0)
    }
}

fn check(have: usize, new: usize, max: usize, full: Full) -> Result<(), Full> {
    if have.saturating_add(new) > max {
        return Err(full);
    }
    Ok(())
}

fn decrement<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HubConfig {
        HubConfig {
            max_topics: 10,
            max_topics_per_conn: 3,
            max_topics_per_addr: 4,
            ..HubConfig::default()
        }
    }

    fn maker(key: u32, ip: &str) -> Maker {
        let peer: SocketAddr = format!("{ip}:1").parse().expect("address");
        Maker::new(ConnId { key, gen: 0 }, Some(peer))
    }

    #[test]
    fn caps_per_connection_address_and_table() {
        let mut makers = Makers::default();
        let a = maker(1, "10.0.0.1");
        assert_eq!(makers.room(Some(&a), 4, 0, &cfg()), Err(Full::Conn(3)));
        for _ in 0..3 {
            makers.add(&a);
        }
        assert_eq!(makers.room(Some(&a), 1, 3, &cfg()), Err(Full::Conn(3)));
        let b = maker(2, "10.0.0.1");
        assert_eq!(makers.room(Some(&b), 1, 3, &cfg()), Ok(()));
        assert_eq!(makers.room(Some(&b), 2, 3, &cfg()), Err(Full::Addr(4)));
        assert_eq!(makers.room(Some(&b), 0, 99, &cfg()), Ok(()), "nothing new");
        makers.remove(&a);
        assert_eq!(makers.room(Some(&a), 1, 3, &cfg()), Ok(()));
        makers.closed(a.conn);
        assert_eq!(makers.of_conn(a.conn), 0);
        let c = maker(3, "10.0.0.2");
        assert_eq!(makers.room(Some(&c), 1, 10, &cfg()), Err(Full::Table(10)));
        assert_eq!(makers.room(None, 10, 10, &cfg()), Ok(()), "publishers");
        assert_eq!(makers.room(None, 11, 10, &cfg()), Err(Full::Table(20)));
    }

    #[test]
    fn ipv6_counts_by_slash_64() {
        let one = maker(1, "[2001:db8:1:2:aaaa::1]");
        let two = maker(2, "[2001:db8:1:2:bbbb::2]");
        assert_eq!(one.addr, two.addr);
        let mapped = maker(3, "[::ffff:10.0.0.1]");
        assert_eq!(mapped.addr, maker(4, "10.0.0.1").addr);
    }
}
