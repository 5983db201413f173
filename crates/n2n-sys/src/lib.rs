//! OS glue shared by the n2n `edge` and `supernode` binaries (Unix/Linux):
//!
//! * [`log`]: `tracing` subscriber printing C n2n's line format, to stderr
//!   or syslog, with a run-time level handle;
//! * [`process`]: daemonizing and dropping privileges;
//! * [`notify`]: systemd `sd_notify` (READY / STOPPING / STATUS);
//! * [`signals`]: SIGINT / SIGTERM / SIGHUP for tokio drivers;
//! * [`udp`]: UDP sockets with buffer sizes, PMTU discovery, TOS, dual stack.
//!
//! Unsafe code is limited to two libc calls without a safe wrapper in the
//! dependencies (`localtime_r`, `setsockopt(IP_MTU_DISCOVER)`).

pub mod log;
pub mod notify;
pub mod process;
pub mod signals;
pub mod udp;
