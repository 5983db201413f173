//! The files in `crates/edge/dist/`: the example configuration parses, the
//! install script stages everything, and the systemd units pass
//! `systemd-analyze verify` without a single warning (skipped loudly when
//! systemd-analyze is not installed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

fn dist() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dist")
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "n2n-edge-dist-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn example_config_is_the_rocks_scenario() {
    let out = Command::new(env!("CARGO_BIN_EXE_edge"))
        .arg(dist().join("edge.conf"))
        .arg("--dry-run")
        .env_remove("N2N_KEY")
        .env_remove("N2N_COMMUNITY")
        .env_remove("N2N_PASSWORD")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "community: rocks",
        "cipher: AES (3)",
        "routing: true",
        "tap_name: edge0",
        "tap_address: static 10.128.10.1/24",
        "supernodes: supernode.example.net:7654",
        "mtu: 1500",
    ] {
        assert!(text.lines().any(|l| l == line), "'{line}' not in:\n{text}");
    }
}

#[test]
fn install_script_stages_binary_units_and_config() {
    let stage = temp_dir("stage");
    let out = Command::new("sh")
        .arg(dist().join("install.sh"))
        .env("DESTDIR", &stage)
        .env("BIN", env!("CARGO_BIN_EXE_edge"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let bin = stage.join("usr/local/sbin/edge");
    assert_eq!(mode(&bin), 0o755);
    let conf = stage.join("etc/n2n/edge.conf");
    assert_eq!(mode(&conf), 0o640, "the configuration holds the key");
    let unit = std::fs::read_to_string(stage.join("etc/systemd/system/edge.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/sbin/edge /etc/n2n/edge.conf -f"));
    let tmpl = std::fs::read_to_string(stage.join("etc/systemd/system/edge@.service")).unwrap();
    assert!(tmpl.contains("ExecStart=/usr/local/sbin/edge /etc/n2n/edge-%i.conf -f"));
    // A second run keeps an edited configuration.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&conf)
        .unwrap()
        .write_all(b"# edited\n")
        .unwrap();
    let out = Command::new("sh")
        .arg(dist().join("install.sh"))
        .env("DESTDIR", &stage)
        .env("BIN", env!("CARGO_BIN_EXE_edge"))
        .env("PREFIX", "/opt/n2n")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(&conf)
            .unwrap()
            .ends_with("# edited\n")
    );
    let unit = std::fs::read_to_string(stage.join("etc/systemd/system/edge.service")).unwrap();
    assert!(unit.contains("ExecStart=/opt/n2n/sbin/edge /etc/n2n/edge.conf -f"));
    // A missing binary is an error, not a half install.
    let out = Command::new("sh")
        .arg(dist().join("install.sh"))
        .env("DESTDIR", temp_dir("nobin"))
        .env("BIN", "/nonexistent/edge")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let _ = std::fs::remove_dir_all(stage);
}

#[test]
fn units_have_the_required_settings() {
    for name in ["edge.service", "edge@.service"] {
        let text = std::fs::read_to_string(dist().join(name)).unwrap();
        for line in [
            "Type=notify",
            "AmbientCapabilities=CAP_NET_ADMIN",
            "CapabilityBoundingSet=CAP_NET_ADMIN",
            "DeviceAllow=/dev/net/tun rw",
            "Restart=on-failure",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_UNIX",
        ] {
            assert!(text.lines().any(|l| l == line), "{name} lacks '{line}'");
        }
        // Settings that would make TAP creation impossible.
        for bad in [
            "PrivateDevices=yes",
            "PrivateNetwork=yes",
            "PrivateUsers=yes",
        ] {
            assert!(!text.contains(bad), "{name} has {bad}");
        }
    }
}

#[test]
fn systemd_analyze_verify() {
    // Installs systemd when it is missing (as root, with apt-get); a loud
    // skip without it, a failure with N2N_E2E_REQUIRED=1.
    if !n2n_tests::install::tool_available("edge systemd_analyze_verify", "systemd-analyze") {
        return;
    }
    let dir = temp_dir("units");
    // Point ExecStart at the built binary (verify checks it exists) and name
    // the template as an instance.
    for (src, dst) in [
        ("edge.service", "edge.service"),
        ("edge@.service", "edge@rocks.service"),
    ] {
        let text = std::fs::read_to_string(dist().join(src))
            .unwrap()
            .replace("/usr/local/sbin/edge", env!("CARGO_BIN_EXE_edge"));
        std::fs::write(dir.join(dst), text).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.join(dst))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{dst}: {err}");
        assert!(err.trim().is_empty(), "{dst}: systemd-analyze warns: {err}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
