//! Links the release `healthweb` for a small resident footprint, where the linker
//! is the one Rust ships (rust-lld, the default for x86_64 Linux since Rust 1.90):
//!
//! - `link-order.ld`, a linker script, puts the functions a start and a Check run
//!   next to each other. The kernel maps text a page-cache folio (64 KiB or more)
//!   around each fault, so scattered, they map nearly all 4.7 MiB of it. `make
//!   link-order` regenerates it; a function it no longer matches stays where the
//!   linker puts it, which costs memory, never correctness.
//! - `-z pack-relative-relocs` (RELR) stores the 16,000 relative relocations of a
//!   position-independent binary in a few KiB instead of 370 KiB, all of which the
//!   loader reads at every start. It needs glibc 2.36 to run.
//!
//! Anything else (another linker, target or glibc, a debug build) links as usual.

use std::{env, path::Path, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=link-order.ld");
    for var in ["RUSTC_LINKER", "CARGO_ENCODED_RUSTFLAGS"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    if env::var("PROFILE").as_deref() != Ok("release") || !rust_lld() {
        return;
    }
    let order =
        Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link-order.ld");
    if order.exists() {
        println!(
            "cargo:rustc-link-arg-bin=healthweb=-Wl,-T,{}",
            order.display()
        );
    }
    if glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bin=healthweb=-Wl,-z,pack-relative-relocs");
    }
}

/// rust-lld links: x86_64 Linux with glibc, Rust 1.90 or later, and no linker
/// chosen by the user.
fn rust_lld() -> bool {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu")
        && env::var_os("RUSTC_LINKER").is_none()
        && !flags.contains("linker")
        && !flags.contains("fuse-ld")
        && rustc_minor().is_some_and(|minor| minor >= 90)
}

fn rustc_minor() -> Option<u32> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = String::from_utf8(out.stdout).ok()?;
    version
        .split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}

/// The glibc this build will run on, when it is the one building it.
fn glibc_at_least(major: u32, minor: u32) -> bool {
    if env::var("HOST") != env::var("TARGET") {
        return false;
    }
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    // "glibc 2.36"
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text.trim().trim_start_matches("glibc ").split('.');
    let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
    matches!((next(), next()), (Some(a), Some(b)) if (a, b) >= (major, minor))
}
