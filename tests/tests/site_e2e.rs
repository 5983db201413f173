//! `n2n-site` end to end: plan a three-cluster site, apply each host's folder inside its
//! namespace (the generated files as they are; the bridge from the `.netdev`, the daemons
//! started with the config files as `supernode.service` / `edge@.service` start them), and
//! `n2n-site check` on each supernode host reports its cluster's containers registered, the
//! edge on a container host reports its P2P row, and a stopped edge shows as missing with a
//! non-zero exit.
//!
//! Clusters: a (two containers behind an endpoint-independent NAT), b (one, EIM NAT), c (one,
//! symmetric NAT); each supernode on the underlay. Federation: the plan writes the
//! supernodes' `-l` lines, the supernodes federate, and the edges list every supernode.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use n2n_tests::scenario::*;
use n2n_tests::*;

const REG: Duration = Duration::from_secs(40);

const SITE: &str = r#"
community = "stvc"
overlay = "10.200.0.0/16"
bridge = "br-stvc"
cipher = 4
user_password = true

[[cluster]]
name = "a"
subnet = "10.200.1.0/24"
supernode = { host = "sta-sn", address = "198.18.0.10", port = 7654 }
container = [{ host = "sta-01" }, { host = "sta-02" }]

[[cluster]]
name = "b"
subnet = "10.200.2.0/24"
supernode = { host = "stb-sn", address = "198.18.0.20", port = 7654 }
container = [{ host = "stb-01" }]

[[cluster]]
name = "c"
subnet = "10.200.3.0/24"
supernode = { host = "stc-sn", address = "198.18.0.30", port = 7654 }
container = [{ host = "stc-01" }]
"#;

fn site_bin() -> PathBuf {
    find_binary("n2n-site").unwrap()
}

/// `supernode` from the host folder as `supernode.service` runs it; `-c` points at the
/// folder's community.list (install.sh copies it to /etc/n2n).
fn start_supernode(ns: &Netns, folder: &Path) -> (Proc, bool) {
    let conf = std::fs::read_to_string(folder.join("supernode.conf")).unwrap();
    let list = folder.join("community.list");
    let conf = conf.replace(
        "-c=/etc/n2n/community.list",
        &format!("-c={}", list.display()),
    );
    let local = folder.join("supernode.local.conf");
    std::fs::write(&local, &conf).unwrap();
    let bin = find_binary("supernode").unwrap();
    let b = bin.to_string_lossy().into_owned();
    let l = local.to_string_lossy().into_owned();
    let p = ns.spawn("supernode", &[&b, &l, "-f"]).unwrap();
    // Federation is part of the supernode: one that exits here is a failure.
    if let Ok(Some(_)) = p.wait_timeout(Duration::from_secs(2)) {
        panic!("supernode failed: {}", p.stderr());
    }
    (p, true)
}

/// A container host: the bridge of its `.netdev`, then `edge edge-stvc.conf -f` as
/// `edge@stvc.service` runs it.
fn start_container(ns: &Netns, folder: &Path, federated: bool) -> Proc {
    let netdev = std::fs::read_to_string(folder.join("25-n2n-br-stvc.netdev")).unwrap();
    let name = netdev
        .lines()
        .find_map(|l| l.strip_prefix("Name="))
        .unwrap();
    ns.ip(&["link", "add", name, "type", "bridge"]).unwrap();
    ns.link_up(name).unwrap();
    let mut conf = folder.join("edge-stvc.conf");
    if !federated {
        // Without federation the clusters' supernodes do not know each other: the edges
        // keep only cluster a's supernode (loudly reported in start_supernode).
        let text = std::fs::read_to_string(&conf).unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.starts_with("-l=") || *l == "-l=198.18.0.10:7654")
            .map(|l| format!("{l}\n"))
            .collect();
        conf = folder.join("edge-stvc.nofed.conf");
        std::fs::write(&conf, text).unwrap();
        std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
    }
    let bin = find_binary("edge").unwrap();
    ns.spawn(
        "edge",
        &[&bin.to_string_lossy(), &conf.to_string_lossy(), "-f"],
    )
    .unwrap()
}

fn check(ns: &Netns, site: &Path, extra: &[&str]) -> (bool, String) {
    let bin = site_bin();
    let mut args = vec![bin.to_str().unwrap(), "check", site.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (ok, out, err) = ns.exec_status(&args, Duration::from_secs(20)).unwrap();
    (ok, format!("{out}{err}"))
}

fn wait_check(ns: &Netns, site: &Path, extra: &[&str], timeout: Duration) -> (bool, String) {
    let t0 = Instant::now();
    loop {
        let r = check(ns, site, extra);
        if r.0 || t0.elapsed() > timeout {
            return r;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn plan_apply_check() {
    if !require_root("site/plan_apply_check") {
        return;
    }
    let lab = Lab::new("stsite");
    let dir = lab.log_dir().join("stsite-plan");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let site = dir.join("site.toml");
    std::fs::write(&site, SITE).unwrap();
    let out = dir.join("out");
    let bin = site_bin();
    let plan = |what: &str| {
        let o = std::process::Command::new(&bin)
            .args([
                "plan",
                site.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let listing = plan("plan");
    println!("plan:\n{listing}");
    let snapshot = |p: &Path| -> Vec<(PathBuf, Vec<u8>, u32)> {
        use std::os::unix::fs::PermissionsExt as _;
        let mut v = Vec::new();
        for h in std::fs::read_dir(p).unwrap() {
            let h = h.unwrap().path();
            let files: Vec<PathBuf> = if h.is_dir() {
                std::fs::read_dir(&h)
                    .unwrap()
                    .map(|f| f.unwrap().path())
                    .collect()
            } else {
                vec![h.clone()]
            };
            for f in files {
                let md = std::fs::metadata(&f).unwrap();
                v.push((
                    f.clone(),
                    std::fs::read(&f).unwrap(),
                    md.permissions().mode() & 0o777,
                ));
            }
        }
        v.sort();
        v
    };
    let first = snapshot(&out);
    // Secrets only in 0600 files.
    for (p, text, mode) in &first {
        let t = String::from_utf8_lossy(text);
        if t.contains("-J=") || t.contains("-k=") || p.ends_with("state.toml") {
            assert_eq!(*mode, 0o600, "{p:?}");
        }
    }
    // Re-plan: same files, same keys and MACs.
    plan("re-plan");
    assert_eq!(first, snapshot(&out), "a re-plan changed the output");
    let a01 = std::fs::read_to_string(out.join("sta-01/edge-stvc.conf")).unwrap();
    println!("sta-01/edge-stvc.conf:\n{a01}");
    assert!(a01.contains("-l=198.18.0.10:7654\n-l=198.18.0.20:7654\n-l=198.18.0.30:7654"));
    assert!(a01.contains("--bridge=br-stvc") && a01.contains("-I=sta-01"));
    let list = std::fs::read_to_string(out.join("stb-sn/community.list")).unwrap();
    assert_eq!(
        list.lines().filter(|l| l.starts_with("* st")).count(),
        4,
        "{list}"
    );
    let sn_conf = std::fs::read_to_string(out.join("stb-sn/supernode.conf")).unwrap();
    assert!(sn_conf.contains("-l=198.18.0.10:7654") && sn_conf.contains("-l=198.18.0.30:7654"));

    // The three physical clusters.
    let wan = lab.bridge("wan").unwrap();
    let sn_a = lab.host_on("sta-sn", &wan, "198.18.0.10/24").unwrap();
    let sn_b = lab.host_on("stb-sn", &wan, "198.18.0.20/24").unwrap();
    let sn_c = lab.host_on("stc-sn", &wan, "198.18.0.30/24").unwrap();
    let nat_a = lab
        .nat_router(
            "sta-nat",
            NatKind::EndpointIndependent,
            &wan,
            "198.18.0.1/24",
            "198.19.1.1/24",
        )
        .unwrap();
    let nat_b = lab
        .nat_router(
            "stb-nat",
            NatKind::EndpointIndependent,
            &wan,
            "198.18.0.2/24",
            "198.19.2.1/24",
        )
        .unwrap();
    let nat_c = lab
        .nat_router(
            "stc-nat",
            NatKind::Symmetric,
            &wan,
            "198.18.0.3/24",
            "198.19.3.1/24",
        )
        .unwrap();
    let a01 = lab.host_behind("sta-01", &nat_a, "198.19.1.2/24").unwrap();
    let a02 = lab.host_behind("sta-02", &nat_a, "198.19.1.3/24").unwrap();
    let b01 = lab.host_behind("stb-01", &nat_b, "198.19.2.2/24").unwrap();
    let c01 = lab.host_behind("stc-01", &nat_c, "198.19.3.2/24").unwrap();

    let (_sa, fa) = start_supernode(&sn_a, &out.join("sta-sn"));
    let (_sb, fb) = start_supernode(&sn_b, &out.join("stb-sn"));
    let (_sc, fc) = start_supernode(&sn_c, &out.join("stc-sn"));
    let fed = fa && fb && fc;
    if !fed {
        loud(
            "site_e2e: NO FEDERATION: every edge uses cluster a's supernode only; check runs there",
        );
    }
    let _ea1 = start_container(&a01, &out.join("sta-01"), fed);
    let _ea2 = start_container(&a02, &out.join("sta-02"), fed);
    let eb1 = start_container(&b01, &out.join("stb-01"), fed);
    let _ec1 = start_container(&c01, &out.join("stc-01"), fed);

    // The overlay works across the clusters (and reaches the bridge address).
    assert!(
        wait_ping(&a01, "10.200.2.1", REG),
        "a-01 cannot reach b-01 over the overlay"
    );
    assert!(wait_ping(&b01, "10.200.3.1", REG), "b-01 cannot reach c-01");
    assert!(wait_ping(&c01, "10.200.1.2", REG), "c-01 cannot reach a-02");

    // Every cluster's supernode host: its containers registered.
    // (Without federation all of them are on cluster a's supernode.)
    let hosts = if fed {
        vec![(&sn_a, "a"), (&sn_b, "b"), (&sn_c, "c")]
    } else {
        vec![(&sn_a, "a"), (&sn_a, "b"), (&sn_a, "c")]
    };
    let (ok, text) = wait_check(
        &sn_a,
        &site,
        if fed { &["--cluster", "a"] } else { &[] },
        REG,
    );
    println!("n2n-site check on sta-sn:\n{text}");
    assert!(ok, "{text}");
    for (ns, name) in hosts {
        let (ok, text) = wait_check(ns, &site, &["--cluster", name], REG);
        println!("n2n-site check --cluster {name} on {}:\n{text}", ns.role());
        assert!(ok && !text.contains("MISSING"), "cluster {name}: {text}");
    }
    let (_, json) = check(&sn_a, &site, &["--cluster", "a", "--json"]);
    let v: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(v["missing"], 0, "{v}");
    assert_eq!(v["containers"][0]["ip4addr"], "10.200.1.1/16", "{v}");

    // P2P: b-01's edge (EIM NAT) goes direct to a-01 (EIM); nobody can go direct to c-01
    // (symmetric NAT). The edge's row, asked on the container host itself.
    let t0 = Instant::now();
    let mut row = String::new();
    while t0.elapsed() < REG {
        let _ = ping(&b01, "10.200.1.1", 56, 2, false);
        let _ = ping(&b01, "10.200.3.1", 56, 2, false);
        let (_, j) = check(&b01, &site, &["--json", "--timeout", "0.5"]);
        row = j;
        if row.contains("\"sta-01\":\"p2p\"") {
            break;
        }
    }
    let (_, text) = check(&b01, &site, &["--timeout", "0.5"]);
    println!("n2n-site check on stb-01 (its edge's P2P row):\n{text}");
    assert!(row.contains("\"sta-01\":\"p2p\""), "{row}");
    assert!(!row.contains("\"stc-01\":\"p2p\""), "{row}");

    // A stopped edge: missing, non-zero exit.
    eb1.signal(Signal::SIGTERM).unwrap();
    eb1.wait_timeout(Duration::from_secs(5)).unwrap();
    let t0 = Instant::now();
    let mut last = (true, String::new());
    while t0.elapsed() < REG {
        last = check(if fed { &sn_b } else { &sn_a }, &site, &["--cluster", "b"]);
        if !last.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    println!("after stopping stb-01's edge:\n{}", last.1);
    assert!(
        !last.0 && last.1.contains("stb-01") && last.1.contains("MISSING"),
        "{}",
        last.1
    );
    drop(nat_b);
    drop(nat_c);
}
