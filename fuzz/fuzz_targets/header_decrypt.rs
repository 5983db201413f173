//! Header decryption on arbitrary bytes with a few fixed community keys
//! (`rocks` static, `rocks` with the user/password dynamic key of the
//! vectors, the federation with and without the `-F rocksFed` residue).
//! Must never panic; a failed attempt must leave the buffer byte-for-byte
//! unchanged; a successful one must re-encrypt (same stamp and random bytes)
//! to the input. Also: encrypt-then-decrypt of the input as a plain message.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use n2n_proto::he::{self, CommunityHe, HeKeyKind, HeKeys, NAME_FIELD_LEN};

fn field(name: &[u8]) -> [u8; NAME_FIELD_LEN] {
    let mut f = [0u8; NAME_FIELD_LEN];
    f[..name.len()].copy_from_slice(name);
    f
}

fn communities() -> &'static [CommunityHe] {
    static C: OnceLock<Vec<CommunityHe>> = OnceLock::new();
    C.get_or_init(|| {
        let fed_keys = HeKeys::from_community_field(&he::DEFAULT_FEDERATION_FIELD);
        let mut userpw = CommunityHe::new(field(b"rocks"));
        userpw.set_dynamic_key(&[
            0xf0, 0x52, 0x80, 0x1e, 0x1d, 0x42, 0xd4, 0x80, 0x9d, 0xb6, 0x0b, 0xe3, 0x5e, 0x0d,
            0xa2, 0x59,
        ]);
        vec![
            CommunityHe::new(field(b"rocks")),
            userpw,
            CommunityHe::with_static_keys(he::DEFAULT_FEDERATION_FIELD, fed_keys.clone()),
            CommunityHe::with_static_keys(field(b"*rocksFed\0n"), fed_keys),
        ]
    })
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    for (d, s) in a.iter_mut().zip(b) {
        *d = *s;
    }
    u64::from_be_bytes(a)
}

fuzz_target!(|data: &[u8]| {
    let _ = he::looks_plain(data);
    for c in communities() {
        // The C try order.
        let mut buf = data.to_vec();
        match c.decrypt(&mut buf) {
            Err(_) => assert_eq!(buf, data, "failed decrypt modified the buffer"),
            Ok((kind, d)) => {
                assert!(d.len <= data.len());
                assert!((he::MIN_LEN..=d.len).contains(&d.header_len));
                assert_eq!(buf[d.len..], data[d.len..], "trailer modified");
                assert_eq!(&buf[4..24], c.name_field(), "name field not restored");
                let mut re = buf[..d.len].to_vec();
                c.encrypt(&mut re, d.header_len, d.stamp, d.rand4, kind)
                    .expect("re-encrypt failed");
                assert_eq!(re, data[..d.len], "re-encryption differs");
            }
        }
        // The free functions with each key pair.
        for kind in [HeKeyKind::Static, HeKeyKind::Dynamic] {
            let keys = c.keys(kind);
            let mut b = data.to_vec();
            if he::decrypt(&mut b, keys, c.name_field()).is_err() {
                assert_eq!(b, data);
            }
            let mut b = data.to_vec();
            if he::decrypt_without_trailer(&mut b, keys, c.name_field()).is_err() {
                assert_eq!(b, data);
            }
        }
    }

    // Stamp checks on arbitrary values never panic and refuse replays.
    let stamp = be_u64(data);
    let now = be_u64(data.get(8..).unwrap_or(&[]));
    let mut prev = stamp;
    let _ = he::verify_stamp(stamp, now, None, true);
    assert!(he::verify_stamp(stamp, now, Some(&mut prev), false).is_err());

    // Encrypt the input as a plain message, decrypt it back.
    if data.len() >= he::MIN_LEN {
        let c = &communities()[(data[0] % 4) as usize];
        let h = he::MIN_LEN
            + usize::from(u16::from_be_bytes([data[1], data[2]])) % (data.len() - he::MIN_LEN + 1);
        let rand4 = [data[3], data[5], data[7], data[9]];
        let mut plain = data.to_vec();
        plain[4..24].copy_from_slice(c.name_field());
        let mut enc = plain.clone();
        c.encrypt(&mut enc, h, stamp, rand4, HeKeyKind::Dynamic)
            .expect("encrypt refused a valid header length");
        let mut dec = enc.clone();
        let (kind, d) = c
            .decrypt(&mut dec)
            .expect("own ciphertext does not decrypt");
        assert_eq!(kind, HeKeyKind::Dynamic);
        assert_eq!(
            (d.stamp, d.header_len, d.len, d.rand4),
            (stamp, h, plain.len(), rand4)
        );
        assert_eq!(dec, plain);
    }
});
