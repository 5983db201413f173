//! `n2n-site`: the virtual cluster's network planned, deployed and checked
//! from one site file.
//!
//! * `n2n-site plan SITE --out DIR`: one folder per host (supernode.conf,
//!   community.list; edge-COMMUNITY.conf, systemd-networkd bridge files;
//!   install.sh, README), secrets and MACs kept in `DIR/state.toml`.
//! * `n2n-site check SITE [--json] [--supernode ADDR:PORT]... [--edge ADDR:PORT]...
//!   [--timeout SECONDS]`: who is registered, who is direct.
//!
//! Exit status: 0 success (every planned container registered), 1 a
//! container missing or a supernode not answering, 2 bad arguments or site
//! file.
#![forbid(unsafe_code)]

mod check;
mod plan;
mod site;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: n2n-site plan SITE.toml --out DIR
       n2n-site check SITE.toml [--json] [--supernode ADDR:PORT]... [--edge ADDR:PORT]...
                                [--cluster NAME]... [--timeout SECONDS]

plan   writes one folder per host into DIR (secrets mode 0600; a re-plan keeps
       the keys, passwords and MACs of DIR/state.toml)
check  asks the supernode management port (default 127.0.0.1:<supernode_mgmt_port>)
       and the local edge (127.0.0.1:<edge_mgmt_port>, if it answers) and prints
       one table per cluster and the P2P matrix; exit 1 when a planned container
       is missing (with --cluster: one of those clusters' containers)
";

fn usage(msg: &str) -> ExitCode {
    eprintln!("n2n-site: {msg}\n{USAGE}");
    ExitCode::from(2)
}

fn bad_site(msg: &str) -> ExitCode {
    eprintln!("n2n-site: {msg}");
    ExitCode::from(2)
}

fn load(path: &str) -> Result<site::Site, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    site::Site::parse(path, &text).map_err(|e| e.0)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        return usage("no command");
    };
    if cmd == "--help" || cmd == "-h" {
        print!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let Some(path) = args.get(1) else {
        return usage("no site file");
    };
    let rest = args.get(2..).unwrap_or_default();
    match cmd.as_str() {
        "plan" => {
            let out = match rest {
                [o, d] if o == "--out" => PathBuf::from(d),
                _ => return usage("plan needs --out DIR"),
            };
            let site = match load(path) {
                Ok(s) => s,
                Err(e) => return bad_site(&e),
            };
            let st = match plan::load_state(&out, &site) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("n2n-site: {e}");
                    return ExitCode::from(2);
                }
            };
            match plan::write(&out, &site, &st) {
                Ok(files) => {
                    for f in files {
                        println!("{:o} {}", f.mode, out.join(&f.path).display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("n2n-site: writing the plan: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        "check" => {
            let site = match load(path) {
                Ok(s) => s,
                Err(e) => return bad_site(&e),
            };
            let (mut json, mut sns, mut edges, mut timeout) =
                (false, Vec::new(), Vec::new(), Duration::from_secs(2));
            let mut clusters: Vec<String> = Vec::new();
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                let mut addr = |what: &str| -> Result<SocketAddr, String> {
                    let v = it.next().ok_or(format!("{what} needs ADDR:PORT"))?;
                    v.parse()
                        .map_err(|_| format!("{what}: '{v}' is not ADDR:PORT"))
                };
                let r = match a.as_str() {
                    "--json" => {
                        json = true;
                        Ok(())
                    }
                    "--supernode" => addr("--supernode").map(|x| sns.push(x)),
                    "--edge" => addr("--edge").map(|x| edges.push(x)),
                    "--cluster" => match it.next() {
                        Some(c) if site.clusters.iter().any(|k| &k.name == c) => {
                            clusters.push(c.clone());
                            Ok(())
                        }
                        Some(c) => Err(format!("--cluster: no cluster '{c}' in the site file")),
                        None => Err("--cluster needs a NAME".to_owned()),
                    },
                    "--timeout" => match it.next().and_then(|v| v.parse::<f64>().ok()) {
                        Some(t) if t > 0.0 && t <= 60.0 => {
                            timeout = Duration::from_secs_f64(t);
                            Ok(())
                        }
                        _ => Err("--timeout needs 0 < SECONDS <= 60".to_owned()),
                    },
                    other => Err(format!("unknown option '{other}'")),
                };
                if let Err(e) = r {
                    return usage(&e);
                }
            }
            let local_edge = edges.is_empty();
            if sns.is_empty() {
                sns.push(SocketAddr::from(([127, 0, 0, 1], site.supernode_mgmt_port)));
            }
            if local_edge {
                edges.push(SocketAddr::from(([127, 0, 0, 1], site.edge_mgmt_port)));
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
            let mut report = check::run(&site, &sns, &edges, timeout, now);
            if !clusters.is_empty() {
                report.containers.retain(|c| clusters.contains(&c.cluster));
            }
            if local_edge {
                // The default local edge is optional (a pure supernode host has none).
                report.errors.retain(|e| !e.starts_with("edge "));
            }
            if json {
                println!("{}", report.to_json());
            } else {
                print!("{}", report.text(&site, &clusters));
            }
            let sn_down = report.errors.iter().any(|e| e.starts_with("supernode "));
            if report.missing() > 0 || sn_down {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        other => usage(&format!("unknown command '{other}'")),
    }
}
