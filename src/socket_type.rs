//! The socket types usock binds and connects, and what a descriptor is.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::Path;

use crate::error::{Error, Result, show, strip_os_error_suffix};
use crate::sys;

/// The socket types usock binds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SocketType {
    /// `SOCK_STREAM`: connections, like TCP.
    #[default]
    Stream,
    /// `SOCK_SEQPACKET`: connections that keep message boundaries.
    SeqPacket,
    /// `SOCK_DGRAM`: datagrams; not listened on.
    Datagram,
}

impl SocketType {
    /// The `SOCK_*` value.
    pub fn raw(self) -> libc::c_int {
        match self {
            SocketType::Stream => libc::SOCK_STREAM,
            SocketType::SeqPacket => libc::SOCK_SEQPACKET,
            SocketType::Datagram => libc::SOCK_DGRAM,
        }
    }

    /// The C name, for messages: `SOCK_STREAM`, `SOCK_SEQPACKET`, `SOCK_DGRAM`.
    pub fn c_name(self) -> &'static str {
        match self {
            SocketType::Stream => "SOCK_STREAM",
            SocketType::SeqPacket => "SOCK_SEQPACKET",
            SocketType::Datagram => "SOCK_DGRAM",
        }
    }
}

impl TryFrom<libc::c_int> for SocketType {
    type Error = Error;

    /// `0` and `SOCK_STREAM` are [`SocketType::Stream`]; `SOCK_SEQPACKET` and `SOCK_DGRAM` the
    /// others. Anything else, flags included, is [`ErrorKind::Invalid`](crate::ErrorKind::Invalid).
    fn try_from(raw: libc::c_int) -> Result<SocketType> {
        match raw {
            0 | libc::SOCK_STREAM => Ok(SocketType::Stream),
            libc::SOCK_SEQPACKET => Ok(SocketType::SeqPacket),
            libc::SOCK_DGRAM => Ok(SocketType::Datagram),
            other => Err(Error::invalid(format!(
                "unknown socket type {other}: use 0 or SOCK_STREAM ({}), SOCK_SEQPACKET ({}) or SOCK_DGRAM ({})",
                libc::SOCK_STREAM,
                libc::SOCK_SEQPACKET,
                libc::SOCK_DGRAM
            ))),
        }
    }
}

/// The type of the socket `fd` the caller gave to be bound at `path`;
/// [`ErrorKind::Invalid`](crate::ErrorKind::Invalid) when it is not a Unix domain socket of a
/// type usock binds, is bound already, or is a connected stream or seqpacket socket (which
/// cannot listen). Checked before anything is made, to refuse early and plainly; it cannot be
/// the only guard (a shared descriptor can change meanwhile, and where `getpeername` is denied
/// a connected socket is not seen here): what is at the path is replaced only by a socket that
/// already listens.
pub(crate) fn socket_type_to_bind(fd: BorrowedFd<'_>, path: &Path) -> Result<SocketType> {
    match sys::unix_socket_type(fd) {
        Ok(Some(sock)) if sock.bound => Err(Error::invalid(format!(
            "descriptor {} is already bound (a socket binds once)",
            fd.as_raw_fd()
        ))),
        Ok(Some(sock)) => {
            let ty = SocketType::try_from(sock.ty)?;
            if ty != SocketType::Datagram && sys::is_connected(fd).unwrap_or(false) {
                return Err(connected(fd, path));
            }
            Ok(ty)
        }
        Ok(None) => Err(Error::invalid(format!(
            "descriptor {} is not a Unix domain socket",
            fd.as_raw_fd()
        ))),
        Err(e) => Err(Error::invalid(format!(
            "descriptor {} is not a socket: {}",
            fd.as_raw_fd(),
            strip_os_error_suffix(&e)
        ))),
    }
}

/// The error of `listen()` on the socket `fd` just bound at `path`: a connected socket's
/// `EINVAL` says so (the same error [`socket_type_to_bind`] gives), anything else is the
/// system's.
pub(crate) fn listen_failed(fd: BorrowedFd<'_>, path: &Path, e: &io::Error) -> Error {
    if e.raw_os_error() == Some(libc::EINVAL) && sys::is_connected(fd).unwrap_or(false) {
        return connected(fd, path).with_errno(e);
    }
    Error::system(format_args!("cannot listen on {}", show(path)), e)
}

fn connected(fd: BorrowedFd<'_>, path: &Path) -> Error {
    Error::invalid(format!(
        "cannot bind {}: descriptor {} is a connected socket, which cannot listen",
        show(path),
        fd.as_raw_fd()
    ))
}
