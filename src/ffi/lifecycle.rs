//! Exports for servers at well-known paths and for the life of directories across processes:
//! connect, bind at a path and unbind, sweep, hand off and take over.

use std::ffi::{CString, c_char, c_int, c_void};
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use super::UsockDir;
use super::args::{self, borrow_fd, handle, opt_out, opt_parent, out};
use super::boundary::ffi_boundary;
use super::handle::{Closed, hand_out};
use crate::error::Error;
use crate::{BindMode, BoundPath, ConnectOptions, PrivateDir, Server, SocketType};

/// `usock_connect` flag: leave the socket non-blocking, and fail with `EAGAIN` (Linux) instead
/// of waiting when the server's backlog is full.
pub const USOCK_CONNECT_NONBLOCK: u32 = 1;

/// `usock_connect`'s `server`: any server (no check).
pub const USOCK_SERVER_ANY: i64 = -1;
/// `usock_connect`'s `server`: only a server running as this process's effective user or root.
pub const USOCK_SERVER_SELF_OR_ROOT: i64 = -2;

/// `usock_bind_path` flag: take over from a live server at the path (bind at a fresh name
/// beside it, listen, then rename over it) instead of failing with `USOCK_ERR_IN_USE`.
pub const USOCK_REPLACE: u32 = 1;

/// A socket bound at a well-known path (opaque). Made by `usock_bind_path`, freed by
/// `usock_unbind_path`.
pub struct UsockBoundPath {
    inner: BoundPath,
}

/// Called by `usock_sweep` once for each usock directory it examined: `path` (valid during the
/// call), `removed` 1 when it was removed, else 0 with `reason` saying why it was kept (NULL
/// when removed). `ctx` is the caller's pointer, passed through.
pub type UsockSweepFn = Option<
    unsafe extern "C" fn(
        ctx: *mut c_void,
        path: *const c_char,
        removed: c_int,
        reason: *const c_char,
    ),
>;

/// Connects a new socket of `type` to the socket at `path` and returns its descriptor,
/// close-on-exec, in `*out_fd`.
///
/// `type`: 0 or `SOCK_STREAM`, `SOCK_SEQPACKET`, `SOCK_DGRAM`. `flags`: 0 or
/// `USOCK_CONNECT_NONBLOCK`. `server`: which server to accept, by its credentials at
/// `listen()`: `USOCK_SERVER_ANY`, `USOCK_SERVER_SELF_OR_ROOT`, or a uid (0 to 2^32-2); a
/// server that is someone else is `USOCK_ERR_UNSAFE` and the connection is closed, so a client
/// never talks to a socket another user put at the path. A server running as the overflow uid
/// (`usock_overflow_ids`) is refused by every check, even one that names it. Datagram sockets
/// have no peer credentials: with a check they are `USOCK_ERR_INVALID`.
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (`path` or `out_fd` NULL, an empty path, a bad type
/// or flag); `USOCK_ERR_TOO_LONG` (errno `ENAMETOOLONG`: a path longer than `sun_path` where
/// the system cannot reach it through a descriptor of its directory, which Linux, with `/proc`,
/// and FreeBSD can; or a socket name that alone does not fit); `USOCK_ERR_SYSTEM` with the errno of the failed connect: `ENOENT` (nothing there),
/// `ECONNREFUSED` (nobody listening, or not a socket: the message says which), `EPROTOTYPE`
/// (a socket of another type), `EACCES` (permission denied), `EAGAIN` (backlog full, with
/// `USOCK_CONNECT_NONBLOCK` on Linux); `USOCK_ERR_UNSAFE` only when the server is not the one
/// asked for or cannot be identified (errno 0; the message names the uid asked for and the
/// server's), so a binding can tell it from a failed connect by the status alone.
/// Thread-safe.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out_fd` is NULL or points to a writable `int`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_connect(
    path: *const c_char,
    r#type: c_int,
    flags: u32,
    server: i64,
    out_fd: *mut c_int,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let path = unsafe { args::path(path, "path") }?;
        // SAFETY: as this function's contract.
        let out_fd = unsafe { out(out_fd, "out_fd") }?;
        if flags & !USOCK_CONNECT_NONBLOCK != 0 {
            return Err(Error::invalid(format!(
                "unknown flags 0x{flags:x} for usock_connect: only USOCK_CONNECT_NONBLOCK is defined"
            )));
        }
        let ty = SocketType::try_from(r#type)?;
        let server = match server {
            USOCK_SERVER_ANY => Server::Any,
            USOCK_SERVER_SELF_OR_ROOT => Server::SelfOrRoot,
            uid => match u32::try_from(uid) {
                Ok(uid) if uid != u32::MAX => Server::Uid(uid),
                _ => {
                    return Err(Error::invalid(format!(
                        "server {uid}: pass USOCK_SERVER_ANY, USOCK_SERVER_SELF_OR_ROOT or a uid"
                    )));
                }
            },
        };
        let options = ConnectOptions::default()
            .nonblocking(flags & USOCK_CONNECT_NONBLOCK != 0)
            .server(server);
        out_fd.write(crate::connect_with(path, ty, options)?.into_raw_fd());
        Ok(())
    }
}

/// Binds the caller's socket `fd` at the well-known path `path`, sets the file's mode to 0600
/// whatever the umask, and listens with `backlog` (0 or less: `SOMAXCONN`) unless it is a
/// datagram socket; returns a handle in `*out_bound` that removes the path again.
///
/// `path`'s directory must pass the checks of `usock_create_dir` and be writable by nobody but
/// its owner (not even with the sticky bit: another user could take a fixed name there first).
/// Every change at the path happens under an exclusive `flock` of `<path>.lock` (created 0600,
/// never removed). A socket of the user at the path that refuses connections (stale, left by a
/// crash) is replaced; a live server is `USOCK_ERR_IN_USE`, unless `flags` has `USOCK_REPLACE`.
/// A socket at the path is replaced only once the new one listens: it is bound and listening
/// at a fresh name beside the path first and renamed over it, so that clients never find the
/// path without a server (the old server keeps its connections and should drain its backlog
/// before it stops) and a call that fails leaves the path as it was. Anything else at the path
/// (a file, another user's socket) is `USOCK_ERR_IN_USE` and is left alone. A process killed
/// between that bind and the rename leaves its socket at the fresh name (a dot and 13 random
/// characters); before it uses a fresh name, a bind removes such sockets in the directory
/// that are the user's, a minute old and refuse connections (never a path's own socket, nor
/// one with a `.lock` file beside it; a name shortened to fit `sun_path` is not recognised).
///
/// To tell a live server from a stale socket, usock connects to it: a live server at the path
/// sees one connection that closes at once, without a byte (the probe), so servers must survive
/// a peer that hangs up (`EPIPE` or `ECONNRESET` on that connection; ignore `SIGPIPE` or send
/// with `MSG_NOSIGNAL`).
///
/// `fd`: an unbound `AF_UNIX` socket; it stays the caller's.
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (NULL arguments, a bad flag, `fd` not an unbound
/// Unix socket or a connected one that cannot listen, checked before anything is made; a path
/// that does not end in a name); `USOCK_ERR_UNSAFE` (the directory fails a
/// check; a symbolic link or another user's file at `<path>.lock`); `USOCK_ERR_TOO_LONG`;
/// `USOCK_ERR_IN_USE` (see above; also when another process holds the lock for over a second);
/// `USOCK_ERR_SYSTEM`. Thread-safe.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `out_bound` is NULL or points to writable storage
/// for one pointer; `fd` stays open during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_bind_path(
    path: *const c_char,
    fd: c_int,
    backlog: c_int,
    flags: u32,
    out_bound: *mut *mut UsockBoundPath,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let path = unsafe { args::path(path, "path") }?;
        // SAFETY: as this function's contract.
        let out_bound = unsafe { out(out_bound, "out_bound") }?;
        if flags & !USOCK_REPLACE != 0 {
            return Err(Error::invalid(format!(
                "unknown flags 0x{flags:x} for usock_bind_path: only USOCK_REPLACE is defined"
            )));
        }
        // SAFETY: as this function's contract.
        let fd = unsafe { borrow_fd(fd, || format!("descriptor {fd} is not a socket")) }?;
        let mode = if flags & USOCK_REPLACE != 0 { BindMode::Replace } else { BindMode::Exclusive };
        let backlog = u32::try_from(backlog).ok().filter(|&b| b > 0);
        let inner = BoundPath::bind_socket(path, fd, backlog, mode)?;
        out_bound.write(Box::into_raw(Box::new(UsockBoundPath { inner })));
        Ok(())
    }
}

/// Removes the well-known path if it is still the socket `usock_bind_path` bound there (same
/// device and inode; a socket another server renamed over it since is left alone), under the
/// path's lock, then frees the handle. Nothing is removed in a child after `fork`. The socket
/// descriptor is the caller's: close it yourself. NULL is a no-op returning `USOCK_OK`.
///
/// The handle is freed whatever the result. Returns `USOCK_OK`; `USOCK_ERR_IN_USE` (another
/// process held the lock for over a second: the path was left); `USOCK_ERR_SYSTEM`. Call it
/// once per handle, from one thread.
///
/// # Safety
/// `bound` is NULL or a handle from `usock_bind_path` not yet passed here.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_unbind_path(bound: *mut UsockBoundPath) -> c_int {
    ffi_boundary! { result;
        if bound.is_null() {
            return Ok(());
        }
        // SAFETY: the caller hands over a live handle made by Box::into_raw in usock_bind_path.
        let handle = unsafe { Box::from_raw(bound) };
        handle.inner.unbind()
    }
}

/// Removes the private directories that processes which died left behind, in `parent` (NULL:
/// each automatic candidate, as `usock_create_dir` chooses them). A directory is removed only
/// when it looks like a usock directory of the effective user (name, owner, mode 0700, or 0710
/// when shared with a group), no process holds it (every live handle, forked children that kept its descriptor, and a
/// successor holding the descriptor of `usock_hand_off` lock it), it has not changed for
/// `grace_seconds` (negative: the default, 60), and none of its sockets answers a connection of
/// its own type; its sockets and then the directory are removed, each checked by device and
/// inode. A directory that holds anything but the user's sockets is kept. A server that is alive
/// sees a connection that closes at once.
///
/// `report`: NULL, or called once for each usock directory examined, with `ctx`. `flags`:
/// reserved, pass 0. `*out_removed` (if not NULL) gets the number removed.
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (a flag set, an empty parent); `USOCK_ERR_UNSAFE` or
/// `USOCK_ERR_SYSTEM` for a `parent` that cannot be used or listed. Thread-safe.
///
/// # Safety
/// `parent` is NULL or a NUL-terminated string; `report`, if not NULL, is safe to call with
/// `ctx`; `out_removed` is NULL or points to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_sweep(
    parent: *const c_char,
    grace_seconds: i64,
    flags: u32,
    report: UsockSweepFn,
    ctx: *mut c_void,
    out_removed: *mut usize,
) -> c_int {
    ffi_boundary! { result;
        if flags != 0 {
            return Err(Error::invalid(format!(
                "unknown flags 0x{flags:x} for usock_sweep: none are defined yet, pass 0"
            )));
        }
        // SAFETY: as this function's contract.
        let parent = unsafe { opt_parent(parent) }?;
        let grace = u64::try_from(grace_seconds).map_or(crate::DEFAULT_GRACE, Duration::from_secs);
        let result = crate::sweep(parent, grace)?;
        if let Some(report) = report {
            let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap_or_default();
            for path in &result.removed {
                // SAFETY: the caller promises report is safe to call with ctx; the strings live
                // for the call.
                unsafe { report(ctx, c(path).as_ptr(), 1, std::ptr::null()) };
            }
            for (path, why) in &result.kept {
                let why = CString::new(why.as_bytes()).unwrap_or_default();
                // SAFETY: as above.
                unsafe { report(ctx, c(path).as_ptr(), 0, why.as_ptr()) };
            }
        }
        // SAFETY: as this function's contract.
        if let Some(out_removed) = unsafe { opt_out(out_removed) } {
            out_removed.write(result.removed.len());
        }
        Ok(())
    }
}

/// Frees the handle without removing anything, for a process that passes its directory to a
/// program it starts with `exec`: `*out_fd` gets a descriptor of the directory that is not
/// close-on-exec and keeps the directory locked (so a sweep leaves it alone) as long as any
/// process holds it. Give the successor its number and `usock_dir_path(dir)` (read the path
/// first: the handle is gone afterwards); the successor calls `usock_take_over`. Close the
/// descriptor if no successor takes it; the directory is then the sweep's to remove.
///
/// On failure the handle is still valid and was not freed. Returns `USOCK_OK`;
/// `USOCK_ERR_INVALID` (NULL arguments; a handle being cleaned up); `USOCK_ERR_SYSTEM`
/// (`EMFILE`).
///
/// # Safety
/// `dir` is NULL or a live handle, which this call consumes on success; `out_fd` is NULL or
/// points to a writable `int`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_hand_off(dir: *mut UsockDir, out_fd: *mut c_int) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let out_fd = unsafe { out(out_fd, "out_fd") }?;
        // SAFETY: as this function's contract.
        let fd = unsafe { handle(dir) }?.lock_for_successor()?;
        // SAFETY: dir is a live handle (entered above, so not NULL).
        match unsafe { &*dir }.close() {
            Closed::Free => {
                // SAFETY: no call is in flight and none can enter: this call owns the handle.
                let handle = unsafe { Box::from_raw(dir) };
                handle.inner.forget();
            }
            Closed::LeftInChild => {}
            Closed::AlreadyClosing => {
                return Err(Error::invalid(
                    "usock_cleanup began on this handle during usock_hand_off; nothing was handed off",
                ));
            }
        }
        out_fd.write(fd.into_raw_fd());
        Ok(())
    }
}

/// Takes an existing usock directory at `path` under management again, as a successor started
/// by `exec` does with a directory handed to it by `usock_hand_off`, and returns a handle in
/// `*out_dir` that `usock_cleanup` frees (removing the directory as for one it made).
///
/// Checked as at creation: a name usock makes, a directory owned by the effective user with
/// mode 0700 (0710 when shared with a group), in a parent that passes the checks. `lock_fd`:
/// the descriptor from `usock_hand_off` when one was inherited (it must be that directory; on
/// success the handle keeps a close-on-exec duplicate of it, holding the same lock, and
/// `lock_fd` itself is closed), or -1. `flags`: reserved, pass 0.
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (NULL arguments, a relative path, a flag, a
/// `lock_fd` of something else); `USOCK_ERR_UNSAFE` (a check failed); `USOCK_ERR_IN_USE` (a
/// sweep is examining the directory); `USOCK_ERR_SYSTEM`. On failure `lock_fd` is not closed.
///
/// # Safety
/// `path` is NULL or a NUL-terminated string; `lock_fd` is -1 or an open descriptor the caller
/// gives up on success; `out_dir` is NULL or points to writable storage for one pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_take_over(
    path: *const c_char,
    lock_fd: c_int,
    flags: u32,
    out_dir: *mut *mut UsockDir,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let path = unsafe { args::path(path, "path") }?;
        // SAFETY: as this function's contract.
        let out_dir = unsafe { out(out_dir, "out_dir") }?;
        if flags != 0 {
            return Err(Error::invalid(format!(
                "unknown flags 0x{flags:x} for usock_take_over: none are defined yet, pass 0"
            )));
        }
        if lock_fd < -1 {
            return Err(Error::invalid(format!("lock_fd {lock_fd}: pass -1 or a descriptor")));
        }
        // The descriptor is the caller's until the take-over succeeds: work on a duplicate.
        let lock = if lock_fd >= 0 {
            // SAFETY: lock_fd is non-negative and only borrowed here.
            let borrowed = unsafe { BorrowedFd::borrow_raw(lock_fd) };
            let owned = borrowed.try_clone_to_owned().map_err(|e| {
                Error::system(format_args!("cannot use lock_fd {lock_fd}"), &e)
            })?;
            Some(owned)
        } else {
            None
        };
        let taken = PrivateDir::take_over(path, lock)?;
        if lock_fd >= 0 {
            // SAFETY: the caller gives lock_fd up on success; the handle holds a duplicate of
            // it (same open file, same lock).
            drop(unsafe { OwnedFd::from_raw_fd(lock_fd) });
        }
        hand_out(taken, out_dir);
        Ok(())
    }
}
