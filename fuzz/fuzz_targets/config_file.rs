//! Configuration text on arbitrary bytes: the `edge`/`supernode` config-file
//! tokenizer, the option parsers and validation behind it, and the
//! supernode's `community.list` parser (fixed names, regexes, `* user key`
//! lines). Invariants: no panic; every error renders as a non-empty message
//! (it names the problem).
#![no_main]

use libfuzzer_sys::fuzz_target;
use n2n_cli::Flavor;
use n2n_cli::conffile::file_to_args;
use n2n_core::supernode::community_list::CommunityList;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    match file_to_args(&text, Flavor::Edge) {
        Ok(args) => {
            if let Err(e) = n2n_edge::cli::parse_args(&args, &|_| None, &|| Some("fuzz".to_owned()))
            {
                assert!(!e.to_string().is_empty());
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    match file_to_args(&text, Flavor::Supernode) {
        // A first token without `-` would name another config file to read:
        // the fuzzer stays off the file system.
        Ok(args) if args.first().is_some_and(|a| a.starts_with('-')) => {
            let mut argv = vec!["supernode".to_owned()];
            argv.extend(args);
            if let Err(e) = n2n_supernode::options::parse_with(&argv, &|_| None) {
                assert!(!e.to_string().is_empty());
            }
        }
        Ok(_) => {}
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    if let Err(e) = CommunityList::parse(&text) {
        assert!(!e.to_string().is_empty());
    }
});
