//! Known-answer tests of header encryption: test-vectors.md §1, §4 and §6,
//! crypto.md §4.7.
#![allow(clippy::unwrap_used)]

use n2n_proto::he::{self, CommunityHe, HeError, HeKeyKind, HeKeys};

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    hex::decode(s).unwrap()
}

fn field(name: &[u8]) -> [u8; 20] {
    let mut f = [0u8; 20];
    f[..name.len()].copy_from_slice(name);
    f
}

const STAMP: u64 = 0x655e_0f80_000a_1230;
const RAND: [u8; 4] = [0x55, 0xb2, 0x77, 0xa1];

const RS_PLAIN: &str = "
03 02 00 05 6d 79 6e 65 74 77 6f 72 6b 00 00 00
00 00 00 00 00 00 00 00 11 22 33 44 02 aa bb cc
dd ee 0a 80 00 01 18 68 6f 73 74 31 00 00 00 00
00 00 00 00 00 00 00 00 01 00 10 a0 a1 a2 a3 a4
a5 a6 a7 a8 a9 aa ab ac ad ae af 00 00 00 00";

const RS_ENC: &str = "
17 d6 84 98 2a d2 b0 aa 96 59 25 14 37 2e 4c 1e
3d dc 01 fc ac c4 29 6d 9b e1 eb 05 33 69 ff 5d
c2 57 39 ca 83 b3 53 61 a2 37 c3 92 dd fd 52 90
52 71 19 13 9b 9b 21 5c 3e 8d e2 41 f4 62 0c cd
36 2b 63 99 13 72 a9 86 2e 22 5a b9 34 df 74";

const PKT_PLAIN: &str = "
03 02 00 03 6d 79 6e 65 74 77 6f 72 6b 00 00 00
00 00 00 00 00 00 00 00 02 aa bb cc dd ee ff ff
ff ff ff ff 01 01 00 01 02 03 04 05 06 07 08 09
0a 0b 0c 0d 0e 0f 10 11 12 13";

const PKT_ENC: &str = "
a8 81 cc 83 07 7a 69 a6 7a ab 5c 79 75 39 52 11
1e 39 4c b3 f7 87 7f 90 bc b3 33 c7 6a fe c4 2c
18 90 e1 26 d3 7b 00 01 02 03 04 05 06 07 08 09
0a 0b 0c 0d 0e 0f 10 11 12 13";

#[test]
fn header_keys_table() {
    let cases = [
        (
            "mynetwork",
            "f8c756a21311eba6238837933bff2494",
            "535d296b367fedacb02007b9e1e40098",
        ),
        (
            "n2ntest",
            "bbd40f2f8c7de53a7bfc30937b1d3e81",
            "54c3366998dfeb060926be4115b02b03",
        ),
        (
            "rocks",
            "34a1f9c139f8eb8072cca4d3e2c4b9bf",
            "e95e00fb431831a29f63926ee1dfb31a",
        ),
        (
            "*Federation",
            "b3473ec4c746111bc4ed05335f70d5f0",
            "de2da565d45aea249b5fcc8f42f8128a",
        ),
    ];
    for (name, khdr, kiv) in cases {
        let k = HeKeys::from_community_field(&field(name.as_bytes()));
        assert_eq!(hex::encode(k.k_hdr()), khdr, "{name}");
        assert_eq!(hex::encode(k.k_iv()), kiv, "{name}");
    }
    assert_eq!(he::DEFAULT_FEDERATION_FIELD, field(b"*Federation"));
}

#[test]
fn register_super_encrypt_kat() {
    let name = field(b"mynetwork");
    let keys = HeKeys::from_community_field(&name);
    let plain = unhex(RS_PLAIN);
    assert_eq!(plain.len(), 79);
    assert_eq!(
        n2n_proto::crypto::pearson::hash64(&plain),
        0xeb3f_28f7_04be_d864
    );
    let mut buf = plain.clone();
    he::encrypt(&mut buf, 79, STAMP, RAND, &keys, &name).unwrap();
    assert_eq!(hex::encode(&buf), hex::encode(unhex(RS_ENC)));

    let d = he::decrypt(&mut buf, &keys, &name).unwrap();
    assert_eq!(buf, plain);
    assert_eq!(d.stamp, STAMP);
    assert_eq!(d.header_len, 79);
    assert_eq!(d.len, 79);
    assert_eq!(d.rand4, RAND);
}

#[test]
fn packet_encrypt_kat() {
    let name = field(b"mynetwork");
    let c = CommunityHe::new(name);
    let plain = unhex(PKT_PLAIN);
    assert_eq!(plain.len(), 58);
    let mut buf = plain.clone();
    c.encrypt(&mut buf, 38, STAMP, RAND, HeKeyKind::Dynamic)
        .unwrap();
    assert_eq!(hex::encode(&buf), hex::encode(unhex(PKT_ENC)));
    assert_eq!(buf[38..], plain[38..], "payload must not be touched");

    let (kind, d) = c.decrypt(&mut buf).unwrap();
    assert_eq!(kind, HeKeyKind::Dynamic);
    assert_eq!(buf, plain);
    assert_eq!((d.stamp, d.header_len, d.len), (STAMP, 38, 58));
}

/// The wire bytes do not depend on what the caller left in the community
/// field: `encrypt` writes the name field it is given.
#[test]
fn encrypt_writes_name_field() {
    let name = field(b"mynetwork");
    let keys = HeKeys::from_community_field(&name);
    let mut buf = unhex(RS_PLAIN);
    buf[4..24].fill(0xee);
    he::encrypt(&mut buf, 79, STAMP, RAND, &keys, &name).unwrap();
    assert_eq!(buf, unhex(RS_ENC));
}

#[test]
fn wrong_community_fails_and_restores() {
    let enc = unhex(RS_ENC);
    for other in [&b"mynetwor"[..], b"mynetwork2", b"rocks", b""] {
        let mut buf = enc.clone();
        let c = CommunityHe::new(field(other));
        assert!(c.decrypt(&mut buf).is_err());
        assert_eq!(buf, enc);
    }
    // Right keys, wrong name field: magic matches, checksum does not.
    let keys = HeKeys::from_community_field(&field(b"mynetwork"));
    let mut buf = enc.clone();
    assert_eq!(
        he::decrypt(&mut buf, &keys, &field(b"mynetwork\0x")),
        Err(HeError::ChecksumMismatch)
    );
    assert_eq!(buf, enc);
}

#[test]
fn dynamic_key_vectors() {
    // test-vectors.md §6: community netleo, federation *Federation, key_time 1700000000.
    let d = he::dynamic_key(&field(b"netleo"), &field(b"*Federation"), 1_700_000_000);
    assert_eq!(hex::encode(d), "c90a464a49dfcf1e39528c83062f28a3");
    let k = HeKeys::from_dynamic_key(&d);
    assert_eq!(hex::encode(k.k_hdr()), "95b34c3df697b0591d06b5d5be985b3b");
    assert_eq!(hex::encode(k.k_iv()), "9dabda9711cd23b2a8500d5232a00c9e");

    // userpw-auth capture: the residue field, not the clean name.
    let fed = field(b"*rocksFed\0n");
    let d = he::dynamic_key(&field(b"rocks"), &fed, 1_795_606_466);
    assert_eq!(hex::encode(d), "f052801e1d42d4809db60be35e0da259");
    let clean = he::dynamic_key(&field(b"rocks"), &field(b"*rocksFed"), 1_795_606_466);
    assert_ne!(hex::encode(clean), "f052801e1d42d4809db60be35e0da259");
}

#[test]
fn looks_plain_rule() {
    assert!(he::looks_plain(&unhex(RS_PLAIN)));
    assert!(he::looks_plain(&unhex(PKT_PLAIN)));
    assert!(!he::looks_plain(&unhex(RS_ENC)));
    assert!(!he::looks_plain(&unhex(PKT_ENC)));
    assert!(!he::looks_plain(&unhex(RS_PLAIN)[..23]));
    let mut p = unhex(RS_PLAIN);
    p[23] = 1;
    assert!(!he::looks_plain(&p));
    let mut p = unhex(RS_PLAIN);
    p[3] = 12; // type 12 > 11
    assert!(!he::looks_plain(&p));
    let mut p = unhex(RS_PLAIN);
    p[3] = 0x85; // flags ≥ 0x80
    assert!(!he::looks_plain(&p));
}
