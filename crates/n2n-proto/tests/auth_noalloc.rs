//! User/password authentication never allocates: key derivation, X25519,
//! key text, tokens, answers and trailers all work on the stack and in the
//! caller's buffers.
#![allow(clippy::unwrap_used)]

use n2n_proto::auth::{self, AnswerToken, PrivateKey, PublicKey, UserKeys, UserToken, keytext};

#[global_allocator]
static GLOBAL: n2n_testdata::CountingAlloc = n2n_testdata::CountingAlloc;

use n2n_testdata::allocations_during as allocations;

#[test]
fn auth_does_not_allocate() {
    let mut buf = [0u8; 200];
    let n = allocations(|| {
        let fed = PublicKey::federation(b"rocksFed");
        let keys = UserKeys::new(b"alice", b"alicepw", &fed);
        let text = keys.public_key().to_text();
        let back = PublicKey::from_text(text.as_bytes()).unwrap();
        assert_eq!(&back, keys.public_key());
        let f20 = auth::federation_field_from_option(b"rocksFed");
        let prv_f = PrivateKey::federation(auth::federation_key_name(&f20));
        let s_u = prv_f.shared_secret(keys.public_key());
        let c = [7u8; 16];
        let token = UserToken::new(&keys, &c);
        let t2 = UserToken::from_auth(&token.to_auth()).unwrap();
        let d = auth::dynamic_key(&f20, &f20, 1);
        let ans = s_u.answer(&t2, &d);
        let ans = AnswerToken::from_bytes(ans.as_bytes()).unwrap();
        assert_eq!(keys.secret().open_answer(&ans, &c), Ok(d));
        let len = keys.secret().append_trailer(&mut buf, 100).unwrap();
        assert_eq!(s_u.verify_trailer(&buf[..len]), Ok(()));
        let mut out = [0u8; 64];
        keytext::encode(&[1, 2, 3], &mut out).unwrap();
        keytext::decode(b"abcd", &mut out).unwrap();
    });
    assert_eq!(n, 0, "allocations in the auth paths");
}
