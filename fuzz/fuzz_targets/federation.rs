//! Federation traffic on arbitrary datagrams: a supernode federated with
//! one `-l` member, fed datagrams that come from that member (so they pass
//! the FROM_SUPERNODE source check) and from strangers, both as given and
//! header-encrypted under the federation keys (so the federation handlers,
//! ACK supernode lists included, see the decoded bytes). Input: up to 8
//! datagrams separated by `0xff 0x00`; byte 0 of each picks sender and
//! encryption. Invariants: no panic; the federation table stays within its
//! cap; every queued datagram fits a datagram.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use n2n_core::Now;
use n2n_core::supernode::{FederationPeer, Supernode, SupernodeConfig};
use n2n_proto::he::{self, CommunityHe, HeKeyKind, HeKeys, StampGenerator};
use n2n_proto::types::Mac;

const MAX: usize = 4;

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let mut now = Now::new(t0, 1_700_000_000_000_000);
    let member: SocketAddr = "198.18.0.253:7654".parse().expect("address");
    let stranger: SocketAddr = "198.18.0.9:7654".parse().expect("address");
    let mut cfg = SupernodeConfig::new(Mac([2, 0, 0, 0, 0, 0xfe]));
    cfg.max_federation = MAX;
    cfg.supernodes = vec![FederationPeer {
        name: member.to_string(),
        addr: Some(member),
    }];
    let fed = CommunityHe::with_static_keys(
        *cfg.federation.field(),
        HeKeys::from_community_field(&he::DEFAULT_FEDERATION_FIELD),
    );
    let mut sn = Supernode::new(cfg, [7; 32], now);
    sn.handle_timeout(now);
    let mut stamps = StampGenerator::new();
    for chunk in data.split(|&b| b == 0xff).take(8) {
        let Some((&sel, body)) = chunk.split_first() else {
            continue;
        };
        let from = if sel & 1 == 0 { member } else { stranger };
        let mut d = body.to_vec();
        if sel & 2 != 0 && d.len() >= 24 {
            let stamp = stamps.next(now.unix_secs(), 0);
            let len = d.len();
            if fed
                .encrypt(&mut d, len, stamp, [1, 2, 3, 4], HeKeyKind::Static)
                .is_err()
            {
                continue;
            }
        }
        sn.handle_datagram(now, from, &mut d);
        if sel & 4 != 0 {
            now = now.advance(Duration::from_secs(11));
            sn.handle_timeout(now);
        }
        while let Some(t) = sn.poll_transmit() {
            assert!(t.len() <= n2n_core::MAX_DATAGRAM);
            sn.recycle_transmit(t);
        }
        while sn.poll_event().is_some() {}
        assert!(sn.federation().len() <= MAX);
    }
});
