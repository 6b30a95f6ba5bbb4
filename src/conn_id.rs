//! The public name of a connection: its slot in the engine's slab (the
//! patent's socket table) plus a generation, so an id kept after a close can
//! never address the connection that later reuses the slot.

use std::fmt;

/// Identifies one connection for its whole life, and never another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    /// The slab key (the mio token of the socket).
    pub key: u32,
    /// How many connections held this slot before this one.
    pub gen: u32,
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{}.{}", self.key, self.gen)
    }
}
