//! What both load tools (`altsock-load` and `altsock-storm`) share: a byte
//! search, a blocking HTTP response reader, non-blocking connections from many loopback source addresses,
//! and the CPU time of a process from `/proc/PID/stat`.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream as StdStream};
use std::{fs, io};

use mio::net::TcpStream;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// The source address of connection `index`: `base` plus `index` modulo
/// `spread` (at least 1), so connections spread across `127.x.y.z`.
pub fn source_addr(base: Ipv4Addr, spread: u32, index: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) + index as u32 % spread.max(1))
}

/// Starts a non-blocking TCP connection (no Nagle) from `source` to
/// `target`; it completes when the socket turns writable.
pub fn connect_from(source: Ipv4Addr, target: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&SockAddr::from(SocketAddr::new(source.into(), 0)))?;
    match socket.connect(&SockAddr::from(target)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(115) => {} // EINPROGRESS
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(StdStream::from(socket)))
}

/// Where `needle` first occurs in `haystack` (`None` for an empty needle).
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads one HTTP response with a `Content-Length` body (none: empty) from
/// a blocking stream, keeping any bytes after it in `buf`; returns the
/// status and the body. A close before its end is an error saying `closed`.
/// (Not every tool reads responses this way.)
#[allow(dead_code)]
pub fn read_response(
    conn: &mut impl Read,
    buf: &mut Vec<u8>,
    closed: &str,
) -> io::Result<(u16, Vec<u8>)> {
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Ok((status, body));
            }
        }
        let got = conn.read(&mut chunk)?;
        if got == 0 {
            return Err(io::Error::other(closed.to_string()));
        }
        buf.extend_from_slice(&chunk[..got]);
    }
}

/// `utime + stime` of a process in clock ticks.
pub fn cpu_ticks(pid: u32) -> io::Result<u64> {
    parse_cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat"))?)
        .ok_or_else(|| io::Error::other(format!("bad /proc/{pid}/stat")))
}

/// `utime + stime` of this process (the load tool) in clock ticks.
pub fn cpu_ticks_self() -> io::Result<u64> {
    parse_cpu_ticks(&fs::read_to_string("/proc/self/stat")?)
        .ok_or_else(|| io::Error::other("bad /proc/self/stat"))
}

/// `utime + stime` from the text of a `/proc/PID/stat` file.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces; fields resume after its closing ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3 of stat(5), so utime (14) and stime (15)
    // are at offsets 11 and 12.
    let parse = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some(parse(11)? + parse(12)?)
}
