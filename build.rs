//! Gives the shared library its soname (its install name on macOS), all that linking needs, and
//! names the conditions `src/sys/` tests, one word each (as rustix does): see [`emit_cfgs`].
//! The C header is not generated here (that would make every consumer compile cbindgen):
//! `make header` regenerates it, and `tests/header.rs` checks the committed one is fresh.

use std::env;

fn main() {
    emit_cfgs();
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("set by cargo");

    println!("cargo:rerun-if-changed=build.rs");

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
