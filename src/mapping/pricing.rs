//! Prices of a mapping's models (the `pricing:` section) and the cost of a call.
//!
//! Money is an integer count of nano-units (10⁻⁹) of the prices' currency
//! ([`NANO`]): prices are read from their decimal text exactly (`0.075` is
//! exactly 75 000 000 nano-units), and a cost is computed in integers, rounded once.

use std::fmt;

use regex::Regex;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::dialect::answer::Usage;
use crate::mapping::glob::glob;

/// Nano-units per unit of currency: every amount of money (prices, costs, budgets) is an
/// integer count of them.
pub const NANO: i64 = 1_000_000_000;

/// The currency label when a `pricing` section names none.
pub const DEFAULT_CURRENCY: &str = "USD";

/// The largest price accepted, in currency units (per million tokens, or per request).
pub const MAX_PRICE_UNITS: i64 = 1_000_000;

/// The metric label of a model that no price matched.
pub const OTHER_LABEL: &str = "other";

/// A mapping's prices.
#[derive(Clone, Debug)]
pub struct Pricing {
    /// A label only (`USD`); costs are summed as they are, whatever the label.
    pub currency: String,
    /// A request without a user identity is refused (the server enforces it).
    pub require_user: bool,
    prices: Vec<Price>,
}

/// The price of the models matching one pattern. All amounts are nano-units.
#[derive(Clone, Debug)]
pub struct Price {
    /// The model id or glob pattern (`claude-*`) as written; also the metric label.
    pub pattern: String,
    matcher: Regex,
    /// Per million input tokens that were not read from a cache.
    pub input_nano: i64,
    /// Per million cached input tokens.
    pub cached_input_nano: i64,
    /// Per million output tokens.
    pub output_nano: i64,
    /// Per request, whatever its tokens.
    pub request_nano: i64,
}

impl Pricing {
    pub fn new(currency: impl Into<String>, require_user: bool, prices: Vec<Price>) -> Pricing {
        Pricing {
            currency: currency.into(),
            require_user,
            prices,
        }
    }

    /// The prices, in the order they are tried.
    pub fn prices(&self) -> &[Price] {
        &self.prices
    }

    /// The price of a call: the first entry matching the upstream model id, else the first
    /// matching the model as the client named it (an alias), else `None` (the call is free).
    pub fn price(&self, upstream_model: &str, client_model: &str) -> Option<&Price> {
        self.prices
            .iter()
            .find(|p| p.matches(upstream_model))
            .or_else(|| self.prices.iter().find(|p| p.matches(client_model)))
    }

    /// The model as a metric label: the matched price's pattern, or `other`. Patterns are
    /// few and fixed by the mapping, so the label set stays bounded.
    pub fn label(&self, upstream_model: &str, client_model: &str) -> &str {
        self.price(upstream_model, client_model)
            .map_or(OTHER_LABEL, |p| p.pattern.as_str())
    }
}

impl Price {
    /// A price for `pattern` (an id or a glob with `*` and `?`), amounts in nano-units.
    pub fn new(
        pattern: &str,
        input_nano: i64,
        cached_input_nano: i64,
        output_nano: i64,
        request_nano: i64,
    ) -> Price {
        Price {
            pattern: pattern.to_string(),
            matcher: glob(pattern),
            input_nano,
            cached_input_nano,
            output_nano,
            request_nano,
        }
    }

    /// Whether this price applies to `model`.
    pub fn matches(&self, model: &str) -> bool {
        self.matcher.is_match(model)
    }

    /// The cost of a call with this usage, in nano-units:
    /// `((prompt − cached) × input + cached × cached_input + completion × output) / 10⁶`,
    /// rounded half up, plus the per-request price. `prompt_tokens` includes the cached
    /// tokens (as in OpenAI); a missing count is 0, and cached tokens never exceed the prompt.
    /// Exact (in `i128`) and saturating: it never panics.
    pub fn cost(&self, usage: &Usage) -> i64 {
        let prompt = i128::from(usage.prompt_tokens.unwrap_or(0));
        let cached = i128::from(usage.cached_tokens.unwrap_or(0)).min(prompt);
        let completion = i128::from(usage.completion_tokens.unwrap_or(0));
        let per_million = ((prompt - cached).saturating_mul(i128::from(self.input_nano)))
            .saturating_add(cached.saturating_mul(i128::from(self.cached_input_nano)))
            .saturating_add(completion.saturating_mul(i128::from(self.output_nano)));
        let tokens = per_million.saturating_add(500_000).div_euclid(1_000_000);
        let total = tokens.saturating_add(i128::from(self.request_nano));
        total.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// What a call costs at the least, known before it is made: the per-request price.
    pub fn hold_cost(&self) -> i64 {
        self.request_nano
    }
}

/// Parses a non-negative decimal amount (`3`, `0.075`, `"3.00"`) into nano-units, exactly.
/// At most 9 decimal places (trailing zeros aside) and at most `max_units` whole units.
pub fn parse_amount(text: &str, max_units: i64) -> Result<i64, String> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if ["nan", ".nan"].contains(&lower.as_str()) {
        return Err("is not a number".into());
    }
    if lower.trim_start_matches(['+', '-']).trim_start_matches('.') == "inf" {
        return Err("must be a finite amount".into());
    }
    if t.starts_with('-') {
        return Err(format!("must not be negative (got {t})"));
    }
    let digits = t.strip_prefix('+').unwrap_or(t);
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !plain(whole) || !plain(frac) {
        return Err(format!(
            "{t:?} is not an amount (write a plain decimal number such as 3 or 0.075)"
        ));
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err(format!(
            "{t} has more than 9 decimal places (amounts are kept in units of 10^-9)"
        ));
    }
    let whole = whole.trim_start_matches('0');
    let too_large = || format!("{t} is too large (at most {max_units})");
    if whole.len() > 18 {
        return Err(too_large());
    }
    let units: i128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let nano_frac: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| too_large())?
    };
    let nano = units * i128::from(NANO) + nano_frac;
    if nano > i128::from(max_units) * i128::from(NANO) {
        return Err(too_large());
    }
    Ok(nano as i64)
}

/// The decimal text of a YAML float, exactly as written when it had at most 15 significant
/// digits: Rust prints the shortest text that reads back as the same `f64`, never in
/// scientific notation.
pub fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        "inf".into()
    } else if f == 0.0 {
        "0".into()
    } else {
        format!("{f}")
    }
}

/// An amount as written (a YAML number or a decimal string), as decimal text; checked by
/// [`parse_amount`] when it is compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Amount(pub String);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Amount, D::Error> {
        d.deserialize_any(AmountVisitor(None)).map(Amount)
    }
}

/// Deserializes an amount straight into nano-units, so that a bad amount is reported at its
/// own line and column (serde_yaml places errors raised while visiting a scalar there).
pub fn deserialize_nano<'de, D: Deserializer<'de>>(d: D, max_units: i64) -> Result<i64, D::Error> {
    let text = d.deserialize_any(AmountVisitor(Some(max_units)))?;
    parse_amount(&text, max_units).map_err(de::Error::custom)
}

/// Reads a number or a string as decimal text; with a bound, checks it there.
struct AmountVisitor(Option<i64>);

impl AmountVisitor {
    fn check<E: de::Error>(&self, text: String) -> Result<String, E> {
        match self.0 {
            Some(max) => parse_amount(&text, max).map(|_| text).map_err(E::custom),
            None => Ok(text),
        }
    }
}

impl<'de> Visitor<'de> for AmountVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an amount (a number such as 3 or 0.075, or a decimal string)")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        self.check(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        self.check(v.to_string())
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<String, E> {
        self.check(v.to_string())
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        self.check(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        self.check(float_text(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        self.check(v.to_string())
    }
}

/// Formats nano-units as an amount with 2 to 6 decimals, rounded half up at the sixth
/// (`5.00`, `0.30`, `0.000075`, `1.234568`); never in scientific notation.
pub fn format_money(nano: i64) -> String {
    let micro = (i128::from(nano).abs() + 500) / 1000;
    let sign = if nano < 0 && micro != 0 { "-" } else { "" };
    let frac = format!("{:06}", micro % 1_000_000);
    let frac = frac.trim_end_matches('0');
    let frac = format!("{frac:0<2}");
    format!("{sign}{}.{frac}", micro / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(prompt: Option<u64>, cached: Option<u64>, completion: Option<u64>) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: cached,
            reasoning_tokens: None,
        }
    }

    #[test]
    fn amounts_are_parsed_exactly() {
        let p = |s: &str| parse_amount(s, MAX_PRICE_UNITS);
        assert_eq!(p("0.075"), Ok(75_000_000));
        assert_eq!(p("3"), Ok(3 * NANO));
        assert_eq!(p("3.00"), Ok(3 * NANO));
        assert_eq!(p(" +0.30 "), Ok(300_000_000));
        assert_eq!(p(".5"), Ok(500_000_000));
        assert_eq!(p("2."), Ok(2 * NANO));
        assert_eq!(p("0.000000001"), Ok(1));
        assert_eq!(p("0.0000000010"), Ok(1), "trailing zeros do not count");
        assert_eq!(p("0"), Ok(0));
        assert_eq!(p(".0"), Ok(0));
        assert_eq!(p("1000000"), Ok(1_000_000 * NANO));
        assert!(
            p("0.0000000001")
                .unwrap_err()
                .contains("more than 9 decimal places")
        );
        assert!(p("-1").unwrap_err().contains("negative"));
        assert!(p("-0.5").unwrap_err().contains("negative"));
        assert!(p("NaN").unwrap_err().contains("not a number"));
        assert!(p(".nan").unwrap_err().contains("not a number"));
        assert!(p("inf").unwrap_err().contains("finite"));
        assert!(p("-.inf").unwrap_err().contains("finite"));
        assert!(p("1000000.000000001").unwrap_err().contains("too large"));
        assert!(
            p("99999999999999999999999999")
                .unwrap_err()
                .contains("too large")
        );
        for bad in ["", ".", "1e3", "3 USD", "$3", "1,5", "1.2.3", "0x10", "++1"] {
            assert!(p(bad).unwrap_err().contains("not an amount"), "{bad:?}");
        }
    }

    #[test]
    fn yaml_floats_keep_their_decimal_text() {
        for (yaml, nano) in [
            ("0.075", 75_000_000),
            ("0.3", 300_000_000),
            ("3.00", 3 * NANO),
            ("15", 15 * NANO),
            ("0.1", 100_000_000),
            ("1.1", 1_100_000_000),
            ("0.000000001", 1),
            ("123456.789012345", 123_456_789_012_345),
            ("1e-3", 1_000_000),
            ("\"2.50\"", 2_500_000_000),
        ] {
            let a: Amount = serde_yaml::from_str(yaml).unwrap();
            assert_eq!(parse_amount(&a.0, MAX_PRICE_UNITS), Ok(nano), "{yaml}");
        }
        for (yaml, message) in [
            (".nan", "not a number"),
            (".inf", "finite"),
            ("-3", "negative"),
            ("-0.5", "negative"),
            ("1e-10", "decimal places"),
            ("1e300", "too large"),
        ] {
            let a: Amount = serde_yaml::from_str(yaml).unwrap();
            let e = parse_amount(&a.0, MAX_PRICE_UNITS).unwrap_err();
            assert!(e.contains(message), "{yaml}: {e}");
        }
        assert!(serde_yaml::from_str::<Amount>("[1]").is_err());
        assert!(serde_yaml::from_str::<Amount>("true").is_err());
    }

    #[test]
    fn cost_is_exact_and_rounded_half_up() {
        let sonnet = Price::new("claude-sonnet-4-5*", 3 * NANO, 300_000_000, 15 * NANO, 0);
        // 1000 prompt tokens of which 200 cached, 500 completion:
        // 800 × 3 + 200 × 0.30 + 500 × 15 = 2400 + 60 + 7500 = 9960 per million = 0.00996.
        assert_eq!(
            sonnet.cost(&usage(Some(1000), Some(200), Some(500))),
            9_960_000
        );
        assert_eq!(sonnet.cost(&usage(None, None, None)), 0);
        assert_eq!(sonnet.cost(&Usage::default()), 0);
        // Missing counts are 0; cached never exceeds the prompt.
        assert_eq!(sonnet.cost(&usage(None, Some(50), Some(1))), 15_000);
        assert_eq!(
            sonnet.cost(&usage(Some(10), Some(1000), None)),
            sonnet.cost(&usage(Some(10), Some(10), None))
        );
        assert_eq!(sonnet.cost(&usage(Some(10), Some(10), None)), 3_000);
        // 1 token at 0.075 per million is 75 nano; at 0.0005 per million 0.5 nano → 1.
        let cheap = Price::new("m", 75_000_000, 75_000_000, 500_000, 0);
        assert_eq!(cheap.cost(&usage(Some(1), None, None)), 75);
        assert_eq!(cheap.cost(&usage(None, None, Some(1))), 1, "0.5 rounds up");
        let tiny = Price::new("m", 499, 0, 0, 0);
        assert_eq!(
            tiny.cost(&usage(Some(1_000), None, None)),
            0,
            "0.499 rounds down"
        );
        assert_eq!(
            tiny.cost(&usage(Some(1_001), None, None)),
            0,
            "0.499499 rounds down"
        );
        assert_eq!(
            tiny.cost(&usage(Some(1_003), None, None)),
            1,
            "0.500497 rounds up"
        );
        // cached_input defaulted to input by the loader; here explicit.
        let flat = Price::new("m", 2 * NANO, 2 * NANO, 0, 0);
        assert_eq!(flat.cost(&usage(Some(500_000), Some(250_000), None)), NANO);
        // The per-request price is added as it is.
        let per_call = Price::new("m", 0, 0, 0, 20_000_000);
        assert_eq!(per_call.cost(&usage(Some(9), None, Some(9))), 20_000_000);
        assert_eq!(per_call.hold_cost(), 20_000_000);
        assert_eq!(sonnet.hold_cost(), 0);
    }

    #[test]
    fn cost_saturates_instead_of_panicking() {
        let max = Price::new("m", i64::MAX, i64::MAX, i64::MAX, i64::MAX);
        let huge = usage(Some(u64::MAX), Some(u64::MAX / 2), Some(u64::MAX));
        assert_eq!(max.cost(&huge), i64::MAX);
        let big = Price::new("m", MAX_PRICE_UNITS * NANO, 0, MAX_PRICE_UNITS * NANO, 0);
        assert_eq!(big.cost(&huge), i64::MAX);
        let negative = Price::new("m", i64::MIN, 0, 0, i64::MIN);
        assert_eq!(negative.cost(&huge), i64::MIN);
        // A realistic month of heavy use stays exact.
        let opus = Price::new("m", 15 * NANO, 1_500_000_000, 75 * NANO, 0);
        assert_eq!(
            opus.cost(&usage(Some(10_000_000_000), Some(0), Some(1_000_000_000))),
            225_000 * NANO
        );
    }

    #[test]
    fn the_upstream_model_is_matched_first_then_the_clients() {
        let pricing = Pricing::new(
            "USD",
            false,
            vec![
                Price::new("claude-opus-4-5*", 5 * NANO, 500_000_000, 25 * NANO, 0),
                Price::new("claude-opus-*", 15 * NANO, 1_500_000_000, 75 * NANO, 0),
                Price::new("fast", NANO, NANO, NANO, 0),
                Price::new("gpt-4?", 30 * NANO, 30 * NANO, 60 * NANO, 0),
            ],
        );
        let p = |up: &str, client: &str| pricing.price(up, client).map(|p| p.pattern.as_str());
        assert_eq!(p("claude-opus-4-5-20251101", "x"), Some("claude-opus-4-5*"));
        assert_eq!(
            p("claude-opus-4-1", "x"),
            Some("claude-opus-*"),
            "first match wins"
        );
        assert_eq!(
            p("llama3.2:1b", "fast"),
            Some("fast"),
            "an alias by its client name"
        );
        assert_eq!(
            p("claude-opus-4-1", "fast"),
            Some("claude-opus-*"),
            "upstream first"
        );
        assert_eq!(p("gpt-4o", "gpt-4o"), Some("gpt-4?"));
        assert_eq!(p("gpt-4o-mini", "gpt-4o-mini"), None, "globs are anchored");
        assert_eq!(pricing.label("claude-opus-4-1", "x"), "claude-opus-*");
        assert_eq!(pricing.label("mistral", "mistral"), "other");
        assert_eq!(pricing.prices().len(), 4);
    }

    #[test]
    fn money_is_formatted_with_two_to_six_decimals() {
        assert_eq!(format_money(5 * NANO), "5.00");
        assert_eq!(format_money(0), "0.00");
        assert_eq!(format_money(300_000_000), "0.30");
        assert_eq!(format_money(75_000), "0.000075");
        assert_eq!(format_money(1_234_567_890), "1.234568");
        assert_eq!(format_money(1_234_567_490), "1.234567");
        assert_eq!(
            format_money(1_500),
            "0.000002",
            "half up at the sixth decimal"
        );
        assert_eq!(format_money(499), "0.00");
        assert_eq!(format_money(100_000_000_000_000_000), "100000000.00");
        assert_eq!(format_money(i64::MAX), "9223372036.854776");
        assert_eq!(format_money(-2_500_000_000), "-2.50");
        assert_eq!(format_money(i64::MIN), "-9223372036.854776");
    }
}
