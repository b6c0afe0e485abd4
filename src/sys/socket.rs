//! Unix domain sockets: creating them close-on-exec, asking a descriptor what it is, and
//! binding and connecting by a filesystem path that must fit in `sun_path`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{SUN_PATH_LEN, cvt, retry};

/// Is a refused connection (`ECONNREFUSED`) a certain "nobody listens"? On Linux a full
/// backlog is `EAGAIN`; on macOS and the BSDs it is `ECONNREFUSED` too.
pub const REFUSAL_IS_CERTAIN: bool = cfg!(linux_native);

/// A new `AF_UNIX` socket of `ty` (a `SOCK_*` value), always close-on-exec.
///
/// Where `socket()` takes `SOCK_CLOEXEC`, atomically. macOS lacks it: there the flag is set
/// with `fcntl` right after, and a `fork` + `exec` in another thread between the two calls can
/// inherit the descriptor (the portable build on Linux takes that path too, to run it).
pub fn unix_socket(ty: libc::c_int) -> io::Result<OwnedFd> {
    #[cfg(atomic_cloexec)]
    {
        // SAFETY: plain system call; the result is a new descriptor we own.
        let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: socket returned a fresh descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
    #[cfg(not(atomic_cloexec))]
    {
        // SAFETY: plain system call; the result is a new descriptor we own.
        let fd = cvt(unsafe { libc::socket(libc::AF_UNIX, ty, 0) })?;
        // SAFETY: socket returned a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: plain system call on the descriptor we own.
        cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) })?;
        Ok(fd)
    }
}

/// What [`unix_socket_type`] found: the socket's `SOCK_*` type, and whether it has a name
/// already (a path, or on Linux an abstract or automatic one).
pub struct UnixSocket {
    pub ty: libc::c_int,
    pub bound: bool,
}

/// The type of `fd`, and whether it is bound, when it is an `AF_UNIX` socket; `None` for
/// another family; `ENOTSOCK` (or `EBADF`) when it is not a socket at all.
pub fn unix_socket_type(fd: BorrowedFd<'_>) -> io::Result<Option<UnixSocket>> {
    let get = |option: libc::c_int| -> io::Result<libc::c_int> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: value and len are valid out-pointers of the size given.
        cvt(unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        })?;
        Ok(value)
    };
    let ty = get(libc::SO_TYPE)?;
    // The family from getsockname (SO_DOMAIN is not everywhere).
    // SAFETY: an all-zero sockaddr_storage is valid; getsockname fills at most len bytes.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: addr and len are valid out-pointers of the size given.
    cvt(unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    })?;
    if libc::c_int::from(addr.ss_family) != libc::AF_UNIX {
        return Ok(None);
    }
    // SAFETY: the address is an AF_UNIX one, and sockaddr_storage is large and aligned enough
    // for a sockaddr_un.
    let un = unsafe { &*(&addr as *const libc::sockaddr_storage).cast::<libc::sockaddr_un>() };
    Ok(Some(UnixSocket {
        ty,
        bound: has_name(un, len),
    }))
}

/// Whether a Unix socket's own address (from `getsockname`, `len` bytes) is a name: an
/// unbound socket's has no path. On Linux a name may also be abstract (a NUL first, then
/// bytes), which only the length tells.
fn has_name(un: &libc::sockaddr_un, len: libc::socklen_t) -> bool {
    let path_offset = std::mem::offset_of!(libc::sockaddr_un, sun_path);
    let len = len as usize;
    if len <= path_offset {
        return false;
    }
    if cfg!(any(target_os = "linux", target_os = "android")) {
        return true;
    }
    un.sun_path[0] != 0
}

/// A `sockaddr_un` for the filesystem path made of `parts` (concatenated), and its length.
/// `ENAMETOOLONG` when the path does not fit in `sun_path` with its NUL; `EINVAL` for a NUL byte.
pub(super) fn unix_address(parts: &[&[u8]]) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total >= SUN_PATH_LEN {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    if parts.iter().any(|p| p.contains(&0)) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = parts.iter().flat_map(|p| p.iter());
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + total + 1;
    #[cfg(not(target_os = "linux"))]
    {
        addr.sun_len = len as u8;
    }
    Ok((addr, len as libc::socklen_t))
}

/// Binds `fd` to the filesystem path made of `parts` (concatenated), which must fit in
/// `sun_path` with its NUL.
pub fn bind_unix(fd: BorrowedFd<'_>, parts: &[&[u8]]) -> io::Result<()> {
    let (addr, len) = unix_address(parts)?;
    // SAFETY: addr is a valid sockaddr_un and len does not exceed its size.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len,
        )
    })?;
    Ok(())
}

/// Connects `fd` to the socket at the filesystem path made of `parts` (concatenated). A call
/// interrupted by a signal is made again (as BSD and Linux allow): `EISCONN` then means the
/// first one completed, and a connection still under way is waited for with `poll`. Callers
/// never see `EINTR`.
pub fn connect_unix(fd: BorrowedFd<'_>, parts: &[&[u8]]) -> io::Result<()> {
    let (addr, len) = unix_address(parts)?;
    let mut interrupted = false;
    loop {
        // SAFETY: addr is a valid sockaddr_un and len does not exceed its size.
        let ret = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => interrupted = true,
            Some(libc::EISCONN) if interrupted => return Ok(()),
            Some(libc::EALREADY | libc::EINPROGRESS) if interrupted => {
                return wait_connected(fd);
            }
            _ => return Err(err),
        }
    }
}

/// Waits for a connection under way on `fd` and returns its outcome.
fn wait_connected(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: pfd is one valid pollfd.
    retry(|| cvt(unsafe { libc::poll(&mut pfd, 1, -1) }))?;
    match socket_error(fd)? {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// `SO_ERROR`: the pending error of a socket, 0 for none.
fn socket_error(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid out-pointers of the size given.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    })?;
    Ok(value)
}

/// Sets or clears `O_NONBLOCK` on `fd`.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: plain system calls on a descriptor we borrow.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    let flags = if on {
        flags | libc::O_NONBLOCK
    } else {
        flags & !libc::O_NONBLOCK
    };
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) })?;
    Ok(())
}

/// Whether the socket `fd` is connected: `getpeername` answers (`ENOTCONN`: it is not).
pub fn is_connected(fd: BorrowedFd<'_>) -> io::Result<bool> {
    // SAFETY: an all-zero sockaddr_storage is valid; getpeername fills at most len bytes.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: addr and len are valid out-pointers of the size given.
    match cvt(unsafe {
        libc::getpeername(
            fd.as_raw_fd(),
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => Ok(false),
        Err(e) => Err(e),
    }
}

pub fn listen(fd: BorrowedFd<'_>, backlog: libc::c_int) -> io::Result<()> {
    // SAFETY: plain system call on a descriptor we borrow.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), backlog) })?;
    Ok(())
}
