//! Bounds on what slow or numerous connections can hold: how long a body may take to arrive,
//! how many connections one client address may keep open, and how many the process accepts
//! in all (from its file-descriptor limit). Without them a few thousand connections each
//! sending a byte every few seconds exhaust the descriptors and nothing answers any more.
//! (The time to send headers is actix's `client_request_timeout`, set in `server.rs`.)

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use actix_web::{Error, HttpMessage, ResponseError};
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use crate::config::Settings;
use crate::error::ApiError;
use crate::slots::{Slot, Slots};

/// A body that keeps arriving at least this fast gets more time than
/// `STOCKROOM_BODY_TIMEOUT_SECS`: one second more per this many bytes received (as Apache's
/// mod_reqtimeout `MinRate` does), so large uploads over slow links still finish while a
/// trickle of a byte every few seconds is cut at the deadline.
pub const MIN_BODY_BYTES_PER_SEC: u64 = 8 * 1024;

/// actix's own per-worker default, kept as the ceiling when descriptors are plentiful.
const MAX_CONNECTIONS_PER_WORKER: usize = 25_000;

/// Open connections per client address, shared by every worker of the process. A trusted
/// reverse proxy's connections are not counted: they carry many clients (whose own address
/// is known only once a request's `X-Forwarded-For` is read).
#[derive(Clone)]
pub struct AddressSlots {
    slots: Slots<IpAddr>,
    trusted_proxies: std::sync::Arc<[ipnet::IpNet]>,
}

/// Kept in the connection's extensions for as long as it is open; gives its slot back when
/// actix drops the connection.
pub struct ConnectionSlot {
    _slot: Slot<IpAddr>,
    /// The address already had `cap` connections when this one was accepted.
    over_cap: bool,
}

impl AddressSlots {
    pub fn new(cap: usize, trusted_proxies: &[ipnet::IpNet]) -> Self {
        Self {
            slots: Slots::new(cap),
            trusted_proxies: trusted_proxies.into(),
        }
    }

    /// For `HttpServer::on_connect`: counts the connection against its client's address.
    pub fn on_connect(&self, conn: &dyn Any, extensions: &mut Extensions) {
        let Some(peer) = conn
            .downcast_ref::<actix_web::rt::net::TcpStream>()
            .and_then(|stream| stream.peer_addr().ok())
        else {
            return;
        };
        if is_trusted(&self.trusted_proxies, peer.ip()) {
            return;
        }
        let (slot, over_cap) = self.slots.enter(client_key(peer.ip()));
        extensions.insert(ConnectionSlot {
            _slot: slot,
            over_cap,
        });
    }
}

/// The client's address, as per-address limits see it: the TCP peer's, unless the peer is
/// a trusted reverse proxy (`STOCKROOM_TRUSTED_PROXIES`). Then `X-Forwarded-For` is read
/// from the right (each proxy appends the address it received the request from), trusted
/// proxies are skipped, and the first address not trusted is the client: entries further
/// left were written by the client itself and could say anything. A malformed entry stops
/// the walk at the last proxy, so a forged header never moves the limit to someone else.
/// Nobody else's header is believed.
pub fn client_address(req: &actix_web::HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    let trusted = req
        .app_data::<Data<Settings>>()
        .map(|settings| settings.trusted_proxies.as_slice())
        .unwrap_or_default();
    if !is_trusted(trusted, peer) {
        return Some(peer);
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    let mut client = peer;
    for entry in forwarded.iter().rev() {
        let Ok(hop) = entry.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            break;
        };
        client = hop;
        if !is_trusted(trusted, hop) {
            break;
        }
    }
    Some(client)
}

fn is_trusted(trusted: &[ipnet::IpNet], ip: IpAddr) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|net| net.contains(&ip))
}

/// What counts as one client: an IPv4 address, or an IPv6 /64 (one subscriber's network,
/// where every host can pick any of 2^64 addresses).
pub fn client_key(ip: IpAddr) -> IpAddr {
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

/// The process's file-descriptor limit, after raising its soft limit to the hard one (as
/// far as the system allows; 1024 when it cannot be read).
pub fn descriptor_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX)
        .or_else(|_| rlimit::Resource::NOFILE.get().map(|(soft, _)| soft))
        .unwrap_or(1024)
}

/// Connections each worker accepts: the descriptor limit less a reserve for database
/// connections, stored files and the rest of the process, shared between the workers. When
/// every worker is full, new connections wait in the listen backlog instead of failing
/// `accept` for want of descriptors (and taking `/healthz` down with them).
pub fn max_connections_per_worker(descriptors: u64, workers: usize, db_pool_size: u32) -> usize {
    let reserve = (descriptors / 10).max(256) + u64::from(db_pool_size);
    let budget = descriptors.saturating_sub(reserve);
    let per_worker = budget / u64::try_from(workers.max(1)).unwrap_or(1);
    usize::try_from(per_worker)
        .unwrap_or(usize::MAX)
        .clamp(16, MAX_CONNECTIONS_PER_WORKER)
}

/// Middleware: answers requests on a connection over its address's cap with 429 (and closes
/// it), and bounds the time to read each request body: a body not fully received by its
/// deadline is answered 408 and the connection closed, while the client still holds it open.
pub async fn bound_request(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if req
        .conn_data::<ConnectionSlot>()
        .is_some_and(|slot| slot.over_cap)
    {
        let cap = req
            .app_data::<Data<Settings>>()
            .map_or(0, |settings| settings.max_connections_per_address);
        let refused = ApiError::TooManyRequests {
            detail: format!(
                "this address already has {cap} open connections; close some or retry later"
            ),
            retry_after_secs: 1,
        };
        let mut res = req.into_response(refused.error_response());
        close_after(&mut res);
        return Ok(res);
    }
    let body_timeout = req
        .app_data::<Data<Settings>>()
        .map(|settings| settings.body_timeout);
    let expired = Rc::new(Cell::new(false));
    // An upgraded connection (a WebSocket) streams frames through the payload for as long
    // as it lives: it has no body to finish.
    if let Some(timeout) = body_timeout.filter(|_| !req.head().upgrade()) {
        match req.take_payload() {
            Payload::None => {}
            payload => req.set_payload(Payload::Stream {
                payload: Box::pin(BodyDeadline::new(payload, timeout, expired.clone())),
            }),
        }
    }
    let res = next.call(req).await?.map_into_boxed_body();
    if !expired.get() {
        return Ok(res);
    }
    let timeout = body_timeout.unwrap_or_default().as_secs();
    let late = ApiError::RequestTimeout(format!(
        "the request body did not arrive within {timeout} s"
    ));
    let (req, _) = res.into_parts();
    let mut res = ServiceResponse::new(req, late.error_response());
    close_after(&mut res);
    Ok(res)
}

/// The rest of the connection is not worth reading (or keeping): close it after this answer.
fn close_after(res: &mut ServiceResponse<BoxBody>) {
    res.response_mut()
        .head_mut()
        .set_connection_type(ConnectionType::Close);
}

/// A request body stream that fails with a timeout once its deadline passes, even while no
/// bytes arrive (the timer wakes it), and records that it did so.
pub struct BodyDeadline {
    inner: Payload,
    deadline: Instant,
    timer: Pin<Box<Sleep>>,
    expired: Rc<Cell<bool>>,
}

impl BodyDeadline {
    fn new(inner: Payload, timeout: Duration, expired: Rc<Cell<bool>>) -> Self {
        let deadline = Instant::now() + timeout;
        Self {
            inner,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            expired,
        }
    }

    fn timed_out() -> PayloadError {
        PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body did not arrive in time",
        ))
    }
}

impl Stream for BodyDeadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.expired.get() {
            return Poll::Ready(Some(Err(Self::timed_out())));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let grace =
                    Duration::from_secs_f64(chunk.len() as f64 / MIN_BODY_BYTES_PER_SEC as f64);
                this.deadline += grace;
                this.timer.as_mut().reset(this.deadline);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(other) => Poll::Ready(other),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired.set(true);
                    Poll::Ready(Some(Err(Self::timed_out())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn workers_share_the_descriptors_left_after_a_reserve() {
        // 1024 descriptors: 256 + 8 kept back, the rest split between 2 workers.
        assert_eq!(max_connections_per_worker(1024, 2, 8), 380);
        assert_eq!(
            max_connections_per_worker(1 << 20, 2, 16),
            MAX_CONNECTIONS_PER_WORKER
        );
        assert_eq!(max_connections_per_worker(100, 4, 8), 16);
        assert!(descriptor_limit() >= 256);
    }
}
