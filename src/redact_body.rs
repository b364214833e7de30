//! The redaction of everything a client is sent: [`Shield`] wraps every response of a request,
//! its header values and its body frame by frame (streams included, never buffered whole), with
//! the one [`Redactor`]. The request's own bytes are remembered first ([`Shield::saw_request`])
//! so that an echo of them is not redacted (see [`crate::redact`]: no guessing oracle).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};

use crate::body::ProxyBody;
use crate::redact::{Redactor, Sent};

/// One request's view of the redactor.
#[derive(Debug)]
pub struct Shield {
    redactor: Arc<Redactor>,
    sent: OnceLock<Sent>,
}

impl Shield {
    pub fn new(redactor: Arc<Redactor>) -> Arc<Shield> {
        Arc::new(Shield {
            redactor,
            sent: OnceLock::new(),
        })
    }

    /// Remembers which pieces of secrets the client's request line and body hold (the first
    /// call counts).
    pub fn saw_request(&self, uri: &[u8], body: &[u8]) {
        if self.redactor.is_empty() || self.sent.get().is_some() {
            return;
        }
        let mut sent = self.redactor.pieces_in(uri);
        sent.merge(self.redactor.pieces_in(body));
        let _ = self.sent.set(sent);
    }

    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    fn sent(&self) -> &Sent {
        static NONE: OnceLock<Sent> = OnceLock::new();
        self.sent
            .get()
            .unwrap_or_else(|| NONE.get_or_init(Sent::default))
    }

    /// The response with its header values and body redacted. With no secret configured, the
    /// response as it is.
    pub fn wrap(self: &Arc<Self>, response: Response<ProxyBody>) -> Response<ProxyBody> {
        if self.redactor.is_empty() {
            return response;
        }
        let (mut parts, body) = response.into_parts();
        for value in parts.headers.values_mut() {
            let redacted = self.redactor.redact_except(value.as_bytes(), self.sent());
            if let std::borrow::Cow::Owned(v) = redacted {
                *value = HeaderValue::from_bytes(&v)
                    .unwrap_or_else(|_| HeaderValue::from_static("[redacted]"));
            }
        }
        // The body's length may change: hyper frames it itself.
        parts.headers.remove(CONTENT_LENGTH);
        let body = RedactBody {
            inner: body,
            shield: Arc::clone(self),
            carry: Vec::new(),
            queued: VecDeque::new(),
            ended: false,
        };
        Response::from_parts(parts, body.boxed_unsync())
    }
}

/// A body whose data frames are redacted as they pass; a frame's tail that could start a secret
/// waits for the next frame (at most [`crate::redact::PIECE`] - 1 bytes).
struct RedactBody {
    inner: ProxyBody,
    shield: Arc<Shield>,
    carry: Vec<u8>,
    /// Frames ready to send before polling the inner body again.
    queued: VecDeque<Frame<Bytes>>,
    ended: bool,
}

impl RedactBody {
    fn flush_carry(&mut self) {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            let out = self
                .shield
                .redactor
                .redact_except(&carry, self.shield.sent())
                .into_owned();
            self.queued.push_back(Frame::data(Bytes::from(out)));
        }
    }
}

impl Body for RedactBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        loop {
            if let Some(frame) = this.queued.pop_front() {
                return Poll::Ready(Some(Ok(frame)));
            }
            if this.ended {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.ended = true;
                    this.flush_carry();
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let (out, carry) = if this.carry.is_empty() {
                            this.shield.redactor.redact_frame(&data, this.shield.sent())
                        } else {
                            let mut joined = std::mem::take(&mut this.carry);
                            joined.extend_from_slice(&data);
                            this.shield
                                .redactor
                                .redact_frame(&joined, this.shield.sent())
                        };
                        this.carry = carry;
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                    }
                    Err(other) => {
                        this.flush_carry();
                        this.queued.push_back(other);
                    }
                },
                Poll::Ready(Some(Err(e))) => match e {},
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended && self.queued.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use http_body_util::StreamBody;

    const KEY: &str = "sk-test-0123456789abcdefXYZ";

    async fn collect(r: Response<ProxyBody>) -> (http::HeaderMap, String) {
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn headers_and_a_split_body_are_redacted() {
        let shield = Shield::new(Arc::new(Redactor::new([KEY])));
        shield.saw_request(b"/v1/chat/completions", b"{}");
        let frames: Vec<Result<Frame<Bytes>, Infallible>> =
            ["data: sk-te", "st-0123", "456789abcdefXYZ\n\n", "tail sk-t"]
                .into_iter()
                .map(|s| Ok(Frame::data(Bytes::from(s))))
                .collect();
        let body = StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync();
        let mut response = Response::new(body);
        response.headers_mut().insert(
            "x-echo",
            HeaderValue::from_str(&format!("k={KEY}")).unwrap(),
        );
        let (headers, text) = collect(shield.wrap(response)).await;
        assert_eq!(headers["x-echo"], "k=[redacted]");
        // A key replaced up to a frame's end and going on in the next: two marks, no byte of it.
        assert_eq!(text, "data: [redacted][redacted]\n\ntail sk-t");
    }

    #[tokio::test]
    async fn no_secret_leaves_the_response_alone() {
        let shield = Shield::new(Arc::new(Redactor::default()));
        let mut r = Response::new(full(KEY));
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(KEY.len()));
        let (headers, text) = collect(shield.wrap(r)).await;
        assert_eq!(text, KEY);
        assert!(headers.contains_key(CONTENT_LENGTH));
    }
}
