//! Turning one captured UDP datagram into one JSON line.

use std::collections::HashMap;
use std::net::SocketAddr;

use n2n_proto::compress::{self, CompressionId, Decompressor};
use n2n_proto::he::{self, CommunityHe, HeKeyKind, HeKeys, NAME_FIELD_LEN};
use n2n_proto::pcap::UdpDatagram;
use n2n_proto::transform::{NonceSeed, Transform, TransformError, TransformId, packet_aad};
use n2n_proto::types::{Auth, Community, Mac, PeerSock};
use n2n_proto::wire::{self, Header, Message, Packet, SnList, VERSION};

use crate::args::Options;
use crate::frame;
use crate::json::{Obj, array};

/// Longest federation name C keeps (`'*'` + 17 + NUL fill 19 of 20 bytes).
const FEDERATION_NAME_MAX: usize = 17;

/// The federation name field of a C supernode given `-F name`: `'*' + name
/// + NUL` written over `*Federation` without clearing the rest (crypto.md §6).
pub fn federation_field(name: &str) -> [u8; NAME_FIELD_LEN] {
    let mut f = he::DEFAULT_FEDERATION_FIELD;
    let name = name.as_bytes();
    let name = name.get(..FEDERATION_NAME_MAX).unwrap_or(name);
    let mut s = Vec::with_capacity(name.len() + 2);
    s.push(b'*');
    s.extend_from_slice(name);
    s.push(0);
    for (d, b) in f.iter_mut().zip(&s) {
        *d = *b;
    }
    f
}

/// Which header-encryption key opened a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeKey {
    Static,
    Dynamic,
    Federation,
}

impl HeKey {
    fn name(self) -> &'static str {
        match self {
            HeKey::Static => "static",
            HeKey::Dynamic => "dynamic",
            HeKey::Federation => "federation",
        }
    }
}

/// What header decryption found.
struct HeInfo {
    key: HeKey,
    d: he::Decrypted,
    /// `Some(result)` when stamps are checked against the capture time.
    stamp_check: Option<Result<(), he::HeError>>,
}

/// Payload decryption settings (`-k`, `-A`).
struct PayloadCfg {
    key: Option<Vec<u8>>,
    selected: TransformId,
}

/// The decoder: keys, per-sender stamp state and payload transforms.
pub struct Decoder {
    community: Option<CommunityHe>,
    dynamic: bool,
    federation: Option<CommunityHe>,
    time_from_capture: bool,
    prev: HashMap<SocketAddr, u64>,
    payload: Option<PayloadCfg>,
    transforms: HashMap<(TransformId, [u8; NAME_FIELD_LEN]), Result<Transform, TransformError>>,
    decompressor: Decompressor,
    first_ts: Option<(u32, u32)>,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").finish_non_exhaustive()
    }
}

impl Decoder {
    /// Sets up keys from the options; fails (with a one-line reason) on an
    /// unusable transform selection.
    pub fn new(o: &Options) -> Result<Self, String> {
        let community = match (&o.community, o.header_encryption) {
            (Some(c), true) => {
                let c = Community::new(c).map_err(|e| format!("-c: {e}"))?;
                let mut he = CommunityHe::new(*c.field());
                if let Some(d) = &o.dynamic_key {
                    he.set_dynamic_key(d);
                }
                Some(he)
            }
            _ => None,
        };
        let federation = o.federation.as_deref().map(|name| {
            CommunityHe::with_static_keys(
                federation_field(name),
                HeKeys::from_community_field(&he::DEFAULT_FEDERATION_FIELD),
            )
        });
        let payload = if o.key.is_some() || o.transform.is_some() {
            let key = o.key.as_ref().map(|k| k.as_bytes().to_vec());
            let selected = TransformId::select(o.transform, key.as_deref())
                .map_err(|e| format!("-A/-k: {e}"))?;
            Some(PayloadCfg { key, selected })
        } else {
            None
        };
        Ok(Decoder {
            community,
            dynamic: o.dynamic_key.is_some(),
            federation,
            time_from_capture: o.time_from_capture,
            prev: HashMap::new(),
            payload,
            transforms: HashMap::new(),
            decompressor: Decompressor::new(),
            first_ts: None,
        })
    }

    fn has_he_keys(&self) -> bool {
        self.community.is_some() || self.federation.is_some()
    }

    /// Tries the configured keys; on failure the buffer is unchanged and the
    /// most informative error is returned.
    fn try_keys(&self, buf: &mut [u8]) -> Result<(HeKey, he::Decrypted), he::HeError> {
        let mut err = he::HeError::BadMagic;
        if let Some(c) = &self.community {
            match c.decrypt(buf) {
                Ok((HeKeyKind::Dynamic, d)) if self.dynamic => return Ok((HeKey::Dynamic, d)),
                Ok((_, d)) => return Ok((HeKey::Static, d)),
                Err(e) => err = e,
            }
        }
        if let Some(f) = &self.federation {
            match f.decrypt(buf) {
                Ok((_, d)) => return Ok((HeKey::Federation, d)),
                Err(e) if self.community.is_none() || e != he::HeError::BadMagic => err = e,
                Err(_) => {}
            }
        }
        Err(err)
    }

    /// One datagram → one JSON object (no newline).
    pub fn datagram(&mut self, n: usize, d: &UdpDatagram<'_>) -> String {
        let mut o = Obj::new();
        o.len("n", n);
        let (s0, u0) = *self.first_ts.get_or_insert((d.ts_sec, d.ts_usec));
        let rel = (i64::from(d.ts_sec) - i64::from(s0)) * 1_000_000 + i64::from(d.ts_usec)
            - i64::from(u0);
        let sign = if rel < 0 { "-" } else { "" };
        let rel = rel.unsigned_abs();
        o.raw(
            "t",
            &format!("{sign}{}.{:06}", rel / 1_000_000, rel % 1_000_000),
        );
        o.secs_micros("ts", u64::from(d.ts_sec), d.ts_usec);
        o.display("src", d.src).display("dst", d.dst);
        o.len("len", d.payload.len());

        let mut buf = d.payload.to_vec();
        let mut he_info = None;
        let plain_ok = he::looks_plain(&buf) && wire::decode(&buf).is_ok();
        if self.has_he_keys() && !plain_ok {
            match self.try_keys(&mut buf) {
                Ok((key, dd)) => {
                    let stamp_check = self.time_from_capture.then(|| {
                        let now = he::stamp_from_unix(u64::from(d.ts_sec), d.ts_usec);
                        let prev = self
                            .prev
                            .entry(d.src)
                            .or_insert_with(|| he::initial_prev(now));
                        // C tolerates 160 ms of reordering for PACKET,
                        // QUERY_PEER and PEER_INFO only (crypto.md §4.5).
                        let ty = buf.get(3).map_or(0, |b| b & 0x1f);
                        let jitter = matches!(ty, 3 | 10 | 11);
                        he::verify_stamp(dd.stamp, now, Some(prev), jitter)
                    });
                    he_info = Some(HeInfo {
                        key,
                        d: dd,
                        stamp_check,
                    });
                }
                Err(e) if !he::looks_plain(&buf) => {
                    o.str("type", "ERROR");
                    o.display("error", format_args!("header decryption failed: {e}"));
                    o.bool("he", false);
                    o.hex("hex", d.payload);
                    return o.finish();
                }
                // Looks plain but does not decode: report the wire error below.
                Err(_) => {}
            }
        }
        let msg_len = he_info.as_ref().map_or(buf.len(), |h| h.d.len);
        let plain = buf.get(..msg_len).unwrap_or(&buf);

        let decoded = wire::decode(plain);
        match &decoded {
            Ok((hdr, msg)) => {
                o.str("type", msg.msg_type().name());
                header_fields(&mut o, hdr);
            }
            Err(e) => {
                o.str("type", "ERROR");
                o.display("error", e);
            }
        }
        o.bool("he", he_info.is_some());
        if let Some(h) = &he_info {
            he_fields(&mut o, h, &buf);
        }
        match decoded {
            Ok((hdr, msg)) => {
                message_fields(&mut o, &msg);
                let used = msg.buffer_len();
                if used < plain.len() && !matches!(msg, Message::Packet(_)) {
                    o.len("trailing_bytes", plain.len() - used);
                }
                if let Message::Packet(p) = &msg {
                    self.payload_fields(&mut o, &hdr, p);
                }
            }
            Err(_) => {
                o.hex("hex", d.payload);
            }
        }
        o.finish()
    }

    fn transform(
        &mut self,
        id: TransformId,
        key: &[u8],
        community: &[u8; NAME_FIELD_LEN],
    ) -> Result<&Transform, TransformError> {
        self.transforms
            .entry((id, *community))
            .or_insert_with(|| {
                Transform::new(
                    id,
                    key,
                    community,
                    NonceSeed {
                        prefix: 0,
                        start: 0,
                    },
                )
            })
            .as_ref()
            .map_err(|e| *e)
    }

    /// PACKET payload: decrypt, decompress, describe the frame. Null
    /// payloads are always shown; others need `-k`.
    fn payload_fields(&mut self, o: &mut Obj, hdr: &Header, p: &Packet<'_>) {
        let tid = p.transform;
        let id = match TransformId::try_from(tid) {
            Ok(id) => id,
            Err(e) => {
                if self.payload.is_some() {
                    o.display("payload_error", e);
                }
                return;
            }
        };
        let (key, selected) = match &self.payload {
            Some(cfg) => (cfg.key.clone(), Some(cfg.selected)),
            None if id == TransformId::Null => (None, None),
            None => return,
        };
        if selected.is_some_and(|s| s != id) {
            // A C edge with these options would drop it; decode it anyway.
            o.bool("transform_mismatch", true);
        }
        let key = match (id.needs_key(), key) {
            (false, _) => Vec::new(),
            (true, Some(k)) => k,
            (true, None) => {
                o.display("payload_error", TransformError::KeyRequired(id));
                return;
            }
        };
        let aad = packet_aad(
            VERSION,
            hdr.community.field(),
            &p.src_mac.octets(),
            &p.dst_mac.octets(),
            p.compression,
            tid,
        );
        let mut plain = vec![0u8; p.payload.len()];
        let res = self
            .transform(id, &key, hdr.community.field())
            .and_then(|t| t.decrypt(p.payload, &aad, &mut plain));
        let dec = match res {
            Ok(dec) => dec,
            Err(e) => {
                o.display("payload_error", e);
                return;
            }
        };
        if let Some(nonce) = dec.nonce {
            o.num("nonce_prefix", nonce.prefix)
                .num("nonce_counter", nonce.counter);
        }
        let data = plain.get(..dec.len).unwrap_or(&plain);
        let cid = match CompressionId::try_from(p.compression) {
            Ok(cid) => cid,
            Err(e) => {
                o.display("payload_error", e);
                return;
            }
        };
        let mut frame_buf = [0u8; compress::MAX_FRAME_SIZE];
        match self.decompressor.decompress(cid, data, &mut frame_buf) {
            Ok(len) => frame::fields(o, frame_buf.get(..len).unwrap_or(&[])),
            Err(e) => {
                o.display("payload_error", e);
            }
        }
    }
}

fn header_fields(o: &mut Obj, hdr: &Header) {
    o.num("ttl", hdr.ttl);
    o.num("flags", hdr.flags.bits());
    o.display("community", hdr.community);
    if !hdr.community.is_zero_padded() {
        o.hex("community_field", hdr.community.field());
    }
}

fn he_fields(o: &mut Obj, h: &HeInfo, buf: &[u8]) {
    o.str("he_key", h.key.name());
    o.num("stamp", h.d.stamp);
    o.secs_micros(
        "stamp_time",
        h.d.stamp >> 32,
        ((h.d.stamp >> 12) & 0xf_ffff) as u32,
    );
    o.len("he_header_len", h.d.header_len);
    if let Some(trailer) = buf.get(h.d.len..).filter(|t| !t.is_empty()) {
        o.hex("trailer", trailer);
    }
    if let Some(r) = &h.stamp_check {
        o.bool("stamp_ok", r.is_ok());
        if let Err(e) = r {
            o.display("stamp_error", e);
        }
    }
}

fn mac(o: &mut Obj, k: &str, m: Mac) {
    o.display(k, m);
}

fn sock(o: &mut Obj, k: &str, s: Option<PeerSock>) {
    if let Some(s) = s {
        o.display(k, s);
    }
}

fn auth(o: &mut Obj, a: &Auth) {
    o.num("auth_scheme", a.scheme());
    o.num("token_size", a.token_size());
    if !a.token().is_empty() {
        o.hex("token", a.token());
    }
}

/// Printable ASCII as is, anything else as `\xNN`.
fn escaped(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_graphic() || c == b' ' {
            s.push(char::from(c));
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

fn sn_list(list: &SnList<'_>) -> String {
    array(list.iter().map(|e| {
        let mut o = Obj::new();
        match e.sock() {
            Some(s) => {
                o.display("sock", s);
            }
            None => {
                o.num("family", e.family)
                    .num("port", e.port)
                    .hex("addr", &e.addr);
            }
        }
        o.display("mac", e.mac);
        o.finish()
    }))
}

fn message_fields(o: &mut Obj, msg: &Message<'_>) {
    match msg {
        Message::Register(m) => {
            o.num("cookie", m.cookie);
            mac(o, "src_mac", m.src_mac);
            mac(o, "dst_mac", m.dst_mac);
            sock(o, "sock", m.sock);
            o.display("dev_addr", m.dev_addr);
            o.display("desc", m.dev_desc);
        }
        Message::Packet(p) => {
            mac(o, "src_mac", p.src_mac);
            mac(o, "dst_mac", p.dst_mac);
            sock(o, "sock", p.sock);
            o.num("compression", p.compression);
            if let Ok(c) = CompressionId::try_from(p.compression) {
                o.str("compression_name", c.name());
            }
            o.num("transform", p.transform);
            if let Ok(t) = TransformId::try_from(p.transform) {
                o.str("transform_name", t.name());
            }
            o.len("payload_len", p.payload.len());
        }
        Message::RegisterAck(m) => {
            o.num("cookie", m.cookie);
            mac(o, "dst_mac", m.dst_mac);
            mac(o, "src_mac", m.src_mac);
            sock(o, "sock", m.sock);
        }
        Message::RegisterSuper(m) => {
            o.num("cookie", m.cookie);
            mac(o, "edge_mac", m.edge_mac);
            sock(o, "sock", m.sock);
            o.display("dev_addr", m.dev_addr);
            o.display("desc", m.dev_desc);
            auth(o, &m.auth);
            o.num("key_time", m.key_time);
        }
        Message::UnregisterSuper(m) => {
            auth(o, &m.auth);
            mac(o, "src_mac", m.src_mac);
        }
        Message::RegisterSuperAck(m) => {
            o.num("cookie", m.cookie);
            mac(o, "src_mac", m.src_mac);
            o.display("dev_addr", m.dev_addr);
            o.num("lifetime", m.lifetime);
            sock(o, "sock", Some(m.sock));
            auth(o, &m.auth);
            o.len("num_sn", m.sn_list.len());
            o.raw("sn_list", &sn_list(&m.sn_list));
            o.num("key_time", m.key_time);
        }
        Message::RegisterSuperNak(m) => {
            o.num("cookie", m.cookie);
            mac(o, "src_mac", m.src_mac);
            auth(o, &m.auth);
        }
        Message::PeerInfo(m) => {
            o.num("aflags", m.aflags);
            mac(o, "src_mac", m.src_mac);
            mac(o, "mac", m.mac);
            sock(o, "sock", Some(m.sock));
            sock(o, "preferred_sock", m.preferred_sock);
            o.num("load", m.load);
            o.num("uptime", m.uptime);
            o.str("version", &escaped(m.version_bytes()));
            o.bool("pong", m.is_pong());
        }
        Message::QueryPeer(m) => {
            mac(o, "src_mac", m.src_mac);
            mac(o, "target_mac", m.target_mac);
            o.num("aflags", m.aflags);
            o.bool("ping", m.is_ping());
        }
        Message::ReRegisterSuper => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn federation_field_residue() {
        assert_eq!(federation_field("Federation"), he::DEFAULT_FEDERATION_FIELD);
        let f = federation_field("rocksFed");
        assert_eq!(&f[..12], b"*rocksFed\0n\0");
        assert!(f[12..].iter().all(|&b| b == 0));
        let f = federation_field("myfed");
        assert_eq!(&f[..12], b"*myfed\0tion\0");
        // 17 characters kept, the 19th byte is the NUL.
        let f = federation_field("abcdefghijklmnopqrstuvwxyz");
        assert_eq!(&f[..19], b"*abcdefghijklmnopq\0");
    }

    #[test]
    fn escaped_bytes() {
        assert_eq!(escaped(b"3.1.1"), "3.1.1");
        assert_eq!(escaped(b"a\x00\xff"), "a\\x00\\xff");
    }
}
