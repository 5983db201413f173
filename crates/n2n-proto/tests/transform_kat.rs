//! Known-answer tests of test-vectors.md §3 and §7 (Twofish zero key), plus
//! the C n2n unit-test output `tests-transform.expected`.
#![allow(clippy::unwrap_used, clippy::panic)]

use n2n_proto::crypto::pearson;
use n2n_proto::transform::twofish::Twofish;
use n2n_proto::transform::{NonceSeed, Transform, TransformError, TransformId};

const SEED: NonceSeed = NonceSeed {
    prefix: 0,
    start: 0,
};
const COMMUNITY: [u8; 20] = [0; 20];

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace([' ', '\n'], "")).unwrap()
}

fn preamble() -> [u8; 16] {
    h("13d6f02bf57d95591c8f06e7d146b27d").try_into().unwrap()
}

fn frame(n: u8) -> Vec<u8> {
    (0..n).collect()
}

fn enc(id: TransformId, key: &str, frame: &[u8], rand: [u8; 16]) -> Vec<u8> {
    let mut t = Transform::new(id, key.as_bytes(), &COMMUNITY, SEED).unwrap();
    let mut out = vec![0u8; frame.len() + 64];
    let n = t.encrypt(frame, rand, &[], &mut out).unwrap();
    assert_eq!(n, frame.len() + t.overhead());
    out.truncate(n);
    // And it decrypts back.
    let mut back = vec![0u8; n];
    let d = t.decrypt(&out, &[], &mut back).unwrap();
    assert_eq!(&back[..d.len], frame);
    assert_eq!(d.nonce, None);
    out
}

#[test]
fn key_hash() {
    assert_eq!(
        hex::encode(pearson::hash256(b"mysecretpass")),
        "5558f60b6bf0a26cbc49c6484ba92c5adfcb9a9fcf820d42ca3f5916edb53c7d"
    );
}

#[test]
fn aes_kat() {
    let out = enc(TransformId::Aes, "mysecretpass", &frame(50), preamble());
    assert_eq!(
        out,
        h(
            "389deed048e36c3b7ced1626a3400eb892 99069def6b5ccaa35928244 4fa4de4
           264551b989eb3db48fe3acb12d6c31f51de6726e5bde484e45d018a6f41d79a2c521"
        )
    );
}

#[test]
fn aes_no_stealing_kat() {
    let out = enc(TransformId::Aes, "mysecretpass", &frame(16), preamble());
    assert_eq!(
        out,
        h("389deed048e36c3b7ced1626a3400eb89299069def6b5ccaa3592824 44fa4de4")
    );
}

#[test]
fn twofish_kat() {
    let out = enc(TransformId::Twofish, "mysecretpass", &frame(50), preamble());
    assert_eq!(
        out,
        h(
            "f5ed6fbf9209ebde4f5fbadfd309ad9e858cea0c1949dfd4b21603c77003bc1c
           d91cd2ed392c760023c9ff2ddcc07299f56f5900896fb461889f65b4ee789f22a973"
        )
    );
}

#[test]
fn chacha20_kat() {
    let out = enc(
        TransformId::ChaCha20,
        "mysecretpass",
        &frame(50),
        preamble(),
    );
    assert_eq!(
        out,
        h(
            "13d6f02bf57d95591c8f06e7d146b27d0a1ab29f53ff081f26877f02de756498
           58e374bfcd0578608e6a65ba12d3b384115768a5e0405e142301bfe9d49cd7a557b1"
        )
    );
}

#[test]
fn speck_kat() {
    let out = enc(TransformId::Speck, "mysecretpass", &frame(50), preamble());
    assert_eq!(
        out,
        h(
            "13d6f02bf57d95591c8f06e7d146b27dffc65b4e2618edc6cf0b38c6fc9615b2
           c87196d9ad60b998bd99a497769aa1ac2a71ef69d87c2b2463ce31ce0d3ec37587a2"
        )
    );
}

#[test]
fn null_is_identity() {
    let out = enc(TransformId::Null, "", &frame(50), preamble());
    assert_eq!(out, frame(50));
}

#[test]
fn aes_key_size_rule() {
    let cases = [
        (
            "0123456789012345678901",
            128,
            "36fef9b61b239fb55e257582091d1e59e717248de55b5c8b0b9ffd30fecbb3996c0d3887",
        ),
        (
            "01234567890123456789012",
            192,
            "46d5d23c1d99d0317e94d4d7b27097952eaa3c39cc3a192bb2c281a9215d1b0acda99c46",
        ),
        (
            "012345678901234567890123456789012",
            256,
            "1a37ee5c193cb0cbf26a1b200d030c9f2503d8ee027951718f68a50c7c9af3f1ab6ec0f5",
        ),
    ];
    for (key, bits, expect) in cases {
        let t = Transform::new(TransformId::Aes, key.as_bytes(), &COMMUNITY, SEED).unwrap();
        assert_eq!(t.aes_key_bits(), Some(bits), "{key}");
        assert_eq!(
            hex::encode(enc(TransformId::Aes, key, &frame(20), preamble())),
            expect
        );
    }
    // Boundaries on the other side: 32 chars is still 192, 1 char is 128.
    let t = Transform::new(TransformId::Aes, &[b'x'; 32], &COMMUNITY, SEED).unwrap();
    assert_eq!(t.aes_key_bits(), Some(192));
    let t = Transform::new(TransformId::Aes, b"x", &COMMUNITY, SEED).unwrap();
    assert_eq!(t.aes_key_bits(), Some(128));
}

#[test]
fn twofish_zero_key_vector() {
    let tf = Twofish::new(&[0u8; 32]);
    let mut b = [0u8; 16];
    tf.encrypt_block(&mut b);
    assert_eq!(hex::encode(b), "57ff739d4dc92c1bd7fc01700cc8216f");
    tf.decrypt_block(&mut b);
    assert_eq!(b, [0u8; 16]);
}

/// xorshift128+ from the C n2n unit tests (unit-expected/README.md).
struct XorShift(u64, u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        let mut t = self.0;
        let s = self.1;
        self.0 = s;
        t ^= t << 23;
        t ^= t >> 17;
        t ^= s ^ (s >> 26);
        self.1 = t;
        t.wrapping_add(s)
    }
    fn preamble(&mut self) -> [u8; 16] {
        let mut p = [0u8; 16];
        p[..8].copy_from_slice(&self.next().to_be_bytes());
        p[8..].copy_from_slice(&self.next().to_be_bytes());
        p
    }
}

/// Parses the hex dumps of `tests-transform.expected` into named sections.
fn expected_sections() -> Vec<(String, Vec<u8>)> {
    let path = n2n_testdata::vectors_dir().join("n2n-3.1.1/unit-expected/tests-transform.expected");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("missing test vectors at {}: {e}", path.display()));
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in text.lines() {
        if let Some((name, _)) = line.split_once(": output size") {
            out.push((name.trim().to_string(), Vec::new()));
        } else if line.len() > 5 && line.as_bytes()[3] == b':' {
            let hexpart = line[5..].split("  |").next().unwrap();
            let bytes = hex::decode(hexpart.replace(' ', "")).unwrap();
            if let Some(last) = out.last_mut() {
                last.1.extend(bytes);
            }
        }
    }
    out
}

#[test]
fn c_unit_test_transform_output() {
    let sections = expected_sections();
    let key = "SoMEVer!S$cUREPassWORD";
    let input: Vec<u8> = (0..512).map(|i| (i % 16) as u8).collect();
    let mut rng = XorShift(0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9);
    let mut checked = 0;
    for (name, id) in [
        ("tf", TransformId::Twofish),
        ("aes", TransformId::Aes),
        ("cc20", TransformId::ChaCha20),
        ("speck", TransformId::Speck),
    ] {
        let rand = rng.preamble();
        let expect = &sections
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("section {name} missing"))
            .1;
        assert_eq!(expect.len(), 38 + 16 + 512, "{name}");
        let out = enc(id, key, &input, rand);
        assert_eq!(hex::encode(&out), hex::encode(&expect[38..]), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn selection_rules() {
    use TransformId as T;
    assert_eq!(T::select(None, None), Ok(T::Null));
    assert_eq!(T::select(None, Some(b"k")), Ok(T::Aes));
    assert_eq!(T::select(Some(1), Some(b"k")), Ok(T::Aes));
    assert_eq!(T::select(Some(1), None), Ok(T::Null));
    for v in 2..=7 {
        assert_eq!(T::select(Some(v), Some(b"k")).unwrap().to_wire(), v);
        assert_eq!(
            T::select(Some(v), None),
            Err(TransformError::KeyRequired(T::from_wire(v).unwrap()))
        );
    }
    assert_eq!(
        T::select(Some(8), Some(b"k")),
        Err(TransformError::UnknownTransform(8))
    );
    assert_eq!(
        T::select(Some(0), Some(b"k")),
        Err(TransformError::UnknownTransform(0))
    );
    for v in 0..=255u8 {
        match T::from_wire(v) {
            Some(id) => assert_eq!(id.to_wire(), v),
            None => assert!(v == 0 || v > 7),
        }
    }
}
