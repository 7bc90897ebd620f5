//! Sending one webhook request: which URLs may be called, the signatures, and what the
//! receiver's answer means.
//!
//! Addresses are checked twice: when a URL is set (its scheme, and a host that names a
//! loopback or private address) and on every request, on the addresses the name resolves to
//! at that moment — the ones the client then connects to — so a name that later points at
//! an internal address is refused too. Redirects and proxies are off: the request goes to
//! the checked address or nowhere.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use url::{Host, Url};

/// The most of a receiver's answer that is read (the rest is dropped unread).
const MAX_RESPONSE_BYTES: usize = 64 << 10;
/// The most of an answer kept as the delivery's `last_error`.
const MAX_ERROR_CHARS: usize = 300;

/// Whether `ip` is an address a webhook may not reach unless private addresses are allowed:
/// loopback, private, link-local, shared (CGNAT), unspecified, multicast, reserved and
/// documentation ranges, and IPv6 forms that embed such an IPv4 address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let segments = ip.segments();
    // NAT64 (64:ff9b::/96) carries an IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return is_internal_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || segments[..2] == [0x2001, 0xdb8] // documentation
}

/// Checks a webhook URL as it is set: http(s), a host, no credentials, and (unless allowed)
/// no host that is or names a loopback or private address. Names are checked again, on what
/// they resolve to, on every request.
pub fn check_url(raw: &str, allow_internal: bool) -> Result<Url, &'static str> {
    let url = Url::parse(raw).map_err(|_| "must be an absolute http:// or https:// URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("may not carry a user name or password");
    }
    let internal = match url.host() {
        None => return Err("must name a host"),
        Some(Host::Ipv4(ip)) => is_internal(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => is_internal(IpAddr::V6(ip)),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    if internal && !allow_internal {
        return Err("may not point at a loopback or private address");
    }
    Ok(url)
}

/// Resolves names for the webhook client, refusing every internal address unless allowed:
/// what it returns is what the client connects to.
struct CheckedResolver {
    allow_internal: bool,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_internal = self.allow_internal;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| allow_internal || !is_internal(addr.ip()))
                .collect();
            if allowed.is_empty() {
                let why = if found.is_empty() {
                    format!("{host} has no address")
                } else {
                    format!("{host} resolves to a loopback or private address")
                };
                return Err(why.into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Delivered { status: u16 },
    /// 410 Gone: the receiver wants no more.
    Gone,
    /// Anything else: try again later (no sooner than `retry_after`, when the receiver said).
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
}

/// One delivery to send.
pub struct Request<'a> {
    pub url: &'a str,
    pub delivery_id: i64,
    pub event_type: &'a str,
    pub payload: &'a str,
    pub signing_secret: &'a str,
}

/// The HTTP client of webhooks (one per process: it keeps connections to receivers).
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_internal: bool,
}

impl Sender {
    /// The client the settings describe (`STOCKROOM_WEBHOOK_TIMEOUT_SECS`,
    /// `STOCKROOM_WEBHOOK_ALLOW_PRIVATE`).
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Self, String> {
        Self::new(settings.webhook_timeout, settings.webhook_allow_private)
    }

    pub fn new(timeout: Duration, allow_internal: bool) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("Stockroom-Webhooks/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(CheckedResolver { allow_internal }))
            .build()
            .map_err(|e| format!("the webhook client: {e}"))?;
        Ok(Self {
            client,
            allow_internal,
        })
    }

    /// POSTs one delivery, signed both ways, and reads at most a bounded part of the answer.
    pub async fn send(&self, req: &Request<'_>) -> Outcome {
        // A literal address is connected to without resolving: check it here.
        if let Err(e) = check_url(req.url, self.allow_internal) {
            return failed(None, format!("webhook_url {e}"));
        }
        let timestamp = chrono::Utc::now().timestamp();
        let signatures = match sign(req, timestamp) {
            Ok(s) => s,
            Err(e) => return failed(None, e),
        };
        let response = self
            .client
            .post(req.url)
            .header("content-type", "application/json")
            .header("x-stockroom-event", req.event_type)
            .header("x-stockroom-delivery", req.delivery_id.to_string())
            .header("x-stockroom-timestamp", timestamp.to_string())
            .header("x-stockroom-signature", signatures.stockroom)
            .header("webhook-id", req.delivery_id.to_string())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signatures.standard)
            .body(req.payload.to_owned())
            .send()
            .await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => return failed(None, describe(&e)),
        };
        let status = response.status().as_u16();
        let retry_after = match status {
            429 | 503 => retry_after(response.headers()),
            _ => None,
        };
        if (200..300).contains(&status) {
            return Outcome::Delivered { status };
        }
        if status == 410 {
            return Outcome::Gone;
        }
        let body = read_bounded(&mut response).await;
        let mut error = format!("HTTP {status}");
        if !body.trim().is_empty() {
            error.push_str(": ");
            error.push_str(body.trim());
        }
        Outcome::Failed {
            status: Some(status),
            error: cut(&error),
            retry_after,
        }
    }
}

fn failed(status: Option<u16>, error: String) -> Outcome {
    Outcome::Failed {
        status,
        error: cut(&error),
        retry_after: None,
    }
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

/// A transport error with its causes, which say what actually went wrong (the resolver's
/// refusal, a refused connection, a timeout).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_bounded(response: &mut reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_RESPONSE_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// `Retry-After` as seconds or an HTTP date, capped at a day.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    const MAX: u64 = 86_400;
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let secs = match value.parse::<u64>() {
        Ok(secs) => secs,
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            u64::try_from((at.timestamp() - chrono::Utc::now().timestamp()).max(0)).ok()?
        }
    };
    Some(Duration::from_secs(secs.min(MAX)))
}

/// Both signature headers of one request.
pub struct Signatures {
    /// `sha256=<hex HMAC-SHA256 of "timestamp.body">`, keyed with the signing secret as given.
    pub stockroom: String,
    /// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, keyed with the secret's decoded bytes
    /// (Standard Webhooks).
    pub standard: String,
}

pub fn sign(req: &Request<'_>, timestamp: i64) -> Result<Signatures, String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(req.signing_secret.as_bytes())
        .map_err(|e| format!("the signing secret: {e}"))?;
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(req.payload.as_bytes());
    let stockroom = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let standard = standardwebhooks::Webhook::new(req.signing_secret)
        .and_then(|w| {
            w.sign(
                &req.delivery_id.to_string(),
                timestamp,
                req.payload.as_bytes(),
            )
        })
        .map_err(|e| format!("the signing secret: {e}"))?;
    Ok(Signatures {
        stockroom,
        standard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700:4700::1111"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_checked_as_they_are_set() {
        assert!(check_url("https://example.com/hook", false).is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://localhost/",
            "http://api.localhost./",
            "http://user:pw@example.com/",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:8080/", true).is_ok());
    }

    /// A name that resolves to loopback is refused on the address the client would connect
    /// to, though the URL itself names no address.
    #[actix_rt::test]
    async fn names_resolving_to_internal_addresses_are_refused() {
        use reqwest::dns::Resolve;
        let name = || "localhost".parse::<reqwest::dns::Name>().unwrap();
        let refused = CheckedResolver {
            allow_internal: false,
        }
        .resolve(name())
        .await;
        assert!(refused.is_err());
        let allowed = CheckedResolver {
            allow_internal: true,
        }
        .resolve(name())
        .await
        .unwrap();
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }
}

/// Property tests in place of fuzzing: cargo-fuzz needs a nightly toolchain, so the URL check
/// gets arbitrary strings and generated spellings of internal addresses from proptest on
/// stable. Each case count is small enough for CI (`PROPTEST_CASES` overrides them all).
#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;

    use super::*;

    use crate::proptest_support::config;

    /// An address in one of the ranges no webhook may reach.
    fn internal_v4() -> impl Strategy<Value = Ipv4Addr> {
        // (network, prefix length)
        let ranges: [(u32, u32); 14] = [
            (0x0000_0000, 8),  // "this network"
            (0x0A00_0000, 8),  // private
            (0x6440_0000, 10), // shared (CGNAT)
            (0x7F00_0000, 8),  // loopback
            (0xA9FE_0000, 16), // link-local (cloud metadata)
            (0xAC10_0000, 12), // private
            (0xC000_0000, 24), // IETF protocol assignments
            (0xC000_0200, 24), // documentation
            (0xC0A8_0000, 16), // private
            (0xC612_0000, 15), // benchmarking
            (0xC633_6400, 24), // documentation
            (0xCB00_7100, 24), // documentation
            (0xE000_0000, 4),  // multicast
            (0xF000_0000, 4),  // reserved and broadcast
        ];
        (prop::sample::select(ranges.to_vec()), any::<u32>()).prop_map(|((net, len), bits)| {
            let host_mask = u32::MAX.checked_shr(len).unwrap_or(0);
            Ipv4Addr::from(net | (bits & host_mask))
        })
    }

    fn internal_v6() -> impl Strategy<Value = Ipv6Addr> {
        let in_prefix = |net: u128, len: u32| {
            any::<u128>().prop_map(move |bits| {
                Ipv6Addr::from(net | (bits & u128::MAX.checked_shr(len).unwrap_or(0)))
            })
        };
        prop_oneof![
            Just(Ipv6Addr::LOCALHOST),
            Just(Ipv6Addr::UNSPECIFIED),
            in_prefix(0xfc00 << 112, 7),      // unique local
            in_prefix(0xfe80 << 112, 10),     // link-local
            in_prefix(0xfec0 << 112, 10),     // site-local
            in_prefix(0xff00 << 112, 8),      // multicast
            in_prefix(0x2001_0db8 << 96, 32), // documentation
            internal_v4().prop_map(|v4| v4.to_ipv6_mapped()),
            internal_v4().prop_map(|v4| {
                Ipv6Addr::from((0x64_ff9b_u128 << 96) | u128::from(u32::from(v4)))
            }),
        ]
    }

    /// Ways of writing an IPv4 address that the URL parser (WHATWG) reads as that address.
    fn spell_v4(ip: Ipv4Addr, how: u8) -> String {
        let [a, b, c, d] = ip.octets();
        let n = u32::from(ip);
        match how % 10 {
            0 => ip.to_string(),
            1 => n.to_string(),                          // 2130706433
            2 => format!("0x{n:x}"),                     // 0x7f000001
            3 => format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"), // 0177.00.00.01
            4 => format!("0x{a:X}.0x{b:x}.{c}.0{d:o}"),  // mixed bases
            5 => format!("{a}.{}", n & 0x00FF_FFFF),     // 127.1
            6 => format!("{a}.{b}.{}", n & 0xFFFF),      // 127.0.1
            7 => format!("{ip}."),                       // trailing dot
            8 => {
                // Percent-encoded, decoded before the host is read.
                ip.to_string()
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect()
            }
            _ => {
                // Full-width digits and dots, mapped to ASCII by IDNA.
                ip.to_string()
                    .chars()
                    .map(|ch| match ch {
                        '.' => '．',
                        digit => char::from_u32(u32::from(digit) - 0x30 + 0xFF10).unwrap_or(digit),
                    })
                    .collect()
            }
        }
    }

    fn spell_v6(ip: Ipv6Addr, how: u8) -> String {
        match how % 3 {
            0 => format!("[{ip}]"),
            1 => {
                let s = ip.segments();
                format!(
                    "[{:X}:{:X}:{:X}:{:X}:{:X}:{:X}:{:X}:{:X}]",
                    s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
                )
            }
            _ => match ip.to_ipv4_mapped() {
                Some(v4) => format!("[::ffff:{v4}]"),
                None => format!("[{ip}]"),
            },
        }
    }

    /// A URL around `host`: scheme case, port, path, query and fragment vary; so does
    /// whitespace that the parser strips (leading spaces, tabs and newlines anywhere).
    fn url_around(host: &str, form: u8, port: Option<u16>) -> String {
        let scheme = ["http", "https", "HTTP", "hTTpS"][usize::from(form % 4)];
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let url = format!("{scheme}://{host}{port}/hook?x=1#frag");
        match form / 4 % 4 {
            0 => url,
            1 => format!("  {url}"),
            2 => url.replacen("://", "://\t", 1),
            _ => url.replacen("//", "/\n/", 1),
        }
    }

    proptest! {
        #![proptest_config(config(1000))]

        /// Any string: no panic; what is accepted is http(s), with a host, no credentials,
        /// and (when internal addresses are not allowed) no internal literal or localhost.
        #[test]
        fn arbitrary_strings_are_accepted_only_when_safe(
            raw in prop_oneof![
                any::<String>(),
                "(h|H)(t|T){2}(p|P)(s|S)?:[/\\\\]{0,3}[a-z0-9.:@\\[\\]%\\\\/#?-]{0,40}",
                "[a-z+.-]{0,8}://[ -~]{0,40}",
            ],
            allow in any::<bool>(),
        ) {
            if let Ok(url) = check_url(&raw, allow) {
                prop_assert!(matches!(url.scheme(), "http" | "https"), "{raw:?}");
                prop_assert!(url.username().is_empty() && url.password().is_none(), "{raw:?}");
                let Some(host) = url.host() else {
                    return Err(TestCaseError::fail(format!("{raw:?} has no host")));
                };
                let internal = match host {
                    Host::Ipv4(ip) => is_internal(IpAddr::V4(ip)),
                    Host::Ipv6(ip) => is_internal(IpAddr::V6(ip)),
                    Host::Domain(name) => {
                        let name = name.trim_end_matches('.').to_ascii_lowercase();
                        name == "localhost" || name.ends_with(".localhost")
                    }
                };
                prop_assert!(allow || !internal, "{raw:?} reaches an internal host");
            }
        }

        /// Every spelling of an internal IPv4 address is read as that address and refused.
        #[test]
        fn internal_ipv4_hosts_are_refused(
            ip in internal_v4(),
            how in any::<u8>(),
            form in any::<u8>(),
            port in prop::option::of(any::<u16>()),
        ) {
            let raw = url_around(&spell_v4(ip, how), form, port);
            prop_assert!(check_url(&raw, false).is_err(), "{raw:?} was accepted");
            // The spelling really names `ip`: allowed, it parses to that very host.
            let url = check_url(&raw, true).map_err(|e| TestCaseError::fail(format!("{raw:?}: {e}")))?;
            prop_assert_eq!(url.host(), Some(Host::Ipv4(ip)), "{}", raw);
        }

        /// Internal IPv6 addresses (loopback, unique and link-local, IPv4-mapped and NAT64
        /// forms of internal IPv4 addresses…) are refused.
        #[test]
        fn internal_ipv6_hosts_are_refused(
            ip in internal_v6(),
            how in any::<u8>(),
            form in any::<u8>(),
            port in prop::option::of(any::<u16>()),
        ) {
            let raw = url_around(&spell_v6(ip, how), form, port);
            prop_assert!(check_url(&raw, false).is_err(), "{raw:?} was accepted");
            let url = check_url(&raw, true).map_err(|e| TestCaseError::fail(format!("{raw:?}: {e}")))?;
            prop_assert_eq!(url.host(), Some(Host::Ipv6(ip)), "{}", raw);
        }

        /// Tricks that put a public-looking name in front of an internal host, or credentials
        /// in the URL, are refused; so are names of the local machine.
        #[test]
        fn userinfo_and_localhost_tricks_are_refused(
            ip in internal_v4(),
            how in any::<u8>(),
            trick in 0..8u8,
            form in any::<u8>(),
        ) {
            let host = spell_v4(ip, how);
            let raw = match trick {
                0 => format!("http://example.com@{host}/"),
                1 => format!("http://example.com:443@{host}/"),
                2 => format!("https://user:pass@{host}/"),
                3 => format!("http://{host}\\@example.com/"),
                4 => format!("http://{host}#@example.com/"),
                5 => format!("http://{host}?@example.com/"),
                6 => url_around(["localhost", "LOCALHOST.", "a.localhost", "x.Localhost.."]
                    [usize::from(form % 4)], form, None),
                _ => format!("http://a@example.com@{host}/"),
            };
            prop_assert!(check_url(&raw, false).is_err(), "{raw:?} was accepted");
            if (3..=5).contains(&trick) {
                // What follows `\`, `#` or `?` is not userinfo: the host is still `ip`.
                let url = check_url(&raw, true).map_err(|e| TestCaseError::fail(format!("{raw:?}: {e}")))?;
                prop_assert_eq!(url.host(), Some(Host::Ipv4(ip)), "{}", raw);
            }
        }

        /// Only http and https: any other scheme is refused, whatever the host.
        #[test]
        fn other_schemes_are_refused(
            scheme in prop_oneof![
                prop::sample::select(vec![
                    "ftp", "file", "gopher", "ws", "wss", "javascript", "data", "dict", "ldap",
                    "jar", "netdoc", "sftp", "tftp", "httpx", "http2", "https+unix", "blob",
                ]).prop_map(str::to_owned),
                "[a-zA-Z][a-zA-Z0-9+.-]{0,10}",
            ],
            host in prop_oneof![Just("example.com".to_owned()), "[a-z0-9.-]{0,20}"],
            slashes in 0..4usize,
            allow in any::<bool>(),
        ) {
            prop_assume!(!scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https"));
            let raw = format!("{scheme}:{}{host}/hook", "/".repeat(slashes));
            prop_assert!(check_url(&raw, allow).is_err(), "{raw:?} was accepted");
        }

        /// For every IPv4 address, and every IPv6 address (random, and IPv4-mapped or NAT64
        /// forms of every IPv4 address), the URL check agrees with `is_internal`, and the
        /// embedded forms are judged like the IPv4 address they carry.
        #[test]
        fn literal_hosts_are_judged_by_is_internal(v4 in any::<u32>(), v6 in any::<u128>()) {
            let v4 = Ipv4Addr::from(v4);
            let internal = is_internal(IpAddr::V4(v4));
            prop_assert_eq!(is_internal(IpAddr::V6(v4.to_ipv6_mapped())), internal);
            let nat64 = Ipv6Addr::from((0x64_ff9b_u128 << 96) | u128::from(u32::from(v4)));
            prop_assert_eq!(is_internal(IpAddr::V6(nat64)), internal);
            prop_assert_eq!(check_url(&format!("http://{v4}/"), false).is_err(), internal);
            let v6 = Ipv6Addr::from(v6);
            prop_assert_eq!(
                check_url(&format!("https://[{v6}]:8443/"), false).is_err(),
                is_internal(IpAddr::V6(v6))
            );
        }
    }
}
