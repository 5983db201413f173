//! The batched socket calls: `sendmsg` with `UDP_SEGMENT`, `sendmmsg`,
//! `recvmmsg`, and [`RecvBatch`], the receive buffers of one `recvmmsg`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd as _;

use super::from_socket;

/// `UDP_SEGMENT` (`linux/udp.h`): UDP segmentation offload.
#[cfg(target_os = "linux")]
pub const UDP_SEGMENT: libc::c_int = 103;

/// Largest number of segments one [`send_segments`] call may carry
/// (`UDP_MAX_SEGMENTS` of older kernels; newer ones allow 128).
pub const MAX_SEGMENTS: usize = 64;

/// Whether a [`send_segments`] error means that the kernel or the path
/// cannot segment (`EIO`, `EINVAL`): send the datagrams one by one then.
pub fn gso_unsupported(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL))
}

/// Send `data` to `dst` as consecutive datagrams of `seg` bytes (the last
/// one may be shorter) with a single `sendmsg` and UDP segmentation offload
/// (`UDP_SEGMENT`, Linux ≥ 4.18): the receiver sees ordinary datagrams.
/// `data` must hold at most [`MAX_SEGMENTS`] segments and 65 507 bytes.
/// Returns the bytes sent; `WouldBlock` on a full non-blocking socket;
/// `EIO`/`EINVAL` where the kernel or path cannot segment (send one by one
/// then).
#[cfg(target_os = "linux")]
pub fn send_segments(
    fd: std::os::fd::BorrowedFd<'_>,
    data: &[u8],
    seg: u16,
    dst: SocketAddr,
) -> io::Result<usize> {
    let addr = socket2::SockAddr::from(dst);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // 8-byte aligned room for one cmsghdr carrying a u16.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(2) } as usize;
    if space > std::mem::size_of_val(&control) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: an all-zero msghdr is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = addr.as_ptr().cast_mut().cast();
    msg.msg_namelen = addr.len();
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space;
    // SAFETY: `msg` points at `control`, which is large enough for one
    // header and its data (checked above); the header is written through
    // the pointer CMSG_FIRSTHDR returns (non-null since msg_controllen >=
    // sizeof(cmsghdr)), the u16 unaligned into its data area.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        if cmsg.is_null() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(2) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg);
    }
    // SAFETY: every pointer in `msg` refers to live locals or `data`, valid
    // for the duration of the call; the fd is borrowed, hence open.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &raw const msg, 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Largest number of datagrams one [`send_many`] / [`recv_many`] call
/// handles (the size of each thread's [`MsgArrays`]).
pub const MMSG_BATCH: usize = 64;

/// The header arrays of one `sendmmsg` / `recvmmsg`: [`MMSG_BATCH`] of
/// each, zeroed once per thread and reused (a call writes only the
/// entries it uses, whole: nothing of an earlier call leaks into them).
/// Before, every call zeroed ~14 KiB of arrays on the stack; on an idle
/// path, where each datagram meets a cold cache, that memset was one of
/// the edge's largest user-space costs per packet.
#[cfg(target_os = "linux")]
struct MsgArrays {
    iov: Box<[libc::iovec]>,
    names: Box<[libc::sockaddr_storage]>,
    hdrs: Box<[libc::mmsghdr]>,
    /// 8-byte aligned room for one cmsghdr (a u16 `UDP_SEGMENT` to send,
    /// the `UDP_GRO` segment size received), per message.
    control: Box<[[u64; 4]]>,
    /// Datagrams per sent message, to turn the kernel's message count
    /// into datagrams (entries past the call's messages are stale).
    per_msg: Box<[usize]>,
}

#[cfg(target_os = "linux")]
impl MsgArrays {
    fn new() -> Self {
        // SAFETY: all-zero iovec, sockaddr_storage and mmsghdr are valid
        // (null pointers, zero lengths).
        let (iov, ss, hdr) = unsafe {
            (
                std::mem::zeroed::<libc::iovec>(),
                std::mem::zeroed::<libc::sockaddr_storage>(),
                std::mem::zeroed::<libc::mmsghdr>(),
            )
        };
        Self {
            iov: vec![iov; MMSG_BATCH].into_boxed_slice(),
            names: vec![ss; MMSG_BATCH].into_boxed_slice(),
            hdrs: vec![hdr; MMSG_BATCH].into_boxed_slice(),
            control: vec![[0u64; 4]; MMSG_BATCH].into_boxed_slice(),
            per_msg: vec![0; MMSG_BATCH].into_boxed_slice(),
        }
    }

    /// `f` with this thread's arrays for sending (`send`) or receiving;
    /// the two are separate, so neither call can find its arrays borrowed.
    fn with<R>(send: bool, f: impl FnOnce(&mut Self) -> R) -> R {
        thread_local! {
            static SEND: std::cell::RefCell<MsgArrays> = std::cell::RefCell::new(MsgArrays::new());
            static RECV: std::cell::RefCell<MsgArrays> = std::cell::RefCell::new(MsgArrays::new());
        }
        let key = if send { &SEND } else { &RECV };
        key.with(|a| match a.try_borrow_mut() {
            Ok(mut a) => f(&mut a),
            // Not reachable (no call nests another); a fresh set is correct.
            Err(_) => f(&mut Self::new()),
        })
    }

    /// An all-zero header (no name, iovecs or control).
    fn empty_hdr() -> libc::mmsghdr {
        // SAFETY: as in `new`.
        unsafe { std::mem::zeroed() }
    }
}

/// Write `addr` into `ss`; returns the length to pass to the kernel.
#[cfg(target_os = "linux")]
fn encode_addr(addr: SocketAddr, ss: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let a = socket2::SockAddr::from(addr);
    let len = usize::try_from(a.len())
        .unwrap_or(0)
        .min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `a` holds `a.len()` initialized bytes of a socket address,
    // `ss` is large enough for any of them (min above); the regions are
    // distinct objects.
    unsafe {
        std::ptr::copy_nonoverlapping(a.as_ptr().cast::<u8>(), (&raw mut *ss).cast::<u8>(), len);
    }
    libc::socklen_t::try_from(len).unwrap_or(0)
}

/// Read a source address the kernel wrote into `ss` (`None` for a
/// family other than IPv4/IPv6 or a short length).
#[cfg(target_os = "linux")]
fn decode_addr(ss: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = usize::try_from(len).ok()?;
    match libc::c_int::from(ss.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in;
            // sockaddr_storage is aligned for every address type.
            let sin = unsafe { &*(&raw const *ss).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(std::net::SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &*(&raw const *ss).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Send the datagrams `msgs` (payload, destination) in order with one
/// `sendmmsg`; at most [`MMSG_BATCH`] are looked at. Returns how many
/// were sent (≥ 1 unless `msgs` is empty). An error (`WouldBlock` on a
/// full non-blocking socket included) concerns the first datagram: the
/// kernel reports an error on a later one as a short count, and the next
/// call, starting there, gets it.
#[cfg(target_os = "linux")]
pub fn send_many(
    fd: std::os::fd::BorrowedFd<'_>,
    msgs: &[(&[u8], SocketAddr)],
) -> io::Result<usize> {
    send_many_mapped(fd, msgs, false, false)
}

/// [`send_many`], with each run of equal-sized datagrams for one
/// destination sent as one `UDP_SEGMENT` message of the `sendmmsg` (the
/// datagrams are its iovecs, nothing is copied). Returns the number of
/// datagrams sent; [`gso_unsupported`] on the error tells to fall back to
/// [`send_many`].
#[cfg(target_os = "linux")]
pub fn send_many_segmented(
    fd: std::os::fd::BorrowedFd<'_>,
    msgs: &[(&[u8], SocketAddr)],
) -> io::Result<usize> {
    send_many_mapped(fd, msgs, false, true)
}

/// Largest payload of one `UDP_SEGMENT` send this module builds (below the
/// 65 507-byte UDP limit, with room for the kernel's own headers).
const GSO_MAX_BYTES: usize = 65_000;

/// Largest datagram [`send_many_segmented`] segments: what fits a 1500-byte
/// MTU unfragmented with IPv6 (1500 − 40 − 8). The kernel cannot fragment the
/// segments of a `UDP_SEGMENT` send (it refuses the whole message), while a
/// larger datagram sent alone may still be fragmented (DF clear, as C n2n
/// sends): the relay of a 1500-byte frame stays possible.
pub const GSO_MAX_SEGMENT: usize = 1452;

/// How many of `msgs` (from the first) form one segmented send: the same
/// destination, the same length (at most [`GSO_MAX_SEGMENT`]), except that
/// the last may be shorter; at most [`MAX_SEGMENTS`] and [`GSO_MAX_BYTES`].
/// 1 when no run starts here.
fn gso_run(msgs: &[(&[u8], SocketAddr)]) -> usize {
    let Some(&(first, dst)) = msgs.first() else {
        return 0;
    };
    let seg = first.len();
    if seg == 0 || seg > GSO_MAX_SEGMENT {
        return 1;
    }
    let mut n = 1;
    let mut bytes = seg;
    for &(d, to) in msgs.iter().skip(1).take(MAX_SEGMENTS - 1) {
        if to != dst || d.len() > seg || d.is_empty() || bytes + d.len() > GSO_MAX_BYTES {
            break;
        }
        n += 1;
        bytes += d.len();
        if d.len() < seg {
            break;
        }
    }
    n
}

/// [`send_many`], with IPv4 destinations written IPv4-mapped when
/// `v6_socket` ([`super::to_socket`]). With `gso`, each run of datagrams
/// for one destination ([`gso_run`]) goes out as one message of the
/// `sendmmsg`: its datagrams are the iovecs (no copy), `UDP_SEGMENT` their
/// length, and the kernel cuts it into the same datagrams again. Returns
/// the number of datagrams sent; an error concerns the first message
/// ([`gso_unsupported`]: send again without `gso`).
#[cfg(target_os = "linux")]
pub(super) fn send_many_mapped(
    fd: std::os::fd::BorrowedFd<'_>,
    msgs: &[(&[u8], SocketAddr)],
    v6_socket: bool,
    gso: bool,
) -> io::Result<usize> {
    let msgs = msgs.get(..msgs.len().min(MMSG_BATCH)).unwrap_or(&[]);
    if msgs.is_empty() {
        return Ok(0);
    }
    MsgArrays::with(true, |a| send_arrays(fd, msgs, v6_socket, gso, a))
}

/// [`send_many_mapped`] with the header arrays `a`.
#[cfg(target_os = "linux")]
fn send_arrays(
    fd: std::os::fd::BorrowedFd<'_>,
    msgs: &[(&[u8], SocketAddr)],
    v6_socket: bool,
    gso: bool,
    a: &mut MsgArrays,
) -> io::Result<usize> {
    let MsgArrays {
        iov,
        names,
        hdrs,
        control,
        per_msg,
    } = a;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(2) } as usize;
    let gso = gso && space <= std::mem::size_of::<[u64; 4]>();
    for (v, (data, _)) in iov.iter_mut().zip(msgs) {
        v.iov_base = data.as_ptr().cast_mut().cast();
        v.iov_len = data.len();
    }
    let mut nmsg = 0;
    let mut at = 0;
    while let Some(rest) = msgs.get(at..).filter(|r| !r.is_empty()) {
        let run = if gso { gso_run(rest) } else { 1 };
        let (Some(h), Some(ss), Some(ctl), Some(count), Some(v), Some(&(first, dst))) = (
            hdrs.get_mut(nmsg),
            names.get_mut(nmsg),
            control.get_mut(nmsg),
            per_msg.get_mut(nmsg),
            iov.get_mut(at..at + run),
            rest.first(),
        ) else {
            break;
        };
        *h = MsgArrays::empty_hdr();
        h.msg_hdr.msg_namelen = encode_addr(super::to_socket(dst, v6_socket), ss);
        h.msg_hdr.msg_name = (&raw mut *ss).cast();
        h.msg_hdr.msg_iov = v.as_mut_ptr();
        h.msg_hdr.msg_iovlen = run as _;
        if run > 1 {
            *ctl = [0; 4];
            h.msg_hdr.msg_control = ctl.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = space as _;
            let seg = u16::try_from(first.len()).unwrap_or(u16::MAX);
            // SAFETY: the header points at `ctl`, large enough for one
            // cmsghdr and its u16 (checked with `gso` above); CMSG_FIRSTHDR
            // is non-null since msg_controllen >= sizeof(cmsghdr); the u16
            // is written unaligned into its data area.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&raw const h.msg_hdr);
                if !cmsg.is_null() {
                    (*cmsg).cmsg_level = libc::SOL_UDP;
                    (*cmsg).cmsg_type = UDP_SEGMENT;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(2) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), seg);
                }
            }
        }
        *count = run;
        nmsg += 1;
        at += run;
    }
    let n = libc::c_uint::try_from(nmsg).unwrap_or(0);
    // SAFETY: the first `n` headers point at live entries of `iov`,
    // `names` and `control` and at the payloads borrowed in `msgs`, all
    // valid for the call; the fd is borrowed, hence open.
    let rc = unsafe { libc::sendmmsg(fd.as_raw_fd(), hdrs.as_mut_ptr(), n, 0) };
    let sent = usize::try_from(rc).map_err(|_| io::Error::last_os_error())?;
    Ok(per_msg.iter().take(sent).sum())
}

/// Receive up to `bufs.len()` (at most [`MMSG_BATCH`]) datagrams with one
/// non-blocking `recvmmsg`; datagram `i` lands in `bufs[i]`, its length
/// and source in `meta[i]` (length cut to the buffer, source `None` for
/// an unknown family). Returns how many arrived; `WouldBlock` if none.
#[cfg(target_os = "linux")]
pub fn recv_many<B: AsMut<[u8]>>(
    fd: std::os::fd::BorrowedFd<'_>,
    bufs: &mut [B],
    meta: &mut [(usize, Option<SocketAddr>)],
) -> io::Result<usize> {
    recv_into(fd, bufs.iter_mut().map(AsMut::as_mut), meta, None)
}

/// [`recv_many`] into the buffers `slots` yields (at most `meta.len()`
/// and [`MMSG_BATCH`] of them are used).
#[cfg(target_os = "linux")]
fn recv_into<'a>(
    fd: std::os::fd::BorrowedFd<'_>,
    slots: impl Iterator<Item = &'a mut [u8]>,
    meta: &mut [(usize, Option<SocketAddr>)],
    gro: Option<&mut [GroSlot]>,
) -> io::Result<usize> {
    MsgArrays::with(false, |a| recv_arrays(fd, slots, meta, gro, a))
}

/// [`recv_into`] with the header arrays `a`.
#[cfg(target_os = "linux")]
fn recv_arrays<'a>(
    fd: std::os::fd::BorrowedFd<'_>,
    slots: impl Iterator<Item = &'a mut [u8]>,
    meta: &mut [(usize, Option<SocketAddr>)],
    mut gro: Option<&mut [GroSlot]>,
    a: &mut MsgArrays,
) -> io::Result<usize> {
    let MsgArrays {
        iov, names, hdrs, ..
    } = a;
    let mut count = 0;
    for (b, (v, (ss, h))) in slots
        .zip(iov.iter_mut().zip(names.iter_mut().zip(hdrs.iter_mut())))
        .take(meta.len())
    {
        *h = MsgArrays::empty_hdr();
        v.iov_base = b.as_mut_ptr().cast();
        v.iov_len = b.len();
        // The kernel writes the source here; a family it did not write
        // reads as unknown.
        ss.ss_family = 0;
        h.msg_hdr.msg_name = (&raw mut *ss).cast();
        h.msg_hdr.msg_namelen =
            libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_storage>()).unwrap_or(0);
        h.msg_hdr.msg_iov = &raw mut *v;
        h.msg_hdr.msg_iovlen = 1;
        if let Some(g) = gro.as_deref_mut().and_then(|g| g.get_mut(count)) {
            g.segment = 0;
            h.msg_hdr.msg_control = g.control.as_mut_ptr().cast();
            h.msg_hdr.msg_controllen = std::mem::size_of_val(&g.control) as _;
        }
        count += 1;
    }
    if count == 0 {
        return Ok(0);
    }
    let n = libc::c_uint::try_from(count).unwrap_or(0);
    // SAFETY: the first `n` headers point at live entries of `iov` and
    // `names` and at the caller's buffers (exclusively borrowed for 'a,
    // beyond this call), all valid for writes during the call; no timeout
    // pointer.
    let rc = unsafe {
        libc::recvmmsg(
            fd.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    let got = usize::try_from(rc).map_err(|_| io::Error::last_os_error())?;
    for ((m, (ss, h)), v) in meta
        .iter_mut()
        .zip(names.iter().zip(hdrs.iter()))
        .zip(iov.iter())
        .take(got.min(count))
    {
        *m = (
            usize::try_from(h.msg_len).unwrap_or(0).min(v.iov_len),
            decode_addr(ss, h.msg_hdr.msg_namelen),
        );
    }
    if let Some(g) = gro {
        for (slot, h) in g.iter_mut().zip(hdrs.iter()).take(got.min(count)) {
            slot.segment = gro_segment(&h.msg_hdr);
        }
    }
    Ok(got.min(count))
}

/// `UDP_GRO` (`linux/udp.h`): UDP receive offload.
#[cfg(target_os = "linux")]
pub const UDP_GRO: libc::c_int = 104;

/// The control buffer of one receive slot with `UDP_GRO`, and the segment
/// size the kernel reported in it (0: one datagram).
#[derive(Clone, Copy, Default)]
struct GroSlot {
    control: [u64; 4],
    segment: usize,
}

/// The `UDP_GRO` segment size in the control messages of a received
/// `msghdr` (0 if there is none: the buffer holds one datagram).
#[cfg(target_os = "linux")]
fn gro_segment(h: &libc::msghdr) -> usize {
    if h.msg_control.is_null() || (h.msg_flags & libc::MSG_CTRUNC) != 0 {
        return 0;
    }
    // SAFETY: `h` is a header the kernel filled in: msg_control points at
    // the slot's control buffer (live for this call) and msg_controllen is
    // what the kernel wrote there; CMSG_FIRSTHDR/CMSG_NXTHDR stay inside it;
    // the int is read unaligned from the data area of a header whose
    // length covers it.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(h);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP
                && (*c).cmsg_type == UDP_GRO
                && (*c).cmsg_len as usize >= libc::CMSG_LEN(4) as usize
            {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                return usize::try_from(v).unwrap_or(0);
            }
            c = libc::CMSG_NXTHDR(h, c);
        }
    }
    0
}

/// The datagrams of one receive slot ([`RecvBatch::datagrams`]).
#[derive(Debug)]
pub struct Datagrams<'a> {
    chunks: std::slice::ChunksMut<'a, u8>,
    /// The slot held an empty datagram: yield it once.
    empty: bool,
}

impl<'a> Iterator for Datagrams<'a> {
    type Item = &'a mut [u8];

    fn next(&mut self) -> Option<&'a mut [u8]> {
        if std::mem::take(&mut self.empty) {
            return Some(&mut []);
        }
        self.chunks.next()
    }
}

/// Bytes of one [`RecvBatch::with_gro`] slot: the largest UDP payload.
pub const GRO_BUF: usize = 65_535;

/// The receive buffers of one `recvmmsg`: `count` (at most
/// [`MMSG_BATCH`]) slots of `size` bytes in one allocation, allocated once
/// and reused. Sources are handed out unmapped ([`super::from_socket`]).
pub struct RecvBatch {
    buf: Box<[u8]>,
    /// Distance between slots: `size` rounded up to a cache line, plus
    /// one, so that slots of a power-of-two size do not all fall into the
    /// same cache sets.
    stride: usize,
    size: usize,
    meta: Box<[(usize, Option<SocketAddr>)]>,
    /// With `UDP_GRO`: one control buffer and segment size per slot.
    gro: Option<Box<[GroSlot]>>,
    got: usize,
    /// Slots the next [`Self::recv`] offers the kernel: twice what the
    /// last one got (at least 2, at most all). An idle socket then sets
    /// up two headers, not all of them: fewer cache lines on a cold
    /// wake-up; a busy one grows back to every slot in a few calls.
    want: usize,
    /// Slots the last [`Self::recv`] offered.
    asked: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.meta.len())
            .field("size", &self.size)
            .field("got", &self.got)
            .finish_non_exhaustive()
    }
}

impl RecvBatch {
    /// `count` slots (1 to [`MMSG_BATCH`]) of `size` bytes each.
    pub fn new(count: usize, size: usize) -> Self {
        let count = count.clamp(1, MMSG_BATCH);
        let stride = size.next_multiple_of(64) + 64;
        Self {
            buf: vec![0u8; stride * count].into_boxed_slice(),
            stride,
            size,
            meta: vec![(0, None); count].into_boxed_slice(),
            gro: None,
            got: 0,
            want: count,
            asked: 0,
        }
    }

    /// `count` slots of [`GRO_BUF`] bytes for a socket with `UDP_GRO`
    /// enabled ([`super::enable_gro`]): a slot may hold several datagrams
    /// of one source, cut with [`Self::segment`].
    pub fn with_gro(count: usize) -> Self {
        let mut b = Self::new(count, GRO_BUF);
        b.gro = Some(vec![GroSlot::default(); b.meta.len()].into_boxed_slice());
        b
    }

    /// Whether this batch was made with [`Self::with_gro`] (it reads the
    /// segment sizes; only then may its socket have `UDP_GRO` on).
    pub fn reads_gro(&self) -> bool {
        self.gro.is_some()
    }

    /// The size of the datagrams in slot `i` of the last [`Self::recv`]:
    /// the kernel's `UDP_GRO` segment size when it coalesced several, else
    /// the slot's length (the last datagram of a slot may be shorter).
    pub fn segment(&self, i: usize) -> usize {
        let whole = self.meta.get(i).map_or(0, |m| m.0);
        match self.gro.as_ref().and_then(|g| g.get(i)) {
            Some(g) if g.segment > 0 && g.segment < whole => g.segment,
            _ => whole,
        }
    }

    /// Fill the slots with one non-blocking `recvmmsg`; returns how many
    /// datagrams arrived (`WouldBlock` if none).
    #[cfg(target_os = "linux")]
    pub fn recv(&mut self, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<usize> {
        self.got = 0;
        let size = self.size;
        let want = self.want.clamp(1, self.meta.len());
        let slots = self
            .buf
            .chunks_exact_mut(self.stride)
            .map(|c| c.get_mut(..size).unwrap_or_default());
        let meta = self.meta.get_mut(..want).unwrap_or_default();
        let r = recv_into(fd, slots, meta, self.gro.as_deref_mut());
        let n = r.as_ref().map_or(0, |&n| n);
        self.want = n.saturating_mul(2).clamp(2, self.meta.len());
        r?;
        for m in self.meta.iter_mut().take(n) {
            m.1 = m.1.map(from_socket);
        }
        self.got = n;
        self.asked = want;
        Ok(n)
    }

    /// Whether the last [`Self::recv`] filled every slot it offered (more
    /// may be waiting).
    pub fn filled(&self) -> bool {
        self.got > 0 && self.got == self.asked
    }

    /// Datagrams of the last [`Self::recv`].
    pub fn len(&self) -> usize {
        self.got
    }

    /// Whether the last [`Self::recv`] got nothing.
    pub fn is_empty(&self) -> bool {
        self.got == 0
    }

    /// The datagrams of slot `i` of the last [`Self::recv`] (several with
    /// `UDP_GRO`, cut at [`Self::segment`]; an empty datagram is one empty
    /// slice) and their (unmapped) source; `None` as for [`Self::get_mut`].
    pub fn datagrams(&mut self, i: usize) -> Option<(Datagrams<'_>, SocketAddr)> {
        let seg = self.segment(i).max(1);
        let (buf, from) = self.get_mut(i)?;
        let empty = buf.is_empty();
        Some((
            Datagrams {
                chunks: buf.chunks_mut(seg),
                empty,
            },
            from,
        ))
    }

    /// Datagram `i` of the last [`Self::recv`] and its (unmapped) source;
    /// `None` past the end or for a source of an unknown family.
    pub fn get_mut(&mut self, i: usize) -> Option<(&mut [u8], SocketAddr)> {
        if i >= self.got {
            return None;
        }
        let (len, from) = *self.meta.get(i)?;
        let at = i.checked_mul(self.stride)?;
        Some((self.buf.get_mut(at..at + len)?, from?))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{UdpConfig, bind_udp};
    use super::*;
    use std::net::UdpSocket;

    /// Two bound receivers and a sender, all on loopback.
    fn two_receivers_one_sender() -> (UdpSocket, UdpSocket, UdpSocket) {
        let bind = || bind_udp(&UdpConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        (bind(), bind(), UdpSocket::bind("127.0.0.1:0").unwrap())
    }

    #[test]
    fn segments_arrive_as_separate_datagrams() -> io::Result<()> {
        use std::os::fd::AsFd as _;
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        match send_segments(tx.as_fd(), &data, 300, rx.local_addr().unwrap()) {
            Ok(n) => assert_eq!(n, 1000),
            // Kernel without UDP GSO: nothing to check.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EIO | libc::EINVAL)) => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut got = Vec::new();
        let mut b = [0u8; 2000];
        for want in [300, 300, 300, 100] {
            let (n, from) = rx.recv_from(&mut b).unwrap();
            assert_eq!(n, want);
            assert_eq!(from, tx.local_addr().unwrap());
            got.extend_from_slice(&b[..n]);
        }
        assert_eq!(got, data);
        Ok(())
    }

    #[test]
    fn gso_runs_are_cut_where_destination_or_length_changes() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let (x, y, z) = ([0u8; 100], [0u8; 60], [0u8; 120]);
        let run = |m: &[(&[u8], SocketAddr)]| gso_run(m);
        assert_eq!(run(&[]), 0);
        assert_eq!(run(&[(&x, a)]), 1);
        // Equal lengths, one destination; the shorter last one belongs to the run.
        assert_eq!(run(&[(&x, a), (&x, a), (&y, a), (&x, a)]), 3);
        // Another destination or a longer datagram ends it.
        assert_eq!(run(&[(&x, a), (&x, b)]), 1);
        assert_eq!(run(&[(&x, a), (&z, a)]), 1);
        assert_eq!(run(&[(&[], a), (&[], a)]), 1);
        // At most MAX_SEGMENTS, and at most GSO_MAX_BYTES.
        let many = vec![(&x[..], a); 100];
        assert_eq!(run(&many), MAX_SEGMENTS);
        let big = [0u8; 1400];
        let bigs = vec![(&big[..], a); 60];
        assert_eq!(run(&bigs), GSO_MAX_BYTES / 1400);
        // Datagrams that would need fragmenting on a 1500-byte MTU go alone.
        let jumbo = [0u8; GSO_MAX_SEGMENT + 1];
        assert_eq!(run(&[(&jumbo, a), (&jumbo, a)]), 1);
    }

    #[test]
    fn segmented_batch_arrives_as_the_same_datagrams_in_order() {
        use std::os::fd::AsFd as _;
        let (rx, rx2, tx) = two_receivers_one_sender();
        let (a, b) = (rx.local_addr().unwrap(), rx2.local_addr().unwrap());
        // Runs for a (equal sizes, one shorter tail), a single one for b, a run again.
        let mut payloads: Vec<(Vec<u8>, SocketAddr)> = Vec::new();
        for i in 0..20u8 {
            payloads.push((vec![i; 1400], a));
        }
        payloads.push((vec![99; 700], a));
        payloads.push((vec![100; 1400], b));
        for i in 0..30u8 {
            payloads.push((vec![i.wrapping_add(150); 1000], a));
        }
        let msgs: Vec<(&[u8], SocketAddr)> =
            payloads.iter().map(|(p, d)| (p.as_slice(), *d)).collect();
        let mut sent = 0;
        while sent < msgs.len() {
            match send_many_segmented(tx.as_fd(), &msgs[sent..]) {
                Ok(n) => {
                    assert!(n >= 1, "{n}");
                    sent += n;
                }
                // Kernel without UDP GSO: nothing to check.
                Err(e) if gso_unsupported(&e) => return,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(sent, msgs.len());
        for (sock, dst) in [(&rx, a), (&rx2, b)] {
            sock.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut buf = [0u8; 2000];
            for (p, _) in payloads.iter().filter(|(_, d)| *d == dst) {
                let (n, from) = sock.recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], &p[..]);
                assert_eq!(from, tx.local_addr().unwrap());
            }
            sock.set_nonblocking(true).unwrap();
            assert!(
                sock.recv_from(&mut buf).is_err(),
                "an extra datagram for {dst}"
            );
        }
    }

    #[test]
    fn gro_batch_hands_back_the_datagrams_in_order() {
        use std::os::fd::AsFd as _;
        let rx = bind_udp(&UdpConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        if super::super::enable_gro(&rx).is_err() {
            return; // kernel without UDP_GRO
        }
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let data: Vec<u8> = (0..14_000u32).map(|i| (i % 253) as u8).collect();
        let mut want: Vec<Vec<u8>> = Vec::new();
        let segmented = match send_segments(tx.as_fd(), &data, 1400, rx.local_addr().unwrap()) {
            Ok(_) => {
                want.extend(data.chunks(1400).map(<[u8]>::to_vec));
                true
            }
            Err(e) if gso_unsupported(&e) => false,
            Err(e) => panic!("{e}"),
        };
        tx.send_to(b"single", rx.local_addr().unwrap()).unwrap();
        want.push(b"single".to_vec());
        // An empty datagram is handed out as one empty slice.
        tx.send_to(b"", rx.local_addr().unwrap()).unwrap();
        want.push(Vec::new());
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut batch = RecvBatch::with_gro(8);
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut coalesced = false;
        for _ in 0..10 {
            let n = match batch.recv(rx.as_fd()) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            };
            for i in 0..n {
                let whole = batch.get_mut(i).unwrap().0.len();
                coalesced |= batch.segment(i) < whole;
                let (d, from) = batch.datagrams(i).unwrap();
                assert_eq!(from, tx.local_addr().unwrap());
                got.extend(d.map(|d| d.to_vec()));
            }
        }
        assert_eq!(got, want);
        // A segmented send over loopback reaches a GRO socket in one piece.
        assert!(
            coalesced || !segmented,
            "no buffer held more than one datagram"
        );
    }

    #[test]
    fn many_round_trip_in_order() {
        use std::os::fd::AsFd as _;
        let (rx, rx2, tx) = two_receivers_one_sender();
        let (a, b) = (rx.local_addr().unwrap(), rx2.local_addr().unwrap());
        let payloads: Vec<Vec<u8>> = (0..70u8).map(|i| vec![i; 1 + usize::from(i)]).collect();
        let msgs: Vec<(&[u8], SocketAddr)> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (p.as_slice(), if i % 3 == 0 { b } else { a }))
            .collect();
        let mut sent = 0;
        while sent < msgs.len() {
            let n = send_many(tx.as_fd(), &msgs[sent..]).unwrap();
            assert!((1..=MMSG_BATCH).contains(&n), "{n}");
            sent += n;
        }
        assert_eq!(send_many(tx.as_fd(), &[]).unwrap(), 0);
        std::thread::sleep(std::time::Duration::from_millis(50));
        for (sock, want_b) in [(&rx, false), (&rx2, true)] {
            let want: Vec<&(&[u8], SocketAddr)> = msgs
                .iter()
                .enumerate()
                .filter(|(i, _)| (i % 3 == 0) == want_b)
                .map(|(_, m)| m)
                .collect();
            // Small buffers: a longer datagram is cut to the buffer.
            let mut bufs = vec![[0u8; 40]; 16];
            let mut meta = [(0usize, None); 16];
            let mut got = Vec::new();
            loop {
                match recv_many(sock.as_fd(), &mut bufs, &mut meta) {
                    Ok(n) => {
                        assert!((1..=16).contains(&n));
                        for (buf, (len, from)) in bufs.iter().zip(meta.iter()).take(n) {
                            assert_eq!(*from, Some(tx.local_addr().unwrap()));
                            got.push(buf[..*len].to_vec());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("{e}"),
                }
            }
            assert_eq!(got.len(), want.len());
            for (g, (w, _)) in got.iter().zip(want) {
                assert_eq!(g.as_slice(), &w[..w.len().min(40)]);
            }
        }
    }

    #[test]
    fn send_many_reports_an_error_on_the_first() {
        use std::os::fd::AsFd as _;
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let good: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        // An IPv6 destination on an IPv4 socket fails (EAFNOSUPPORT/EINVAL).
        let e = send_many(tx.as_fd(), &[(b"x", v6), (b"y", good)]).unwrap_err();
        assert!(e.raw_os_error().is_some(), "{e}");
        // Failing later: a short count, then the error.
        assert_eq!(
            send_many(tx.as_fd(), &[(b"x", good), (b"y", v6)]).unwrap(),
            1
        );
    }

    #[test]
    fn recv_batch_keeps_datagrams_apart_and_unmaps_sources() {
        use std::os::fd::AsFd as _;
        let mut cfg = UdpConfig::new("[::]:0".parse().unwrap());
        cfg.only_v6 = Some(false);
        let (rx, v6) = match bind_udp(&cfg) {
            Ok(s) => (s, true),
            // No IPv6 here: an IPv4 socket still checks the batch.
            Err(_) => (
                bind_udp(&UdpConfig::new("127.0.0.1:0".parse().unwrap())).unwrap(),
                false,
            ),
        };
        let port = rx.local_addr().unwrap().port();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = RecvBatch::new(4, 100);
        assert_eq!(
            b.recv(rx.as_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(b.is_empty() && b.get_mut(0).is_none());
        for i in 0..6u8 {
            // The fourth is longer than a slot: cut to it.
            let len = if i == 3 { 300 } else { 10 + usize::from(i) };
            tx.send_to(&vec![i; len], ("127.0.0.1", port)).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        // After a call that got nothing, two slots are offered; then twice
        // what the last call got (at most all four).
        assert_eq!(b.recv(rx.as_fd()).unwrap(), 2);
        assert!(b.filled());
        assert_eq!(b.recv(rx.as_fd()).unwrap(), 4);
        assert!(b.filled());
        assert_eq!(b.len(), 4);
        for k in 0..4u8 {
            let i = k + 2;
            let (d, from) = b.get_mut(usize::from(k)).unwrap();
            let want = if i == 3 { 100 } else { 10 + usize::from(i) };
            assert_eq!(d.len(), want, "datagram {i}");
            assert!(d.iter().all(|&x| x == i));
            assert_eq!(from, tx.local_addr().unwrap(), "v6 socket: {v6}");
        }
        assert!(b.get_mut(4).is_none());
        tx.send_to(&[7u8; 17], ("127.0.0.1", port)).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Four offered, one there: not filled (nothing more is waiting).
        assert_eq!(b.recv(rx.as_fd()).unwrap(), 1);
        assert!(!b.filled());
        assert_eq!(b.get_mut(0).unwrap().0, &[7u8; 17][..]);
        assert_eq!(
            b.recv(rx.as_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        assert!(!b.filled() && b.is_empty());
    }
}
