//! User/password authentication against the published values:
//! test-vectors.md §6 (keys, shared secret, token, answer, dynamic key),
//! crypto.md §5.2 (`logan`/`007`), the C unit-test outputs
//! `tests-auth.expected` / `tests-elliptic.expected`, and the keygen lines
//! of the `userpw-auth` manifest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use n2n_proto::auth::{
    self, AnswerToken, AuthError, PrivateKey, PublicKey, SharedSecret, UserKeys, UserToken, keytext,
};
use n2n_proto::he::{self, HeKeys};
use n2n_proto::types::Auth;

fn h<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn field(name: &[u8]) -> [u8; 20] {
    let mut f = [0u8; 20];
    f[..name.len()].copy_from_slice(name);
    f
}

const LOGAN_PRV: &str = "43d321c4c9dc4dff29b3f311e13ecb30fe397463cad2daf17ffc11442d4f9b74";
const LOGAN_PUB: &str = "c51838c3ed440ae0743619d2a11fe03d4a3cbd415ef157376fdef2a5b5caab34";
const LOGAN_PUB_TEXT: &str = "nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgpG";
const FED_PRV: &str = "29069278cbbdbab41280a8eb2f16d3cc4de08c920a4783a5d4f35a1306fe1e67";
const FED_PUB: &str = "b004b82cf6006cc082c028a40c2e1e78f78a0bca5a73adbb7e30ff7053c2b876";
const FED_PUB_TEXT: &str = "i0IuBFO0RC22m2Ya32uUUFUA2yfQSwsxVZ3-S5F2k7O";
const S: &str = "1f38919f200cf062e6c93e4ca86f5dcd894ea074490b5ff1a1f3dba2dd974453";
const C: &str = "000102030405060708090a0b0c0d0e0f";
const E_C: &str = "0461fe6f5e11626ef2f97292e76dc96a";
const D: &str = "c90a464a49dfcf1e39528c83062f28a3";
const ANSWER: &str = concat!(
    "5c843ef304e1f49ee6d533ffa5fd85c2",
    "4a3cbd415ef157376fdef2a5b5caab34",
    "64588d18530287c706dbba79f89b4b73"
);

#[test]
fn federation_keys() {
    let prv = PrivateKey::federation(b"Federation");
    assert_eq!(hex::encode(prv.expose_bytes()), FED_PRV);
    let fed = prv.public_key();
    assert_eq!(hex::encode(fed.as_bytes()), FED_PUB);
    assert_eq!(fed.to_text().as_str(), FED_PUB_TEXT);
    assert_eq!(PublicKey::default_federation(), fed);
    assert_eq!(auth::DEFAULT_FEDERATION_NAME, b"Federation");
    assert_eq!(
        PublicKey::federation(b"secretFed").to_string(),
        "opIyaWhWjKLJSNOHNpKnGmelhHWRqkmY5pAx7lbDHp4"
    );
    assert_eq!(
        PublicKey::federation(b"rocksFed").to_string(),
        "RNMH9vMfDlJLM32Br71L3jnp9HozxAXWUVONs+PyXMm"
    );
}

#[test]
fn user_keys_logan() {
    let prv = PrivateKey::user(b"logan", b"007");
    assert_eq!(hex::encode(prv.expose_bytes()), LOGAN_PRV);
    let pub_u = prv.public_key();
    assert_eq!(hex::encode(pub_u.as_bytes()), LOGAN_PUB);
    assert_eq!(pub_u.to_text().as_str(), LOGAN_PUB_TEXT);
    assert_eq!(LOGAN_PUB_TEXT.parse::<PublicKey>(), Ok(pub_u));

    // The pitfall: the standard base point gives another key.
    let standard = x25519_std_base(prv.expose_bytes());
    assert_eq!(
        hex::encode(standard),
        "526d8a2a6dbb843350c22d90dd4e35f67b748509bc5d6d8824bdaeb9b80a6368"
    );
    assert_ne!(&standard, pub_u.as_bytes());

    // S from both sides.
    let fed_prv = PrivateKey::federation(b"Federation");
    let s_edge = prv.shared_secret(&fed_prv.public_key());
    let s_sn = fed_prv.shared_secret(&pub_u);
    assert_eq!(hex::encode(s_edge.expose_bytes()), S);
    assert_eq!(s_sn.expose_bytes(), s_edge.expose_bytes());

    let keys = UserKeys::new(b"logan", b"007", &PublicKey::default_federation());
    assert_eq!(keys.public_key(), &pub_u);
    assert_eq!(hex::encode(keys.secret().expose_bytes()), S);
}

/// X25519 with the RFC 7748 base point, for the pitfall row only.
fn x25519_std_base(k: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::x25519(*k, x25519_dalek::X25519_BASEPOINT_BYTES)
}

#[test]
fn token_answer_and_dynamic_key() {
    let keys = UserKeys::new(b"logan", b"007", &PublicKey::default_federation());
    let c: [u8; 16] = h(C);
    let token = UserToken::new(&keys, &c);
    assert_eq!(hex::encode(token.as_bytes()), format!("{LOGAN_PUB}{E_C}"));
    assert_eq!(token.public_key(), *keys.public_key());
    assert_eq!(hex::encode(token.encrypted_challenge()), E_C);

    // Supernode side: S_u from prv_f and the token's public key.
    let s_u = PrivateKey::federation(b"Federation").shared_secret(&token.public_key());
    assert_eq!(token.challenge(&s_u), c);

    // D for community netleo, federation field *Federation, key_time 1700000000.
    let d = auth::dynamic_key(&field(b"netleo"), &field(b"*Federation"), 1_700_000_000);
    assert_eq!(hex::encode(d), D);
    let ans = s_u.answer(&token, &d);
    assert_eq!(hex::encode(ans.as_bytes()), ANSWER);

    // Edge side: D back out, header keys from it.
    assert_eq!(keys.secret().open_answer(&ans, &c), Ok(d));
    let k = HeKeys::from_dynamic_key(&d);
    assert_eq!(hex::encode(k.k_hdr()), "95b34c3df697b0591d06b5d5be985b3b");
    assert_eq!(hex::encode(k.k_iv()), "9dabda9711cd23b2a8500d5232a00c9e");

    // Another challenge (an old REGISTER_SUPER's) is refused.
    let mut old = c;
    old[15] ^= 1;
    assert_eq!(
        keys.secret().open_answer(&ans, &old),
        Err(AuthError::ChallengeMismatch)
    );
    // Another user's keys are refused.
    let other = UserKeys::new(b"logan", b"008", &PublicKey::default_federation());
    assert_eq!(
        other.secret().open_answer(&ans, &c),
        Err(AuthError::ChallengeMismatch)
    );

    // Through wire auth blocks.
    let a = token.to_auth();
    assert_eq!((a.scheme(), a.token_size()), (2, 48));
    assert_eq!(UserToken::from_auth(&a), Ok(token));
    assert_eq!(AnswerToken::from_auth(&ans.to_auth()), Ok(ans));
    assert_eq!(
        UserToken::from_auth(&Auth::new(1, &[0; 16]).unwrap()),
        Err(AuthError::WrongScheme(1))
    );
    assert_eq!(
        AnswerToken::from_auth(&Auth::new(2, &[0; 47]).unwrap()),
        Err(AuthError::BadTokenSize(47))
    );
    assert_eq!(
        UserToken::from_auth(&Auth::NONE),
        Err(AuthError::WrongScheme(0))
    );
}

#[test]
fn trailer_round_trip() {
    let keys = UserKeys::new(b"logan", b"007", &PublicKey::default_federation());
    let s = keys.secret();
    let mut buf = [0u8; 80];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = i as u8;
    }
    assert_eq!(s.append_trailer(&mut buf, 64), Ok(80));
    let mut want = n2n_proto::crypto::pearson::hash128(&buf[..64]);
    s.encrypt_block(&mut want);
    assert_eq!(buf[64..], want);
    assert_eq!(s.verify_trailer(&buf), Ok(()));
    assert_eq!(
        s.verify_trailer_hash(
            &auth::trailer_hash(&buf[..64]),
            buf[64..].try_into().unwrap()
        ),
        Ok(())
    );
    let sn = PrivateKey::federation(b"Federation").shared_secret(keys.public_key());
    assert_eq!(sn.verify_trailer(&buf), Ok(()));
    let other = UserKeys::new(b"bob", b"007", &PublicKey::default_federation());
    assert_eq!(
        other.secret().verify_trailer(&buf),
        Err(AuthError::BadTrailer)
    );
    for i in 0..buf.len() {
        let mut t = buf;
        t[i] ^= 0x80;
        assert_eq!(s.verify_trailer(&t), Err(AuthError::BadTrailer), "byte {i}");
    }
    assert_eq!(
        s.append_trailer(&mut buf, 65),
        Err(AuthError::BufferTooSmall { need: 81, have: 80 })
    );
    assert_eq!(
        s.verify_trailer(&buf[..39]),
        Err(AuthError::TooShortForTrailer(39))
    );
    assert!(auth::split_trailer(&buf[..40]).is_ok());
    assert_eq!(
        s.append_trailer(&mut buf, usize::MAX),
        Err(AuthError::BufferTooSmall {
            need: usize::MAX,
            have: 80
        })
    );
}

#[test]
fn c_strings_stop_at_nul() {
    let a = PrivateKey::user(b"logan\0x", b"007\0yy");
    assert_eq!(hex::encode(a.expose_bytes()), LOGAN_PRV);
    assert_eq!(
        PrivateKey::federation(b"Federation\0residue").expose_bytes(),
        PrivateKey::federation(b"Federation").expose_bytes()
    );
}

#[test]
fn federation_name_fields() {
    assert_eq!(
        auth::federation_field(b"Federation"),
        he::DEFAULT_FEDERATION_FIELD
    );
    let f = auth::federation_field_from_option(b"rocksFed");
    assert_eq!(f, field(b"*rocksFed\0n"));
    assert_eq!(auth::federation_key_name(&f), b"rocksFed");
    let f = auth::federation_field_from_option(b"myfed");
    assert_eq!(f, field(b"*myfed\0tion"));
    assert_eq!(auth::federation_key_name(&f), b"myfed");
    // At most 17 characters are kept (snprintf into 19 bytes).
    let f = auth::federation_field_from_option(b"abcdefghijklmnopqrstuvwxyz");
    assert_eq!(&f[..19], b"*abcdefghijklmnopq\0");
    assert_eq!(auth::federation_key_name(&f), b"abcdefghijklmnopq");
    assert_eq!(f[19], 0);
    // N2N_FEDERATION: a fresh field.
    assert_eq!(auth::federation_field(b"rocksFed"), field(b"*rocksFed"));
    assert_eq!(
        auth::federation_field_renamed(&field(b"*abcdefghijklmnopq"), b"x"),
        field(b"*x\0cdefghijklmnopq")
    );
    assert_eq!(auth::federation_field(b""), field(b"*"));
    assert_eq!(auth::federation_key_name(&field(b"*")), b"");
    assert_eq!(auth::federation_key_name(&field(b"noStar")), b"noStar");
}

#[test]
fn packet_header_len() {
    assert_eq!(auth::packet_encrypted_len(38, 0), 38);
    assert_eq!(auth::packet_encrypted_len(38, 5), 43);
    assert_eq!(auth::packet_encrypted_len(38, 16), 54);
    assert_eq!(auth::packet_encrypted_len(46, 1400), 62);
}

#[test]
fn debug_redacts_secrets() {
    let prv = PrivateKey::user(b"logan", b"007");
    let s = prv.shared_secret(&PublicKey::default_federation());
    let keys = UserKeys::new(b"logan", b"007", &PublicKey::default_federation());
    let all = format!("{prv:?} {s:?} {keys:?}");
    assert!(!all.contains("43d3") && !all.contains("1f38"), "{all}");
    assert!(all.contains("<redacted>"), "{all}");
    assert!(all.contains(LOGAN_PUB_TEXT), "{all}");
    assert_eq!(
        format!("{:?}", PublicKey::default_federation()),
        format!("PublicKey({FED_PUB_TEXT})")
    );
    let _: &SharedSecret = keys.secret();
}

// ---------------------------------------------------------------------------
// C unit-test outputs (unit-expected/tests-auth.expected, tests-elliptic.expected)

/// The bytes of the hex dump lines (`000: xx xx …  |…|`) following the line
/// `title` in `text`.
fn dump_after(text: &str, title: &str) -> Vec<u8> {
    let mut lines = text.lines().skip_while(|l| *l != title);
    assert!(lines.next().is_some(), "no line {title:?}");
    let mut out = Vec::new();
    for l in lines {
        let Some((off, rest)) = l.split_once(": ") else {
            break;
        };
        if off.len() != 3 || !off.chars().all(|c| c.is_ascii_hexdigit()) {
            break;
        }
        let hexpart = rest.split("  |").next().unwrap();
        for b in hexpart.split_whitespace() {
            out.push(u8::from_str_radix(b, 16).unwrap());
        }
    }
    assert!(!out.is_empty(), "empty dump after {title:?}");
    out
}

fn unit_expected(name: &str) -> String {
    let p = n2n_testdata::captures_dir()
        .join("unit-expected")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn c_tests_auth_expected() {
    let t = unit_expected("tests-auth.expected");
    let input = dump_after(&t, "bin_to_ascii: input size = 0x10");
    let text_line = t
        .lines()
        .find_map(|l| l.strip_prefix("bin_to_ascii: output: "))
        .unwrap();
    let mut out = [0u8; 22];
    assert_eq!(keytext::encode(&input, &mut out), Ok(22));
    assert_eq!(core::str::from_utf8(&out).unwrap(), text_line);

    let back = dump_after(&t, "ascii_to_bin: output:");
    let mut buf = [0u8; 32];
    keytext::decode(text_line.as_bytes(), &mut buf).unwrap();
    assert_eq!(buf[..], back[..]);

    let prv_want = dump_after(&t, "generate_private_key: output:");
    let prv = PrivateKey::federation(text_line.as_bytes());
    assert_eq!(prv.expose_bytes()[..], prv_want[..]);

    let pub_want = dump_after(&t, "generate_public_key: output:");
    let pub_k = prv.public_key();
    assert_eq!(pub_k.as_bytes()[..], pub_want[..]);

    let shared_want = dump_after(&t, "generate_shared_secret: output:");
    assert_eq!(
        prv.shared_secret(&pub_k).expose_bytes()[..],
        shared_want[..]
    );
}

#[test]
fn c_tests_elliptic_expected() {
    let t = unit_expected("tests-elliptic.expected");
    let point = dump_after(&t, "environment: input");
    assert_eq!(point[..], auth::GENERATOR[..]);
    let key: [u8; 32] = dump_after(&t, "environment: key").try_into().unwrap();
    let want = dump_after(&t, "curve25519: output");
    assert_eq!(
        PrivateKey::from_bytes(key).public_key().as_bytes()[..],
        want[..]
    );
}

#[test]
fn userpw_manifest_keygen_lines() {
    let dir = n2n_testdata::captures_dir().join("userpw-auth");
    let m = n2n_testdata::read_json(&dir.join("manifest.json"));
    let users = m["auth"]["users"].as_object().unwrap();
    assert_eq!(users.len(), 2);
    for (user, u) in users {
        let pw = u["password"].as_str().unwrap();
        let pub_u = PrivateKey::user(user.as_bytes(), pw.as_bytes()).public_key();
        assert_eq!(
            format!("* {user} {pub_u}"),
            u["keygen_line"].as_str().unwrap()
        );
    }
    let fed = m["auth"]["federation_name"].as_str().unwrap();
    assert_eq!(
        PublicKey::federation(fed.as_bytes()).to_string(),
        m["auth"]["federation_public_key_edge_-P"].as_str().unwrap()
    );
}
