//! `/admin/...`: the admin API (today `/admin/usage`, the ledger's report as JSON).

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::error::ProxyError;
use crate::serving::reply::text;
use crate::serving::state::State;
use crate::translate::body::ProxyBody;

/// `GET /admin/usage?since=YYYY-MM-DD&by=user|key|model|mapping|day`: the ledger's report as
/// JSON (what `rosetta usage --json` prints). The caller's admin key was checked in `admit`.
pub async fn admin(
    state: &State,
    req: &Request<Incoming>,
    rest: &[&str],
) -> Result<Response<ProxyBody>, ProxyError> {
    if rest != ["usage"] {
        return Err(ProxyError::NotFound {
            message: format!(
                "no admin path {:?}; there is /admin/usage",
                req.uri().path()
            ),
        });
    }
    if req.method() != Method::GET {
        return Err(ProxyError::MethodNotAllowed);
    }
    let Some(ledger) = &state.accounting.ledger else {
        return Err(ProxyError::NotFound {
            message: "there is no ledger (rosetta serve --ledger off)".into(),
        });
    };
    let mut since = None;
    let mut by = crate::ledger::GroupBy::User;
    for (k, v) in req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
    {
        match k {
            "since" => since = Some(v.to_string()),
            "by" => {
                by = crate::ledger::GroupBy::parse(v).ok_or_else(|| ProxyError::BadRequest {
                    message: format!("by={v:?}: use user, key, model, mapping or day"),
                    param: Some("by".into()),
                })?
            }
            _ => {}
        }
    }
    let since = since.unwrap_or_else(|| crate::ledger::month_start_of(ledger.now_ms()));
    let since_ms = crate::ledger::parse_day(&since).ok_or_else(|| ProxyError::BadRequest {
        message: format!("since={since:?} is not a date (YYYY-MM-DD)"),
        param: Some("since".into()),
    })?;
    let rows = ledger
        .report(since_ms, by)
        .await
        .map_err(|e| ProxyError::Unreachable {
            message: format!("the ledger cannot answer: {e}"),
        })?;
    Ok(text(
        StatusCode::OK,
        "application/json",
        crate::ledger::report::json(&rows, by, &since).to_string(),
    ))
}
