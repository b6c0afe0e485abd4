//! Exports for the private directory: create, path, socket path, bind, cleanup.

use std::ffi::{OsStr, c_char, c_int};
use std::os::fd::IntoRawFd;

use super::UsockDir;
use super::args::{borrow_fd, handle, null_arg, opt_name, opt_parent, out, write_path};
use super::boundary::{fail, ffi_boundary};
use super::handle::{Closed, hand_out};
use crate::error::Error;
use crate::{DirOptions, PrivateDir, SocketType};

/// Creates a private directory for Unix domain sockets and returns a handle to it in `*out_dir`.
///
/// The directory gets a fresh name with 65 random bits from the OS (`usock-` and 13
/// characters), mode 0700 whatever the umask, and is owned by the effective user. The socket
/// path `<dir>/sock` is guaranteed to fit in `sun_path`.
///
/// `parent`: the directory to create it in, or NULL to choose automatically, in order (on
/// macOS, first the per-user temporary directory, `confstr(_CS_DARWIN_USER_TEMP_DIR)`):
/// `$XDG_RUNTIME_DIR`, `$TMPDIR`, `/tmp`, `/var/tmp`, skipping each that is unset, missing,
/// unsafe, too long or not writable. A program running setuid or setgid (`AT_SECURE`) ignores
/// both environment variables, which its invoker controls. A parent is safe when it and every
/// ancestor is owned by root or the effective user and, if writable by group or others, has the
/// sticky bit; symbolic links on the way must be owned by root or the effective user too, and
/// are never followed from a directory that group or others can write to. The path usock
/// returns has no symbolic links in it.
///
/// `flags`: 0, or `USOCK_LONG_PATHS` to allow socket paths longer than `sun_path` (a deep
/// parent): on Linux they are bound through `/proc/thread-self/fd/<dir>/<name>`, the calling
/// thread's descriptor table (`/proc/self/task/<tid>/fd` before Linux 3.17), so the name must
/// fit in `sun_path` after that prefix (on FreeBSD they are bound with `bindat`), and
/// `usock_connect` reaches them through a descriptor of their directory; elsewhere the flag
/// changes nothing and such paths are `USOCK_ERR_TOO_LONG`. `usock_socket_path` still gives the
/// real path (which may need a buffer larger than `USOCK_PATH_MAX`), `usock_socket_address` the
/// one to bind to in this process.
///
/// On success `*out_dir` holds a handle, which the caller owns and must pass to
/// `usock_cleanup` exactly once. On failure `*out_dir` is not written and nothing is left on
/// disk.
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (`out_dir` NULL, `parent` empty, a flag other than
/// `USOCK_LONG_PATHS`);
/// `USOCK_ERR_UNSAFE` or `USOCK_ERR_TOO_LONG` for an explicit parent that fails the checks
/// (nothing is created); `USOCK_ERR_NO_DIR` when no automatic candidate fits (the message lists
/// each one and why); `USOCK_ERR_EXHAUSTED`; `USOCK_ERR_SYSTEM`. Thread-safe.
///
/// # Safety
/// `parent` is NULL or a NUL-terminated string; `out_dir` is NULL or points to writable storage
/// for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_create_dir(
    parent: *const c_char,
    flags: u32,
    out_dir: *mut *mut UsockDir,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        unsafe { create_dir(parent, flags, None, out_dir) }
    }
}

/// The body of `usock_create_dir` and (with `group`) `usock_create_shared_dir`: the arguments
/// checked, the directory made by the one constructor, the handle handed out.
///
/// # Safety
/// As `usock_create_dir`.
pub(super) unsafe fn create_dir(
    parent: *const c_char,
    flags: u32,
    group: Option<u32>,
    out_dir: *mut *mut UsockDir,
) -> crate::Result<()> {
    // SAFETY: as this function's contract.
    let out_dir = unsafe { out(out_dir, "out_dir") }?;
    check_dir_flags(flags)?;
    // SAFETY: as this function's contract.
    let parent = unsafe { opt_parent(parent) }?;
    let mut options = DirOptions::default().long_paths(flags & USOCK_LONG_PATHS != 0);
    if let Some(gid) = group {
        options = options.share_with_group(gid);
    }
    hand_out(PrivateDir::create_with(parent, &options)?, out_dir);
    Ok(())
}

/// The directory's absolute path (no symbolic links in it), NUL-terminated; NULL if `dir` is
/// NULL.
///
/// The string belongs to the handle and stays valid until `usock_cleanup(dir)`. Thread-safe.
///
/// # Safety
/// `dir` is NULL or a handle from `usock_create_dir` not yet passed to `usock_cleanup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_dir_path(dir: *const UsockDir) -> *const c_char {
    ffi_boundary! {
        // SAFETY: the caller passes NULL or a live handle.
        match unsafe { dir.as_ref() }.map(UsockDir::enter) {
            Some(Ok(dir)) => dir.path_c().as_ptr(),
            Some(Err(err)) => {
                fail(&err);
                std::ptr::null()
            }
            None => std::ptr::null(),
        }
    }
}

/// Writes the path of socket `name` in the directory, `<dir>/<name>` NUL-terminated, into
/// `buf`, for callers that bind with their own socket library. `name` NULL means the default
/// name, `sock`. A name is one path component: not empty, no `/`, not `.` or `..`.
///
/// A buffer of `USOCK_PATH_MAX` bytes is large enough for a directory made without
/// `USOCK_LONG_PATHS`; with it the path can be longer (use `PATH_MAX`: `USOCK_ERR_BUFFER`'s
/// message says how many bytes it needs). On failure `buf` is not written.
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (`dir` or `buf` NULL, a bad name);
/// `USOCK_ERR_TOO_LONG` (the path would not fit in `sun_path`, in a directory made without
/// `USOCK_LONG_PATHS`); `USOCK_ERR_BUFFER` (`buf_len` is smaller than the path and its NUL).
/// Thread-safe.
///
/// # Safety
/// `dir` is NULL or a live handle; `name` is NULL or a NUL-terminated string; `buf` is NULL or
/// writable for `buf_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_socket_path(
    dir: *const UsockDir,
    name: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        unsafe { write_socket_path(dir, name, buf, buf_len, PrivateDir::socket_path) }
    }
}

/// `usock_create_dir` flag: allow socket paths longer than `sun_path` (Linux and FreeBSD; see
/// there).
pub const USOCK_LONG_PATHS: u32 = 1;

/// Writes the address to bind or connect to socket `name` *in this process* into `buf`: its
/// path when that fits in `sun_path` (as `usock_socket_path`), else, in a directory made with
/// `USOCK_LONG_PATHS` on Linux, `/proc/thread-self/fd/<dir>/<name>` through the handle's
/// descriptor. For socket libraries that bind by path (SWI-Prolog's `tcp_bind/2`). Use the
/// latter only in the calling thread, or a thread that shares its descriptor table; never hand
/// it to another process: there it names another file, or none; give others
/// `usock_socket_path`.
///
/// Returns as `usock_socket_path`. A buffer of `USOCK_PATH_MAX` bytes is always large enough.
///
/// # Safety
/// As `usock_socket_path`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_socket_address(
    dir: *const UsockDir,
    name: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        unsafe { write_socket_path(dir, name, buf, buf_len, PrivateDir::socket_address) }
    }
}

/// The body of `usock_socket_path` and `usock_socket_address`: asks `which` for socket
/// `name`'s path in `dir` and copies it into `buf`.
///
/// # Safety
/// As `usock_socket_path`.
unsafe fn write_socket_path(
    dir: *const UsockDir,
    name: *const c_char,
    buf: *mut c_char,
    buf_len: usize,
    which: fn(&PrivateDir, Option<&OsStr>) -> crate::Result<std::path::PathBuf>,
) -> crate::Result<()> {
    // SAFETY: as this function's contract.
    let dir = unsafe { handle(dir) }?;
    if buf.is_null() {
        return Err(null_arg("buf"));
    }
    // SAFETY: as this function's contract.
    let path = which(&dir, unsafe { opt_name(name) })?;
    // SAFETY: as this function's contract.
    unsafe { write_path(&path, buf, buf_len) }
}

/// Fails for a flag `usock_create_dir` and `usock_create_shared_dir` do not know.
fn check_dir_flags(flags: u32) -> crate::Result<()> {
    if flags & !USOCK_LONG_PATHS != 0 {
        return Err(Error::invalid(format!(
            "unknown flags 0x{flags:x}: only USOCK_LONG_PATHS is defined"
        )));
    }
    Ok(())
}

/// Creates a socket of `type`, binds it at `<dir>/<name>` and hands its descriptor to the caller
/// in `*out_fd`.
///
/// `name`: NULL for the default `sock`, or one path component (see `usock_socket_path`).
/// `type`: 0 or `SOCK_STREAM`, `SOCK_SEQPACKET`, `SOCK_DGRAM`; no flags. The socket is
/// close-on-exec. The socket file gets mode 0600 whatever the umask, before the socket listens.
/// `backlog`: for stream and seqpacket sockets, the `listen()` backlog; 0 or less means
/// `SOMAXCONN`. Datagram sockets are bound, not listened on.
///
/// On success the caller owns `*out_fd` and closes it; the socket file is removed by
/// `usock_cleanup`. On failure `*out_fd` is not written, no descriptor stays open and no file is
/// left. An existing file is never removed to make room.
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (`dir` or `out_fd` NULL, a bad name or type);
/// `USOCK_ERR_TOO_LONG`; `USOCK_ERR_IN_USE` (the name is taken); `USOCK_ERR_SYSTEM`.
/// Thread-safe: several threads may bind in the same directory at once.
///
/// # Safety
/// `dir` is NULL or a live handle; `name` is NULL or a NUL-terminated string; `out_fd` is NULL
/// or points to a writable `int`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_bind(
    dir: *mut UsockDir,
    name: *const c_char,
    r#type: c_int,
    backlog: c_int,
    out_fd: *mut c_int,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let dir = unsafe { handle(dir) }?;
        // SAFETY: as this function's contract.
        let out_fd = unsafe { out(out_fd, "out_fd") }?;
        let ty = SocketType::try_from(r#type)?;
        // SAFETY: as this function's contract.
        let name = unsafe { opt_name(name) };
        let backlog = u32::try_from(backlog).ok().filter(|&b| b > 0);
        out_fd.write(dir.bind(name, ty, backlog)?.into_raw_fd());
        Ok(())
    }
}

/// Binds a socket the caller made itself at `<dir>/<name>`, sets its file's mode to 0600
/// whatever the umask, and listens with `backlog` (0 or less: `SOMAXCONN`) unless it is a
/// datagram socket: `usock_bind` for a descriptor that a language runtime's socket object already
/// owns, so that no descriptor changes hands (and none can be lost between two steps).
///
/// `fd`: an `AF_UNIX` socket of type `SOCK_STREAM`, `SOCK_SEQPACKET` or `SOCK_DGRAM`, not yet
/// bound. It stays the caller's: usock never closes it. The socket file is removed by
/// `usock_cleanup`. On failure nothing is left at the name; a socket that was bound before a
/// later step failed stays bound to the removed path, so close it.
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (`dir` NULL, a bad name, `fd` not an unbound Unix domain
/// socket of those types, or a connected one that cannot listen); `USOCK_ERR_TOO_LONG`;
/// `USOCK_ERR_IN_USE`; `USOCK_ERR_SYSTEM`. Thread-safe.
///
/// # Safety
/// `dir` is NULL or a live handle; `name` is NULL or a NUL-terminated string; `fd` stays open
/// during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_bind_fd(
    dir: *mut UsockDir,
    name: *const c_char,
    fd: c_int,
    backlog: c_int,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let dir = unsafe { handle(dir) }?;
        // SAFETY: as this function's contract.
        let fd = unsafe { borrow_fd(fd, || format!("descriptor {fd} is not a socket")) }?;
        // SAFETY: as this function's contract.
        let name = unsafe { opt_name(name) };
        let backlog = u32::try_from(backlog).ok().filter(|&b| b > 0);
        dir.bind_socket(name, fd, backlog)
    }
}

/// Takes a socket the caller bound itself at `usock_socket_path(dir, name, ...)` (with another
/// socket library) into usock's care: checks that it is a socket owned by the effective user,
/// sets its file's mode to 0600 whatever the umask, and records its device and inode so that
/// `usock_cleanup` removes exactly it (and cheaply). Call it after `bind()` and before
/// `listen()`, so that no client ever connects under another mode. `name` NULL means `sock`.
///
/// Returns `USOCK_OK` (also when the socket was adopted before); `USOCK_ERR_INVALID` (`dir`
/// NULL, a bad name, or the file is not a socket); `USOCK_ERR_UNSAFE` (the socket belongs to
/// another user); `USOCK_ERR_TOO_LONG`; `USOCK_ERR_SYSTEM` (`ENOENT`: nothing at that name).
/// Thread-safe.
///
/// # Safety
/// `dir` is NULL or a live handle; `name` is NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_adopt(dir: *mut UsockDir, name: *const c_char) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let dir = unsafe { handle(dir) }?;
        // SAFETY: as this function's contract.
        dir.adopt(unsafe { opt_name(name) })
    }
}

/// Removes the sockets in the directory and the directory itself, then frees the handle.
///
/// Removed: the sockets `usock_bind` made (checked by device and inode) and other sockets owned
/// by the effective user (bound by the caller at `usock_socket_path`), then the directory, after
/// checking that its name in the parent still refers to the directory usock made. Nothing is
/// followed through a symbolic link and nothing is deleted recursively: a regular file, a
/// subdirectory or an object swapped in is left in place, with the directory, and the result is
/// `USOCK_ERR_CHANGED` with a message naming it. In a process other than the one that created
/// the directory (a child after `fork`, whatever its pid), nothing is removed and the handle is
/// freed (or, when the parent's threads were inside calls on it at the moment of `fork`, left
/// allocated: those calls never finish in the child). No
/// descriptor the caller owns is closed: close sockets from `usock_bind` yourself.
///
/// The handle is freed whatever the result; do not use it again. NULL is a no-op returning
/// `USOCK_OK`. Calls already running on the handle in other threads are waited for before
/// anything is removed or freed; calls that begin after this one started fail with
/// `USOCK_ERR_INVALID`. (A call that begins after the handle was freed cannot be detected:
/// callers still must not use a handle after passing it here.)
///
/// Returns `USOCK_OK`, `USOCK_ERR_CHANGED`, `USOCK_ERR_SYSTEM` (with the errno of the first
/// system call that failed), or `USOCK_ERR_INVALID` when another `usock_cleanup` of the same
/// handle is already running (that one frees it).
///
/// # Safety
/// `dir` is NULL or a live handle from `usock_create_dir`, which this call consumes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_cleanup(dir: *mut UsockDir) -> c_int {
    ffi_boundary! { result;
        if dir.is_null() {
            return Ok(());
        }
        // SAFETY: the caller hands over a live handle made by Box::into_raw in usock_create_dir.
        match unsafe { &*dir }.close() {
            Closed::Free => {}
            Closed::AlreadyClosing => {
                return Err(Error::invalid(
                    "usock_cleanup was called twice on the same handle; the first call frees it",
                ));
            }
            Closed::LeftInChild => return Ok(()),
        }
        // SAFETY: no call is in flight on the handle any more and none can enter: this call owns
        // it, as Box::into_raw in usock_create_dir made it.
        let handle = unsafe { Box::from_raw(dir) };
        handle.inner.cleanup()
    }
}

/// Whether nothing in the directory serves now: for a binding's garbage collector, which hands out
/// socket paths and cannot know whether sockets bound there are still open.
///
/// The rule is `usock_sweep`'s for one directory, without its lock and grace period (the handle
/// is the caller's): the directory holds at least one socket, every entry is a socket of the
/// effective user, and none answers a connection of any type. Each socket is probed without
/// waiting (a full backlog counts as an answer); a live server sees a connection that closes at
/// once. A directory with nothing in it stays: a path handed out from it may still be bound.
///
/// One look is not proof: a stream socket that is bound but not yet listening refuses
/// connections exactly as a closed one does. Remove the directory only when two looks some
/// time apart both return `USOCK_OK` and nothing in the directory changed in between (the
/// SWI-Prolog pack waits at least a second and compares the directory's inode, mtime and ctime).
///
/// Returns `USOCK_OK` when nothing serves (then pass the handle to `usock_cleanup`);
/// `USOCK_ERR_IN_USE` when the directory must stay, with a message saying why (a socket answers,
/// nothing is bound, or it holds something else); `USOCK_ERR_SYSTEM` (with the errno) when it
/// could not be examined; `USOCK_ERR_INVALID` for NULL or a handle that `usock_cleanup` is
/// freeing. The handle is never changed or freed, and stays the caller's. Thread-safe; it makes
/// no call into the caller's runtime, so it may run in a collector's thread.
///
/// # Safety
/// `dir` is NULL or a handle from `usock_create_dir` not yet passed to `usock_cleanup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_dir_idle(dir: *const UsockDir) -> c_int {
    ffi_boundary! { result;
        // SAFETY: the caller passes NULL or a live handle.
        unsafe { handle(dir) }?.check_idle()
    }
}
