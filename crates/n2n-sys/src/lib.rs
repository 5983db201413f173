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
//! * [`time`]: the one `now()` the drivers feed the cores with;
//! * [`tap`]: the TAP offload ioctl;
//! * [`udp`]: UDP sockets with buffer sizes, PMTU discovery, TOS, dual
//!   stack and the IPv4-mapped address mapping, per-datagram TTL, the
//!   batched calls (`sendmsg` with `UDP_SEGMENT`, `sendmmsg`, `recvmmsg`)
//!   and [`udp::Socket`], the tokio socket both driver loops use.
//!
//! Every `unsafe` OS call of the binaries is here, each block with its
//! SAFETY comment. They are libc calls without a safe wrapper in the
//! dependencies:
//!
//! * `localtime_r` ([`log`], C's time stamps);
//! * `fork`/`_exit` ([`process`], daemonizing);
//! * `setsockopt`/`getsockopt` of plain `int` options ([`udp`]:
//!   `IP_MTU_DISCOVER`/`IPV6_MTU_DISCOVER`, `IP_TOS` on a dual-stack
//!   socket, `SO_RCVBUFFORCE`/`SO_SNDBUFFORCE`);
//! * the message headers around `sendmsg` (`UDP_SEGMENT` control message),
//!   `sendmmsg` and `recvmmsg` and the socket-address conversions they need
//!   ([`udp`]);
//! * `ioctl(TUNSETOFFLOAD)` ([`tap`]).
//!
//! Besides these, the daemons' only `unsafe` is the CPU-feature dispatch
//! of the transforms in `n2n-proto` (the binaries' own crates forbid it;
//! test tooling aside).

pub mod cmdline;
pub mod log;
pub mod notify;
pub mod poll;
pub mod process;
pub mod signals;
pub mod tap;
pub mod tcp;
pub mod time;
pub mod udp;
