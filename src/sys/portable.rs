//! The path macOS and the BSDs take, which have no `O_PATH` (before FreeBSD 14), no `/proc`
//! and no `getdents64`; Linux built with `--cfg usock_portable` takes it too, so that it runs
//! here. Directory handles are opened for reading, a new directory's mode is set by name with
//! `fchmodat(AT_SYMLINK_NOFOLLOW)`, and listing goes through a `DIR` kept for the handle's life.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, IntoRawFd, OwnedFd};
use std::ptr::NonNull;

use super::{At, cvt};

/// `openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)`: a handle on a
/// directory that is never a symlink's target. Unlike Linux's `O_PATH` it needs read permission
/// on the directory itself (`O_SEARCH` is not on every release these systems support).
pub fn open_dir_search(at: At<'_>, name: &CStr) -> io::Result<OwnedFd> {
    super::open_dir_read(at, name)
}

/// No handle: without `O_PATH` a socket file cannot be opened, so nothing keeps its inode
/// number from going to a new file once it is removed.
pub fn pin_file(_at: At<'_>, _name: &CStr) -> io::Result<Option<OwnedFd>> {
    Ok(None)
}

/// `open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)`, following symbolic links as a `connect()`
/// by that path would: a handle for `connectat` to a socket whose path is too long for
/// `sun_path` (FreeBSD).
pub fn open_dir_path(path: &CStr) -> io::Result<OwnedFd> {
    super::open(
        At::Cwd,
        path,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
    )
}

/// Sets the mode of the directory `name` in `parent`, which usock has just made there and
/// cannot open because the umask left it without the owner's bits. By name, not following a
/// link: the name is usock's, in a parent where nobody else can rename entries.
pub fn chmod_new_dir(parent: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: name is NUL-terminated.
    cvt(unsafe {
        libc::fchmodat(
            parent.as_raw_fd(),
            name.as_ptr(),
            mode as libc::mode_t,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(())
}

/// A private directory, open for reading for the handle's life, as a `DIR` stream: the `*at`
/// calls inside it go through its descriptor, and listing it (`rewinddir`, `readdir`) needs no
/// new descriptor, so cleanup works at the descriptor limit.
#[derive(Debug)]
pub struct DirHandle(NonNull<libc::DIR>);

// SAFETY: the stream is only read through `list`, which takes `&mut self`; `fd` only reads the
// descriptor number, which never changes. Nothing else touches it.
unsafe impl Send for DirHandle {}
// SAFETY: as above.
unsafe impl Sync for DirHandle {}

impl DirHandle {
    /// Takes over `dir` (open for reading).
    pub fn new(dir: OwnedFd) -> io::Result<DirHandle> {
        let raw = dir.into_raw_fd();
        // SAFETY: raw is an open directory descriptor; on success the stream owns it.
        match NonNull::new(unsafe { libc::fdopendir(raw) }) {
            Some(stream) => Ok(DirHandle(stream)),
            None => {
                let err = io::Error::last_os_error();
                // SAFETY: fdopendir failed, so the descriptor is still ours to close.
                unsafe { libc::close(raw) };
                Err(err)
            }
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the stream is open for self's lifetime, and so is its descriptor.
        unsafe { BorrowedFd::borrow_raw(libc::dirfd(self.0.as_ptr())) }
    }

    /// The names in the directory, `.` and `..` left out, read from the start.
    pub fn list(&mut self) -> io::Result<Vec<CString>> {
        let stream = self.0.as_ptr();
        // SAFETY: the stream is open; rewinddir makes readdir start again and re-read.
        unsafe { libc::rewinddir(stream) };
        let mut names = Vec::new();
        loop {
            // readdir reports errors only through errno, so clear it first.
            set_errno(0);
            // SAFETY: the stream is open, and only this call (holding &mut self) reads it.
            let entry = unsafe { libc::readdir(stream) };
            if entry.is_null() {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(0) | None => Ok(names),
                    Some(_) => Err(err),
                };
            }
            // SAFETY: d_name is a NUL-terminated array inside the entry readdir returned.
            let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) };
            if name.to_bytes() != b"." && name.to_bytes() != b".." {
                names.push(name.to_owned());
            }
        }
    }
}

impl Drop for DirHandle {
    fn drop(&mut self) {
        // SAFETY: the stream is open and closed exactly once, here.
        unsafe { libc::closedir(self.0.as_ptr()) };
    }
}

fn set_errno(value: libc::c_int) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: errno is the calling thread's own.
    unsafe {
        *libc::__errno_location() = value
    };
    #[cfg(any(
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "dragonfly"
    ))]
    // SAFETY: errno is the calling thread's own.
    unsafe {
        *libc::__error() = value
    };
    #[cfg(netbsdlike)]
    // SAFETY: errno is the calling thread's own.
    unsafe {
        *libc::__errno() = value
    };
}

/// Does nothing: macOS and FreeBSD refuse `fchmod` on a socket (`EINVAL`) and the others ignore
/// it, so the mode of a socket's file is set by name after `bind()` (see Linux's
/// `preset_socket_mode`).
pub fn preset_socket_mode(_fd: BorrowedFd<'_>, _mode: u32) {}
