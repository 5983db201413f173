//! Prometheus metrics and the supernode's status page for the n2n daemons.
//!
//! The daemons' drivers copy their counters into plain snapshots ([`EdgeSnapshot`],
//! [`SupernodeSnapshot`]) and [`Publisher::publish`] them (e.g. once a second from the driver
//! loop); an HTTP server on the same tokio runtime renders the latest one on request:
//!
//! ```no_run
//! # async fn driver() -> Result<(), Box<dyn std::error::Error>> {
//! use n2n_metrics::{EdgeExporter, EdgeSnapshot, channel, parse_metrics_addr, serve};
//!
//! let addr = parse_metrics_addr("9645")?; // --metrics 9645 → 127.0.0.1:9645
//! let (publisher, provider) = channel(EdgeSnapshot::default());
//! let server = serve(addr, EdgeExporter::new(provider)).await?;
//! // in the driver loop, on its timer:
//! publisher.publish(EdgeSnapshot { peers_p2p: 2, supernode_up: true, ..Default::default() });
//! # drop(server); Ok(()) }
//! ```
//!
//! Metric families (all counters are running totals set from the snapshot, exposed with
//! `prometheus-client`'s `ConstCounter`, so `rate()` works):
//!
//! | family | type | labels |
//! | --- | --- | --- |
//! | `n2n_edge_build_info` | gauge (1) | `version` |
//! | `n2n_edge_peers` | gauge | `mode` = `p2p` \| `relayed` |
//! | `n2n_edge_supernode_up` | gauge (0/1) | |
//! | `n2n_edge_tx_bytes_total`, `n2n_edge_rx_bytes_total` | counter | `path` = `p2p` \| `supernode` |
//! | `n2n_edge_tx_packets_total`, `n2n_edge_rx_packets_total` | counter | `path` |
//! | `n2n_edge_drops_total` | counter | `reason` |
//! | `n2n_supernode_build_info` | gauge (1) | `version` |
//! | `n2n_supernode_edges` | gauge | `community` (at most [`MAX_COMMUNITY_SERIES`]) |
//! | `n2n_supernode_communities` | gauge | |
//! | `n2n_supernode_federation_supernodes` | gauge | |
//! | `n2n_supernode_forwarded_packets_total` | counter | `kind` |
//! | `n2n_supernode_drops_total` | counter | `reason` |
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_virtual_memory_max_bytes`, `process_start_time_seconds`, `process_open_fds`, `process_max_fds`, `process_threads` | as Prometheus' process collector | |
//!
//! [`METRIC_NAMES`] lists every sample name (the dashboard in `dist/monitoring/` is checked
//! against it).

mod addr;
pub mod html;
mod metrics;
mod process;
mod server;
mod snapshot;
pub mod telemetry;

pub use addr::{DEFAULT_METRICS_IP, MetricsAddrError, parse_metrics_addr};
pub use metrics::{
    EdgeExporter, Exporter, Format, MAX_COMMUNITY_SERIES, OPENMETRICS_CONTENT_TYPE,
    SupernodeExporter,
};
pub use process::ProcessCollector;
pub use server::{Limits, MetricsServer, ServeError, serve, serve_with};
pub use snapshot::{
    CommunityView, EdgeSnapshot, EdgeView, PathCounters, Provider, Publisher, SupernodeSnapshot,
    SupernodeView, channel, text_field,
};
pub use telemetry::Telemetry;

/// Every sample name this crate can expose (as they appear in a scrape, `_total` included).
pub const METRIC_NAMES: &[&str] = &[
    "n2n_edge_build_info",
    "n2n_edge_peers",
    "n2n_edge_supernode_up",
    "n2n_edge_tx_bytes_total",
    "n2n_edge_rx_bytes_total",
    "n2n_edge_tx_packets_total",
    "n2n_edge_rx_packets_total",
    "n2n_edge_drops_total",
    "n2n_supernode_build_info",
    "n2n_supernode_edges",
    "n2n_supernode_communities",
    "n2n_supernode_federation_supernodes",
    "n2n_supernode_forwarded_packets_total",
    "n2n_supernode_drops_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_start_time_seconds",
    "process_open_fds",
    "process_max_fds",
    "process_threads",
];
