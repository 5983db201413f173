//! `n2n-decode`: prints one JSON object per UDP datagram of a pcap capture of
//! n2n v3 traffic (see `n2n-decode -h`).
#![forbid(unsafe_code)]

mod args;
mod decode;
mod frame;
mod json;

use std::io::{self, Write};
use std::process::ExitCode;

use n2n_proto::pcap::PcapReader;

use args::{Command, USAGE};
use decode::Decoder;

/// Exit status for a bad file or bad arguments.
const EXIT_BAD_INPUT: u8 = 2;
/// Exit status when writing stdout failed (other than a closed pipe).
const EXIT_OUTPUT: u8 = 1;

fn fail(msg: &str) -> ExitCode {
    eprintln!("n2n-decode: {msg}");
    ExitCode::from(EXIT_BAD_INPUT)
}

fn main() -> ExitCode {
    let opts = match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Decode(o)) => o,
        Err(e) => return fail(&format!("{e} (see n2n-decode -h)")),
    };
    let mut decoder = match Decoder::new(&opts) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let name = opts.file.display().to_string();
    let data = match std::fs::read(&opts.file) {
        Ok(d) => d,
        Err(e) => return fail(&format!("{name}: {e}")),
    };
    let mut reader = match PcapReader::new(&data) {
        Ok(r) => r,
        Err(e) => return fail(&format!("{name}: {e}")),
    };

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut n = 0usize;
    let mut file_error = None;
    for item in &mut reader {
        let d = match item {
            Ok(d) => d,
            Err(e) => {
                file_error = Some(e);
                break;
            }
        };
        let line = decoder.datagram(n, &d);
        n += 1;
        if let Err(e) = writeln!(out, "{line}") {
            return output_error(&e);
        }
    }
    if let Err(e) = out.flush() {
        return output_error(&e);
    }
    if let Some(e) = file_error {
        return fail(&format!("{name}: {e} (after {n} datagrams)"));
    }
    ExitCode::SUCCESS
}

fn output_error(e: &io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::BrokenPipe {
        return ExitCode::SUCCESS;
    }
    eprintln!("n2n-decode: writing output: {e}");
    ExitCode::from(EXIT_OUTPUT)
}
