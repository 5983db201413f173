//! Wire codec benchmarks: PACKET (1400-byte payload) and REGISTER_SUPER
//! decode/encode, PacketView access, and the supernode relay re-encode.
#![allow(clippy::unwrap_used)]
use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use n2n_proto::types::{
    Auth, Community, CompressionId, DevAddr, DevDesc, Mac, PeerSock, TransformId,
};
use n2n_proto::wire::{self, Header, Message, Packet, PacketView, RegisterSuper};

fn packet_bytes(payload: &[u8]) -> (Header, Vec<u8>) {
    let header = Header::new(Community::new("rocks").unwrap());
    let p = Packet {
        src_mac: Mac([2, 0, 0, 0, 0, 1]),
        dst_mac: Mac([2, 0, 0, 0, 0, 2]),
        sock: None,
        compression: CompressionId::None.into(),
        transform: TransformId::Aes.into(),
        payload,
    };
    let mut buf = vec![0u8; p.buffer_len()];
    let n = p.emit(&header, &mut buf).unwrap();
    buf.truncate(n);
    (header, buf)
}

fn register_super() -> (Header, RegisterSuper) {
    let header = Header::new(Community::new("rocks").unwrap());
    let rs = RegisterSuper {
        cookie: 0x8a2f_c879,
        edge_mac: Mac([2, 0, 0, 0, 0, 1]),
        sock: None,
        dev_addr: DevAddr::new(Ipv4Addr::new(10, 200, 0, 1), 24),
        dev_desc: DevDesc::new("e1"),
        auth: Auth::new(1, &[0x3d; 16]).unwrap(),
        key_time: 0,
    };
    (header, rs)
}

fn bench(c: &mut Criterion) {
    let payload = vec![0xa5u8; 1400];
    let (header, pkt) = packet_bytes(&payload);

    let mut g = c.benchmark_group("wire_packet_1400");
    g.throughput(Throughput::Bytes(pkt.len() as u64));
    g.bench_function("decode", |b| {
        b.iter(|| {
            let r = wire::decode(black_box(&pkt));
            black_box(r.map(|(h, m)| (h.ttl, m.msg_type())))
        })
    });
    g.bench_function("packet_view", |b| {
        b.iter(|| {
            let v = PacketView::new_checked(black_box(&pkt[..])).unwrap();
            black_box((
                v.src_mac(),
                v.dst_mac(),
                v.sock(),
                v.transform(),
                v.payload().len(),
            ))
        })
    });
    let msg = Packet {
        src_mac: Mac([2, 0, 0, 0, 0, 1]),
        dst_mac: Mac([2, 0, 0, 0, 0, 2]),
        sock: None,
        compression: CompressionId::None.into(),
        transform: TransformId::Aes.into(),
        payload: &payload,
    };
    let mut out = vec![0u8; 2048];
    g.bench_function("encode", |b| {
        b.iter(|| {
            black_box(wire::encode(
                black_box(&header),
                &Message::Packet(msg),
                &mut out,
            ))
        })
    });
    g.bench_function("emit_header_in_place", |b| {
        b.iter(|| black_box(black_box(&msg).emit_header(&header, &mut out)))
    });
    let sender = PeerSock::v4(Ipv4Addr::new(198, 18, 0, 1), 50001);
    g.bench_function("relay_reencode", |b| {
        b.iter(|| black_box(wire::relay_reencode(black_box(&pkt), sender, 1, &mut out)))
    });
    g.finish();

    let (h, rs) = register_super();
    let mut rs_bytes = vec![0u8; rs.buffer_len()];
    let n = rs.emit(&h, &mut rs_bytes).unwrap();
    rs_bytes.truncate(n);
    let mut g = c.benchmark_group("wire_register_super");
    g.bench_function("decode", |b| {
        b.iter(|| black_box(wire::decode(black_box(&rs_bytes)).is_ok()))
    });
    g.bench_function("encode", |b| {
        b.iter(|| {
            black_box(wire::encode(
                black_box(&h),
                &Message::RegisterSuper(rs),
                &mut out,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
