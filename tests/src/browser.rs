//! A real headless browser for the end-to-end suite: Debian's `chromium` loads a page (the
//! supernode's status page) and hands back the rendered DOM and a screenshot.
//!
//! ```no_run
//! # fn main() -> n2n_tests::Result<()> {
//! use n2n_tests::browser;
//! if !browser::require_browser("status_page") { return Ok(()); }
//! let dir = std::env::temp_dir().join("shots");
//! let page = browser::capture("http://127.0.0.1:9645/", &dir, (1280, 900))?;
//! assert!(page.dom.contains("02:AB:CD:00:00:01"));
//! let png = browser::png_stats(&page.screenshot)?;
//! assert!(png.is_nontrivial());
//! # Ok(()) }
//! ```
//!
//! Each run gets a fresh profile (`--user-data-dir`, `HOME`, `XDG_*` in a temporary
//! directory, removed afterwards), background networking off and every host name except
//! `localhost`/127.0.0.1 resolving to nothing, so the browser talks to the page's server only. Chromium
//! runs in its own process group (its zygote and renderers are its children); the group is
//! killed when the run times out or leaves helpers behind.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::cmd::{describe, reader, wait_child};
use crate::{Error, Result, io_err};

/// The browser program (Debian package `chromium`, installed by [`crate::install`]).
pub const CHROMIUM: &str = "chromium";

/// Bound for one browser run.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

/// Flags of every run: headless, no sandbox (we run as root), no GPU, no QUIC, no first-run
/// UI, no background networking, no component updates, no sync, no crash reporter, and a
/// resolver that knows `localhost` only.
pub const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-breakpad",
    "--disable-crash-reporter",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication",
    "--metrics-recording-only",
    "--no-pings",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    "--hide-scrollbars",
    "--mute-audio",
];

/// The gate for browser tests: root, `chromium` (installed when missing, as root with apt),
/// else a loud SKIP (a failure under `N2N_E2E_REQUIRED=1`), like every end-to-end test.
pub fn require_browser(test_name: &str) -> bool {
    crate::require_tools(test_name, &[CHROMIUM])
}

/// What [`capture`] got.
#[derive(Debug)]
pub struct PageCapture {
    /// The DOM after rendering (`--dump-dom`).
    pub dom: String,
    /// The screenshot (PNG) in the output directory.
    pub screenshot: PathBuf,
}

/// A throw-away directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Result<Self> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("n2nt-{}-{what}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(io_err(format!("creating {}", dir.display())))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs chromium once with [`FLAGS`] + `args` + `url` in a fresh profile; returns stdout.
fn run_chromium(url: &str, args: &[String]) -> Result<String> {
    let profile = TempDir::new("chromium")?;
    let mut cmd = crate::install::program("chromium")?;
    cmd.args(FLAGS)
        .arg(format!(
            "--user-data-dir={}",
            profile.0.join("profile").display()
        ))
        .args(args)
        .arg(url)
        .env("HOME", &profile.0)
        .env("XDG_CONFIG_HOME", profile.0.join("config"))
        .env("XDG_CACHE_HOME", profile.0.join("cache"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY");
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let desc = describe(&cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(format!("spawning `{desc}`")))?;
    // The group is the one this child leads: its id is the child's PID.
    let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let status = wait_child(&mut child, BROWSER_TIMEOUT);
    // Helpers left behind (or everything, on timeout), then reap the leader.
    let _ = killpg(group, Signal::SIGKILL);
    let status = match status {
        Ok(Some(s)) => s,
        Ok(None) | Err(_) => {
            let _ = child.wait();
            return Err(Error::Timeout {
                what: desc,
                after: BROWSER_TIMEOUT,
            });
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        return Err(Error::Command {
            cmd: desc,
            status: status.to_string(),
            stderr,
        });
    }
    Ok(stdout)
}

/// Loads `url` twice in headless chromium: once for the rendered DOM (`--dump-dom`), once for
/// a screenshot of `window` = (width, height) pixels saved as `out_dir/screenshot.png`.
pub fn capture(url: &str, out_dir: &Path, window: (u32, u32)) -> Result<PageCapture> {
    std::fs::create_dir_all(out_dir).map_err(io_err(format!("creating {}", out_dir.display())))?;
    let size = format!("--window-size={},{}", window.0, window.1);
    let dom = run_chromium(url, &[size.clone(), "--dump-dom".into()])?;
    if !dom.contains("<html") {
        return Err(Error::Other(format!(
            "chromium --dump-dom {url} gave no document: {dom:?}"
        )));
    }
    let screenshot = out_dir.join("screenshot.png");
    let _ = std::fs::remove_file(&screenshot);
    run_chromium(
        url,
        &[size, format!("--screenshot={}", screenshot.display())],
    )?;
    if !screenshot.is_file() {
        return Err(Error::Other(format!(
            "chromium wrote no {}",
            screenshot.display()
        )));
    }
    Ok(PageCapture { dom, screenshot })
}

/// What a screenshot shows, roughly.
#[derive(Debug, Clone, PartialEq)]
pub struct PngStats {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Distinct colours (counted up to 4096).
    pub colors: usize,
    /// Share of pixels that differ from the most common colour (the background).
    pub foreground: f64,
    /// File size in bytes.
    pub bytes: u64,
}

impl PngStats {
    /// Something was drawn: anti-aliased text in several colours over a real part of the
    /// image, not a blank or single-colour page.
    #[must_use]
    pub fn is_nontrivial(&self) -> bool {
        self.colors >= 16 && self.foreground >= 0.01
    }
}

/// Decodes a PNG and measures it.
pub fn png_stats(path: &Path) -> Result<PngStats> {
    let parse = |detail: String| Error::Parse {
        what: path.display().to_string(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
    let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| parse(e.to_string()))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| parse("image too large".into()))?;
    let mut buf = vec![0u8; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| parse(e.to_string()))?;
    let px = info.color_type.samples();
    let mut counts: HashMap<&[u8], u64> = HashMap::new();
    let mut distinct = HashSet::new();
    for p in buf
        .get(..info.buffer_size())
        .unwrap_or_default()
        .chunks_exact(px)
    {
        *counts.entry(p).or_default() += 1;
        if distinct.len() < 4096 {
            distinct.insert(p);
        }
    }
    let total: u64 = counts.values().sum();
    let background = counts.values().copied().max().unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let foreground = if total == 0 {
        0.0
    } else {
        (total - background) as f64 / total as f64
    };
    Ok(PngStats {
        width: info.width,
        height: info.height,
        colors: distinct.len(),
        foreground,
        bytes,
    })
}
