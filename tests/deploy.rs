//! `deploy/`: the Kubernetes manifests and the docker-compose file parse as YAML
//! (PyYAML, as kubectl and compose would) and say what they must
//! (`tests/interop/deploy_check.py`); every flag and environment variable they
//! give healthweb is one the real binary knows; and the ConfigMap's config file
//! is `deploy/healthweb.toml`, which healthweb's own parser takes.

use std::{path::Path, process::Command};

use healthweb_server::config::ConfigFile;

use crate::{interop::python, util::run_cli};

#[test]
fn the_manifests_parse_and_use_only_what_healthweb_knows() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let out = Command::new(python())
        .arg(format!("{root}/tests/interop/deploy_check.py"))
        .arg(format!("{root}/deploy"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let used: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let (code, help, err) = run_cli(&["serve", "--help"]);
    assert_eq!(code, 0, "{err}");
    for flag in used["args"].as_array().unwrap() {
        let flag = flag.as_str().unwrap();
        assert!(
            help.contains(&format!("{flag} ")),
            "healthweb serve has no {flag}"
        );
    }
    for name in used["env"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        assert!(help.contains(name), "healthweb serve knows no {name}");
    }

    let file = Path::new(root).join("deploy/healthweb.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        used["configmap"],
        text.as_str(),
        "the ConfigMap is deploy/healthweb.toml"
    );
    let config = ConfigFile::parse(&text, &file).unwrap();
    assert!(!config.upstream.is_empty());
}
