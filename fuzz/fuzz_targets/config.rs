//! The config file parser: any text is a config or a clear error, never a panic;
//! and a config it accepts has no upstream the monitor would refuse.
#![no_main]

use std::path::Path;

use healthweb_server::config::ConfigFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match ConfigFile::parse(&text, Path::new("fuzz.toml")) {
        Ok(file) => {
            for upstream in &file.upstream {
                assert!(upstream.problem().is_none(), "{upstream:?}");
            }
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
