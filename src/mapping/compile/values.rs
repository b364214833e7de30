//! Scalars a mapping file writes as text: `${VAR}` interpolation and durations.

use std::time::Duration;

use crate::mapping::Env;

/// Expands `${VAR}`, `${VAR:-default}` and `${VAR:?message}`. Unset variables without a default
/// expand to "" and are listed in `missing`; `:?` makes them an error.
pub fn interpolate_env(
    raw: &str,
    env: Env<'_>,
    missing: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let body = &rest[start + 2..];
        let end = closing_brace(body).ok_or_else(|| format!("unclosed `${{` in {raw:?}"))?;
        let inner = &body[..end];
        let op_at = inner.find(":-").into_iter().chain(inner.find(":?")).min();
        let (var, op) = match op_at {
            Some(i) => (&inner[..i], Some((&inner[i..i + 2], &inner[i + 2..]))),
            None => (inner, None),
        };
        if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid variable name {var:?}"));
        }
        match (env(var).filter(|v| !v.is_empty()), op) {
            (Some(v), _) => out.push_str(&v),
            // A default may itself read variables: `${A:-https://${B:-x}.example}`.
            (None, Some((":-", default))) => {
                out.push_str(&interpolate_env(default, env, missing)?);
            }
            (None, Some((_, message))) => {
                return Err(format!("environment variable {var} is required: {message}"));
            }
            (None, None) => missing.push(var.to_string()),
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The index of the `}` that closes a `${` whose body is `body`, skipping nested `${...}`.
fn closing_brace(body: &str) -> Option<usize> {
    let b = body.as_bytes();
    let mut depth = 0usize;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'$' if b.get(i + 1) == Some(&b'{') => depth += 1,
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// Parses `250ms`, `30s`, `2m`, `12h`, `30d`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (use 500ms, 30s, 2m, 12h or 30d)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3_600.0,
        "d" => n * 86_400.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m, h or d)"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration {s:?} is out of range"))
}
