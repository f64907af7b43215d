//! [`loopback_port`]: listening ports for local clusters (these etcd members, the demo's
//! daemons, the tests' processes), which are chosen before the process that listens on
//! them starts.
//!
//! Binding port 0 and closing it again, the usual trick, fails here in two ways that CI
//! runs met: the kernel hands the same port out again to the next bind of the same
//! cluster, and any outgoing connection may take it as its ephemeral port before the
//! daemon binds it. So the ports come from below the ephemeral range, in order from a
//! start that depends on the process id (concurrent test binaries start apart), are never
//! handed out twice by one process, and are checked free when handed out.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// The first port of the range; the range ends below 32768, where Linux's default
/// ephemeral range (`net.ipv4.ip_local_port_range`) starts.
const FIRST: u32 = 20_000;
/// How many ports the range has.
const SPAN: u32 = 12_000;

/// The next candidate, as an offset into the range (`u32::MAX`: not yet started).
static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);

/// A loopback address with a port no other caller in this process was given and nothing
/// listens on now.
///
/// # Errors
/// Every port of the range was tried and none was free.
pub fn loopback_port() -> Result<SocketAddr, std::io::Error> {
    // Spread processes by 1,009 ports (prime) per pid step; one process uses a few dozen.
    let start = (std::process::id().wrapping_mul(1_009)) % SPAN;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    let mut last = None;
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port(offset)));
        match TcpListener::bind(addr) {
            Ok(_) => return Ok(addr),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no loopback port left")))
}

fn port(offset: u32) -> u16 {
    // FIRST + SPAN < 65536, so this never truncates.
    u16::try_from(FIRST + offset % SPAN).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_never_gets_the_same_port_twice() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let a = loopback_port().expect("a port");
            assert!(a.ip().is_loopback());
            assert!((20_000..32_000).contains(&a.port()));
            assert!(seen.insert(a.port()), "{a} handed out twice");
        }
    }

    #[test]
    fn a_port_in_use_is_skipped() {
        let a = loopback_port().expect("a port");
        // Hold the port the allocator would hand out next, then ask.
        let next = SocketAddr::from((Ipv4Addr::LOCALHOST, a.port() + 1));
        let held = TcpListener::bind(next);
        let b = loopback_port().expect("a port");
        if held.is_ok() {
            assert_ne!(b, next);
        }
    }
}
