use super::*;

/// One error of every upstream kind.
fn upstream_errors() -> Vec<ProxyError> {
    let message = || "m".to_string();
    vec![
        ProxyError::UpstreamStatus {
            status: http::StatusCode::BAD_GATEWAY,
            message: message(),
            kind: None,
            code: None,
            retry_after: None,
        },
        ProxyError::Unreachable { message: message() },
        ProxyError::Timeout { message: message() },
        ProxyError::BadUpstreamResponse { message: message() },
        ProxyError::UpstreamTooLarge {
            what: "a frame",
            limit: 1,
            flag: "--f",
        },
        ProxyError::UpstreamStreamError {
            message: message(),
            kind: None,
            code: None,
        },
    ]
}

#[derive(Clone, Copy)]
struct Route(usize);

impl RouteLabel for Route {
    fn index(self) -> usize {
        self.0
    }
}

fn handles(metrics: &Metrics) -> MappingMetrics {
    MappingMetrics::new(
        metrics,
        "m",
        ["e0", "e1"],
        ["claude-*".to_string(), "other".to_string()],
    )
}

#[test]
fn every_status_has_its_class() {
    for status in 100..=599u16 {
        let class = STATUS_CLASSES[status_index(status)];
        assert_eq!(class, format!("{}xx", status / 100), "{status}");
        assert_eq!(crate::ops::telemetry::status_class(status), class);
    }
    assert_eq!(STATUS_CLASSES[status_index(600)], "5xx");
}

#[test]
fn every_route_and_status_class_counts_on_its_own_series() {
    let metrics = Metrics::new();
    let h = handles(&metrics);
    for (r, route) in ROUTES.iter().enumerate() {
        for (s, class) in STATUS_CLASSES.iter().enumerate() {
            let status = 100 * (s as u16 + 1);
            h.requests(Route(r), status)
                .inc_by(1 + r as u64 * 10 + s as u64);
            let series = metrics.requests.with_label_values(&["m", route, class]);
            assert_eq!(
                series.get(),
                1 + r as u64 * 10 + s as u64,
                "{route} {class}"
            );
        }
        h.request_duration(Route(r)).observe(1.0);
        h.upstream_duration(Route(r)).observe(2.0);
        let d = metrics.request_duration.with_label_values(&["m", route]);
        let u = metrics.upstream_duration.with_label_values(&["m", route]);
        assert_eq!(
            (d.get_sample_sum(), u.get_sample_sum()),
            (1.0, 2.0),
            "{route}"
        );
    }
}

#[test]
fn every_upstream_kind_counts_on_its_own_series() {
    let metrics = Metrics::new();
    let h = handles(&metrics);
    let errors = upstream_errors();
    assert_eq!(errors.len(), UPSTREAM_KINDS.len());
    for e in &errors {
        assert!(UPSTREAM_KINDS.contains(&e.kind()), "{}", e.kind());
        h.upstream_error(e);
        h.upstream_error(e);
    }
    for kind in UPSTREAM_KINDS {
        assert_eq!(
            metrics
                .upstream_errors
                .with_label_values(&["m", kind])
                .get(),
            2,
            "{kind}"
        );
    }
    // A client's error is not the upstream's.
    h.upstream_error(&ProxyError::NotFound {
        message: "x".into(),
    });
    assert!(!metrics.render().contains("kind=\"not_found\""));
}

#[test]
fn retries_ejections_tokens_and_models_count_on_their_series() {
    let metrics = Metrics::new();
    let h = handles(&metrics);
    for (i, reason) in [
        RetryReason::Connect,
        RetryReason::Timeout,
        RetryReason::TooMany,
        RetryReason::ServerError,
    ]
    .into_iter()
    .enumerate()
    {
        h.retries(reason).inc();
        let series = metrics
            .upstream_retries
            .with_label_values(&["m", RETRY_REASONS[i]]);
        assert_eq!(series.get(), 1, "{reason:?}");
    }
    h.ejections(1).inc();
    assert_eq!(
        metrics
            .endpoint_ejections
            .with_label_values(&["m", "e1"])
            .get(),
        1
    );
    h.count_tokens(&Usage {
        prompt_tokens: Some(3),
        completion_tokens: Some(4),
        ..Default::default()
    });
    assert_eq!(metrics.tokens.with_label_values(&["m", "prompt"]).get(), 3);
    assert_eq!(
        metrics.tokens.with_label_values(&["m", "completion"]).get(),
        4
    );
    h.model(0, [1, 2, 3], 7);
    for (kind, n) in MODEL_TOKEN_KINDS.iter().zip([1, 2, 3]) {
        let series = metrics
            .model_tokens
            .with_label_values(&["m", "claude-*", kind]);
        assert_eq!(series.get(), n, "{kind}");
    }
    assert_eq!(
        metrics
            .cost_nano
            .with_label_values(&["m", "claude-*"])
            .get(),
        7
    );
    h.active_streams().inc();
    h.time_to_first_token().observe(0.5);
    assert_eq!(metrics.active_streams.with_label_values(&["m"]).get(), 1);
}

#[test]
fn a_series_appears_only_once_counted() {
    let metrics = Metrics::new();
    let h = handles(&metrics);
    let before = metrics.render();
    assert!(!before.contains("mapping=\"m\""), "{before}");
    h.model(1, [0, 0, 0], 0);
    assert!(!metrics.render().contains("mapping=\"m\""));
    h.requests(Route(0), 200).inc();
    let after = metrics.render();
    let lines: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("mapping=\"m\""))
        .collect();
    assert_eq!(
        lines,
        ["rosetta_requests_total{mapping=\"m\",route=\"chat\",status=\"2xx\"} 1"]
    );
}

#[test]
fn a_second_use_resolves_nothing() {
    let metrics = Metrics::new();
    let h = handles(&metrics);
    let use_all = |h: &MappingMetrics| {
        for r in 0..ROUTES.len() {
            for status in [100, 200, 300, 400, 500] {
                h.requests(Route(r), status).inc();
            }
            h.request_duration(Route(r)).observe(0.1);
            h.upstream_duration(Route(r)).observe(0.1);
        }
        for e in &upstream_errors() {
            h.upstream_error(e);
        }
        h.retries(RetryReason::TooMany).inc();
        h.ejections(0).inc();
        h.count_tokens(&Usage {
            prompt_tokens: Some(1),
            completion_tokens: Some(1),
            ..Default::default()
        });
        h.model(1, [1, 1, 1], 1);
        h.active_streams().inc();
        h.time_to_first_token().observe(0.1);
    };
    use_all(&h);
    let first = h.resolutions();
    let routes = ROUTES.len();
    let series = routes * 5 + routes + routes + UPSTREAM_KINDS.len() + 1 + 1 + 2 + 3 + 1 + 1 + 1;
    assert_eq!(first, series);
    use_all(&h);
    use_all(&h);
    assert_eq!(
        h.resolutions(),
        first,
        "a later request resolved labels again"
    );
}

#[test]
fn a_reloaded_set_continues_the_same_series() {
    let metrics = Metrics::new();
    handles(&metrics).requests(Route(0), 200).inc();
    handles(&metrics).requests(Route(0), 200).inc();
    let series = metrics.requests.with_label_values(&["m", "chat", "2xx"]);
    assert_eq!(series.get(), 2);
}

/// The per-request paths count through resolved handles; none resolves labels itself.
#[test]
fn per_request_paths_do_not_resolve_labels() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![
        root.join("translate/body.rs"),
        root.join("translate/send.rs"),
        root.join("translate/proxy.rs"),
        root.join("ledger/tab.rs"),
        root.join("serving/server.rs"),
    ];
    for entry in std::fs::read_dir(root.join("serving/dispatch")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let calls: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("with_label_values"))
            .collect();
        // One path is left on purpose: a fallback (every endpoint failed), its pair of
        // mappings known only then.
        let allowed = usize::from(file.ends_with("dispatch/fallbacks.rs"));
        assert!(
            calls.len() <= allowed,
            "{} resolves labels per request: {calls:?}",
            file.display()
        );
    }
}
