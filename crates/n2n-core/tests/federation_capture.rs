//! Replay of the C n2n 3.1.1 federation captures (`federation`: default
//! name; `federation-F`: `-F rocksFed`, keys still from `*Federation`, name
//! field with residue). Every datagram sent to the first supernode (sn,
//! 198.18.0.254, no `-l`; sn2 registers with it) is fed to ours; everything
//! it sends in answer must match what C's sent: destination, length, plain
//! bytes after header decryption (cookies of our own REGISTER_SUPERs and the
//! PONG uptime aside). C's timer-driven REGISTER_SUPERs to sn2 are left out
//! (ours are tested in federation_sim.rs). Then the management answers
//! (the federation listed first, as `-/-` rows) are compared with C's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use n2n_core::Now;
use n2n_core::supernode::{Supernode, SupernodeConfig, federation_field};
use n2n_proto::he::{self, CommunityHe, HeKeys};
use n2n_proto::pcap::PcapReader;
use n2n_proto::types::{Community, Mac};
use n2n_proto::wire::{self, Message};

const SN_ADDR: &str = "198.18.0.254:7654";
const SN2_ADDR: &str = "198.18.0.253:7654";
const SN_MAC: Mac = Mac([2, 0, 0, 0, 0, 0xfe]);
const SN2_MAC: Mac = Mac([2, 0, 0, 0, 0, 0xfd]);

struct Rec {
    unix_us: u64,
    src: SocketAddr,
    dst: SocketAddr,
    payload: Vec<u8>,
    he: String,
    plain: Vec<u8>,
    ty: String,
}

fn load(dir: &Path) -> Vec<Rec> {
    let pcap = std::fs::read(dir.join("capture.pcap")).unwrap();
    let dec = n2n_testdata::jsonl(&dir.join("decoded.jsonl"));
    let recs: Vec<Rec> = PcapReader::new(&pcap)
        .unwrap()
        .map(|r| r.unwrap())
        .zip(dec.iter())
        .map(|(u, d)| {
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
    assert_eq!(recs.len(), dec.len());
    recs
}

fn scenarios() -> Vec<(PathBuf, Community)> {
    let mut v: Vec<(PathBuf, Community)> = n2n_testdata::scenario_dirs()
        .into_iter()
        .filter_map(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            match n.as_str() {
                "federation" => Some((p, federation_field("Federation"))),
                "federation-F" => Some((p, federation_field("rocksFed"))),
                _ => None,
            }
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(v.len(), 2, "both federation captures are in the checkout");
    v
}

struct Replay {
    sn: Supernode,
    t0: Instant,
    base_us: u64,
    fed_keys: CommunityHe,
}

impl Replay {
    fn new(field: Community, first_us: u64) -> Self {
        let mut cfg = SupernodeConfig::new(SN_MAC);
        cfg.federation = field;
        let base_us = first_us - 500_000;
        let t0 = Instant::now();
        Self {
            sn: Supernode::new(cfg, [3; 32], Now::new(t0, base_us)),
            t0,
            base_us,
            fed_keys: CommunityHe::with_static_keys(
                *field.field(),
                HeKeys::from_community_field(&he::DEFAULT_FEDERATION_FIELD),
            ),
        }
    }

    fn now(&self, unix_us: u64) -> Now {
        Now::new(
            self.t0 + Duration::from_micros(unix_us - self.base_us),
            unix_us,
        )
    }

    fn feed(&mut self, rec: &Rec) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut d = rec.payload.clone();
        let now = self.now(rec.unix_us);
        self.sn.handle_datagram(now, rec.src, &mut d);
        let mut out = Vec::new();
        while let Some(t) = self.sn.poll_transmit() {
            out.push((t.dst, t.bytes().to_vec()));
            self.sn.recycle_transmit(t);
        }
        out
    }
}

/// C's timer-driven re-registration with sn2 (not an answer to a datagram).
fn timer_driven(r: &Rec) -> bool {
    r.ty == "REGISTER_SUPER" && r.he == "federation"
}

#[test]
fn replay_c_federation_captures() {
    let sn: SocketAddr = SN_ADDR.parse().unwrap();
    for (dir, field) in scenarios() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let recs = load(&dir);
        let mut r = Replay::new(field, recs[0].unix_us);
        let mut ours = Vec::new();
        let mut theirs = Vec::new();
        for rec in &recs {
            if rec.dst == sn {
                ours.extend(r.feed(rec));
            } else if rec.src == sn && !timer_driven(rec) {
                theirs.push(rec);
            }
        }
        assert_eq!(
            r.sn.stats().total_drops(),
            0,
            "{name}: we dropped what C accepted: {:?}",
            r.sn.stats().drops().filter(|x| x.1 > 0).collect::<Vec<_>>()
        );
        let kinds = |v: &[&Rec]| v.iter().map(|x| x.ty.clone()).collect::<Vec<_>>();
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{name}: we sent {} datagrams, C {} ({:?})",
            ours.len(),
            theirs.len(),
            kinds(&theirs)
        );
        let (mut fed_msgs, mut relayed) = (0, 0);
        for (i, ((dst, bytes), c)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(*dst, c.dst, "{name} #{i} {}: destination", c.ty);
            assert_eq!(bytes.len(), c.payload.len(), "{name} #{i} {}: length", c.ty);
            let mut plain = bytes.clone();
            if c.he == "federation" {
                assert!(!wire::looks_plain(&plain), "{name} #{i}: not encrypted");
                let (_, d) = r.fed_keys.decrypt(&mut plain).expect("federation keys");
                plain.truncate(d.len);
                fed_msgs += 1;
            } else {
                assert_eq!(c.he, "none");
                assert!(wire::looks_plain(&plain));
            }
            let (ho, mo) = wire::decode(&plain).unwrap();
            let (ht, mt) = wire::decode(&c.plain).unwrap();
            assert_eq!(ho, ht, "{name} #{i} {}: header", c.ty);
            match (mo, mt) {
                (Message::PeerInfo(o), Message::PeerInfo(t)) if t.is_pong() => {
                    // (C's supernode ran ~12 s before the capture: uptime differs.)
                    assert_eq!((o.src_mac, o.sock, o.load), (t.src_mac, t.sock, t.load));
                    assert_eq!(o.version_bytes(), t.version_bytes());
                }
                (Message::RegisterSuperAck(o), Message::RegisterSuperAck(t)) => {
                    assert_eq!(
                        (o.cookie, o.src_mac, o.dev_addr, o.sock, o.auth, o.key_time),
                        (t.cookie, t.src_mac, t.dev_addr, t.sock, t.auth, t.key_time),
                        "{name} #{i}: ACK fields"
                    );
                    let lo: Vec<_> = o.sn_list.iter().collect();
                    let lt: Vec<_> = t.sn_list.iter().collect();
                    assert_eq!(lo, lt, "{name} #{i}: supernode list");
                    if !lt.is_empty() {
                        assert_eq!(lt[0].mac, SN2_MAC);
                    }
                    assert_eq!(plain, c.plain, "{name} #{i}: ACK bytes");
                }
                _ => {
                    relayed += usize::from(c.ty == "PACKET" || c.ty == "REGISTER");
                    assert_eq!(
                        hex::encode(&plain),
                        hex::encode(&c.plain),
                        "{name} #{i} {}: plain bytes differ from C's",
                        c.ty
                    );
                }
            }
        }
        assert!(fed_msgs >= 2 && relayed >= 5, "{name}: capture too small");
        let fed = r.sn.federation();
        assert_eq!(fed.len(), 1, "{name}: sn2 is the only member");
        assert_eq!(fed[0].mac, SN2_MAC);
        assert_eq!(fed[0].addr, Some(SN2_ADDR.parse().unwrap()));
        eprintln!(
            "{name}: compared {} outputs ({fed_msgs} federation)",
            ours.len()
        );
    }
}

#[test]
fn management_matches_c() {
    let sn: SocketAddr = SN_ADDR.parse().unwrap();
    let mgmt_from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    for (dir, field) in scenarios() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let recs = load(&dir);
        let mut r = Replay::new(field, recs[0].unix_us);
        let mut last_us = 0;
        for rec in recs.iter().take_while(|x| x.ty != "UNREGISTER_SUPER") {
            if rec.dst == sn {
                r.feed(rec);
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
        let mut checked = 0;
        for (req, expect) in &sections {
            if req.ends_with("packetstats") || req.ends_with("timestamps") {
                // Counters differ: C's broadcast count includes its own
                // timer traffic; timestamps are covered by supernode_replay.
                continue;
            }
            let out = r.sn.handle_mgmt(now, mgmt_from, req.as_bytes());
            let mut replies = out.replies.clone();
            if req.ends_with(" help") {
                // C's rows, then our own `drops` command (README), then end.
                let n = replies.len();
                assert!(
                    n >= 2 && replies[n - 2].contains("\"cmd\":\"drops\""),
                    "{replies:?}"
                );
                replies.remove(n - 2);
            }
            assert_eq!(&replies, expect, "{name}: '{req}'");
            checked += 1;
        }
        assert!(checked >= 3, "{name}: edges, communities, help");
        // The text page: the federation block first, with sn2's row.
        let page = std::fs::read_to_string(dir.join("mgmt/supernode-text.txt")).unwrap();
        let out = r.sn.handle_mgmt(now, mgmt_from, b"\n").replies.concat();
        let rows = |p: &str| {
            p.lines()
                .filter(|l| {
                    l.starts_with("FEDERATION")
                        || l.starts_with("COMMUNITY")
                        || l.trim_start().starts_with(|c: char| c.is_ascii_digit())
                })
                .map(|l| l.rsplit_once('|').map_or(l, |x| x.0).to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rows(&out),
            rows(&page),
            "{name}: text page rows (LAST SEEN aside)"
        );
    }
}
