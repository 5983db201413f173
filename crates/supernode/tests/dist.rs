//! The files in `crates/supernode/dist/`: the systemd unit verifies, the
//! example configuration is accepted by the binary, install.sh installs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_supernode");

fn dist() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dist")
}

fn unit_text() -> String {
    std::fs::read_to_string(dist().join("supernode.service")).unwrap()
}

/// Installs systemd when it is missing (as root, with apt-get); a loud skip
/// without it, a failure with N2N_E2E_REQUIRED=1.
fn has_systemd_analyze() -> bool {
    n2n_tests::install::tool_available("supernode systemd_analyze_verify", "systemd-analyze")
}

#[test]
fn unit_has_the_required_settings() {
    let unit = unit_text();
    for line in [
        "Type=notify",
        "ExecStart=/usr/local/sbin/supernode /etc/n2n/supernode.conf -f",
        "Restart=on-failure",
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=",
        "RestartPreventExitStatus=2",
    ] {
        assert!(unit.lines().any(|l| l == line), "unit lacks {line:?}");
    }
    assert!(!unit.contains("CAP_NET_BIND_SERVICE"));
}

/// A copy of the unit whose ExecStart points at the freshly built binary
/// (`verify` insists that the executable exists).
fn unit_for_built_binary(dir: &Path) -> PathBuf {
    let path = dir.join("supernode.service");
    std::fs::write(&path, unit_text().replace("/usr/local/sbin/supernode", BIN)).unwrap();
    path
}

#[test]
fn systemd_analyze_verify() {
    if !has_systemd_analyze() {
        eprintln!("systemd-analyze not available: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_built_binary(dir.path());
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    // verify exits 0 on unknown keys and bad values, it only warns.
    let ours: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("supernode.service"))
        .collect();
    assert!(ours.is_empty(), "warnings about the unit: {ours:?}");

    // The check itself must be able to fail.
    std::fs::write(&unit, unit_text().replace("Type=notify", "Type=notifyy")).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("supernode.service"));
}

#[test]
fn systemd_analyze_security_exposure_is_low() {
    if !has_systemd_analyze() {
        eprintln!("systemd-analyze not available: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_built_binary(dir.path());
    let o = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let Some(line) = out.lines().find(|l| l.contains("Overall exposure level")) else {
        eprintln!("systemd-analyze security --offline unsupported: skipped");
        return;
    };
    let score: f64 = line
        .split(": ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    assert!(score <= 2.0, "{line}");
}

#[test]
fn example_config_is_accepted() {
    let conf = dist().join("supernode.conf");
    let args: Vec<String> = ["supernode", conf.to_str().unwrap(), "-f"]
        .map(String::from)
        .into();
    let n2n_supernode::options::Parsed::Run(o) = n2n_supernode::options::parse(&args).unwrap()
    else {
        panic!("help instead of options");
    };
    assert_eq!(o.bind.port(), 7654);
    assert_eq!(o.mgmt_port, 5645);
    assert!(o.foreground);
    // Without -f the unit's command line is what the file gives.
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(!text.lines().any(|l| l.trim() == "-f"), "the unit adds -f");
}

#[test]
fn install_script_stages_files() {
    let dest = tempfile::tempdir().unwrap();
    let run = || {
        Command::new("sh")
            .arg(dist().join("install.sh"))
            .arg(BIN)
            .env("DESTDIR", dest.path())
            .env("PREFIX", "/opt/n2n")
            .output()
            .unwrap()
    };
    let o = run();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let root = dest.path();
    let bin = root.join("opt/n2n/sbin/supernode");
    let unit = root.join("etc/systemd/system/supernode.service");
    let conf = root.join("etc/n2n/supernode.conf");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&bin).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::metadata(&unit).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    assert!(unit_text.contains("ExecStart=/opt/n2n/sbin/supernode /etc/n2n/supernode.conf -f"));
    // The installed binary runs.
    assert!(
        Command::new(&bin)
            .arg("--help")
            .output()
            .unwrap()
            .status
            .success()
    );
    // A second run keeps a locally edited configuration.
    std::fs::write(&conf, "-p=7777\n").unwrap();
    let o = run();
    assert!(o.status.success());
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "-p=7777\n");
    // A missing binary is an error.
    let o = Command::new("sh")
        .arg(dist().join("install.sh"))
        .arg(root.join("nope"))
        .env("DESTDIR", dest.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}
