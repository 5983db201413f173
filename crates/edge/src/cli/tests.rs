//! Unit tests of the edge command line (the binary's behaviour is also
//! checked end to end by `tests/cli.rs`).
#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

fn host() -> Option<String> {
    Some("myhost".into())
}

fn run(args: &[&str]) -> Result<EdgeOptions, CliError> {
    run_env(args, &no_env)
}

fn run_env(args: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Result<EdgeOptions, CliError> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    match parse_args(&args, env, &host)? {
        Invocation::Run(o) => Ok(*o),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn defaults() {
    let o = run(&["-c", "rocks", "-l", "sn.example.net:7654"]).unwrap();
    assert_eq!(o.community, "rocks");
    assert_eq!(o.supernodes, ["sn.example.net:7654"]);
    assert_eq!(o.bind, "0.0.0.0:0".parse().unwrap());
    assert_eq!(o.tos, None);
    assert!(!o.pmtu_discovery);
    assert!(o.p2p);
    assert_eq!(o.register_interval, Duration::from_secs(20));
    assert_eq!(o.register_ttl, 0);
    assert_eq!(o.cipher, TransformId::Null);
    assert!(o.key.is_none());
    assert!(!o.header_encryption);
    assert_eq!(o.compression, CompressionId::None);
    assert_eq!(o.selection, SelectionStrategy::Load);
    assert_eq!(o.tap_address, TapAddress::Auto);
    assert_eq!(o.mac, None);
    assert_eq!(o.tap_name, "edge0");
    assert_eq!(o.mtu, 1500);
    assert!(!o.routing && !o.multicast && !o.foreground);
    assert_eq!(o.desc, "myhost");
    assert_eq!(o.mgmt_port, 5644);
    assert_eq!(o.mgmt_password, "n2n");
    assert_eq!(o.verbosity, 2);
    assert_eq!((o.uid, o.gid), (None, None));
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
}

#[test]
fn every_option() {
    let o = run(&[
        "--community=net",
        "--supernode-list",
        "a:1",
        "-lb:2",
        "-p",
        "10.0.0.1:5000",
        "-T0x10",
        "-D",
        "-e",
        "192.168.1.2",
        "-S1",
        "-i",
        "7",
        "-L",
        "3",
        "-k",
        "a key with spaces",
        "-A5",
        "-H",
        "-z2",
        "--select-mac",
        "-a",
        "static:10.1.2.3/16",
        "-m",
        "2:0:0:a:b:C",
        "--tap-device",
        "n2n1",
        "-M",
        "1400",
        "-rE",
        "-I",
        "desc",
        "-R",
        "1.2.3.0/24,0.0.0.0/0,TCP-",
        "-R",
        "0.0.0.0/0,0.0.0.0/0,UDP+",
        "-f",
        "-t",
        "6000",
        "--management-password",
        "pw",
        "-vvv",
        "-V",
        "--euid",
        "100",
        "-g",
        "200",
        "--no-port-forwarding",
    ])
    .unwrap();
    assert_eq!(o.community, "net");
    assert_eq!(o.supernodes, ["a:1", "b:2"]);
    assert_eq!(o.bind, "10.0.0.1:5000".parse().unwrap());
    assert_eq!(o.tos, Some(16));
    assert!(o.pmtu_discovery);
    assert_eq!(
        o.preferred_local,
        Some(PreferredLocal::Addr(Ipv4Addr::new(192, 168, 1, 2)))
    );
    assert!(!o.p2p);
    assert_eq!(o.register_interval, Duration::from_secs(7));
    assert_eq!(o.register_ttl, 3);
    assert_eq!(o.cipher, TransformId::Speck);
    assert_eq!(o.key.as_ref().unwrap().bytes(), b"a key with spaces");
    assert!(o.header_encryption);
    assert_eq!(o.compression, CompressionId::Zstd);
    assert_eq!(o.selection, SelectionStrategy::Mac);
    assert_eq!(
        o.tap_address,
        TapAddress::Static {
            ip: Ipv4Addr::new(10, 1, 2, 3),
            prefix: 16
        }
    );
    assert_eq!(o.mac, Some([2, 0, 0, 0xa, 0xb, 0xc]));
    assert_eq!(o.tap_name, "n2n1");
    assert_eq!(o.mtu, 1400);
    assert!(o.routing && o.multicast && o.foreground);
    assert_eq!(o.desc, "desc");
    assert_eq!(o.rules.len(), 2);
    assert_eq!(o.mgmt_port, 6000);
    assert_eq!(o.mgmt_password, "pw");
    assert_eq!(o.verbosity, 4);
    assert_eq!((o.uid, o.gid), (Some(100), Some(200)));
    // The secret is not printed.
    assert!(!format!("{o:?}").contains("a key with spaces"));
}

#[test]
fn cipher_selection() {
    let base = ["-c", "x", "-l", "h:1"];
    let with = |extra: &[&str]| {
        let mut v = base.to_vec();
        v.extend_from_slice(extra);
        run(&v)
    };
    assert_eq!(with(&["-k", "k"]).unwrap().cipher, TransformId::Aes);
    let o = with(&["-k", "k", "-A1"]).unwrap();
    assert_eq!(o.cipher, TransformId::Aes);
    assert_eq!(o.warnings.len(), 1);
    assert_eq!(with(&["-A1"]).unwrap().cipher, TransformId::Null);
    assert!(with(&["-A1"]).unwrap().key.is_none());
    let o = with(&["-A"]).unwrap_err();
    assert!(
        o.to_string().contains("-A3") && o.to_string().contains("key"),
        "{o}"
    );
    for n in 2..=7 {
        let a = format!("-A{n}");
        let e = with(&[&a]).unwrap_err();
        assert!(e.to_string().contains(&a), "{e}");
        assert_eq!(cipher_number(with(&[&a, "-k", "k"]).unwrap().cipher), n);
    }
    for bad in ["-A0", "-A8", "-Ax", "-A33"] {
        assert!(with(&[bad, "-k", "k"]).is_err(), "{bad}");
    }
    // bare -A = AES, deprecated
    let o = with(&["-A", "-k", "k"]).unwrap();
    assert_eq!(o.cipher, TransformId::Aes);
    assert!(!o.warnings.is_empty());
    // key from env, command line wins
    let env = |k: &str| (k == "N2N_KEY").then(|| "envkey".to_string());
    let o = run_env(&base, &env).unwrap();
    assert_eq!(
        (o.cipher, o.key.unwrap().bytes()),
        (TransformId::Aes, &b"envkey"[..])
    );
    let o = run_env(&["-c", "x", "-l", "h:1", "-k", "cli"], &env).unwrap();
    assert_eq!(o.key.unwrap().bytes(), b"cli");
    // key == community warns
    let o = with(&["-k", "x"]).unwrap();
    assert!(o.warnings.iter().any(|w| w.contains("community")));
}

#[test]
fn password_rules() {
    // C's rule and wording: stream ciphers only.
    for c in [&[][..], &["-A2"][..], &["-A3"][..], &["-A6"][..]] {
        let mut args = vec!["-c", "x", "-l", "h:1", "-J", "pw", "-k", "k"];
        args.extend_from_slice(c);
        let e = run(&args).unwrap_err();
        assert_eq!(
            e.to_string(),
            "option -J: user-password authentication requires ChaCha20 (-A4) or SPECK (-A5) \
             to be used",
            "{c:?}"
        );
    }
    const PW: &str = "Very-S3cret pass";
    for cipher in ["-A4", "-A5"] {
        let o = run(&[
            "-c", "x", "-l", "h:1", "-J", PW, "-k", "k", cipher, "-I", "alice",
        ])
        .unwrap();
        assert_eq!(o.password.as_ref().unwrap().bytes(), PW.as_bytes());
        assert!(o.header_encryption, "-J forces -H");
        assert_eq!(o.federation_key, None);
        // The password is in no printed form of the options.
        let shown = format!("{}{o:?}", o.describe());
        assert!(!shown.contains(PW) && !shown.contains("S3cret"), "{shown}");
        assert!(
            o.describe()
                .contains("user_password: on (user 'alice', password set, not shown)")
        );
        assert!(o.describe().contains(
            "federation_key: i0IuBFO0RC22m2Ya32uUUFUA2yfQSwsxVZ3-S5F2k7O (federation 'Federation')"
        ));
    }
    // N2N_PASSWORD, and -J wins over it.
    let env = |k: &str| (k == "N2N_PASSWORD").then(|| "envpw".to_string());
    let o = run_env(&["-c", "x", "-l", "h:1", "-k", "k", "-A5"], &env).unwrap();
    assert_eq!(o.password.unwrap().bytes(), b"envpw");
    let o = run_env(
        &["-c", "x", "-l", "h:1", "-k", "k", "-A5", "-J", "cli"],
        &env,
    )
    .unwrap();
    assert_eq!(o.password.unwrap().bytes(), b"cli");
    let e = run_env(&["-c", "x", "-l", "h:1", "-k", "k"], &env).unwrap_err();
    assert!(e.to_string().contains("requires ChaCha20"), "{e}");
    let e = run(&["-c", "x", "-l", "h:1", "-J", "", "-k", "k", "-A4"]).unwrap_err();
    assert_eq!(e.to_string(), "option -J: the password is empty");
    // -P: n2n-keygen -F output.
    let o = run(&[
        "-c",
        "x",
        "-l",
        "h:1",
        "-J",
        "pw",
        "-k",
        "k",
        "-A4",
        "-P",
        "RNMH9vMfDlJLM32Br71L3jnp9HozxAXWUVONs+PyXMm",
    ])
    .unwrap();
    assert_eq!(
        o.federation_key,
        Some(n2n_proto::auth::PublicKey::federation(b"rocksFed"))
    );
    let e = run(&["-c", "x", "-l", "h:1", "-P", "abc"]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("option -P: 'abc' is not a federation public key"),
        "{e}"
    );
    let e = run(&[
        "-c",
        "x",
        "-l",
        "h:1",
        "-P",
        "RNMH9vMfDlJLM32Br71L3jnp9HozxAXWUVONs+PyXM/",
    ])
    .unwrap_err();
    assert!(e.to_string().contains("invalid character"), "{e}");
    let o = run(&[
        "-c",
        "x",
        "-l",
        "h:1",
        "-P",
        "RNMH9vMfDlJLM32Br71L3jnp9HozxAXWUVONs+PyXMm",
    ])
    .unwrap();
    assert!(
        o.warnings
            .iter()
            .any(|w| w.contains("-P") && w.contains("-J"))
    );
}

#[test]
fn refusals() {
    for (args, needle) in [
        (&["-x", "5"][..], "-x"),
        (&["-n", "10.0.0.0/8:10.1.1.1"][..], "-n"),
        (&["-s", "x"][..], "-s"),
        (&["-S3"][..], "-S"),
        (&["-z3"][..], "-z"),
        (&["-q"][..], "-q"),
        (&["--bogus"][..], "--bogus"),
        (&["-A", "3"][..], "-A3"),
        (&["stray"][..], "stray"),
        (&["-i", "0"][..], "-i"),
        (&["-i", "x"][..], "-i"),
        (&["-L", "256"][..], "-L"),
        (&["-M", "67"][..], "-M"),
        (&["-M", "1951"][..], "-M"),
        (&["-m", "01:00:5e:00:00:01"][..], "multicast"),
        (&["-m", "00:00:00:00:00:00"][..], "-m"),
        (&["-m", "1:2:3:4:5"][..], "-m"),
        (&["-m", "1:2:3:4:5:6:7"][..], "-m"),
        (&["-m", "100:2:3:4:5:6"][..], "-m"),
        (&["-a", "1.2.3.4/33"][..], "-a"),
        (&["-a", "1.2.3/24"][..], "-a"),
        (&["-a", "0.0.0.0"][..], "-a"),
        (&["-a", "dhcp:x"][..], "-a"),
        (&["-d", "a/b"][..], "-d"),
        (&["-d", "sixteen-chars-xx"][..], "-d"),
        (&["-p", "1.2.3.4:x"][..], "-p"),
        (&["-p", "70000"][..], "-p"),
        (&["-T", "256"][..], "-T"),
        (&["-e", "x"][..], "-e"),
        (&["-t", "0"][..], "-t"),
        (&["-u", "-1"][..], "-u"),
        (&["-k", ""][..], "-k"),
        (&["-R", "1.2.3.4"][..], "-R"),
        (&["-l", "nohost"][..], "-l"),
        (&["-l", ":5"][..], "-l"),
        (&["-l", "h:0"][..], "-l"),
        (
            &["-l", "a-very-long-supernode-name.example.invalid.net:7654"][..],
            "47",
        ),
    ] {
        let mut v = vec!["-c", "x", "-l", "h:1"];
        v.extend_from_slice(args);
        let e = run(&v).unwrap_err().to_string();
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

#[test]
fn required_and_env() {
    let e = run(&["-l", "h:1"]).unwrap_err().to_string();
    assert!(e.contains("community"), "{e}");
    let e = run(&["-c", "", "-l", "h:1"]).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
    let e = run(&["-c", "x"]).unwrap_err().to_string();
    assert!(e.contains("supernode"), "{e}");
    let env = |k: &str| (k == "N2N_COMMUNITY").then(|| "envnet".to_string());
    assert_eq!(run_env(&["-l", "h:1"], &env).unwrap().community, "envnet");
    assert_eq!(
        run_env(&["-l", "h:1", "-c", "cli"], &env)
            .unwrap()
            .community,
        "cli"
    );
}

#[test]
fn truncation_and_values() {
    let o = run(&[
        "-c",
        "0123456789abcdefghijKLM",
        "-l",
        "h:1",
        "-I",
        "a-very-long-description",
    ])
    .unwrap();
    assert_eq!(o.community, "0123456789abcdefghi");
    assert_eq!(o.desc, "a-very-long-des");
    assert_eq!(o.warnings.len(), 2);
    let o = run(&[
        "-c",
        "x",
        "-l",
        "h:1",
        "-p",
        "1.2.3.4",
        "-T",
        "010",
        "-e",
        "auto",
        "-S",
        "-z",
        "-a",
        "dhcp:0.0.0.0",
        "-r",
    ])
    .unwrap();
    assert_eq!(o.bind, "1.2.3.4:0".parse().unwrap());
    assert_eq!(o.tos, Some(8));
    assert_eq!(o.preferred_local, Some(PreferredLocal::Auto));
    assert!(!o.p2p);
    assert_eq!(o.compression, CompressionId::Lzo);
    assert_eq!(o.tap_address, TapAddress::Dhcp);
    let o = run(&[
        "-c", "x", "-l", "h:1", "-p", "5000", "-a", "10.0.0.1", "-VVVVV",
    ])
    .unwrap();
    assert_eq!(o.bind, "0.0.0.0:5000".parse().unwrap());
    assert_eq!(
        o.tap_address,
        TapAddress::Static {
            ip: Ipv4Addr::new(10, 0, 0, 1),
            prefix: 24
        }
    );
    assert_eq!(o.verbosity, 0);
    // later wins
    let o = run(&[
        "-c",
        "a",
        "-c",
        "b",
        "-l",
        "h:1",
        "--select-rtt",
        "-M",
        "1300",
        "-M",
        "1280",
    ])
    .unwrap();
    assert_eq!(
        (o.community.as_str(), o.mtu, o.selection),
        ("b", 1280, SelectionStrategy::Rtt)
    );
}

#[test]
fn help() {
    let a = |v: &[&str]| {
        parse_args(
            &v.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &no_env,
            &host,
        )
    };
    assert!(matches!(a(&["-h"]), Ok(Invocation::ShortHelp)));
    assert!(matches!(
        a(&["-c", "x", "--help"]),
        Ok(Invocation::LongHelp)
    ));
    assert!(matches!(a(&["--he"]), Ok(Invocation::LongHelp)));
}

#[test]
fn config_file() {
    let argv: Vec<String> = ["edge", "/x/edge.conf", "-c", "late", "-l", "b:2"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let read = |p: &str| {
        assert_eq!(p, "/x/edge.conf");
        Ok("-c=rocks\n-k my secret key\n-l a:1\n-A3\n".to_string())
    };
    let Invocation::Run(o) = parse_invocation(&argv, &no_env, &read, &host).unwrap() else {
        panic!()
    };
    assert_eq!(o.community, "late");
    assert_eq!(o.supernodes, ["a:1", "b:2"]);
    assert_eq!(o.key.unwrap().bytes(), b"my secret key");
    let fail = |_: &str| Err(std::io::Error::from(std::io::ErrorKind::NotFound));
    let e = parse_invocation(&argv, &no_env, &fail, &host).unwrap_err();
    assert!(e.to_string().contains("/x/edge.conf"));
    let bad = |_: &str| Ok("community rocks\n".to_string());
    let e = parse_invocation(&argv, &no_env, &bad, &host).unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
}

#[test]
fn help_is_rendered_from_the_table() {
    use n2n_cli::Doc;
    let help = long_help();
    for def in table::TABLE.options() {
        match def.doc {
            Doc::Text(text) => {
                assert!(help.contains(&def.names()), "{}", def.names());
                assert!(help.contains(text.lines().next().unwrap()), "{text}");
            }
            Doc::Forms(forms) => {
                for (form, text) in forms {
                    assert!(help.contains(&format!(" {form} ")), "{form}");
                    assert!(help.contains(text.lines().next().unwrap()), "{text}");
                }
            }
            Doc::Hidden => assert_eq!(def.short, Some('s'), "only -s is hidden"),
        }
    }
    assert!(help.contains(
        " N2N_KEY, N2N_COMMUNITY, N2N_PASSWORD, N2N_THREADS\n   \
             used when -k, -c, -J, --threads are not given\n"
    ));
    assert!(help.starts_with("edge: n2n v3 edge"));
    assert!(help.ends_with("(the message names the problem)\n"));
    // No line wider than the terminal but the one that always was.
    let wide: Vec<&str> = help.lines().filter(|l| l.len() > 80).collect();
    assert_eq!(
        wide,
        [" -i <seconds>               supernode re-registration interval (default 20, >= 1)"]
    );
    let short = short_help();
    assert!(short.starts_with("edge: n2n v3 edge") && short.contains("usage: edge"));
    assert!(short.ends_with("Run 'edge --help' for every option.\n"));
}

#[test]
fn rule_errors_name_the_rule() {
    let e = run(&["-c", "x", "-l", "h:1", "-R", "1.2.3.4,5.6.7.8,TCP+,TCP-"]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "option -R: bad rule '1.2.3.4,5.6.7.8,TCP+,TCP-': TCP is named twice"
    );
    let o = run(&[
        "-c",
        "x",
        "-l",
        "h:1",
        "-R",
        "10.0.0.0/8:[1,2],0.0.0.0/0,udp-",
    ])
    .unwrap();
    assert_eq!(o.rules[0].to_string(), "10.0.0.0/8:[1,2],0.0.0.0/0,UDP-");
}

#[test]
fn metrics_option() {
    assert_eq!(run(&["-c", "x", "-l", "a:1"]).unwrap().metrics, None);
    let o = run(&["-c", "x", "-l", "a:1", "--metrics", "9645"]).unwrap();
    assert_eq!(o.metrics, Some("127.0.0.1:9645".parse().unwrap()));
    assert!(o.describe().contains("metrics: 127.0.0.1:9645\n"));
    let o = run(&["-c", "x", "-l", "a:1", "--metrics=0.0.0.0:9"]).unwrap();
    assert_eq!(o.metrics, Some("0.0.0.0:9".parse().unwrap()));
    let argv: Vec<String> = ["edge", "/x/edge.conf"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let read = |_: &str| Ok("-c=rocks\n-l a:1\n--metrics=127.0.0.1:9645\n".to_string());
    let Invocation::Run(o) = parse_invocation(&argv, &no_env, &read, &host).unwrap() else {
        panic!()
    };
    assert_eq!(o.metrics, Some("127.0.0.1:9645".parse().unwrap()));
    for bad in ["0", "localhost:1", "1.2.3.4:99999"] {
        let e = run(&["-c", "x", "-l", "a:1", "--metrics", bad]).unwrap_err();
        assert!(e.to_string().contains("--metrics"), "{e}");
    }
}

#[test]
fn bridge_and_scripts() {
    let o = run(&[
        "-c",
        "x",
        "-l",
        "a:1",
        "-r",
        "--bridge",
        "br0",
        "--up-script",
        "/etc/n2n/up",
        "--down-script=/etc/n2n/down",
    ])
    .unwrap();
    assert_eq!(o.bridge.as_deref(), Some("br0"));
    assert_eq!(
        o.up_script.as_deref(),
        Some(std::path::Path::new("/etc/n2n/up"))
    );
    assert_eq!(
        o.down_script.as_deref(),
        Some(std::path::Path::new("/etc/n2n/down"))
    );
    assert!(o.describe().contains("bridge: br0\n"));
    assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    let d = run(&["-c", "x", "-l", "a:1"]).unwrap();
    assert!(d.bridge.is_none() && d.up_script.is_none() && d.down_script.is_none());
    // Without -r: a warning.
    let w = run(&["-c", "x", "-l", "a:1", "--bridge", "br0"]).unwrap();
    assert!(
        w.warnings.iter().any(|w| w.contains("-r")),
        "{:?}",
        w.warnings
    );
    for (args, want) in [
        (&["--bridge", "a b"][..], "not a valid interface name"),
        (&["--bridge", "edge0"][..], "cannot be the TAP device"),
        (&["--up-script", "up.sh"][..], "not an absolute path"),
        (&["--down-script", "./down"][..], "not an absolute path"),
    ] {
        let mut a = vec!["-c", "x", "-l", "a:1"];
        a.extend_from_slice(args);
        let e = run(&a).unwrap_err().to_string();
        assert!(e.contains(want), "{args:?}: {e}");
    }
}

#[test]
fn bridge_and_scripts_in_a_config_file() {
    let argv: Vec<String> = ["edge", "/etc/n2n/edge-x.conf"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let file = "-c=x\n-l=a:1\n-r\n--bridge=br-vc1\n--up-script /usr/local/lib/n2n/up hook\n";
    let inv = parse_invocation(&argv, &no_env, &|_| Ok(file.to_owned()), &host).unwrap();
    let Invocation::Run(o) = inv else {
        panic!("{inv:?}")
    };
    assert_eq!(o.bridge.as_deref(), Some("br-vc1"));
    // The edge takes the whole rest of the line as the value (cli.md §3.1).
    assert_eq!(
        o.up_script.as_deref(),
        Some(std::path::Path::new("/usr/local/lib/n2n/up hook"))
    );
}

#[test]
fn threads() {
    assert_eq!(run(&["-c", "x", "-l", "a:1"]).unwrap().threads, 1);
    let o = run(&["-c", "x", "-l", "a:1", "--threads", "4"]).unwrap();
    assert_eq!(o.threads, 4);
    assert!(o.describe().contains("threads: 4\n"));
    assert_eq!(
        run(&["-c", "x", "-l", "a:1", "--threads=64"])
            .unwrap()
            .threads,
        64
    );
    for bad in ["0", "65", "two", "-1", ""] {
        let e = run(&["-c", "x", "-l", "a:1", "--threads", bad])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--threads") && e.contains("1..=64"),
            "{bad}: {e}"
        );
    }
    // The environment's count, overridden by the option.
    let env = |k: &str| (k == "N2N_THREADS").then(|| "3".to_string());
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let Invocation::Run(o) = parse_args(&args(&["-c", "x", "-l", "a:1"]), &env, &host).unwrap()
    else {
        panic!()
    };
    assert_eq!(o.threads, 3);
    let inv = parse_args(
        &args(&["-c", "x", "-l", "a:1", "--threads", "2"]),
        &env,
        &host,
    );
    let Invocation::Run(o) = inv.unwrap() else {
        panic!()
    };
    assert_eq!(o.threads, 2);
    // -S2: one thread, with a warning.
    let t = run(&["-c", "x", "-l", "a:1", "-S2", "--threads", "2"]).unwrap();
    assert_eq!(t.threads, 1);
    assert!(
        t.warnings.iter().any(|w| w.contains("--threads 2")),
        "{:?}",
        t.warnings
    );
}
