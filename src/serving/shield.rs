//! The redaction of everything a client is sent: [`Shield`] wraps every response of a request,
//! its header values and its body frame by frame (streams included, never buffered whole), with
//! the one [`Redactor`]. The request's own bytes are remembered first ([`Shield::saw_request`])
//! so that an echo of them is not redacted (see [`crate::ops::redact`]: no guessing oracle).

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

use crate::ops::redact::{Redactor, Sent};
use crate::translate::body::ProxyBody;

/// One request's view of the redactors (the mappings' secrets, the inbound keys, the admin
/// keys: each a layer).
#[derive(Debug)]
pub struct Shield {
    layers: Vec<Layer>,
}

#[derive(Debug)]
struct Layer {
    redactor: Arc<Redactor>,
    sent: OnceLock<Sent>,
}

impl Layer {
    fn sent(&self) -> &Sent {
        static NONE: OnceLock<Sent> = OnceLock::new();
        self.sent
            .get()
            .unwrap_or_else(|| NONE.get_or_init(Sent::default))
    }
}

impl Shield {
    /// A shield of these redactors (the empty ones are left out).
    pub fn new(redactors: impl IntoIterator<Item = Arc<Redactor>>) -> Arc<Shield> {
        let layers = redactors
            .into_iter()
            .filter(|r| !r.is_empty())
            .map(|redactor| Layer {
                redactor,
                sent: OnceLock::new(),
            })
            .collect();
        Arc::new(Shield { layers })
    }

    /// Remembers which pieces of secrets the client's request target and body hold (the first
    /// call counts).
    pub fn saw_request(&self, uri: &http::Uri, body: &[u8]) {
        for layer in &self.layers {
            if layer.sent.get().is_some() {
                continue;
            }
            let mut sent = layer.redactor.pieces_in(uri.path().as_bytes());
            sent.merge(
                layer
                    .redactor
                    .pieces_in(uri.query().unwrap_or("").as_bytes()),
            );
            sent.merge(layer.redactor.pieces_in(body));
            let _ = layer.sent.set(sent);
        }
    }

    /// The response with its header values and body redacted by every layer. With no secret
    /// configured, the response as it is.
    pub fn wrap(self: &Arc<Self>, response: Response<ProxyBody>) -> Response<ProxyBody> {
        if self.layers.is_empty() {
            return response;
        }
        let (mut parts, mut body) = response.into_parts();
        for value in parts.headers.values_mut() {
            for layer in &self.layers {
                let redacted = layer.redactor.redact_except(value.as_bytes(), layer.sent());
                if let std::borrow::Cow::Owned(v) = redacted {
                    *value = HeaderValue::from_bytes(&v)
                        .unwrap_or_else(|_| HeaderValue::from_static("[redacted]"));
                }
            }
        }
        // A whole body already in memory (an error, a whole answer) is redacted at once and
        // keeps an exact length; anything else streams through the layers, framed by hyper.
        if let Some(whole) = self.whole(&mut body) {
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(whole.len()));
            return Response::from_parts(parts, crate::translate::body::full(whole));
        }
        parts.headers.remove(CONTENT_LENGTH);
        for layer in 0..self.layers.len() {
            body = RedactBody {
                inner: body,
                shield: Arc::clone(self),
                layer,
                carry: Vec::new(),
                forced: 0,
                queued: VecDeque::new(),
                ended: false,
            }
            .boxed_unsync();
        }
        Response::from_parts(parts, body)
    }
}

impl Shield {
    /// The body's bytes redacted by every layer, when it is a whole body already in memory: an
    /// exact length of at most [`WHOLE_MAX`] and its one frame ready at once. Otherwise `None`,
    /// and nothing was taken from the body.
    fn whole(&self, body: &mut ProxyBody) -> Option<Bytes> {
        let n = body.size_hint().exact()?;
        if n > WHOLE_MAX {
            return None;
        }
        if n == 0 {
            return body.is_end_stream().then(Bytes::new);
        }
        // A body in memory answers at once; one that would wait is left untouched (a pending
        // poll takes nothing from it).
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let frame = match Pin::new(&mut *body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => match e {},
            Poll::Ready(None) | Poll::Pending => return None,
        };
        if !body.is_end_stream() {
            // More to come (a sized body streaming in): the frame goes first, then the rest.
            let rest = std::mem::replace(body, crate::translate::body::full(Bytes::new()));
            *body = Prepend {
                first: Some(frame),
                rest,
            }
            .boxed_unsync();
            return None;
        }
        let mut bytes = frame.into_data().unwrap_or_default();
        for layer in &self.layers {
            if let std::borrow::Cow::Owned(v) = layer.redactor.redact_except(&bytes, layer.sent()) {
                bytes = Bytes::from(v);
            }
        }
        Some(bytes)
    }
}

/// A body that gives `first`, then the frames of `rest`.
struct Prepend {
    first: Option<Frame<Bytes>>,
    rest: ProxyBody,
}

impl Body for Prepend {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.first.take() {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None => Pin::new(&mut self.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_end_stream()
    }
}

/// The largest whole body redacted at once rather than frame by frame.
const WHOLE_MAX: u64 = 64 * 1024 * 1024;

/// A body whose data frames are redacted as they pass; a frame's tail that could start a secret
/// waits for the next frame (at most [`crate::ops::redact::PIECE`] - 1 bytes).
struct RedactBody {
    inner: ProxyBody,
    shield: Arc<Shield>,
    /// Which of the shield's layers this body applies.
    layer: usize,
    carry: Vec<u8>,
    /// How many of `carry`'s first bytes belong to a replaced run (see `redact_frame`).
    forced: usize,
    /// Frames ready to send before polling the inner body again.
    queued: VecDeque<Frame<Bytes>>,
    ended: bool,
}

impl RedactBody {
    fn layer(&self) -> &Layer {
        &self.shield.layers[self.layer]
    }

    fn flush_carry(&mut self) {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            let layer = self.layer();
            let out = layer.redactor.redact_end(&carry, layer.sent(), self.forced);
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
                        let layer = &this.shield.layers[this.layer];
                        if this.carry.is_empty() && layer.redactor.passes(&data) {
                            // The common case: nothing to replace or hold, no copy.
                            return Poll::Ready(Some(Ok(Frame::data(data))));
                        }
                        let (out, carry, forced) = if this.carry.is_empty() {
                            layer.redactor.redact_frame(&data, layer.sent(), 0)
                        } else {
                            let mut joined = std::mem::take(&mut this.carry);
                            joined.extend_from_slice(&data);
                            layer
                                .redactor
                                .redact_frame(&joined, layer.sent(), this.forced)
                        };
                        this.carry = carry;
                        this.forced = forced;
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
    use crate::translate::body::full;
    use http_body_util::StreamBody;

    const KEY: &str = "sk-test-0123456789abcdefXYZ";

    async fn collect(r: Response<ProxyBody>) -> (http::HeaderMap, String) {
        let (parts, body) = r.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        (parts.headers, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn headers_and_a_split_body_are_redacted() {
        let other = Arc::new(Redactor::new(["an-inbound-key-42"]));
        let shield = Shield::new([Arc::new(Redactor::new([KEY])), other]);
        shield.saw_request(&http::Uri::from_static("/v1/chat/completions"), b"{}");
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = [
            "data: sk-te",
            "st-0123",
            "456789abcdefXYZ\n\n",
            "an-inbound",
            "-key-42 ",
            "tail sk-t",
        ]
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
        assert_eq!(
            text,
            "data: [redacted][redacted]\n\n[redacted][redacted] tail sk-t"
        );
    }

    #[tokio::test]
    async fn a_whole_body_is_redacted_at_once_and_keeps_an_exact_length() {
        let shield = Shield::new([Arc::new(Redactor::new([KEY]))]);
        let body = format!("{{\"error\":\"bad key {KEY}\"}}");
        let mut r = Response::new(full(body.clone()));
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let wrapped = shield.wrap(r);
        let want = "{\"error\":\"bad key [redacted]\"}";
        assert_eq!(wrapped.body().size_hint().exact(), Some(want.len() as u64));
        let (headers, text) = collect(wrapped).await;
        assert_eq!(text, want);
        assert_eq!(headers[CONTENT_LENGTH], want.len().to_string().as_str());
    }

    #[tokio::test]
    async fn a_sized_body_that_streams_keeps_every_frame() {
        let shield = Shield::new([Arc::new(Redactor::new([KEY]))]);
        let frames: Vec<Result<Frame<Bytes>, Infallible>> =
            ["one ", "sk-test-0123", "456789abcdefXYZ two"]
                .into_iter()
                .map(|s| Ok(Frame::data(Bytes::from(s))))
                .collect();
        let sized = StreamBody::new(futures_util::stream::iter(frames));
        // A stream that claims an exact length, as a sized upstream body does.
        struct Sized<B>(B);
        impl<B: Body<Data = Bytes, Error = Infallible> + Unpin> Body for Sized<B> {
            type Data = Bytes;
            type Error = Infallible;
            fn poll_frame(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
                Pin::new(&mut self.0).poll_frame(cx)
            }
            fn size_hint(&self) -> SizeHint {
                SizeHint::with_exact(31)
            }
        }
        let (_, text) = collect(shield.wrap(Response::new(Sized(sized).boxed_unsync()))).await;
        assert_eq!(text, "one [redacted][redacted] two");
    }

    #[tokio::test]
    async fn no_secret_leaves_the_response_alone() {
        let shield = Shield::new([Arc::new(Redactor::default())]);
        let mut r = Response::new(full(KEY));
        r.headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(KEY.len()));
        let (headers, text) = collect(shield.wrap(r)).await;
        assert_eq!(text, KEY);
        assert!(headers.contains_key(CONTENT_LENGTH));
    }
}
