//! Helpers shared by the bench binaries: flags, `/proc` memory (RSS, and the
//! private part from `smaps_rollup`), percentiles, and
//! the admin call that flips a status.

use std::{collections::HashMap, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// `--name value` pairs, and whatever follows `--`.
pub struct Flags {
    values: HashMap<String, String>,
    /// The words after `--`, if any.
    pub rest: Vec<String>,
}

impl Flags {
    /// Parses this process's arguments.
    pub fn from_env() -> Self {
        let mut values = HashMap::new();
        let mut args = std::env::args().skip(1);
        let mut rest = Vec::new();
        while let Some(arg) = args.next() {
            if arg == "--" {
                rest.extend(args.by_ref());
                break;
            }
            let name = arg
                .strip_prefix("--")
                .unwrap_or_else(|| fail(&format!("unexpected argument {arg:?}")));
            let value = args
                .next()
                .unwrap_or_else(|| fail(&format!("--{name} needs a value")));
            values.insert(name.to_owned(), value);
        }
        Self { values, rest }
    }

    /// The value of `--name`, or `default`.
    pub fn get(&self, name: &str, default: &str) -> String {
        self.values
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }

    /// The value of `--name` as a number, or `default`.
    pub fn num(&self, name: &str, default: u64) -> u64 {
        match self.values.get(name) {
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| fail(&format!("--{name}: not a number: {v}"))),
            None => default,
        }
    }
}

/// Prints `message` and exits with status 2.
pub fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2)
}

/// Resident memory of process `pid` (`self` for this one), in KiB, from `/proc`.
pub fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A field of `/proc/PID/smaps_rollup` (`Private_Dirty`, `Anonymous`, ...), in KiB: the
/// whole process's mappings summed by the kernel.
pub fn smaps_kib(pid: &str, field: &str) -> u64 {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    rollup
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The `p`th percentile (nearest rank) of sorted `samples`, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
}

/// `PUT /services?name=NAME` with `{"status": STATUS}`, on healthweb's admin API
/// at `addr` (host:port); fails unless the answer is 2xx.
pub async fn admin_set(addr: &str, name: &str, status: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    let body = format!(r#"{{"status": "{status}"}}"#);
    let request = format!(
        "PUT /services?name={name} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    if answer.starts_with("HTTP/1.1 2") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "admin API answered {:?}",
            answer.lines().next().unwrap_or("")
        )))
    }
}

/// `GET path` from `addr` (host:port) over HTTP/1.1; the body, if the answer is 200.
pub async fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_owned()),
        _ => Err(std::io::Error::other(format!(
            "GET {path} answered {:?}",
            answer.lines().next().unwrap_or("")
        ))),
    }
}

/// CPU time (user + system) process `pid` (`self` for this one) has used, in ms.
pub fn cpu_ms(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which may hold spaces, closed by ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat; 11 and 12 after the name.
    (ticks(11) + ticks(12)) * 1000.0 / 100.0
}
