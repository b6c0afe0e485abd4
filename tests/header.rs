//! The committed header is what cbindgen makes from the sources, every export goes through the
//! panic boundary, and the shared library exports exactly the header's functions.
//!
//! cbindgen is a dev-dependency: it runs here, not in a build script, so nothing that builds
//! the library (pip, the Prolog pack, the command) compiles it. Refresh the header with
//! `make header` (which runs this test with `USOCK_BLESS=1`).

use std::fs;
use std::path::Path;

const CRATE: &str = env!("CARGO_MANIFEST_DIR");
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/include/usock.h");

/// The header cbindgen makes from today's sources and `cbindgen.toml`.
fn fresh_header() -> String {
    let config = cbindgen::Config::from_file(Path::new(CRATE).join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(CRATE)
        .with_config(config)
        .generate()
        .expect("cbindgen can read src/ffi")
        .write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

#[test]
fn committed_header_is_fresh() {
    let fresh = fresh_header();
    if std::env::var_os("USOCK_BLESS").is_some() {
        fs::write(COMMITTED, &fresh).unwrap();
    }
    let committed = fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == fresh,
        "include/usock.h is stale: run `make header` and commit it"
    );
}
/// The `extern "C"` functions declared in `src/ffi/`, in source order.
fn exports() -> Vec<(String, String)> {
    let mut found = Vec::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ffi");
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = fs::read_to_string(&path).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("extern \"C\" fn ") {
            let after = &rest[at + "extern \"C\" fn ".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let body_start = after.find('{').unwrap();
            let body = after[body_start + 1..].trim_start().to_string();
            found.push((name, body));
            rest = &after[body_start..];
        }
    }
    found
}

#[test]
fn every_export_is_inside_the_panic_boundary() {
    let exports = exports();
    assert!(exports.len() >= 9, "{exports:?}");
    for (name, body) in &exports {
        assert!(
            body.starts_with("ffi_boundary!"),
            "{name} does not start its body with ffi_boundary!"
        );
    }
}

#[test]
fn header_declares_every_export_and_nothing_else() {
    let header = fresh_header();
    let mut declared: Vec<String> = header
        .lines()
        .filter(|l| {
            // Every function the header declares, usock's or not (cbindgen once copied the
            // library's own `extern` declarations of system calls in).
            !l.starts_with(' ')
                && !l.starts_with('#')
                && !l.starts_with("typedef")
                && l.ends_with(");")
        })
        .map(|l| {
            let before = &l[..l.find('(').unwrap()];
            before.rsplit([' ', '*']).next().unwrap().to_string()
        })
        .collect();
    declared.sort();
    let mut exported: Vec<String> = exports().into_iter().map(|(n, _)| n).collect();
    exported.sort();
    assert_eq!(declared, exported);
    for name in [
        "usock_create_dir",
        "usock_dir_path",
        "usock_socket_path",
        "usock_bind",
        "usock_adopt",
        "usock_cleanup",
        "usock_strerror",
        "usock_last_error",
        "usock_last_errno",
        "usock_version",
    ] {
        assert!(exported.iter().any(|e| e == name), "{name} missing");
    }
}

/// The fuzz target drives every export: a function added to the C ABI and not to
/// `fuzz/src/` fails here (the target once drove 7 of 28, and later missed two new ones).
#[test]
fn the_fuzz_target_calls_every_export() {
    let mut target = String::new();
    for entry in fs::read_dir(Path::new(CRATE).join("fuzz/src")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            target += &fs::read_to_string(&path).unwrap();
        }
    }
    let missing: Vec<String> = exports()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| !target.contains(&format!("{name}(")))
        .collect();
    assert!(
        missing.is_empty(),
        "fuzz/src/ never calls {missing:?}: add an operation (fuzz/src/ops.rs) and a seed"
    );
}
