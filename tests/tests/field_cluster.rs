//! The field, part 5: the virtual-cluster scenario.
//!
//! Two "clusters", each a site behind its own EIM NAT. The site host is a "vm-container"
//! namespace running `edge -r -E` whose TAP is enslaved to a Linux bridge `br0` (inside the
//! container) together with the veths of two "VM" namespaces (MTU 1500). One VM of cluster A is
//! the "virtual frontend": static address and a `dnsmasq` DHCP server. Every other VM — the
//! second one of cluster A locally, both of cluster B across the overlay — gets its address
//! from it with the tests' DHCP client. Then every VM pings every other with full-size
//! unfragmentable packets (`ping -M do -s 1472`), a multicast datagram from the frontend
//! reaches every VM, and a TCP `iperf3` between VMs of different clusters completes.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use n2n_tests::scenario::*;
use n2n_tests::*;

const REG: Duration = Duration::from_secs(15);
const FRONTEND_IP: &str = "10.210.0.10";
const GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 2, 3);
const MPORT: u16 = 5353 + 1000;

/// One cluster: the NAT site whose host is the vm-container, and its VMs.
struct Cluster {
    site: NatSite,
    vms: Vec<Netns>,
}

fn cluster(lab: &Lab, wan: &Bridge, name: &str, n: u8) -> Cluster {
    let site = NatSite::new(
        lab,
        &format!("{name}-ctr"),
        n,
        NatKind::EndpointIndependent,
        wan,
    )
    .unwrap();
    let ctr = &site.host;
    ctr.ip(&[
        "link",
        "add",
        "br0",
        "type",
        "bridge",
        "stp_state",
        "0",
        "mcast_snooping",
        "0",
    ])
    .unwrap();
    ctr.link_up("br0").unwrap();
    let vms = (1..=2)
        .map(|i| {
            let vm = lab.netns(&format!("{name}-vm{i}")).unwrap();
            let port = format!("vm{i}");
            veth(ctr, &port, &vm, "eth0").unwrap();
            ctr.ip(&["link", "set", "dev", &port, "master", "br0"])
                .unwrap();
            vm.ip(&["route", "add", "224.0.0.0/4", "dev", "eth0"])
                .unwrap();
            assert_eq!(vm.mtu("eth0").unwrap(), 1500);
            vm
        })
        .collect();
    Cluster { site, vms }
}

#[test]
fn virtual_cluster_over_the_overlay() {
    if !require_tools(
        "field/virtual_cluster",
        &["ip", "nft", "ping", "iperf3", "dnsmasq"],
    ) {
        return;
    }
    let mut sc = Scenario::new("field/virtual_cluster");
    let lab = Lab::new("fld_vc");
    let (wan, sn_host) = underlay(&lab).unwrap();
    let a = cluster(&lab, &wan, "a", 1);
    let b = cluster(&lab, &wan, "b", 2);
    let sn = Supernode::start(&sn_host, "supernode", SupernodeOpts::default()).unwrap();
    let sn_addr = format!("{SN_IP}:{SN_PORT}");

    // The edges of the vm-containers, TAP bridged to the VMs.
    let edge_opts = |n: u16| {
        EdgeOpts::new("vcluster", &sn_addr)
            .addr(&format!("10.210.0.{}/24", 250 + n))
            .mac(mac(0x600 + n))
            .port(50000 + n)
            .routing()
            .multicast()
    };
    let ea = Edge::start(&a.site.host, "edge", edge_opts(1)).unwrap();
    let eb = Edge::start(&b.site.host, "edge", edge_opts(2)).unwrap();
    for (c, e) in [(&a, &ea), (&b, &eb)] {
        assert!(e.wait_registered(REG));
        assert_eq!(c.site.host.mtu("n2n0").unwrap(), 1500, "TAP MTU");
        c.site
            .host
            .ip(&["link", "set", "dev", "n2n0", "master", "br0"])
            .unwrap();
    }

    // The virtual frontend: static address, DHCP server.
    let frontend = &a.vms[0];
    frontend
        .addr_add("eth0", &format!("{FRONTEND_IP}/24"))
        .unwrap();
    let (_dnsmasq, leases_dir) = dnsmasq(
        frontend,
        "dnsmasq",
        "eth0",
        "10.210.0.100,10.210.0.150,255.255.255.0,1h",
    )
    .unwrap();

    // Every other VM gets its lease (cluster B's across the overlay).
    let mut vm_ips = vec![(frontend, FRONTEND_IP.parse::<Ipv4Addr>().unwrap())];
    for vm in [&a.vms[1], &b.vms[0], &b.vms[1]] {
        let lease = dhcp_configure(vm, "eth0", Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("DHCP for {}: {e}", vm.role()));
        assert_eq!(lease.server.to_string(), FRONTEND_IP);
        assert_eq!(lease.prefix, 24);
        sc.metric(
            &format!("dhcp_{}_ms", vm.role().replace('-', "_")),
            lease.took.as_millis(),
        );
        vm_ips.push((vm, lease.ip));
    }
    let leases = std::fs::read_to_string(leases_dir.join("leases")).unwrap();
    assert_eq!(leases.lines().count(), 3, "{leases}");

    // Full-size frames, every VM to every other (first make sure ARP has settled).
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for (src, _) in &vm_ips {
            for (dst_vm, dst) in &vm_ips {
                if src.name() == dst_vm.name() {
                    continue;
                }
                let (src, dst) = (*src, dst.to_string());
                s.spawn(move || {
                    assert!(
                        wait_ping(src, &dst, REG),
                        "{} cannot reach {dst}",
                        src.role()
                    );
                    let r = ping(src, &dst, 1472, 3, true).unwrap();
                    assert_eq!(
                        r.received,
                        3,
                        "{} -> {dst} with 1500-byte unfragmentable packets: {r:?}",
                        src.role()
                    );
                });
            }
        }
    });
    sc.metric(
        "all_pairs_1472_s",
        format!("{:.1}", t0.elapsed().as_secs_f64()),
    );

    // Multicast from the frontend reaches every other VM.
    let receivers: Vec<_> = vm_ips
        .iter()
        .skip(1)
        .map(|(vm, ip)| {
            (
                vm.role().to_string(),
                mcast_receiver(vm, GROUP, MPORT, *ip).unwrap(),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let payload = b"frontend says hello to the cluster";
    for _ in 0..3 {
        mcast_send(frontend, GROUP, MPORT, payload).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    for (role, sock) in &receivers {
        assert!(
            recv_exact(sock, payload, Duration::from_secs(3)).is_some(),
            "multicast did not reach {role}"
        );
    }
    sc.metric("multicast_receivers", receivers.len());

    // Across the clusters: RTT and throughput between VMs.
    let (vb1, vb1_ip) = vm_ips[2];
    let (va2, va2_ip) = vm_ips[1];
    let rtt = ping(vb1, &va2_ip.to_string(), 56, 10, false).unwrap();
    assert_eq!(rtt.received, 10, "{rtt:?}");
    sc.metric("rtt_ms", format!("{:.3}", rtt.rtt_avg_ms.unwrap()));
    let _srv = iperf3_server(va2, 5201).unwrap();
    let r = iperf3_client(vb1, IpAddr::V4(va2_ip), 5201, 3, None).unwrap();
    assert!(r.mbps > 1.0, "{r:?}");
    sc.metric("iperf_mbps", format!("{:.1}", r.mbps));
    let _ = vb1_ip;

    // The clusters talk directly (both NATs are endpoint-independent).
    let path = if ea.is_direct(&mac(0x602)) && eb.is_direct(&mac(0x601)) {
        "p2p"
    } else {
        "relayed"
    };
    sc.metric("path", path);
    for e in [&ea, &eb] {
        e.health().unwrap();
    }
    sn.health().unwrap();
}
