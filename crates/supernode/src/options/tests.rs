//! Unit tests of the supernode command line (the binary is also checked end
//! to end by `tests/cli.rs`).
#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;
use n2n_proto::types::Mac;
use std::io::Write as _;

fn args(a: &[&str]) -> Vec<String> {
    std::iter::once("supernode")
        .chain(a.iter().copied())
        .map(String::from)
        .collect()
}

fn run(a: &[&str]) -> Result<SupernodeOptions, OptionsError> {
    match parse(&args(a))? {
        Parsed::Run(o) => Ok(*o),
        Parsed::Help(h) => panic!("unexpected help: {h}"),
    }
}

#[test]
fn defaults() {
    let o = run(&["-f"]).unwrap();
    assert_eq!(o.bind, "0.0.0.0:7654".parse().unwrap());
    assert_eq!(o.mgmt_port, 5645);
    assert_eq!(o.mgmt_password, "n2n");
    assert_eq!(o.version, "3.1.1");
    assert_eq!(o.autoip, AutoIpPool::default());
    assert_eq!(o.verbosity, 2);
    assert!(o.foreground && o.spoofing_protection);
    assert!(o.mac.is_none() && o.communities.is_none() && o.uid.is_none());
}

#[test]
fn every_option() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("community.list");
    std::fs::write(&list, "home 192.168.168.0/24\nntop[0-1][0-9]\n").unwrap();
    let o = run(&[
        "-p",
        "127.0.0.1:7000",
        "-F",
        "Federation",
        "-m",
        "01:02:03:04:05:06",
        "-M",
        "-V",
        "my-version",
        "--communities",
        list.to_str().unwrap(),
        "--autoip=10.0.0.0-10.0.255.0/24",
        "--foreground",
        "--mgmt-port",
        "6000",
        "--management-password",
        "pw",
        "-vv",
        "--verbose",
        "-u",
        "1000",
        "--egid",
        "1001",
    ])
    .unwrap();
    assert_eq!(o.bind, "127.0.0.1:7000".parse().unwrap());
    assert_eq!(o.mac, Some([0x02, 2, 3, 4, 5, 6]));
    assert!(!o.spoofing_protection);
    assert_eq!(o.version, "my-version");
    let c = o.communities.unwrap();
    assert!(c.allows(b"home") && c.allows(b"ntop12") && !c.allows(b"other"));
    assert_eq!(o.autoip.to_string(), "10.0.0.0-10.0.255.0/24");
    assert_eq!(o.mgmt_port, 6000);
    assert_eq!(o.mgmt_password, "pw");
    assert_eq!(o.verbosity, 5);
    assert_eq!((o.uid, o.gid), (Some(1000), Some(1001)));
    // IP-only and port-only -p forms.
    assert_eq!(
        run(&["-p", "10.1.2.3"]).unwrap().bind,
        "10.1.2.3:7654".parse().unwrap()
    );
    let o = run(&["-p=7001"]).unwrap();
    assert_eq!(o.bind, "0.0.0.0:7001".parse().unwrap());
    assert!(o.also_ipv6);
    let o = run(&["-p", "[::1]:7002"]).unwrap();
    assert_eq!(o.bind, "[::1]:7002".parse().unwrap());
    assert!(!o.also_ipv6);
    assert!(!run(&["-p", "0.0.0.0:7003"]).unwrap().also_ipv6);
}

#[test]
fn config_file_then_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("supernode.conf");
    let mut f = std::fs::File::create(&conf).unwrap();
    writeln!(
        f,
        "# test\n-p=7100\n-t 6100\n-v\n-f\n--management-password secret"
    )
    .unwrap();
    let p = conf.to_str().unwrap();
    let o = run(&[p]).unwrap();
    assert_eq!(o.bind.port(), 7100);
    assert_eq!(o.mgmt_port, 6100);
    assert_eq!(o.mgmt_password, "secret");
    assert_eq!(o.verbosity, 3);
    assert!(o.foreground);
    // Later options win; counts accumulate.
    let o = run(&[p, "-p", "7200", "-v"]).unwrap();
    assert_eq!(o.bind.port(), 7200);
    assert_eq!(o.mgmt_port, 6100);
    assert_eq!(o.verbosity, 4);

    std::fs::write(&conf, "-f\nbogus line\n").unwrap();
    let e = run(&[p]).unwrap_err().to_string();
    assert!(e.contains("supernode.conf") && e.contains("line 2"), "{e}");
    let e = run(&["/nonexistent/sn.conf"]).unwrap_err().to_string();
    assert!(e.starts_with("config file /nonexistent/sn.conf:"), "{e}");
}

#[test]
fn community_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("c.list");
    let l = list.to_str().unwrap();
    std::fs::write(&list, "ok\nhome 192.168.168.1/24\n").unwrap();
    let e = run(&["-c", l]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let e = e.to_string();
    assert!(
        e.contains("c.list") && e.contains("line 2") && e.contains("192.168.168.1/24"),
        "{e}"
    );
    std::fs::write(&list, "# nothing\n").unwrap();
    assert!(
        run(&["-c", l])
            .unwrap_err()
            .to_string()
            .contains("no community")
    );
    std::fs::write(
        &list,
        "net\n* logan nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgpG\n",
    )
    .unwrap();
    let o = run(&["-c", l]).unwrap();
    assert_eq!(o.communities.unwrap().fixed[0].users.len(), 1);
    let e = run(&["-c", "/nonexistent/list"]).unwrap_err().to_string();
    assert!(e.starts_with("community file /nonexistent/list:"), "{e}");
}

#[test]
fn refused_and_bad_values() {
    let msg = |a: &[&str]| run(a).unwrap_err().to_string();
    assert!(msg(&["-l", "nocolon"]).contains("no ':port'"));
    assert!(msg(&["-p", "70000"]).starts_with("option -p:"));
    assert!(msg(&["-p", "0"]).starts_with("option -p:"));
    assert!(msg(&["-p", "::1"]).starts_with("option -p:"));
    assert!(msg(&["-t", "0"]).starts_with("option -t:"));
    assert!(msg(&["-t", "7654"]).contains("same as the main port"));
    assert!(msg(&["-a", "10.0.0.0-10.0.0.0/31"]).starts_with("option -a:"));
    assert!(msg(&["-V", "12345678901234567890"]).starts_with("option -V:"));
    assert!(run(&["-V", "1234567890123456789"]).is_ok());
    assert!(msg(&["-m", "01:02:03"]).starts_with("option -m:"));
    assert!(msg(&["-u", "abc"]).contains("abc"));
    let e = msg(&["-x"]);
    assert!(e.contains("'-x'") && !e.contains('\n'), "{e}");
    assert!(msg(&["stray", "-f"]).contains("stray"));
    assert!(matches!(parse(&args(&[])), Err(OptionsError::NoArguments)));
}

#[test]
fn help_lists_every_option() {
    for flag in ["-h", "--help"] {
        let Parsed::Help(h) = parse(&args(&[flag])).unwrap() else {
            panic!("no help")
        };
        for opt in [
            "--local-port",
            "-F",
            "-l",
            "-m",
            "-M",
            "-V",
            "--communities",
            "--autoip",
            "--foreground",
            "--mgmt-port",
            "--management-password",
            "--verbose",
            "--euid",
            "--egid",
            "--help",
            "N2N_FEDERATION",
        ] {
            assert!(h.contains(opt), "{flag} help lacks {opt}:\n{h}");
        }
    }
}

#[test]
fn core_config_follows_the_options() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("c.list");
    std::fs::write(&list, "rocks\n").unwrap();
    let random = Mac([0x02, 9, 9, 9, 9, 9]);
    let o = run(&["-f"]).unwrap();
    let c = o.core_config(random);
    assert_eq!(c.mac, random);
    assert!(c.spoofing_protection && c.communities.is_none());
    assert_eq!(c.version, "3.1.1");
    assert_eq!(c.verbosity, 2);
    assert_eq!(c.federation, federation_field("Federation"));
    assert_eq!(c.mgmt_password, Password::new("n2n"));
    let o = run(&[
        "-m",
        "01:00:00:00:00:07",
        "-M",
        "-V",
        "v9",
        "-c",
        list.to_str().unwrap(),
        "-a",
        "10.0.0.0-10.0.255.0/24",
        "--management-password",
        "pw",
        "-vv",
    ])
    .unwrap();
    let c = o.core_config(random);
    assert_eq!(c.mac, Mac([0x02, 0, 0, 0, 0, 7]));
    assert!(!c.spoofing_protection);
    assert_eq!(c.version, "v9");
    assert!(c.communities.unwrap().allows(b"rocks"));
    assert_eq!(c.community_file.as_deref(), Some(list.as_path()));
    assert_eq!(c.auto_ip.to_string(), "10.0.0.0-10.0.255.0/24");
    assert_eq!(c.mgmt_password, Password::new("pw"));
    assert_eq!(c.verbosity, 4);
}

#[test]
fn mac_parsing() {
    assert_eq!(
        parse_mac("aa:bb:cc:dd:ee:ff"),
        Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff])
    );
    assert_eq!(parse_mac("0-1-2-3-4-5"), Some([0, 1, 2, 3, 4, 5]));
    for bad in [
        "",
        "aa:bb:cc:dd:ee",
        "aa:bb:cc:dd:ee:ff:00",
        "aaa:bb:cc:dd:ee:ff",
        "gg:bb:cc:dd:ee:ff",
    ] {
        assert_eq!(parse_mac(bad), None, "{bad}");
    }
}

#[test]
fn environment_and_getopt_forms() {
    let env = |k: &str| (k == "N2N_FEDERATION").then(|| "envfed".to_owned());
    let Parsed::Run(o) = parse_with(&args(&["-f"]), &env).unwrap() else {
        panic!("runs")
    };
    assert_eq!(o.federation, "envfed");
    let cfg = o.core_config(Mac([2, 0, 0, 0, 0, 1]));
    // Keys and name field both from the environment's name.
    assert_eq!(cfg.federation_keys, *federation_field("envfed").field());
    assert_eq!(cfg.federation, federation_field("envfed"));
    // The command line wins over the environment for the name, not the keys
    // (crypto.md §6: C derived them before parsing -F).
    let Parsed::Run(o) = parse_with(&args(&["-F", "myfed"]), &env).unwrap() else {
        panic!("runs")
    };
    let cfg = o.core_config(Mac([2, 0, 0, 0, 0, 1]));
    assert_eq!(cfg.federation_keys, *federation_field("envfed").field());
    assert_eq!(cfg.federation.field(), b"*myfed\0\0ion\0\0\0\0\0\0\0\0\0");
    let empty = |_: &str| Some(String::new());
    assert!(parse_with(&args(&["-f"]), &empty).is_ok());
    // Clusters, attached values, abbreviated long options.
    let o = run(&["-fvv", "-p7001", "--mgmt=6001", "--comm", "/nonexistent/x"])
        .unwrap_err()
        .to_string();
    assert!(o.starts_with("community file /nonexistent/x:"), "{o}");
    let o = run(&["-fvv", "-p7001", "--mgmt=6001", "--fore"]).unwrap();
    assert_eq!((o.bind.port(), o.mgmt_port, o.verbosity), (7001, 6001, 4));
    assert!(o.foreground);
    // Later wins.
    let o = run(&["-p", "7001", "-p", "7002", "-t", "1", "-t", "2"]).unwrap();
    assert_eq!((o.bind.port(), o.mgmt_port), (7002, 2));
    // Every -l is checked.
    let e = run(&["-l", "a:1", "-l", "b"]).unwrap_err().to_string();
    assert!(e.contains("option -l") && e.contains("no ':port'"), "{e}");
    // -l accumulates; literal addresses are resolved at once, names later.
    let o = run(&[
        "-l",
        "198.18.0.1:7654",
        "-l",
        "sn.example.net:7654",
        "-F",
        "myfed",
    ])
    .unwrap();
    assert_eq!(o.supernodes, ["198.18.0.1:7654", "sn.example.net:7654"]);
    let cfg = o.core_config(Mac([2, 0, 0, 0, 0, 1]));
    assert_eq!(
        cfg.supernodes[0].addr,
        Some("198.18.0.1:7654".parse().unwrap())
    );
    assert_eq!(cfg.supernodes[1].addr, None);
    assert_eq!(cfg.federation, federation_field("myfed"));
    assert_eq!(cfg.federation_keys, n2n_proto::he::DEFAULT_FEDERATION_FIELD);
}

#[test]
fn scanner_errors_name_the_option() {
    let msg = |a: &[&str]| run(a).unwrap_err().to_string();
    assert_eq!(msg(&["-x"]), "unknown option '-x'");
    assert_eq!(msg(&["--bogus"]), "unknown option '--bogus'");
    assert_eq!(msg(&["-f", "-t"]), "option -t requires an argument");
    assert_eq!(
        msg(&["--foreground=x"]),
        "option --foreground does not take an argument"
    );
    assert_eq!(msg(&["-f", "extra"]), "unexpected argument 'extra'");
    assert_eq!(msg(&["-t", "x"]), "option -t: 'x' is not a port 1..65535");
    assert_eq!(
        msg(&["--euid", "abc"]),
        "option --euid: 'abc' is not a numeric id"
    );
}

#[test]
fn help_is_rendered_from_the_table() {
    let h = help();
    for def in table::TABLE.options() {
        assert!(h.contains(&format!(" {} ", def.names())), "{}", def.names());
    }
    assert!(h.contains(&format!("[default: {DEFAULT_PORT}]")));
    assert!(h.contains(&format!("[default: {DEFAULT_MGMT_PORT}]")));
    assert!(h.contains(&format!("[default: {DEFAULT_VERSION}]")));
    assert!(h.contains(&format!("[default: {}]", AutoIpPool::default())));
    assert!(h.contains(" N2N_FEDERATION   used when -F is not given\n"));
    assert!(h.lines().all(|l| l.len() <= 80), "{h}");
}

#[test]
fn community_file_with_users_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("community.list");
    std::fs::write(
        &path,
        "rocks\n* alice VJ98N3ZOowY+k6GNFQLbgQ3kTIzoYVRoFiYpQtW4-0O\n\
         * bob Axu2Bsi2pSSLV+fPWGBtqz-1SoPQM0DyY-ORtVu27cK\nopen\n",
    )
    .unwrap();
    let l = super::load_community_file(&path).unwrap();
    assert_eq!(l.user_communities().count(), 1);
    assert_eq!(l.fixed[0].users.len(), 2);
    assert_eq!(l.fixed[1].users.len(), 0);
}

#[test]
fn metrics_option() {
    assert_eq!(run(&["-f"]).unwrap().metrics, None);
    let o = run(&["-f", "--metrics", "9646"]).unwrap();
    assert_eq!(o.metrics, Some("127.0.0.1:9646".parse().unwrap()));
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("supernode.conf");
    std::fs::write(&conf, "-f\n--metrics=127.0.0.1:9645\n").unwrap();
    let o = run(&[conf.to_str().unwrap()]).unwrap();
    assert_eq!(o.metrics, Some("127.0.0.1:9645".parse().unwrap()));
    for bad in ["0", "host:1", "[::1:5"] {
        let e = run(&["-f", "--metrics", bad]).unwrap_err().to_string();
        assert!(e.contains("--metrics"), "{e}");
    }
}

#[test]
fn state_caps() {
    let o = run(&["-f"]).unwrap();
    assert_eq!(
        (o.max_edges_per_community, o.max_edges, o.max_communities),
        (4096, 65_536, 1024)
    );
    let o = run(&[
        "-f",
        "--max-edges-per-community",
        "10",
        "--max-edges=20",
        "--max-communities",
        "3",
    ])
    .unwrap();
    let cfg = o.core_config(Mac([2, 0, 0, 0, 0, 1]));
    assert_eq!(
        (
            cfg.max_edges_per_community,
            cfg.max_edges,
            cfg.max_communities
        ),
        (10, 20, 3)
    );
    for bad in ["0", "-1", "x", "10000001"] {
        let e = match run(&["-f", "--max-edges", bad]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("--max-edges {bad} accepted"),
        };
        assert!(e.contains("--max-edges") && e.contains(bad), "{e}");
    }
}
