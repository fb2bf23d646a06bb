//! A copy of each record to syslog (RFC 5424 over UDP or a Unix datagram socket, facility
//! "log audit"). Best effort by nature: datagrams are not acknowledged, so the store and the
//! file sink carry the fail-closed guarantee and syslog never holds a request up.
use std::net::UdpSocket;

#[derive(Debug)]
pub enum Syslog {
    Udp(UdpSocket),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixDatagram, String),
}

/// `<PRI>`: facility 13 (log audit) × 8 + severity 6 (informational).
const PRI: u8 = 13 * 8 + 6;

impl Syslog {
    /// `udp:HOST:PORT` or `unix:/dev/log`; `None` (with a warning) if it cannot be set up.
    pub fn open(target: &str) -> Option<Self> {
        let opened = if let Some(addr) = target.strip_prefix("udp:") {
            UdpSocket::bind(if addr.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" })
                .and_then(|s| s.connect(addr).map(|_| s))
                .map(Syslog::Udp)
        } else {
            #[cfg(unix)]
            {
                let path = target.strip_prefix("unix:").unwrap_or(target).to_string();
                std::os::unix::net::UnixDatagram::unbound().map(|s| Syslog::Unix(s, path))
            }
            #[cfg(not(unix))]
            {
                Err(std::io::Error::other("only udp: syslog targets on this platform"))
            }
        };
        match opened {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(target: "coffer::audit", error = %e, "syslog sink {target} is not available");
                None
            }
        }
    }

    pub fn send(&self, record: &str) {
        let line = format!("<{PRI}>1 - - coffer - AuditEvent - {record}");
        let _ = match self {
            Syslog::Udp(s) => s.send(line.as_bytes()),
            #[cfg(unix)]
            Syslog::Unix(s, path) => s.send_to(line.as_bytes(), path),
        };
    }
}
