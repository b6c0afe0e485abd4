//! Exports that describe results and the library: status strings, the thread's last error,
//! the version.

use std::ffi::{CStr, c_char, c_int};

use super::boundary::{self, ffi_boundary};
use crate::ErrorKind;

const UNKNOWN_STATUS: &CStr = c"unknown usock status code";
const VERSION: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("version has no NUL"),
    };

/// A short fixed description of a status code, e.g. "socket path too long for sun_path".
///
/// Returns a static string, never NULL, also for codes usock does not define. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn usock_strerror(status: c_int) -> *const c_char {
    ffi_boundary! { on_panic = UNKNOWN_STATUS.as_ptr();
        let text = match status {
            0 => c"success",
            code => ErrorKind::from_code(code).map_or(UNKNOWN_STATUS, ErrorKind::describe_c),
        };
        text.as_ptr()
    }
}

/// The name of a status code as the header spells it: "USOCK_OK", "USOCK_ERR_INVALID", ...;
/// NULL for a code usock does not define. The codes are 0 and then -1, -2, ... without gaps, so
/// a binding can learn them all from the library by counting down until NULL. A static string.
/// Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn usock_status_name(status: c_int) -> *const c_char {
    ffi_boundary! { on_panic = std::ptr::null();
        match status {
            0 => c"USOCK_OK".as_ptr(),
            code => ErrorKind::from_code(code).map_or(std::ptr::null(), |k| k.name_c().as_ptr()),
        }
    }
}

/// The calling thread's last failure, in words: what was checked, on which path, what was
/// found (e.g. "directory /tmp/x has mode 0777: writable by group or others without the sticky
/// bit"). "" if this thread has had no failure.
///
/// Never NULL. The string belongs to usock and stays valid until the next usock call on this
/// thread that fails; copy it to keep it. Successful calls leave it unchanged. Each thread has
/// its own.
#[unsafe(no_mangle)]
pub extern "C" fn usock_last_error() -> *const c_char {
    ffi_boundary! { on_panic = c"".as_ptr();
        boundary::last_message()
    }
}

/// The path this thread's last failure concerns: the parent that was asked for, the private
/// directory, or the socket (the message may name a component inside it, such as the ancestor
/// at fault); "" when the failure concerns no single path (a bad argument, no automatic
/// candidate fits) or there was no failure. For bindings that report it apart from the message
/// (Python's `OSError.filename`).
///
/// Never NULL; valid like `usock_last_error()`'s string, until the next failure on this thread.
#[unsafe(no_mangle)]
pub extern "C" fn usock_last_error_path() -> *const c_char {
    ffi_boundary! { on_panic = c"".as_ptr();
        boundary::last_path()
    }
}

/// The errno of the system call behind this thread's last failure: always set after
/// `USOCK_ERR_SYSTEM`, `ENAMETOOLONG` after `USOCK_ERR_TOO_LONG`, `EADDRINUSE` after
/// `USOCK_ERR_IN_USE` (but `flock`'s `EWOULDBLOCK` when another process held a lock past the
/// wait: a path's lock file, a directory a sweep examines; try again), and set after other
/// failures that a system call reported; 0 when the last failure had none or there was no
/// failure. Each thread has its own.
#[unsafe(no_mangle)]
pub extern "C" fn usock_last_errno() -> c_int {
    ffi_boundary! { on_panic = 0;
        boundary::last_errno()
    }
}

/// The library's version, "MAJOR.MINOR.PATCH"; the same as the `USOCK_VERSION_*` macros of the
/// header it was built with. A static string, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn usock_version() -> *const c_char {
    ffi_boundary! { on_panic = VERSION.as_ptr();
        VERSION.as_ptr()
    }
}

/// `USOCK_PATH_MAX` of the platform the library was built for: the size of `sun_path`, NUL
/// included (108 on Linux, 104 on macOS and the BSDs). For bindings that cannot read the
/// header's macro. Thread-safe.
#[unsafe(no_mangle)]
pub extern "C" fn usock_path_max() -> usize {
    ffi_boundary! { on_panic = super::USOCK_PATH_MAX;
        super::USOCK_PATH_MAX
    }
}
