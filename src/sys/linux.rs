//! The native Linux path: directory handles that need no read permission (`O_PATH`), a mode
//! set through such a handle (`fchmodat2`, or `/proc/thread-self/fd` before Linux 6.6), and listing
//! through a descriptor usock already holds (`getdents64`).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{At, SUN_PATH_LEN, cvt, retry};

/// `fchmodat2(2)`, Linux 6.6. System calls added since Linux 5.1 have one number on every
/// architecture Rust targets; the libc crate does not define this one for all of them.
const SYS_FCHMODAT2: libc::c_long = 452;

/// `openat(at, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)`: a handle on a directory
/// that names exactly that inode, never a symlink's target, and needs no read permission (the
/// `*at` calls usock makes through it need search permission only).
pub fn open_dir_search(at: At<'_>, name: &CStr) -> io::Result<OwnedFd> {
    super::open(
        at,
        name,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
    )
}

/// `openat(at, name, O_PATH | O_NOFOLLOW | O_CLOEXEC)`: a handle on a file (a socket too, which
/// cannot be opened for I/O) that keeps its inode allocated while it is open, so the inode's
/// number cannot be given to a new file meanwhile.
pub fn pin_file(at: At<'_>, name: &CStr) -> io::Result<Option<OwnedFd>> {
    super::open(at, name, libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC).map(Some)
}

/// `open(path, O_PATH | O_DIRECTORY | O_CLOEXEC)`, following symbolic links as a `connect()`
/// by that path would: a handle that reaches a socket whose path is too long for `sun_path`.
pub fn open_dir_path(path: &CStr) -> io::Result<OwnedFd> {
    super::open(
        At::Cwd,
        path,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )
}

/// Sets the mode of the directory `name` in `parent`, which usock has just made there and
/// cannot open because the umask left it without the owner's bits: through an `O_PATH` handle
/// on exactly that inode (see [`chmod_fd`]).
pub fn chmod_new_dir(parent: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    let handle = open_dir_search(At::Fd(parent), name)?;
    chmod_fd(handle.as_fd(), mode)
}

/// Sets the permission bits of exactly the inode `fd` refers to, even when `fd` was opened with
/// `O_PATH` and the mode is 000 (so the file cannot be opened any other way).
///
/// `fchmodat2(fd, "", mode, AT_EMPTY_PATH)` where the kernel has it (Linux 6.6); otherwise
/// (`ENOSYS`, or `EPERM` from a seccomp filter that does not know the call) through
/// [`fd_path`], which names that inode and not whatever holds its old name now. Without
/// either, the error says that `/proc` is missing rather than reporting a bare `ENOENT`.
fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
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
    let path = CString::new(fd_path(fd)).expect("no NUL");
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

/// Is `/proc` mounted (so that [`fd_path`] names something)?
pub fn proc_is_mounted() -> bool {
    super::lstat_at(At::Cwd, c"/proc/self/fd").is_ok()
}

/// Set once `/proc/thread-self` was seen (Linux 3.17 and later).
static THREAD_SELF: AtomicBool = AtomicBool::new(false);

/// The path that names descriptor `fd` of the calling thread's descriptor table:
/// `/proc/thread-self/fd/N`, or `/proc/self/task/<tid>/fd/N` on kernels before 3.17. Never
/// `/proc/self/fd/N`: that is the table of the thread-group leader, which is another table in
/// a thread that called `unshare(CLONE_FILES)` (or when the leader did), where `N` may be
/// another file. The path is good in the calling thread and in every thread that shares its
/// table, for as long as `fd` is open.
pub fn fd_path(fd: BorrowedFd<'_>) -> String {
    if THREAD_SELF.load(Ordering::Relaxed) || super::lstat_at(At::Cwd, c"/proc/thread-self").is_ok()
    {
        THREAD_SELF.store(true, Ordering::Relaxed);
        return format!("/proc/thread-self/fd/{}", fd.as_raw_fd());
    }
    // SAFETY: gettid takes no arguments and cannot fail.
    let tid = unsafe { libc::syscall(libc::SYS_gettid) };
    format!("/proc/self/task/{tid}/fd/{}", fd.as_raw_fd())
}

/// A private directory, open for reading for the handle's life: the `*at` calls inside it go
/// through it, and listing it needs no new descriptor (so cleanup works at the descriptor limit).
#[derive(Debug)]
pub struct DirHandle(OwnedFd);

impl DirHandle {
    pub fn new(dir: OwnedFd) -> io::Result<DirHandle> {
        Ok(DirHandle(dir))
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// The names in the directory, `.` and `..` left out, read from the start with
    /// `getdents64` through the descriptor itself.
    pub fn list(&mut self) -> io::Result<Vec<CString>> {
        let dir = self.0.as_fd();
        // SAFETY: plain system call on a descriptor we own.
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
}

/// Binds `fd` to `name` inside the directory `dir`, for a path too long for `sun_path`:
/// through `/proc/thread-self/fd/<dir>/<name>` (the calling thread's descriptor table: see
/// [`fd_path`]).
pub fn bind_unix_in(dir: BorrowedFd<'_>, fd: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let through = fd_path(dir) + "/";
    super::bind_unix(fd, &[through.as_bytes(), name])
}

/// [`bind_unix_in`] for `connect`; without `/proc`, `ENAMETOOLONG`.
pub fn connect_unix_in(dir: BorrowedFd<'_>, fd: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let through = fd_path(dir) + "/";
    match super::connect_unix(fd, &[through.as_bytes(), name]) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !proc_is_mounted() => {
            Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG))
        }
        other => other,
    }
}

/// Does `name` fit for [`bind_unix_in`] and [`connect_unix_in`] with the directory `dir`?
pub fn fits_in_dir(dir: BorrowedFd<'_>, name: &[u8]) -> bool {
    fd_path(dir).len() + 1 + name.len() < SUN_PATH_LEN
}

/// A path that reaches `name` in the directory `dir` from the calling thread (and the threads
/// that share its descriptor table) when its own path is too long for `sun_path`:
/// `/proc/thread-self/fd/<dir>/<name>`.
pub fn long_address(dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> Option<std::path::PathBuf> {
    Some(std::path::PathBuf::from(fd_path(dir)).join(name))
}

/// Sets the mode `bind()` gives the socket `fd`'s file (less the umask) before it binds, so that
/// the file usually needs no `chmod` afterwards. macOS and FreeBSD refuse `fchmod` on a socket
/// (`EINVAL`) and the others ignore it: there (the portable path) this does nothing, and the
/// mode is set by name after `bind()`. A failure here is ignored for the same reason.
pub fn preset_socket_mode(fd: BorrowedFd<'_>, mode: u32) {
    let _ = super::fchmod(fd, mode);
}
