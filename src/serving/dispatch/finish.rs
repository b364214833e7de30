//! The last step of a call: close what the answer did not take with it.

use http::Response;

use crate::error::ProxyError;
use crate::ledger::tab::Tab;
use crate::serving::memory::Charge;
use crate::serving::responses::turn::Turn;
use crate::translate::body::ProxyBody;
use crate::translate::fidelity::Dropped;

/// Closes the tab a stream did not take into its body (a whole answer closed it; what is left
/// failed), finishes a Responses `turn` (stored now, or when its stream ends), and moves the
/// memory `charge` into the response body. A successful answer names what was `dropped`.
pub(super) async fn finish(
    result: Result<Response<ProxyBody>, ProxyError>,
    mut tab: Option<Tab>,
    turn: Option<Turn>,
    stream: bool,
    charge: Charge,
    dropped: &Dropped,
) -> Result<Response<ProxyBody>, ProxyError> {
    // A stream took its tab into its body, a whole answer closed it; what is left failed.
    if let Some(t) = tab.take() {
        match &result {
            Err(e) => t.failed(e, e.status().as_u16(), &Default::default()),
            Ok(_) => t.succeeded(&Default::default()),
        }
    }
    let result = match (result, turn) {
        (Ok(r), Some(t)) if stream => Ok(t.finish_stream(r)),
        (Ok(r), Some(t)) => Ok(t.finish_whole(r).await),
        (result, _) => result,
    };
    // The charge lives in the body: a stream keeps its parsed request to its last byte.
    result.map(|mut r| {
        dropped.add_header(r.headers_mut());
        crate::serving::admission::hold(r, charge)
    })
}
