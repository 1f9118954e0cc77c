//! Where history goes without `--history`: `history.db` in the state directory
//! (`$XDG_STATE_HOME/healthweb`, or `~/.local/state/healthweb`), never the
//! working directory; and when that file cannot be used (a home nobody can
//! write, a second healthweb holding it), memory, said on stderr, on the page
//! (`/instance`) and in `/metrics`: the server starts whatever happens to its
//! history. A `--history PATH` given explicitly that cannot be used still
//! refuses to start.

use std::{
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::Path,
    process::{Command, Stdio},
};

use crate::util::{Binary, get_ok, instance};

async fn history_of(server: &Binary) -> serde_json::Value {
    instance(&server.url()).await["history"].clone()
}

/// Whether `server` said on stderr that history is in memory only.
fn said_memory(server: &Binary) -> bool {
    let said = |l: &String| l.contains("history is kept in memory only");
    server.before.iter().any(said)
}

async fn fallback_metric(server: &Binary) -> String {
    let metrics = get_ok(&format!("{}/metrics", server.url())).await;
    metrics
        .lines()
        .find(|l| l.starts_with("healthweb_history_memory_fallback "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .to_owned()
}

/// Runs as a user who cannot write `dir` (as root: `nobody`; otherwise the
/// directory is made read-only), in `dir`, with `dir` as its home.
fn read_only(command: &mut Command, dir: &Path) {
    if nix::unistd::Uid::effective().is_root() {
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        command.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
    } else {
        std::fs::set_permissions(dir, PermissionsExt::from_mode(0o555)).unwrap();
    }
    command
        .current_dir(dir)
        .env("HOME", dir)
        .env_remove("XDG_STATE_HOME")
        .env_remove("STATE_DIRECTORY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_working_directory_and_two_instances_in_one_directory_both_start() {
    let dir = tempfile::tempdir().unwrap();
    let (work, state) = (dir.path().join("work"), dir.path().join("state"));
    std::fs::create_dir(&work).unwrap();

    // Two in one working directory: the first keeps the state directory's file,
    // the second (the file held) keeps history in memory, and says so.
    let beside = |command: &mut Command| {
        command
            .current_dir(&work)
            .env("XDG_STATE_HOME", &state)
            .env_remove("STATE_DIRECTORY");
    };
    let first = Binary::serve_with(&[], beside);
    let second = Binary::serve_with(&[], beside);
    let file = state.join("healthweb/history.db");
    assert!(file.exists(), "the default file is in the state directory");
    assert_eq!(
        std::fs::read_dir(&work).unwrap().count(),
        0,
        "nothing in the working directory"
    );
    let kept = history_of(&first).await;
    assert_eq!(kept["kind"], "sqlite", "{kept}");
    assert_eq!(kept["location"], file.to_str().unwrap(), "{kept}");
    assert!(kept["fallback"].is_null(), "{kept}");
    assert_eq!(
        fallback_metric(&first).await,
        "healthweb_history_memory_fallback 0"
    );
    let memory = history_of(&second).await;
    assert_eq!(memory["kind"], "memory", "{memory}");
    let why = memory["fallback"].as_str().unwrap();
    assert!(why.contains("in use by another process"), "{why}");
    assert!(said_memory(&second), "said on stderr: {:#?}", second.before);
    assert_eq!(
        fallback_metric(&second).await,
        "healthweb_history_memory_fallback 1"
    );

    // A working directory and a home nobody can write: memory, and it starts.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
    let third = Binary::serve_with(&[], |command| read_only(command, &locked));
    let memory = history_of(&third).await;
    assert_eq!(memory["kind"], "memory", "{memory}");
    assert!(
        memory["fallback"].as_str().unwrap().contains("cannot use"),
        "{memory}"
    );
    assert!(said_memory(&third), "said on stderr: {:#?}", third.before);

    // Named explicitly, the same place is refused, as before.
    let mut refused = Command::new(env!("CARGO_BIN_EXE_healthweb"));
    refused
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--history",
            "history.db",
        ])
        .stdin(Stdio::null());
    read_only(&mut refused, &locked);
    let out = refused.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot use the history"), "{stderr}");
    assert!(!stderr.contains("listening on"), "{stderr}");
}
