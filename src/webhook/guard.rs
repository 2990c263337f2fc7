//! Which addresses a webhook may be sent to: never to link-local, cloud-metadata, multicast or
//! broadcast addresses; to loopback and private ones only when the operator allows them
//! (`COMMERCE_WEBHOOK_ALLOW_PRIVATE`, for receivers on the shop's own network). Checked at
//! registration and again at every attempt, after name resolution, so a name re-pointed at an
//! internal address later is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long a name may take to resolve.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Every refusal's detail starts with this, so clients and tools can tell them apart.
pub const REFUSAL: &str = "webhook address";

/// Why `ip` may not receive webhooks, if it may not.
pub fn refusal(ip: IpAddr, allow_private: bool) -> Option<String> {
    let ip = match ip {
        // `::ffff:a.b.c.d` reaches the IPv4 address.
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let never = match ip {
        IpAddr::V4(v4) => v4_never(v4),
        IpAddr::V6(v6) => v6_never(v6),
    };
    if never {
        return Some(format!(
            "{REFUSAL} {ip} is link-local, cloud metadata, multicast or broadcast: never allowed"
        ));
    }
    let private = match ip {
        IpAddr::V4(v4) => v4_private(v4),
        IpAddr::V6(v6) => v6_private(v6),
    };
    (private && !allow_private).then(|| {
        format!(
            "{REFUSAL} {ip} is loopback, private or unspecified (allowed only with COMMERCE_WEBHOOK_ALLOW_PRIVATE=true)"
        )
    })
}

fn v4_never(ip: Ipv4Addr) -> bool {
    ip.is_link_local() // 169.254.0.0/16, metadata at 169.254.169.254 included
        || ip == Ipv4Addr::new(100, 100, 100, 200) // Alibaba Cloud metadata
        || ip.is_multicast()
        || ip.is_broadcast()
}

fn v4_private(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10, carrier-grade NAT
        || a == 0
}

fn v6_never(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    (first & 0xffc0) == 0xfe80 // fe80::/10
        || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // AWS metadata
        || ip.is_multicast()
}

fn v6_private(ip: Ipv6Addr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || (ip.segments()[0] & 0xfe00) == 0xfc00
}

/// Where a URL points: an address written in it, or a name to resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ip(IpAddr),
    Name(String),
}

/// An `http` or `https` URL with a host, and where it points; else why not.
pub fn parse(raw: &str) -> Result<(reqwest::Url, Target), String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("{REFUSAL} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "{REFUSAL} must be http or https, not {}",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("{REFUSAL} has no host"))?;
    // An IPv6 host is written in brackets.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let target = match bare.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip),
        Err(_) => Target::Name(host.to_owned()),
    };
    Ok((url, target))
}

/// Resolves `host` and checks every address; the addresses, or why not.
pub async fn resolve(
    host: &str,
    port: u16,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, String> {
    let lookup = tokio::net::lookup_host((host, port));
    let addrs: Vec<SocketAddr> = match tokio::time::timeout(LOOKUP_TIMEOUT, lookup).await {
        Ok(Ok(addrs)) => addrs.collect(),
        Ok(Err(error)) => return Err(format!("{REFUSAL} {host} cannot be resolved: {error}")),
        Err(_) => return Err(format!("{REFUSAL} {host} did not resolve in time")),
    };
    if addrs.is_empty() {
        return Err(format!("{REFUSAL} {host} has no addresses"));
    }
    if let Some(why) = addrs.iter().find_map(|a| refusal(a.ip(), allow_private)) {
        return Err(why);
    }
    Ok(addrs)
}

/// reqwest's name resolution for webhook sends: the guard's, so every connection, redirects
/// aside (they are not followed), goes to an allowed address.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            // The port is the connector's to set; 0 stands for "any".
            let addrs = resolve(name.as_str(), 0, allow_private).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                Box::new(addrs.into_iter()) as reqwest::dns::Addrs
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str, allow_private: bool) -> bool {
        refusal(ip.parse().expect("an address"), allow_private).is_some()
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
        ] {
            assert!(!refused(ip, false), "{ip}");
        }
    }

    #[test]
    fn private_addresses_only_when_allowed() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "::1",
            "::",
            "fc00::1",
            "fdff::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
        ] {
            assert!(refused(ip, false), "{ip}");
            assert!(!refused(ip, true), "{ip}");
        }
    }

    #[test]
    fn link_local_metadata_multicast_and_broadcast_never() {
        for ip in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "ff02::1",
            "::ffff:169.254.169.254",
        ] {
            assert!(refused(ip, true), "{ip}");
            let why = refusal(ip.parse().unwrap(), true).unwrap();
            assert!(why.starts_with(REFUSAL), "{why}");
        }
    }

    #[test]
    fn urls_are_http_or_https_with_a_host() {
        let ip = |raw: &str| parse(raw).map(|(_, target)| target);
        assert_eq!(
            ip("http://127.0.0.1:8080/hook"),
            Ok(Target::Ip("127.0.0.1".parse().unwrap()))
        );
        assert_eq!(ip("https://[::1]/"), Ok(Target::Ip("::1".parse().unwrap())));
        // Other spellings of an address are normalised by the URL parser.
        assert_eq!(
            ip("http://0x7f.1/"),
            Ok(Target::Ip("127.0.0.1".parse().unwrap()))
        );
        assert_eq!(
            ip("https://shop.example/x"),
            Ok(Target::Name("shop.example".into()))
        );
        for bad in [
            "ftp://shop.example/",
            "file:///etc/passwd",
            "shop.example",
            "http://",
        ] {
            let why = parse(bad).expect_err(bad);
            assert!(why.starts_with(REFUSAL), "{why}");
        }
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        assert!(resolve("localhost", 80, false).await.is_err());
        assert!(resolve("localhost", 80, true).await.is_ok());
    }
}
