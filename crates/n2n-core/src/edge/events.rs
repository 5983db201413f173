//! Management subscriptions and events of the edge (cli.md §5.5): the
//! topics, C's reply lines, and the subscriber table the driver keeps.
//!
//! The core emits [`Event`]s; the driver owns a [`Subscriptions`] (one
//! subscriber per topic: its tag and address), gives it every
//! `s <tag> <topic>` request ([`MgmtAction::Subscribe`](super::MgmtAction))
//! and every event, and sends the datagrams it returns. Nothing here does
//! I/O.

use std::net::SocketAddr;

use n2n_proto::types::Mac;

use super::{Event, PeerRemoval};

/// An event topic (`s <tag> <topic>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// `debug`: every event.
    Debug,
    /// `test`: `post.test` only.
    Test,
    /// `peer`: changes to the peer list.
    Peer,
}

impl Topic {
    /// C's topics, in its `help.events` order, with their help text.
    pub const ALL: [(Topic, &'static str, &'static str); 3] = [
        (Topic::Debug, "debug", "All events - for event debugging"),
        (Topic::Test, "test", "Used only by post.test"),
        (Topic::Peer, "peer", "Changes to peer list"),
    ];

    /// The topic named `name`.
    pub fn from_name(name: &str) -> Option<Topic> {
        Self::ALL.iter().find(|(_, n, _)| *n == name).map(|t| t.0)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Topic::Debug => "debug",
            Topic::Test => "test",
            Topic::Peer => "peer",
        }
    }

    fn index(self) -> usize {
        match self {
            Topic::Debug => 0,
            Topic::Test => 1,
            Topic::Peer => 2,
        }
    }
}

/// C's peer event actions (`"action":<n>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAction {
    /// 1: a pending or known peer timed out.
    Purged = 1,
    /// 2: cleared at shutdown (every pending/known peer and supernode entry).
    Cleared = 2,
    /// 3: removed from the P2P table (stale, moved, replaced).
    RemovedP2p = 3,
    /// 4: added to the P2P table (REGISTER_ACK received).
    AddedP2p = 4,
}

/// The peer event of `ev`, as C posts it: (action, MAC, socket).
pub fn peer_action(ev: &Event) -> Option<(PeerAction, Mac, Option<SocketAddr>)> {
    match *ev {
        Event::PeerAdded {
            mac,
            sock,
            direct: true,
        } => Some((PeerAction::AddedP2p, mac, sock)),
        Event::PeerRemoved {
            mac,
            sock,
            reason: PeerRemoval::Purged,
            ..
        } => Some((PeerAction::Purged, mac, sock)),
        Event::PeerRemoved {
            mac,
            sock,
            direct: true,
            ..
        } => Some((PeerAction::RemovedP2p, mac, sock)),
        Event::PeerCleared { mac, sock } => Some((PeerAction::Cleared, mac, sock)),
        _ => None,
    }
}

fn mac_upper(m: Mac) -> String {
    let b = m.0;
    format!(
        "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

/// C's `send_json_1str`: `{"_tag":"<tag>","_type":"<ty>","<key>":"<value>"}`.
fn json_1str(tag: &str, ty: &str, key: &str, value: &str) -> String {
    format!("{{\"_tag\":\"{tag}\",\"_type\":\"{ty}\",\"{key}\":\"{value}\"}}\n")
}

/// A `peer` event line.
pub fn peer_event_line(
    tag: &str,
    action: PeerAction,
    mac: Mac,
    sock: Option<SocketAddr>,
) -> String {
    let mac = if mac.is_null() {
        String::new()
    } else {
        mac_upper(mac)
    };
    // C's sock_to_cstr of an unset socket.
    let sock = sock.map_or_else(|| "0.0.0.0:0".to_owned(), |s| s.to_string());
    format!(
        "{{\"_tag\":\"{tag}\",\"_type\":\"event\",\"action\":{},\"macaddr\":\"{mac}\",\"sockaddr\":\"{sock}\"}}\n",
        action as u8
    )
}

/// A datagram for the management socket: destination and text.
pub type MgmtDatagram = (SocketAddr, String);

/// One subscriber per topic: its tag and address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions {
    subs: [Option<(String, SocketAddr)>; 3],
}

impl Subscriptions {
    /// No subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The subscriber of `topic`.
    pub fn subscriber(&self, topic: Topic) -> Option<(&str, SocketAddr)> {
        self.subs[topic.index()]
            .as_ref()
            .map(|(t, a)| (t.as_str(), *a))
    }

    /// `s <tag> <topic>` from `from`: the new subscriber replaces the old
    /// one, which gets `unsubscribed`; the new one gets `replacing` (if it
    /// replaced one), then `subscribe`.
    pub fn subscribe(&mut self, topic: Topic, tag: &str, from: SocketAddr) -> Vec<MgmtDatagram> {
        let name = topic.name();
        let mut out = Vec::new();
        if let Some((old_tag, old)) = self.subs[topic.index()].take() {
            out.push((old, json_1str(&old_tag, "unsubscribed", "topic", name)));
            out.push((from, json_1str(tag, "replacing", "topic", name)));
        }
        out.push((from, json_1str(tag, "subscribe", "topic", name)));
        self.subs[topic.index()] = Some((tag.to_owned(), from));
        out
    }

    /// Posts one event of `topic` (C's `mgmt_event_post`): the same line,
    /// with the topic subscriber's tag (else the debug subscriber's), to
    /// the topic's subscriber and to the debug subscriber.
    fn post(&self, topic: Topic, line: impl Fn(&str) -> String) -> Vec<MgmtDatagram> {
        let sub = self.subscriber(topic);
        let debug = self.subscriber(Topic::Debug);
        let Some((tag, _)) = sub.or(debug) else {
            return Vec::new();
        };
        let l = line(tag);
        let mut out = Vec::new();
        if let Some((_, a)) = sub {
            out.push((a, l.clone()));
        }
        if let Some((_, a)) = debug {
            out.push((a, l));
        }
        out
    }

    /// The `peer` event for `ev`, if it is one.
    pub fn on_event(&self, ev: &Event) -> Vec<MgmtDatagram> {
        match peer_action(ev) {
            Some((action, mac, sock)) => {
                self.post(Topic::Peer, |tag| peer_event_line(tag, action, mac, sock))
            }
            None => Vec::new(),
        }
    }

    /// `post.test <text>`: the `test` event.
    pub fn post_test(&self, text: &str) -> Vec<MgmtDatagram> {
        self.post(Topic::Test, |tag| json_1str(tag, "event", "test", text))
    }

    /// The `help.events` reply for request tag `tag`: begin, a row per
    /// topic (its subscriber's tag and address, or `?:?`), end.
    pub fn help_events(&self, tag: &str) -> Vec<String> {
        let mut out = vec![json_1str(tag, "begin", "cmd", "help.events")];
        for (topic, name, help) in Topic::ALL {
            let (sub_tag, sock) = match self.subscriber(topic) {
                Some((t, a)) => (t.to_owned(), a.to_string()),
                None => (String::new(), "?:?".to_owned()),
            };
            out.push(format!(
                "{{\"_tag\":\"{tag}\",\"_type\":\"row\",\"topic\":\"{name}\",\"tag\":\"{sub_tag}\",\"sockaddr\":\"{sock}\",\"help\":\"{help}\"}}\n"
            ));
        }
        out.push(json_1str(tag, "end", "cmd", "help.events"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_subscriber_per_topic_with_c_replies() {
        let mut s = Subscriptions::new();
        let a = sa("127.0.0.1:4000");
        let b = sa("127.0.0.1:4001");
        assert_eq!(
            s.subscribe(Topic::Peer, "x", a),
            vec![(
                a,
                "{\"_tag\":\"x\",\"_type\":\"subscribe\",\"topic\":\"peer\"}\n".to_owned()
            )]
        );
        assert_eq!(
            s.subscribe(Topic::Peer, "y", b),
            vec![
                (
                    a,
                    "{\"_tag\":\"x\",\"_type\":\"unsubscribed\",\"topic\":\"peer\"}\n".to_owned()
                ),
                (
                    b,
                    "{\"_tag\":\"y\",\"_type\":\"replacing\",\"topic\":\"peer\"}\n".to_owned()
                ),
                (
                    b,
                    "{\"_tag\":\"y\",\"_type\":\"subscribe\",\"topic\":\"peer\"}\n".to_owned()
                ),
            ]
        );
        let ev = Event::PeerAdded {
            mac: Mac([2, 0, 0, 0, 0, 0xab]),
            sock: Some(sa("198.18.0.2:50002")),
            direct: true,
        };
        assert_eq!(
            s.on_event(&ev),
            vec![(
                b,
                "{\"_tag\":\"y\",\"_type\":\"event\",\"action\":4,\"macaddr\":\"02:00:00:00:00:AB\",\"sockaddr\":\"198.18.0.2:50002\"}\n"
                    .to_owned()
            )]
        );
        // Pending peers are no peer event.
        let pending = Event::PeerAdded {
            mac: Mac([2, 0, 0, 0, 0, 0xab]),
            sock: None,
            direct: false,
        };
        assert!(s.on_event(&pending).is_empty());
        assert!(s.post_test("hi").is_empty(), "no test subscriber");
        // debug gets every event, with the topic subscriber's tag.
        let d = sa("127.0.0.1:4002");
        s.subscribe(Topic::Debug, "dbg", d);
        let got = s.on_event(&ev);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].0, d);
        assert!(got[1].1.starts_with("{\"_tag\":\"y\""));
        assert_eq!(
            s.post_test("hi there"),
            vec![(
                d,
                "{\"_tag\":\"dbg\",\"_type\":\"event\",\"test\":\"hi there\"}\n".to_owned()
            )]
        );
        let h = s.help_events("7");
        assert_eq!(h.len(), 5);
        assert_eq!(
            h[3],
            "{\"_tag\":\"7\",\"_type\":\"row\",\"topic\":\"peer\",\"tag\":\"y\",\"sockaddr\":\"127.0.0.1:4001\",\"help\":\"Changes to peer list\"}\n"
        );
        assert!(h[2].contains("\"tag\":\"\",\"sockaddr\":\"?:?\""));
    }

    #[test]
    fn actions_like_c() {
        let m = Mac([2, 0, 0, 0, 0, 1]);
        let removed = |direct, reason| Event::PeerRemoved {
            mac: m,
            sock: None,
            direct,
            reason,
        };
        let act = |e: &Event| peer_action(e).map(|a| a.0);
        assert_eq!(
            act(&removed(false, PeerRemoval::Purged)),
            Some(PeerAction::Purged)
        );
        assert_eq!(
            act(&removed(true, PeerRemoval::Purged)),
            Some(PeerAction::Purged)
        );
        assert_eq!(
            act(&removed(true, PeerRemoval::Stale)),
            Some(PeerAction::RemovedP2p)
        );
        assert_eq!(act(&removed(false, PeerRemoval::Replaced)), None);
        assert_eq!(
            act(&Event::PeerCleared { mac: m, sock: None }),
            Some(PeerAction::Cleared)
        );
        assert!(
            peer_event_line("t", PeerAction::Cleared, Mac::NULL, None)
                .contains("\"macaddr\":\"\",\"sockaddr\":\"0.0.0.0:0\"")
        );
    }
}
