//! The pcap reader: formats, link types, skipped records, errors, and
//! hostile input (every truncation and random corruption of a real capture).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;

use n2n_proto::pcap::{PcapError, PcapReader, SkipCounts};

// ---- a tiny pcap writer -------------------------------------------------

#[derive(Clone, Copy)]
struct Fmt {
    big_endian: bool,
    nanos: bool,
}

fn u32b(f: Fmt, v: u32) -> [u8; 4] {
    if f.big_endian {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

fn u16b(f: Fmt, v: u16) -> [u8; 2] {
    if f.big_endian {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// Records: (ts_sec, ts_frac, captured bytes, original length).
fn pcap(f: Fmt, link: u32, recs: &[(u32, u32, Vec<u8>, usize)]) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend(u32b(f, if f.nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    o.extend(u16b(f, 2));
    o.extend(u16b(f, 4));
    o.extend(u32b(f, 0));
    o.extend(u32b(f, 0));
    o.extend(u32b(f, 65535));
    o.extend(u32b(f, link));
    for (s, frac, data, orig) in recs {
        o.extend(u32b(f, *s));
        o.extend(u32b(f, *frac));
        o.extend(u32b(f, data.len() as u32));
        o.extend(u32b(f, *orig as u32));
        o.extend(data);
    }
    o
}

fn udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut o = Vec::new();
    o.extend(sp.to_be_bytes());
    o.extend(dp.to_be_bytes());
    o.extend(((8 + payload.len()) as u16).to_be_bytes());
    o.extend([0, 0]);
    o.extend(payload);
    o
}

fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut o = vec![0x45, 0];
    o.extend(((20 + payload.len()) as u16).to_be_bytes());
    o.extend([0x12, 0x34]);
    o.extend(frag.to_be_bytes());
    o.extend([64, proto, 0, 0]);
    o.extend(src);
    o.extend(dst);
    o.extend(payload);
    o
}

fn ipv6(src: [u8; 16], dst: [u8; 16], next: u8, payload: &[u8]) -> Vec<u8> {
    let mut o = vec![0x60, 0, 0, 0];
    o.extend((payload.len() as u16).to_be_bytes());
    o.extend([next, 64]);
    o.extend(src);
    o.extend(dst);
    o.extend(payload);
    o
}

fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut o = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    o.extend(ethertype.to_be_bytes());
    o.extend(payload);
    o
}

fn sll(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut o = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
    o.extend(proto.to_be_bytes());
    o.extend(payload);
    o
}

fn sll2(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut o = proto.to_be_bytes().to_vec();
    o.extend([0, 0, 0, 0, 0, 3, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
    o.extend(payload);
    o
}

const A: [u8; 4] = [198, 18, 0, 1];
const B: [u8; 4] = [198, 18, 0, 254];
const A6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

type Owned = (u32, u32, SocketAddr, SocketAddr, Vec<u8>);

fn collect(file: &[u8]) -> (Vec<Owned>, SkipCounts) {
    let mut r = PcapReader::new(file).unwrap();
    let v = (&mut r)
        .map(|d| {
            let d = d.unwrap();
            (d.ts_sec, d.ts_usec, d.src, d.dst, d.payload.to_vec())
        })
        .collect();
    (v, r.skipped())
}

#[test]
fn byte_orders_time_units_and_link_types() {
    let p4 = ipv4(A, B, 17, 0, &udp(50001, 7654, b"hello n2n"));
    let p6 = ipv6(A6, B6, 17, &udp(50002, 7654, b"six"));
    let links: Vec<(u32, Vec<u8>, Vec<u8>)> = vec![
        (1, eth(0x0800, &p4), eth(0x86dd, &p6)),
        (113, sll(0x0800, &p4), sll(0x86dd, &p6)),
        (276, sll2(0x0800, &p4), sll2(0x86dd, &p6)),
        (101, p4.clone(), p6.clone()),
        (
            0,
            [&[2u8, 0, 0, 0][..], &p4].concat(),
            [&[30u8, 0, 0, 0][..], &p6].concat(),
        ),
        (
            228,
            p4.clone(),
            ipv4(A, B, 17, 0, &udp(50002, 7654, b"six")),
        ),
        // 802.1Q tag
        (
            1,
            eth(0x8100, &[&[0, 5, 0x08, 0x00][..], &p4].concat()),
            eth(0x86dd, &p6),
        ),
    ];
    for (link, f4, f6) in links {
        for (big_endian, nanos) in [(false, false), (true, false), (false, true), (true, true)] {
            let fmt = Fmt { big_endian, nanos };
            let frac = if nanos { 123_456_789 } else { 123_456 };
            let file = pcap(
                fmt,
                link,
                &[
                    (1_700_000_000, frac, f4.clone(), f4.len()),
                    (1_700_000_001, 0, f6.clone(), f6.len()),
                ],
            );
            assert_eq!(PcapReader::new(&file).unwrap().link_type(), link);
            assert_eq!(PcapReader::new(&file).unwrap().is_nanosecond(), nanos);
            let (v, skipped) = collect(&file);
            assert_eq!(skipped, SkipCounts::default(), "link {link}");
            assert_eq!(v.len(), 2, "link {link}");
            assert_eq!(
                v[0],
                (
                    1_700_000_000,
                    123_456,
                    sa("198.18.0.1:50001"),
                    sa("198.18.0.254:7654"),
                    b"hello n2n".to_vec()
                )
            );
            assert_eq!(v[1].0, 1_700_000_001);
            assert_eq!(v[1].4, b"six".to_vec());
            if link != 228 {
                assert_eq!(v[1].2, sa("[2001:db8::1]:50002"));
                assert_eq!(v[1].3, sa("[2001:db8::2]:7654"));
            }
        }
    }
}

#[test]
fn skipped_records_are_counted() {
    let fmt = Fmt {
        big_endian: false,
        nanos: false,
    };
    let good = eth(0x0800, &ipv4(A, B, 17, 0, &udp(1, 2, b"x")));
    // Ethernet minimum-size padding after a short datagram is trimmed.
    let mut padded = good.clone();
    padded.resize(60, 0xee);
    let cut_full = eth(0x0800, &ipv4(A, B, 17, 0, &udp(1, 2, &[7; 100])));
    let mut bad_udp = udp(1, 2, b"abc");
    bad_udp[4..6].copy_from_slice(&7u16.to_be_bytes()); // UDP length < 8
    let mut long_udp = udp(1, 2, b"abc");
    long_udp[4..6].copy_from_slice(&200u16.to_be_bytes()); // beyond the IP datagram
    let hop_by_hop = [&[17u8, 0, 1, 4, 0, 0, 0, 0][..], &udp(3, 4, b"hbh")].concat();
    let frag6_atomic = [&[17u8, 0, 0, 0, 0, 0, 0, 1][..], &udp(5, 6, b"atomic")].concat();
    let frag6_first = [&[17u8, 0, 0, 1, 0, 0, 0, 1][..], &udp(5, 6, b"first")].concat();
    let recs: Vec<Vec<u8>> = vec![
        good.clone(),
        eth(0x0806, &[0; 28]),                                   // ARP: not IP
        eth(0x0800, &ipv4(A, B, 6, 0, &[0; 20])),                // TCP
        eth(0x0800, &ipv4(A, B, 17, 0x2000, &udp(1, 2, b"f"))),  // first fragment (MF)
        eth(0x0800, &ipv4(A, B, 17, 0x0010, b"rest")),           // later fragment
        eth(0x0800, &ipv4(A, B, 17, 0x4000, &udp(1, 2, b"df"))), // DF only: whole
        eth(0x0800, &ipv4(A, B, 17, 0, &bad_udp)),
        eth(0x0800, &ipv4(A, B, 17, 0, &long_udp)),
        eth(0x86dd, &ipv6(A6, B6, 0, &hop_by_hop)),
        eth(0x86dd, &ipv6(A6, B6, 44, &frag6_atomic)),
        eth(0x86dd, &ipv6(A6, B6, 44, &frag6_first)),
        eth(0x86dd, &ipv6(A6, B6, 58, &[0; 8])), // ICMPv6
        padded,
        eth(0x0800, &[0x45, 0, 0]), // IPv4 header cut inside the frame
    ];
    let mut rs: Vec<(u32, u32, Vec<u8>, usize)> = recs
        .into_iter()
        .map(|r| (1, 0, r.clone(), r.len()))
        .collect();
    // Cut by the snap length (incl < orig).
    rs.push((1, 0, cut_full[..64].to_vec(), cut_full.len()));
    let (v, sk) = collect(&pcap(fmt, 1, &rs));
    let payloads: Vec<&[u8]> = v.iter().map(|d| &d.4[..]).collect();
    assert_eq!(payloads, vec![&b"x"[..], b"df", b"hbh", b"atomic", b"x"]);
    assert_eq!(
        sk,
        SkipCounts {
            not_ip: 1,
            not_udp: 2,
            fragment: 3,
            truncated: 1,
            malformed: 3
        }
    );
}

#[test]
fn file_level_errors() {
    let fmt = Fmt {
        big_endian: false,
        nanos: false,
    };
    assert_eq!(PcapReader::new(&[]).unwrap_err(), PcapError::TooShort);
    assert_eq!(
        PcapReader::new(&[0xd4, 0xc3]).unwrap_err(),
        PcapError::TooShort
    );
    let f = pcap(fmt, 1, &[]);
    assert_eq!(PcapReader::new(&f[..23]).unwrap_err(), PcapError::TooShort);
    assert_eq!(collect(&f).0.len(), 0);
    assert_eq!(
        PcapReader::new(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0]).unwrap_err(),
        PcapError::PcapNg
    );
    assert!(matches!(
        PcapReader::new(b"GIF89a, not a capture!!!").unwrap_err(),
        PcapError::BadMagic(_)
    ));
    assert_eq!(
        PcapReader::new(&pcap(fmt, 105, &[])).unwrap_err(),
        PcapError::UnsupportedLinkType(105)
    );
    // A truncated record: one error, then the end.
    let good = eth(0x0800, &ipv4(A, B, 17, 0, &udp(1, 2, b"x")));
    let f = pcap(
        fmt,
        1,
        &[
            (1, 0, good.clone(), good.len()),
            (2, 0, good.clone(), good.len()),
        ],
    );
    let mut r = PcapReader::new(&f[..f.len() - 1]).unwrap();
    assert!(r.next().unwrap().is_ok());
    assert_eq!(
        r.next().unwrap().unwrap_err(),
        PcapError::TruncatedRecord {
            offset: 24 + 16 + good.len()
        }
    );
    assert!(r.next().is_none());
    assert!(r.next().is_none());
    // A record length beyond the file (and near u32::MAX).
    let mut f = pcap(fmt, 1, &[(1, 0, good.clone(), good.len())]);
    f[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut r = PcapReader::new(&f).unwrap();
    assert_eq!(
        r.next().unwrap().unwrap_err(),
        PcapError::TruncatedRecord { offset: 24 }
    );
    assert!(r.next().is_none());
}

#[test]
fn every_truncation_of_a_real_capture() {
    let file = std::fs::read(n2n_testdata::captures_dir().join("aes-he/capture.pcap")).unwrap();
    let (full, _) = collect(&file);
    assert_eq!(full.len(), 37);
    // Record boundaries: cutting there is a clean end.
    let mut boundaries = vec![24usize];
    for d in &full {
        let last = *boundaries.last().unwrap();
        boundaries.push(last + 16 + 14 + 20 + 8 + d.4.len());
    }
    assert_eq!(*boundaries.last().unwrap(), file.len());
    for cut in 0..file.len() {
        let Ok(r) = PcapReader::new(&file[..cut]) else {
            assert!(cut < 24);
            continue;
        };
        let mut ok = 0;
        let mut errs = 0;
        for item in r {
            match item {
                Ok(d) => {
                    assert_eq!(d.payload, &full[ok].4[..]);
                    ok += 1;
                }
                Err(PcapError::TruncatedRecord { offset }) => {
                    assert_eq!(offset, boundaries[ok]);
                    errs += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
        let clean = boundaries.contains(&cut);
        assert_eq!(errs, usize::from(!clean), "cut {cut}");
        assert_eq!(
            ok,
            boundaries.iter().filter(|&&b| b <= cut).count() - 1,
            "cut {cut}"
        );
    }
}

#[test]
fn random_corruption_never_panics() {
    let file =
        std::fs::read(n2n_testdata::captures_dir().join("userpw-auth/capture.pcap")).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..3000 {
        let mut f = file.clone();
        for _ in 0..1 + rnd() % 16 {
            let i = 24 + (rnd() as usize % (f.len() - 24));
            f[i] = rnd() as u8;
        }
        if round % 3 == 0 {
            // Random link types and byte orders too.
            f[20] = [0u8, 1, 12, 14, 101, 113, 228, 229][rnd() as usize % 8];
            f[21] = if rnd() % 4 == 0 { 1 } else { 0 };
        }
        if let Ok(r) = PcapReader::new(&f) {
            let n = r.take(10_000).count();
            assert!(n <= 10_000);
        }
    }
    // Pure noise after a valid header.
    let fmt = Fmt {
        big_endian: true,
        nanos: false,
    };
    for link in [0u32, 1, 101, 113, 228, 229, 276] {
        for len in 0..600 {
            let mut f = pcap(fmt, link, &[]);
            f.extend((0..len).map(|_| rnd() as u8));
            let _ = PcapReader::new(&f).unwrap().count();
        }
    }
}
