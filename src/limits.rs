//! The limits of a socket path, in one place: what fits in `sun_path`, whether longer paths
//! can be bound here, and the message when one does not fit.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result, show};
use crate::name::{DEFAULT_SOCKET_NAME, DIR_NAME_LEN};
use crate::sys;

/// Can socket paths longer than `sun_path` be bound here: through `/proc/thread-self/fd` on Linux
/// (natively), with `bindat` on FreeBSD? Elsewhere such paths stay [`ErrorKind::TooLong`].
pub(crate) const LONG_PATHS: bool = sys::LONG_PATHS;

/// Longest socket path, in bytes without the NUL, that fits in `sockaddr_un.sun_path`.
pub const MAX_SOCKET_PATH: usize = sys::SUN_PATH_LEN - 1;

/// The message for a socket path that would not fit; its errno is `ENAMETOOLONG`, as the
/// kernel's would be.
pub(crate) fn too_long(what: impl std::fmt::Display, len: usize) -> Error {
    Error::new(
        ErrorKind::TooLong,
        format!(
            "{what} is {len} bytes; the limit here is {MAX_SOCKET_PATH} (sun_path holds {} bytes with the NUL)",
            sys::SUN_PATH_LEN
        ),
    )
    .with_errno(&std::io::Error::from_raw_os_error(libc::ENAMETOOLONG))
}

/// Checks that a directory in `parent` has room for the default socket name (always, with
/// long paths).
pub(crate) fn check_parent_len(parent: &Path, long_paths: bool) -> Result<()> {
    if long_paths {
        return Ok(());
    }
    let len = parent.as_os_str().len() + 1 + DIR_NAME_LEN + 1 + DEFAULT_SOCKET_NAME.len();
    if len > MAX_SOCKET_PATH {
        let example = parent.join(format!("usock-{}", "X".repeat(DIR_NAME_LEN - 6)));
        return Err(too_long(
            format_args!(
                "a socket path in parent {} (such as {}/{DEFAULT_SOCKET_NAME})",
                show(parent),
                show(&example)
            ),
            len,
        ));
    }
    Ok(())
}

/// How long a lock (a well-known path's `P.lock`, a private directory's) is tried for while
/// another process holds it.
pub(crate) const LOCK_WAIT: Duration = Duration::from_secs(1);
