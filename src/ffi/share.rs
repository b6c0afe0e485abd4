//! Exports for directories shared with a group (the core's `share`).

use std::ffi::{c_char, c_int};

use super::UsockDir;
use super::boundary::ffi_boundary;
use super::dir::create_dir;

/// `usock_create_dir`, then the directory is given to group `gid` with mode 0710: its members
/// can reach a socket whose name they know (sockets bound or adopted in it are given to `gid`
/// too, with mode 0660, before they listen), but cannot list the directory or create anything
/// in it. Pair it with a `USOCK_ALLOW_GROUP` policy.
///
/// Returns what `usock_create_dir` returns, and `USOCK_ERR_INVALID` when this process is not a
/// member of `gid` (nothing is created). `flags`: 0 or `USOCK_LONG_PATHS`.
///
/// # Safety
/// As `usock_create_dir`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_create_shared_dir(
    parent: *const c_char,
    gid: u32,
    flags: u32,
    out_dir: *mut *mut UsockDir,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract (that of usock_create_dir).
        unsafe { create_dir(parent, flags, Some(gid), out_dir) }
    }
}
