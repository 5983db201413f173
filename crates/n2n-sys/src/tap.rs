//! TAP device ioctls that `tun-rs` does not offer as wanted.

use std::io;
use std::os::fd::{AsRawFd as _, BorrowedFd};

/// Enable checksum and TCP segmentation offload only (`TUN_F_CSUM |
/// TUN_F_TSO4 | TUN_F_TSO6`, no UDP segmentation: `tun-rs` also asks for
/// `TUN_F_USO*` when the kernel has them) on a TAP device opened with
/// `IFF_VNET_HDR`.
#[cfg(target_os = "linux")]
pub fn enable_tcp_offloads(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6;
    // SAFETY: TUNSETOFFLOAD takes the flags by value; the fd is borrowed,
    // hence open for the duration of the call.
    let rc = unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            libc::TUNSETOFFLOAD,
            libc::c_ulong::from(flags),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_a_tap_is_an_error_not_a_crash() {
        use std::os::fd::AsFd as _;
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        assert!(enable_tcp_offloads(s.as_fd()).is_err());
    }
}
