//! Blocking readiness for a loop on its own thread (the edge's data path):
//! `poll(2)` over a handful of descriptors, and a [`Waker`] (an eventfd)
//! that other threads poke when they queued something for the loop.
//!
//! A loop that blocks in `poll` wakes straight into its handler: no
//! reactor, no task queue, no timer wheel between the descriptor and the
//! code that reads it.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};
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

/// Block until one of `fds` (at most 8) is readable or `timeout` passed
/// (`None`: no limit). An interrupted wait returns nothing ready.
pub fn wait(fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Ready> {
    const MAX: usize = 8;
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
