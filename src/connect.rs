//! Connecting to a socket by path, and probing whether a socket file still has a server.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::error::{Error, Result, show};
use crate::limits::{LONG_PATHS, too_long};
use crate::peer::Server;
use crate::socket_type::SocketType;
use crate::sys::{self, At, FileKind};

/// How [`connect_with`] connects: `ConnectOptions::default()` and the methods below.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectOptions {
    nonblocking: bool,
    server: Server,
}

impl ConnectOptions {
    /// Leave the socket non-blocking, and do not wait when the server's backlog is full
    /// (`EAGAIN` on Linux) or the connection is still under way (`EINPROGRESS`).
    pub fn nonblocking(mut self, on: bool) -> ConnectOptions {
        self.nonblocking = on;
        self
    }

    /// Connect only to a server running as `server` (by its credentials at `listen()`):
    /// anyone else is [`ErrorKind::Unsafe`](crate::ErrorKind::Unsafe) and the connection is
    /// closed. A client that checks never talks to a socket someone else put at the path.
    /// Stream and seqpacket sockets only: a datagram socket has no peer credentials.
    pub fn server(mut self, server: Server) -> ConnectOptions {
        self.server = server;
        self
    }
}

/// Connects a new socket of `ty` (close-on-exec) to the socket at `path` and returns it.
///
/// A path that does not fit in `sun_path` is [`ErrorKind::TooLong`](crate::ErrorKind::TooLong)
/// before anything is tried. A failed connection is [`ErrorKind::System`](crate::ErrorKind::System)
/// with the kernel's errno and a message saying what it means there: `ENOENT` (nothing at the
/// path), `ECONNREFUSED` (nobody is listening, or the file is not a socket: the message says
/// which), `EPROTOTYPE` (a socket of another type), `EACCES` (no write permission on the
/// socket or no search permission on a directory), `EAGAIN` (the server's backlog is full; Linux,
/// non-blocking only: a blocking connect waits, and macOS and the BSDs say `ECONNREFUSED`).
pub fn connect(path: impl AsRef<Path>, ty: SocketType) -> Result<OwnedFd> {
    connect_with(path, ty, ConnectOptions::default())
}

/// [`connect`] with options.
pub fn connect_with(
    path: impl AsRef<Path>,
    ty: SocketType,
    options: ConnectOptions,
) -> Result<OwnedFd> {
    let path = path.as_ref();
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        return Err(Error::invalid("cannot connect to an empty path"));
    }
    if bytes.contains(&0) {
        return Err(Error::invalid(format!(
            "cannot connect to {}: a path cannot contain a NUL byte",
            show(path)
        )));
    }
    if bytes.len() >= sys::SUN_PATH_LEN && !LONG_PATHS {
        return Err(
            too_long(format_args!("socket path {}", show(path)), bytes.len()).or_path(path),
        );
    }
    if ty == SocketType::Datagram && options.server != Server::Any {
        return Err(Error::invalid(
            "a datagram socket has no peer credentials, so the server cannot be checked; connect without the check, or use a stream socket",
        ));
    }
    let fd = sys::unix_socket(ty.raw())
        .map_err(|e| Error::system("cannot create a Unix domain socket", &e))?;
    if options.nonblocking {
        sys::set_nonblocking(fd.as_fd(), true)
            .map_err(|e| Error::system("cannot make the socket non-blocking", &e))?;
    }
    match connect_by_path(fd.as_fd(), bytes) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::ENAMETOOLONG) => {
            // (One expression: before Rust 1.89 the temporaries of format_args! live only
            // until the end of a `let`.)
            return Err(too_long(
                format_args!(
                    "socket path {} (its name alone, even through its directory's descriptor)",
                    show(path)
                ),
                bytes.len(),
            )
            .or_path(path));
        }
        Err(e) => return Err(connect_error(path, ty, &e).or_path(path)),
    }
    options
        .server
        .check(fd.as_fd(), path)
        .map_err(|e| e.or_path(path))?;
    Ok(fd)
}

/// `connect()` to the socket at `path`. A path longer than `sun_path` is reached through a
/// descriptor of its directory (Linux: `/proc/thread-self/fd/<dir>/<name>`, the calling
/// thread's table; FreeBSD: `connectat`);
/// elsewhere, or when the name alone is too long, or without `/proc`, it is `ENAMETOOLONG`.
fn connect_by_path(fd: BorrowedFd<'_>, path: &[u8]) -> io::Result<()> {
    if path.len() < sys::SUN_PATH_LEN || !LONG_PATHS {
        return sys::connect_unix(fd, &[path]);
    }
    let cut = path.iter().rposition(|&b| b == b'/');
    let (dir, name) = match cut {
        Some(0) => (&b"/"[..], &path[1..]),
        Some(at) => (&path[..at], &path[at + 1..]),
        None => return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG)),
    };
    let dir =
        std::ffi::CString::new(dir).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let handle = sys::open_dir_path(&dir)?;
    sys::connect_unix_in(handle.as_fd(), fd, name)
}

/// The error for a failed `connect()` to `path`: the errno kept, and what it means there.
fn connect_error(path: &Path, ty: SocketType, err: &io::Error) -> Error {
    let errno = err.raw_os_error().unwrap_or(0);
    let why = match errno {
        libc::ENOENT => "nothing is there".to_owned(),
        libc::ECONNREFUSED => match sys::lstat_at(At::Cwd, &cstring(path)) {
            Ok(st) if st.kind() != FileKind::Socket => {
                format!("it is {}, not a socket", st.kind().describe())
            }
            _ => "nobody is listening there (the socket is stale, or its backlog is full on macOS and the BSDs)".to_owned(),
        },
        libc::EPROTOTYPE => format!(
            "the socket there is not of type {} (try another socket type)",
            ty.c_name()
        ),
        libc::EACCES | libc::EPERM => {
            "permission denied (connecting needs write permission on the socket and search permission on every directory above it)".to_owned()
        }
        libc::EAGAIN => "the server's backlog is full".to_owned(),
        libc::EINPROGRESS => "the connection is still under way".to_owned(),
        libc::ENOTDIR => "a component of the path is not a directory".to_owned(),
        libc::ELOOP => "too many symbolic links on the way".to_owned(),
        _ => {
            return Error::system(
                format_args!("cannot connect to {}", show(path)),
                err,
            );
        }
    };
    Error::system_errno(format!("cannot connect to {}: {why}", show(path)), errno)
}

fn cstring(path: &Path) -> std::ffi::CString {
    std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap_or_default()
}

/// What a probe of a socket file found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// A server answered a connection of this type (or is too busy to take one now).
    Answers(SocketType),
    /// Nobody is listening: every type the kernel would accept was refused.
    Stale,
}

/// Connects to the socket at the path made of `parts` without waiting, with each socket type in
/// turn until the kernel says which it is, and closes the connection at once. Only
/// `ECONNREFUSED` makes it [`Probe::Stale`]; a full backlog (`EAGAIN`) is an answer. On macOS
/// and the BSDs a full backlog is `ECONNREFUSED` too, so a refusal there is asked again a few
/// times over about a tenth of a second before it counts.
///
/// A server that answers sees a connection that closes at once.
pub(crate) fn probe(path: &[u8]) -> io::Result<Probe> {
    const TYPES: [SocketType; 3] = [
        SocketType::Stream,
        SocketType::SeqPacket,
        SocketType::Datagram,
    ];
    let refusals_needed = if sys::REFUSAL_IS_CERTAIN { 1 } else { 4 };
    let mut wrong_type = None;
    for ty in TYPES {
        let mut refusals = 0;
        loop {
            let fd = sys::unix_socket(ty.raw())?;
            sys::set_nonblocking(fd.as_fd(), true)?;
            match connect_by_path(fd.as_fd(), path) {
                Ok(()) => return Ok(Probe::Answers(ty)),
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN | libc::EINPROGRESS) => return Ok(Probe::Answers(ty)),
                    Some(libc::EPROTOTYPE) => {
                        wrong_type = Some(e);
                        break;
                    }
                    Some(libc::ECONNREFUSED) => {
                        refusals += 1;
                        if refusals >= refusals_needed {
                            return Ok(Probe::Stale);
                        }
                        std::thread::sleep(std::time::Duration::from_millis(30));
                    }
                    _ => return Err(e),
                },
            }
        }
    }
    Err(wrong_type.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EPROTOTYPE)))
}
