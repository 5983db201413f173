//! Runs the `supernode` binary: help, refused options, broken files, and a
//! live instance on loopback (management requests, sd_notify, clean stop).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::UdpSocket;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_supernode");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("N2N_FEDERATION")
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A configuration error: exit 2 and exactly one line on stderr.
fn config_error(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(o));
    let e = stderr(o);
    assert_eq!(e.lines().count(), 1, "one line expected: {e}");
    assert!(e.starts_with("supernode: error: "), "{e}");
    e
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn help_lists_every_c_option() {
    for flag in ["-h", "--help"] {
        let o = run(&[flag]);
        assert!(o.status.success());
        let h = String::from_utf8(o.stdout).unwrap();
        // cli.md §2, every option with its C names.
        for opt in [
            "-p, --local-port",
            "-F <NAME>",
            "-l <HOST:PORT>",
            "-m <MAC>",
            "-M ",
            "-V <TEXT>",
            "-c, --communities",
            "-a, --autoip",
            "-f, --foreground",
            "-t, --mgmt-port",
            "--management-password",
            "-v, --verbose",
            "-u, --euid",
            "-g, --egid",
            "-h, --help",
            "N2N_FEDERATION",
            "[default: 7654]",
            "[default: 5645]",
            "[default: 10.128.0.0-10.255.255.0/24]",
            "<config-file>",
        ] {
            assert!(h.contains(opt), "{flag}: help lacks {opt:?}:\n{h}");
        }
    }
}

#[test]
fn no_arguments_is_a_usage_error() {
    let e = config_error(&run(&[]));
    assert!(e.contains("at least one option"), "{e}");
}

#[test]
fn federation_options_are_accepted() {
    // -F and -l start a federated supernode (behaviour.md §9.10); C lists
    // the federation community as `-/-`.
    let inst = Instance::start(&["-F", "myfed", "-l", "127.0.0.1:9"]);
    let rows = inst.ask(b"r 1 communities");
    assert!(
        rows.iter()
            .any(|r| r.contains("\"community\":\"-/-\"") && r.contains("\"is_federation\":1")),
        "{rows:?}"
    );
}

#[test]
fn broken_user_keys_name_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("community.list");
    // User lines are accepted now; a broken key names its line and user.
    std::fs::write(
        &list,
        "mynetwork\nnetleo\n* logan nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgp\n",
    )
    .unwrap();
    let e = config_error(&run(&["-f", "-c", list.to_str().unwrap()]));
    assert!(
        e.contains("community.list")
            && e.contains("line 3")
            && e.contains("public key of user 'logan'"),
        "{e}"
    );
}

#[test]
fn bad_values_are_refused() {
    for (args, needle) in [
        (&["-f", "-p", "99999"][..], "option -p"),
        (&["-f", "-a", "10.0.0.1-10.0.1.0/24"], "option -a"),
        (&["-f", "-V", "a-version-string-too-long"], "option -V"),
        (&["-f", "-m", "zz:00:00:00:00:00"], "option -m"),
        (&["-f", "-t", "x"], "'x'"),
        (&["-f", "--bogus"], "'--bogus'"),
    ] {
        let e = config_error(&run(args));
        assert!(e.contains(needle), "{args:?}: {e}");
    }
}

#[test]
fn broken_files_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("supernode.conf");
    std::fs::write(&conf, "# my supernode\n-f\n-p=7654\nnot-an-option here\n").unwrap();
    let e = config_error(&run(&[conf.to_str().unwrap()]));
    assert!(e.contains("supernode.conf") && e.contains("line 4"), "{e}");

    let list = dir.path().join("community.list");
    std::fs::write(&list, "# fixed\nmynetwork\nhome 192.168.168.1/24\n").unwrap();
    let e = config_error(&run(&["-f", "-c", list.to_str().unwrap()]));
    assert!(
        e.contains("community.list") && e.contains("line 3") && e.contains("192.168.168.1/24"),
        "{e}"
    );

    std::fs::write(&list, "ok\nntop[0-1\n").unwrap();
    let e = config_error(&run(&["-f", "-c", list.to_str().unwrap()]));
    assert!(e.contains("line 2") && e.contains("ntop[0-1"), "{e}");

    std::fs::write(&list, "# nothing here\n").unwrap();
    let e = config_error(&run(&["-f", "-c", list.to_str().unwrap()]));
    assert!(e.contains("no community"), "{e}");

    let e = config_error(&run(&["-f", "-c", "/nonexistent/community.list"]));
    assert!(e.contains("/nonexistent/community.list"), "{e}");
}

/// A running supernode with an sd_notify socket.
struct Instance {
    child: Child,
    notify: UnixDatagram,
    port: u16,
    mgmt_port: u16,
    _dir: tempfile::TempDir,
}

impl Instance {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let notify_path = dir.path().join("notify");
        let notify = UnixDatagram::bind(&notify_path).unwrap();
        // The supernode drops root privileges (to n2n/nobody) before it
        // notifies, like under systemd where the socket is world-writable.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&notify_path, std::fs::Permissions::from_mode(0o777)).unwrap();
        notify
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let port = free_udp_port();
        let mut mgmt_port = free_udp_port();
        while mgmt_port == port {
            mgmt_port = free_udp_port();
        }
        let p = format!("127.0.0.1:{port}");
        let t = mgmt_port.to_string();
        let mut args = vec!["-f", "-p", &p, "-t", &t];
        args.extend_from_slice(extra);
        let child = Command::new(BIN)
            .args(&args)
            .env("NOTIFY_SOCKET", &notify_path)
            .env_remove("N2N_FEDERATION")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let inst = Self {
            child,
            notify,
            port,
            mgmt_port,
            _dir: dir,
        };
        let ready = inst.notification();
        assert!(ready.starts_with("READY=1\n"), "{ready}");
        assert!(ready.contains(&p), "{ready}");
        inst
    }

    /// The next READY/STOPPING message (periodic `STATUS=` updates skipped).
    fn notification(&self) -> String {
        let mut b = [0u8; 512];
        loop {
            let n = self.notify.recv(&mut b).expect("no sd_notify message");
            let m = String::from_utf8(b[..n].to_vec()).unwrap();
            if !m.starts_with("STATUS=") {
                return m;
            }
        }
    }

    /// Send a request; collect reply datagrams until `end`/`error` or a
    /// text reply.
    fn ask(&self, req: &[u8]) -> Vec<String> {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        s.send_to(req, ("127.0.0.1", self.mgmt_port)).unwrap();
        let mut out = Vec::new();
        let mut b = [0u8; 2048];
        loop {
            let (n, _) = s.recv_from(&mut b).expect("no management reply");
            let d = String::from_utf8(b[..n].to_vec()).unwrap();
            let done = !d.starts_with('{')
                || d.contains("\"_type\":\"end\"")
                || d.contains("\"_type\":\"error\"");
            out.push(d);
            if done {
                return out;
            }
        }
    }

    /// Wait for the exit status, at most `limit`.
    fn wait(&mut self, limit: Duration) -> (Option<i32>, String) {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let mut e = String::new();
                use std::io::Read as _;
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut e)
                    .unwrap();
                return (st.code(), e);
            }
            if t.elapsed() > limit {
                let _ = self.child.kill();
                panic!("supernode did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, sig).unwrap();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn live_management_and_sigterm() {
    let mut sn = Instance::start(&[]);

    let help = sn.ask(b"r 1 help");
    assert_eq!(help.len(), 12, "C's 9 commands and our drops: {help:?}");
    assert_eq!(
        help[0],
        "{\"_tag\":\"1\",\"_type\":\"begin\",\"cmd\":\"help\"}\n"
    );
    for cmd in ["stop", "verbose", "reload_communities", "edges", "help"] {
        assert!(
            help.iter()
                .any(|l| l.contains(&format!("\"cmd\":\"{cmd}\""))),
            "{cmd}: {help:?}"
        );
    }
    assert_eq!(
        help[11],
        "{\"_tag\":\"1\",\"_type\":\"end\",\"cmd\":\"help\"}\n"
    );

    // Garbage: JSON-looking with a bad type, and plain bytes.
    assert_eq!(
        sn.ask(b"x 9 whatever"),
        ["{\"_tag\":\"-1\",\"_type\":\"error\",\"error\":\"badtype\"}\n"]
    );
    assert_eq!(
        sn.ask(b"r 9 nosuchcmd"),
        ["{\"_tag\":\"9\",\"_type\":\"error\",\"error\":\"unknowncmd\"}\n"]
    );
    let text = sn.ask(&[0xde, 0xad, 0xbe, 0xef, b'\n']);
    assert_eq!(text.len(), 1);
    assert!(!text[0].is_empty());
    // Writes need the password.
    assert!(sn.ask(b"w 3 stop")[0].contains("badauth"));
    // verbose read/write round trip.
    assert!(sn.ask(b"w 4:1:n2n verbose 3")[1].contains("\"traceLevel\":3"));
    assert!(sn.ask(b"r 5 verbose")[1].contains("\"traceLevel\":3"));
    // Datagrams on the main socket do not kill it.
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    for len in [0, 1, 23, 24, 64, 1500] {
        probe
            .send_to(&vec![0xa5; len], ("127.0.0.1", sn.port))
            .unwrap();
    }
    assert!(sn.ask(b"r 6 verbose")[1].contains("\"traceLevel\":3"));

    let t = Instant::now();
    sn.signal(nix::sys::signal::Signal::SIGTERM);
    let (code, err) = sn.wait(Duration::from_secs(2));
    assert_eq!(code, Some(0), "stderr: {err}");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(err.contains("[supernode] supernode started"), "{err}");
    assert!(err.contains("shutting down (SIGTERM received)"), "{err}");
    let stopping = sn.notification();
    assert!(stopping.starts_with("STOPPING=1\n"), "{stopping}");
}

#[test]
fn sigint_and_management_stop_exit_cleanly() {
    let mut sn = Instance::start(&["-v"]);
    sn.signal(nix::sys::signal::Signal::SIGINT);
    let (code, err) = sn.wait(Duration::from_secs(2));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("SIGINT"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("community.list");
    std::fs::write(&list, "mynetwork\nntop[0-1][0-9]\n").unwrap();
    let mut sn = Instance::start(&["-c", list.to_str().unwrap(), "--management-password", "pw"]);
    assert!(sn.ask(b"w 1:1:n2n stop")[0].contains("badauth"));
    let reply = sn.ask(b"w 1:1:pw stop");
    assert!(reply[1].contains("\"keep_running\":0"), "{reply:?}");
    let (code, err) = sn.wait(Duration::from_secs(2));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("loaded 1 fixed-name communities, 1 regular expressions"),
        "{err}"
    );
}

#[test]
fn port_in_use_is_a_system_error() {
    let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    let p = busy.local_addr().unwrap().to_string();
    let t = free_udp_port().to_string();
    let o = run(&["-f", "-p", &p, "-t", &t]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&p) && e.contains("bind"), "{e}");
}

#[test]
fn config_file_as_first_argument() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("supernode.conf");
    let port = free_udp_port();
    let mgmt = free_udp_port();
    std::fs::write(
        &conf,
        format!("# test\n-p=127.0.0.1:{port}\n-t {mgmt}\n--management-password=secret\n"),
    )
    .unwrap();
    // -f after the file: the file gives everything else.
    let mut child = Command::new(BIN)
        .args([conf.to_str().unwrap(), "-f"])
        .env_remove("N2N_FEDERATION")
        .env_remove("NOTIFY_SOCKET")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut b = [0u8; 512];
    let t = Instant::now();
    let stopped = loop {
        s.send_to(b"w 1:1:secret stop", ("127.0.0.1", mgmt))
            .unwrap();
        if let Ok((n, _)) = s.recv_from(&mut b) {
            break String::from_utf8_lossy(&b[..n]).into_owned();
        }
        assert!(t.elapsed() < Duration::from_secs(10), "no answer on {mgmt}");
    };
    assert!(stopped.contains("\"begin\""), "{stopped}");
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0));
    assert!(Path::new(&conf).exists());
}
