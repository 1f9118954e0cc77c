//! The README's curl command lines, run as written against the real binary
//! (started as `make run` starts it), must print what the README says.

use std::process::Command;

use crate::util::Binary;

/// `(command, expected output)` pairs from the README's `curl:begin` block.
fn readme_examples() -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let block = readme
        .split("<!-- curl:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- curl:end -->").next())
        .expect("README has a curl:begin/curl:end block");
    let mut examples: Vec<(String, String)> = Vec::new();
    for line in block.lines().filter(|l| !l.starts_with("```")) {
        if let Some(command) = line.strip_prefix("$ ") {
            examples.push((command.to_owned(), String::new()));
        } else if let Some((_, output)) = examples.last_mut() {
            output.push_str(line);
            output.push('\n');
        }
    }
    examples
}

#[test]
fn readme_curl_lines_print_what_the_readme_says() {
    let server = Binary::serve(&[]);
    let examples = readme_examples();
    assert_eq!(examples.len(), 3, "binary Check, text Check, Watch");
    for (command, expected) in examples {
        let command = command.replace("127.0.0.1:8080", &server.addr.to_string());
        let output = Command::new("bash")
            .args(["-c", &format!("set -o pipefail; {command}")])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut got = String::from_utf8(output.stdout).unwrap();
        if !got.ends_with('\n') {
            got.push('\n');
        }
        assert_eq!(got, expected, "{command}");
    }
}
