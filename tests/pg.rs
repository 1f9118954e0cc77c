//! A throwaway PostgreSQL for the tests: Debian's own binaries (found under
//! `/usr/lib/postgresql/*/bin`, which is not on PATH), a cluster made by
//! `initdb` in a temporary directory and started by `pg_ctl` on a free loopback
//! port, with password (SCRAM) authentication over TCP. It is stopped and
//! deleted when dropped, a panic included. As root (initdb refuses root) the
//! binaries run as the `postgres` user, which then owns the directory.
//!
//! A machine without PostgreSQL fails the test with what to do (`make
//! test-deps` installs it); nothing is skipped.

use std::{
    net::TcpListener,
    os::unix::{fs::chown, process::CommandExt},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

/// The superuser the cluster is made with, and the database the tests use.
pub const USER: &str = "healthweb";
pub const DATABASE: &str = "healthweb";

/// A running PostgreSQL, stopped and deleted when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    pub password: String,
    /// (uid, gid) to run the binaries as, when this process is root.
    owner: Option<(u32, u32)>,
    /// Extra `-c name=value` settings for the server.
    options: Vec<String>,
    running: bool,
}

/// The newest `/usr/lib/postgresql/N/bin`, or the directory of an `initdb` on PATH.
fn binaries() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("initdb").exists())
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL is not installed: no /usr/lib/postgresql/*/bin/initdb and no initdb \
                 on PATH. `make test-deps` installs Debian's postgresql."
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Postgres {
    /// Makes and starts a cluster.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Makes and starts a cluster with extra server settings (`name=value`).
    pub fn start_with(options: &[&str]) -> Self {
        let bin = binaries();
        let dir = tempfile::Builder::new()
            .prefix("healthweb-pg-")
            .tempdir()
            .unwrap();
        let owner = nix::unistd::Uid::effective().is_root().then(|| {
            let user = nix::unistd::User::from_name("postgres")
                .unwrap()
                .expect("running as root, the tests run PostgreSQL as the `postgres` user, which Debian's package creates");
            chown(dir.path(), Some(user.uid.as_raw()), Some(user.gid.as_raw())).unwrap();
            (user.uid.as_raw(), user.gid.as_raw())
        });
        let mut pg = Self {
            dir,
            bin,
            port: free_port(),
            password: format!("pw-{}", std::process::id()),
            owner,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            running: false,
        };
        let pwfile = pg.file("password", &pg.password.clone());
        pg.run(
            "initdb",
            &[
                "-D",
                pg.data().to_str().unwrap(),
                "-U",
                USER,
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        pg.restart();
        let socket = pg.dir.path().to_str().unwrap().to_owned();
        pg.run(
            "createdb",
            &[
                "-h",
                &socket,
                "-p",
                &pg.port.to_string(),
                "-U",
                USER,
                DATABASE,
            ],
        );
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A file in the cluster's directory, readable by the server.
    pub fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        if let Some((uid, gid)) = self.owner {
            chown(&path, Some(uid), Some(gid)).unwrap();
        }
        path
    }

    /// The directory files can be put in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        command
            .current_dir(self.dir.path())
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let output = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}\nthe server's log:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
        output
    }

    /// Adds server settings (`name=value`) for the next start.
    pub fn add_options(&mut self, options: &[&str]) {
        self.options.extend(options.iter().map(|o| (*o).to_owned()));
    }

    /// Starts the server (again), on the same port and data.
    pub fn restart(&mut self) {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        for option in &self.options {
            options.push_str(&format!(" -c {option}"));
        }
        let data = self.data();
        let log = self.dir.path().join("log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        self.running = true;
    }

    /// Stops the server (connections are cut; the data stays).
    pub fn stop(&mut self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
        );
        self.running = false;
    }

    /// The URL with the password in it.
    pub fn url(&self) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{DATABASE}",
            self.password, self.port
        )
    }

    /// The URL without a password.
    pub fn bare_url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// A client of the test's own, to look at the tables.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .command("pg_ctl")
                .args([
                    "-D",
                    self.data().to_str().unwrap(),
                    "-m",
                    "immediate",
                    "stop",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
