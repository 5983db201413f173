//! The PACKET relay path allocates nothing after warm-up (plain and
//! header-encrypted, unicast and broadcast fan-out).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod sn_common;

use std::time::Duration;

use n2n_core::MAX_DATAGRAM;
use n2n_proto::he::{CommunityHe, StampGenerator};
use n2n_proto::types::Mac;
use sn_common::*;

#[global_allocator]
static GLOBAL: n2n_testdata::CountingAlloc = n2n_testdata::CountingAlloc;

use n2n_testdata::allocations as allocs;

#[test]
fn packet_relay_does_not_allocate_after_warm_up() {
    let mut sim = Sim::with_list("secret\n.*\n");
    let edges: Vec<TestEdge> = (1..=4)
        .map(|i| TestEdge::new("plain", i, &format!("198.51.100.{i}:5000"), [10, 0, 0, i]))
        .collect();
    for e in &edges {
        sim.register(e);
    }
    let keys = CommunityHe::new(*comm("secret").field());
    let s: Vec<TestEdge> = (1..=3)
        .map(|i| TestEdge::new("secret", i, &format!("198.51.101.{i}:5000"), [10, 1, 0, i]))
        .collect();
    let mut stamps: Vec<StampGenerator> = s.iter().map(|_| StampGenerator::new()).collect();
    for (e, st) in s.iter().zip(&mut stamps) {
        let r = he_encrypt(&keys, st, sim.now, &e.reg_super(1));
        assert_eq!(sim.feed(e.sock, &r).len(), 1);
    }
    let payload = [0x5au8; 1000];
    let plain_uni = edges[0].packet(edges[1].mac, &payload);
    let plain_bc = edges[0].packet(Mac::BROADCAST, &payload);
    let mut he_uni = Vec::new();
    let mut he_bc = Vec::new();
    for k in 0..400u64 {
        sim.advance(Duration::from_millis(1));
        let mut st = stamps[0];
        he_uni.push(he_encrypt(
            &keys,
            &mut st,
            sim.now,
            &s[0].packet(s[1].mac, &payload),
        ));
        he_bc.push(he_encrypt(
            &keys,
            &mut st,
            sim.now,
            &s[0].packet(Mac::BROADCAST, &payload),
        ));
        stamps[0] = st;
        let _ = k;
    }
    let mut work = vec![0u8; MAX_DATAGRAM];
    let mut run = |sim: &mut Sim, range: std::ops::Range<usize>| -> usize {
        let mut sent = 0;
        for i in range {
            for (d, from) in [
                (&plain_uni, edges[0].sock),
                (&plain_bc, edges[0].sock),
                (&he_uni[i], s[0].sock),
                (&he_bc[i], s[0].sock),
            ] {
                let w = &mut work[..d.len()];
                w.copy_from_slice(d);
                sim.sn.handle_datagram(sim.now, from, w);
                while let Some(t) = sim.sn.poll_transmit() {
                    sent += t.len().min(1);
                    sim.sn.recycle_transmit(t);
                }
            }
        }
        sent
    };
    // Warm-up.
    let n = run(&mut sim, 0..50);
    assert_eq!(n, 50 * (1 + 3 + 1 + 2));
    let before = allocs();
    let n = run(&mut sim, 50..400);
    let after = allocs();
    assert_eq!(n, 350 * (1 + 3 + 1 + 2));
    assert_eq!(after - before, 0, "allocations on the relay path");
    assert_eq!(sim.sn.stats().total_drops(), 0);
}
