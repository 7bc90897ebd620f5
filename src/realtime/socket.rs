//! One open socket: replay, then live events, client commands, heartbeats.
//!
//! The socket remembers `last`, the last position it sent. A pushed event at `last + 1` is
//! sent at once; one at or below `last` was sent already (the replay raced the push) and is
//! skipped; one further ahead means something was not pushed here (another process wrote
//! it, or a push was missed), so the gap is read from the database first. Positions commit in
//! order, so the database always holds every position up to a pushed one: no gaps, no
//! repeats, whatever order pushes arrive in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};

use super::dto::{ClientFrame, ErrorFrame};
use crate::auth::Principal;
use crate::chat::dto::{MessageKind, NewMessage};
use crate::chat::service as chat;
use crate::error::ApiError;
use crate::events::{event_frame, EventBus, Push, Resume, Subscription};
use crate::state::AppState;

/// Events read from the database per query while replaying.
const REPLAY_PAGE: i64 = 500;
/// `typing` frames a socket may send per chat: one per this interval; more are ignored.
const TYPING_INTERVAL: Duration = Duration::from_secs(1);
/// How long a socket waits for pushes published out of order before reading the gap from
/// the database.
const GAP_GRACE: Duration = Duration::from_millis(50);
/// The close code for a client whose queue overflowed (application-defined range).
pub const CLOSE_TOO_SLOW: u16 = 4008;

/// Why the socket ends, and what its close frame says.
enum End {
    /// The client closed or vanished: nothing more to say.
    Gone,
    Close(CloseReason),
}

fn close(code: CloseCode, description: impl Into<String>) -> End {
    End::Close(CloseReason {
        code,
        description: Some(description.into()),
    })
}

struct Socket {
    state: Arc<AppState>,
    principal: Principal,
    session: Session,
    /// The last position sent to the client.
    last: i64,
    last_heard: Instant,
    typing_sent: HashMap<i64, Instant>,
    /// Set by the hub when this socket's queue overflowed.
    overflowed: Arc<tokio::sync::Notify>,
}

/// Serves the socket until it ends, then closes it.
pub async fn run(
    state: Arc<AppState>,
    principal: Principal,
    resume: Resume,
    mut subscription: Subscription,
    session: Session,
    mut stream: AggregatedMessageStream,
) {
    state.metrics.websockets_open.inc();
    let grace = state.settings.ws_ping_interval * 2;
    let mut socket = Socket {
        state: state.clone(),
        principal,
        session,
        last: 0,
        last_heard: Instant::now(),
        typing_sent: HashMap::new(),
        overflowed: subscription.overflowed.clone(),
    };
    let end = socket.serve(resume, &mut subscription, &mut stream).await;
    drop(subscription);
    if let End::Close(reason) = end {
        // A client that is merely slow still reads this after its backlog; a dead one does
        // not, and the wait ends.
        let _ = tokio::time::timeout(grace, socket.session.close(Some(reason))).await;
    }
    state.metrics.websockets_open.dec();
}

impl Socket {
    async fn serve(
        &mut self,
        resume: Resume,
        subscription: &mut Subscription,
        stream: &mut AggregatedMessageStream,
    ) -> End {
        // Every step that can wait on more than the socket itself (the database, a chat's
        // turn, the client's reading) is boxed: a task's memory is its largest state, and
        // an idle socket (10,000 of them is ordinary) should only pay for waiting.
        if let Err(end) = Box::pin(self.start(resume, subscription)).await {
            return end;
        }
        let interval = self.state.settings.ws_ping_interval;
        let mut heartbeat = tokio::time::interval(interval);
        heartbeat.tick().await;
        loop {
            let step = tokio::select! {
                biased;
                _ = subscription.overflowed.notified() => Err(self.too_slow()),
                push = subscription.queue.recv() => match push {
                    Some(push) => Box::pin(self.on_push(push, subscription)).await,
                    None => Err(self.too_slow()),
                },
                frame = stream.recv() => Box::pin(self.on_client(frame)).await,
                _ = heartbeat.tick() => Box::pin(self.on_heartbeat(interval)).await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    fn too_slow(&self) -> End {
        close(
            CloseCode::Other(CLOSE_TOO_SLOW),
            format!(
                "too slow to read events: reconnect with ?since={}",
                self.last
            ),
        )
    }

    /// Sends one frame. A client that stopped reading holds this up; its queue then
    /// overflows, and that ends the wait.
    async fn send(&mut self, text: String) -> Result<(), End> {
        let overflowed = self.overflowed.clone();
        let sent = tokio::select! {
            result = self.session.text(text) => Some(result.is_ok()),
            _ = overflowed.notified() => None,
        };
        match sent {
            Some(true) => Ok(()),
            Some(false) => Err(End::Gone),
            None => Err(self.too_slow()),
        }
    }

    /// Replays what the client missed, then returns with the socket ready for live events.
    async fn start(&mut self, resume: Resume, subscription: &mut Subscription) -> Result<(), End> {
        self.last = match resume {
            Resume::From(n) => n,
            Resume::Resync(head) => {
                // What was asked for is gone: say so once, then continue from now.
                self.send(format!(
                    r#"{{"type":"resync","data":{{"last_seq":{head}}}}}"#
                ))
                .await?;
                head
            }
        };
        // Live pushes queue up meanwhile; the ones the replay covers are dropped, and one
        // past it makes the replay go on.
        loop {
            let sent = self.replay(None).await?;
            let mut ahead = false;
            while let Ok(push) = subscription.queue.try_recv() {
                match push {
                    Push::Event { seq, .. } => ahead |= seq > self.last,
                    Push::CatchUp => ahead = true,
                    Push::Ephemeral(frame) => self.send(frame.to_string()).await?,
                }
            }
            if !ahead && sent < REPLAY_PAGE {
                return Ok(());
            }
        }
    }

    /// Sends the stored events after `last` (up to `until` when given, else all); returns
    /// how many the last page held.
    async fn replay(&mut self, until: Option<i64>) -> Result<i64, End> {
        let user = self.principal.user_id;
        loop {
            let after = self.last;
            let rows = self
                .state
                .db
                .run(move |conn| EventBus::replay(conn, user, after, REPLAY_PAGE))
                .await
                .map_err(|e| self.failed(e))?;
            let count = i64::try_from(rows.len()).unwrap_or(i64::MAX);
            for row in rows {
                self.send(event_frame(row.seq, &row.kind, &row.data))
                    .await?;
                self.last = row.seq;
            }
            let reached = until.is_some_and(|u| self.last >= u);
            if count < REPLAY_PAGE || reached {
                return Ok(count);
            }
        }
    }

    async fn on_push(&mut self, push: Push, subscription: &mut Subscription) -> Result<(), End> {
        match push {
            Push::Event { seq, .. } if seq <= self.last => Ok(()),
            Push::Event { seq, body } if seq == self.last + 1 => {
                self.send(event_frame(seq, &body.kind, &body.data)).await?;
                self.last = seq;
                Ok(())
            }
            Push::Event { seq, body } => self.fill_gap(seq, body, subscription).await,
            Push::CatchUp => self.replay(None).await.map(drop),
            Push::Ephemeral(frame) => self.send(frame.to_string()).await,
        }
    }

    /// A push arrived ahead of `last + 1`. Writers that commit one after the other may
    /// publish in the other order, so the missing pushes usually follow within moments:
    /// wait briefly for them (sending each as the run becomes whole), then read whatever is
    /// still missing from the database. Waiting spares the database a read per socket when
    /// a large group's messages cross.
    async fn fill_gap(
        &mut self,
        seq: i64,
        body: Arc<crate::events::EventBody>,
        subscription: &mut Subscription,
    ) -> Result<(), End> {
        let mut ahead = std::collections::BTreeMap::new();
        ahead.insert(seq, body);
        let deadline = tokio::time::Instant::now() + GAP_GRACE;
        loop {
            while let Some(entry) = ahead.first_entry() {
                if *entry.key() > self.last + 1 {
                    break;
                }
                let (next, body) = entry.remove_entry();
                if next == self.last + 1 {
                    self.send(event_frame(next, &body.kind, &body.data)).await?;
                    self.last = next;
                }
            }
            if ahead.is_empty() {
                return Ok(());
            }
            match tokio::time::timeout_at(deadline, subscription.queue.recv()).await {
                Ok(Some(Push::Event { seq, body })) if seq > self.last => {
                    ahead.insert(seq, body);
                }
                Ok(Some(Push::Event { .. })) => {}
                Ok(Some(Push::Ephemeral(frame))) => self.send(frame.to_string()).await?,
                // Pushes may have been missed altogether: read everything there is.
                Ok(Some(Push::CatchUp)) => return self.replay(None).await.map(drop),
                Ok(None) | Err(_) => break,
            }
        }
        let target = ahead.keys().next_back().copied().unwrap_or(self.last);
        self.replay(Some(target)).await.map(drop)
    }

    async fn on_heartbeat(&mut self, interval: Duration) -> Result<(), End> {
        if self.last_heard.elapsed() > interval * 2 {
            return Err(close(
                CloseCode::Away,
                "no answer to pings: the connection is presumed dead",
            ));
        }
        // Credentials were checked at the upgrade; a session ended since (logout, password
        // change, erased account) ends its sockets too, within one interval.
        if let Some(session_id) = self.principal.session_id {
            let active = crate::auth::middleware::live_role(
                &self.state.authenticator,
                session_id,
                self.principal.user_id,
                None,
            )
            .await
            .map_err(|e| self.failed(e))?;
            if active.is_none() {
                return Err(close(CloseCode::Policy, "the session has ended"));
            }
        }
        self.session.ping(b"").await.map_err(|_| End::Gone)
    }

    async fn on_client(
        &mut self,
        frame: Option<Result<AggregatedMessage, actix_ws::ProtocolError>>,
    ) -> Result<(), End> {
        self.last_heard = Instant::now();
        match frame {
            None => Err(End::Gone),
            Some(Err(actix_ws::ProtocolError::Overflow)) => Err(close(
                CloseCode::Size,
                format!(
                    "frames may hold at most {} bytes",
                    self.state.settings.ws_max_frame_bytes
                ),
            )),
            Some(Err(e)) => Err(close(CloseCode::Protocol, e.to_string())),
            Some(Ok(AggregatedMessage::Close(_))) => Err(End::Close(CloseReason {
                code: CloseCode::Normal,
                description: None,
            })),
            Some(Ok(AggregatedMessage::Ping(bytes))) => {
                self.session.pong(&bytes).await.map_err(|_| End::Gone)
            }
            Some(Ok(AggregatedMessage::Pong(_))) => Ok(()),
            Some(Ok(AggregatedMessage::Binary(_))) => {
                let frame = ErrorFrame {
                    kind: "error",
                    status: 400,
                    detail: "frames are JSON text".to_owned(),
                    errors: None,
                    client_id: None,
                    retry_after: None,
                };
                self.error(frame).await
            }
            Some(Ok(AggregatedMessage::Text(text))) => self.on_command(text.as_bytes()).await,
        }
    }

    async fn on_command(&mut self, text: &[u8]) -> Result<(), End> {
        let frame: ClientFrame = match crate::extract::parse_json(text) {
            Ok(frame) => frame,
            Err(e) => return self.report(None, e).await,
        };
        match frame {
            ClientFrame::Ping => self.send(r#"{"type":"pong"}"#.to_owned()).await,
            ClientFrame::Typing { chat_id } => {
                let now = Instant::now();
                let recent = self
                    .typing_sent
                    .get(&chat_id)
                    .is_some_and(|at| now.duration_since(*at) < TYPING_INTERVAL);
                if recent {
                    return Ok(());
                }
                if self.typing_sent.len() >= 64 {
                    self.typing_sent
                        .retain(|_, at| now.duration_since(*at) < TYPING_INTERVAL);
                }
                self.typing_sent.insert(chat_id, now);
                match chat::typing(&self.state, &self.principal, chat_id).await {
                    Ok(()) => Ok(()),
                    Err(e) => self.report(None, e).await,
                }
            }
            ClientFrame::Send {
                chat_id,
                kind,
                body,
                file_id,
                client_id,
            } => {
                let new = NewMessage {
                    kind: kind.unwrap_or(MessageKind::Text),
                    body,
                    file_id,
                    client_id: client_id.clone(),
                };
                // The message reaches this socket as `message.created`, like everyone's.
                match chat::send(&self.state, &self.principal, chat_id, new).await {
                    Ok(_) => Ok(()),
                    Err(e) => self.report(client_id, e).await,
                }
            }
        }
    }

    /// Answers a failed command with an `error` frame; the socket stays open. A rate-limited
    /// one (429) says in `retry_after` how many seconds to wait, as `Retry-After` does.
    async fn report(&mut self, client_id: Option<String>, e: ApiError) -> Result<(), End> {
        let retry_after = match &e {
            ApiError::Internal(inner) => {
                tracing::error!(error = %inner, "a socket command failed");
                None
            }
            ApiError::TooManyRequests {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        let problem = e.problem();
        let frame = ErrorFrame {
            kind: "error",
            status: problem.status,
            detail: problem.detail,
            errors: problem.errors,
            client_id,
            retry_after,
        };
        self.error(frame).await
    }

    async fn error(&mut self, frame: ErrorFrame) -> Result<(), End> {
        let text = serde_json::to_string(&frame).unwrap_or_else(|_| {
            r#"{"type":"error","status":500,"detail":"internal error"}"#.to_owned()
        });
        self.send(text).await
    }

    /// The database failed mid-stream: the client should come back (and resume).
    fn failed(&self, e: ApiError) -> End {
        tracing::warn!(error = %e, "a socket could not read its events");
        close(
            CloseCode::Again,
            "temporarily unavailable: reconnect with ?since",
        )
    }
}
