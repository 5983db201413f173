//! Results table shared by all test binaries: one JSON line per scenario in
//! `<target>/n2n-e2e/results.jsonl`, printed as a loud summary by `e2e-summary` (run by
//! `.ci/run`) or [`print_summary`].

use std::fmt::Display;
use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

/// Outcome of a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Ran and met its expectations.
    Pass,
    /// Ran and failed (or was skipped while `N2N_E2E_REQUIRED=1`).
    Fail,
    /// Not run (not root / tools missing).
    Skip,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "skip",
        }
    }
    fn parse(s: &str) -> Option<Outcome> {
        match s {
            "pass" => Some(Outcome::Pass),
            "FAIL" => Some(Outcome::Fail),
            "skip" => Some(Outcome::Skip),
            _ => None,
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    /// Scenario name.
    pub scenario: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// `(key, value)` metrics in recording order, e.g. `("rtt_ms", "0.21")`.
    pub metrics: Vec<(String, String)>,
}

/// `$N2N_E2E_RESULTS`, else `<target>/n2n-e2e/results.jsonl`.
pub fn results_path() -> PathBuf {
    if let Some(p) = std::env::var_os("N2N_E2E_RESULTS").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    crate::target_dir().join("n2n-e2e").join("results.jsonl")
}

/// Appends a row (one `write` of one line, so concurrent writers do not interleave).
pub fn record(scenario: &str, outcome: Outcome, metrics: &[(&str, String)]) {
    let path = results_path();
    if let Some(d) = path.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let line = json!({
        "scenario": scenario,
        "outcome": outcome.as_str(),
        "metrics": metrics.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
    })
    .to_string()
        + "\n";
    let res = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = res {
        eprintln!("n2n-tests: cannot record result in {}: {e}", path.display());
    }
}

/// All rows recorded so far (unparsable lines are skipped).
pub fn read_results() -> Vec<ResultRow> {
    let text = std::fs::read_to_string(results_path()).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let metrics = v
                .get("metrics")?
                .as_array()?
                .iter()
                .filter_map(|m| {
                    Some((
                        m.get(0)?.as_str()?.to_string(),
                        m.get(1)?.as_str()?.to_string(),
                    ))
                })
                .collect();
            Some(ResultRow {
                scenario: v.get("scenario")?.as_str()?.to_string(),
                outcome: Outcome::parse(v.get("outcome")?.as_str()?)?,
                metrics,
            })
        })
        .collect()
}

/// Empties the table (`.ci/run` does this before the tests).
pub fn reset_results() {
    let _ = std::fs::remove_file(results_path());
}

/// Prints the table loudly to stdout; returns (passed, failed, skipped).
pub fn print_summary() -> (usize, usize, usize) {
    let rows = read_results();
    let count = |o| rows.iter().filter(|r| r.outcome == o).count();
    let (p, f, s) = (
        count(Outcome::Pass),
        count(Outcome::Fail),
        count(Outcome::Skip),
    );
    let w = rows
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let bar = "=".repeat(78);
    println!(
        "\n{bar}\nEND-TO-END SCENARIOS ({})\n{bar}",
        results_path().display()
    );
    println!("{:<w$}  {:<6}  metrics", "scenario", "result");
    println!("{:-<w$}  {:-<6}  {:-<30}", "", "", "");
    for r in &rows {
        let m: Vec<String> = r.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{:<w$}  {:<6}  {}",
            r.scenario,
            r.outcome.as_str(),
            m.join(", ")
        );
    }
    if rows.is_empty() {
        println!("(no scenario recorded)");
    }
    println!("{bar}\nE2E scenarios -> {p} passed, {f} failed, {s} skipped\n{bar}");
    (p, f, s)
}

/// Records one scenario when dropped: `pass`, or `FAIL` when dropped during a panic (a failed
/// assertion) or after [`Scenario::fail`].
#[derive(Debug)]
pub struct Scenario {
    name: String,
    metrics: Vec<(String, String)>,
    failed: Option<String>,
}

impl Scenario {
    /// Starts recording scenario `name`.
    pub fn new(name: &str) -> Scenario {
        Scenario {
            name: name.to_string(),
            metrics: Vec::new(),
            failed: None,
        }
    }

    /// Adds a metric column (`rtt_ms=0.2`, `mbps=812`, ...). A repeated key replaces the
    /// earlier value.
    pub fn metric(&mut self, key: &str, value: impl Display) -> &mut Scenario {
        let v = value.to_string();
        match self.metrics.iter_mut().find(|(k, _)| k == key) {
            Some(m) => m.1 = v,
            None => self.metrics.push((key.to_string(), v)),
        }
        self
    }

    /// Marks the scenario failed without panicking (e.g. a soft expectation).
    pub fn fail(&mut self, reason: impl Display) {
        self.failed = Some(reason.to_string());
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        let mut metrics: Vec<(&str, String)> = self
            .metrics
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let outcome = if std::thread::panicking() {
            metrics.push(("error", "panicked".to_string()));
            Outcome::Fail
        } else if let Some(r) = &self.failed {
            metrics.push(("error", r.clone()));
            Outcome::Fail
        } else {
            Outcome::Pass
        };
        record(&self.name, outcome, &metrics);
    }
}
