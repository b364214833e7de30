//! Compiling one route: its path, method, request template, response fields and stream.

use std::collections::BTreeMap;

use http::Method;
use regex::Regex;
use serde_yaml::Value as Yaml;

use crate::mapping::spec::{self, COUNT_KEYS, EMBEDDING_KEYS, MODEL_LIST_KEYS, RESPONSE_KEYS};
use crate::mapping::template::{Defs, Expr};
use crate::mapping::*;

use super::Ctx;

/// The client dialects a route can declare it speaks natively (`native:`).
pub const NATIVE_DIALECTS: &[&str] = &["messages"];

impl Ctx<'_> {
    pub(super) fn route(
        &mut self,
        op: Op,
        s: spec::RouteSpec,
        at: &str,
        defs: &Defs,
        env: Env<'_>,
    ) -> Option<Route> {
        let default_method = if op == Op::Models { "GET" } else { "POST" };
        let raw_method = s.method.as_deref().unwrap_or(default_method);
        let method = match Method::from_bytes(raw_method.to_ascii_uppercase().as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                self.error(
                    &format!("{at}.method"),
                    format!("invalid HTTP method {raw_method:?}"),
                );
                Method::POST
            }
        };
        let path = self.template(&s.path, &format!("{at}.path"), defs);
        let rewrites = s
            .rewrite
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match Regex::new(&r.pattern) {
                Ok(re) => Some((re, r.replace.clone())),
                Err(e) => {
                    self.error(&format!("{at}.rewrite[{i}]"), format!("invalid regex: {e}"));
                    None
                }
            })
            .collect();
        let mut missing = Vec::new();
        let query = s
            .query
            .iter()
            .map(|(k, y)| {
                let loc = format!("{at}.query.{k}");
                // A plain string may take `${VAR}` from the environment, as headers do. The result
                // is a constant, never a path; unset, the parameter is left out.
                let e = match y {
                    Yaml::String(raw) if raw.contains("${") => {
                        // A version or a region is not a secret; a `key`, `token`, `sig`...
                        // parameter is (its pieces would blank out dates and words).
                        if crate::ops::trace::secret(k) {
                            self.note_secrets(raw, env);
                        }
                        match self.interpolate(raw, &loc, env, &mut missing) {
                            Some(v) if !v.is_empty() => Expr::Const(serde_json::Value::String(v)),
                            _ => Expr::Coalesce(Vec::new()),
                        }
                    }
                    other => self.template(other, &loc, defs),
                };
                (k.clone(), e)
            })
            .collect();
        let headers = self.headers(&s.headers, &format!("{at}.headers"), env, &mut missing);
        self.missing.append(&mut missing);
        let request = s
            .request
            .as_ref()
            .map(|y| self.template(y, &format!("{at}.request"), defs));
        let keys = match op {
            Op::Chat | Op::Responses | Op::Messages | Op::Completions => RESPONSE_KEYS,
            Op::Embeddings => EMBEDDING_KEYS,
            Op::Models => MODEL_LIST_KEYS,
            Op::CountTokens => COUNT_KEYS,
        };
        for (i, dialect) in s.native.iter().enumerate() {
            if !matches!(op, Op::Chat | Op::CountTokens) {
                self.error(
                    &format!("{at}.native"),
                    "only a chat or count_tokens route can speak a client dialect natively",
                );
                break;
            }
            if !NATIVE_DIALECTS.contains(&dialect.as_str()) {
                self.error(
                    &format!("{at}.native[{i}]"),
                    format!(
                        "unknown client dialect (expected one of {})",
                        NATIVE_DIALECTS.join(", ")
                    ),
                );
            }
        }
        if s.stream.is_some() && matches!(op, Op::Embeddings | Op::Models | Op::CountTokens) {
            self.error(
                &format!("{at}.stream"),
                "only chat and completions routes stream",
            );
        }
        let response = match &s.response {
            Some(r) => self.fields(r, &format!("{at}.response"), keys, defs),
            None => {
                self.error(at, "a route needs a `response` section");
                Fields::default()
            }
        };
        let stream = s
            .stream
            .map(|st| self.stream(st, &format!("{at}.stream"), defs));
        if !s.native_body.is_empty() && s.native.is_empty() {
            self.error(
                &format!("{at}.native_body"),
                "native_body needs a client dialect in `native`",
            );
        }
        let native_body = s
            .native_body
            .iter()
            .map(|(k, y)| {
                let e = (!y.is_null())
                    .then(|| self.template(y, &format!("{at}.native_body.{k}"), defs));
                (k.clone(), e)
            })
            .collect();
        let trim_stop = s
            .trim_stop
            .as_ref()
            .map(|y| self.template(y, &format!("{at}.trim_stop"), defs));
        let mut route = Route {
            method,
            path,
            rewrites,
            query,
            headers,
            request,
            response,
            stream,
            native: s.native,
            native_body,
            trim_stop,
            reads: Default::default(),
        };
        route.reads = route_reads(&route);
        Some(route)
    }

    pub(super) fn fields(
        &mut self,
        m: &BTreeMap<String, Yaml>,
        at: &str,
        allowed: &[&str],
        defs: &Defs,
    ) -> Fields {
        let mut f = Fields::default();
        for (k, y) in m {
            let loc = format!("{at}.{k}");
            let slot = match k.as_str() {
                "content" => &mut f.content,
                "reasoning" => &mut f.reasoning,
                "reasoning_signature" => &mut f.reasoning_signature,
                "tool_calls" => &mut f.tool_calls,
                "finish_reason" => &mut f.finish_reason,
                "usage" => &mut f.usage,
                "error" => &mut f.error,
                "end" => &mut f.end,
                "embeddings" => &mut f.embeddings,
                "models" => &mut f.models,
                "input_tokens" => &mut f.input_tokens,
                _ => {
                    self.error(
                        &loc,
                        format!("unknown field (expected one of {})", allowed.join(", ")),
                    );
                    continue;
                }
            };
            if !allowed.contains(&k.as_str()) {
                self.error(
                    &loc,
                    format!("not allowed here (expected one of {})", allowed.join(", ")),
                );
                continue;
            }
            *slot = Some(self.template(y, &loc, defs));
        }
        f
    }
}

/// What a route's templates read of the client's request ([`crate::mapping::reads`]).
fn route_reads(r: &Route) -> reads::Node {
    // Without a `request` template the client's request is sent as it is.
    let mut tree = reads::Node {
        whole: r.request.is_none() && r.method != Method::GET,
        ..Default::default()
    };
    let request_side = std::iter::once(&r.path)
        .chain(r.query.iter().map(|(_, e)| e))
        .chain(r.request.as_ref())
        .chain(r.trim_stop.as_ref());
    for e in request_side {
        reads::analyze(e, true, &mut tree);
    }
    let mut answer_side: Vec<&Expr> = fields_of(&r.response);
    for rule in r.stream.iter().flat_map(|s| &s.rules) {
        answer_side.extend(rule.cond.as_ref());
        answer_side.extend(rule.set.iter().map(|(_, e)| e));
        answer_side.extend(fields_of(&rule.emit));
    }
    for e in answer_side {
        reads::analyze(e, false, &mut tree);
    }
    tree
}

fn fields_of(f: &Fields) -> Vec<&Expr> {
    [
        &f.content,
        &f.reasoning,
        &f.reasoning_signature,
        &f.tool_calls,
        &f.finish_reason,
        &f.usage,
        &f.error,
        &f.end,
        &f.embeddings,
        &f.models,
        &f.input_tokens,
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
#[path = "native_tests.rs"]
mod native_tests;
