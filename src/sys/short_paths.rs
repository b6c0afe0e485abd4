//! Systems that cannot bind a socket path longer than `sun_path` (macOS, OpenBSD, NetBSD, and
//! Linux built with `--cfg usock_portable`): every long path is `ENAMETOOLONG`.

use std::ffi::OsStr;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;

use super::SUN_PATH_LEN;

/// `ENAMETOOLONG`: a path too long for `sun_path` cannot be bound here.
pub fn bind_unix_in(_dir: BorrowedFd<'_>, _fd: BorrowedFd<'_>, _name: &[u8]) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG))
}

/// `ENAMETOOLONG`: a path too long for `sun_path` cannot be reached here.
pub fn connect_unix_in(_dir: BorrowedFd<'_>, _fd: BorrowedFd<'_>, _name: &[u8]) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG))
}

/// Does `name` alone fit in `sun_path`?
pub fn fits_in_dir(_dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    name.len() < SUN_PATH_LEN
}

/// None: no path reaches a socket whose own path is too long.
pub fn long_address(_dir: BorrowedFd<'_>, _name: &OsStr) -> Option<PathBuf> {
    None
}
