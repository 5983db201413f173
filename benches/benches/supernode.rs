//! The supernode core's forwarding path: one PACKET in
//! (`handle_datagram`) and every resulting datagram out (`poll_transmit`,
//! read, `recycle_transmit`), for a unicast and for a broadcast to 10
//! edges, plain and header-encrypted, with a 1400-byte payload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use n2n_core::supernode::community_list::CommunityList;
use n2n_core::supernode::{Supernode, SupernodeConfig};
use n2n_core::{MAX_DATAGRAM, Now};
use n2n_proto::he::{CommunityHe, HeKeyKind, StampGenerator};
use n2n_proto::types::{Auth, Community, CompressionId, DevAddr, DevDesc, Mac, TransformId};
use n2n_proto::wire::{self, Header, Message, Packet, RegisterSuper};

const RECEIVERS: u8 = 10;
const PAYLOAD: usize = 1400;
/// 2026-11-25, as the C captures.
const UNIX_US: u64 = 1_795_606_373_000_000;

fn mac(i: u8) -> Mac {
    Mac([0x02, 0, 0, 0, 0, i])
}

fn sock(i: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 40_000 + u16::from(i)))
}

struct Setup {
    sn: Supernode,
    now: Now,
    he: Option<CommunityHe>,
    stamps: StampGenerator,
    community: Community,
}

impl Setup {
    /// A supernode with edge 1 (sender) and edges 2..=11 registered.
    fn new(he: bool) -> Setup {
        let now = Now::new(Instant::now(), UNIX_US);
        let mut cfg = SupernodeConfig::new(Mac([0x02, 0, 0, 0, 0, 0xfe]));
        let community = Community::new("rocks").unwrap();
        if he {
            cfg.communities = Some(CommunityList::parse("rocks\n").unwrap());
            cfg.community_file = Some("community.list".into());
        }
        let mut s = Setup {
            sn: Supernode::new(cfg, [7; 32], now),
            now,
            he: he.then(|| CommunityHe::new(*community.field())),
            stamps: StampGenerator::new(),
            community,
        };
        for i in 1..=RECEIVERS + 1 {
            let reg = Message::RegisterSuper(RegisterSuper {
                cookie: u32::from(i),
                edge_mac: mac(i),
                sock: None,
                dev_addr: DevAddr::new([10, 0, 0, i].into(), 24),
                dev_desc: DevDesc::new(&format!("e{i}")),
                auth: Auth::new(Auth::SCHEME_SIMPLE_ID, &[i; 16]).unwrap(),
                key_time: 0,
            });
            let mut d = s.encode(&reg);
            s.sn.handle_datagram(now, sock(i), &mut d);
            let mut acks = 0;
            while let Some(t) = s.sn.poll_transmit() {
                s.sn.recycle_transmit(t);
                acks += 1;
            }
            assert_eq!(acks, 1, "edge {i} not acknowledged");
        }
        while s.sn.poll_event().is_some() {}
        s
    }

    fn encode(&mut self, m: &Message<'_>) -> Vec<u8> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let n = wire::encode(&Header::new(self.community), m, &mut buf).unwrap();
        buf.truncate(n);
        if let Some(he) = &self.he {
            let h = match m {
                Message::Packet(_) => wire::packet_header_len(None),
                _ => n,
            };
            let stamp = self
                .stamps
                .next(self.now.unix_secs(), (self.now.unix_us % 1_000_000) as u32);
            he.encrypt(&mut buf, h, stamp, [1, 2, 3, 4], HeKeyKind::Dynamic)
                .unwrap();
        }
        buf
    }

    fn packet(&mut self, dst: Mac) -> Vec<u8> {
        let payload: Vec<u8> = (0..PAYLOAD).map(|i| (i * 7) as u8).collect();
        self.encode(&Message::Packet(Packet {
            src_mac: mac(1),
            dst_mac: dst,
            sock: None,
            compression: CompressionId::None.into(),
            transform: TransformId::Null.into(),
            payload: &payload,
        }))
    }
}

fn bench(c: &mut Criterion) {
    for he in [false, true] {
        let mode = if he { "he" } else { "plain" };
        for (label, dst, copies) in [
            ("unicast", mac(2), 1u64),
            ("broadcast_10", Mac::BROADCAST, u64::from(RECEIVERS)),
        ] {
            let mut s = Setup::new(he);
            let template = s.packet(dst);
            let mut work = vec![0u8; MAX_DATAGRAM];
            let len = template.len();
            // Check once that the path does what is measured.
            work[..len].copy_from_slice(&template);
            s.sn.handle_datagram(s.now, sock(1), &mut work[..len]);
            let mut n = 0;
            while let Some(t) = s.sn.poll_transmit() {
                s.sn.recycle_transmit(t);
                n += 1;
            }
            assert_eq!(n, copies, "{mode}/{label}");

            let mut g = c.benchmark_group(format!("supernode/{mode}"));
            g.throughput(Throughput::Elements(1));
            let now = s.now;
            g.bench_function(format!("{label}_{PAYLOAD}"), |b| {
                b.iter(|| {
                    // The datagram is decrypted in place: start from the
                    // template every time (the copy is part of a real
                    // receive too).
                    work[..len].copy_from_slice(&template);
                    s.sn.handle_datagram(now, sock(1), black_box(&mut work[..len]));
                    let mut sent = 0usize;
                    while let Some(t) = s.sn.poll_transmit() {
                        // What a driver does: hand the bytes to the kernel.
                        sent += black_box(t.bytes()).len();
                        s.sn.recycle_transmit(t);
                    }
                    black_box(sent)
                })
            });
            g.finish();
            assert_eq!(
                s.sn.stats().total_drops(),
                0,
                "{mode}/{label}: datagrams dropped during the benchmark"
            );
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
