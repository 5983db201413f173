//! `edge --bridge` and `--up-script`/`--down-script` with the real binaries in namespaces:
//!
//! * the TAP becomes a port of the existing bridge, the overlay address sits on the bridge
//!   and answers pings from the other edge across the overlay; at a clean stop the
//!   down-script runs and the address leaves the bridge again (an admin's other address on
//!   the bridge stays);
//! * the up- and down-scripts see the TAP name, MAC, overlay address, community, bridge;
//! * a missing bridge and a device that is not a bridge are clear errors (exit 1).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use n2n_tests::scenario::*;
use n2n_tests::*;

const REG: Duration = Duration::from_secs(15);

fn wait_file(p: &std::path::Path, timeout: Duration) -> Option<String> {
    let t0 = Instant::now();
    while t0.elapsed() < timeout {
        if let Ok(s) = std::fs::read_to_string(p)
            && s.contains("END")
        {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn bridge_and_scripts() {
    if !require_root("edge/bridge_scripts") {
        return;
    }
    let lab = Lab::new("stbr");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let a_host = lab.host_on("a", &wan, "198.18.0.1/24").unwrap();
    let b_host = lab.host_on("b", &wan, "198.18.0.2/24").unwrap();
    let _sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();

    // The bridge exists before the edge (systemd-networkd's job on a real host), with an
    // address of the admin's own that the edge must leave alone.
    a_host
        .ip(&["link", "add", "br-st", "type", "bridge"])
        .unwrap();
    a_host.addr_add("br-st", "192.0.2.1/24").unwrap();
    a_host.link_up("br-st").unwrap();
    a_host
        .ip(&[
            "link", "add", "vst0", "type", "veth", "peer", "name", "vst1",
        ])
        .unwrap();

    let dir = lab.log_dir().join("stbr-scripts");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("hook.sh");
    let out = dir.join("hook.out");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n{{ echo \"event=$N2N_EVENT tap=$N2N_TAP mac=$N2N_MAC ip=$N2N_IP \
             community=$N2N_COMMUNITY bridge=$N2N_BRIDGE\"; echo END; }} > {}.$N2N_EVENT\nexit 3\n",
            out.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let up_out = dir.join("hook.out.up");
    let down_out = dir.join("hook.out.down");
    let s = script.to_string_lossy().into_owned();

    let sn = format!("{SN_IP}:{SN_PORT}");
    let a_opts = EdgeOpts::new("stbridge", &sn)
        .addr("10.200.7.1/24")
        .mac(mac(1))
        .tap("st-tap")
        .routing()
        .arg("--bridge")
        .arg("br-st")
        .arg("--up-script")
        .arg(&s)
        .arg("--down-script")
        .arg(&s);
    let mut a = Edge::start(&a_host, "edge-a", a_opts).unwrap();
    let b = Edge::start(
        &b_host,
        "edge-b",
        EdgeOpts::new("stbridge", &sn)
            .addr("10.200.7.2/24")
            .mac(mac(2)),
    )
    .unwrap();
    assert!(a.wait_registered(REG) && b.wait_registered(REG));

    // The TAP is a port of br-st, the overlay address is on the bridge, not the TAP.
    let link = a_host.ip(&["-o", "link", "show", "st-tap"]).unwrap();
    assert!(link.contains("master br-st"), "{link}");
    let br_addrs = a_host.addrs("br-st").unwrap();
    assert!(
        br_addrs.contains(&"10.200.7.1".parse().unwrap())
            && br_addrs.contains(&"192.0.2.1".parse().unwrap()),
        "{br_addrs:?}"
    );
    assert!(a_host.addrs("st-tap").unwrap().is_empty());
    assert!(
        wait_ping(&b_host, "10.200.7.1", REG),
        "the bridge address does not answer over the overlay"
    );

    let up = wait_file(&up_out, Duration::from_secs(5)).expect("up-script did not run");
    assert!(
        up.contains(&format!(
            "event=up tap=st-tap mac={} ip=10.200.7.1/24 community=stbridge bridge=br-st",
            mac(1).to_lowercase()
        )),
        "{up}"
    );
    assert!(a.stderr().contains("up-script") && a.stderr().contains("status 3"));

    // A clean stop: down-script, then the address leaves the bridge (the admin's stays).
    a.kill(Signal::SIGTERM).unwrap();
    let down = wait_file(&down_out, Duration::from_secs(5)).expect("down-script did not run");
    assert!(down.contains("event=down tap=st-tap"), "{down}");
    let br_addrs = a_host.addrs("br-st").unwrap();
    assert_eq!(
        br_addrs,
        vec!["192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );

    // Clear errors: no such bridge, not a bridge.
    let edge = find_binary("edge").unwrap();
    let e = edge.to_string_lossy();
    for (br, want) in [
        ("br-none", "bridge br-none does not exist"),
        ("vst0", "vst0 is not a Linux bridge"),
    ] {
        let (ok, _o, err) = a_host
            .exec_status(
                &[
                    &e,
                    "-f",
                    "-c",
                    "stbridge",
                    "-l",
                    &sn,
                    "-a",
                    "10.200.7.9/24",
                    "-d",
                    "st-tap2",
                    "-r",
                    "--bridge",
                    br,
                ],
                Duration::from_secs(10),
            )
            .unwrap();
        assert!(!ok && err.contains(want), "--bridge {br}: {err}");
    }
    // A script that is not there is refused before anything is created.
    let (ok, _o, err) = a_host
        .exec_status(
            &[
                &e,
                "-f",
                "-c",
                "stbridge",
                "-l",
                &sn,
                "-a",
                "10.200.7.9/24",
                "-d",
                "st-tap3",
                "--up-script",
                "/nonexistent/up",
            ],
            Duration::from_secs(10),
        )
        .unwrap();
    assert!(!ok && err.contains("--up-script /nonexistent/up"), "{err}");
    drop(b);
}
