//! An independent Signature Version 4 verifier (`shared/reference/clouds.md` §1), written from
//! the algorithm with plain HMAC-SHA256 so that it shares no code with Rosetta's signer (the
//! `aws-sigv4` crate). The Bedrock fake runs it on every request; it is checked against the
//! worked example of clouds.md §1.2 in `testkit/tests/bedrock.rs`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// A request as the server received it.
pub struct Received<'a> {
    pub method: &'a str,
    /// Path and query exactly as sent (percent-encoding untouched).
    pub path: &'a str,
    /// Header names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// How far a request's `x-amz-date` may be from the server's clock.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// The message Bedrock gives for a signature that does not match.
pub const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().into()
}

/// `kSigning`: the HMAC chain over date stamp, region, service and `aws4_request`.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    hmac(&k_service, "aws4_request")
}

/// Percent-encodes everything but unreserved characters (and `/` when `slash` is kept).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (b[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(v)) => {
                out.push(v);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical request for `r` with these signed header names (lower case, sorted).
pub fn canonical_request(r: &Received, signed: &[&str]) -> String {
    let (path, query) = r.path.split_once('?').unwrap_or((r.path, ""));
    // Not S3: the path as sent is encoded a second time.
    let uri = if path.is_empty() {
        "/".to_string()
    } else {
        encode(path, true)
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut headers = String::new();
    for name in signed {
        let values: Vec<String> = r
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{}\n{uri}\n{}\n{headers}\n{}\n{}",
        r.method,
        query.join("&"),
        signed.join(";"),
        hex(&Sha256::digest(r.body))
    )
}

/// Unix milliseconds of a `YYYYMMDD'T'HHMMSS'Z'` time.
pub fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b)?.parse::<i64>().ok();
    let (y, m, d) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let (hh, mm, ss) = (n(9, 11)?, n(11, 13)?, n(13, 15)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000)
}

/// Why a request's signature is refused, as Bedrock words it; `Ok` when it verifies with
/// `secret` for `access_key_id` and `service`, dated within [`MAX_SKEW_MS`] of `now_ms`.
pub fn verify(
    r: &Received,
    access_key_id: &str,
    secret: &str,
    service: &str,
    now_ms: i64,
) -> Result<(), String> {
    let header = |name: &str| {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let auth = header("authorization").ok_or("Missing Authentication Token")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("Authorization header requires 'Credential' parameter.")?;
    let mut parts = std::collections::HashMap::new();
    for p in rest.split(',') {
        if let Some((k, v)) = p.trim().split_once('=') {
            parts.insert(k, v);
        }
    }
    let (Some(credential), Some(signed), Some(signature)) = (
        parts.get("Credential"),
        parts.get("SignedHeaders"),
        parts.get("Signature"),
    ) else {
        return Err("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.".into());
    };
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[4] != "aws4_request" {
        return Err("Credential should be scoped to a valid region.".into());
    }
    if scope[0] != access_key_id {
        return Err("The security token included in the request is invalid.".into());
    }
    if scope[3] != service {
        return Err(format!(
            "Credential should be scoped to correct service: '{service}'."
        ));
    }
    let amz_date = header("x-amz-date").ok_or("Missing x-amz-date")?;
    let at = parse_amz_date(amz_date).ok_or("Invalid x-amz-date")?;
    if (at - now_ms).abs() > MAX_SKEW_MS {
        return Err(format!(
            "Signature expired: {amz_date} is now earlier or later than the server time (5 minutes)."
        ));
    }
    if scope[1] != &amz_date[..8] {
        return Err("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP".into());
    }
    let signed: Vec<&str> = signed.split(';').collect();
    if !signed.contains(&"host") {
        return Err("'Host' must be a 'SignedHeader' in the AWS Authorization.".into());
    }
    let creq = canonical_request(r, &signed);
    let sts = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
        scope[1..].join("/"),
        hex(&Sha256::digest(creq.as_bytes()))
    );
    let key = signing_key(secret, scope[1], scope[2], scope[3]);
    if hex(&hmac(&key, &sts)) == *signature {
        Ok(())
    } else {
        Err(MISMATCH.into())
    }
}
