//! The C ABI. Every function here only checks its arguments, converts them, calls the safe core
//! and maps the result to a status code; each body runs inside the
//! `ffi_boundary!` macro of [`boundary`], so that no panic reaches C.
//!
//! Conventions (also in the header): functions return a status, `USOCK_OK` (0) or a negative
//! `USOCK_ERR_*`; out-parameters are written only on success; a failure leaves a message for the
//! calling thread in `usock_last_error()`.
//!
//! Not part of the Rust API: the crate's users see the safe core; C sees these exports through
//! `include/usock.h`, and tests reach them as `usock::testing::ffi` (feature `test-hooks`).

// Without test-hooks nothing in Rust names the constants and re-exports: cbindgen reads them for
// the header. (Builds with test-hooks, such as clippy --all-targets, still see dead code here.)
#![cfg_attr(not(feature = "test-hooks"), allow(dead_code, unused_imports))]

mod args;
pub mod boundary;
mod dir;
mod handle;
mod info;
mod lifecycle;
mod peer;
mod share;

pub use dir::*;
pub use handle::UsockDir;
pub use info::*;
pub use lifecycle::*;
pub use peer::*;
pub use share::*;

use std::ffi::c_int;

/// Major version of usock; matches `usock_version()` and Cargo.toml.
pub const USOCK_VERSION_MAJOR: c_int = 0;
/// Minor version of usock.
pub const USOCK_VERSION_MINOR: c_int = 2;
/// Patch version of usock.
pub const USOCK_VERSION_PATCH: c_int = 0;

/// `sizeof(((struct sockaddr_un *)0)->sun_path)` on this platform, NUL included: a socket path
/// must be at most `USOCK_PATH_MAX - 1` bytes. A buffer of this size holds any path
/// `usock_socket_path` writes for a directory made without `USOCK_LONG_PATHS`, and any address
/// `usock_socket_address` writes. (The header defines it with the preprocessor, for the platform
/// of the program that includes it: see `cbindgen.toml`.)
///
/// cbindgen:ignore
pub const USOCK_PATH_MAX: usize = crate::sys::SUN_PATH_LEN;

/// Success.
pub const USOCK_OK: c_int = 0;
/// A bad argument: NULL where not allowed, an unknown flag or socket type, a bad socket name.
pub const USOCK_ERR_INVALID: c_int = -1;
/// The socket path would not fit in `sun_path` (NUL included).
pub const USOCK_ERR_TOO_LONG: c_int = -2;
/// A directory failed a safety check (owner, mode, symlink, sticky bit).
pub const USOCK_ERR_UNSAFE: c_int = -3;
/// Automatic choice found no usable parent directory.
pub const USOCK_ERR_NO_DIR: c_int = -4;
/// That socket name is already taken in the directory.
pub const USOCK_ERR_IN_USE: c_int = -5;
/// Fresh random names kept colliding.
pub const USOCK_ERR_EXHAUSTED: c_int = -6;
/// Cleanup found something usock did not make; it was left in place.
pub const USOCK_ERR_CHANGED: c_int = -7;
/// A system call failed; `usock_last_errno()` has the errno.
pub const USOCK_ERR_SYSTEM: c_int = -8;
/// The caller's buffer is too small.
pub const USOCK_ERR_BUFFER: c_int = -9;
/// An internal error was caught at the boundary.
pub const USOCK_ERR_PANIC: c_int = -10;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn status_codes_match_error_kinds() {
        // The header's constants, written out for cbindgen, against the table in error.rs.
        let pairs = [
            (USOCK_ERR_INVALID, ErrorKind::Invalid),
            (USOCK_ERR_TOO_LONG, ErrorKind::TooLong),
            (USOCK_ERR_UNSAFE, ErrorKind::Unsafe),
            (USOCK_ERR_NO_DIR, ErrorKind::NoDir),
            (USOCK_ERR_IN_USE, ErrorKind::InUse),
            (USOCK_ERR_EXHAUSTED, ErrorKind::Exhausted),
            (USOCK_ERR_CHANGED, ErrorKind::Changed),
            (USOCK_ERR_SYSTEM, ErrorKind::System),
            (USOCK_ERR_BUFFER, ErrorKind::Buffer),
            (USOCK_ERR_PANIC, ErrorKind::Panic),
        ];
        for (code, kind) in pairs {
            assert_eq!(code, kind.code(), "{kind:?}");
        }
        assert_eq!(
            pairs.len(),
            ErrorKind::ALL.len(),
            "a kind has no USOCK_ERR_ constant"
        );
    }

    #[test]
    fn status_names_are_the_header_names_without_gaps() {
        use std::ffi::CStr;
        let header = include_str!("../../include/usock.h");
        let mut code = 0;
        loop {
            let name = usock_status_name(code);
            if name.is_null() {
                break;
            }
            // SAFETY: a non-NULL result is a static NUL-terminated string.
            let name = unsafe { CStr::from_ptr(name) }.to_str().unwrap();
            assert!(
                header.contains(&format!("#define {name} {code}\n")),
                "{name} = {code} is not in the header"
            );
            code -= 1;
        }
        assert_eq!(code, USOCK_ERR_PANIC - 1);
        for kind in ErrorKind::ALL {
            assert_eq!(
                usock_status_name(kind.code()),
                kind.name_c().as_ptr(),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn path_max_is_sun_path() {
        assert_eq!(USOCK_PATH_MAX, crate::sys::SUN_PATH_LEN);
    }

    #[test]
    fn version_macros_match_cargo() {
        assert_eq!(
            USOCK_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            USOCK_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            USOCK_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
    }
}
