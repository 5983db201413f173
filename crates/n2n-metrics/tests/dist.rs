//! The monitoring examples in `dist/monitoring/`: the Grafana dashboard is valid JSON and its
//! queries use only metric names (and labels) this crate exposes, `rate()` only on counters;
//! the Prometheus scrape config names the jobs the dashboard filters on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use n2n_metrics::METRIC_NAMES;
use serde_json::Value;

fn dist(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../dist/monitoring")
        .join(file)
}

/// Series Prometheus itself adds to every scrape.
const PROMETHEUS_SERIES: &[&str] = &["up"];
const LABELS: &[&str] = &[
    "job",
    "instance",
    "mode",
    "path",
    "reason",
    "community",
    "kind",
    "version",
];
const FUNCTIONS: &[&str] = &[
    "sum", "count", "max", "min", "avg", "rate", "increase", "irate", "time", "topk",
];
const KEYWORDS: &[&str] = &["by", "without", "and", "or", "unless"];

#[derive(Debug, Default)]
struct Uses {
    metrics: BTreeSet<String>,
    rated: BTreeSet<String>,
}

fn ident_end(s: &[u8], i: usize) -> usize {
    let mut j = i;
    while j < s.len() && (s[j].is_ascii_alphanumeric() || s[j] == b'_' || s[j] == b':') {
        j += 1;
    }
    j
}

/// Label names of a `{…}` matcher list or a `by (…)` list; `i` is just after the opener.
fn label_list(expr: &str, s: &[u8], mut i: usize, close: u8) -> usize {
    while i < s.len() && s[i] != close {
        match s[i] {
            b'"' => {
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    i += if s[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let j = ident_end(s, i);
                let label = &expr[i..j];
                assert!(
                    LABELS.contains(&label),
                    "unknown label {label:?} in {expr:?}"
                );
                i = j;
            }
            _ => i += 1,
        }
    }
    i + 1
}

/// A small PromQL scanner: every identifier is a function (followed by `(`), a keyword, or a
/// metric name; label names inside `{}` and `by ()` are checked against [`LABELS`].
fn scan(expr: &str, uses: &mut Uses) {
    let s = expr.as_bytes();
    let mut i = 0;
    let mut last_fn = String::new();
    while i < s.len() {
        let c = s[i];
        if c == b'{' {
            i = label_list(expr, s, i + 1, b'}');
        } else if c == b'[' {
            while i < s.len() && s[i] != b']' {
                i += 1;
            }
            i += 1;
        } else if c == b'"' {
            i += 1;
            while i < s.len() && s[i] != b'"' {
                i += 1;
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let j = ident_end(s, i);
            let word = &expr[i..j];
            let rest = expr[j..].trim_start();
            if KEYWORDS.contains(&word) {
                if (word == "by" || word == "without") && rest.starts_with('(') {
                    let open = j + (expr[j..].len() - rest.len());
                    i = label_list(expr, s, open + 1, b')');
                    continue;
                }
            } else if rest.starts_with('(')
                || (FUNCTIONS.contains(&word)
                    && (rest.starts_with("by") || rest.starts_with("without")))
            {
                assert!(
                    FUNCTIONS.contains(&word),
                    "unknown function {word:?} in {expr:?}"
                );
                last_fn = word.to_string();
            } else {
                uses.metrics.insert(word.to_string());
                if ["rate", "increase", "irate"].contains(&last_fn.as_str()) {
                    uses.rated.insert(word.to_string());
                }
                last_fn.clear();
            }
            i = j;
        } else if c.is_ascii_digit() {
            while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'.') {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
}

fn walk(v: &Value, key: Option<&str>, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                walk(v, Some(k), out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| walk(v, key, out)),
        Value::String(s) if matches!(key, Some("expr" | "definition")) => out.push(s.clone()),
        _ => {}
    }
}

#[test]
fn dashboard_queries_use_only_our_metrics() {
    let text = std::fs::read_to_string(dist("grafana-dashboard.json")).unwrap();
    let dash: Value = serde_json::from_str(&text).expect("valid JSON");
    let mut exprs = Vec::new();
    walk(&dash, None, &mut exprs);
    assert!(exprs.len() >= 20, "only {} queries", exprs.len());
    let mut uses = Uses::default();
    for e in &exprs {
        // Grafana's label_values(series, label): scan the series, check the label.
        match e
            .strip_prefix("label_values(")
            .and_then(|r| r.rsplit_once(','))
        {
            Some((series, label)) => {
                let label = label.trim().trim_end_matches(')');
                assert!(LABELS.contains(&label), "unknown label {label:?} in {e:?}");
                scan(series, &mut uses);
            }
            None => scan(e, &mut uses),
        }
    }
    for m in &uses.metrics {
        assert!(
            METRIC_NAMES.contains(&m.as_str()) || PROMETHEUS_SERIES.contains(&m.as_str()),
            "dashboard uses {m:?}, which n2n-metrics does not define"
        );
    }
    for m in &uses.rated {
        assert!(m.ends_with("_total"), "rate() of the non-counter {m:?}");
    }
    // Every n2n family is on the dashboard somewhere.
    for m in METRIC_NAMES.iter().filter(|m| m.starts_with("n2n_")) {
        assert!(uses.metrics.contains(*m), "{m} is on no panel");
    }
    assert_eq!(dash["uid"], "n2n-overview");
    assert!(dash["panels"].as_array().is_some_and(|p| p.len() > 10));
}

#[test]
fn the_scanner_catches_mistakes() {
    let bad = std::panic::catch_unwind(|| {
        let mut u = Uses::default();
        scan(r#"sum by (comunity) (n2n_supernode_edges)"#, &mut u);
    });
    assert!(bad.is_err(), "misspelt label passed");
    let bad = std::panic::catch_unwind(|| {
        let mut u = Uses::default();
        scan(r#"rat(n2n_edge_drops_total[5m])"#, &mut u);
    });
    assert!(bad.is_err(), "unknown function passed");
    let mut u = Uses::default();
    scan(
        r#"sum(rate(n2n_edge_tx_packet_total{job=~"$edge_job",path="p2p"}[$__rate_interval])) / 2"#,
        &mut u,
    );
    assert_eq!(
        u.metrics.iter().collect::<Vec<_>>(),
        ["n2n_edge_tx_packet_total"]
    );
    assert!(!METRIC_NAMES.contains(&"n2n_edge_tx_packet_total"));
    let mut u = Uses::default();
    scan(r#"count by (version) (n2n_edge_build_info)"#, &mut u);
    assert_eq!(
        u.metrics.iter().collect::<Vec<_>>(),
        ["n2n_edge_build_info"]
    );
    let mut u = Uses::default();
    scan(r#"rate(n2n_edge_peers[1m])"#, &mut u);
    assert!(u.rated.contains("n2n_edge_peers"));
}

#[test]
fn scrape_config_has_the_dashboards_jobs() {
    let yml = std::fs::read_to_string(dist("prometheus.yml")).unwrap();
    for needle in [
        "job_name: n2n-supernode",
        "job_name: n2n-edge",
        "metrics_path: /metrics",
        "--metrics 0.0.0.0:9646",
        "--metrics=0.0.0.0:9645",
    ] {
        assert!(
            yml.contains(needle),
            "{needle:?} missing from prometheus.yml"
        );
    }
    let dash: Value =
        serde_json::from_str(&std::fs::read_to_string(dist("grafana-dashboard.json")).unwrap())
            .unwrap();
    let vars = dash["templating"]["list"].as_array().unwrap();
    let job = |name: &str| {
        vars.iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["query"].as_str())
            .unwrap()
            .to_string()
    };
    assert_eq!(job("supernode_job"), "n2n-supernode");
    assert_eq!(job("edge_job"), "n2n-edge");
    // No tabs, and every line is a comment, blank, or indented by spaces (YAML basics).
    assert!(!yml.contains('\t'));
}
