//! Tests of `crate::cli`.

use super::*;

#[test]
fn serve_flag_defaults_are_the_documented_limits() {
    let Command::Serve { edge, .. } = Cli::try_parse_from(["rosetta", "serve"]).unwrap().command
    else {
        unreachable!()
    };
    assert_eq!(edge.resolve().unwrap().0, crate::limits::Limits::default());
    let cli = Cli::try_parse_from([
        "rosetta",
        "serve",
        "--max-json-values",
        "1000",
        "--max-parsed-size",
        "1MiB",
        "--max-inflight-bytes",
        "0",
    ])
    .unwrap();
    let Command::Serve { edge, .. } = cli.command else {
        unreachable!()
    };
    let limits = edge.resolve().unwrap().0;
    assert_eq!(
        (
            limits.max_json_values,
            limits.max_parsed_size,
            limits.max_inflight_bytes
        ),
        (1000, 1 << 20, 0)
    );
}

/// Parses `args` with exactly the variables `vars` set.
fn parse(args: &[&str], vars: &[(&str, &str)]) -> Result<Cli, clap::Error> {
    let vars: Vec<(String, OsString)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    let env = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    Cli::try_parse_with_env(std::iter::once("rosetta").chain(args.iter().copied()), &env)
}

fn serve(vars: &[(&str, &str)], flags: &[&str]) -> Command {
    let args: Vec<&str> = std::iter::once("serve")
        .chain(flags.iter().copied())
        .collect();
    parse(&args, vars).unwrap().command
}

/// Every environment variable of every option, by subcommand.
fn variables() -> Vec<(String, Vec<String>)> {
    Cli::command()
        .get_subcommands()
        .map(|sub| {
            let names = sub
                .get_arguments()
                .filter_map(|a| a.get_env())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            (sub.get_name().to_string(), names)
        })
        .collect()
}

#[test]
fn every_option_variable_is_rosetta_prefixed() {
    let all: Vec<String> = variables().into_iter().flat_map(|(_, v)| v).collect();
    assert!(all.len() >= 20, "{all:?}");
    for name in &all {
        assert!(name.starts_with("ROSETTA_"), "{name}");
    }
    for name in [
        "ROSETTA_BUDGETS",
        "ROSETTA_USER_HEADER",
        "ROSETTA_ADMIN_KEYS",
        "ROSETTA_API_KEYS",
        "ROSETTA_API_KEYS_FILE",
        "ROSETTA_PROTECT_METRICS",
    ] {
        assert!(all.iter().any(|n| n == name), "{name} missing from {all:?}");
    }
}

/// The rule itself, for every option at once: each subcommand parses to the same thing
/// with all of its variables set to "" as with none of them set.
#[test]
fn an_empty_variable_is_the_same_as_an_unset_one() {
    for (sub, names) in variables() {
        let empty: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "")).collect();
        let with_empty = parse(&[sub.as_str()], &empty)
            .unwrap_or_else(|e| panic!("rosetta {sub} with {names:?} empty: {e}"));
        let unset = parse(&[sub.as_str()], &[]).unwrap();
        assert_eq!(
            format!("{with_empty:?}"),
            format!("{unset:?}"),
            "rosetta {sub}"
        );
    }
}

#[test]
fn the_compose_defaults_start_with_everything_off() {
    // What docker-compose.override.yml.example passes when nothing is set in .env.
    let vars = [
        ("ROSETTA_API_KEYS", ""),
        ("ROSETTA_API_KEYS_FILE", ""),
        ("ROSETTA_BUDGETS", ""),
        ("ROSETTA_USER_HEADER", ""),
        ("ROSETTA_ADMIN_KEYS", ""),
        ("ROSETTA_PROTECT_METRICS", ""),
        ("ROSETTA_LEDGER", "sqlite:///data/ledger.db"),
        ("ROSETTA_ALWAYS_INCLUDE_USAGE", "true"),
        ("ROSETTA_LOG_FORMAT", "json"),
    ];
    let Command::Serve {
        edge,
        accounting,
        always_include_usage,
        log_format,
        ..
    } = serve(&vars, &[])
    else {
        unreachable!()
    };
    assert!(always_include_usage);
    assert_eq!(log_format, "json");
    assert_eq!(accounting.ledger, "sqlite:///data/ledger.db");
    assert!(accounting.budgets.is_none());
    assert!(accounting.user_header.is_none());
    assert!(accounting.admin().unwrap().is_none(), "admin API on");
    assert_eq!(accounting.responses_ttl, DAY * 30);
    let (_, auth) = edge.resolve().unwrap();
    assert!(!auth.enabled());
    assert!(!auth.metrics_protected());
}

#[test]
fn variables_set_options_and_flags_win() {
    let vars = [
        ("ROSETTA_LISTEN", "0.0.0.0:9000"),
        ("ROSETTA_BUDGETS", "/etc/rosetta/budgets.yaml"),
        ("ROSETTA_USER_HEADER", "x-user-id"),
        ("ROSETTA_ADMIN_KEYS", "ops:sk-admin-1"),
        ("ROSETTA_WATCH", "false"),
        ("ROSETTA_MAX_BODY", "1MiB"),
        ("ROSETTA_PROTECT_METRICS", "true"),
    ];
    let Command::Serve {
        listen,
        watch,
        edge,
        accounting,
        ..
    } = serve(&vars, &[])
    else {
        unreachable!()
    };
    assert_eq!(listen, "0.0.0.0:9000");
    assert!(!watch);
    assert_eq!(edge.max_body, 1 << 20);
    assert!(edge.protect_metrics);
    assert_eq!(
        accounting.budgets.as_deref(),
        Some(Path::new("/etc/rosetta/budgets.yaml"))
    );
    assert_eq!(accounting.user_header.as_ref().unwrap(), "x-user-id");
    assert_eq!(accounting.admin().unwrap().unwrap().names(), ["ops"]);

    let Command::Serve { listen, watch, .. } =
        serve(&vars, &["--listen", "127.0.0.1:1", "--watch"])
    else {
        unreachable!()
    };
    assert_eq!(listen, "127.0.0.1:1");
    assert!(watch);
}

#[test]
fn an_invalid_variable_is_still_an_error() {
    for (name, value) in [
        ("ROSETTA_MAX_BODY", "lots"),
        ("ROSETTA_LOG_FORMAT", "xml"),
        ("ROSETTA_USER_HEADER", "bad header"),
        ("ROSETTA_WATCH", "maybe"),
    ] {
        let e = parse(&["serve"], &[(name, value)]).unwrap_err();
        use clap::error::ErrorKind::{InvalidValue, ValueValidation};
        assert!(
            matches!(e.kind(), InvalidValue | ValueValidation),
            "{name}: {e}"
        );
        assert!(e.to_string().contains(value), "{name}: {e}");
    }
}

#[test]
fn help_still_names_the_variables() {
    let e = parse(&["serve", "--help"], &[]).unwrap_err();
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    let help = e.to_string();
    assert!(help.contains("[env: ROSETTA_LISTEN"), "{help}");
    assert!(help.contains("[env: ROSETTA_ADMIN_KEYS]"), "{help}");
}

const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

/// `--responses-ttl`: 30 days unless set; the variable takes any duration (an empty one
/// counts as unset), the flag wins over it, `0` stores nothing, and a bad value is refused.
#[test]
fn responses_ttl_is_a_duration_and_zero_stores_nothing() {
    let ttl = |vars: &[(&str, &str)], flags: &[&str]| {
        let Command::Serve { accounting, .. } = serve(vars, flags) else {
            unreachable!()
        };
        accounting.responses_ttl
    };
    let var = "ROSETTA_RESPONSES_TTL";
    assert_eq!(ttl(&[], &[]), DAY * 30);
    assert_eq!(ttl(&[(var, "")], &[]), DAY * 30);
    assert_eq!(ttl(&[(var, "12h")], &[]), DAY / 2);
    assert_eq!(ttl(&[(var, "12h")], &["--responses-ttl", "7d"]), DAY * 7);
    assert_eq!(
        ttl(&[(var, "12h")], &["--responses-ttl", "0"]),
        std::time::Duration::ZERO
    );
    for bad in ["forever", "1w", "1.5.2d"] {
        let e = parse(&["serve", "--responses-ttl", bad], &[]).unwrap_err();
        assert_eq!(
            e.kind(),
            clap::error::ErrorKind::ValueValidation,
            "{bad}: {e}"
        );
    }
}

/// In the code, not only in the parsing: a key list with no key leaves the admin API off.
#[test]
fn an_empty_admin_key_list_is_off() {
    for keys in ["", " ", ",", " , ,"] {
        let Command::Serve { accounting, .. } = serve(&[], &["--admin-keys", keys]) else {
            unreachable!()
        };
        assert!(accounting.admin().unwrap().is_none(), "{keys:?}");
    }
}
