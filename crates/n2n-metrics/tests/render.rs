//! The renderers: exposition text (both formats) parsed back, labels, types, escaping, caps;
//! the status page's content and escaping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod expo;
mod samples;

use std::collections::HashSet;

use expo::{Dialect, parse};
use n2n_metrics::{
    CommunityView, EdgeExporter, Exporter, Format, MAX_COMMUNITY_SERIES, METRIC_NAMES, Provider,
    SupernodeExporter, channel, html,
};

fn scrape(e: &impl Exporter, f: Format) -> expo::Exposition {
    let text = e.metrics(f);
    let dialect = match f {
        Format::OpenMetrics => Dialect::OpenMetrics,
        Format::Prometheus => Dialect::Prometheus,
    };
    parse(&text, dialect).unwrap_or_else(|err| panic!("{err}\n---\n{text}"))
}

#[test]
fn edge_exposition_both_formats() {
    let ex = EdgeExporter::new(Provider::fixed(samples::edge(1)));
    for f in [Format::OpenMetrics, Format::Prometheus] {
        let m = scrape(&ex, f);
        let counter_family = |name: &str| match f {
            Format::OpenMetrics => name.to_string(),
            Format::Prometheus => format!("{name}_total"),
        };
        for (name, ty) in [
            ("n2n_edge_tx_bytes", "counter"),
            ("n2n_edge_rx_bytes", "counter"),
            ("n2n_edge_tx_packets", "counter"),
            ("n2n_edge_rx_packets", "counter"),
            ("n2n_edge_drops", "counter"),
            ("process_cpu_seconds", "counter"),
        ] {
            let fam = m.family(&counter_family(name));
            assert_eq!(fam.ty.as_deref(), Some(ty), "{name}");
            assert!(fam.help.as_deref().is_some_and(|h| !h.is_empty()));
            assert!(
                fam.samples
                    .iter()
                    .all(|s| s.name == format!("{name}_total"))
            );
        }
        if f == Format::OpenMetrics {
            assert_eq!(m.family("n2n_edge_tx_bytes").unit.as_deref(), Some("bytes"));
            assert_eq!(
                m.family("process_resident_memory_bytes").unit.as_deref(),
                Some("bytes")
            );
        }
        for name in [
            "n2n_edge_peers",
            "n2n_edge_supernode_up",
            "n2n_edge_build_info",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_start_time_seconds",
        ] {
            assert_eq!(m.family(name).ty.as_deref(), Some("gauge"), "{name}");
        }
        let v = |n: &str, l: &[(&str, &str)]| m.value(n, l);
        assert_eq!(v("n2n_edge_peers", &[("mode", "p2p")]), 3.0);
        assert_eq!(v("n2n_edge_peers", &[("mode", "relayed")]), 1.0);
        assert_eq!(v("n2n_edge_supernode_up", &[]), 1.0);
        assert_eq!(v("n2n_edge_tx_bytes_total", &[("path", "p2p")]), 1000.0);
        assert_eq!(
            v("n2n_edge_rx_bytes_total", &[("path", "supernode")]),
            400.0
        );
        assert_eq!(
            v("n2n_edge_tx_packets_total", &[("path", "supernode")]),
            3.0
        );
        assert_eq!(v("n2n_edge_rx_packets_total", &[("path", "p2p")]), 20.0);
        assert_eq!(v("n2n_edge_drops_total", &[("reason", "malformed")]), 1.0);
        assert_eq!(
            v("n2n_edge_drops_total", &[("reason", "wrong_community")]),
            0.0
        );
        assert_eq!(v("n2n_edge_build_info", &[("version", "0.1.0")]), 1.0);
        assert!(v("process_resident_memory_bytes", &[]) > 1e6);
        // The community is not a label of the edge's metrics.
        assert!(m.samples().all(|s| !s.labels.contains_key("community")));
    }
}

#[test]
fn counters_follow_the_snapshot_totals() {
    let (tx, rx) = channel(samples::edge(1));
    let ex = EdgeExporter::new(rx);
    let first = scrape(&ex, Format::OpenMetrics);
    tx.publish(samples::edge(5));
    let second = scrape(&ex, Format::OpenMetrics);
    let third = scrape(&ex, Format::OpenMetrics);
    for (m, want) in [(&first, 10.0), (&second, 50.0), (&third, 50.0)] {
        // Set from the total, not incremented by it.
        assert_eq!(
            m.value("n2n_edge_tx_packets_total", &[("path", "p2p")]),
            want
        );
    }
    tx.publish(samples::edge(0));
    let fresh = scrape(&ex, Format::Prometheus);
    assert_eq!(fresh.value("n2n_edge_supernode_up", &[]), 1.0);
    assert_eq!(
        fresh.value("n2n_edge_drops_total", &[("reason", "malformed")]),
        0.0
    );
}

#[test]
fn supernode_exposition_escapes_attacker_labels() {
    let ex = SupernodeExporter::new(Provider::fixed(samples::supernode(2)));
    for f in [Format::OpenMetrics, Format::Prometheus] {
        let m = scrape(&ex, f);
        let v = |n: &str, l: &[(&str, &str)]| m.value(n, l);
        assert_eq!(v("n2n_supernode_edges", &[("community", "lab")]), 2.0);
        assert_eq!(
            v("n2n_supernode_edges", &[("community", "ev\"il\\n\n}{<b>")]),
            1.0
        );
        assert_eq!(v("n2n_supernode_edges", &[("community", "empty")]), 0.0);
        assert_eq!(v("n2n_supernode_communities", &[]), 3.0);
        assert_eq!(v("n2n_supernode_federation_supernodes", &[]), 1.0);
        assert_eq!(
            v(
                "n2n_supernode_forwarded_packets_total",
                &[("kind", "unicast")]
            ),
            200.0
        );
        assert_eq!(
            v(
                "n2n_supernode_forwarded_packets_total",
                &[("kind", "broadcast")]
            ),
            14.0
        );
        assert_eq!(
            v("n2n_supernode_drops_total", &[("reason", "too_short")]),
            2.0
        );
        assert_eq!(v("n2n_supernode_build_info", &[("version", "0.1.0")]), 1.0);
        assert!(v("process_cpu_seconds_total", &[]) >= 0.0);
        assert!(m.sample_names().iter().all(|n| !n.starts_with("n2n_edge_")));
    }
}

#[test]
fn community_series_are_capped_and_merged() {
    let mut s = samples::supernode(1);
    s.communities = (0..MAX_COMMUNITY_SERIES + 500)
        .map(|i| CommunityView {
            name: format!("c{i:05}"),
            edges: vec![samples::edge_view(1, "x"); usize::from(i.is_multiple_of(7)) * 2],
        })
        .collect();
    // Two communities whose names decode to the same text: one series, summed.
    s.communities.push(CommunityView {
        name: "c00000".into(),
        edges: vec![samples::edge_view(2, "y")],
    });
    // Worst-case label text: 19 quotes, escaped to 38 bytes.
    s.communities[1].name = "\"".repeat(19);
    let ex = SupernodeExporter::new(Provider::fixed(s));
    let text = ex.metrics(Format::OpenMetrics);
    println!(
        "scrape with {MAX_COMMUNITY_SERIES} community series: {} bytes",
        text.len()
    );
    assert!(text.len() < 128 << 10, "{} bytes", text.len());
    let m = scrape(&ex, Format::OpenMetrics);
    let fam = m.family("n2n_supernode_edges");
    assert_eq!(fam.samples.len(), MAX_COMMUNITY_SERIES);
    assert_eq!(
        m.value("n2n_supernode_edges", &[("community", "c00000")]),
        3.0
    );
    // The largest communities are kept: every one with edges is listed.
    let with_edges = (0..MAX_COMMUNITY_SERIES + 500)
        .filter(|i| i.is_multiple_of(7))
        .count();
    assert_eq!(
        fam.samples.iter().filter(|s| s.value > 0.0).count(),
        with_edges
    );
    assert_eq!(
        m.value("n2n_supernode_communities", &[]),
        (MAX_COMMUNITY_SERIES + 501) as f64
    );
}

#[test]
fn metric_names_are_exactly_what_scrapes_show() {
    let mut seen = HashSet::new();
    let edge = EdgeExporter::new(Provider::fixed(samples::edge(1)));
    let sn = SupernodeExporter::new(Provider::fixed(samples::supernode(1)));
    for f in [Format::OpenMetrics, Format::Prometheus] {
        seen.extend(scrape(&edge, f).sample_names());
        seen.extend(scrape(&sn, f).sample_names());
    }
    let declared: HashSet<String> = METRIC_NAMES.iter().map(|s| (*s).to_string()).collect();
    assert_eq!(seen, declared);
}

#[test]
fn status_page_shows_and_escapes() {
    let s = samples::supernode(1);
    let page = html::status_page(&s);
    for needle in [
        "<!DOCTYPE html>",
        "02:AB:CD:00:00:01",
        "02:AB:CD:00:00:03",
        "10.200.0.1/24",
        "10.200.0.2/24",
        "198.18.0.1:50001",
        "alpha",
        "1 s ago",
        "0A:00:00:00:00:FE",
        "198.18.1.254:7654",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "ev&quot;il\\n\u{fffd}}{&lt;b&gt;",
        "no edges registered",
        "90 % P2P", // edge 2: 180 p2p, 20 relayed
        "unknown",  // edge 1: P2P volume unknown
        "2023-11-14 22:13:20 UTC",
    ] {
        assert!(page.contains(needle), "{needle:?} missing:\n{page}");
    }
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<b>"), "{page}");
    assert!(
        !page.contains("src=") && !page.contains("href=\"http"),
        "no external assets"
    );
    assert_eq!(page.matches("<tr>").count(), page.matches("</tr>").count());
    assert_eq!(
        page.matches("<table").count(),
        page.matches("</table>").count()
    );
}

#[test]
fn status_page_is_bounded() {
    let mut s = samples::supernode(1);
    // 16-byte descriptions of quotes: the worst case for escaping (6 bytes each).
    let worst = "\"".repeat(16);
    s.communities = (0..html::MAX_COMMUNITIES_LISTED + 100)
        .map(|i| CommunityView {
            name: "'".repeat(19) + &i.to_string(),
            edges: vec![samples::edge_view(200, &worst); 8],
        })
        .collect();
    let page = html::status_page(&s);
    let rows = page.matches("<tr><td><code>02:AB").count();
    assert_eq!(rows, html::MAX_EDGES_LISTED);
    let hidden_edges = (html::MAX_COMMUNITIES_LISTED + 100) * 8 - html::MAX_EDGES_LISTED;
    assert!(
        page.contains(&format!("not shown: 100 communities, {hidden_edges} edges")),
        "{}",
        &page[page.len() - 600..]
    );
    println!("worst-case status page: {} bytes", page.len());
    assert!(page.len() < 3 << 19, "page {} bytes", page.len()); // < 1.5 MiB
}

#[test]
fn edge_page() {
    let page = html::edge_page(&samples::edge(1));
    for needle in [
        "registered to <code>198.18.0.254:7654</code>",
        "lab&lt;&amp;&gt;",
        "10 / 3 packets",
    ] {
        assert!(page.contains(needle), "{needle:?} missing:\n{page}");
    }
    let mut down = samples::edge(1);
    down.supernode_up = false;
    assert!(html::edge_page(&down).contains("not registered"));
}

#[test]
fn the_parser_refuses_what_it_should() {
    let om = Dialect::OpenMetrics;
    let ok = "# HELP a_x h\n# TYPE a_x counter\na_x_total{l=\"v\\\"\"} 1\n# EOF\n";
    assert!(parse(ok, om).is_ok());
    for bad in [
        "# HELP a_x h\n# TYPE a_x counter\na_x{l=\"v\"} 1\n# EOF\n", // counter without _total
        "# HELP a_x h\n# TYPE a_x counter\na_x_total 1\n",           // no EOF
        "# HELP a h\n# TYPE a gauge\na 1\na 2\n# EOF\n",             // duplicate series
        "# HELP a h\n# TYPE a gauge\na{l=\"\\x\"} 1\n# EOF\n",       // bad escape
        "# HELP a h\n# TYPE a gauge\na{l=\"v} 1\n# EOF\n",           // unterminated
        "# TYPE a gauge\na 1\n# EOF\n",                              // no HELP
        "# HELP a h\n# TYPE a info\na 1\n# EOF\n",                   // info sample name
        "# HELP a h\n# TYPE a gauge\na one\n# EOF\n",                // value
    ] {
        assert!(parse(bad, om).is_err(), "accepted {bad:?}");
    }
    let prom = Dialect::Prometheus;
    assert!(
        parse(
            "# HELP a_total h\n# TYPE a_total counter\na_total 1\n",
            prom
        )
        .is_ok()
    );
    assert!(parse("# HELP a h\n# TYPE a counter\na_total 1\n", prom).is_err());
    assert!(parse("# HELP a h\n# TYPE a info\na 1\n", prom).is_err());
}
