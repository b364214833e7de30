//! The capability matrix: for every mapping and every [`FEATURES`] row, whether the feature is
//! translated, dropped or refused, worked out exactly as a request's report is ([`check`]).

use serde_json::Value;

use super::features::{FEATURES, Feature, base};
use super::{Dropped, check, fields};
use crate::mapping::{Mapping, Op};
use crate::translate::request::parse_request;
use crate::translate::{messages, responses};

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// The mapping translates the feature.
    Translated,
    /// Left out (named in `x-rosetta-dropped`): these entries.
    Dropped(Vec<String>),
    /// Refused with a 400: the mapping's `options.unsupported: reject` (these entries), or
    /// the route cannot do it at all (no `stream` section for a stream; the reason).
    Refused(String),
    /// The mapping has no route for the feature's operation.
    NoRoute,
}

impl Cell {
    /// The cell's word in tables.
    pub fn word(&self) -> &'static str {
        match self {
            Cell::Translated => "yes",
            Cell::Dropped(_) => "dropped",
            Cell::Refused(_) => "refused",
            Cell::NoRoute => "-",
        }
    }
}

/// The request of `feature`: its route's base request with the feature's fields over it.
pub fn request_of(feature: &Feature) -> Value {
    let mut request: Value = serde_json::from_str(base(feature.op)).expect("base is JSON");
    let extra: Value = serde_json::from_str(feature.request).expect("feature is JSON");
    if let (Some(r), Value::Object(e)) = (request.as_object_mut(), extra) {
        r.extend(e);
    }
    request
}

/// What `mapping` does with `request` on `op`, as the server's report would name it (`Err`:
/// refused before the report, with the reason).
pub fn report(mapping: &Mapping, op: Op, request: &Value) -> Result<Dropped, String> {
    let route = mapping.route(op).ok_or("no route")?;
    // What the engine refuses for every mapping (e.g. `n` > 1).
    if let Err(e) = parse_request(op, request.to_string().as_bytes()) {
        return Err(e.to_json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string());
    }
    if request.get("stream") == Some(&Value::Bool(true)) && route.stream.is_none() {
        return Err("the route does not stream".into());
    }
    let mut out = Dropped::default();
    let mut canonical = request.clone();
    if op == Op::Responses {
        let mut started =
            responses::start(request, &[], 0, false).map_err(|e| e.to_json().to_string())?;
        responses::settle_dropped(&mut started.dropped, mapping, &mut started.chat);
        for e in &started.dropped {
            out.note(e);
        }
        canonical = started.chat;
    }
    if op == Op::Messages {
        // An upstream of the dialect itself takes the request as it is.
        if route.speaks(crate::dialect::messages::NAME) {
            return Ok(out);
        }
        let started = messages::start(request, &http::HeaderMap::new())
            .map_err(|e| e.to_json().to_string())?;
        let (mut earlier, mut chat) = (started.dropped, started.chat);
        messages::settle_dropped(&mut earlier, mapping, &mut chat).map_err(|e| {
            e.to_json()["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })?;
        for e in &earlier {
            out.note(e);
        }
        canonical = chat;
    }
    check(&route.reads, op, &canonical, fields::of(op), &mut out);
    Ok(out)
}

/// The cell of `feature` for `mapping`: what its request loses beyond the base request's.
pub fn cell(mapping: &Mapping, feature: &Feature) -> Cell {
    if mapping.route(feature.op).is_none() {
        return Cell::NoRoute;
    }
    let base_request: Value = serde_json::from_str(base(feature.op)).expect("base is JSON");
    let before: Vec<String> = match report(mapping, feature.op, &base_request) {
        Ok(d) => d.names().map(str::to_string).collect(),
        Err(_) => Vec::new(),
    };
    match report(mapping, feature.op, &request_of(feature)) {
        Err(reason) => Cell::Refused(reason),
        Ok(d) => {
            let lost: Vec<String> = d
                .names()
                .filter(|n| !before.iter().any(|b| b == n))
                .map(str::to_string)
                .collect();
            match (lost.is_empty(), mapping.reject_unsupported) {
                (true, _) => Cell::Translated,
                (false, true) => Cell::Refused(lost.join(", ")),
                (false, false) => Cell::Dropped(lost),
            }
        }
    }
}

/// Every row for every mapping: `(feature, cells in the mappings' order)`.
pub fn matrix(mappings: &[&Mapping]) -> Vec<(&'static Feature, Vec<Cell>)> {
    FEATURES
        .iter()
        .map(|f| (f, mappings.iter().map(|m| cell(m, f)).collect()))
        .collect()
}
