//! The smallest possible TAP↔UDP tunnel, as a floor for the throughput harness: one blocking
//! `poll` over a TAP device and a UDP socket, one `read`/`sendto` per frame one way and one
//! `recv`/`write` the other, no header, no encryption, no batching, no offloads. It is what
//! any user-space layer-2 tunnel pays for crossing the kernel twice per frame on this machine
//! (C n2n 3.1.1's data path is this plus its header and cipher), so its added RTT is the
//! floor for ours and its throughput a stand-in for a one-syscall-per-packet tunnel measured
//! in the same run.
//!
//! Run by the harness as `n2n-throughput --tap-forwarder IFNAME LOCAL_PORT PEER_IP:PORT`
//! inside an edge namespace; the harness sets the address, MTU and link state with `ip`.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd as _;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use tun_rs::{DeviceBuilder, Layer};

/// The argument that selects the forwarder mode of `n2n-throughput`.
pub const FLAG: &str = "--tap-forwarder";

/// Runs the forwarder until killed. `args`: `IFNAME LOCAL_PORT PEER_IP:PORT`.
pub fn run(args: &[String]) -> Result<(), String> {
    let [name, port, peer] = args else {
        return Err(format!("usage: {FLAG} IFNAME LOCAL_PORT PEER_IP:PORT"));
    };
    let port: u16 = port.parse().map_err(|e| format!("port {port:?}: {e}"))?;
    let peer: SocketAddr = peer.parse().map_err(|e| format!("peer {peer:?}: {e}"))?;
    let dev = DeviceBuilder::new()
        .name(name.as_str())
        .layer(Layer::L2)
        .build_sync()
        .map_err(|e| format!("creating TAP {name}: {e}"))?;
    let sock = UdpSocket::bind(("0.0.0.0", port)).map_err(|e| format!("bind :{port}: {e}"))?;
    let mut buf = vec![0u8; 65_536];
    loop {
        let (tap_in, sock_in) = {
            let mut fds = [
                PollFd::new(dev.as_fd(), PollFlags::POLLIN),
                PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("poll: {e}")),
            }
            let ready = |f: &PollFd<'_>| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
            let [t, u] = &fds;
            (ready(t), ready(u))
        };
        if tap_in
            && let Ok(n) = dev.recv(&mut buf)
            && let Some(frame) = buf.get(..n)
        {
            let _ = sock.send_to(frame, peer);
        }
        if sock_in
            && let Ok(n) = sock.recv(&mut buf)
            && let Some(frame) = buf.get(..n)
        {
            let _ = dev.send(frame);
        }
    }
}
