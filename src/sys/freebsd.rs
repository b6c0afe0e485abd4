//! FreeBSD's long socket paths: `bindat(2)` and `connectat(2)` (FreeBSD 10 and later) bind and
//! connect to a name inside a directory given by its descriptor, so the path may be longer than
//! `sun_path` as long as the name fits.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::PathBuf;

use super::{SUN_PATH_LEN, cvt, retry, unix_address};

// The libc crate does not declare them.
unsafe extern "C" {
    fn bindat(
        fd: libc::c_int,
        s: libc::c_int,
        addr: *const libc::sockaddr,
        addrlen: libc::socklen_t,
    ) -> libc::c_int;
    fn connectat(
        fd: libc::c_int,
        s: libc::c_int,
        name: *const libc::sockaddr,
        namelen: libc::socklen_t,
    ) -> libc::c_int;
}

/// Binds `fd` to `name` inside the directory `dir`, for a path too long for `sun_path`:
/// `bindat`.
pub fn bind_unix_in(dir: BorrowedFd<'_>, fd: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let (addr, len) = unix_address(&[name])?;
    // SAFETY: addr is a valid sockaddr_un and len does not exceed its size.
    cvt(unsafe {
        bindat(
            dir.as_raw_fd(),
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    Ok(())
}

/// [`bind_unix_in`] for `connect`: `connectat`.
pub fn connect_unix_in(dir: BorrowedFd<'_>, fd: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let (addr, len) = unix_address(&[name])?;
    retry(|| {
        // SAFETY: addr is a valid sockaddr_un and len does not exceed its size.
        cvt(unsafe {
            connectat(
                dir.as_raw_fd(),
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        })
    })?;
    Ok(())
}

/// Does `name` fit for [`bind_unix_in`] and [`connect_unix_in`]? The directory adds nothing.
pub fn fits_in_dir(_dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    name.len() < SUN_PATH_LEN
}

/// None: no path reaches a socket bound with `bindat` when its own is too long.
pub fn long_address(_dir: BorrowedFd<'_>, _name: &OsStr) -> Option<PathBuf> {
    None
}
