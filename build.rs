//! Generates the C header into OUT_DIR (never into the source tree) and gives the shared
//! library its soname (its install name on macOS). `tests/header.rs` compares OUT_DIR's header with `include/usock.h`.
//! Also names the conditions `src/sys/` tests, one word each (as rustix does): see [`emit_cfgs`].

use std::env;
use std::path::PathBuf;

fn main() {
    emit_cfgs();
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");

    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is valid");
    cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen can read src/ffi")
        .write_to_file(out_dir.join("usock.h"));

    // Programs linked against this major version keep working across minor ones. Chosen by the
    // target's system, not by cfg!() (which describes the machine running this script); the
    // macOS linker has no -soname.
    match env::var("CARGO_CFG_TARGET_OS")
        .expect("set by cargo")
        .as_str()
    {
        "macos" | "ios" => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libusock.{major}.dylib")
        }
        _ => println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libusock.so.{major}"),
    }
}

/// The short cfg names `src/sys/` uses, each one word for one condition on the *target* (read
/// from `CARGO_CFG_*`, which reflect `RUSTFLAGS`, so `--cfg usock_portable` counts):
///
/// - `linux_native`: Linux on its native path (`O_PATH`, `fchmodat2`, `getdents64`, `/proc`).
/// - `portable`: every other build: macOS, the BSDs, and Linux with `--cfg usock_portable`.
/// - `apple`: macOS and Apple's other systems.
/// - `netbsdlike`: OpenBSD and NetBSD (no supplementary groups of a socket's peer).
/// - `long_paths`: socket paths longer than `sun_path` can be bound (Linux natively, FreeBSD).
/// - `atomic_cloexec`: `socket()` takes `SOCK_CLOEXEC` (all but macOS and the portable build).
fn emit_cfgs() {
    let os = env::var("CARGO_CFG_TARGET_OS").expect("set by cargo");
    let apple = env::var("CARGO_CFG_TARGET_VENDOR").is_ok_and(|v| v == "apple");
    let forced_portable = env::var_os("CARGO_CFG_USOCK_PORTABLE").is_some();
    let linux_native = os == "linux" && !forced_portable;
    let cfgs = [
        ("linux_native", linux_native),
        ("portable", !linux_native),
        ("apple", apple),
        ("netbsdlike", os == "openbsd" || os == "netbsd"),
        ("long_paths", linux_native || os == "freebsd"),
        ("atomic_cloexec", !apple && !forced_portable),
    ];
    for (name, on) in cfgs {
        println!("cargo::rustc-check-cfg=cfg({name})");
        if on {
            println!("cargo::rustc-cfg={name}");
        }
    }
}
