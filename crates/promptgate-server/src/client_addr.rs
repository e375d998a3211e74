//! The address a request comes from: the TCP peer, or, when the peer is a trusted proxy
//! (`[server] trusted_proxies`), the client named in the proxy's forwarding header.
//!
//! Why: the failed-login limit counts per source address. Behind a load balancer every peer is
//! the balancer, so counting peers would let one guesser lock every client out; believing any
//! `X-Forwarded-For` would let a guesser name a new address on every try. So a forwarding header
//! is read only when the peer is a trusted proxy, and only its rightmost entries are believed:
//! each trusted proxy appends the address it received the request from, so walking from the
//! right and skipping trusted proxies, the first address that is not one is the address the last
//! trusted proxy saw. Everything left of it was written by the caller and may be forged.
//!
//! Exactly one header is read (`[server] forwarded_header`, `X-Forwarded-For` by default): a
//! proxy that appends to one of them passes the other through from the caller untouched, so
//! reading both would let the caller choose its address.
//!
//! [`limit_key`] then folds IPv6 addresses to their /64, the block one subscriber usually holds.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

/// Why a `[server] trusted_proxies` entry is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not an address or a network in CIDR form (such as 10.0.0.0/8 or fd00::/8)")]
pub struct InvalidNetwork {
    /// The entry as written.
    pub text: String,
}

/// An IPv4 or IPv6 network (`10.0.0.0/8`, `::1/128`); a bare address is its own /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    address: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Whether `ip` lies in the network (an IPv4-mapped IPv6 address counts as its IPv4 form).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.address, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), 32, self.prefix)
                    == masked(u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit value.
fn masked(value: u128, width: u8, prefix: u8) -> u128 {
    let prefix = prefix.min(width);
    if prefix == 0 {
        return 0;
    }
    let shift = u32::from(width - prefix);
    (value >> shift) << shift
}

impl FromStr for IpNetwork {
    type Err = InvalidNetwork;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidNetwork {
            text: text.to_owned(),
        };
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => width,
            // Digits only: `u8::from_str` would also take a leading `+`.
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().map_err(|_| invalid())?
            }
            Some(_) => return Err(invalid()),
        };
        if prefix > width {
            return Err(invalid());
        }
        Ok(IpNetwork { address, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// Which forwarding header a trusted proxy writes (`[server] forwarded_header`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy's `forwardfor`, cloud
    /// balancers); the default.
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// How the source address of a request is found: the peer, unless it is a trusted proxy.
#[derive(Debug, Clone, Default)]
pub struct ClientAddressRule {
    trusted: Vec<IpNetwork>,
    header: ForwardedHeader,
}

impl ClientAddressRule {
    /// A rule trusting `trusted` proxies, which write `header`. Without trusted proxies the
    /// source is always the peer.
    pub fn new(trusted: Vec<IpNetwork>, header: ForwardedHeader) -> Self {
        ClientAddressRule { trusted, header }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    /// The address a request from `peer` with `headers` comes from.
    ///
    /// The peer when it is not a trusted proxy. Otherwise the rightmost entry of the forwarding
    /// header that is not a trusted proxy; the leftmost entry when all are trusted; and the last
    /// trusted address reached when an entry cannot be read (`unknown`, an obfuscated name,
    /// garbage), since nothing left of it can be believed.
    pub fn source(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut current = peer.to_canonical();
        if !self.is_trusted(current) {
            return current;
        }
        let entries = self.entries(headers);
        for entry in entries.into_iter().rev() {
            let Some(ip) = entry else { break };
            current = ip.to_canonical();
            if !self.is_trusted(current) {
                break;
            }
        }
        current
    }

    /// The header's entries, left to right over every line of it; `None` for one that is not
    /// an address.
    fn entries(&self, headers: &HeaderMap) -> Vec<Option<IpAddr>> {
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        let mut entries = Vec::new();
        for value in headers.get_all(name) {
            let Ok(text) = value.to_str() else {
                entries.push(None);
                continue;
            };
            for element in text.split(',') {
                let entry = match self.header {
                    ForwardedHeader::XForwardedFor => parse_node(element),
                    ForwardedHeader::Forwarded => element
                        .split(';')
                        .filter_map(|pair| pair.split_once('='))
                        .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                        .and_then(|(_, value)| parse_node(value)),
                };
                entries.push(entry);
            }
        }
        entries
    }
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, optionally in double quotes (RFC 7239).
fn parse_node(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    // `[v6]` without a port.
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// The key an address is counted under by per-address limits: an IPv4 address itself, an IPv6
/// address's /64 (one subscriber usually holds a whole /64, so counting single IPv6 addresses
/// would give a guesser 2^64 fresh addresses).
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
    }
}

/// The source address of a request by [`ClientAddressRule::source`] under the gateway's rule;
/// `None` when the connection has no peer address (a request driven in-process by tests).
///
/// The one place that decides where a request comes from: the login limiter and any log line
/// naming the source use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceAddress(pub Option<IpAddr>);

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn rule(trusted: &[&str], header: ForwardedHeader) -> ClientAddressRule {
        ClientAddressRule::new(trusted.iter().map(|t| t.parse().unwrap()).collect(), header)
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(name, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn networks_parse_and_contain() {
        let net: IpNetwork = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.1.2.3")));
        assert!(net.contains(ip("::ffff:10.1.2.3")));
        assert!(!net.contains(ip("11.0.0.1")));
        let single: IpNetwork = "192.0.2.7".parse().unwrap();
        assert_eq!(single.to_string(), "192.0.2.7/32");
        assert!(single.contains(ip("192.0.2.7")) && !single.contains(ip("192.0.2.8")));
        let v6: IpNetwork = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        let all: IpNetwork = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")) && !all.contains(ip("2001:db8::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x",
        ] {
            assert!(bad.parse::<IpNetwork>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_source_whatever_it_forwards() {
        let h = headers("x-forwarded-for", &["198.51.100.1"]);
        assert_eq!(
            rule(&[], ForwardedHeader::XForwardedFor).source(ip("203.0.113.5"), &h),
            ip("203.0.113.5")
        );
        assert_eq!(
            rule(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor).source(ip("203.0.113.5"), &h),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn a_trusted_proxy_names_the_rightmost_untrusted_address() {
        let r = rule(&["10.0.0.0/8"], ForwardedHeader::XForwardedFor);
        // The caller forged the first entry; the proxies appended the rest.
        let h = headers("x-forwarded-for", &["1.1.1.1, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(r.source(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // Ports and brackets as some balancers write them.
        let h = headers("x-forwarded-for", &["[2001:db8::5]:4711"]);
        assert_eq!(r.source(ip("10.0.0.1"), &h), ip("2001:db8::5"));
        let h = headers("x-forwarded-for", &["198.51.100.7:80"]);
        assert_eq!(r.source(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // No header: the proxy itself.
        assert_eq!(r.source(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
        // Every entry trusted: the leftmost.
        let h = headers("x-forwarded-for", &["10.9.9.9, 10.0.0.3"]);
        assert_eq!(r.source(ip("10.0.0.1"), &h), ip("10.9.9.9"));
        // Garbage stops the walk at the last trusted address reached.
        let h = headers("x-forwarded-for", &["198.51.100.7, bogus, 10.0.0.3"]);
        assert_eq!(r.source(ip("10.0.0.1"), &h), ip("10.0.0.3"));
        // The other header is never read.
        let h = headers("forwarded", &["for=198.51.100.9"]);
        assert_eq!(r.source(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn the_forwarded_header_is_read_when_configured() {
        let r = rule(&["10.0.0.0/8"], ForwardedHeader::Forwarded);
        let h = headers(
            "forwarded",
            &[r#"for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https, For=10.0.0.4"#],
        );
        assert_eq!(r.source(ip("10.0.0.1"), &h), ip("2001:db8:cafe::17"));
        let h = headers("forwarded", &["for=unknown"]);
        assert_eq!(r.source(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        let h = headers("x-forwarded-for", &["198.51.100.9"]);
        assert_eq!(r.source(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn ipv6_sources_are_counted_by_their_64() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")),
            ip("2001:db8:1:2::")
        );
        assert_eq!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_key(ip("203.0.113.5")), ip("203.0.113.5"));
        assert_eq!(limit_key(ip("::ffff:203.0.113.5")), ip("203.0.113.5"));
    }
}
