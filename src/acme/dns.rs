//! A minimal DNS client for dns-01 (RFC 8555 §8.4): one TXT query over UDP (TCP when the
//! answer is truncated) to the configured resolver. No crate: hallmark needs only TXT records.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("DNS: {0}")]
    Io(String),
    #[error("DNS: the answer does not parse")]
    Format,
    #[error("DNS: the server answered rcode {0}")]
    Rcode(u8),
    #[error("DNS: '{0}' is not a valid name")]
    Name(String),
}

/// The resolver: the configured address, else the first nameserver of /etc/resolv.conf.
pub fn resolver(configured: Option<&str>) -> Result<SocketAddr, DnsError> {
    if let Some(c) = configured {
        return c
            .parse::<SocketAddr>()
            .or_else(|_| {
                c.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 53))
            })
            .map_err(|_| DnsError::Io(format!("acme.dns_resolver '{c}' is not IP:PORT")));
    }
    let text =
        std::fs::read_to_string("/etc/resolv.conf").map_err(|e| DnsError::Io(e.to_string()))?;
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .next()
        .ok_or_else(|| DnsError::Io("no nameserver in /etc/resolv.conf".into()))
}

fn query(name: &str, id: u16) -> Result<Vec<u8>, DnsError> {
    let mut q = Vec::with_capacity(name.len() + 18);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(DnsError::Name(name.to_string()));
        }
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&[0, 16, 0, 1]); // TXT, IN
    Ok(q)
}

fn skip_name(m: &[u8], mut i: usize) -> Result<usize, DnsError> {
    loop {
        let len = *m.get(i).ok_or(DnsError::Format)? as usize;
        if len == 0 {
            return Ok(i + 1);
        }
        if len & 0xC0 == 0xC0 {
            return Ok(i + 2);
        }
        i += 1 + len;
    }
}

fn u16_at(m: &[u8], i: usize) -> Result<u16, DnsError> {
    Ok(u16::from_be_bytes([
        *m.get(i).ok_or(DnsError::Format)?,
        *m.get(i + 1).ok_or(DnsError::Format)?,
    ]))
}

/// Parses the TXT answers of a response to query `id`; each record's strings are joined.
pub fn parse_txt(m: &[u8], id: u16) -> Result<Vec<String>, DnsError> {
    if m.len() < 12 || u16_at(m, 0)? != id || m[2] & 0x80 == 0 {
        return Err(DnsError::Format);
    }
    let rcode = m[3] & 0x0F;
    if rcode == 3 {
        return Ok(Vec::new()); // NXDOMAIN: no records
    }
    if rcode != 0 {
        return Err(DnsError::Rcode(rcode));
    }
    let qd = u16_at(m, 4)?;
    let an = u16_at(m, 6)?;
    let mut i = 12;
    for _ in 0..qd {
        i = skip_name(m, i)? + 4;
    }
    let mut out = Vec::new();
    for _ in 0..an {
        i = skip_name(m, i)?;
        let rtype = u16_at(m, i)?;
        let rdlen = u16_at(m, i + 8)? as usize;
        let start = i + 10;
        let data = m.get(start..start + rdlen).ok_or(DnsError::Format)?;
        if rtype == 16 {
            let mut s = Vec::new();
            let mut j = 0;
            while j < data.len() {
                let l = data[j] as usize;
                s.extend_from_slice(data.get(j + 1..j + 1 + l).ok_or(DnsError::Format)?);
                j += 1 + l;
            }
            out.push(String::from_utf8_lossy(&s).into_owned());
        }
        i = start + rdlen;
    }
    Ok(out)
}

/// The TXT records of `name`.
pub fn txt(server: SocketAddr, name: &str, timeout: Duration) -> Result<Vec<String>, DnsError> {
    let io = |e: std::io::Error| DnsError::Io(e.to_string());
    let id: u16 = rand::random();
    let q = query(name, id)?;
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(bind).map_err(io)?;
    sock.set_read_timeout(Some(timeout)).map_err(io)?;
    sock.connect(server).map_err(io)?;
    sock.send(&q).map_err(io)?;
    let mut buf = vec![0u8; 4096];
    let n = sock.recv(&mut buf).map_err(io)?;
    let m = &buf[..n];
    if m.len() > 2 && m[2] & 0x02 != 0 {
        // Truncated: ask again over TCP.
        let mut s = TcpStream::connect_timeout(&server, timeout).map_err(io)?;
        s.set_read_timeout(Some(timeout)).map_err(io)?;
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        s.write_all(&framed).map_err(io)?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).map_err(io)?;
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut body).map_err(io)?;
        return parse_txt(&body, id);
    }
    parse_txt(m, id)
}
