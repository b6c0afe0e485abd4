//! Gives the shared library its soname (its install name on macOS): all that linking needs.
//! The C header is not generated here (that would make every consumer compile cbindgen):
//! `make header` regenerates it, and `tests/header.rs` checks the committed one is fresh.

use std::env;

fn main() {
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
