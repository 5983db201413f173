//! The real supernode under a REGISTER_SUPER flood on loopback (issue 13
//! item 4): 2 000 registered edges, then 100 000 new MACs and 2 000 new
//! community names. RSS stays under 64 MiB, the excess is counted as named
//! drops, two registered test clients keep being relayed. The load itself
//! is `n2n_tests::snload` (also the `n2n-sn-scale` benchmark binary).
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_tests::snload::{self, LoadConfig};

const BIN: &str = env!("CARGO_BIN_EXE_supernode");
/// Generous RSS bound (KiB); the 20 000 edges of the cap take ~10 MiB.
const RSS_BOUND_KB: u64 = 64 * 1024;

#[test]
fn registration_flood_is_bounded_and_counted() {
    let cfg = LoadConfig {
        bin: BIN.into(),
        args: ["--max-edges", "20000", "--max-communities", "100"]
            .map(String::from)
            .to_vec(),
        edges: 2_000,
        communities: 20,
        sockets: 8,
        relay_packets: 2_000,
        flood: 100_000,
        flood_communities: 2_000,
    };
    let r = snload::run(&cfg).unwrap();
    println!("{r:#?}");
    assert_eq!(r.registered, 2_000, "{r:?}");
    assert!(
        r.rss_peak_kb < RSS_BOUND_KB,
        "peak RSS {} KiB",
        r.rss_peak_kb
    );
    assert_eq!(
        r.relayed_during_flood, r.relay_checks,
        "clients not relayed: {r:?}"
    );
    // 102 000 registrations for 18 000 free places (a few may be lost on
    // loopback), 2 000 names for 80 free communities.
    assert!(r.drop_count("edge_limit") > 80_000, "{:?}", r.drops);
    assert!(r.drop_count("community_limit") > 1_800, "{:?}", r.drops);
    assert!(r.drop_count("edge_limit") <= 84_000, "{:?}", r.drops);
}
