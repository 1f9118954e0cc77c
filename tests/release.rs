//! The release binary, as `make test` builds it (`cargo build --release --bin
//! healthweb`; `HEALTHWEB_RELEASE_BIN` names it): it must start on every glibc the
//! Rust toolchain supports, so it may not ask for what only a recent glibc has, such
//! as RELR relocations (`DT_RELR` in its dynamic section, and the
//! `GLIBC_ABI_DT_RELR` version it then needs, from glibc 2.36 on).

use object::{
    elf,
    read::elf::{Dyn, ElfFile64},
};

/// `DT_RELR` (the gABI's tag 36), which object 0.37 does not name.
const DT_RELR: u32 = 36;

/// The release binary: `HEALTHWEB_RELEASE_BIN`, or target/release/healthweb.
fn release_binary() -> std::path::PathBuf {
    let path = std::env::var_os("HEALTHWEB_RELEASE_BIN")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/healthweb")
        });
    assert!(
        path.exists(),
        "no release binary at {}: `cargo build --release --bin healthweb` (make test does), \
         or name it in HEALTHWEB_RELEASE_BIN",
        path.display()
    );
    path
}

#[test]
fn the_release_binary_needs_no_relr_from_glibc() {
    let path = release_binary();
    let data = std::fs::read(&path).unwrap();
    let file = ElfFile64::<object::Endianness>::parse(&*data).unwrap();
    let endian = file.endian();
    let sections = file.elf_section_table();

    let (dynamic, _) = sections
        .dynamic(endian, &*data)
        .unwrap()
        .expect("a dynamically linked binary has a dynamic section");
    let tags: Vec<u32> = dynamic.iter().filter_map(|d| d.tag32(endian)).collect();
    assert!(
        tags.contains(&elf::DT_NEEDED),
        "read the dynamic section: {tags:?}"
    );
    assert!(!tags.contains(&DT_RELR), "{} has DT_RELR", path.display());

    let (mut needs, link) = sections
        .gnu_verneed(endian, &*data)
        .unwrap()
        .expect("a binary linked against glibc needs versions of it");
    let strings = sections.strings(endian, &*data, link).unwrap();
    let mut versions = Vec::new();
    while let Some((_, mut aux)) = needs.next().unwrap() {
        while let Some(version) = aux.next().unwrap() {
            versions
                .push(String::from_utf8_lossy(version.name(endian, strings).unwrap()).into_owned());
        }
    }
    assert!(
        versions.iter().any(|v| v.starts_with("GLIBC_2.")),
        "read the version needs: {versions:?}"
    );
    assert!(
        !versions.iter().any(|v| v == "GLIBC_ABI_DT_RELR"),
        "{} needs GLIBC_ABI_DT_RELR: {versions:?}",
        path.display()
    );
}
