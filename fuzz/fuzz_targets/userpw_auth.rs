//! User/password authentication on arbitrary bytes: token, answer, key
//! text, trailer and federation-field parsing and verification never
//! panic and give the typed errors; round trips hold: token → challenge,
//! answer → dynamic key, trailer append → verify, key text encode →
//! decode, X25519 shared secrets agree from both sides (keys derived from
//! the input for 1 input in 16, fixed keys otherwise). The input is also
//! tried as a received REGISTER_SUPER datagram through the supernode's
//! order (hash, static-key decryption over len − 16, decode, user lookup,
//! trailer check).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use n2n_proto::auth::{
    self, AnswerToken, AuthError, KeyTextError, PrivateKey, PublicKey, SharedSecret, UserKeys,
    UserToken, keytext,
};
use n2n_proto::he::{self, CommunityHe};
use n2n_proto::types::Auth;
use n2n_proto::wire::{self, Message};

struct Fixed {
    alice: UserKeys,
    /// alice's S_u at the supernode.
    s_u: SharedSecret,
    rocks: CommunityHe,
}

fn fixed() -> &'static Fixed {
    static F: OnceLock<Fixed> = OnceLock::new();
    F.get_or_init(|| {
        let f20 = auth::federation_field_from_option(b"rocksFed");
        let prv_f = PrivateKey::federation(auth::federation_key_name(&f20));
        let alice = UserKeys::new(b"alice", b"alicepw", &prv_f.public_key());
        let s_u = prv_f.shared_secret(alice.public_key());
        let mut name = [0u8; 20];
        name[..5].copy_from_slice(b"rocks");
        Fixed {
            alice,
            s_u,
            rocks: CommunityHe::new(name),
        }
    })
}

fn block(data: &[u8], at: usize) -> [u8; 16] {
    let mut b = [0u8; 16];
    for (o, i) in b.iter_mut().zip(data.iter().skip(at)) {
        *o = *i;
    }
    b
}

fuzz_target!(|data: &[u8]| {
    let f = fixed();

    // Parsers on arbitrary bytes.
    match UserToken::from_bytes(data) {
        Ok(t) => {
            assert_eq!(data.len(), auth::TOKEN_LEN);
            let c = t.challenge(&f.s_u);
            let _ = f.s_u.answer(&t, &c);
        }
        Err(e) => assert_eq!(e, AuthError::BadTokenSize(data.len())),
    }
    if let Ok(a) = AnswerToken::from_bytes(data.get(..48).unwrap_or(data)) {
        match f.alice.secret().open_answer(&a, &block(data, 48)) {
            Ok(_) | Err(AuthError::ChallengeMismatch) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let scheme = u16::from_be_bytes([
        data.first().copied().unwrap_or(0),
        data.get(1).copied().unwrap_or(0),
    ]);
    if let Ok(a) = Auth::new(scheme, data.get(2..50).unwrap_or(&[])) {
        match UserToken::from_auth(&a) {
            Ok(_) => assert!(scheme == 2 && a.token_size() == 48),
            Err(AuthError::WrongScheme(s)) => assert!(s == scheme && s != 2),
            Err(AuthError::BadTokenSize(n)) => assert!(scheme == 2 && n != 48),
            Err(e) => panic!("unexpected {e:?}"),
        }
        let _ = AnswerToken::from_auth(&a);
    }
    match keytext::decode_key(data) {
        Ok(k) => assert_eq!(
            PublicKey::from_bytes(k).to_text().as_bytes()[..42],
            data[..42]
        ),
        Err(KeyTextError::BadLength(n)) => assert!(n != 43),
        Err(KeyTextError::BadChar { pos, byte }) => assert_eq!(data[pos], byte),
        Err(e) => panic!("unexpected {e:?}"),
    }
    let mut out = [0u8; 64];
    let _ = keytext::decode(data, &mut out);
    match f.s_u.verify_trailer(data) {
        Ok(()) | Err(AuthError::BadTrailer) => assert!(data.len() >= 40),
        Err(AuthError::TooShortForTrailer(n)) => assert!(n == data.len() && n < 40),
        Err(e) => panic!("unexpected {e:?}"),
    }
    let mut f20 = [0u8; 20];
    for (o, i) in f20.iter_mut().zip(data) {
        *o = *i;
    }
    let renamed = auth::federation_field_renamed(&f20, data.get(16..).unwrap_or(&[]));
    assert_eq!(renamed[0], b'*');
    assert!(auth::federation_key_name(&renamed).len() <= auth::FEDERATION_NAME_MAX);

    // Round trips with the fixed keys.
    let c = block(data, 0);
    let d = block(data, 16);
    let token = UserToken::new(&f.alice, &c);
    assert_eq!(UserToken::from_auth(&token.to_auth()), Ok(token));
    assert_eq!(token.challenge(&f.s_u), c);
    let ans = f.s_u.answer(&token, &d);
    assert_eq!(AnswerToken::from_bytes(ans.as_bytes()), Ok(ans));
    assert_eq!(f.alice.secret().open_answer(&ans, &c), Ok(d));
    if c != d {
        assert_eq!(
            f.alice.secret().open_answer(&ans, &d),
            Err(AuthError::ChallengeMismatch)
        );
    }
    if data.len() >= 24 {
        let mut buf = data.to_vec();
        buf.extend_from_slice(&[0u8; 16]);
        let n = f
            .alice
            .secret()
            .append_trailer(&mut buf, data.len())
            .expect("room for the trailer");
        assert_eq!(n, buf.len());
        assert_eq!(f.s_u.verify_trailer(&buf), Ok(()));
        let (msg, t) = auth::split_trailer(&buf).expect("long enough");
        assert_eq!(msg, data);
        assert_eq!(
            f.s_u.verify_trailer_hash(&auth::trailer_hash(msg), t),
            Ok(())
        );
    }
    let text_in = data.get(..100).unwrap_or(data);
    let mut text = vec![0u8; keytext::encoded_len(text_in.len())];
    assert_eq!(keytext::encode(text_in, &mut text), Ok(text.len()));
    let mut back = vec![0u8; keytext::decoded_len(text.len())];
    assert_eq!(keytext::decode(&text, &mut back), Ok(text_in.len()));
    assert_eq!(back, text_in);

    // Keys from the input (X25519 is slow: 1 input in 16).
    if data.first().is_some_and(|b| b & 0x0f == 0) {
        let (user, rest) = data.split_at(data.len() / 2);
        let (pw, fed) = rest.split_at(rest.len() / 2);
        let prv_f = PrivateKey::federation(fed);
        let keys = UserKeys::new(user, pw, &prv_f.public_key());
        let s_u = prv_f.shared_secret(keys.public_key());
        assert_eq!(keys.secret().expose_bytes(), s_u.expose_bytes());
        let t = UserToken::new(&keys, &c);
        assert_eq!(keys.secret().open_answer(&s_u.answer(&t, &d), &c), Ok(d));
    }

    // The input as a received REGISTER_SUPER (supernode order).
    if let Ok((body, trailer)) = auth::split_trailer(data) {
        let hash = auth::trailer_hash(body);
        let trailer = *trailer;
        let mut buf = data.to_vec();
        if let Ok((_, dec)) = f.rocks.decrypt(&mut buf)
            && let Ok((_, Message::RegisterSuper(rs))) = wire::decode(&buf[..dec.len])
            && let Ok(tok) = UserToken::from_auth(&rs.auth)
            && tok.public_key() == *f.alice.public_key()
        {
            let _ = f.s_u.verify_trailer_hash(&hash, &trailer);
            let _ = tok.challenge(&f.s_u);
        }
    }
    let _ = he::looks_plain(data);
});
