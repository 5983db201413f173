//! The simulated network: routing through NATs and LANs, link delay, loss
//! and reordering, delivery to the nodes, and moving a node's outputs onto
//! the wire.

use std::cmp::Reverse;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand_chacha::rand_core::Rng;

use super::{Delivery, InFlight, LinkParams, NodeId, NodeKind, Sim};
use crate::edge::MULTICAST_DISCOVERY;
use crate::time::Now;

impl Sim {
    fn sample_delay(&mut self, link: &LinkParams) -> Duration {
        let mut d = link.latency;
        if !link.jitter.is_zero() {
            let j = link.jitter.as_nanos() as u64;
            d += Duration::from_nanos(self.rng.next_u64() % j.max(1));
        }
        if link.reorder > 0.0 && self.unit() < link.reorder {
            d += link.reorder_delay;
        }
        d
    }

    pub(super) fn unit(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Sends `data` from node `from` to `dst`: NAT translation, loss,
    /// delay. Delivery happens when the simulation reaches its arrival time.
    pub(super) fn route(&mut self, from: NodeId, dst: SocketAddr, data: Vec<u8>) {
        let Some(n) = self.nodes.get(from) else {
            return;
        };
        let link = n.link;
        let local = n.addr;
        let nat = n.nat;
        let lan = n.lan;
        let src = if dst == MULTICAST_DISCOVERY {
            local
        } else if let Some(nid) = nat {
            // Same LAN: no translation.
            let same_lan = self
                .nodes
                .iter()
                .any(|m| m.addr == dst && m.lan.is_some() && m.lan == lan);
            if same_lan {
                local
            } else {
                match self.nats.get_mut(nid) {
                    Some(nat) => nat.translate_out(local, dst),
                    None => local,
                }
            }
        } else {
            local
        };
        let to = if dst == MULTICAST_DISCOVERY {
            None
        } else {
            self.resolve(from, src, dst)
        };
        let pair = to.and_then(|t| self.pair_links.get(&(from.min(t), from.max(t))).copied());
        let d = match pair {
            Some(p) => {
                if p.loss > 0.0 && self.unit() < p.loss {
                    self.lost += 1;
                    return;
                }
                self.sample_delay(&p)
            }
            None => {
                if link.loss > 0.0 && self.unit() < link.loss {
                    self.lost += 1;
                    return;
                }
                // Both ends' delays; the receiver's loss applies on arrival.
                let rx = to.and_then(|t| self.nodes.get(t)).map(|n| n.link);
                let mut d = self.sample_delay(&link);
                if let Some(rx) = rx {
                    d += self.sample_delay(&rx);
                }
                d
            }
        };
        let at = self.now.mono + d;
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq)));
        self.flights.insert(
            self.seq,
            InFlight {
                from_node: from,
                src,
                dst,
                data,
            },
        );
    }

    /// Which node receives a datagram from `src` (node `from`) to `dst`,
    /// and from which source address it sees it.
    fn resolve(&self, from: NodeId, src: SocketAddr, dst: SocketAddr) -> Option<NodeId> {
        let from_lan = self.nodes.get(from).and_then(|n| n.lan);
        // Directly addressed public node, or a node on the same LAN.
        let at = |a: &SocketAddr| self.by_addr.get(a).map_or(&[][..], Vec::as_slice);
        if let Some(id) = at(&dst).iter().copied().find(|&id| {
            self.nodes
                .get(id)
                .is_some_and(|n| n.nat.is_none() || (n.lan.is_some() && n.lan == from_lan))
        }) {
            return Some(id);
        }
        // A NAT's public address.
        let IpAddr::V4(ip) = dst.ip() else {
            return None;
        };
        let nat_id = self.nats.iter().position(|n| n.public_ip == ip)?;
        let private = self.nats.get(nat_id)?.translate_in(dst.port(), src)?;
        at(&private)
            .iter()
            .copied()
            .find(|&id| self.nodes.get(id).is_some_and(|n| n.nat == Some(nat_id)))
    }

    pub(super) fn deliver(&mut self, f: InFlight) {
        let now = self.now;
        if f.dst == MULTICAST_DISCOVERY {
            let lan = self.nodes.get(f.from_node).and_then(|n| n.lan);
            let Some(lan) = lan else {
                self.filtered += 1;
                return;
            };
            let targets: Vec<NodeId> = (0..self.nodes.len())
                .filter(|&i| {
                    i != f.from_node
                        && self.nodes.get(i).is_some_and(|n| {
                            n.up && n.lan == Some(lan) && matches!(n.kind, NodeKind::Edge(_))
                        })
                })
                .collect();
            for t in targets {
                let mut data = f.data.clone();
                self.deliver_to(t, f.from_node, f.src, &mut data, true, now);
            }
            return;
        }
        let Some(to) = self.resolve(f.from_node, f.src, f.dst) else {
            self.filtered += 1;
            return;
        };
        let mut data = f.data;
        self.deliver_to(to, f.from_node, f.src, &mut data, false, now);
    }

    pub(super) fn deliver_to(
        &mut self,
        to: NodeId,
        from_node: NodeId,
        src: SocketAddr,
        data: &mut [u8],
        multicast: bool,
        now: Now,
    ) {
        let Some(n) = self.nodes.get_mut(to) else {
            return;
        };
        if !n.up {
            self.filtered += 1;
            return;
        }
        // The receiver's end of the link may lose it too (unless a pair
        // link replaced both ends).
        let link = n.link;
        let paired = self
            .pair_links
            .contains_key(&(from_node.min(to), from_node.max(to)));
        if !paired && link.loss > 0.0 && self.unit() < link.loss {
            self.lost += 1;
            return;
        }
        let d = Delivery {
            at: now.mono,
            from_node,
            to_node: to,
            src,
            len: data.len(),
            multicast,
        };
        if self.capture {
            self.captured.push((d.clone(), data.to_vec()));
        }
        if self.record {
            self.trace.push(d);
        }
        let Some(n) = self.nodes.get_mut(to) else {
            return;
        };
        match &mut n.kind {
            NodeKind::Edge(e) => {
                if let Some(len) = e.decapsulate(now, src, data, multicast, &mut self.out)
                    && let Some(fr) = self.out.get(..len)
                {
                    n.tap.push((now.mono, fr.to_vec()));
                }
            }
            NodeKind::Supernode(s) => s.handle_datagram(now, src, data),
        }
        self.drain(to);
    }

    /// Moves a node's queued transmits onto the network and collects its events.
    pub(super) fn drain(&mut self, id: NodeId) {
        let now = self.now;
        let mut sends = Vec::new();
        if let Some(n) = self.nodes.get_mut(id) {
            match &mut n.kind {
                NodeKind::Edge(e) => {
                    while let Some(t) = e.poll_transmit() {
                        if let (Some(ttl), true) = (t.ttl, self.record) {
                            self.sent_with_ttl.push((id, t.dst, ttl));
                        }
                        sends.push((t.dst, t.bytes().to_vec()));
                        e.recycle_transmit(t);
                    }
                    while let Some(ev) = e.poll_event() {
                        n.events.push((now.mono, ev));
                    }
                }
                NodeKind::Supernode(s) => {
                    while let Some(t) = s.poll_transmit() {
                        sends.push((t.dst, t.bytes().to_vec()));
                        s.recycle_transmit(t);
                    }
                    while let Some(ev) = s.poll_event() {
                        n.sn_events.push((now.mono, ev));
                    }
                }
            }
            if !n.up {
                sends.clear();
            }
        }
        for (dst, data) in sends {
            self.route(id, dst, data);
        }
        self.arm(id);
    }
}
