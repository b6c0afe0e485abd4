//! One version, single-sourced: Cargo.toml's. The C header's macros and `usock_version()` are
//! checked in `src/ffi` and tests/ffi.rs, the Python package reads the library's; this checks
//! every other place a user reads a version.

use std::fs;
use std::path::Path;

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first `version = "..."` of a Cargo manifest.
fn cargo_version(manifest: &str) -> String {
    read(manifest)
        .lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{manifest}: no version"))
        .to_owned()
}

#[test]
fn the_command_is_the_librarys_version() {
    assert_eq!(cargo_version("bindings/cli/Cargo.toml"), VERSION);
}

#[test]
fn the_prolog_pack_is_the_librarys_version() {
    assert!(
        read("bindings/prolog/pack.pl").contains(&format!("version('{VERSION}').")),
        "pack.pl's version is not {VERSION}"
    );
}

#[test]
fn the_man_page_is_the_librarys_version() {
    let th = read("bindings/cli/usock.1")
        .lines()
        .find(|l| l.starts_with(".TH "))
        .expect("usock.1 has a .TH line")
        .to_owned();
    assert!(th.contains(&format!("\"usock {VERSION}\"")), "{th}");
}

#[test]
fn the_changelogs_top_entry_is_headed_with_the_version() {
    let changelog = read("CHANGELOG.md");
    let top = changelog
        .lines()
        .find(|l| l.starts_with("## "))
        .expect("CHANGELOG.md has an entry");
    assert!(
        top == format!("## {VERSION}") || top == format!("## [{VERSION}]"),
        "CHANGELOG.md's top entry is {top:?}, not ## {VERSION}"
    );
}

#[test]
fn file_names_in_the_readmes_carry_the_version() {
    for readme in [
        "README.md",
        "bindings/prolog/README.md",
        "bindings/python/README.md",
    ] {
        let text = read(readme);
        let mut rest = text.as_str();
        while let Some(at) = rest.find("usock-") {
            rest = &rest[at + "usock-".len()..];
            if rest.starts_with(|c: char| c.is_ascii_digit()) {
                assert!(
                    rest.starts_with(VERSION)
                        && !rest[VERSION.len()..].starts_with(|c: char| c.is_ascii_digit()),
                    "{readme}: usock-{} is not version {VERSION}",
                    &rest[..rest.len().min(12)]
                );
            }
        }
    }
}
