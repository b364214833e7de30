//! The stored responses' own routes: `GET` and `DELETE /v1/responses/{id}`, and
//! `GET /v1/responses/{id}/input_items` (also under `/NAME/v1/`). A response is found only by
//! the owner that created it ([`crate::serving::responses::turn::owner`]); anyone else gets the same
//! 404 as for an id that never existed.

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::error::ProxyError;
use crate::ledger::responses::{MAX_LIMIT, Responses, StoredResponse, page_items};
use crate::serving::auth::KeyName;
use crate::serving::reply::json_response;
use crate::serving::responses::turn::owner;
use crate::serving::state::State;
use crate::translate::body::ProxyBody;

/// Answers a request on the stored response `id`; `rest` is what follows the id.
pub async fn stored(
    state: &State,
    req: &Request<Incoming>,
    id: &str,
    rest: &[&str],
) -> Result<Response<ProxyBody>, ProxyError> {
    let Some(store) = state.accounting.responses() else {
        return Err(ProxyError::NotFound {
            message: format!(
                "No response found with id '{id}': Rosetta stores responses in its ledger, which is off (rosetta serve --ledger)"
            ),
        });
    };
    let key = req.extensions().get::<KeyName>().map(KeyName::as_str);
    let owner = owner(&state.accounting, req.headers(), key);
    let method = req.method();
    match rest {
        [] if method == Method::GET => {
            let found = find(store, id, &owner).await?;
            if query_flag(req.uri().query(), "stream") {
                // The events of a stream are not kept, only the response they ended with.
                return Err(ProxyError::BadRequest {
                    message: "Rosetta keeps a stored response, not the events of its stream: retrieve it without stream=true".into(),
                    param: Some("stream".into()),
                });
            }
            Ok(json_response(StatusCode::OK, &found.response))
        }
        [] if method == Method::DELETE => {
            let deleted = store.delete(id, &owner).await.map_err(unavailable)?;
            if !deleted {
                return Err(missing(id));
            }
            let body = json!({"id": id, "object": "response.deleted", "deleted": true});
            Ok(json_response(StatusCode::OK, &body))
        }
        ["input_items"] if method == Method::GET => {
            let page = Page::parse(req.uri().query().unwrap_or_default())?;
            let found = find(store, id, &owner).await?;
            let list = page_items(
                &found.input_items,
                page.after.as_deref(),
                page.limit,
                page.desc,
            );
            Ok(json_response(StatusCode::OK, &list))
        }
        ["cancel"] if method == Method::POST => {
            find(store, id, &owner).await?;
            Err(ProxyError::BadRequest {
                message: "Only responses created with background=true can be cancelled; Rosetta answers every response in the foreground".into(),
                param: None,
            })
        }
        [] | ["input_items"] | ["cancel"] => Err(ProxyError::MethodNotAllowed),
        _ => Err(ProxyError::NotFound {
            message: format!("no route for {}", req.uri().path()),
        }),
    }
}

/// Whether `query` sets `name` to true.
fn query_flag(query: Option<&str>, name: &str) -> bool {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .any(|(k, v)| k == name && v == "true")
}

async fn find(store: Responses<'_>, id: &str, owner: &str) -> Result<StoredResponse, ProxyError> {
    store
        .get(id, owner)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| missing(id))
}

fn missing(id: &str) -> ProxyError {
    ProxyError::NotFound {
        message: format!("No response found with id '{id}'."),
    }
}

fn unavailable(e: impl std::fmt::Display) -> ProxyError {
    ProxyError::Unreachable {
        message: format!("the response store cannot answer: {e}"),
    }
}

/// `?after=ID&limit=N&order=asc|desc` of an input-items listing.
#[derive(Debug, PartialEq)]
struct Page {
    after: Option<String>,
    limit: usize,
    desc: bool,
}

impl Page {
    fn parse(query: &str) -> Result<Page, ProxyError> {
        let mut page = Page {
            after: None,
            limit: 20,
            desc: true,
        };
        for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
            match k {
                "after" if !v.is_empty() => page.after = Some(v.to_string()),
                "limit" => {
                    page.limit = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| ProxyError::BadRequest {
                            message: format!("limit={v:?}: give a number from 1 to {MAX_LIMIT}"),
                            param: Some("limit".into()),
                        })?
                }
                "order" => {
                    page.desc = match v {
                        "desc" => true,
                        "asc" => false,
                        _ => {
                            return Err(ProxyError::BadRequest {
                                message: format!("order={v:?}: use asc or desc"),
                                param: Some("order".into()),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_default_to_twenty_newest_first_and_refuse_bad_values() {
        assert_eq!(
            Page::parse("").unwrap(),
            Page {
                after: None,
                limit: 20,
                desc: true
            }
        );
        assert_eq!(
            Page::parse("after=msg_1&limit=5&order=asc").unwrap(),
            Page {
                after: Some("msg_1".into()),
                limit: 5,
                desc: false
            }
        );
        for bad in ["limit=0", "limit=101", "limit=x", "order=up"] {
            assert!(Page::parse(bad).is_err(), "{bad}");
        }
    }
}
