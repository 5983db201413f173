//! Community management (behaviour.md §9.2, §9.12): the fixed communities
//! of the community file and their reload, dynamic communities, auto-IP
//! subnets, the purge of silent edges and empty communities, and the
//! listings.

use std::collections::{BTreeMap, BTreeSet};

use n2n_proto::he::{self, CommunityHe};
use n2n_proto::types::Community;

use super::autoip::Subnet;
use super::community_list::CommunityList;
use super::core::Supernode;
use super::edges::{CommunityState, EDGE_TIMEOUT, HeState};
use super::users::{self, UserAuth};
use super::{CommunityInfo, EdgeInfo, SupernodeEvent};
use crate::Now;

impl Supernode {
    /// Replace the community list (after `reload_communities`, behaviour.md
    /// §9.2): RE_REGISTER_SUPER to the edges of user/password communities
    /// and a new key_time ([`set_key_time`](Self::set_key_time)), then every
    /// community and its edges are dropped and the fixed ones of the new
    /// list are created, with their users and dynamic keys. `None` leaves
    /// the supernode open (C's behaviour for a file without valid content).
    pub fn set_communities(&mut self, now: Now, list: Option<CommunityList>) {
        self.set_key_time(now, users::reload_key_time(now, self.key_time));
        let old = std::mem::take(&mut self.communities);
        for (k, _) in old {
            self.io
                .event(SupernodeEvent::CommunityRemoved { community: k });
        }
        self.seq += 1;
        self.federation_seq = self.seq;
        self.load_fixed(list.as_ref());
        self.cfg.communities = list;
    }

    pub(super) fn load_fixed(&mut self, list: Option<&CommunityList>) {
        let Some(list) = list else { return };
        let prv_f = (list.user_communities().next().is_some())
            .then(|| users::federation_private_key(self.cfg.federation.field()));
        for fc in &list.fixed {
            let Ok(field) = Community::new(&fc.name) else {
                continue;
            };
            if self.communities.contains_key(&field) {
                continue;
            }
            let subnet = fc.subnet.or_else(|| self.choose_subnet(&field));
            let mut keys = CommunityHe::new(*field.field());
            let user_auth = prv_f.as_ref().and_then(|prv_f| {
                let d = he::dynamic_key(field.field(), self.cfg.federation.field(), self.key_time);
                UserAuth::new(fc, prv_f, d)
            });
            let users = user_auth.is_some();
            let he_state = match &user_auth {
                Some(ua) => {
                    keys.set_dynamic_key(ua.dynamic_key());
                    HeState::Encrypted
                }
                None => HeState::Unknown,
            };
            self.seq += 1;
            self.communities.insert(
                field,
                CommunityState {
                    field,
                    fixed: true,
                    users,
                    user_auth,
                    he_state,
                    he: Some(keys),
                    subnet,
                    edges: BTreeMap::new(),
                    by_ip: BTreeSet::new(),
                    seq: self.seq,
                },
            );
            self.io.event(SupernodeEvent::CommunityCreated {
                community: field,
                subnet,
            });
        }
    }

    fn choose_subnet(&self, field: &Community) -> Option<Subnet> {
        let in_use: Vec<Subnet> = self.communities.values().filter_map(|c| c.subnet).collect();
        self.cfg.auto_ip.choose_subnet(field.field(), &in_use)
    }

    pub(super) fn allows(&self, key: &Community) -> bool {
        let name = key.name_bytes();
        if name.is_empty() {
            return false;
        }
        match &self.cfg.communities {
            None => true,
            Some(l) => l.allows(name),
        }
    }

    pub(super) fn create_dynamic(&mut self, key: Community) {
        let subnet = self.choose_subnet(&key);
        self.seq += 1;
        self.communities.insert(
            key,
            CommunityState {
                field: key,
                fixed: false,
                users: false,
                user_auth: None,
                he_state: HeState::Plain,
                he: None,
                subnet,
                edges: BTreeMap::new(),
                by_ip: BTreeSet::new(),
                seq: self.seq,
            },
        );
        self.io.event(SupernodeEvent::CommunityCreated {
            community: key,
            subnet,
        });
    }

    /// Purge edges silent for [`EDGE_TIMEOUT`] and empty dynamic communities.
    pub(super) fn purge(&mut self, now: Now) {
        let io = &mut self.io;
        let mut empty = Vec::new();
        for (k, comm) in &mut self.communities {
            let by_ip = &mut comm.by_ip;
            comm.edges.retain(|mac, e| {
                let keep = now.mono.saturating_duration_since(e.last_seen) < EDGE_TIMEOUT;
                if !keep {
                    by_ip.remove(&(e.dev_addr.ip, *mac));
                    io.event(SupernodeEvent::EdgePurged {
                        community: *k,
                        mac: *mac,
                    });
                }
                keep
            });
            if !comm.fixed && comm.edges.is_empty() {
                empty.push(*k);
            }
        }
        for k in empty {
            self.communities.remove(&k);
            self.io
                .event(SupernodeEvent::CommunityRemoved { community: k });
        }
    }

    /// Registered edges, community by community, in registration order.
    pub fn edges(&self) -> Vec<EdgeInfo> {
        let mut out = Vec::new();
        for c in self.communities_in_order() {
            let mut edges: Vec<_> = c.edges.values().collect();
            edges.sort_by_key(|e| e.seq);
            out.extend(edges.into_iter().map(|e| EdgeInfo {
                community: c.field,
                mac: e.mac,
                dev_addr: e.dev_addr,
                desc: e.desc,
                sock: e.sock,
                preferred: e.preferred,
                last_seen_unix: e.last_seen_unix,
            }));
        }
        out
    }

    /// Communities (without the federation) in creation order.
    pub fn communities(&self) -> Vec<CommunityInfo> {
        self.communities_in_order()
            .into_iter()
            .map(|c| CommunityInfo {
                community: c.field,
                fixed: c.fixed,
                users: c.users,
                he_state: c.he_state,
                subnet: c.subnet,
                edges: c.edges.len(),
            })
            .collect()
    }

    pub(super) fn communities_in_order(&self) -> Vec<&CommunityState> {
        let mut v: Vec<_> = self.communities.values().collect();
        v.sort_by_key(|c| c.seq);
        v
    }
}
