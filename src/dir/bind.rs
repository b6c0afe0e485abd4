//! Binding sockets inside a private directory.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::PathBuf;

use crate::dir::PrivateDir;
use crate::error::{Error, ErrorKind, Result, show};
use crate::name;
use crate::socket_type::{SocketType, socket_type_to_bind};
use crate::sys::{self, At, FileKind, Stat};

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
        let at_path = |e: Error| e.or_path(self.entry_path(&name));
        self.check_socket_path_len(&name).map_err(at_path)?;
        let fd = sys::unix_socket(ty.raw())
            .map_err(|e| Error::system("cannot create a Unix domain socket", &e))?;
        self.bind_steps(&name, fd.as_fd(), ty, backlog)
            .map_err(at_path)?;
        Ok(fd)
    }

    /// Binds a socket the caller made (an `AF_UNIX` socket of any type, not yet bound) at
    /// `<dir>/<name>` (`None`: `sock`), sets the file's mode to 0600 whatever the umask, and
    /// listens with `backlog` unless it is a datagram socket: [`bind`](PrivateDir::bind) for a
    /// descriptor the caller already owns (a language runtime's socket object, say), so that no
    /// descriptor ever changes hands. The descriptor stays the caller's.
    ///
    /// Fails with [`ErrorKind::Invalid`] when `fd` is not an unbound Unix domain socket, or is a
    /// connected stream or seqpacket socket (which cannot listen), before anything is made.
    pub fn bind_socket(
        &self,
        name: Option<&OsStr>,
        fd: BorrowedFd<'_>,
        backlog: Option<u32>,
    ) -> Result<()> {
        let name = name::socket_name(name)?;
        let at_path = |e: Error| e.or_path(self.entry_path(&name));
        self.check_socket_path_len(&name).map_err(at_path)?;
        let ty = socket_type_to_bind(fd, &self.entry_path(&name))?;
        self.bind_steps(&name, fd, ty, backlog).map_err(at_path)
    }

    /// The steps of binding, in order: bind at the name, make the file's mode 0600, listen,
    /// record the file's identity for cleanup. After the bind, a failure removes the file again.
    fn bind_steps(
        &self,
        name: &CString,
        fd: BorrowedFd<'_>,
        ty: SocketType,
        backlog: Option<u32>,
    ) -> Result<()> {
        self.bind_at(name, fd)?;
        let undo = |err: Error| {
            let _ = sys::unlink_at(At::Fd(self.dir.fd()), name, false);
            err
        };
        let id = self.secure_socket_file(name).map_err(undo)?;
        if ty != SocketType::Datagram {
            let backlog = match backlog {
                None | Some(0) => libc::SOMAXCONN,
                Some(n) => libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX),
            };
            sys::listen(fd, backlog).map_err(|e| {
                undo(crate::socket_type::listen_failed(
                    fd,
                    &self.entry_path(name),
                    &e,
                ))
            })?;
        }
        self.record(name.clone(), id);
        Ok(())
    }

    /// `bind()` at `<dir>/<name>`. A name already taken is [`ErrorKind::InUse`], and what is
    /// there is left alone.
    fn bind_at(&self, name: &CString, fd: BorrowedFd<'_>) -> Result<()> {
        // Where the system allows, the socket's mode is set before bind() gives it a file;
        // elsewhere, or when the umask took owner bits, secure_socket_file sets it by name.
        sys::preset_socket_mode(fd, self.socket_mode);
        let direct =
            self.path_c().to_bytes().len() + 1 + name.as_bytes().len() <= crate::MAX_SOCKET_PATH;
        let bound = if direct {
            sys::bind_unix(fd, &[self.path_c().to_bytes(), b"/", name.as_bytes()])
        } else {
            // A long path (checked to be allowed): through the directory's descriptor.
            sys::bind_unix_in(self.dir.fd(), fd, name.as_bytes())
        };
        bound.map_err(|e| {
            let path = show(&self.entry_path(name));
            if e.raw_os_error() == Some(libc::EADDRINUSE) {
                let what = sys::lstat_at(At::Fd(self.dir.fd()), name)
                    .map(|st| st.kind().describe())
                    .unwrap_or("something");
                Error::new(
                    ErrorKind::InUse,
                    format!(
                        "cannot bind {path}: the name is taken by {what}, which was left in place"
                    ),
                )
                .with_errno(&e)
            } else if e.raw_os_error() == Some(libc::EINVAL) {
                Error::invalid(format!(
                    "cannot bind {path}: the socket is already bound (a socket binds once)"
                ))
                .with_errno(&e)
            } else {
                Error::system(format_args!("cannot bind {path}"), &e)
            }
        })
    }

    /// Makes the socket file at `<dir>/<name>` mode 0600 (in a directory shared with a group:
    /// that group's, mode 0660) and returns its identity: checked with `lstat`, set by name
    /// when the umask or the system gave it another mode or group (Linux gives a new file the
    /// creator's effective gid, which a member by a supplementary group is not), checked again.
    /// Meanwhile a stream socket takes no connection (it listens afterwards), and the directory
    /// lets in no one but the user and the group's members.
    fn secure_socket_file(&self, name: &CStr) -> Result<Stat> {
        let at = At::Fd(self.dir.fd());
        let path = || show(&self.entry_path(name));
        let stat = || {
            sys::lstat_at(at, name)
                .map_err(|e| Error::system(format_args!("cannot stat {}", path()), &e))
        };
        let mut id = stat()?;
        let mode = self.socket_mode;
        let group = self.socket_group.unwrap_or(id.gid);
        if id.kind() == FileKind::Socket && id.gid != group {
            sys::chown_group_at(at, name, group).map_err(|e| {
                Error::system(format_args!("cannot give {} to group {group}", path()), &e)
            })?;
            id = stat()?;
        }
        if id.kind() == FileKind::Socket && id.perms() != mode {
            sys::chmod_at(at, name, mode).map_err(|e| {
                Error::system(format_args!("cannot set mode {mode:04o} on {}", path()), &e)
            })?;
            id = stat()?;
        }
        if id.kind() != FileKind::Socket || id.perms() != mode || id.gid != group {
            return Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "{} is {} with mode {:04o} and group {}, not a socket with mode {mode:04o} and group {group}",
                    path(),
                    id.kind().describe(),
                    id.perms(),
                    id.gid
                ),
            ));
        }
        Ok(id)
    }

    /// Remembers the socket file at `name` for cleanup; binding again at a name replaces it.
    fn record(&self, name: CString, id: Stat) {
        self.bound
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, id);
    }

    /// `<dir>/<name>`, for messages.
    fn entry_path(&self, name: &CStr) -> PathBuf {
        self.path().join(OsStr::from_bytes(name.to_bytes()))
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
        self.adopt_name(&name)
            .map_err(|e| e.or_path(self.entry_path(&name)))
    }

    fn adopt_name(&self, name: &CString) -> Result<()> {
        let name = name.clone();
        self.check_socket_path_len(&name)?;
        let path = || show(&self.entry_path(&name));
        let st = sys::lstat_at(At::Fd(self.dir.fd()), &name)
            .map_err(|e| Error::system(format_args!("cannot stat {}", path()), &e))?;
        if st.kind() != FileKind::Socket {
            return Err(Error::invalid(format!(
                "{} is {}, not a socket",
                path(),
                st.kind().describe()
            )));
        }
        if !crate::owner::is_callers(st.uid, self.euid) {
            return Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "socket {} is owned by {}, not by the effective user",
                    path(),
                    crate::owner::shown(st.uid)
                ),
            ));
        }
        let id = self.secure_socket_file(&name)?;
        self.record(name, id);
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
