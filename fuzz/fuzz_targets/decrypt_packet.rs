//! Every payload transform's decrypt (1..7, the AEADs included) on arbitrary
//! payloads with the vectors' key `s3cret` and community `rocks`: never a
//! panic, output length within bounds, too-small output buffers refused.
//! Then the input as a frame: encrypt → decrypt gives it back, and for the
//! AEADs any flipped byte of payload or associated data is refused.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use n2n_proto::transform::{
    NonceSeed, PACKET_AAD_LEN, Transform, TransformError, TransformId, packet_aad,
};

fn community() -> [u8; 20] {
    let mut f = [0u8; 20];
    f[..5].copy_from_slice(b"rocks");
    f
}

fn transforms() -> &'static [Transform] {
    static T: OnceLock<Vec<Transform>> = OnceLock::new();
    T.get_or_init(|| {
        TransformId::ALL
            .iter()
            .map(|&id| {
                Transform::new(
                    id,
                    b"s3cret",
                    &community(),
                    NonceSeed {
                        prefix: 0x0102_0304,
                        start: 1,
                    },
                )
                .expect("transform setup")
            })
            .collect()
    })
}

fn aad_of(data: &[u8]) -> [u8; PACKET_AAD_LEN] {
    let mut m = [[0u8; 6]; 2];
    for (i, b) in data.iter().take(12).enumerate() {
        m[i / 6][i % 6] = *b;
    }
    packet_aad(3, &community(), &m[0], &m[1], 1, 0)
}

fuzz_target!(|data: &[u8]| {
    let aad = aad_of(data);
    for t in transforms() {
        let id = t.id();
        // Decrypt arbitrary bytes.
        let mut out = vec![0u8; data.len()];
        match t.decrypt(data, &aad, &mut out) {
            Ok(d) => {
                assert!(d.len <= data.len());
                assert_eq!(d.len + t.overhead(), data.len(), "{id}: length");
                assert_eq!(d.nonce.is_some(), id.is_aead());
            }
            Err(TransformError::AuthenticationFailed) => assert!(id.is_aead()),
            Err(_) => {}
        }
        // Output one byte too small: refused, never overrun.
        if let Some(short_len) = data.len().checked_sub(t.overhead() + 1) {
            let mut short = vec![0u8; short_len];
            assert!(
                t.decrypt(data, &aad, &mut short).is_err(),
                "{id}: short output"
            );
        }

        // The input as a frame: encrypt then decrypt.
        // `Transform` is deliberately not `Clone` (AEAD nonce state): a
        // fresh sender with the same key.
        let Ok(mut tx) = Transform::new(
            id,
            b"s3cret",
            &community(),
            NonceSeed {
                prefix: 0x0506_0708,
                start: 1,
            },
        ) else {
            continue;
        };
        let mut random = [0u8; 16];
        for (d, s) in random.iter_mut().zip(data.iter().rev()) {
            *d = *s;
        }
        let mut payload = vec![0u8; data.len() + t.overhead()];
        let Ok(n) = tx.encrypt(data, random, &aad, &mut payload) else {
            continue;
        };
        assert_eq!(n, data.len() + t.overhead(), "{id}: payload length");
        let mut back = vec![0u8; n];
        let d = t
            .decrypt(&payload[..n], &aad, &mut back)
            .unwrap_or_else(|e| panic!("{id}: own payload refused: {e}"));
        assert_eq!(&back[..d.len], data, "{id}: round trip");
        if id.is_aead() {
            let i = usize::from(data.first().copied().unwrap_or(0)) % n;
            let mut bad = payload[..n].to_vec();
            bad[i] ^= 0x01;
            assert_eq!(
                t.decrypt(&bad, &aad, &mut back).err(),
                Some(TransformError::AuthenticationFailed),
                "{id}: tampered payload accepted"
            );
            let mut bad_aad = aad;
            bad_aad[i % PACKET_AAD_LEN] ^= 0x80;
            assert_eq!(
                t.decrypt(&payload[..n], &bad_aad, &mut back).err(),
                Some(TransformError::AuthenticationFailed),
                "{id}: tampered header accepted"
            );
        }
    }
});
