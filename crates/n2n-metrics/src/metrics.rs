//! Metric families rendered from snapshots with `prometheus-client`.
//!
//! The counters are [`ConstCounter`]s built from the snapshot's running totals at scrape
//! time (a [`Collector`]), so a value the driver copies from the core is exposed as a real
//! Prometheus counter (`# TYPE … counter`, `_total` suffix) without replaying increments.

use std::collections::HashMap;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::html;
use crate::process::ProcessCollector;
use crate::snapshot::{EdgeSnapshot, Provider, SupernodeSnapshot};

/// At most this many `n2n_supernode_edges{community}` series (the communities with the most
/// edges, then by name). Without `-c` a supernode accepts any community name, so the label's
/// cardinality is attacker-controlled; `n2n_supernode_communities` still counts all.
pub const MAX_COMMUNITY_SERIES: usize = 1000;

/// The two text formats a scraper may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 text (what Prometheus asks for first).
    OpenMetrics,
    /// Prometheus text format 0.0.4 (`text/plain`; also what a browser or `curl` gets).
    Prometheus,
}

/// `Content-Type` of OpenMetrics text 1.0.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

impl Format {
    /// Picks the format from a request's `Accept` header: OpenMetrics when it is accepted with
    /// at least the weight of `text/plain` / `*/*`, else the Prometheus text format.
    #[must_use]
    pub fn negotiate(accept: Option<&str>) -> Self {
        let mut open = -1.0_f32;
        let mut plain = -1.0_f32;
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match media.as_str() {
                "application/openmetrics-text" => open = open.max(q),
                "text/plain" | "text/*" | "*/*" => plain = plain.max(q),
                _ => {}
            }
        }
        if open > 0.0 && open >= plain {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    /// The response's `Content-Type`.
    #[must_use]
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
        }
    }
}

/// What the HTTP server serves: the metrics text and the page at `/`.
pub trait Exporter: Send + Sync + 'static {
    /// The exposition in `format`.
    fn metrics(&self, format: Format) -> String;
    /// The HTML page served at `/`.
    fn index_html(&self) -> String;
}

fn encode(registry: &Registry, format: Format) -> String {
    let mut out = String::new();
    let r = match format {
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, registry),
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, registry)
        }
    };
    // Writing into a String cannot fail; our collectors only fail when the writer does.
    debug_assert!(r.is_ok());
    out
}

fn registry_with(collector: Box<dyn Collector>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(collector);
    registry.register_collector(Box::new(ProcessCollector));
    registry
}

/// An edge's metrics (`n2n_edge_*`, `process_*`) and its small page.
#[derive(Debug)]
pub struct EdgeExporter {
    registry: Registry,
    provider: Provider<EdgeSnapshot>,
}

impl EdgeExporter {
    /// Renders from whatever `provider` hands out at request time.
    #[must_use]
    pub fn new(provider: Provider<EdgeSnapshot>) -> Self {
        Self {
            registry: registry_with(Box::new(EdgeCollector(provider.clone()))),
            provider,
        }
    }
}

impl Exporter for EdgeExporter {
    fn metrics(&self, format: Format) -> String {
        encode(&self.registry, format)
    }
    fn index_html(&self) -> String {
        html::edge_page(&self.provider.latest())
    }
}

/// A supernode's metrics (`n2n_supernode_*`, `process_*`) and its status page.
#[derive(Debug)]
pub struct SupernodeExporter {
    registry: Registry,
    provider: Provider<SupernodeSnapshot>,
}

impl SupernodeExporter {
    /// Renders from whatever `provider` hands out at request time.
    #[must_use]
    pub fn new(provider: Provider<SupernodeSnapshot>) -> Self {
        Self {
            registry: registry_with(Box::new(SupernodeCollector(provider.clone()))),
            provider,
        }
    }
}

impl Exporter for SupernodeExporter {
    fn metrics(&self, format: Format) -> String {
        encode(&self.registry, format)
    }
    fn index_html(&self) -> String {
        html::status_page(&self.provider.latest())
    }
}

/// Rows with equal labels summed (first-seen order), so a sloppy snapshot can never produce
/// two series with the same labels (invalid exposition).
fn merged<'a>(rows: impl IntoIterator<Item = (&'a str, u64)>) -> Vec<(&'a str, u64)> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut out: Vec<(&str, u64)> = Vec::new();
    for (k, v) in rows {
        match index.get(k).and_then(|&i| out.get_mut(i)) {
            Some(row) => row.1 = row.1.saturating_add(v),
            None => {
                index.insert(k, out.len());
                out.push((k, v));
            }
        }
    }
    out
}

/// One family with one label, `rows` = (label value, value).
fn family(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    ty: MetricType,
    label: &str,
    rows: &[(&str, u64)],
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit, ty)?;
    for &(value, n) in rows {
        let labels = [(label, value)];
        let e = m.encode_family(&labels)?;
        match ty {
            MetricType::Counter => ConstCounter::new(n).encode(e)?,
            _ => ConstGauge::new(n).encode(e)?,
        }
    }
    Ok(())
}

fn gauge(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> fmt::Result {
    ConstGauge::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// `*_build_info{version} 1`: a gauge (as in Go's `go_build_info`), valid in both formats.
fn build_info(enc: &mut DescriptorEncoder, name: &str, what: &str, version: &str) -> fmt::Result {
    let help = format!("{what} build information (value is always 1)");
    family(
        enc,
        name,
        &help,
        None,
        MetricType::Gauge,
        "version",
        &[(version, 1)],
    )
}

#[derive(Debug)]
struct EdgeCollector(Provider<EdgeSnapshot>);

impl Collector for EdgeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let s = self.0.latest();
        let (p2p, sn) = (&s.p2p, &s.via_supernode);
        build_info(&mut enc, "n2n_edge_build_info", "n2n edge", &s.version)?;
        family(
            &mut enc,
            "n2n_edge_peers",
            "Known peers by how they are reached (p2p = direct, relayed = via the supernode)",
            None,
            MetricType::Gauge,
            "mode",
            &[("p2p", s.peers_p2p), ("relayed", s.peers_relayed)],
        )?;
        gauge(
            &mut enc,
            "n2n_edge_supernode_up",
            "1 while the edge is registered to a supernode, else 0",
            u64::from(s.supernode_up),
        )?;
        let paths = |f: fn(&crate::PathCounters) -> u64| [("p2p", f(p2p)), ("supernode", f(sn))];
        type Row<'a> = (&'a str, &'a str, Option<Unit>, [(&'a str, u64); 2]);
        let counters: [Row; 4] = [
            (
                "n2n_edge_tx",
                "Bytes sent in PACKETs, by path",
                Some(Unit::Bytes),
                paths(|c| c.tx_bytes),
            ),
            (
                "n2n_edge_rx",
                "Bytes received in PACKETs, by path",
                Some(Unit::Bytes),
                paths(|c| c.rx_bytes),
            ),
            (
                "n2n_edge_tx_packets",
                "PACKETs sent, by path",
                None,
                paths(|c| c.tx_packets),
            ),
            (
                "n2n_edge_rx_packets",
                "PACKETs received, by path",
                None,
                paths(|c| c.rx_packets),
            ),
        ];
        for (name, help, unit, rows) in &counters {
            let ty = MetricType::Counter;
            family(&mut enc, name, help, unit.as_ref(), ty, "path", rows)?;
        }
        family(
            &mut enc,
            "n2n_edge_drops",
            "Datagrams, frames and messages dropped, by reason",
            None,
            MetricType::Counter,
            "reason",
            &merged(s.drops.iter().copied()),
        )
    }
}

#[derive(Debug)]
struct SupernodeCollector(Provider<SupernodeSnapshot>);

impl Collector for SupernodeCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let s = self.0.latest();
        build_info(
            &mut enc,
            "n2n_supernode_build_info",
            "n2n supernode",
            &s.version,
        )?;
        let mut edges = merged(
            s.communities
                .iter()
                .map(|c| (c.name.as_str(), c.edges.len() as u64)),
        );
        edges.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        edges.truncate(MAX_COMMUNITY_SERIES);
        family(
            &mut enc,
            "n2n_supernode_edges",
            "Registered edges, by community (at most 1000 series, the largest communities)",
            None,
            MetricType::Gauge,
            "community",
            &edges,
        )?;
        gauge(
            &mut enc,
            "n2n_supernode_communities",
            "Communities (without the federation)",
            s.communities.len() as u64,
        )?;
        gauge(
            &mut enc,
            "n2n_supernode_federation_supernodes",
            "Other supernodes of the federation",
            s.federation.len() as u64,
        )?;
        family(
            &mut enc,
            "n2n_supernode_forwarded_packets",
            "Packets forwarded, by kind",
            None,
            MetricType::Counter,
            "kind",
            &merged(s.forwarded.iter().copied()),
        )?;
        family(
            &mut enc,
            "n2n_supernode_drops",
            "Datagrams dropped, by reason",
            None,
            MetricType::Counter,
            "reason",
            &merged(s.drops.iter().copied()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        let prom = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
                    application/openmetrics-text;version=0.0.1;q=0.4,\
                    text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
                    text/plain;version=0.0.4;q=0.2,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert_eq!(Format::negotiate(Some(browser)), Format::Prometheus);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        let only_text = "text/plain;version=0.0.4";
        assert_eq!(Format::negotiate(Some(only_text)), Format::Prometheus);
        let refused = "application/openmetrics-text;q=0, text/plain";
        assert_eq!(Format::negotiate(Some(refused)), Format::Prometheus);
        let om = "Application/OpenMetrics-Text";
        assert_eq!(Format::negotiate(Some(om)), Format::OpenMetrics);
    }

    #[test]
    fn merged_sums_duplicates_in_first_seen_order() {
        let rows = [("b", 1), ("a", 2), ("b", 3), ("c", u64::MAX), ("c", 1)];
        assert_eq!(merged(rows), vec![("b", 4), ("a", 2), ("c", u64::MAX)]);
    }
}
