//! `n2n-sn-scale`: loopback load on the real supernode binary (issue 13
//! items 4 and 5b). Prints the registration rate, RSS, the relay rate with
//! 16 and with N edges registered (same run) and the outcome of a flood of
//! new MACs and of new community names. (`n2n-sn-load` of the supernode
//! crate measures relay throughput and CPU with one socket per edge.)
//!
//! Usage: `cargo run --release -p n2n-tests --bin n2n-sn-scale [EDGES [FLOOD]]`
//! (default 10 000 edges in 100 communities, 100 000-MAC flood plus
//! 100 000 new community names). The release `supernode` is built first
//! (`N2N_BIN_SUPERNODE` overrides).

use n2n_tests::snload::{self, BASELINE_EDGES, LoadConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let edges = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let flood = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let bin = match n2n_tests::find_binary("supernode") {
        Ok(b) => b,
        Err(e) => {
            eprintln!("n2n-sn-scale: {e}");
            std::process::exit(1);
        }
    };
    let cfg = LoadConfig {
        bin,
        args: Vec::new(),
        edges,
        communities: 100,
        sockets: 16,
        relay_packets: 50_000,
        flood,
        flood_communities: flood,
    };
    println!("supernode {} (default caps)", cfg.bin.display());
    let r = match snload::run(&cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("n2n-sn-scale: {e}");
            std::process::exit(1);
        }
    };
    let mib = |kb: u64| kb as f64 / 1024.0;
    println!(
        "RSS at start                    {:8.1} MiB",
        mib(r.rss_start_kb)
    );
    println!(
        "RSS with {BASELINE_EDGES:>6} edges            {:8.1} MiB",
        mib(r.rss_baseline_kb)
    );
    println!(
        "RSS with {:>6} edges            {:8.1} MiB",
        r.registered + 2,
        mib(r.rss_loaded_kb)
    );
    println!(
        "registration rate (new edges)   {:8.0} REGISTER_SUPER/s",
        r.reg_rate
    );
    println!(
        "relay rate, {BASELINE_EDGES:>6} edges          {:8.0} PACKET/s ({} lost)",
        r.relay_rate_baseline, r.relay_lost.0
    );
    println!(
        "relay rate, {:>6} edges          {:8.0} PACKET/s ({} lost)",
        r.registered + 2,
        r.relay_rate_loaded,
        r.relay_lost.1
    );
    println!(
        "flood: {} new MACs + {} new community names",
        cfg.flood, cfg.flood_communities
    );
    println!(
        "flood processing rate           {:8.0} REGISTER_SUPER/s",
        r.flood_rate
    );
    println!(
        "RSS after the flood             {:8.1} MiB (peak {:.1} MiB)",
        mib(r.rss_flood_kb),
        mib(r.rss_peak_kb)
    );
    println!(
        "test clients relayed            {}/{} checks",
        r.relayed_during_flood, r.relay_checks
    );
    for (name, n) in &r.drops {
        println!("drop {name:<26} {n:8}");
    }
}
