//! What every call must show: a status its documentation lists, and after a failure a
//! message, and the errno `usock_last_errno` promises.

use std::ffi::{CStr, c_int};

use usock::testing::ffi::*;

pub const OK: c_int = USOCK_OK;
pub const INVALID: c_int = USOCK_ERR_INVALID;
pub const TOO_LONG: c_int = USOCK_ERR_TOO_LONG;
pub const UNSAFE: c_int = USOCK_ERR_UNSAFE;
pub const NO_DIR: c_int = USOCK_ERR_NO_DIR;
pub const IN_USE: c_int = USOCK_ERR_IN_USE;
pub const EXHAUSTED: c_int = USOCK_ERR_EXHAUSTED;
pub const CHANGED: c_int = USOCK_ERR_CHANGED;
pub const SYSTEM: c_int = USOCK_ERR_SYSTEM;
pub const BUFFER: c_int = USOCK_ERR_BUFFER;

// The statuses each export's documentation (include/usock.h) lists.
pub const CREATE: &[c_int] = &[OK, INVALID, UNSAFE, TOO_LONG, NO_DIR, EXHAUSTED, SYSTEM];
pub const SOCKET_PATH: &[c_int] = &[OK, INVALID, TOO_LONG, BUFFER];
pub const BIND: &[c_int] = &[OK, INVALID, TOO_LONG, IN_USE, SYSTEM];
pub const ADOPT: &[c_int] = &[OK, INVALID, UNSAFE, TOO_LONG, SYSTEM];
pub const CLEANUP: &[c_int] = &[OK, CHANGED, SYSTEM, INVALID];
pub const CONNECT: &[c_int] = &[OK, INVALID, TOO_LONG, SYSTEM, UNSAFE];
pub const BIND_PATH: &[c_int] = &[OK, INVALID, UNSAFE, TOO_LONG, IN_USE, SYSTEM];
pub const UNBIND_PATH: &[c_int] = &[OK, IN_USE, SYSTEM];
pub const SWEEP: &[c_int] = &[OK, INVALID, UNSAFE, SYSTEM];
pub const HAND_OFF: &[c_int] = &[OK, INVALID, SYSTEM];
pub const TAKE_OVER: &[c_int] = &[OK, INVALID, UNSAFE, IN_USE, SYSTEM];
pub const PEER_OF: &[c_int] = &[OK, INVALID, SYSTEM];
pub const POLICY_NEW: &[c_int] = &[OK, INVALID];
pub const ACCEPT: &[c_int] = &[OK, INVALID, SYSTEM];
pub const POLICY_CHECK: &[c_int] = &[OK, UNSAFE, INVALID];
pub const POLICY_REFUSED: &[c_int] = &[OK, INVALID];
pub const POLICY_FREE: &[c_int] = &[OK];
pub const DIR_IDLE: &[c_int] = &[OK, IN_USE, SYSTEM];

/// Checks `status` against the documented list; after a failure, the thread's message and
/// errno. Returns `status`.
pub fn status(call: &str, status: c_int, documented: &[c_int]) -> c_int {
    crate::trace_call(call, status);
    assert!(
        documented.contains(&status),
        "{call}: status {status} ({}) is not documented for it: {}",
        name(status),
        last_error()
    );
    if status != OK {
        failure(call, status);
    }
    status
}

/// Like [`status`], for a call whose outcome the sequence knows.
pub fn exactly(call: &str, status: c_int, expected: c_int) {
    crate::trace_call(call, status);
    assert_eq!(
        status,
        expected,
        "{call}: {} where {} was due: {}",
        name(status),
        name(expected),
        last_error()
    );
    if status != OK {
        failure(call, status);
    }
}

fn failure(call: &str, status: c_int) {
    let message = last_error();
    assert!(
        !message.is_empty(),
        "{call}: {} without a message",
        name(status)
    );
    let errno = usock_last_errno();
    let due = match status {
        SYSTEM => {
            assert!(
                errno > 0,
                "{call}: USOCK_ERR_SYSTEM with errno {errno}: {message}"
            );
            return;
        }
        TOO_LONG => libc::ENAMETOOLONG,
        IN_USE => libc::EADDRINUSE,
        _ => return,
    };
    assert_eq!(
        errno,
        due,
        "{call}: {} with errno {errno}: {message}",
        name(status)
    );
}

pub fn last_error() -> String {
    // SAFETY: usock_last_error never returns NULL; the string lives until the next failure.
    unsafe { CStr::from_ptr(usock_last_error()) }
        .to_string_lossy()
        .into_owned()
}

pub fn name(status: c_int) -> String {
    let name = usock_status_name(status);
    if name.is_null() {
        return format!("undefined status {status}");
    }
    // SAFETY: a non-NULL result is a static NUL-terminated string.
    unsafe { CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}
