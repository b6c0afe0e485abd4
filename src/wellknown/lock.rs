//! The lock file beside a well-known socket path: `P.lock` serialises every change at `P`
//! (probe, bind, replace, removal) between the processes of one user.
//!
//! The file is created 0600, never through a symbolic link, and never removed: removing it would
//! let one server hold a lock on the old file while the next creates and locks a new one, and
//! both would believe they hold "the" lock. It says nothing about liveness (a server does not
//! hold it while it serves); the socket answers for that.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result, show};
use crate::limits::LOCK_WAIT;
use crate::sys::{self, At, FileKind, Lock};

/// An exclusive `flock` on `P.lock`, released when dropped.
#[derive(Debug)]
pub(crate) struct PathLock {
    fd: OwnedFd,
}

impl PathLock {
    /// Opens (or creates) the lock file `name` in the directory `parent` (shown as `path` in
    /// messages) and locks it exclusively, trying for up to [`LOCK_WAIT`]. After locking, checks
    /// that the name still refers to the locked file (it may have been removed and made again
    /// meanwhile), and starts again if not.
    ///
    /// A symbolic link at the name, or a file that is not a regular file of the effective user,
    /// is [`ErrorKind::Unsafe`]; a lock still held after the wait is [`ErrorKind::InUse`].
    pub(crate) fn acquire(
        parent: BorrowedFd<'_>,
        name: &CStr,
        path: &Path,
        euid: u32,
    ) -> Result<PathLock> {
        let at = At::Fd(parent);
        let deadline = Instant::now() + LOCK_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            let fd = sys::open_lock_file(at, name).map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    Error::new(
                        ErrorKind::Unsafe,
                        format!(
                            "lock file {} is a symbolic link; it was not followed",
                            show(path)
                        ),
                    )
                    .with_errno(&e)
                } else if e.raw_os_error() == Some(libc::EACCES) {
                    // Usually a directory of someone else's (root's /, /run): say so, since
                    // the errno alone reads as a problem with the lock file.
                    let dir = path.parent().unwrap_or(Path::new("/"));
                    Error::system(
                        format_args!(
                            "cannot open lock file {} (you cannot create files in {}: use a directory of your own, such as $XDG_RUNTIME_DIR)",
                            show(path),
                            show(dir)
                        ),
                        &e,
                    )
                } else {
                    Error::system(format_args!("cannot open lock file {}", show(path)), &e)
                }
            })?;
            let st = sys::fstat(fd.as_fd())
                .map_err(|e| Error::system(format_args!("cannot stat {}", show(path)), &e))?;
            if !crate::owner::is_callers_file(&st, FileKind::Regular, None, euid) {
                return Err(Error::new(
                    ErrorKind::Unsafe,
                    format!(
                        "lock file {} is {} owned by {}, not a regular file owned by uid {euid}; it was left alone",
                        show(path),
                        st.kind().describe(),
                        crate::owner::shown(st.uid)
                    ),
                ));
            }
            if st.perms() != 0o600 {
                sys::fchmod(fd.as_fd(), 0o600).map_err(|e| {
                    Error::system(format_args!("cannot set mode 0600 on {}", show(path)), &e)
                })?;
            }
            match sys::flock(fd.as_fd(), Lock::Exclusive) {
                Ok(()) => {
                    let still_named = sys::lstat_at(at, name).is_ok_and(|now| now.same_file(&st));
                    if still_named {
                        return Ok(PathLock { fd });
                    }
                }
                Err(e) if sys::is_would_block(&e) => {
                    if Instant::now() >= deadline {
                        return Err(Error::new(
                            ErrorKind::InUse,
                            format!(
                                "another process has held {} for over {} ms while changing the socket beside it; try again",
                                show(path),
                                LOCK_WAIT.as_millis()
                            ),
                        )
                        .with_errno(&e));
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(Error::system(
                        format_args!("cannot lock {}", show(path)),
                        &e,
                    ));
                }
            }
        }
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        let _ = sys::flock(self.fd.as_fd(), Lock::Unlock);
    }
}

/// `<name>.lock`.
pub(crate) fn lock_name(name: &CStr) -> CString {
    let mut bytes = name.to_bytes().to_vec();
    bytes.extend_from_slice(b".lock");
    CString::new(bytes).expect("no NUL")
}
