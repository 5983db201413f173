//! Property and hostile-input tests of user/password authentication:
//! key text, token, answer and trailer round trips, the whole
//! REGISTER_SUPER path (encode, header-encrypt, trailer; then hash, decrypt,
//! decode, find the user, verify), and arbitrary bytes into every parser
//! and verifier (typed errors, never a panic). Deterministic: fixed ChaCha
//! seed, no failure persistence files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use n2n_proto::auth::{
    self, AnswerToken, AuthError, KeyTextError, PrivateKey, PublicKey, SharedSecret, UserKeys,
    UserToken, keytext,
};
use n2n_proto::he::{self, CommunityHe, HeKeyKind};
use n2n_proto::types::{Auth, Community, DevAddr, DevDesc, Mac};
use n2n_proto::wire::{self, Header, Message, RegisterSuper};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(0x7573_6572_7077),
        failure_persistence: None,
        ..Config::default()
    }
}

/// One fixed user towards the default federation, both sides (X25519 is
/// slow in debug builds: derive once).
fn fixed() -> &'static (UserKeys, SharedSecret) {
    static K: OnceLock<(UserKeys, SharedSecret)> = OnceLock::new();
    K.get_or_init(|| {
        let keys = UserKeys::new(b"alice", b"alicepw", &PublicKey::default_federation());
        let s_u = PrivateKey::federation(b"Federation").shared_secret(keys.public_key());
        (keys, s_u)
    })
}

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+-";

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn keytext_round_trip(data in proptest::collection::vec(any::<u8>(), 0..80)) {
        let mut text = vec![0u8; keytext::encoded_len(data.len())];
        prop_assert_eq!(keytext::encode(&data, &mut text), Ok(text.len()));
        prop_assert!(text.iter().all(|c| ALPHABET.contains(c)));
        let mut back = vec![0u8; keytext::decoded_len(text.len())];
        prop_assert_eq!(keytext::decode(&text, &mut back), Ok(back.len()));
        // ⌊6⌈8n/6⌉/8⌋ = n: no byte lost or invented.
        prop_assert_eq!(back, data);
    }

    #[test]
    fn key_text_32(key in any::<[u8; 32]>()) {
        let pk = PublicKey::from_bytes(key);
        let t = pk.to_text();
        prop_assert_eq!(t.as_str().len(), auth::KEY_TEXT_LEN);
        prop_assert_eq!(t.as_str().parse::<PublicKey>(), Ok(pk));
    }

    /// Any 43 characters of the alphabet decode; re-encoding gives them back
    /// except the two dropped low bits of the last character.
    #[test]
    fn any_alphabet_text_decodes(idx in proptest::collection::vec(0usize..64, 43)) {
        let text: Vec<u8> = idx.iter().map(|&i| ALPHABET[i]).collect();
        let key = keytext::decode_key(&text).unwrap();
        let re = keytext::encode_key(&key);
        prop_assert_eq!(&re.as_bytes()[..42], &text[..42]);
        prop_assert_eq!(ALPHABET[idx[42] & !3], re.as_bytes()[42]);
    }

    /// Arbitrary bytes: a typed error or a key, never a panic.
    #[test]
    fn hostile_key_text(text in proptest::collection::vec(any::<u8>(), 0..60)) {
        match keytext::decode_key(&text) {
            Ok(_) => prop_assert!(text.len() == 43 && text.iter().all(|c| ALPHABET.contains(c))),
            Err(KeyTextError::BadLength(n)) => prop_assert!(n == text.len() && n != 43),
            Err(KeyTextError::BadChar { pos, byte }) => {
                prop_assert_eq!(text[pos], byte);
                prop_assert!(!ALPHABET.contains(&byte));
                prop_assert!(text[..pos].iter().all(|c| ALPHABET.contains(c)));
            }
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
        let mut out = [0u8; 8];
        let r = keytext::decode(&text, &mut out);
        if keytext::decoded_len(text.len()) > out.len() {
            let is_small = matches!(r, Err(KeyTextError::BufferTooSmall { .. }));
            prop_assert!(is_small);
        }
    }

    #[test]
    fn trailer_round_trip(
        msg in proptest::collection::vec(any::<u8>(), 24..300),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let (keys, s_u) = fixed();
        let mut buf = msg.clone();
        buf.resize(msg.len() + auth::TRAILER_LEN, 0);
        prop_assert_eq!(keys.secret().append_trailer(&mut buf, msg.len()), Ok(buf.len()));
        prop_assert_eq!(&buf[..msg.len()], &msg[..]);
        prop_assert_eq!(s_u.verify_trailer(&buf), Ok(()));
        prop_assert_eq!(keys.secret().verify_trailer(&buf), Ok(()));
        let i = flip.index(buf.len());
        buf[i] ^= 1 << bit;
        prop_assert_eq!(s_u.verify_trailer(&buf), Err(AuthError::BadTrailer));
    }

    /// The whole edge → supernode → edge exchange for a fixed user with
    /// arbitrary challenges and dynamic keys.
    #[test]
    fn token_and_answer_round_trip(
        c in any::<[u8; 16]>(),
        d in any::<[u8; 16]>(),
        delta in any::<[u8; 16]>(),
    ) {
        let (keys, s_u) = fixed();
        let token = UserToken::new(keys, &c);
        prop_assert_eq!(UserToken::from_bytes(token.as_bytes()), Ok(token));
        prop_assert_eq!(UserToken::from_auth(&token.to_auth()), Ok(token));
        prop_assert_eq!(&token.public_key(), keys.public_key());
        prop_assert_eq!(token.challenge(s_u), c);
        let ans = s_u.answer(&token, &d);
        prop_assert_eq!(AnswerToken::from_auth(&ans.to_auth()), Ok(ans));
        prop_assert_eq!(&ans.as_bytes()[16..32], &token.as_bytes()[16..32]);
        prop_assert_eq!(keys.secret().open_answer(&ans, &c), Ok(d));
        if delta != [0; 16] {
            let other: [u8; 16] = core::array::from_fn(|i| c[i] ^ delta[i]);
            prop_assert_eq!(
                keys.secret().open_answer(&ans, &other),
                Err(AuthError::ChallengeMismatch)
            );
        }
    }

    /// Arbitrary tokens and answers: typed errors, never a panic.
    #[test]
    fn hostile_tokens(
        bytes in proptest::collection::vec(any::<u8>(), 0..100),
        scheme in any::<u16>(),
        c in any::<[u8; 16]>(),
    ) {
        let (keys, s_u) = fixed();
        match UserToken::from_bytes(&bytes) {
            Ok(t) => {
                prop_assert_eq!(bytes.len(), 48);
                let _ = t.challenge(s_u);
                let _ = s_u.answer(&t, &c);
            }
            Err(e) => prop_assert_eq!(e, AuthError::BadTokenSize(bytes.len())),
        }
        match AnswerToken::from_bytes(&bytes) {
            Ok(a) => {
                let _ = keys.secret().open_answer(&a, &c);
            }
            Err(e) => prop_assert_eq!(e, AuthError::BadTokenSize(bytes.len())),
        }
        if let Ok(a) = Auth::new(scheme, bytes.get(..48).unwrap_or(&bytes)) {
            match UserToken::from_auth(&a) {
                Ok(_) => prop_assert!(scheme == 2 && a.token_size() == 48),
                Err(AuthError::WrongScheme(s)) => prop_assert!(s == scheme && s != 2),
                Err(AuthError::BadTokenSize(n)) => prop_assert!(scheme == 2 && n != 48),
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        }
        match keys.secret().verify_trailer(&bytes) {
            Err(AuthError::TooShortForTrailer(n)) => prop_assert!(n < 40 && n == bytes.len()),
            Err(AuthError::BadTrailer) | Ok(()) => prop_assert!(bytes.len() >= 40),
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
        let mut buf = bytes.clone();
        let n = bytes.len() / 2;
        match keys.secret().append_trailer(&mut buf, n) {
            Ok(len) => prop_assert!(len == n + 16 && len <= bytes.len()),
            Err(AuthError::BufferTooSmall { need, have }) => {
                prop_assert!(need == n + 16 && have == bytes.len() && need > have);
                prop_assert_eq!(&buf, &bytes);
            }
            Err(e) => prop_assert!(false, "unexpected {e:?}"),
        }
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Supernode admission of an encoded, header-encrypted, trailed
    /// REGISTER_SUPER: hash first, decrypt over len − 16, decode, look the
    /// user up by the token's key, verify.
    #[test]
    fn register_super_datagram(
        c in any::<[u8; 16]>(),
        cookie in any::<u32>(),
        mac in any::<[u8; 6]>(),
        stamp in any::<u64>(),
        rand4 in any::<[u8; 4]>(),
    ) {
        let (keys, s_u) = fixed();
        let community = Community::new("rocks").unwrap();
        let he_c = CommunityHe::new(*community.field());
        let rs = RegisterSuper {
            cookie,
            edge_mac: Mac(mac),
            sock: None,
            dev_addr: DevAddr::UNSPECIFIED,
            dev_desc: DevDesc::new("alice"),
            auth: UserToken::new(keys, &c).to_auth(),
            key_time: 0,
        };
        let msg = Message::RegisterSuper(rs);
        let mut buf = [0u8; 256];
        let n = wire::encode(&Header::new(community), &msg, &mut buf).unwrap();
        he_c.encrypt(&mut buf[..n], n, stamp, rand4, HeKeyKind::Static).unwrap();
        let len = keys.secret().append_trailer(&mut buf, n).unwrap();
        let mut dg = buf[..len].to_vec();

        let (body, trailer) = auth::split_trailer(&dg).unwrap();
        let trailer = *trailer;
        let hash = auth::trailer_hash(body);
        let (kind, d) = he_c.decrypt(&mut dg).unwrap();
        prop_assert_eq!(kind, HeKeyKind::Static);
        prop_assert_eq!(d.len, n);
        let (_, got) = wire::decode(&dg[..d.len]).unwrap();
        let Message::RegisterSuper(got) = got else {
            return Err(TestCaseError::fail("not a REGISTER_SUPER"));
        };
        let token = UserToken::from_auth(&got.auth).unwrap();
        prop_assert_eq!(&token.public_key(), keys.public_key());
        prop_assert_eq!(s_u.verify_trailer_hash(&hash, &trailer), Ok(()));
        prop_assert_eq!(token.challenge(s_u), c);
        // Hashing after decryption (the wrong order) does not verify.
        let wrong = auth::trailer_hash(&dg[..d.len]);
        prop_assert_eq!(s_u.verify_trailer_hash(&wrong, &trailer), Err(AuthError::BadTrailer));
        let _ = he::looks_plain(&dg);
    }
}

/// Different users and federations give different keys; the same inputs
/// give the same keys (no hidden randomness).
#[test]
fn keys_are_deterministic_and_distinct() {
    let fed = PublicKey::default_federation();
    let a = UserKeys::new(b"alice", b"pw", &fed);
    let b = UserKeys::new(b"alice", b"pw", &fed);
    assert_eq!(a.public_key(), b.public_key());
    assert_eq!(a.secret().expose_bytes(), b.secret().expose_bytes());
    let swapped = UserKeys::new(b"pw", b"alice", &fed);
    assert_ne!(a.public_key(), swapped.public_key());
    let other_fed = UserKeys::new(b"alice", b"pw", &PublicKey::federation(b"rocksFed"));
    assert_eq!(a.public_key(), other_fed.public_key());
    assert_ne!(a.secret().expose_bytes(), other_fed.secret().expose_bytes());
}
