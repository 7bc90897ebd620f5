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
