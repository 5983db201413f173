//! Blocking readiness for a loop on its own thread (the edge's data path):
//! a [`Poller`] (`epoll(7)`) over a handful of descriptors, `poll(2)` for a
//! one-off [`wait`], and a [`Waker`] (an eventfd) that other threads poke
//! when they queued something for the loop.
//!
//! A loop that blocks in `epoll_wait` wakes straight into its handler: no
//! reactor, no task queue, no timer wheel between the descriptor and the
//! code that reads it. The descriptors stay registered between waits, so a
//! wait does not set up and tear down a wait-queue entry per descriptor as
//! `poll(2)` does (on an idle edge that was most of the kernel time the
//! loop's five descriptors cost per wake-up beyond a two-descriptor loop).

use std::io;
use std::os::fd::{AsFd, AsRawFd as _, BorrowedFd, RawFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};

/// Wakes a thread blocked in [`wait`] from another thread (or a task of
/// another runtime): its descriptor becomes readable until [`Waker::drain`].
#[derive(Debug)]
pub struct Waker {
    fd: EventFd,
}

impl Waker {
    /// A non-blocking, close-on-exec eventfd.
    pub fn new() -> io::Result<Self> {
        let fd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)?;
        Ok(Self { fd })
    }

    /// Make the descriptor readable (cheap; wakes at most one `poll`).
    pub fn wake(&self) {
        // Only fails when the counter would overflow: it is readable then.
        let _ = self.fd.write(1);
    }

    /// Reset it (call after it was reported readable, before looking at
    /// what the other side queued: a wake after this is not lost).
    pub fn drain(&self) {
        let _ = self.fd.read();
    }
}

impl AsFd for Waker {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Which descriptors [`wait`] found ready.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ready(u8);

impl Ready {
    /// Whether descriptor `i` (its index in the slice given to [`wait`])
    /// is readable, or has an error or hang-up to report (a read tells).
    pub fn is_set(self, i: usize) -> bool {
        i < 8 && self.0 & (1 << i) != 0
    }

    /// Whether none is.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// Most descriptors a [`Poller`] or [`wait`] watches.
pub const MAX_FDS: usize = 8;

/// A set of up to [`MAX_FDS`] descriptors watched for reading with
/// `epoll(7)` (level-triggered: a descriptor left readable is reported
/// again), each reported by its slot.
///
/// The loop hands its descriptors to [`Poller::watch`] before each wait;
/// that compares their numbers with the registered ones and registers
/// anew only when they differ. A descriptor that replaces another must
/// therefore be opened before the other is closed (it then gets another
/// number), or [`Poller::forget`] be called.
#[derive(Debug)]
pub struct Poller {
    ep: Epoll,
    /// The registered descriptors by slot, `None` after `forget`.
    watched: Option<([Option<RawFd>; MAX_FDS], usize)>,
    events: [EpollEvent; MAX_FDS],
}

impl Poller {
    /// An empty set.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            ep: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            watched: None,
            events: [EpollEvent::empty(); MAX_FDS],
        })
    }

    /// Watch `fds`: slot `i` (`None`: nothing) is reported as index `i` of
    /// [`Ready`]. Costs nothing when the descriptors are the registered
    /// ones.
    pub fn watch(&mut self, fds: &[Option<BorrowedFd<'_>>]) -> io::Result<()> {
        if fds.len() > MAX_FDS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "epoll: too many descriptors",
            ));
        }
        let mut raw = [None; MAX_FDS];
        for (r, fd) in raw.iter_mut().zip(fds) {
            *r = fd.map(|f| f.as_raw_fd());
        }
        if self.watched == Some((raw, fds.len())) {
            return Ok(());
        }
        // Rare (a TAP opened, a socket replaced): start from an empty set,
        // so that no registration of a closed or moved descriptor is left.
        self.watched = None;
        self.ep = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        for (slot, fd) in fds.iter().enumerate() {
            if let Some(fd) = fd {
                let ev = EpollEvent::new(EpollFlags::EPOLLIN, slot as u64);
                self.ep.add(fd, ev)?;
            }
        }
        self.watched = Some((raw, fds.len()));
        Ok(())
    }

    /// Register every descriptor anew at the next [`Poller::watch`].
    pub fn forget(&mut self) {
        self.watched = None;
    }

    /// Block until a watched descriptor is readable (or has an error or
    /// hang-up to report) or `timeout` passed (`None`: no limit). An
    /// interrupted wait returns nothing ready.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<Ready> {
        let n = match self.ep.wait(&mut self.events, poll_timeout(timeout)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => return Ok(Ready::default()),
            Err(e) => return Err(e.into()),
        };
        let mut ready = 0u8;
        for ev in self.events.get(..n).unwrap_or_default() {
            if let Ok(slot) = u32::try_from(ev.data())
                && slot < 8
            {
                ready |= 1 << slot;
            }
        }
        Ok(Ready(ready))
    }
}

/// Block until one of `fds` (at most 8) is readable or `timeout` passed
/// (`None`: no limit). An interrupted wait returns nothing ready.
pub fn wait(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Ready> {
    const MAX: usize = MAX_FDS;
    let Some(first) = fds.first().copied() else {
        // Nothing to watch: just the timeout.
        return match nix::poll::poll(&mut [], poll_timeout(timeout)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(Ready::default()),
            Err(e) => Err(e.into()),
        };
    };
    if fds.len() > MAX {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "poll: too many descriptors",
        ));
    }
    // A fixed array (no allocation per wait); the unused tail is not passed.
    let mut polls: [PollFd<'_>; MAX] =
        std::array::from_fn(|_| PollFd::new(first, PollFlags::empty()));
    for (p, fd) in polls.iter_mut().zip(fds) {
        *p = PollFd::new(*fd, PollFlags::POLLIN);
    }
    let polls = polls.get_mut(..fds.len()).unwrap_or_default();
    match nix::poll::poll(polls, poll_timeout(timeout)) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Ok(Ready::default()),
        Err(e) => return Err(e.into()),
    }
    let mut ready = 0u8;
    for (i, p) in polls.iter().enumerate() {
        if p.revents().is_some_and(|r| !r.is_empty()) {
            ready |= 1 << i;
        }
    }
    Ok(Ready(ready))
}

/// Block until `fd` can be written or `timeout` passed: whether it can.
pub fn wait_writable(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    let mut p = [PollFd::new(fd, PollFlags::POLLOUT)];
    match nix::poll::poll(&mut p, poll_timeout(Some(timeout))) {
        Ok(n) => Ok(n > 0),
        Err(nix::errno::Errno::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Milliseconds, rounded up (a deadline 0.2 ms away must not spin), at
/// most `i32::MAX`.
fn poll_timeout(t: Option<Duration>) -> PollTimeout {
    match t {
        None => PollTimeout::NONE,
        Some(d) => {
            // Not `as_micros()`: its u128 division is a libcall per wait.
            let ms = d
                .as_secs()
                .saturating_mul(1000)
                .saturating_add(u64::from(d.subsec_nanos().div_ceil(1_000_000)));
            PollTimeout::try_from(i32::try_from(ms).unwrap_or(i32::MAX)).unwrap_or(PollTimeout::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_wake_from_another_thread_ends_the_wait() {
        let w = std::sync::Arc::new(Waker::new().unwrap());
        let w2 = w.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w2.wake();
        });
        let start = Instant::now();
        let r = wait(&[w.as_fd()], Some(Duration::from_secs(5))).unwrap();
        assert!(r.is_set(0), "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(4));
        w.drain();
        // Drained: nothing ready, the timeout ends the wait.
        let r = wait(&[w.as_fd()], Some(Duration::from_millis(10))).unwrap();
        assert!(r.is_empty(), "{r:?}");
        t.join().unwrap();
    }

    #[test]
    fn reports_the_ready_descriptor_by_index() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.send_to(b"x", b.local_addr().unwrap()).unwrap();
        let w = Waker::new().unwrap();
        let r = wait(&[w.as_fd(), a.as_fd(), b.as_fd()], None).unwrap();
        assert!(!r.is_set(0) && !r.is_set(1) && r.is_set(2), "{r:?}");
        assert!(wait_writable(a.as_fd(), Duration::from_millis(10)).unwrap());
    }

    #[test]
    fn a_poller_reports_slots_and_follows_replaced_descriptors() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let w = Waker::new().unwrap();
        let mut p = Poller::new().unwrap();
        let short = Some(Duration::from_millis(10));
        p.watch(&[Some(w.as_fd()), None, Some(b.as_fd())]).unwrap();
        assert!(p.wait(short).unwrap().is_empty());
        a.send_to(b"x", b.local_addr().unwrap()).unwrap();
        let r = p.wait(Some(Duration::from_secs(5))).unwrap();
        assert!(r.is_set(2) && !r.is_set(0) && !r.is_set(1), "{r:?}");
        // Level-triggered: still readable, reported again.
        assert!(p.wait(short).unwrap().is_set(2));
        let mut buf = [0u8; 8];
        b.recv(&mut buf).unwrap();
        assert!(p.wait(short).unwrap().is_empty());
        w.wake();
        assert!(p.wait(short).unwrap().is_set(0));
        w.drain();
        // `b` replaced by `c` (opened before `b` is closed), in slot 1.
        let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        drop(b);
        p.watch(&[Some(w.as_fd()), Some(c.as_fd())]).unwrap();
        a.send_to(b"y", c.local_addr().unwrap()).unwrap();
        let r = p.wait(Some(Duration::from_secs(5))).unwrap();
        assert!(r.is_set(1) && !r.is_set(2), "{r:?}");
        // `forget`: the same descriptors are registered again, still work.
        p.forget();
        p.watch(&[Some(w.as_fd()), Some(c.as_fd())]).unwrap();
        assert!(p.wait(short).unwrap().is_set(1));
        let too_many = [Some(w.as_fd()); MAX_FDS + 1];
        assert!(p.watch(&too_many).is_err());
    }

    #[test]
    fn timeouts_round_up_to_a_millisecond() {
        assert_eq!(poll_timeout(None), PollTimeout::NONE);
        let t = poll_timeout(Some(Duration::from_micros(200)));
        assert_eq!(i32::from(t), 1);
        assert_eq!(i32::from(poll_timeout(Some(Duration::ZERO))), 0);
        let t = poll_timeout(Some(Duration::new(2, 1_000_001)));
        assert_eq!(i32::from(t), 2002);
        assert_eq!(i32::from(poll_timeout(Some(Duration::from_millis(7)))), 7);
        assert_eq!(
            i32::from(poll_timeout(Some(Duration::from_secs(u64::MAX)))),
            i32::MAX
        );
    }
}
