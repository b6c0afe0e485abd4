//! Binding sockets inside a private directory.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixDatagram, UnixListener};

use crate::dir::PrivateDir;
use crate::error::{Error, ErrorKind, Result, show};
use crate::name;
use crate::sys::{self, At, FileKind};

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
    fn raw(self) -> libc::c_int {
        match self {
            SocketType::Stream => libc::SOCK_STREAM,
            SocketType::SeqPacket => libc::SOCK_SEQPACKET,
            SocketType::Datagram => libc::SOCK_DGRAM,
        }
    }
}

impl TryFrom<libc::c_int> for SocketType {
    type Error = Error;

    /// `0` and `SOCK_STREAM` are [`SocketType::Stream`]; `SOCK_SEQPACKET` and `SOCK_DGRAM` the
    /// others. Anything else, flags included, is [`ErrorKind::Invalid`].
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

impl PrivateDir {
    /// Creates a socket of `ty` (close-on-exec), binds it at `<dir>/<name>` (`None`: `sock`),
    /// sets the socket file's mode to 0600 whatever the umask, and listens with `backlog`
    /// (`None` or 0: `SOMAXCONN`; datagram sockets do not listen). Returns the descriptor.
    ///
    /// A name already taken is [`ErrorKind::InUse`]; the existing file is never removed. The
    /// socket file is removed by [`cleanup`](PrivateDir::cleanup), checked by device and inode.
    pub fn bind(
        &self,
        name: Option<&OsStr>,
        ty: SocketType,
        backlog: Option<u32>,
    ) -> Result<OwnedFd> {
        let name = name::socket_name(name)?;
        self.check_socket_path_len(&name)?;
        let path = || self.path().join(OsStr::from_bytes(name.as_bytes()));
        let fd = sys::unix_socket(ty.raw())
            .map_err(|e| Error::system("cannot create a Unix domain socket", &e))?;
        // The mode bind() will give the file, less what the umask removes; checked and, if the
        // umask took owner bits, set again below.
        sys::fchmod(fd.as_fd(), 0o600)
            .map_err(|e| Error::system("cannot set the mode of a new socket", &e))?;
        let parts = [self.path_c().to_bytes(), b"/", name.as_bytes()];
        if let Err(e) = sys::bind_unix(fd.as_fd(), &parts) {
            return Err(if e.raw_os_error() == Some(libc::EADDRINUSE) {
                let what = sys::lstat_at(At::Fd(self.dir.as_fd()), &name)
                    .map(|st| st.kind().describe())
                    .unwrap_or("something");
                Error::new(
                    ErrorKind::InUse,
                    format!(
                        "cannot bind {}: the name is taken by {what}, which was left in place",
                        show(&path())
                    ),
                )
                .with_errno(&e)
            } else {
                Error::system(format_args!("cannot bind {}", show(&path())), &e)
            });
        }
        // From here on the file is ours: remove it again if anything fails.
        let undo = |err: Error| {
            let _ = sys::unlink_at(At::Fd(self.dir.as_fd()), &name, false);
            err
        };
        let stat = || {
            sys::lstat_at(At::Fd(self.dir.as_fd()), &name).map_err(|e| {
                undo(Error::system(
                    format_args!("cannot stat {}", show(&path())),
                    &e,
                ))
            })
        };
        let mut id = stat()?;
        if id.perms() != 0o600 {
            // The umask removed owner bits: set the mode now, before listen(), so that no client
            // ever connects under another mode. Nobody else can reach the file in the 0700
            // directory, and the umask only ever made it stricter than 0600.
            sys::chmod_at(At::Fd(self.dir.as_fd()), &name, 0o600).map_err(|e| {
                undo(Error::system(
                    format_args!("cannot set mode 0600 on {}", show(&path())),
                    &e,
                ))
            })?;
            id = stat()?;
        }
        if id.kind() != FileKind::Socket || id.perms() != 0o600 {
            return Err(undo(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "{} is {} with mode {:04o} after bind, not a socket with mode 0600",
                    show(&path()),
                    id.kind().describe(),
                    id.perms()
                ),
            )));
        }
        if ty != SocketType::Datagram {
            let backlog = match backlog {
                None | Some(0) => libc::SOMAXCONN,
                Some(n) => libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX),
            };
            sys::listen(fd.as_fd(), backlog).map_err(|e| {
                undo(Error::system(
                    format_args!("cannot listen on {}", show(&path())),
                    &e,
                ))
            })?;
        }
        self.bound
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, id);
        Ok(fd)
    }

    /// Takes a socket the caller bound at [`socket_path`](PrivateDir::socket_path)`(name)` with
    /// its own socket library into usock's care: checks that `<dir>/<name>` is a socket owned by
    /// the effective user, sets its mode to 0600 whatever the umask, and records its device and
    /// inode so that [`cleanup`](PrivateDir::cleanup) removes exactly it. Call it after binding
    /// and before listening, so that no client connects under another mode.
    ///
    /// Fails with [`ErrorKind::Invalid`] for a bad name or when the file is not a socket,
    /// [`ErrorKind::Unsafe`] when it belongs to another user, [`ErrorKind::System`] (`ENOENT`)
    /// when nothing is there. Adopting the same socket twice is harmless.
    pub fn adopt(&self, name: Option<&OsStr>) -> Result<()> {
        let name = name::socket_name(name)?;
        self.check_socket_path_len(&name)?;
        let path = || self.path().join(OsStr::from_bytes(name.as_bytes()));
        let at = At::Fd(self.dir.as_fd());
        let stat = || {
            sys::lstat_at(at, &name)
                .map_err(|e| Error::system(format_args!("cannot stat {}", show(&path())), &e))
        };
        let mut id = stat()?;
        if id.kind() != FileKind::Socket {
            return Err(Error::invalid(format!(
                "{} is {}, not a socket",
                show(&path()),
                id.kind().describe()
            )));
        }
        if id.uid != sys::geteuid() {
            return Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "socket {} is owned by uid {}, not by the effective user",
                    show(&path()),
                    id.uid
                ),
            ));
        }
        if id.perms() != 0o600 {
            sys::chmod_at(at, &name, 0o600).map_err(|e| {
                Error::system(
                    format_args!("cannot set mode 0600 on {}", show(&path())),
                    &e,
                )
            })?;
            id = stat()?;
        }
        self.bound
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, id);
        Ok(())
    }

    /// A listening stream socket at `<dir>/<name>` (`None`: `sock`), as a `std` listener.
    pub fn listener(&self, name: Option<&OsStr>) -> Result<UnixListener> {
        self.bind(name, SocketType::Stream, None)
            .map(UnixListener::from)
    }

    /// A datagram socket bound at `<dir>/<name>` (`None`: `sock`), as a `std` socket.
    pub fn datagram(&self, name: Option<&OsStr>) -> Result<UnixDatagram> {
        self.bind(name, SocketType::Datagram, None)
            .map(UnixDatagram::from)
    }
}
