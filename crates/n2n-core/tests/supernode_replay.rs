//! Replay of the C n2n 3.1.1 captures: every datagram sent to the C
//! supernode is fed to ours (same configuration, same clock); everything
//! we send must match what the C supernode sent: same destinations, same
//! plain bytes after header decryption (HE IV/stamp aside; PONG uptime and
//! the garbage after the version string's NUL aside). Then the management
//! answers are compared with the captured ones.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sn_common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use n2n_core::Now;
use n2n_core::supernode::community_list::CommunityList;
use n2n_core::supernode::{Supernode, SupernodeConfig};
use n2n_proto::he::CommunityHe;
use n2n_proto::pcap::PcapReader;
use n2n_proto::types::Community;
use n2n_proto::wire::{self, Message};
use sn_common::SN_MAC;

const SN_ADDR: &str = "198.18.0.254:7654";

struct Rec {
    unix_us: u64,
    src: SocketAddr,
    dst: SocketAddr,
    payload: Vec<u8>,
    /// decoded.jsonl: `he` and `plain_hex`.
    he: String,
    plain: Vec<u8>,
    ty: String,
}

fn load(dir: &Path) -> Vec<Rec> {
    let pcap = std::fs::read(dir.join("capture.pcap")).unwrap();
    let dec = n2n_testdata::jsonl(&dir.join("decoded.jsonl"));
    let pk = n2n_testdata::jsonl(&dir.join("packets.jsonl"));
    let recs: Vec<Rec> = PcapReader::new(&pcap)
        .unwrap()
        .map(|r| r.unwrap())
        .zip(dec.iter().zip(&pk))
        .map(|(u, (d, p))| {
            // The pcap, packets.jsonl and decoded.jsonl line up.
            assert_eq!(hex::encode(u.payload), p["hex"].as_str().unwrap());
            assert_eq!(u.src.to_string(), d["src"].as_str().unwrap());
            Rec {
                unix_us: u64::from(u.ts_sec) * 1_000_000 + u64::from(u.ts_usec),
                src: u.src,
                dst: u.dst,
                payload: u.payload.to_vec(),
                he: d["he"].as_str().unwrap().to_owned(),
                plain: n2n_testdata::unhex(d["plain_hex"].as_str().unwrap()),
                ty: d["type"].as_str().unwrap().to_owned(),
            }
        })
        .collect();
    assert_eq!(recs.len(), pk.len(), "pcap and packets.jsonl disagree");
    assert_eq!(recs.len(), dec.len());
    assert!(!recs.is_empty());
    recs
}

fn scenarios() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = n2n_testdata::scenario_dirs()
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            !n.starts_with("federation") && n != "userpw-auth"
        })
        .collect();
    v.sort();
    assert!(
        v.len() >= 9,
        "expected the 9 single-supernode scenarios, found {v:?}"
    );
    v
}

struct Replay {
    sn: Supernode,
    t0: Instant,
    base_us: u64,
    keys: Option<CommunityHe>,
}

impl Replay {
    fn new(dir: &Path, first_us: u64) -> Self {
        let mut cfg = SupernodeConfig::new(SN_MAC);
        let list = dir.join("community.list");
        let mut keys = None;
        if list.is_file() {
            let text = std::fs::read_to_string(&list).unwrap();
            cfg.communities = Some(CommunityList::parse(&text).unwrap());
            cfg.community_file = Some(list);
            keys = Some(CommunityHe::new(*Community::new("rocks").unwrap().field()));
        }
        // The C supernode was started about 0.5 s before the first datagram.
        let base_us = first_us - 500_000;
        let t0 = Instant::now();
        let sn = Supernode::new(cfg, [3; 32], Now::new(t0, base_us));
        Self {
            sn,
            t0,
            base_us,
            keys,
        }
    }

    fn now(&self, unix_us: u64) -> Now {
        Now::new(
            self.t0 + Duration::from_micros(unix_us - self.base_us),
            unix_us,
        )
    }
}

/// Our datagram's plain bytes (header decrypted with the community keys
/// when the scenario uses header encryption).
fn plain_of(keys: Option<&CommunityHe>, c_he: &str, bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if c_he == "none" {
        assert!(wire::looks_plain(&b), "C sent plain, we encrypted");
        return b;
    }
    let keys = keys.expect("C encrypted but the scenario has no keys");
    assert!(!wire::looks_plain(&b), "C encrypted, we did not");
    let (_, d) = keys
        .decrypt(&mut b)
        .expect("our datagram decrypts with the community keys");
    b.truncate(d.len);
    b
}

fn compare(scenario: &str, i: usize, ty: &str, ours: &[u8], theirs: &[u8]) {
    if ty == "PEER_INFO" {
        let (ho, mo) = wire::decode(ours).unwrap();
        let (ht, mt) = wire::decode(theirs).unwrap();
        assert_eq!(ho, ht, "{scenario} #{i}: PEER_INFO header");
        let (Message::PeerInfo(o), Message::PeerInfo(t)) = (mo, mt) else {
            panic!("{scenario} #{i}: not PEER_INFO");
        };
        assert!(t.is_pong());
        assert_eq!(
            (o.aflags, o.src_mac, o.mac, o.sock, o.preferred_sock, o.load),
            (t.aflags, t.src_mac, t.mac, t.sock, t.preferred_sock, t.load),
            "{scenario} #{i}: PONG fields"
        );
        assert_eq!(o.version_bytes(), t.version_bytes());
        assert!(o.uptime.abs_diff(t.uptime) <= 1, "{scenario} #{i}: uptime");
        assert_eq!(ours.len(), theirs.len());
        return;
    }
    if ty == "REGISTER_SUPER_ACK" {
        let (ho, mo) = wire::decode(ours).unwrap();
        let (ht, mt) = wire::decode(theirs).unwrap();
        assert_eq!(ho, ht, "{scenario} #{i}: ACK header");
        let (Message::RegisterSuperAck(o), Message::RegisterSuperAck(t)) = (mo, mt) else {
            panic!("{scenario} #{i}: not an ACK");
        };
        assert_eq!(o.cookie, t.cookie, "{scenario} #{i}: cookie");
        assert_eq!(o.src_mac, t.src_mac, "{scenario} #{i}: MAC");
        assert_eq!(o.dev_addr, t.dev_addr, "{scenario} #{i}: dev_addr");
        assert_eq!(o.lifetime, t.lifetime, "{scenario} #{i}: lifetime");
        assert_eq!(o.sock, t.sock, "{scenario} #{i}: sock");
        assert_eq!(o.auth, t.auth, "{scenario} #{i}: auth");
        assert_eq!(o.sn_list.len(), t.sn_list.len(), "{scenario} #{i}: num_sn");
        assert_eq!(o.key_time, t.key_time, "{scenario} #{i}: key_time");
    }
    assert_eq!(
        hex::encode(ours),
        hex::encode(theirs),
        "{scenario} #{i} {ty}: plain bytes differ from C's"
    );
}

#[test]
fn replay_c_captures() {
    let sn_addr: SocketAddr = SN_ADDR.parse().unwrap();
    for dir in scenarios() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let recs = load(&dir);
        let mut r = Replay::new(&dir, recs[0].unix_us);
        let mut ours: Vec<(SocketAddr, Vec<u8>)> = Vec::new();
        let mut theirs: Vec<&Rec> = Vec::new();
        let (mut fed, mut reg_supers, mut relays) = (0, 0, 0);
        for rec in &recs {
            if rec.dst == sn_addr {
                let mut d = rec.payload.clone();
                let now = r.now(rec.unix_us);
                r.sn.handle_datagram(now, rec.src, &mut d);
                while let Some(t) = r.sn.poll_transmit() {
                    ours.push((t.dst, t.bytes().to_vec()));
                    r.sn.recycle_transmit(t);
                }
                fed += 1;
                reg_supers += usize::from(rec.ty == "REGISTER_SUPER");
            } else if rec.src == sn_addr {
                theirs.push(rec);
                relays += usize::from(rec.ty == "PACKET" || rec.ty == "REGISTER");
            }
        }
        assert!(
            fed > 0 && reg_supers >= 2 && relays >= 3,
            "{name}: capture too small"
        );
        assert_eq!(
            r.sn.stats().total_drops(),
            0,
            "{name}: we dropped a datagram C accepted: {:?}",
            r.sn.stats().drops().filter(|x| x.1 > 0).collect::<Vec<_>>()
        );
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{name}: we sent {} datagrams, C sent {}",
            ours.len(),
            theirs.len()
        );
        for (i, ((dst, bytes), c)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(*dst, c.dst, "{name}: output {i} ({}) destination", c.ty);
            assert_eq!(
                bytes.len(),
                c.payload.len(),
                "{name}: output {i} ({}) length",
                c.ty
            );
            let plain = plain_of(r.keys.as_ref(), &c.he, bytes);
            compare(&name, i, &c.ty, &plain, &c.plain);
        }
        eprintln!("{name}: fed {fed}, compared {} outputs", ours.len());
        assert_eq!(r.sn.stats().reg_super, reg_supers as u64);
        assert_eq!(
            r.sn.edges().len(),
            0,
            "{name}: both edges unregistered at the end"
        );
    }
}

/// Feed the capture up to the management queries (before the first
/// UNREGISTER_SUPER) and compare the JSON and text answers with C's.
#[test]
fn management_matches_c() {
    let sn_addr: SocketAddr = SN_ADDR.parse().unwrap();
    let mgmt_from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    for dir in scenarios() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let recs = load(&dir);
        let mut r = Replay::new(&dir, recs[0].unix_us);
        let mut last_us = 0;
        for rec in recs.iter().take_while(|x| x.ty != "UNREGISTER_SUPER") {
            if rec.dst == sn_addr {
                let mut d = rec.payload.clone();
                r.sn.handle_datagram(r.now(rec.unix_us), rec.src, &mut d);
                while let Some(t) = r.sn.poll_transmit() {
                    r.sn.recycle_transmit(t);
                }
            }
            last_us = rec.unix_us;
        }
        let text = std::fs::read_to_string(dir.join("mgmt/supernode.txt")).unwrap();
        let mut sections = std::collections::BTreeMap::new();
        let mut cur = String::new();
        for line in text.lines() {
            if let Some(q) = line.strip_prefix("### sn: ") {
                cur = q.to_owned();
                sections.insert(cur.clone(), Vec::new());
            } else if !line.is_empty() {
                sections.get_mut(&cur).unwrap().push(format!("{line}\n"));
            }
        }
        let now = r.now(last_us);
        eprintln!("{name}: {} mgmt requests", sections.len());
        for (req, expect) in &sections {
            let out = r.sn.handle_mgmt(now, mgmt_from, req.as_bytes());
            assert!(out.action.is_none());
            let got = if req.ends_with("help") {
                // C's rows, then our `drops`, then end.
                let mut g = out.replies.clone();
                let ours = g.remove(g.len() - 2);
                assert!(ours.contains("\"cmd\":\"drops\""), "{ours}");
                g
            } else {
                out.replies
            };
            assert_eq!(&got, expect, "{name}: '{req}'");
        }
        // The text page, at the moment C produced it: e1 last seen 8 s ago
        // in the captured page ("LAST SEEN" of the first edge).
        let page = std::fs::read_to_string(dir.join("mgmt/supernode-text.txt")).unwrap();
        let first_row = page.lines().find(|l| l.starts_with("   1 |")).unwrap();
        let ago: u64 = first_row
            .rsplit('|')
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let e1_seen = r.sn.edges()[0].last_seen_unix;
        let at_us = (e1_seen + ago) * 1_000_000 + 500_000;
        let out = r.sn.handle_mgmt(r.now(at_us), mgmt_from, b"\n");
        assert_eq!(out.replies.concat(), page, "{name}: text status page");
    }
}
