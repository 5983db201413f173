//! The supernode status page in a real headless browser: served by `n2n-metrics`' HTTP server
//! from a sample snapshot on 127.0.0.1, loaded by Debian's `chromium`, its rendered DOM and
//! screenshot checked. (The daemons' `--metrics` wiring comes later; then the snapshot comes
//! from a running test network.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};

use n2n_metrics::{
    CommunityView, EdgeView, Provider, SupernodeExporter, SupernodeSnapshot, SupernodeView, serve,
};
use n2n_tests::browser;
use n2n_tests::*;

const NOW: u64 = 1_800_000_000;

fn edge(i: u8, desc: &str, relayed: u64, p2p: Option<u64>) -> EdgeView {
    EdgeView {
        mac: [0x02, 0xab, 0xcd, 0x00, 0x00, i],
        ip4addr: Some((Ipv4Addr::new(10, 200, 0, i), 24)),
        desc: desc.into(),
        sockaddr: SocketAddr::from(([198, 18, 0, i], 50_000 + u16::from(i))),
        last_seen_unix: NOW - 3 * u64::from(i),
        relayed_packets: relayed,
        p2p_packets: p2p,
    }
}

fn snapshot() -> SupernodeSnapshot {
    SupernodeSnapshot {
        federation_name: "*Federation".into(),
        version: "0.1.0".into(),
        now_unix: NOW,
        communities: vec![
            CommunityView {
                name: "cluster-a".into(),
                edges: vec![
                    edge(1, "vmc-a1", 120, Some(880)),
                    edge(2, "vmc-a2", 400, Some(600)),
                    edge(3, "vmc-a3", 77, None),
                ],
            },
            CommunityView {
                name: "<i>mallory</i>".into(),
                edges: vec![edge(
                    9,
                    "<script>document.title='pwned'</script>",
                    5,
                    Some(0),
                )],
            },
        ],
        federation: vec![SupernodeView {
            mac: [0x0a, 0, 0, 0, 0, 0xfe],
            sockaddr: SocketAddr::from(([198, 18, 1, 254], 7654)),
            version: "3.1.1".into(),
            last_seen_unix: NOW - 7,
        }],
        forwarded: vec![("unicast", 602), ("broadcast", 31)],
        drops: vec![("too_short", 2)],
    }
}

#[test]
fn status_page_renders_in_headless_chromium() {
    let name = "browser/status_page";
    if !browser::require_browser(name) {
        return;
    }
    let mut sc = Scenario::new(name);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let local = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = rt
        .block_on(serve(
            local,
            SupernodeExporter::new(Provider::fixed(snapshot())),
        ))
        .unwrap();
    let url = format!("http://{}/", server.local_addr());
    let out = target_dir().join("n2n-e2e").join("status_page");
    let page = browser::capture(&url, &out, (1280, 900)).unwrap();

    // The browser's DOM, after parsing: the edges' MACs and overlay IPs, sockets, the
    // federation, and the hostile values as text, not as elements.
    for needle in [
        "02:AB:CD:00:00:01",
        "02:AB:CD:00:00:02",
        "02:AB:CD:00:00:03",
        "02:AB:CD:00:00:09",
        "10.200.0.1/24",
        "10.200.0.2/24",
        "10.200.0.3/24",
        "198.18.0.2:50002",
        "vmc-a1",
        "88 % P2P",
        "0A:00:00:00:00:FE",
        "198.18.1.254:7654",
        "&lt;script&gt;document.title='pwned'&lt;/script&gt;",
        "&lt;i&gt;mallory&lt;/i&gt;",
    ] {
        let head: String = page.dom.chars().take(4000).collect();
        assert!(
            page.dom.contains(needle),
            "{needle:?} not in the DOM:\n{head}"
        );
    }
    assert!(
        !page.dom.contains("<script"),
        "a script element made it into the DOM"
    );
    assert!(
        !page.dom.contains("<i>"),
        "markup from a community name was parsed"
    );
    assert!(page.dom.contains("<title>n2n supernode status</title>"));

    let png = browser::png_stats(&page.screenshot).unwrap();
    assert_eq!((png.width, png.height), (1280, 900), "{png:?}");
    assert!(png.is_nontrivial(), "blank-looking screenshot: {png:?}");
    sc.metric("png_bytes", png.bytes)
        .metric("png_colors", png.colors)
        .metric(
            "png_foreground_pct",
            format!("{:.1}", png.foreground * 100.0),
        );
    loud(&format!(
        "status page screenshot: {} ({png:?})",
        page.screenshot.display()
    ));
    drop(server);
}
