//! Generates the C header into OUT_DIR (never into the source tree) and gives the shared
//! library its soname (its install name on macOS). `tests/header.rs` compares OUT_DIR's header with `include/usock.h`.

use std::env;
use std::path::PathBuf;

fn main() {
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
