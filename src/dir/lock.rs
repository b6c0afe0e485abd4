//! The lock every live handle holds on its private directory, which tells a sweep the
//! directory is in use.

use std::os::fd::BorrowedFd;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result, show};
use crate::limits::LOCK_WAIT;
use crate::sys::{self, Lock};

/// Locks a private directory (open as `fd`, shown as `path`), waiting up to [`LOCK_WAIT`] while
/// another holds a lock that conflicts. [`Lock::Shared`] is the lock every live handle holds,
/// which tells a sweep the directory is in use (only a sweep that is examining the directory
/// holds it exclusively, briefly); [`Lock::Exclusive`] is taken only where nothing may hold it.
/// A file system without locks (`EOPNOTSUPP`, `ENOLCK`) is no failure: nothing to take, and a
/// sweep can take nothing either.
pub(crate) fn lock_dir(fd: BorrowedFd<'_>, how: Lock, path: &Path) -> Result<()> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match sys::flock(fd, how) {
            Ok(()) => return Ok(()),
            Err(e) if sys::is_would_block(&e) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) if sys::is_would_block(&e) => {
                let holder = match how {
                    Lock::Exclusive => "a live process holds it (its lock)",
                    _ => "a sweep that is examining it holds its lock",
                };
                return Err(Error::new(
                    ErrorKind::InUse,
                    format!(
                        "{} is in use: {holder} after {} ms; it was left alone",
                        show(path),
                        LOCK_WAIT.as_millis()
                    ),
                )
                .with_errno(&e));
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::ENOLCK)) => {
                return Ok(());
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
