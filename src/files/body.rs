//! The body of an upload: actix-multipart's parser over the request payload, plus the one
//! thing that parser cannot tell its caller — that the body has ended.
//!
//! actix-multipart 0.7 waits for more bytes, forever, when a body ends inside a part (the
//! data stops on a partial delimiter such as `\r\n-`): the payload is over, so nothing ever
//! wakes the parser again, and the handler, the connection and the user's place in the
//! upload queue stay held while the client keeps the connection open (upstream
//! actix/actix-web#3202, found by `multipart_fuzz`). The payload is watched here; once it has
//! ended, a parser that still asks to wait is stuck for good, and the upload is refused (400).

use std::cell::Cell;
use std::future::poll_fn;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_multipart::{Field, Multipart, MultipartError};
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::web::Bytes;
use actix_web::{FromRequest, HttpRequest};
use futures_util::future::{ready, Ready};
use futures_util::Stream;

use crate::error::{ApiError, ApiResult};

/// A `multipart/form-data` request body (the extractor of both upload routes).
pub struct UploadBody {
    parts: Multipart,
    ended: Rc<Cell<bool>>,
}

impl UploadBody {
    /// The next part, `None` after the last.
    pub async fn next_part(&mut self) -> ApiResult<Option<Result<Field, MultipartError>>> {
        next_unless_stuck(&mut self.parts, &self.ended).await
    }

    /// The next chunk of `field`'s data, `None` at its end.
    pub async fn next_chunk(
        &self,
        field: &mut Field,
    ) -> ApiResult<Option<Result<Bytes, MultipartError>>> {
        next_unless_stuck(field, &self.ended).await
    }
}

async fn next_unless_stuck<S: Stream + Unpin>(
    stream: &mut S,
    body_ended: &Cell<bool>,
) -> ApiResult<Option<S::Item>> {
    poll_fn(|cx| match Pin::new(&mut *stream).poll_next(cx) {
        Poll::Pending if body_ended.get() => Poll::Ready(Err(ApiError::BadRequest(
            "the multipart body ends inside a part (its closing delimiter is missing)".to_owned(),
        ))),
        Poll::Pending => Poll::Pending,
        Poll::Ready(item) => Poll::Ready(Ok(item)),
    })
    .await
}

/// The request payload, noting when it has ended.
struct EndAware<S> {
    inner: S,
    ended: Rc<Cell<bool>>,
}

impl<S> Stream for EndAware<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if matches!(next, Poll::Ready(None)) {
            self.ended.set(true);
        }
        next
    }
}

impl FromRequest for UploadBody {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let ended = Rc::new(Cell::new(false));
        let body = EndAware {
            inner: payload.take(),
            ended: Rc::clone(&ended),
        };
        ready(Ok(UploadBody {
            parts: Multipart::new(req.headers(), body),
            ended,
        }))
    }
}
