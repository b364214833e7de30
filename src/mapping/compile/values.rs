//! Scalars a mapping file writes as text: `${VAR}` interpolation and durations.

use std::time::Duration;

use crate::mapping::Env;

/// Expands `${VAR}`, `${VAR:-default}` and `${VAR:?message}`. Unset variables without a default
/// expand to "" and are listed in `missing`; `:?` makes them an error. A default may itself hold
/// `${...}`. A value may be looked up in a table: `${VAR:-default|from=>to|*=>to}` gives the `to`
/// of the entry whose `from` is the value (`*`: any other value; none: the value unchanged),
/// where `{}` in a `to` stands for the value.
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
        let end = closing(body).ok_or_else(|| format!("unclosed `${{` in {raw:?}"))?;
        out.push_str(&expand(&body[..end], raw, env, missing)?);
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The position of the `}` that closes a `${` whose text starts `body` (braces nest).
fn closing(body: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// `s` split at each `sep` outside braces.
fn split_outside_braces(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut depth, mut from) = (Vec::new(), 0usize, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            c if c == sep && depth == 0 => {
                parts.push(&s[from..i]);
                from = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[from..]);
    parts
}

/// One `${...}`'s text (without `${` and `}`), expanded.
fn expand(
    inner: &str,
    raw: &str,
    env: Env<'_>,
    missing: &mut Vec<String>,
) -> Result<String, String> {
    let parts = split_outside_braces(inner, '|');
    let (head, table) = (parts[0], &parts[1..]);
    let op_at = head.find(":-").into_iter().chain(head.find(":?")).min();
    let (var, op) = match op_at {
        Some(i) => (&head[..i], Some((&head[i..i + 2], &head[i + 2..]))),
        None => (head, None),
    };
    if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("invalid variable name {var:?}"));
    }
    let value = match (env(var).filter(|v| !v.is_empty()), op) {
        (Some(v), _) => v,
        (None, Some((":-", default))) => interpolate_env(default, env, missing)?,
        (None, Some((_, message))) => {
            return Err(format!("environment variable {var} is required: {message}"));
        }
        (None, None) => {
            missing.push(var.to_string());
            String::new()
        }
    };
    let mut entries = Vec::with_capacity(table.len());
    for entry in table {
        let (from, to) = entry
            .split_once("=>")
            .ok_or_else(|| format!("invalid table entry {entry:?} in {raw:?} (use from=>to)"))?;
        entries.push((from, to));
    }
    let hit = entries
        .iter()
        .find(|(from, _)| *from == value)
        .or_else(|| entries.iter().find(|(from, _)| *from == "*"));
    match hit {
        Some((_, to)) => Ok(interpolate_env(to, env, missing)?.replace("{}", &value)),
        None => Ok(value),
    }
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

#[cfg(test)]
mod tests {
    use super::interpolate_env;

    fn expand(raw: &str, vars: &[(&str, &str)]) -> Result<(String, Vec<String>), String> {
        let env = |k: &str| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        let mut missing = Vec::new();
        interpolate_env(raw, &env, &mut missing).map(|s| (s, missing))
    }

    #[test]
    fn defaults_nest_and_tables_look_values_up() {
        let host = "https://${LOC:-us-central1|global=>svc|*=>{}-svc}.example.com";
        let url = format!("${{BASE:-{host}}}/v1/${{LOC:-us-central1}}");
        assert_eq!(
            expand(&url, &[]).unwrap().0,
            "https://us-central1-svc.example.com/v1/us-central1"
        );
        assert_eq!(
            expand(&url, &[("LOC", "global")]).unwrap().0,
            "https://svc.example.com/v1/global"
        );
        assert_eq!(
            expand(&url, &[("BASE", "http://127.0.0.1:9"), ("LOC", "global")])
                .unwrap()
                .0,
            "http://127.0.0.1:9/v1/global"
        );
        // No entry and no `*`: the value as it is.
        assert_eq!(expand("${A|x=>y}", &[("A", "z")]).unwrap().0, "z");
        assert_eq!(expand("${A|x=>y}", &[("A", "x")]).unwrap().0, "y");
        // Unset without a default: listed as missing, looked up as "".
        assert_eq!(
            expand("${A|=>none}", &[]).unwrap(),
            ("none".into(), vec!["A".to_string()])
        );
        assert!(expand("${A|oops}", &[]).unwrap_err().contains("from=>to"));
        assert!(expand("${A:-${B}", &[]).unwrap_err().contains("unclosed"));
        assert!(
            expand("${A:?set it}", &[])
                .unwrap_err()
                .contains("A is required")
        );
    }
}
