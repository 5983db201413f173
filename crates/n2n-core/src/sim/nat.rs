//! The simulator's NAT boxes: mapping and filtering.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// NAT behaviour (mapping + filtering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Endpoint-independent mapping and filtering ("full cone").
    EndpointIndependent,
    /// Endpoint-independent mapping, address-dependent filtering.
    AddressRestricted,
    /// Endpoint-independent mapping, address- and port-dependent filtering.
    PortRestricted,
    /// Address- and port-dependent mapping and filtering.
    Symmetric,
}

#[derive(Debug)]
pub(super) struct Mapping {
    private: SocketAddr,
    contacted: HashSet<SocketAddr>,
}

/// One NAT box: its public address, behaviour, mappings and LAN.
#[derive(Debug)]
pub(super) struct Nat {
    pub(super) public_ip: Ipv4Addr,
    pub(super) kind: NatKind,
    pub(super) next_port: u16,
    pub(super) out: HashMap<(SocketAddr, Option<SocketAddr>), u16>,
    pub(super) inbound: HashMap<u16, Mapping>,
    pub(super) lan: u32,
}

impl Nat {
    /// The public socket `private` uses towards `dst` (a new mapping if
    /// needed; `dst` is remembered for the filtering).
    pub(super) fn translate_out(&mut self, private: SocketAddr, dst: SocketAddr) -> SocketAddr {
        let key = match self.kind {
            NatKind::Symmetric => (private, Some(dst)),
            _ => (private, None),
        };
        let port = match self.out.get(&key) {
            Some(p) => *p,
            None => {
                let p = self.next_port;
                self.next_port = self.next_port.wrapping_add(1).max(1024);
                self.out.insert(key, p);
                self.inbound.insert(
                    p,
                    Mapping {
                        private,
                        contacted: HashSet::new(),
                    },
                );
                p
            }
        };
        if let Some(m) = self.inbound.get_mut(&port) {
            m.contacted.insert(dst);
        }
        SocketAddr::V4(SocketAddrV4::new(self.public_ip, port))
    }

    /// The private socket a datagram from `src` to public `port` reaches,
    /// if the filtering lets it in.
    pub(super) fn translate_in(&self, port: u16, src: SocketAddr) -> Option<SocketAddr> {
        let m = self.inbound.get(&port)?;
        let ok = match self.kind {
            NatKind::EndpointIndependent => true,
            NatKind::AddressRestricted => m.contacted.iter().any(|c| c.ip() == src.ip()),
            NatKind::PortRestricted | NatKind::Symmetric => m.contacted.contains(&src),
        };
        ok.then_some(m.private)
    }
}
