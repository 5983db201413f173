//! The standard `process_*` metrics (names and meaning as Prometheus' Go client's process
//! collector), read from `/proc` at scrape time. `prometheus-client` has no process
//! collector, so this is one, implementing its [`Collector`] trait.
//!
//! A value whose `/proc` file cannot be read or parsed is left out of the scrape rather than
//! reported as 0.

use std::fmt;

use nix::unistd::{SysconfVar, sysconf};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// The fields of `/proc/self/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    /// User + system CPU time, clock ticks.
    pub cpu_ticks: u64,
    /// Threads.
    pub threads: u64,
    /// Start time, clock ticks after boot.
    pub start_ticks: u64,
    /// Virtual memory size, bytes.
    pub vsize: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses: the fields start after the *last* `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    // rest starts at field 3 (state): field n is at index n - 3.
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    let num = |field: usize| f.get(field - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: num(14)?.checked_add(num(15)?)?,
        threads: num(20)?,
        start_ticks: num(22)?,
        vsize: num(23)?,
    })
}

/// Resident set size in pages: field 2 of `/proc/<pid>/statm`.
pub(crate) fn parse_statm_resident(text: &str) -> Option<u64> {
    text.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Boot time (Unix seconds): the `btime` line of `/proc/stat`.
pub(crate) fn parse_btime(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Soft limits of `/proc/<pid>/limits` by row name (e.g. `Max open files`); `None` for a
/// missing row, `Some(None)` for "unlimited".
pub(crate) fn parse_limit(text: &str, row: &str) -> Option<Option<u64>> {
    let line = text.lines().find(|l| l.starts_with(row))?;
    let soft = line.get(row.len()..)?.split_ascii_whitespace().next()?;
    if soft == "unlimited" {
        return Some(None);
    }
    Some(Some(soft.parse().ok()?))
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn sysconf_or(var: SysconfVar, default: u64) -> u64 {
    match sysconf(var) {
        Ok(Some(v)) if v > 0 => v.unsigned_abs(),
        _ => default,
    }
}

/// Everything the collector reports, read once per scrape.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Sample {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub virtual_max_bytes: Option<u64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub threads: Option<u64>,
}

#[allow(clippy::cast_precision_loss)]
pub(crate) fn sample() -> Sample {
    let tick = sysconf_or(SysconfVar::CLK_TCK, 100) as f64;
    let page = sysconf_or(SysconfVar::PAGE_SIZE, 4096);
    let stat = read("/proc/self/stat").as_deref().and_then(parse_stat);
    let limits = read("/proc/self/limits").unwrap_or_default();
    let btime = read("/proc/stat").as_deref().and_then(parse_btime);
    Sample {
        cpu_seconds: stat.map(|s| s.cpu_ticks as f64 / tick),
        resident_bytes: read("/proc/self/statm")
            .as_deref()
            .and_then(parse_statm_resident)
            .and_then(|p| p.checked_mul(page)),
        virtual_bytes: stat.map(|s| s.vsize),
        virtual_max_bytes: parse_limit(&limits, "Max address space").map(|l| l.unwrap_or(u64::MAX)),
        start_time_seconds: stat
            .zip(btime)
            .map(|(s, b)| b as f64 + s.start_ticks as f64 / tick),
        // Counts the descriptor used for the listing too, as the Go collector does.
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64),
        max_fds: parse_limit(&limits, "Max open files").map(|l| l.unwrap_or(u64::MAX)),
        threads: stat.map(|s| s.threads),
    }
}

/// `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
/// `process_virtual_memory_max_bytes`, `process_start_time_seconds`, `process_open_fds`,
/// `process_max_fds`, `process_threads`.
#[derive(Debug, Clone, Copy)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let s = sample();
        if let Some(v) = s.cpu_seconds {
            let help = "Total user and system CPU time spent in seconds";
            let m = enc.encode_descriptor(
                "process_cpu",
                help,
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?;
            ConstCounter::new(v).encode(m)?;
        }
        let gauges: [(&str, &str, Option<Unit>, Option<u64>); 6] = [
            (
                "process_resident_memory",
                "Resident memory size in bytes",
                Some(Unit::Bytes),
                s.resident_bytes,
            ),
            (
                "process_virtual_memory",
                "Virtual memory size in bytes",
                Some(Unit::Bytes),
                s.virtual_bytes,
            ),
            (
                "process_virtual_memory_max",
                "Maximum amount of virtual memory available in bytes",
                Some(Unit::Bytes),
                s.virtual_max_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                None,
                s.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                None,
                s.max_fds,
            ),
            (
                "process_threads",
                "Number of OS threads in the process",
                None,
                s.threads,
            ),
        ];
        for (name, help, unit, v) in &gauges {
            if let Some(v) = v {
                let m = enc.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
                ConstGauge::new(*v).encode(m)?;
            }
        }
        if let Some(v) = s.start_time_seconds {
            let help = "Start time of the process since unix epoch in seconds";
            let m = enc.encode_descriptor(
                "process_start_time",
                help,
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?;
            ConstGauge::new(v).encode(m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_command_name() {
        // comm "(a) b) 9" contains spaces and parentheses.
        let text = "4242 ((a) b) 9) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    250 50 0 0 20 0 7 0 123456 987654321 1500 18446744073709551615 \
                    1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                cpu_ticks: 300,
                threads: 7,
                start_ticks: 123_456,
                vsize: 987_654_321
            })
        );
        assert_eq!(parse_stat("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn statm_btime_limits() {
        assert_eq!(
            parse_statm_resident("5000 1200 300 10 0 900 0\n"),
            Some(1200)
        );
        assert_eq!(parse_statm_resident("5000"), None);
        let stat = "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(parse_btime(stat), Some(1_700_000_000));
        assert_eq!(parse_btime("cpu 1\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max address space         unlimited            unlimited            bytes     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_limit(limits, "Max open files"), Some(Some(1024)));
        assert_eq!(parse_limit(limits, "Max address space"), Some(None));
        assert_eq!(parse_limit(limits, "Max processes"), None);
    }

    #[test]
    fn this_process_is_sampled() {
        let s = sample();
        assert!(s.resident_bytes.is_some_and(|b| b > 1 << 20), "{s:?}");
        assert!(s.open_fds.is_some_and(|n| n >= 3), "{s:?}");
        assert!(s.threads.is_some_and(|n| n >= 1), "{s:?}");
        assert!(s.max_fds.is_some_and(|n| n >= 3), "{s:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        let start = s.start_time_seconds.unwrap_or_default();
        // Started within the last day, not in the future (clock-tick rounding aside).
        assert!(
            start > now - 86_400.0 && start < now + 2.0,
            "{start} vs {now}"
        );
        assert!(s.cpu_seconds.is_some_and(|c| c >= 0.0), "{s:?}");
    }
}
