//! The Grafana dashboard committed at `tests/grafana/sluicegate-dashboard.json` stays true to
//! the gateway: it parses, every panel has a query, and every metric a query names is one the
//! running gateway exports on `/metrics`.
mod common;

use std::collections::BTreeSet;

use common::{http_request, Gateway};

fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("sluicegate_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn every_metric_the_dashboard_queries_is_exported() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/grafana/sluicegate-dashboard.json"
    ))
    .expect("dashboard file");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let panels = dash["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8, "a dashboard worth the name");
    let gw = Gateway::start(&["--set", "storage.mode=memory"]);
    let page = http_request(gw.addr(), "GET", "/metrics", &[], b"")
        .expect("metrics")
        .text();
    let exported: BTreeSet<&str> = page
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let mut queried = 0;
    for p in panels {
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "{expr} queries no sluicegate metric");
            for n in names {
                queried += 1;
                assert!(
                    exported.contains(n.as_str()),
                    "{n} (in {expr}) is not exported:\n{page}"
                );
            }
        }
    }
    assert!(queried > 20);
}
