//! From the validated command line ([`EdgeOptions`]) to the core's
//! [`EdgeConfig`].

use std::net::SocketAddr;

use n2n_core::edge::{EdgeConfig, P2pMode, Selection, TapAddrMode};
use n2n_proto::auth::{PublicKey, UserKeys};
use n2n_proto::types::{Community, DevAddr, Mac};

use crate::cli::{EdgeOptions, SelectionStrategy, TapAddress};

/// The options could not be turned into a core configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The community name is not acceptable on the wire.
    #[error("community '{name}': {reason}")]
    Community {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
}

/// Build the core configuration. `preferred_local` is the resolved `-e`
/// socket (the driver works out `-e auto` and the port).
pub fn edge_config(
    opts: &EdgeOptions,
    preferred_local: Option<SocketAddr>,
) -> Result<EdgeConfig, ConfigError> {
    let community = Community::new(&opts.community).map_err(|e| ConfigError::Community {
        name: opts.community.clone(),
        reason: e.to_string(),
    })?;
    let mut cfg = EdgeConfig::new(community, opts.supernodes.clone());
    cfg.transform = opts.cipher;
    cfg.key = opts
        .key
        .as_ref()
        .map(|k| k.bytes().to_vec())
        .unwrap_or_default();
    cfg.compression = opts.compression;
    cfg.header_encryption = opts.header_encryption;
    // -J: the keys from -I (the user name), the password and -P; only the
    // keys reach the core.
    cfg.user_password = opts.password.as_ref().map(|pw| {
        let federation = opts
            .federation_key
            .unwrap_or_else(PublicKey::default_federation);
        UserKeys::new(opts.desc.as_bytes(), pw.bytes(), &federation)
    });
    cfg.mac = opts.mac.map_or(Mac::NULL, Mac);
    cfg.tap_addr = match opts.tap_address {
        TapAddress::Static { ip, prefix } => TapAddrMode::Static(DevAddr::new(ip, prefix)),
        TapAddress::Auto => TapAddrMode::Auto,
        TapAddress::Dhcp => TapAddrMode::Dhcp,
    };
    cfg.desc = opts.desc.clone();
    cfg.mtu = opts.mtu;
    cfg.routing = opts.routing;
    cfg.multicast = opts.multicast;
    cfg.p2p = if opts.tcp {
        P2pMode::SupernodeTcp
    } else if opts.p2p {
        P2pMode::Enabled
    } else {
        P2pMode::SupernodeOnly
    };
    cfg.register_interval = opts.register_interval;
    cfg.register_ttl = opts.register_ttl;
    cfg.preferred_local = preferred_local;
    cfg.selection = match opts.selection {
        SelectionStrategy::Load => Selection::Load,
        SelectionStrategy::Rtt => Selection::Rtt,
        SelectionStrategy::Mac => Selection::Mac,
    };
    cfg.mgmt_password = opts.mgmt_password.clone();
    cfg.traffic_rules = opts.rules.clone();
    cfg.verbosity = opts.verbosity;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cli::{Invocation, parse_args};
    use n2n_proto::types::{CompressionId, TransformId};
    use std::time::Duration;

    fn opts(args: &[&str]) -> EdgeOptions {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        match parse_args(&args, &|_| None, &|| Some("host".into())).unwrap() {
            Invocation::Run(o) => *o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_field_is_mapped() {
        let o = opts(&[
            "-c",
            "rocks",
            "-l",
            "sn.example:7654",
            "-l",
            "198.18.0.254:7654",
            "-k",
            "s3cret",
            "-A4",
            "-z2",
            "-H",
            "-m",
            "02:00:00:00:00:01",
            "-a",
            "10.200.0.1/16",
            "-I",
            "desc",
            "-M",
            "1400",
            "-r",
            "-E",
            "-S1",
            "-i",
            "7",
            "-L",
            "3",
            "--select-rtt",
            "--management-password",
            "pw",
            "-R",
            "0.0.0.0/0,0.0.0.0/0,TCP-",
            "-vv",
        ]);
        let c = edge_config(&o, Some("192.168.1.2:5000".parse().unwrap())).unwrap();
        assert_eq!(c.community, Community::new("rocks").unwrap());
        assert_eq!(c.supernodes, vec!["sn.example:7654", "198.18.0.254:7654"]);
        assert_eq!(c.transform, TransformId::ChaCha20);
        assert_eq!(c.key, b"s3cret");
        assert_eq!(c.compression, CompressionId::Zstd);
        assert!(c.header_encryption);
        assert_eq!(c.mac, Mac([2, 0, 0, 0, 0, 1]));
        assert_eq!(
            c.tap_addr,
            TapAddrMode::Static(DevAddr::new("10.200.0.1".parse().unwrap(), 16))
        );
        assert_eq!(c.desc, "desc");
        assert_eq!(c.mtu, 1400);
        assert!(c.routing && c.multicast);
        assert_eq!(c.p2p, P2pMode::SupernodeOnly);
        assert_eq!(c.register_interval, Duration::from_secs(7));
        assert_eq!(c.register_ttl, 3);
        assert_eq!(c.preferred_local, Some("192.168.1.2:5000".parse().unwrap()));
        assert_eq!(c.selection, Selection::Rtt);
        assert_eq!(c.mgmt_password, "pw");
        assert_eq!(c.traffic_rules.len(), 1);
        assert_eq!(c.verbosity, 4);
    }

    #[test]
    fn defaults_and_modes() {
        let c = edge_config(&opts(&["-c", "x", "-l", "a:1"]), None).unwrap();
        assert_eq!(c.transform, TransformId::Null);
        assert!(c.key.is_empty());
        assert_eq!(c.compression, CompressionId::None);
        assert_eq!(c.mac, Mac::NULL);
        assert_eq!(c.tap_addr, TapAddrMode::Auto);
        assert_eq!(c.mtu, 1500);
        assert_eq!(c.p2p, P2pMode::Enabled);
        assert_eq!(c.verbosity, 2);
        // A key alone selects AES.
        let c = edge_config(&opts(&["-c", "x", "-l", "a:1", "-k", "k"]), None).unwrap();
        assert_eq!(c.transform, TransformId::Aes);
        let c = edge_config(
            &opts(&["-c", "x", "-l", "a:1", "-r", "-a", "dhcp:0.0.0.0"]),
            None,
        )
        .unwrap();
        assert_eq!(c.tap_addr, TapAddrMode::Dhcp);
        for (flag, t) in [
            ("-A2", TransformId::Twofish),
            ("-A3", TransformId::Aes),
            ("-A5", TransformId::Speck),
            ("-A6", TransformId::ChaCha20Poly1305),
            ("-A7", TransformId::Aes256Gcm),
        ] {
            let c = edge_config(&opts(&["-c", "x", "-l", "a:1", "-k", "k", flag]), None).unwrap();
            assert_eq!(c.transform, t, "{flag}");
        }
        let c = edge_config(&opts(&["-c", "x", "-l", "a:1", "-z"]), None).unwrap();
        assert_eq!(c.compression, CompressionId::Lzo);
    }

    #[test]
    fn user_password_keys_are_those_of_n2n_keygen() {
        // The userpw-auth capture's alice: `n2n-keygen alice alicepw` gives
        // the community.list line, `-P` is `n2n-keygen -F rocksFed`.
        let o = opts(&[
            "-c",
            "rocks",
            "-l",
            "198.18.0.254:7654",
            "-I",
            "alice",
            "-J",
            "alicepw",
            "-A4",
            "-k",
            "s3cret",
            "-P",
            "RNMH9vMfDlJLM32Br71L3jnp9HozxAXWUVONs+PyXMm",
        ]);
        let c = edge_config(&o, None).unwrap();
        assert!(c.header_encryption);
        let keys = c.user_password.as_ref().unwrap();
        assert_eq!(
            keys.public_key().to_string(),
            "VJ98N3ZOowY+k6GNFQLbgQ3kTIzoYVRoFiYpQtW4-0O"
        );
        let fed = n2n_proto::auth::PrivateKey::federation(b"rocksFed");
        assert_eq!(
            keys.secret().expose_bytes(),
            fed.shared_secret(keys.public_key()).expose_bytes()
        );
        // The core's Debug shows the public key only.
        assert!(!format!("{c:?}").contains("alicepw"));
        n2n_core::edge::Edge::new(
            c,
            [7; 32],
            n2n_core::Now::new(std::time::Instant::now(), 1_700_000_000_000_000),
        )
        .unwrap();
        // Without -P: the default federation's key; without -I: the host name.
        let o = opts(&["-c", "x", "-l", "a:1", "-J", "pw", "-A5", "-k", "k"]);
        let c = edge_config(&o, None).unwrap();
        let want = UserKeys::new(b"host", b"pw", &PublicKey::default_federation());
        let got = c.user_password.unwrap();
        assert_eq!(got.public_key(), want.public_key());
        assert_eq!(got.secret().expose_bytes(), want.secret().expose_bytes());
    }

    #[test]
    fn every_config_builds_an_edge() {
        let now = n2n_core::Now::new(std::time::Instant::now(), 1_700_000_000_000_000);
        for args in [
            &["-c", "x", "-l", "198.18.0.1:7654"][..],
            &[
                "-c",
                "x",
                "-l",
                "198.18.0.1:7654",
                "-k",
                "k",
                "-A7",
                "-H",
                "-z2",
            ][..],
            &["-c", "x", "-l", "sn:1", "-l", "[::1]:2", "-a", "10.0.0.1"][..],
        ] {
            let c = edge_config(&opts(args), None).unwrap();
            n2n_core::edge::Edge::new(c, [7; 32], now).unwrap();
        }
    }
}
