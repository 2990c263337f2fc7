//! The Grafana dashboard (`deploy/grafana/commerce.json`) and the alert rules
//! (`deploy/prometheus/alerts.yml`) query only metrics the server exports: after a short real
//! load through the router as `serve` runs it, every metric name in their PromQL must be in a
//! scrape of `/metrics`. (Grafana and Prometheus cannot run here; their queries are what is
//! checked. `.ci/observability` checks the rules' syntax and behaviour with promtool.)

use axum::body::Body;
use axum::http::{Request, StatusCode};
use commerce::config::EdgeArgs;
use commerce::http::server::with_deadlines;
use commerce::outbox::Transport;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::coupons::fixed_coupon;
use crate::harness::{Backend, TestApp};
use crate::on_both_backends;

const DASHBOARD: &str = include_str!("../../deploy/grafana/commerce.json");
const ALERTS: &str = include_str!("../../deploy/prometheus/alerts.yml");

async fn every_metric_the_dashboard_and_alerts_query_is_exported(backend: Backend) {
    // As `serve` does, before the database's committers register their series.
    commerce::http::metrics_recorder();
    let app = TestApp::new(backend).await;
    // The background work and the edge that `serve` runs with.
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(commerce::outbox::relay(
        app.state.relay(),
        Arc::new(Transport::InProcess),
        shutdown.clone(),
    ));
    let daily = tokio::spawn(commerce::platform::daily_job(
        app.state.platform(),
        shutdown.clone(),
    ));
    let edge = EdgeArgs {
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(30),
        max_connections: None,
    }
    .edge(1024);
    let served = with_deadlines(app.router.clone(), &edge);

    short_load(&app).await;
    wait_for_the_daily_check(&app).await;
    let scrape = get_metrics(served).await;
    shutdown.cancel();
    relay.await.unwrap();
    daily.await.unwrap();

    let exported = exported_names(&scrape);
    let mut missing = Vec::new();
    for (source, expr) in queries() {
        for name in metric_names(&expr) {
            if !exported.contains(&name) {
                missing.push(format!("{name} (in {source}: {expr})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "queried but not in /metrics:\n{}\n\nthe scrape:\n{scrape}",
        missing.join("\n")
    );
}

/// Charges, a coupon issued and one sold out, orders (one out of stock, one retried with its
/// key), a cancellation and a 404.
async fn short_load(app: &TestApp) {
    let product = app.product("Lamp", 10_000, 2).await;
    let coupon = fixed_coupon(app, 1_000, 1).await;
    for user in [1, 2] {
        app.charge(user, 100_000).await;
    }
    let issue = |user| {
        app.post(&format!("/api/v1/coupons/{coupon}/issue"))
            .token(&app.token(user))
    };
    assert_eq!(issue(1).send().await.status, StatusCode::CREATED);
    issue(2)
        .send()
        .await
        .assert_problem(StatusCode::CONFLICT, "COUPON_SOLD_OUT");
    let order = |user, key: &str| {
        app.post("/api/v1/orders")
            .token(&app.token(user))
            .header("idempotency-key", key)
            .json(json!({"items": [{"product_id": product, "quantity": 1}]}))
    };
    let first = order(1, "a").send().await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    assert_eq!(order(1, "a").send().await.status, StatusCode::CREATED);
    assert_eq!(order(2, "b").send().await.status, StatusCode::CREATED);
    order(2, "c")
        .send()
        .await
        .assert_problem(StatusCode::CONFLICT, "OUT_OF_STOCK");
    let id = first.body["id"].as_i64().unwrap();
    let cancel = app
        .post(&format!("/api/v1/orders/{id}/cancel"))
        .token(&app.token(1))
        .send()
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{}", cancel.text);
    app.get("/api/v1/products/777")
        .send()
        .await
        .assert_problem(StatusCode::NOT_FOUND, "PRODUCT_NOT_FOUND");
}

/// The scheduler's first check runs at once; it stores a month of empty days on a new database.
async fn wait_for_the_daily_check(app: &TestApp) {
    for _ in 0..300 {
        let text = app.get("/metrics").send().await.text;
        if text.lines().any(|l| {
            l.starts_with("daily_sales_last_success_timestamp_seconds ") && !l.ends_with(" 0")
        }) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the daily job's first check did not succeed within 30 s");
}

async fn get_metrics(router: axum::Router) -> String {
    let request = Request::get("/metrics").body(Body::empty()).unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// Every PromQL expression of the dashboard's panels and variables and of the alert rules,
/// with where it is.
fn queries() -> Vec<(String, String)> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            let title = panel["title"].as_str().unwrap_or_default();
            queries.push((format!("panel \"{title}\""), expr.to_owned()));
        }
    }
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if variable["type"] == "query" {
            let definition = variable["definition"].as_str().expect("a query definition");
            let selector = definition
                .strip_prefix("label_values(")
                .and_then(|rest| rest.rsplit_once(','))
                .map(|(selector, _label)| selector)
                .expect("variables are label_values(selector, label)");
            queries.push((
                format!("variable ${}", variable["name"]),
                selector.to_owned(),
            ));
        }
    }
    assert!(queries.len() > 20, "the dashboard has its panels");

    let alerts: serde_yaml_ng::Value = serde_yaml_ng::from_str(ALERTS).expect("the rules are YAML");
    let mut rules = 0;
    for group in alerts["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().or(rule["record"].as_str()).unwrap();
            queries.push((
                format!("rule {name}"),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
            rules += 1;
        }
    }
    assert!(rules >= 8, "every alert of the issue has a rule");
    queries
}

/// Metric names in the text exposition; a histogram's `_bucket`, `_sum` and `_count` series
/// are there with it.
fn exported_names(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            names.insert(name.to_owned());
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// The metric names a PromQL expression selects: identifiers outside label matchers, strings
/// and range brackets that are not functions, operators, or label lists of `by`/`on` and the
/// like.
fn metric_names(expr: &str) -> BTreeSet<String> {
    // Aggregations may be followed by `by (...)` rather than their parenthesis.
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_to = |from: usize, close: char| {
        let mut j = from + 1;
        let mut quoted = None;
        while j < chars.len() {
            match (quoted, chars[j]) {
                (Some(_), '\\') => j += 1,
                (Some(q), c) if c == q => quoted = None,
                (None, '"' | '\'' | '`') => quoted = Some(chars[j]),
                (None, c) if c == close => return j + 1,
                _ => {}
            }
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            i = skip_to(i, '}');
        } else if c == '[' {
            i = skip_to(i, ']');
        } else if c == '"' || c == '\'' || c == '`' {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            if LABEL_LISTS.contains(&word.as_str()) {
                if chars.get(next) == Some(&'(') {
                    i = skip_to(next, ')');
                }
            } else if chars.get(next) != Some(&'(')
                && !KEYWORDS.contains(&word.to_lowercase().as_str())
            {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn metric_names_are_read_from_promql() {
    let names = |expr| metric_names(expr).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (route, le) (rate(a_bucket{job="$job", x=~"y{1}"}[$__rate_interval])))"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        names("b - ignoring (state) c{s=\"o\"} / on(x) group_left (y) d > 1e3 and time() - e offset 5m"),
        ["b", "c", "d", "e"]
    );
    assert_eq!(names("sum(rate(x[5m])) by (le) or vector(0)"), ["x"]);
}

on_both_backends!(every_metric_the_dashboard_and_alerts_query_is_exported);
