//! What only Linux offers: `openat2` with `RESOLVE_NO_SYMLINKS`, `fchmodat2` on a descriptor,
//! `getdents64` through a descriptor usock already holds, and `AT_SECURE` from the auxiliary
//! vector.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use super::{At, cvt, retry};

/// `fchmodat2(2)`, Linux 6.6. System calls added since Linux 5.1 have one number on every
/// architecture Rust targets; the libc crate does not define this one for all of them.
const SYS_FCHMODAT2: libc::c_long = 452;

/// `openat2(AT_FDCWD, path, O_PATH | O_DIRECTORY | O_CLOEXEC, RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS)`: the directory at an absolute path, refusing (`ELOOP`) a symlink
/// anywhere on the way. `ENOSYS` on kernels before 5.6.
pub fn open_dir_no_symlinks(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: an all-zero open_how is valid (and its padding must be zero).
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    retry(|| {
        // SAFETY: path is NUL-terminated and how is a valid open_how of the size passed.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                libc::AT_FDCWD,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: openat2 returned a fresh, open descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
    })
}

/// Sets the permission bits of exactly the inode `fd` refers to, even when `fd` was opened with
/// `O_PATH` and the mode is 000 (so the file cannot be opened any other way).
///
/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)` where the kernel has it (Linux 6.6); otherwise
/// (`ENOSYS`, or `EPERM` from a seccomp filter that does not know the call) through
/// `/proc/self/fd/N`, which names that inode and not whatever holds its old name now. Without
/// either, the error says that `/proc` is missing rather than reporting a bare `ENOENT`.
pub fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: "" is NUL-terminated; fd is open for the borrow's lifetime.
    let ret = unsafe {
        libc::syscall(
            SYS_FCHMODAT2,
            fd.as_raw_fd(),
            c"".as_ptr(),
            mode as libc::mode_t,
            libc::AT_EMPTY_PATH,
        )
    };
    if ret == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
        return Err(err);
    }
    let path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL");
    // SAFETY: path is NUL-terminated.
    match cvt(unsafe { libc::fchmodat(libc::AT_FDCWD, path.as_ptr(), mode as libc::mode_t, 0) }) {
        Ok(_) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !proc_is_mounted() => {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the kernel has no fchmodat2 (Linux 6.6) and /proc is not mounted, so a directory \
                 the umask left unreadable cannot be reached by its descriptor; mount /proc or \
                 use a umask that keeps the owner's bits",
            ))
        }
        Err(e) => Err(e),
    }
}

fn proc_is_mounted() -> bool {
    super::lstat_at(At::Cwd, c"/proc/self/fd").is_ok()
}

/// The names in the directory `dir` (open for reading), `.` and `..` left out, read from the
/// start with `getdents64` through that very descriptor: listing needs no new descriptor, so
/// it works when the process has reached its descriptor limit.
pub fn list_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    // SAFETY: plain system call on a descriptor we borrow.
    if unsafe { libc::lseek(dir.as_raw_fd(), 0, libc::SEEK_SET) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // u64 elements keep the records 8-byte aligned, as the kernel lays them out.
    let mut buf = [0u64; 1024];
    let mut names = Vec::new();
    loop {
        let n = retry(|| {
            // SAFETY: buf is writable for its whole size in bytes.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    dir.as_raw_fd(),
                    buf.as_mut_ptr(),
                    std::mem::size_of_val(&buf),
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        })?;
        if n == 0 {
            return Ok(names);
        }
        // SAFETY: the kernel wrote n bytes of linux_dirent64 records into buf.
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
        let mut at = 0;
        while at < n {
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            let Some(header) = bytes.get(at..at + 19) else {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            };
            let reclen = usize::from(u16::from_ne_bytes([header[16], header[17]]));
            let Some(record) = bytes.get(at + 19..at + reclen) else {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            };
            let name = CStr::from_bytes_until_nul(record)
                .map_err(|_| io::Error::from_raw_os_error(libc::EIO))?;
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                names.push(name.to_owned());
            }
            at += reclen;
        }
    }
}

/// Whether the process runs with `AT_SECURE` (setuid, setgid or file capabilities): then the
/// environment is the invoker's and must not steer where usock creates directories.
pub fn secure_execution() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector; 0 means "not set" or "not secure".
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}
