//! Thin, safe wrappers over the few system calls usock needs that `std` does not offer
//! (`mkdirat`, `openat`, `fstatat`, `unlinkat`, `readlinkat`, raw `socket`/`bind`).
//!
//! This is the only module of the core that holds `unsafe`: each wrapper takes Rust types
//! (`BorrowedFd`, `&CStr`, byte slices), checks what it hands to the kernel, and returns
//! `io::Result`. Everything above it is plain safe Rust.
//!
//! What differs between systems by mechanism lives in one file each: [`linux`] for the native
//! Linux path (`O_PATH`, `fchmodat2`, `getdents64`), [`portable`] for macOS and the BSDs (and
//! for Linux built with `--cfg usock_portable`, which runs that path here), [`secure`] for
//! `AT_SECURE`/`issetugid`, [`random`] for the random source and [`process`] for telling a
//! forked child from its creator; `freebsd` (`bindat`/`connectat`) and `linux` (`/proc`) bind
//! socket paths longer than `sun_path`, `short_paths` refuses them elsewhere. What differs only
//! by a constant is a `cfg` where it is used, in this folder only, with the one-word names
//! `build.rs` emits (`linux_native`, `portable`, `apple`, `netbsdlike`, `long_paths`,
//! `atomic_cloexec`).

#[cfg(not(any(
    target_os = "linux",
    target_vendor = "apple",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd"
)))]
compile_error!("usock supports Linux, macOS, FreeBSD, OpenBSD and NetBSD");

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(linux_native)]
mod linux;
mod peer;
#[cfg(portable)]
mod portable;
pub mod process;
pub mod random;
mod secure;
#[cfg(not(long_paths))]
mod short_paths;
mod socket;

#[cfg(target_os = "freebsd")]
pub use freebsd::{bind_unix_in, connect_unix_in, fits_in_dir, long_address};
#[cfg(linux_native)]
pub use linux::{
    DirHandle, bind_unix_in, chmod_new_dir, connect_unix_in, fits_in_dir, long_address,
    open_dir_path, open_dir_search, pin_file, preset_socket_mode,
};
pub use peer::*;
#[cfg(portable)]
pub use portable::{
    DirHandle, chmod_new_dir, open_dir_path, open_dir_search, pin_file, preset_socket_mode,
};
pub use random::random_bytes;
pub use secure::secure_execution;
#[cfg(not(long_paths))]
pub use short_paths::{bind_unix_in, connect_unix_in, fits_in_dir, long_address};
pub use socket::*;

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// The size of `sockaddr_un.sun_path` on this platform, terminating NUL included.
pub const SUN_PATH_LEN: usize = {
    // SAFETY: sockaddr_un is plain old data; an all-zero value is valid.
    let addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_path.len()
};

/// What usock needs to know of a file: identity, type and permission bits, and owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// The later of the last change to the contents (`st_mtime`) and to the inode
    /// (`st_ctime`), in seconds since the epoch: when the file was last touched at all.
    pub changed: i64,
    /// The last change to the contents (`st_mtime`), in seconds since the epoch.
    pub modified: i64,
}

/// The kinds of file a directory entry can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Socket,
    Symlink,
    Regular,
    Fifo,
    Other,
}

impl FileKind {
    /// Words for messages: "a regular file", "a symbolic link"...
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Directory => "a directory",
            FileKind::Socket => "a socket",
            FileKind::Symlink => "a symbolic link",
            FileKind::Regular => "a regular file",
            FileKind::Fifo => "a FIFO",
            FileKind::Other => "a device or other special file",
        }
    }
}

impl Stat {
    // The field types differ between architectures; the casts are no-ops on some.
    #[allow(clippy::unnecessary_cast)]
    fn from_raw(st: &libc::stat) -> Stat {
        Stat {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            mode: st.st_mode as u32,
            uid: st.st_uid as u32,
            gid: st.st_gid as u32,
            changed: (st.st_mtime as i64).max(st.st_ctime as i64),
            modified: st.st_mtime as i64,
        }
    }

    #[allow(clippy::unnecessary_cast)]
    pub fn kind(&self) -> FileKind {
        match self.mode & libc::S_IFMT as u32 {
            m if m == libc::S_IFDIR as u32 => FileKind::Directory,
            m if m == libc::S_IFSOCK as u32 => FileKind::Socket,
            m if m == libc::S_IFLNK as u32 => FileKind::Symlink,
            m if m == libc::S_IFREG as u32 => FileKind::Regular,
            m if m == libc::S_IFIFO as u32 => FileKind::Fifo,
            _ => FileKind::Other,
        }
    }

    /// Permission bits including setuid, setgid and sticky (`mode & 07777`).
    pub fn perms(&self) -> u32 {
        self.mode & 0o7777
    }

    pub fn same_file(&self, other: &Stat) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// Where a `*at` call starts: an open directory, or the current directory for absolute paths.
#[derive(Clone, Copy)]
pub enum At<'a> {
    Fd(BorrowedFd<'a>),
    Cwd,
}

impl At<'_> {
    pub(crate) fn raw(self) -> RawFd {
        match self {
            At::Fd(fd) => fd.as_raw_fd(),
            At::Cwd => libc::AT_FDCWD,
        }
    }
}

pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Retries a call interrupted by a signal, so that callers never see `EINTR`.
pub(crate) fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// `openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)`: a directory to list.
pub fn open_dir_read(at: At<'_>, name: &CStr) -> io::Result<OwnedFd> {
    open(
        at,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
    )
}

pub(crate) fn open(at: At<'_>, name: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    retry(|| {
        // SAFETY: name is a valid NUL-terminated string; the result is a new descriptor we own.
        let fd = cvt(unsafe { libc::openat(at.raw(), name.as_ptr(), flags) })?;
        // SAFETY: openat returned a fresh, open descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    // SAFETY: an all-zero stat is valid; fstat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open for the borrow's lifetime; st is a valid out-pointer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(Stat::from_raw(&st))
}

/// `fstatat(at, name, AT_SYMLINK_NOFOLLOW)`: describes the entry itself, never a link's target.
pub fn lstat_at(at: At<'_>, name: &CStr) -> io::Result<Stat> {
    // SAFETY: an all-zero stat is valid; fstatat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: name is NUL-terminated; st is a valid out-pointer.
    cvt(unsafe { libc::fstatat(at.raw(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(Stat::from_raw(&st))
}

pub fn mkdir_at(at: At<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: name is NUL-terminated.
    retry(|| cvt(unsafe { libc::mkdirat(at.raw(), name.as_ptr(), mode as libc::mode_t) }))?;
    Ok(())
}

/// `unlinkat(at, name, dir ? AT_REMOVEDIR : 0)`: removes one entry, never recursively.
pub fn unlink_at(at: At<'_>, name: &CStr, dir: bool) -> io::Result<()> {
    let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: name is NUL-terminated.
    cvt(unsafe { libc::unlinkat(at.raw(), name.as_ptr(), flags) })?;
    Ok(())
}

/// `fchmod(fd, mode)`. On a socket not yet bound, this is the mode `bind()` gives its file,
/// less the bits the umask removes.
pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain system call on a descriptor we borrow.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })?;
    Ok(())
}

/// `fchmodat(at, name, mode, flags)`: sets the mode of an entry inside a directory nobody else
/// can write to. On macOS and the BSDs with `AT_SYMLINK_NOFOLLOW`, which they implement in the
/// kernel; on Linux without it (glibc before 2.39 emulates it through `/proc`), which changes a
/// link's target at most, and only the user can have put a link in usock's directory.
pub fn chmod_at(at: At<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    #[cfg(linux_native)]
    let flags = 0;
    #[cfg(portable)]
    let flags = libc::AT_SYMLINK_NOFOLLOW;
    // SAFETY: name is NUL-terminated.
    cvt(unsafe { libc::fchmodat(at.raw(), name.as_ptr(), mode as libc::mode_t, flags) })?;
    Ok(())
}

pub fn readlink_at(at: At<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: name is NUL-terminated; buf is writable for buf.len() bytes.
        let n = unsafe {
            libc::readlinkat(at.raw(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len())
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        buf.resize(buf.len() * 2, 0);
    }
}

/// `fchown(fd, -1, gid)`: gives the file to group `gid`, leaving its owner.
pub fn fchown_group(fd: BorrowedFd<'_>, gid: u32) -> io::Result<()> {
    // SAFETY: plain system call on a descriptor we borrow; (uid_t)-1 leaves the owner.
    cvt(unsafe { libc::fchown(fd.as_raw_fd(), u32::MAX as libc::uid_t, gid as libc::gid_t) })?;
    Ok(())
}

/// `fchownat(at, name, -1, gid, AT_SYMLINK_NOFOLLOW)`: gives the entry itself (never a link's
/// target) to group `gid`, leaving its owner.
pub fn chown_group_at(at: At<'_>, name: &CStr, gid: u32) -> io::Result<()> {
    // SAFETY: name is NUL-terminated; (uid_t)-1 leaves the owner.
    cvt(unsafe {
        libc::fchownat(
            at.raw(),
            name.as_ptr(),
            u32::MAX as libc::uid_t,
            gid as libc::gid_t,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// Opens (creating it when missing) the lock file `name` in `at` for reading and writing,
/// never through a symbolic link, close-on-exec; a new file gets mode 0600 less the umask.
pub fn open_lock_file(at: At<'_>, name: &CStr) -> io::Result<OwnedFd> {
    retry(|| {
        // SAFETY: name is NUL-terminated; the result is a new descriptor we own.
        let fd = cvt(unsafe {
            libc::openat(
                at.raw(),
                name.as_ptr(),
                libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY,
                0o600 as libc::c_uint,
            )
        })?;
        // SAFETY: openat returned a fresh, open descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

/// Creates the regular file `name` in `at`, which must not exist (`O_EXCL`, never through a
/// symbolic link), with mode `mode` less the umask; close-on-exec.
pub fn create_new_file(at: At<'_>, name: &CStr, mode: u32) -> io::Result<OwnedFd> {
    retry(|| {
        // SAFETY: name is NUL-terminated; the result is a new descriptor we own.
        let fd = cvt(unsafe {
            libc::openat(
                at.raw(),
                name.as_ptr(),
                libc::O_WRONLY
                    | libc::O_CREAT
                    | libc::O_EXCL
                    | libc::O_NOFOLLOW
                    | libc::O_CLOEXEC
                    | libc::O_NOCTTY,
                mode as libc::c_uint,
            )
        })?;
        // SAFETY: openat returned a fresh, open descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })
}

/// How [`flock`] locks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    Shared,
    Exclusive,
    Unlock,
}

/// `flock(fd, how | LOCK_NB)`: never waits; a lock held elsewhere is `EWOULDBLOCK`.
pub fn flock(fd: BorrowedFd<'_>, how: Lock) -> io::Result<()> {
    let op = match how {
        Lock::Shared => libc::LOCK_SH | libc::LOCK_NB,
        Lock::Exclusive => libc::LOCK_EX | libc::LOCK_NB,
        Lock::Unlock => libc::LOCK_UN,
    };
    // SAFETY: plain system call on a descriptor we borrow.
    retry(|| cvt(unsafe { libc::flock(fd.as_raw_fd(), op) }))?;
    Ok(())
}

/// Is `err` the "held elsewhere" answer of a non-blocking [`flock`]?
pub fn is_would_block(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(e) if e == libc::EWOULDBLOCK || e == libc::EAGAIN)
}

/// `renameat(at, from, at, to)`: replaces `to` atomically.
pub fn rename_at(at: At<'_>, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated.
    cvt(unsafe { libc::renameat(at.raw(), from.as_ptr(), at.raw(), to.as_ptr()) })?;
    Ok(())
}

/// A second descriptor for the open file `fd` refers to (sharing its `flock` locks), numbered
/// 3 or above and *without* close-on-exec: for handing to a program started with `exec`.
pub fn dup_inheritable(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: plain system call; the result is a new descriptor we own.
    let new = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD, 3) })?;
    // SAFETY: fcntl returned a fresh, open descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Sets close-on-exec on `fd`.
pub fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: plain system call on a descriptor we borrow.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
    Ok(())
}

/// The current time in whole seconds since the epoch, as file times count it.
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Does this system have a per-user temporary directory ([`user_temp_dir`])? macOS does.
pub const HAS_USER_TEMP_DIR: bool = cfg!(apple);

/// Can socket paths longer than `sun_path` be bound here: through `/proc/thread-self/fd` on Linux
/// (natively), with `bindat` on FreeBSD? Elsewhere such paths are too long.
pub const LONG_PATHS: bool = cfg!(long_paths);

/// macOS's per-user temporary directory, `confstr(_CS_DARWIN_USER_TEMP_DIR)` (for example
/// `/var/folders/zz/…/T/`): the system makes it for every user, mode 0700, and sets it even
/// where `$TMPDIR` is not. `None` elsewhere, or when the call fails.
pub fn user_temp_dir() -> Option<std::ffi::OsString> {
    #[cfg(apple)]
    {
        use std::os::unix::ffi::OsStringExt;
        let mut buf = vec![0u8; 1024];
        // SAFETY: buf is writable for its length; confstr writes at most that, NUL included.
        let n = unsafe {
            libc::confstr(
                libc::_CS_DARWIN_USER_TEMP_DIR,
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n == 0 || n > buf.len() {
            return None;
        }
        buf.truncate(n - 1);
        Some(std::ffi::OsString::from_vec(buf))
    }
    #[cfg(not(apple))]
    None
}

pub fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The calling process's id, read fresh from the kernel each time (never cached), so a child
/// made by `fork` sees its own.
pub fn getpid() -> u32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() as u32 }
}
