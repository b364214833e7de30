//! Tests of the mapping compiler: whole files in, a `Mapping` or every error out.

use super::values::*;
use super::*;

fn env(k: &str) -> Option<String> {
    match k {
        "KEY" => Some("sk-secret".into()),
        "BASE" => Some("http://127.0.0.1:9".into()),
        _ => None,
    }
}

#[test]
fn env_interpolation() {
    let mut missing = Vec::new();
    assert_eq!(
        interpolate_env("${KEY}", &env, &mut missing).unwrap(),
        "sk-secret"
    );
    assert_eq!(
        interpolate_env("${NOPE:-http://x}/v1", &env, &mut missing).unwrap(),
        "http://x/v1"
    );
    assert_eq!(
        interpolate_env("a${NOPE}b", &env, &mut missing).unwrap(),
        "ab"
    );
    assert_eq!(missing, vec!["NOPE".to_string()]);
    assert!(
        interpolate_env("${NOPE:?set it}", &env, &mut missing)
            .unwrap_err()
            .contains("set it")
    );
    assert!(interpolate_env("${bad name}", &env, &mut missing).is_err());
    assert!(
        interpolate_env("${NOPE:?use x:-y}", &env, &mut missing)
            .unwrap_err()
            .contains("use x:-y")
    );
}

#[test]
fn env_defaults_may_read_variables() {
    let mut missing = Vec::new();
    assert_eq!(
        interpolate_env(
            "${NOPE:-https://h.${KEY:-x}.example}/v1",
            &env,
            &mut missing
        )
        .unwrap(),
        "https://h.sk-secret.example/v1"
    );
    assert_eq!(
        interpolate_env("${NOPE:-https://h.${NADA:-x}.example}", &env, &mut missing).unwrap(),
        "https://h.x.example"
    );
    assert_eq!(
        interpolate_env("${KEY:-https://${NADA}}", &env, &mut missing).unwrap(),
        "sk-secret"
    );
    assert!(missing.is_empty());
    assert!(interpolate_env("${NOPE:-${KEY}", &env, &mut missing).is_err());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
    assert_eq!(
        parse_duration("12h").unwrap(),
        Duration::from_secs(12 * 3_600)
    );
    assert_eq!(
        parse_duration("30d").unwrap(),
        Duration::from_secs(30 * 86_400)
    );
    assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
    assert!(parse_duration("5 parsecs").is_err());
    assert!(parse_duration("1w").is_err());
    assert!(parse_duration("99999999999999999999999m").is_err());
}

const GOOD: &str = "upstream:\n  base_url: ${BASE}/api\n  headers:\n    x-api-key: ${KEY}\nroutes:\n  chat:\n    path: /v1/x\n    request: {model: $.model}\n    response: {content: $.text}\n";

#[test]
fn defs_errors_come_in_name_order_and_a_second_document_has_a_line() {
    let src = "upstream: {base_url: \"http://x\"}\ndefs:\n  d: {$nope: 4}\n  a: {$nope: 1}\n  c: {$nope: 3}\n  b: {$nope: 2}\nroutes: {chat: {path: /c, response: {}}}\n";
    let first = compile_file(FsPath::new("m.yaml"), src, &env).unwrap_err();
    let names: Vec<&str> = first.iter().map(|e| e.location.as_str()).collect();
    assert_eq!(
        names,
        [
            "defs.a.$nope",
            "defs.b.$nope",
            "defs.c.$nope",
            "defs.d.$nope"
        ]
    );
    for _ in 0..5 {
        assert_eq!(
            compile_file(FsPath::new("m.yaml"), src, &env).unwrap_err(),
            first
        );
    }
    let two = "# two documents\nupstream: {base_url: \"http://x\"}\n---\nroutes: {}\n";
    let e = compile_file(FsPath::new("m.yaml"), two, &env).unwrap_err();
    assert_eq!(e[0].line, Some(3), "{e:?}");
    let empty_key =
        "upstream: {base_url: \"http://x\"}\n\"\": 1\nroutes: {chat: {path: /c, response: {}}}\n";
    let e = compile_file(FsPath::new("m.yaml"), empty_key, &env).unwrap_err();
    assert_eq!(e[0].location, "\"\"", "{e:?}");
    let ended = "upstream: {base_url: \"http://x\"}\n...\n# next\nroutes: {}\n";
    let e = compile_file(FsPath::new("m.yaml"), ended, &env).unwrap_err();
    assert_eq!(e[0].line, Some(4), "{e:?}");
}

#[test]
fn a_definition_that_multiplies_is_refused_quickly() {
    let src = "upstream: {base_url: \"http://x\"}\ndefs:\n  a: [{$use: a}, {$use: a}, {$use: a}]\nroutes: {chat: {path: /c, response: {content: {$use: a}}}}\n";
    let t = std::time::Instant::now();
    let errors = compile_file(FsPath::new("m.yaml"), src, &env).unwrap_err();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert!(
        errors.iter().any(|e| e.message.contains("$use copies")),
        "{errors:?}"
    );
}

#[test]
fn compiles_a_minimal_mapping() {
    let m = compile_file(FsPath::new("mappings/demo.yaml"), GOOD, &env).unwrap();
    assert_eq!(m.name, "demo");
    assert_eq!(m.upstream.endpoints[0].base_path, "/api");
    assert!(m.upstream.headers[0].1.is_sensitive());
    assert!(!format!("{m:?}").contains("sk-secret"));
}

#[test]
fn reports_every_error_with_file_and_line() {
    let bad = "upstream:\n  base_url: nope\nroutes:\n  chat:\n    path: /v1/x\n    request:\n      a: {$summ: [1]}\n      b: \"$.[\"\n    response: {content: $.t, colour: red}\n    stream: {framing: xml}\n  speech: {}\nextra: 1\n";
    let errs = compile_file(FsPath::new("mappings/bad.yaml"), bad, &env).unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    let all = text.join("\n");
    assert!(
        all.contains("mappings/bad.yaml:7: routes.chat.request.a.$summ: unknown directive"),
        "{all}"
    );
    assert!(
        all.contains("mappings/bad.yaml:8: routes.chat.request.b: invalid JSONPath"),
        "{all}"
    );
    assert!(
        all.contains("routes.chat.response.colour: unknown field"),
        "{all}"
    );
    assert!(
        all.contains("routes.chat.stream.framing: unknown framing"),
        "{all}"
    );
    assert!(all.contains("routes.speech: unknown route"), "{all}");
    assert!(all.contains("extra: unknown top-level key"), "{all}");
    assert!(all.contains("upstream.base_url"), "{all}");
    assert!(errs.len() >= 7, "{all}");
}

#[test]
fn defs_route_env_statuses_and_bare_durations() {
    let src = "upstream:\n  base_url: http://x\n  timeouts: {idle: 30}\ndefs:\n  unused: {$nope: 1}\n  used: {$nope2: 1}\nerrors:\n  status: {529: 5030}\nroutes:\n  chat:\n    path: /\n    headers: {x-k: \"${ROUTE_KEY}\"}\n    request: {a: {$use: used}, b: {$use: used}}\n    response: {}\n";
    let all: Vec<String> = compile_file(FsPath::new("m.yaml"), src, &env)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        all.iter()
            .any(|e| e.contains("defs.unused.$nope: unknown directive")),
        "{all:?}"
    );
    assert_eq!(
        all.iter().filter(|e| e.contains("$nope2")).count(),
        1,
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|e| e.contains("errors.status.529: 5030 is not an HTTP status")),
        "{all:?}"
    );
    assert_eq!(all.len(), 3, "{all:?}");
    let ok = "upstream:\n  base_url: http://x\n  timeouts: {idle: 30}\nroutes:\n  chat:\n    path: /\n    headers: {x-k: \"${ROUTE_KEY}\"}\n    response: {}\n";
    let m = compile_file(FsPath::new("m.yaml"), ok, &env).unwrap();
    assert_eq!(m.upstream.idle_timeout, Duration::from_secs(30));
    assert_eq!(m.upstream.missing_env, vec!["ROUTE_KEY".to_string()]);
}

#[test]
fn header_objects_are_built_only_for_mappings_that_read_them() {
    let read = |request: &str, content: &str| {
        let src = format!(
            "upstream:\n  base_url: http://x\ndefs:\n  who: {request}\nroutes:\n  chat:\n    path: /\n    request: {{u: {{$use: who}}}}\n    response: {{content: {content}}}\n"
        );
        let m = compile_file(FsPath::new("m.yaml"), &src, &env).unwrap();
        (m.reads_headers, m.reads_client_headers)
    };
    assert_eq!(read("$.user", "$.text"), (false, false));
    assert_eq!(
        read("\"$client_headers['x-user-id']\"", "\"$headers['x-t']\""),
        (true, true)
    );
    assert_eq!(read("{$var: client_headers}", "$.text"), (false, true));
}

#[test]
fn headers_with_an_unset_variable_are_not_sent() {
    let src = "upstream:\n  base_url: http://x\n  headers:\n    authorization: Bearer ${UNSET}\n    x-key: ${KEY}\n    x-opt: Bearer ${UNSET:-}\nroutes:\n  chat: {path: /, response: {}}\n";
    let m = compile_file(FsPath::new("m.yaml"), src, &env).unwrap();
    let sent: Vec<(String, String)> = m
        .upstream
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        sent,
        vec![
            ("x-key".to_string(), "sk-secret".to_string()),
            ("x-opt".to_string(), "Bearer ".to_string()),
        ]
    );
}

#[test]
fn query_values_take_the_environment() {
    let src = "upstream:\n  base_url: http://x\nroutes:\n  chat:\n    path: /\n    query: {v: \"${NOPE:-2024-10-21}\", k: \"${KEY}\", m: $.model, u: \"${UNSET}\"}\n    response: {}\n";
    let m = compile_file(FsPath::new("m.yaml"), src, &env).unwrap();
    let q = &m.chat.as_ref().unwrap().query;
    let text: Vec<String> = q.iter().map(|(k, e)| format!("{k}={e:?}")).collect();
    assert!(
        text.iter()
            .any(|t| t.starts_with("v=Const(String(\"2024-10-21\"))")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("k=Const(String(\"sk-secret\"))")),
        "{text:?}"
    );
    assert!(text.iter().any(|t| t.starts_with("m=Path")), "{text:?}");
    assert!(
        text.iter().any(|t| t == "u=Coalesce([])"),
        "an unset variable leaves the parameter out: {text:?}"
    );
    assert_eq!(m.upstream.missing_env, vec!["UNSET".to_string()]);
}

const ROUTES: &str =
    "upstream: {base_url: \"http://x\"}\nroutes:\n  chat: {path: /, response: {}}\n";

#[test]
fn pricing_compiles_exact_prices_in_order() {
    let src = format!(
        "{ROUTES}pricing:\n  currency: EUR\n  require_user: true\n  models:\n    - model: claude-sonnet-4-5*\n      input: 3.00\n      cached_input: 0.30\n      output: 15\n    - {{model: \"gemini-*\", input: 0.075, output: \"0.30\", request: 0.001}}\n    - {{model: per-call, request: 0.02}}\n"
    );
    let m = compile_file(FsPath::new("m.yaml"), &src, &env).unwrap();
    let p = m.pricing.as_ref().unwrap();
    assert_eq!(p.currency, "EUR");
    assert!(p.require_user);
    let sonnet = p.price("claude-sonnet-4-5-20250929", "x").unwrap();
    assert_eq!(
        (
            sonnet.input_nano,
            sonnet.cached_input_nano,
            sonnet.output_nano,
            sonnet.request_nano
        ),
        (3_000_000_000, 300_000_000, 15_000_000_000, 0)
    );
    let gemini = p.price("gemini-2.0-flash", "x").unwrap();
    assert_eq!(
        (
            gemini.input_nano,
            gemini.cached_input_nano,
            gemini.output_nano,
            gemini.request_nano
        ),
        (75_000_000, 75_000_000, 300_000_000, 1_000_000),
        "cached_input defaults to input"
    );
    let call = p.price("per-call", "per-call").unwrap();
    assert_eq!(
        (call.input_nano, call.output_nano, call.hold_cost()),
        (0, 0, 20_000_000)
    );
    assert_eq!(p.label("mistral", "mistral"), "other");
    let plain = format!("{ROUTES}pricing:\n  models: [{{model: \"*\", input: 1, output: 2}}]\n");
    let m = compile_file(FsPath::new("m.yaml"), &plain, &env).unwrap();
    let p = m.pricing.unwrap();
    assert_eq!((p.currency.as_str(), p.require_user), ("USD", false));
    assert!(
        compile_file(FsPath::new("m.yaml"), ROUTES, &env)
            .unwrap()
            .pricing
            .is_none()
    );
}

#[test]
fn pricing_errors_have_file_and_line() {
    let errors = |pricing: &str| -> Vec<String> {
        let src = format!("{ROUTES}pricing:\n{pricing}");
        compile_file(FsPath::new("mappings/p.yaml"), &src, &env)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    let e = errors(
        "  models:\n    - model: a\n      input: 1\n      output: 2\n    - model: b\n      inptu: 1\n      output: 2\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("mappings/p.yaml:10: pricing.models[1].inptu: unknown field `inptu`"),
        "{e:?}"
    );
    let e = errors("  currency: USD\n  colour: red\n  models: [{model: a, request: 1}]\n");
    assert!(
        e[0].starts_with("mappings/p.yaml:6: pricing.colour: unknown field `colour`"),
        "{e:?}"
    );
    let e = errors(
        "  models:\n    - model: a\n      input: -3\n      output: 0.0000000001\n      request: .nan\n",
    );
    assert_eq!(
        e,
        [
            "mappings/p.yaml:7: pricing.models[0].input: invalid price: must not be negative (got -3)",
            "mappings/p.yaml:8: pricing.models[0].output: invalid price: 0.0000000001 has more than 9 decimal places (amounts are kept in units of 10^-9)",
            "mappings/p.yaml:9: pricing.models[0].request: invalid price: is not a number",
        ]
    );
    let e = errors("  models:\n    - model: a\n      input: 1000001\n      output: 1\n");
    assert!(
        e[0].starts_with(
            "mappings/p.yaml:7: pricing.models[0].input: invalid price: 1000001 is too large"
        ),
        "{e:?}"
    );
    let e = errors("  models: []\n");
    assert!(
        e[0].starts_with("mappings/p.yaml:5: pricing.models: needs at least one price"),
        "{e:?}"
    );
    let e = errors(
        "  models:\n    - model: \"claude 4\"\n      request: 1\n    - model: \"\"\n      request: 1\n",
    );
    assert!(
        e[0].starts_with(
            "mappings/p.yaml:6: pricing.models[0].model: \"claude 4\" is not a model id or pattern"
        ),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("mappings/p.yaml:8: pricing.models[1].model: \"\" is not a model id"),
        "{e:?}"
    );
    let e = errors(
        "  models:\n    - model: \"*\"\n      request: 1\n    - model: a\n      request: 1\n",
    );
    assert!(e[0].starts_with("mappings/p.yaml:8: pricing.models[1].model: never used: pricing.models[0] (\"*\") comes first"), "{e:?}");
    let e = errors(
        "  models:\n    - model: a\n      input: 1\n    - model: b\n      cached_input: 1\n      request: 1\n    - model: c\n",
    );
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with("mappings/p.yaml:6: pricing.models[0]: give both `input` and `output`"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with(
            "mappings/p.yaml:9: pricing.models[1].cached_input: needs an `input` price"
        ),
        "{e:?}"
    );
    assert!(
        e[2].starts_with("mappings/p.yaml:11: pricing.models[2]: needs a price"),
        "{e:?}"
    );
    let e = errors("  currency: US Dollar\n  models: [{model: a, request: 1}]\n");
    assert!(
        e[0].starts_with(
            "mappings/p.yaml:5: pricing.currency: \"US Dollar\" is not a currency label"
        ),
        "{e:?}"
    );
    let e = errors("  require_user: maybe\n  models: [{model: a, request: 1}]\n");
    assert!(
        e[0].starts_with("mappings/p.yaml:4: pricing: invalid type"),
        "{e:?}"
    );
    let e = errors("  models:\n    - {model: a, input: [1], output: 1}\n");
    assert!(
        e[0].starts_with(
            "mappings/p.yaml:6: pricing.models[0]: invalid type: sequence, expected an amount"
        ),
        "{e:?}"
    );
}

#[test]
fn every_mapping_prices_in_one_currency() {
    let dir = std::env::temp_dir().join(format!("rosetta-pricing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let priced = |currency: &str| {
        format!(
            "{ROUTES}pricing:\n  currency: {currency}\n  models: [{{model: \"*\", request: 1}}]\n"
        )
    };
    std::fs::write(dir.join("a.yaml"), priced("USD")).unwrap();
    std::fs::write(dir.join("b.yaml"), ROUTES).unwrap();
    std::fs::write(dir.join("c.yaml"), priced("USD")).unwrap();
    assert_eq!(load_dir(&dir, &env).unwrap().len(), 3);
    std::fs::write(dir.join("c.yaml"), priced("EUR")).unwrap();
    let e = load_dir(&dir, &env).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(e.len(), 1, "{e:?}");
    let text = e[0].to_string();
    assert!(
        text.contains("c.yaml:5: pricing.currency: prices are in EUR here but in USD in "),
        "{text}"
    );
}

#[test]
fn secrets_never_appear_in_errors() {
    let bad = "upstream:\n  base_url: http://x\n  headers:\n    x-api-key: \"${KEY}\\n\"\nroutes:\n  chat: {path: /, response: {}}\n";
    let errs = compile_file(FsPath::new("m.yaml"), bad, &env).unwrap_err();
    let all: String = errs.iter().map(|e| e.to_string()).collect();
    assert!(all.contains("x-api-key"), "{all}");
    assert!(!all.contains("sk-secret"), "{all}");
}
