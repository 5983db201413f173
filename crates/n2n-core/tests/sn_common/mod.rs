//! Helpers shared by the supernode tests: a simulated clock, message
//! builders and transmit draining.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use n2n_core::supernode::{
    DropReason, Supernode, SupernodeConfig, SupernodeEvent, community_list::CommunityList,
};
use n2n_core::{MAX_DATAGRAM, Now};
use n2n_proto::he::{CommunityHe, HeKeyKind, StampGenerator};
use n2n_proto::types::{
    Auth, Community, CompressionId, DevAddr, DevDesc, Mac, PeerSock, TransformId,
};
use n2n_proto::wire::{
    Header, Message, Packet, QueryPeer, Register, RegisterSuper, UnregisterSuper,
};

pub const SN_MAC: Mac = Mac([0x02, 0, 0, 0, 0, 0xfe]);
/// 2026-11-25, within the range of the C captures.
pub const BASE_UNIX_US: u64 = 1_795_606_373_000_000;

pub fn mac(last: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, last])
}

pub fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub fn comm(name: &str) -> Community {
    Community::new(name).unwrap()
}

/// A supernode plus a simulated clock.
pub struct Sim {
    pub sn: Supernode,
    pub t0: Instant,
    pub now: Now,
}

impl Sim {
    pub fn new(cfg: SupernodeConfig) -> Self {
        let t0 = Instant::now();
        let now = Now::new(t0, BASE_UNIX_US);
        Self {
            sn: Supernode::new(cfg, [7; 32], now),
            t0,
            now,
        }
    }

    pub fn open() -> Self {
        Self::new(SupernodeConfig::new(SN_MAC))
    }

    pub fn with_list(text: &str) -> Self {
        let mut cfg = SupernodeConfig::new(SN_MAC);
        cfg.communities = Some(CommunityList::parse(text).unwrap());
        cfg.community_file = Some("community.list".into());
        Self::new(cfg)
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.advance(d);
    }

    /// Feed one datagram, return everything queued.
    pub fn feed(&mut self, from: SocketAddr, datagram: &[u8]) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut d = datagram.to_vec();
        self.sn.handle_datagram(self.now, from, &mut d);
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(t) = self.sn.poll_transmit() {
            out.push((t.dst, t.bytes().to_vec()));
            self.sn.recycle_transmit(t);
        }
        out
    }

    pub fn events(&mut self) -> Vec<SupernodeEvent> {
        std::iter::from_fn(|| self.sn.poll_event()).collect()
    }

    pub fn drops(&self, r: DropReason) -> u64 {
        self.sn.stats().drop_count(r)
    }

    /// Register an edge (plain), return the single reply.
    pub fn register(&mut self, e: &TestEdge) -> (SocketAddr, Vec<u8>) {
        let out = self.feed(e.sock, &e.reg_super(0x1234_5678));
        assert_eq!(out.len(), 1, "one reply to REGISTER_SUPER");
        out.into_iter().next().unwrap()
    }
}

/// An edge as the tests see it.
#[derive(Clone)]
pub struct TestEdge {
    pub community: Community,
    pub mac: Mac,
    pub sock: SocketAddr,
    pub dev_addr: DevAddr,
    pub desc: DevDesc,
    pub token: [u8; 16],
    pub preferred: Option<PeerSock>,
}

impl TestEdge {
    pub fn new(community: &str, last: u8, sock_s: &str, ip: [u8; 4]) -> Self {
        Self {
            community: comm(community),
            mac: mac(last),
            sock: sock(sock_s),
            dev_addr: DevAddr::new(ip.into(), 24),
            desc: DevDesc::new(&format!("e{last}")),
            token: [last; 16],
            preferred: None,
        }
    }

    pub fn auth(&self) -> Auth {
        Auth::new(Auth::SCHEME_SIMPLE_ID, &self.token).unwrap()
    }

    pub fn reg_super_msg(&self, cookie: u32) -> RegisterSuper {
        RegisterSuper {
            cookie,
            edge_mac: self.mac,
            sock: self.preferred,
            dev_addr: self.dev_addr,
            dev_desc: self.desc,
            auth: self.auth(),
            key_time: 0,
        }
    }

    pub fn reg_super(&self, cookie: u32) -> Vec<u8> {
        encode(
            &Header::new(self.community),
            &Message::RegisterSuper(self.reg_super_msg(cookie)),
        )
    }

    pub fn unreg(&self) -> Vec<u8> {
        encode(
            &Header::new(self.community),
            &Message::UnregisterSuper(UnregisterSuper {
                auth: self.auth(),
                src_mac: self.mac,
            }),
        )
    }

    pub fn packet(&self, dst: Mac, payload: &[u8]) -> Vec<u8> {
        encode(
            &Header::new(self.community),
            &Message::Packet(Packet {
                src_mac: self.mac,
                dst_mac: dst,
                sock: None,
                compression: CompressionId::None.into(),
                transform: TransformId::Null.into(),
                payload,
            }),
        )
    }

    pub fn register_msg(&self, dst: Mac) -> Vec<u8> {
        encode(
            &Header::new(self.community),
            &Message::Register(Register {
                cookie: 0x1000,
                src_mac: self.mac,
                dst_mac: dst,
                sock: None,
                dev_addr: self.dev_addr,
                dev_desc: self.desc,
            }),
        )
    }

    pub fn query(&self, target: Mac) -> Vec<u8> {
        encode(
            &Header::new(self.community),
            &Message::QueryPeer(QueryPeer {
                src_mac: self.mac,
                target_mac: target,
                aflags: 0,
            }),
        )
    }
}

pub fn encode(h: &Header, m: &Message<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let n = n2n_proto::wire::encode(h, m, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// Header-encrypt a plain message as an edge would (H = whole message,
/// or 38 for a PACKET).
pub fn he_encrypt(
    keys: &CommunityHe,
    stamps: &mut StampGenerator,
    now: Now,
    plain: &[u8],
) -> Vec<u8> {
    let mut b = plain.to_vec();
    let h = if plain[3] & 0x1f == 3 { 38 } else { b.len() };
    let stamp = stamps.next(now.unix_secs(), (now.unix_us % 1_000_000) as u32);
    keys.encrypt(&mut b, h, stamp, [1, 2, 3, 4], HeKeyKind::Dynamic)
        .unwrap();
    b
}
