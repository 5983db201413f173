//! The built `n2n-keygen` binary: output byte-identical to C n2n 3.1.1's
//! (spec example, test vectors, the userpw-auth manifest's keygen lines),
//! C's usage text and exit status 1 for any other argument count, and the
//! password in no output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn keygen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_n2n-keygen"))
        .args(args)
        .output()
        .expect("run n2n-keygen")
}

fn ok(args: &[&str]) -> String {
    let o = keygen(args);
    assert_eq!(o.status.code(), Some(0), "{args:?}");
    assert!(o.stderr.is_empty(), "{args:?}: stderr {:?}", o.stderr);
    String::from_utf8(o.stdout).unwrap()
}

/// tools/n2n-keygen.c's usage text, byte for byte.
const C_USAGE: &str = concat!(
    "\n",
    "n2n-keygen tool\n\n",
    "  usage:  n2n-keygen <username> <password>\n\n",
    "     or   n2n-keygen -F <federation name>\n\n",
    "          outputs a line to insert at supernode's community file for user-and-\n",
    "          password authentication or a command line parameter with the public\n",
    "          federation key for use at edge's command line, please refer to the\n",
    "          doc/Authentication.md document or the man pages for more details\n\n",
);

#[test]
fn user_line_spec_example() {
    assert_eq!(
        ok(&["logan", "007"]),
        "* logan nHWum+r42k1qDXdIeH-WFKeylK5UyLStRzxofRNAgpG\n"
    );
}

#[test]
fn federation_lines() {
    assert_eq!(
        ok(&["-F", "Federation"]),
        "-P i0IuBFO0RC22m2Ya32uUUFUA2yfQSwsxVZ3-S5F2k7O\n"
    );
    assert_eq!(
        ok(&["-F", "secretFed"]),
        "-P opIyaWhWjKLJSNOHNpKnGmelhHWRqkmY5pAx7lbDHp4\n"
    );
    assert_eq!(
        ok(&["-F", "rocksFed"]),
        "-P RNMH9vMfDlJLM32Br71L3jnp9HozxAXWUVONs+PyXMm\n"
    );
}

#[test]
fn manifest_keygen_commands() {
    let m = n2n_testdata::read_json(
        &n2n_testdata::captures_dir()
            .join("userpw-auth")
            .join("manifest.json"),
    );
    let a = &m["auth"];
    let mut n = 0;
    for (user, u) in a["users"].as_object().unwrap() {
        let pw = u["password"].as_str().unwrap();
        let want = format!("{}\n", u["keygen_line"].as_str().unwrap());
        assert_eq!(ok(&[user, pw]), want);
        n += 1;
    }
    assert_eq!(n, 2);
    let fed = a["federation_name"].as_str().unwrap();
    assert_eq!(
        ok(&["-F", fed]),
        format!(
            "-P {}\n",
            a["federation_public_key_edge_-P"].as_str().unwrap()
        )
    );
}

#[test]
fn wrong_argument_counts_print_usage_and_exit_1() {
    for args in [
        &[][..],
        &["logan"][..],
        &["-F"][..],
        &["-h"][..],
        &["--help"][..],
        &["logan", "007", "extra"][..],
        &["-F", "a", "b"][..],
    ] {
        let o = keygen(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: stdout");
        assert_eq!(String::from_utf8(o.stderr).unwrap(), C_USAGE, "{args:?}");
    }
}

#[test]
fn password_appears_nowhere() {
    let pw = "s3cr3t-Pass-W0rd";
    let o = keygen(&["alice", pw]);
    assert_eq!(o.status.code(), Some(0));
    let all = [o.stdout.as_slice(), o.stderr.as_slice()].concat();
    let text = String::from_utf8_lossy(&all);
    assert!(!text.contains(pw), "{text}");
    assert!(text.starts_with("* alice ") && text.len() == "* alice ".len() + 44);
}

#[test]
fn c_argument_semantics() {
    // Any first argument other than "-F" is a user name, even option-like.
    let o = ok(&["-P", "x"]);
    assert!(o.starts_with("* -P "), "{o}");
    // The federation name is hashed in full (no 17-character cut here).
    assert_ne!(
        ok(&["-F", "abcdefghijklmnopqrstuvwxyz"]),
        ok(&["-F", "abcdefghijklmnopq"])
    );
    // Empty strings are arguments too.
    let o = ok(&["", ""]);
    assert!(o.starts_with("*  ") && o.len() == 3 + 44, "{o:?}");
}

#[cfg(unix)]
#[test]
fn non_utf8_arguments_are_bytes() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let o = Command::new(env!("CARGO_BIN_EXE_n2n-keygen"))
        .arg(OsStr::from_bytes(b"us\xffer"))
        .arg(OsStr::from_bytes(b"p\xfe"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.starts_with(b"* us\xffer "));
    assert_eq!(o.stdout.len(), 2 + 5 + 1 + 43 + 1);
}
