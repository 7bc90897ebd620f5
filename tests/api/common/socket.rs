//! A WebSocket client for the event socket, over real HTTP like every other test client.

use std::time::Duration;

use actix_web::web::Bytes;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures::{SinkExt, StreamExt};
use serde_json::Value;

use super::TestApp;

/// How long a test waits for a frame before it fails: far longer than delivery takes.
const FRAME_DEADLINE: Duration = Duration::from_secs(20);

pub struct Ws {
    framed: actix_codec::Framed<BoxedSocket, Codec>,
}

/// What ended a socket.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Closed(Option<u16>),
    Eof,
}

impl TestApp {
    /// Opens the event socket with a bearer header; `since` resumes.
    pub async fn socket(&self, token: &str, since: Option<i64>) -> Ws {
        let path = match since {
            Some(n) => format!("/api/ws/chat?since={n}"),
            None => "/api/ws/chat".to_owned(),
        };
        self.try_socket(&path, Some(token))
            .await
            .unwrap_or_else(|status| panic!("socket refused with {status}"))
    }

    /// Opens a socket on `path`, or returns the HTTP status that refused it.
    pub async fn try_socket(&self, path: &str, token: Option<&str>) -> Result<Ws, u16> {
        let mut req = self.client().ws(self.url(path)).max_frame_size(1 << 20);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        match req.connect().await {
            Ok((_, framed)) => Ok(Ws { framed }),
            Err(awc::error::WsClientError::InvalidResponseStatus(status)) => Err(status.as_u16()),
            Err(e) => panic!("socket handshake failed: {e}"),
        }
    }
}

impl Ws {
    /// The next text frame as JSON (pings are answered on the way).
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(FRAME_DEADLINE, self.framed.next())
                .await
                .expect("a frame arrives in time")
                .expect("the socket is open")
                .expect("a valid frame");
            match frame {
                Frame::Text(bytes) => {
                    return serde_json::from_slice(&bytes).expect("text frames are JSON")
                }
                Frame::Ping(bytes) => self.pong(bytes).await,
                Frame::Close(reason) => panic!("closed: {reason:?}"),
                _ => {}
            }
        }
    }

    async fn pong(&mut self, bytes: Bytes) {
        let _ = self.framed.send(Message::Pong(bytes)).await;
    }

    /// The next `n` frames.
    pub async fn take(&mut self, n: usize) -> Vec<Value> {
        let mut frames = Vec::with_capacity(n);
        for _ in 0..n {
            frames.push(self.next().await);
        }
        frames
    }

    /// The next frame, which must be a stored event of `kind`.
    pub async fn event(&mut self, kind: &str) -> Value {
        let frame = self.next().await;
        assert_eq!(frame["type"], kind, "frame: {frame}");
        assert!(frame["seq"].is_i64(), "stored events carry seq: {frame}");
        frame
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.framed
            .send(Message::Text(text.into()))
            .await
            .expect("send a frame");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.framed
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send a frame");
    }

    /// Proves nothing else is waiting: the server answers frames in order, so the answer to
    /// a ping comes after every event queued before it.
    pub async fn nothing_pending(&mut self) {
        self.send(serde_json::json!({"type": "ping"})).await;
        let frame = self.next().await;
        assert_eq!(frame["type"], "pong", "an unexpected frame: {frame}");
    }

    /// Reads until the server ends the socket; returns how and the text frames before it.
    pub async fn until_end(&mut self) -> (Ended, Vec<Value>) {
        let mut frames = Vec::new();
        loop {
            let next = tokio::time::timeout(FRAME_DEADLINE, self.framed.next())
                .await
                .expect("the socket ends in time");
            match next {
                None | Some(Err(_)) => return (Ended::Eof, frames),
                Some(Ok(Frame::Close(reason))) => {
                    return (Ended::Closed(reason.map(|r| u16::from(r.code))), frames)
                }
                Some(Ok(Frame::Text(bytes))) => {
                    frames.push(serde_json::from_slice(&bytes).expect("JSON"))
                }
                Some(Ok(Frame::Ping(bytes))) => self.pong(bytes).await,
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.framed.send(Message::Close(None)).await;
    }
}
