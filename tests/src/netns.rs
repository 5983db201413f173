//! Network namespaces with drop guards.

use std::fs::File;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, Once};
use std::thread;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cmd::{describe, ip, run_ok};
use crate::proc::{Proc, Shared, lock, terminate};
use crate::{Bridge, CMD_TIMEOUT, Error, NatKind, NatRouter, Result, io_err};

/// Every namespace created by these helpers starts with this prefix, then the PID of the test
/// process: `n2nt-<pid>-<seq>-<test>-<role>`.
pub const NS_PREFIX: &str = "n2nt-";

static SEQ: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

fn sanitize(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(max)
        .collect()
}

/// Deletes namespaces left behind by test processes that no longer exist (SIGKILLed runs).
fn sweep_stale() {
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return;
    };
    let me = std::process::id();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != me && !Path::new(&format!("/proc/{pid}")).exists() {
            eprintln!("n2n-tests: removing stale namespace {name} (owner pid {pid} is gone)");
            kill_ns_pids(&name);
            let _ = ip(&["netns", "del", &name]);
        }
    }
}

/// SIGKILLs every process whose network namespace is `name` (all of them were started by a
/// test: nobody else knows these namespaces), except ourselves.
fn kill_ns_pids(name: &str) {
    let Ok(out) = ip(&["netns", "pids", name]) else {
        return;
    };
    let me = std::process::id();
    for pid in out.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
        if pid != me
            && let Ok(raw) = i32::try_from(pid)
        {
            let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
        }
    }
}

/// Directory for the logs of one test: `<target>/n2n-e2e/logs/<test>-<pid>`.
fn log_dir_for(test: &str) -> PathBuf {
    let d = crate::target_dir()
        .join("n2n-e2e")
        .join("logs")
        .join(format!("{}-{}", sanitize(test, 40), std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

/// One test's topology factory: names everything after the test, keeps the log directory.
/// Creating a `Lab` sweeps namespaces of dead test processes.
#[derive(Debug)]
pub struct Lab {
    test: String,
    log_dir: PathBuf,
}

impl Lab {
    /// A lab for test `test` (used in namespace names and the log directory).
    pub fn new(test: &str) -> Lab {
        SWEEP.call_once(sweep_stale);
        Lab {
            test: test.to_string(),
            log_dir: log_dir_for(test),
        }
    }

    /// The test name.
    pub fn test(&self) -> &str {
        &self.test
    }

    /// Where process logs and generated config files go.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// A new namespace (`lo` up, IPv6 off).
    pub fn netns(&self, role: &str) -> Result<Netns> {
        Netns::with_log_dir(&self.test, role, self.log_dir.clone())
    }

    /// A new namespace plugged into `bridge` as `eth0` with address `cidr`
    /// (e.g. `"198.18.0.10/24"`).
    pub fn host_on(&self, role: &str, bridge: &Bridge, cidr: &str) -> Result<Netns> {
        let ns = self.netns(role)?;
        bridge.attach(&ns, "eth0", Some(cidr))?;
        Ok(ns)
    }

    /// A new namespace behind `router` (LAN side) as `eth0` with address `cidr`
    /// (e.g. `"198.19.1.2/24"`) and a default route via the router.
    pub fn host_behind(&self, role: &str, router: &NatRouter, cidr: &str) -> Result<Netns> {
        let ns = self.netns(role)?;
        router.attach(&ns, "eth0", cidr)?;
        Ok(ns)
    }

    /// A new L2 switch (a bridge in its own namespace).
    pub fn bridge(&self, role: &str) -> Result<Bridge> {
        Bridge::new(self.netns(role)?)
    }

    /// A NAT router whose WAN side is attached to `wan` with address `wan_cidr`
    /// (e.g. "198.18.0.254/24") and whose LAN gateway address is `lan_cidr`
    /// (e.g. "198.19.1.1/24"). Attach hosts with [`NatRouter::attach`].
    pub fn nat_router(
        &self,
        role: &str,
        kind: NatKind,
        wan: &Bridge,
        wan_cidr: &str,
        lan_cidr: &str,
    ) -> Result<NatRouter> {
        NatRouter::new(self.netns(role)?, kind, wan, wan_cidr, lan_cidr)
    }
}

/// A network namespace `n2nt-<pid>-<seq>-<test>-<role>`, deleted on drop after killing (by
/// PID) the processes started in it.
#[derive(Debug)]
pub struct Netns {
    name: String,
    role: String,
    log_dir: PathBuf,
    procs: Mutex<Vec<Shared>>,
}

impl Netns {
    /// Creates a namespace for test `test` with role `role` (`lo` up, IPv6 disabled).
    pub fn new(test: &str, role: &str) -> Result<Netns> {
        SWEEP.call_once(sweep_stale);
        Netns::with_log_dir(test, role, log_dir_for(test))
    }

    fn with_log_dir(test: &str, role: &str, log_dir: PathBuf) -> Result<Netns> {
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{NS_PREFIX}{}-{seq}-{}-{}",
            std::process::id(),
            sanitize(test, 32),
            sanitize(role, 16)
        );
        ip(&["netns", "add", &name])?;
        // From here on the guard owns the namespace: an error below still deletes it.
        let ns = Netns {
            name,
            role: role.to_string(),
            log_dir,
            procs: Mutex::new(Vec::new()),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        if Path::new("/proc/sys/net/ipv6").exists() {
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")?;
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")?;
        }
        Ok(ns)
    }

    /// Full namespace name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The role given at creation.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Directory for this test's logs and generated files.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    fn command(&self, args: &[&str]) -> Result<Command> {
        let (prog, rest) = args
            .split_first()
            .ok_or_else(|| Error::Other("empty command".into()))?;
        crate::install::ensure_program(prog)?;
        let mut c = crate::install::program("ip")?;
        c.args(["netns", "exec", &self.name, prog]).args(rest);
        Ok(c)
    }

    /// Runs `args` inside the namespace (bounded by [`CMD_TIMEOUT`]); fails on non-zero exit.
    /// Returns stdout.
    pub fn exec(&self, args: &[&str]) -> Result<String> {
        self.exec_timeout(args, CMD_TIMEOUT)
    }

    /// [`Netns::exec`] with an explicit bound.
    pub fn exec_timeout(&self, args: &[&str], timeout: Duration) -> Result<String> {
        run_ok(&mut self.command(args)?, timeout)
    }

    /// Runs `args` inside the namespace and returns (exit success, stdout, stderr) without
    /// failing on a non-zero exit.
    pub fn exec_status(&self, args: &[&str], timeout: Duration) -> Result<(bool, String, String)> {
        let o = crate::cmd::run(&mut self.command(args)?, timeout)?;
        Ok((o.status.success(), o.stdout, o.stderr))
    }

    /// `sh -c script` inside the namespace.
    pub fn sh(&self, script: &str) -> Result<String> {
        self.exec(&["sh", "-c", script])
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut v = vec!["-n", self.name.as_str()];
        v.extend_from_slice(args);
        ip(&v)
    }

    /// Sets a sysctl inside the namespace (`net.*` keys are per namespace).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec(&["sysctl", "-q", "-w", &format!("{key}={value}")])
            .map(drop)
    }

    /// Reads a sysctl inside the namespace.
    pub fn sysctl_get(&self, key: &str) -> Result<String> {
        Ok(self.exec(&["sysctl", "-n", key])?.trim().to_string())
    }

    /// `net.ipv4.ip_forward = 1`.
    pub fn enable_forwarding(&self) -> Result<()> {
        self.sysctl("net.ipv4.ip_forward", "1")
    }

    /// Adds an address (`"198.18.0.1/24"`) to `dev`.
    pub fn addr_add(&self, dev: &str, cidr: &str) -> Result<()> {
        self.ip(&["addr", "add", cidr, "dev", dev]).map(drop)
    }

    /// Brings `dev` up.
    pub fn link_up(&self, dev: &str) -> Result<()> {
        self.ip(&["link", "set", "dev", dev, "up"]).map(drop)
    }

    /// Sets the MTU of `dev`.
    pub fn set_mtu(&self, dev: &str, mtu: u32) -> Result<()> {
        self.ip(&["link", "set", "dev", dev, "mtu", &mtu.to_string()])
            .map(drop)
    }

    /// MTU of `dev`.
    pub fn mtu(&self, dev: &str) -> Result<u32> {
        let out = self.ip(&["-o", "link", "show", "dev", dev])?;
        let mut words = out.split_whitespace();
        while let Some(w) = words.next() {
            if w == "mtu"
                && let Some(v) = words.next().and_then(|v| v.parse().ok())
            {
                return Ok(v);
            }
        }
        Err(Error::Parse {
            what: format!("mtu of {dev}"),
            detail: out,
        })
    }

    /// `ip route add <dst> via <via>`.
    pub fn route_add(&self, dst: &str, via: &str) -> Result<()> {
        self.ip(&["route", "add", dst, "via", via]).map(drop)
    }

    /// `ip route replace default via <via>`.
    pub fn default_route(&self, via: &str) -> Result<()> {
        self.ip(&["route", "replace", "default", "via", via])
            .map(drop)
    }

    /// IPv4 addresses (without prefix length) on `dev`.
    pub fn addrs(&self, dev: &str) -> Result<Vec<std::net::Ipv4Addr>> {
        let out = self.ip(&["-o", "-4", "addr", "show", "dev", dev])?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                w.find(|x| *x == "inet")?;
                w.next()?.split('/').next()?.parse().ok()
            })
            .collect())
    }

    /// Starts `args` inside the namespace; stdout/stderr go to `<log_dir>/<label>.{stdout,stderr}`.
    /// The process is killed when the returned [`Proc`] drops, or at the latest when the
    /// namespace drops.
    pub fn spawn(&self, label: &str, args: &[&str]) -> Result<Proc> {
        self.spawn_env(label, args, &[])
    }

    /// [`Netns::spawn`] with extra environment variables.
    pub fn spawn_env(&self, label: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Proc> {
        let mut cmd = self.command(args)?;
        cmd.envs(env.iter().copied());
        let base = format!("{}-{}", sanitize(&self.role, 16), sanitize(label, 32));
        let mut n = 0u32;
        let (out_path, err_path) = loop {
            let stem = if n == 0 {
                base.clone()
            } else {
                format!("{base}.{n}")
            };
            let o = self.log_dir.join(format!("{stem}.stdout"));
            if !o.exists() || n > 1000 {
                break (o, self.log_dir.join(format!("{stem}.stderr")));
            }
            n += 1;
        };
        let _ = std::fs::create_dir_all(&self.log_dir);
        let out = File::create(&out_path).map_err(io_err(format!("creating {out_path:?}")))?;
        let err = File::create(&err_path).map_err(io_err(format!("creating {err_path:?}")))?;
        let desc = describe(&cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io_err(format!("spawning `{desc}`")))?;
        let p = Proc::new(label.to_string(), desc, child, out_path, err_path);
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p.shared());
        Ok(p)
    }

    /// Runs `f` on a helper thread that has entered this namespace (`setns`), and returns its
    /// result. Sockets created inside `f` stay in this namespace when returned.
    pub fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).map_err(io_err(format!("opening {path}")))?;
        thread::scope(|s| {
            s.spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::Other(format!("setns({path}): {e}")))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// A UDP socket bound to `bind` inside this namespace (usable from any thread).
    pub fn udp_socket(&self, bind: SocketAddr) -> Result<UdpSocket> {
        self.run_in(|| UdpSocket::bind(bind))?
            .map_err(io_err(format!("binding UDP {bind} in {}", self.name)))
    }

    /// A TCP listener bound to `bind` inside this namespace.
    pub fn tcp_listener(&self, bind: SocketAddr) -> Result<std::net::TcpListener> {
        self.run_in(|| std::net::TcpListener::bind(bind))?
            .map_err(io_err(format!("binding TCP {bind} in {}", self.name)))
    }

    /// Kills every process this namespace started that is still alive (SIGTERM, then SIGKILL
    /// after `grace`).
    pub fn kill_all(&self, grace: Duration) {
        let procs: Vec<Shared> = self
            .procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for p in procs {
            let pid = lock(&p).pid();
            if let Err(e) = terminate(&p, grace) {
                eprintln!("n2n-tests: killing pid {pid} in {}: {e}", self.name);
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.kill_all(Duration::from_secs(2));
        kill_ns_pids(&self.name);
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("n2n-tests: could not delete namespace {}: {e}", self.name);
        }
    }
}

/// The kernel's IPv4 neighbour table is one table for all network namespaces: its limits
/// `net.ipv4.neigh.default.gc_thresh{1,2,3}` (default 128/512/1024) count the entries of every
/// namespace together and can only be set from the initial namespace. A test whose namespaces
/// hold more neighbours than that (64 edges that each resolve 63 others: 4032 entries) loses
/// entries to "neighbour table overflow" — ARP replies that are never stored — unless the limits
/// are raised. This guard raises them for its lifetime (never lowers them) and restores the
/// values it changed when the last guard of the process is dropped. It touches no address,
/// route or device of the initial namespace.
#[derive(Debug)]
pub struct NeighTableGuard {
    entries: usize,
}

/// The live guards of the process.
struct NeighGuards {
    /// How many.
    live: usize,
    /// The entries they reserve together.
    entries: usize,
    /// The values found before the first one raised them.
    saved: Vec<(&'static str, String)>,
}

static NEIGH_GUARDS: Mutex<NeighGuards> = Mutex::new(NeighGuards {
    live: 0,
    entries: 0,
    saved: Vec::new(),
});

/// Raised in this order (thresh3 first, so it never falls below thresh2), restored in reverse.
const NEIGH_THRESH: [&str; 3] = [
    "/proc/sys/net/ipv4/neigh/default/gc_thresh3",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh2",
    "/proc/sys/net/ipv4/neigh/default/gc_thresh1",
];

impl NeighTableGuard {
    /// Make room for `entries` more neighbour entries across all namespaces, on top of what
    /// the other live guards reserved (tests of one binary run in parallel, and the table is
    /// one for all of them): `gc_thresh1` and `gc_thresh2` ≥ the sum (below `gc_thresh1` the
    /// periodic garbage collector leaves entries alone; above it, stale ones go after
    /// `gc_stale_time`), `gc_thresh3` ≥ 2 × the sum (the hard limit).
    pub fn reserve(entries: usize) -> Result<NeighTableGuard> {
        let mut g = NEIGH_GUARDS.lock().unwrap_or_else(|e| e.into_inner());
        let total = g.entries + entries;
        for (path, want) in NEIGH_THRESH.iter().zip([2 * total, total, total]) {
            let old = std::fs::read_to_string(path).map_err(io_err(format!("reading {path}")))?;
            let old = old.trim().to_string();
            if old.parse::<usize>().is_ok_and(|v| v >= want) {
                continue;
            }
            std::fs::write(path, want.to_string())
                .map_err(io_err(format!("raising {path} to {want}")))?;
            eprintln!("n2n-tests: {path} raised from {old} to {want} while this test runs");
            if !g.saved.iter().any(|(p, _)| p == path) {
                g.saved.push((path, old));
            }
        }
        g.live += 1;
        g.entries = total;
        Ok(NeighTableGuard { entries })
    }
}

impl Drop for NeighTableGuard {
    fn drop(&mut self) {
        let mut g = NEIGH_GUARDS.lock().unwrap_or_else(|e| e.into_inner());
        g.live = g.live.saturating_sub(1);
        g.entries = g.entries.saturating_sub(self.entries);
        if g.live == 0 {
            for (path, old) in g.saved.drain(..).rev() {
                if let Err(e) = std::fs::write(path, &old) {
                    eprintln!("n2n-tests: could not restore {path} to {old}: {e}");
                }
            }
        }
    }
}
