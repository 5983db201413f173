//! OS glue shared by the n2n `edge` and `supernode` binaries (Unix/Linux):
//!
//! * [`log`]: `tracing` subscriber printing C n2n's line format, to stderr
//!   or syslog, with a run-time level handle;
//! * [`process`]: daemonizing and dropping privileges;
//! * [`cmdline`]: hiding a secret argument (`-J`) from `ps` by overwriting
//!   it in the process's own argument area (through `/proc/self/mem`, no
//!   `unsafe`);
//! * [`notify`]: systemd `sd_notify` (READY / STOPPING / STATUS);
//! * [`signals`]: SIGINT / SIGTERM / SIGHUP for tokio drivers;
//! * [`udp`]: UDP sockets with buffer sizes, PMTU discovery, TOS, dual stack,
//!   per-datagram TTL, and the batched calls (`sendmsg` with `UDP_SEGMENT`,
//!   `sendmmsg`, `recvmmsg`).
//!
//! Unsafe code is limited to libc calls without a safe wrapper in the
//! dependencies: `localtime_r`, `fork`/`_exit` for daemonizing,
//! `setsockopt(IP_MTU_DISCOVER)`/`getsockopt(IP_MTU_DISCOVER)`, and the
//! message-header set-up around `sendmsg`/`sendmmsg`/`recvmmsg` in [`udp`]
//! (each block with its SAFETY comment).

pub mod cmdline;
pub mod log;
pub mod notify;
pub mod process;
pub mod signals;
pub mod udp;
