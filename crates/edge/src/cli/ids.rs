//! `-A` and `-z`: from what the user writes to the wire's transform and
//! compression ids, and the names `--dry-run` and the log use.
//!
//! The only place where the command line meets the id types: when the
//! single `TransformId`/`CompressionId` of `n2n-proto` changes shape, these
//! functions are what changes.

use n2n_proto::types::{CompressionId, TransformId};

/// The cipher of `-A<n>` (`n` as written after `-A`): 1..=7
/// (`-A6`/`-A7` are extensions of this implementation); `None` otherwise.
pub fn cipher_from_cli(n: &str) -> Option<TransformId> {
    n.parse::<u8>().ok().and_then(TransformId::from_cli_number)
}

/// The number written after `-A`.
pub fn cipher_number(t: TransformId) -> u8 {
    t.cli_number()
}

/// Human name of a cipher (`AES`), as `--dry-run` and the log print it.
pub fn cipher_name(t: TransformId) -> &'static str {
    t.display_name()
}

/// The compression of `-z` (`None`: bare `-z`): bare and `1` LZO, `2`
/// zstd; `None` for anything else.
pub fn compression_from_cli(v: Option<&str>) -> Option<CompressionId> {
    match v {
        None | Some("1") => Some(CompressionId::Lzo),
        Some("2") => Some(CompressionId::Zstd),
        Some(_) => None,
    }
}

/// Name of a compression as `--dry-run` prints it (`None`, `Lzo`, `Zstd`).
pub fn compression_name(c: CompressionId) -> &'static str {
    match c {
        CompressionId::None => "None",
        CompressionId::Lzo => "Lzo",
        CompressionId::Zstd => "Zstd",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_cipher_number() {
        for (n, t, name) in [
            ("1", TransformId::Null, "null"),
            ("2", TransformId::Twofish, "Twofish"),
            ("3", TransformId::Aes, "AES"),
            ("4", TransformId::ChaCha20, "ChaCha20"),
            ("5", TransformId::Speck, "Speck"),
            ("6", TransformId::ChaCha20Poly1305, "ChaCha20-Poly1305"),
            ("7", TransformId::Aes256Gcm, "AES-256-GCM"),
        ] {
            let got = cipher_from_cli(n).unwrap();
            assert_eq!(got, t, "-A{n}");
            assert_eq!(cipher_name(got), name);
            assert_eq!(cipher_number(got).to_string(), n);
        }
        for bad in ["0", "8", "33", "x", "", "-1", "03x"] {
            assert_eq!(cipher_from_cli(bad), None, "-A{bad}");
        }
    }

    #[test]
    fn every_compression() {
        assert_eq!(compression_from_cli(None), Some(CompressionId::Lzo));
        assert_eq!(compression_from_cli(Some("1")), Some(CompressionId::Lzo));
        assert_eq!(compression_from_cli(Some("2")), Some(CompressionId::Zstd));
        for bad in ["0", "3", "x", ""] {
            assert_eq!(compression_from_cli(Some(bad)), None, "-z{bad}");
        }
        assert_eq!(compression_name(CompressionId::None), "None");
        assert_eq!(compression_name(CompressionId::Lzo), "Lzo");
        assert_eq!(compression_name(CompressionId::Zstd), "Zstd");
    }
}
