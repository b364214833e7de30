//! One Responses API call around the engine: the conversation it continues
//! (`previous_response_id`, loaded from the store), its conversion to the canonical chat
//! request every mapping reads, and storing its answer (`store`) — a whole answer before it is
//! sent, a stream before its terminal event reaches the client, so a client that chains on
//! a response it has just received always finds it, on any replica sharing the store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use serde_json::Value;

use crate::dialect::responses::{Echo, Finished};
use crate::error::ProxyError;
use crate::ledger::responses::StoredResponse;
use crate::ledger::tab::Accounting;
use crate::ledger::writer::Ledger;
use crate::mapping::Mapping;
use crate::translate::body::ProxyBody;
use crate::translate::responses;

/// Who may see a stored response: the inbound key's name and the user of the configured
/// user header, whichever are present (`""` when neither: Rosetta without keys has one
/// owner). The body's `user` is not used: a retrieval has no body.
pub fn owner(accounting: &Accounting, headers: &HeaderMap, key: Option<&str>) -> String {
    let user = accounting.header_user(headers);
    match (key, user) {
        (Some(k), Some(u)) => format!("key:{k}\nuser:{u}"),
        (Some(k), None) => format!("key:{k}"),
        (None, Some(u)) => format!("user:{u}"),
        (None, None) => String::new(),
    }
}

/// One Responses call: what its answer repeats, what was left out of it, and how it is saved.
pub struct Turn {
    pub echo: Arc<Echo>,
    /// What the bridge left out (the start of the call's `x-rosetta-dropped`).
    pub dropped: Vec<String>,
    saving: Option<Saving>,
}

struct Saving {
    ledger: Ledger,
    owner: String,
    created_ms: i64,
    expires_ms: i64,
    input_items: Vec<Value>,
    /// The earlier turns' items: the stored history grows by this call's input and output.
    history: Vec<Value>,
}

/// Loads the conversation `request` continues and converts the request into the canonical
/// chat request. `now_secs` stamps the response.
pub async fn begin(
    accounting: &Accounting,
    request: &Value,
    owner: String,
    now_secs: u64,
) -> Result<(Value, Turn), ProxyError> {
    let history = match responses::previous_id(request)? {
        None => Vec::new(),
        Some(id) => {
            let store = accounting.responses().ok_or_else(responses::no_store)?;
            let found = store
                .get(id, &owner)
                .await
                .map_err(|e| ProxyError::Unreachable {
                    message: format!("the response store cannot answer: {e}"),
                })?;
            found
                .ok_or_else(|| ProxyError::Invalid {
                    message: format!("Previous response with id '{id}' not found."),
                    param: "previous_response_id",
                    code: "previous_response_not_found",
                })?
                .history
        }
    };
    let wants_store = request.get("store").and_then(Value::as_bool) != Some(false);
    let saving = match (&accounting.ledger, accounting.responses()) {
        (Some(ledger), Some(store)) if wants_store => {
            let now = store.now_ms();
            accounting
                .responses_expire_at(now)
                .map(|expires_ms| (ledger.clone(), now, expires_ms))
        }
        _ => None,
    };
    let started = responses::start(request, &history, now_secs, saving.is_some())?;
    let saving = saving.map(|(ledger, created_ms, expires_ms)| Saving {
        ledger,
        owner,
        created_ms,
        expires_ms,
        input_items: started.input_items,
        history,
    });
    Ok((
        started.chat,
        Turn {
            echo: Arc::new(started.echo),
            dropped: started.dropped,
            saving,
        },
    ))
}

impl Turn {
    /// What the bridge left out that `mapping` cannot take ([`responses::settle_dropped`]),
    /// taken out of the turn: the start of the call's fidelity report.
    pub fn settle_dropped(&mut self, mapping: &Mapping, chat: &mut Value) -> Vec<String> {
        responses::settle_dropped(&mut self.dropped, mapping, chat);
        std::mem::take(&mut self.dropped)
    }

    /// Saves a whole answer (when storing), then gives the response back.
    pub async fn finish_whole(self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        let Turn { echo, saving, .. } = self;
        let (parts, body) = response.into_parts();
        match saving {
            Some(saving) if parts.status.is_success() => {
                let bytes = body
                    .collect()
                    .await
                    .map(|c| c.to_bytes())
                    .unwrap_or_else(|e| match e {});
                if let Ok(answer) = serde_json::from_slice::<Value>(&bytes) {
                    saving.save(&echo, answer).await;
                }
                Response::from_parts(parts, crate::translate::body::full(bytes))
            }
            _ => Response::from_parts(parts, body),
        }
    }

    /// Wraps a stream so that its final response is saved before the terminal event goes
    /// out.
    pub fn finish_stream(self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        let Turn { echo, saving, .. } = self;
        match saving {
            Some(saving) => response.map(|inner| {
                SaveOnEnd {
                    inner,
                    slot: echo.finished.clone(),
                    echo: Arc::clone(&echo),
                    saving: Some(saving),
                    held: None,
                }
                .boxed_unsync()
            }),
            None => response,
        }
    }
}

impl Saving {
    /// Stores `answer` (redacted of every secret Rosetta serves with, as ledger records are)
    /// with the conversation so far. A store that fails or is slow costs the client nothing
    /// but the ability to chain on this response: it is logged, not raised.
    fn save(self, echo: &Echo, answer: Value) -> impl Future<Output = ()> + Send + 'static {
        let id = echo.id.clone();
        async move {
            let Some(answer) = at_rest(&answer) else {
                tracing::warn!(%id, "response not stored: it did not survive redaction");
                return;
            };
            let mut history = self.history;
            history.extend(self.input_items.iter().cloned());
            if let Some(Value::Array(output)) = answer.get("output") {
                history.extend(output.iter().cloned());
            }
            let stored = StoredResponse {
                id: id.clone(),
                owner: self.owner,
                created_ms: self.created_ms,
                expires_ms: self.expires_ms,
                response: answer,
                input_items: self.input_items,
                history,
            };
            // Bounded by the ledger's write timeout.
            let put = match self.ledger.responses() {
                Some(store) => store.put(&stored).await,
                None => return,
            };
            if let Err(e) = put {
                tracing::warn!(%id, error = %e, "response not stored");
            }
        }
    }
}

/// `value` with every secret Rosetta serves with redacted (`None` if that broke its JSON).
fn at_rest(value: &Value) -> Option<Value> {
    let text = value.to_string();
    match crate::ops::redact::at_rest().redact(&text) {
        std::borrow::Cow::Borrowed(_) => Some(value.clone()),
        std::borrow::Cow::Owned(clean) => serde_json::from_str(&clean).ok(),
    }
}

type Saved = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A Responses stream that saves its final response before the frame holding the terminal
/// event goes out. Nothing else is held: every other frame passes as it comes.
struct SaveOnEnd {
    inner: ProxyBody,
    slot: Finished,
    echo: Arc<Echo>,
    saving: Option<Saving>,
    held: Option<(Frame<Bytes>, Saved)>,
}

impl Body for SaveOnEnd {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some((_, saved)) = &mut this.held {
            ready!(saved.as_mut().poll(cx));
            let (frame, _) = this.held.take().expect("held");
            return Poll::Ready(Some(Ok(frame)));
        }
        let frame = match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other),
        };
        // Once saved, frames pass without looking at the slot.
        if this.saving.is_none() {
            return Poll::Ready(Some(Ok(frame)));
        }
        let done = this.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (done, this.saving.take()) {
            (Some(answer), Some(saving)) => {
                let saved: Saved = Box::pin(saving.save(&this.echo, answer));
                this.held = Some((frame, saved));
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            (_, saving) => {
                this.saving = saving;
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
