//! Compiling `pricing:`: every price read exactly; each error at its entry and key.

use std::collections::BTreeMap;

use serde_yaml::Value as Yaml;

use crate::mapping::pricing::{self, DEFAULT_CURRENCY, MAX_PRICE_UNITS, Price, Pricing};
use crate::mapping::spec::{self};

use super::Ctx;

impl Ctx<'_> {
    /// `pricing:`: every price read exactly; each error at its entry and key.
    pub(super) fn pricing(&mut self, top: &BTreeMap<String, Yaml>) -> Option<Pricing> {
        let y = top.get("pricing")?;
        let s = match serde_yaml::from_value::<spec::PricingSpec>(y.clone()) {
            Ok(s) => s,
            Err(e) => {
                let (at, message) = pricing_error_at(y, e.to_string());
                self.error(&at, message);
                return None;
            }
        };
        let before = self.errors.len();
        let currency = s.currency.unwrap_or_else(|| DEFAULT_CURRENCY.to_string());
        if currency.is_empty()
            || currency.chars().count() > 16
            || currency
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            self.error(
                "pricing.currency",
                format!("{currency:?} is not a currency label (1 to 16 characters without spaces, such as USD, EUR or credits)"),
            );
        }
        if s.models.is_empty() {
            self.error(
                "pricing.models",
                "needs at least one price, such as `- {model: \"claude-*\", input: 3, output: 15}`",
            );
        }
        // (entry index, price) of the entries compiled so far, to find unreachable ones.
        let mut prices: Vec<(usize, Price)> = Vec::new();
        for (i, m) in s.models.into_iter().enumerate() {
            let at = format!("pricing.models[{i}]");
            let pattern = m.model.as_str();
            if pattern.is_empty() || pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
                self.error(
                    &format!("{at}.model"),
                    format!("{pattern:?} is not a model id or pattern (no spaces; `*` and `?` are wildcards)"),
                );
                continue;
            }
            if let Some((j, earlier)) = prices
                .iter()
                .find(|(_, p)| p.pattern == pattern || p.pattern.chars().all(|c| c == '*'))
            {
                self.error(
                    &format!("{at}.model"),
                    format!(
                        "never used: pricing.models[{j}] ({:?}) comes first and matches every model this entry does",
                        earlier.pattern
                    ),
                );
            }
            let mut amount = |key: &str, a: &Option<spec::Amount>| {
                let a = a.as_ref()?;
                match pricing::parse_amount(&a.0, MAX_PRICE_UNITS) {
                    Ok(nano) => Some(nano),
                    Err(e) => {
                        self.error(&format!("{at}.{key}"), format!("invalid price: {e}"));
                        None
                    }
                }
            };
            let input = amount("input", &m.input);
            let cached_input = amount("cached_input", &m.cached_input);
            let output = amount("output", &m.output);
            let request = amount("request", &m.request);
            match (&m.input, &m.output) {
                (Some(_), None) | (None, Some(_)) => self.error(
                    &at,
                    "give both `input` and `output` per million tokens (0 for a side that is free), or neither for a price per request only",
                ),
                (None, None) if m.request.is_none() => self.error(
                    &at,
                    "needs a price: `input` and `output` per million tokens, and/or `request`",
                ),
                _ => {}
            }
            if m.cached_input.is_some() && m.input.is_none() {
                self.error(&format!("{at}.cached_input"), "needs an `input` price too");
            }
            let input = input.unwrap_or(0);
            prices.push((
                i,
                Price::new(
                    pattern,
                    input,
                    cached_input.unwrap_or(input),
                    output.unwrap_or(0),
                    request.unwrap_or(0),
                ),
            ));
        }
        (self.errors.len() == before).then(|| {
            Pricing::new(
                currency,
                s.require_user,
                prices.into_iter().map(|(_, p)| p).collect(),
            )
        })
    }
}

/// Where a schema error in `pricing` is: the first entry of `models` that fails on its own
/// (serde's messages carry no position), and the unknown key if that is the problem.
fn pricing_error_at(y: &Yaml, message: String) -> (String, String) {
    let unknown_key = |at: String, message: String| {
        let key = message
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split_once('`'))
            .map(|(k, _)| k.to_string());
        match key {
            Some(k) => (format!("{at}.{k}"), message),
            None => (at, message),
        }
    };
    if let Some(items) = y.get("models").and_then(Yaml::as_sequence) {
        for (i, item) in items.iter().enumerate() {
            if let Err(e) = serde_yaml::from_value::<spec::PriceSpec>(item.clone()) {
                return unknown_key(format!("pricing.models[{i}]"), e.to_string());
            }
        }
    }
    unknown_key("pricing".into(), message)
}
