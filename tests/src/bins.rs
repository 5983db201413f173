//! Locating (and building on demand) the workspace's binaries for end-to-end tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::{Error, Result};

/// Bound for an on-demand `cargo build` of a binary.
const BUILD_TIMEOUT: Duration = Duration::from_secs(25 * 60);

/// The workspace root (parent of this crate's manifest directory).
pub fn workspace_dir() -> PathBuf {
    let me = Path::new(env!("CARGO_MANIFEST_DIR"));
    me.parent().unwrap_or(me).to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, else the nearest ancestor of the running
/// executable that holds cargo's `CACHEDIR.TAG`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        let d = PathBuf::from(d);
        return if d.is_absolute() {
            d
        } else {
            workspace_dir().join(d)
        };
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(d) = exe
            .ancestors()
            .skip(1)
            .find(|d| d.join("CACHEDIR.TAG").is_file())
    {
        return d.to_path_buf();
    }
    workspace_dir().join("target")
}

/// `<target>/<profile>` of the running test executable (its `deps/` parent), if recognisable.
fn own_profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let dir = if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent()?
    } else {
        dir
    };
    Some(dir.to_path_buf())
}

fn cargo_build(name: &str, profile_dir: &Path) -> std::result::Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(p) => p.to_string(),
    };
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_dir())
        .args(["build", "--workspace", "--bin", name, "--profile", &profile])
        .env("CARGO_TARGET_DIR", target_dir())
        .env_remove("CARGO_MAKEFLAGS");
    match crate::cmd::run(&mut cmd, BUILD_TIMEOUT) {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("`cargo build --bin {name}` failed:\n{}", o.stderr)),
        Err(e) => Err(e.to_string()),
    }
}

/// Path of workspace binary `name` (`"edge"`, `"supernode"`), built with the same profile as
/// the running test.
///
/// Order: `$N2N_BIN_<NAME>` (e.g. `N2N_BIN_EDGE=/path/to/edge`); otherwise runs
/// `cargo build --workspace --bin <name>` once per process (cheap when up to date, so the binary
/// is never stale; disable with `N2N_E2E_NO_BUILD=1`) and returns
/// `<target>/<profile>/<name>`; falls back to `<target>/{debug,release}/<name>`.
pub fn find_binary(name: &str) -> Result<PathBuf> {
    let var = format!("N2N_BIN_{}", name.to_ascii_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::Other(format!("{var}={} is not a file", p.display())))
        };
    }
    static BUILT: OnceLock<Mutex<HashMap<String, std::result::Result<(), String>>>> =
        OnceLock::new();
    let profile_dir = own_profile_dir().unwrap_or_else(|| target_dir().join("debug"));
    let mut build_err = None;
    if std::env::var("N2N_E2E_NO_BUILD").map_or(true, |v| v != "1") {
        let mut built = BUILT
            .get_or_init(|| Mutex::new(HashMap::new()))
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let r = built
            .entry(name.to_string())
            .or_insert_with(|| cargo_build(name, &profile_dir));
        build_err = r.clone().err();
    }
    let t = target_dir();
    let candidates = [
        profile_dir.join(name),
        t.join("debug").join(name),
        t.join("release").join(name),
    ];
    if build_err.is_none()
        && let Some(p) = candidates.iter().find(|p| p.is_file())
    {
        return Ok(p.clone());
    }
    Err(Error::Other(format!(
        "binary `{name}` not found (looked in {candidates:?}){}",
        build_err.map(|e| format!("; {e}")).unwrap_or_default()
    )))
}
