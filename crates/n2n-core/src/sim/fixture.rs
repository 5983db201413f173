//! Set-ups that the core's tests and the benches share: one supernode at
//! [`SN`] serving community `rocks`, edges numbered `i` (MAC
//! `02:00:00:00:00:i`, address `10.0.0.i/24`, bound to
//! `198.51.100.i:5000i`), and frames between them.

use std::net::Ipv4Addr;
use std::time::Duration;

use n2n_proto::auth::{PrivateKey, PublicKey, UserKeys};
use n2n_proto::types::{Community, CompressionId, DevAddr, Mac, TransformId};

use super::{NodeId, Sim, ipv4_frame};
use crate::edge::{EdgeConfig, P2pMode, TapAddrMode};
use crate::supernode::SupernodeConfig;
use crate::supernode::community_list::CommunityList;

/// The supernode's address.
pub const SN: &str = "203.0.113.1:7654";

/// Edge `i`'s MAC address.
pub fn mac(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 0, i]
}

/// Edge `i`'s TAP address.
pub fn ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 0, 0, i)
}

/// An Ethernet/IPv4/UDP frame of exactly `size` bytes from edge `s` to
/// (`d`, `dst_ip`), UDP source port `port` (one inner flow per port).
///
/// # Panics
/// When `size` is below 42 bytes (the headers).
pub fn frame(s: u8, d: [u8; 6], dst_ip: Ipv4Addr, size: usize, port: u16) -> Vec<u8> {
    let payload: Vec<u8> = (0..size - 42).map(|i| (i * 7 + i / 13) as u8).collect();
    let mut f = ipv4_frame(mac(s), d, ip(s), dst_ip, &payload);
    f[34..36].copy_from_slice(&port.to_be_bytes());
    f
}

/// Edge `i` of community `rocks` at [`SN`] with transform `t` (no key for
/// null), compression `comp`, `-H` when `he`, P2P enabled.
pub fn edge_config(i: u8, t: TransformId, key: &[u8], he: bool, comp: CompressionId) -> EdgeConfig {
    #[allow(clippy::expect_used)]
    let community = Community::new("rocks").expect("a valid community name");
    let mut c = EdgeConfig::new(community, vec![SN.to_owned()]);
    c.mac = Mac(mac(i));
    c.tap_addr = TapAddrMode::Static(DevAddr::new(ip(i), 24));
    c.transform = t;
    c.key = if t == TransformId::Null {
        Vec::new()
    } else {
        key.to_vec()
    };
    c.compression = comp;
    c.header_encryption = he;
    c.p2p = P2pMode::Enabled;
    c
}

/// `c` logging in as `user` with `password` (`-I`/`-J`, the default
/// federation key `-P`).
pub fn with_user(mut c: EdgeConfig, user: &str, password: &str) -> EdgeConfig {
    c.desc = user.to_owned();
    c.user_password = Some(UserKeys::new(
        user.as_bytes(),
        password.as_bytes(),
        &PublicKey::default_federation(),
    ));
    c
}

/// Adds the supernode at [`SN`] serving `rocks`, to everyone when `users`
/// is empty, else to those users (name, password) only.
///
/// # Panics
/// Never for these fixed names.
pub fn add_supernode(sim: &mut Sim, users: &[(&str, &str)]) -> NodeId {
    let mut list = String::from("rocks\n");
    for (u, p) in users {
        let k = PrivateKey::user(u.as_bytes(), p.as_bytes()).public_key();
        list.push_str(&format!("* {u} {k}\n"));
    }
    let mut sc = SupernodeConfig::new(Mac([2, 0, 0, 0, 0, 0xfe]));
    #[allow(clippy::expect_used)]
    {
        sc.communities = Some(CommunityList::parse(&list).expect("a valid community list"));
        sim.add_supernode("sn", SN.parse().expect("a valid address"), sc)
    }
}

/// Adds edge `c` under `name`, bound to `198.51.100.i:5000i` for its MAC's
/// last byte `i`.
///
/// # Panics
/// When `c` is refused.
pub fn add_edge(sim: &mut Sim, name: &str, c: EdgeConfig) -> NodeId {
    let i = c.mac.0[5];
    #[allow(clippy::expect_used)]
    let addr = format!("198.51.100.{i}:5000{i}")
        .parse()
        .expect("a valid address");
    sim.add_edge(name, addr, None, c)
}

/// Runs until every one of `edges` is registered.
///
/// # Panics
/// When that takes more than 5 simulated seconds.
pub fn register(sim: &mut Sim, edges: &[NodeId]) {
    let ok = sim.run_until_cond(Duration::from_secs(5), |s| {
        edges.iter().all(|&x| s.edge(x).is_registered())
    });
    assert!(ok, "edges {edges:?} did not register");
}

/// The supernode at [`SN`] and edges 1 (`a`) and 2 (`b`) from `mk`,
/// registered and direct P2P peers of each other; their TAP output is
/// taken.
///
/// # Panics
/// When they do not register or do not meet directly.
pub fn p2p_pair(seed: u64, mk: impl Fn(u8) -> EdgeConfig) -> (Sim, NodeId, NodeId) {
    let mut sim = Sim::new(seed);
    add_supernode(&mut sim, &[]);
    let a = add_edge(&mut sim, "a", mk(1));
    let b = add_edge(&mut sim, "b", mk(2));
    register(&mut sim, &[a, b]);
    // Hole punching: traffic both ways until each knows the other directly.
    let (fa, fb) = (
        frame(1, mac(2), ip(2), 100, 4001),
        frame(2, mac(1), ip(1), 100, 4002),
    );
    for _ in 0..5 {
        sim.send_frame(a, &fa);
        sim.send_frame(b, &fb);
        sim.run_for(Duration::from_millis(200));
    }
    for x in [a, b] {
        let direct = sim.edge(x).peers().iter().any(|p| p.direct);
        assert!(direct, "{}: no direct peer", sim.node(x).name);
        sim.take_tap(x);
    }
    (sim, a, b)
}
