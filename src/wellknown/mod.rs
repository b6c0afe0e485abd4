//! Well-known paths: a server listening at a path the caller chose (`/run/user/1000/app.sock`),
//! started, restarted, replaced and stopped without ever deleting another server's socket.
//!
//! Every change at a path `P` happens under an exclusive lock on `P.lock` (see [`lock`]): examining
//! what is at `P`, binding, renaming a new socket over a stale one or a replaced server, removing
//! it at the end. A socket at `P` is only ever replaced by a `rename()` of a socket that already
//! listens, so a bind or listen that fails leaves `P` as it was. The directory of `P` must be one
//! that nobody but the user (and root) can write to, or another user could take the name first.

mod lock;

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use crate::connect::{Probe, probe};
use crate::error::{Error, ErrorKind, Result, show};
use crate::hooks::{self, Point};
use crate::limits::too_long;
use crate::name;
use crate::parent::{self, Parent, check_well_known_dir};
use crate::socket_type::SocketType;
use crate::sys::process::Creator;
use crate::sys::{self, At, FileKind, Stat};
use lock::{PathLock, lock_name};

/// What to do when a live server already answers at the path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindMode {
    /// Refuse with [`ErrorKind::InUse`] and leave it alone (a stale socket is replaced, as in
    /// [`Replace`](BindMode::Replace) mode: by a rename once the new socket listens).
    #[default]
    Exclusive,
    /// Take over: bind and listen at a fresh name beside the path, then `rename()` it over the
    /// path, so that a client never finds the path without a listening socket. The old server
    /// keeps its connections, but connections still in its backlog are its to accept: it should
    /// stop accepting only once its backlog is drained.
    Replace,
}

/// A socket bound at a well-known path; removes the path again (if it is still this socket)
/// when [`unbind`](BoundPath::unbind) is called or it is dropped.
///
/// Made by [`BoundPath::bind`], [`BoundPath::bind_socket`] or [`BoundPath::listener`]. The
/// descriptor is the caller's; this value holds the path's directory and, on Linux, an `O_PATH`
/// handle on the bound file (two descriptors).
#[derive(Debug)]
pub struct BoundPath {
    /// `P` as the caller gave it (made absolute), for [`path`](BoundPath::path) and messages.
    path: PathBuf,
    /// `P` resolved: its directory with no symbolic links in it, and the last component.
    target: Target,
    id: Stat,
    /// A handle on the bound file that keeps its inode allocated, so that once the socket is
    /// gone (a successor removed it as stale) its number cannot go to a new file that unbind
    /// would take for it. `None` where the system cannot open a socket file (no `O_PATH`).
    pin: Option<OwnedFd>,
    creator: Creator,
    done: bool,
}

/// A well-known path, resolved: its checked directory and the name in it.
#[derive(Debug)]
struct Target {
    parent: Parent,
    name: CString,
    lock_name: CString,
    euid: u32,
}

impl Target {
    /// Resolves `path`: its directory must pass the usual checks and be writable by nobody but
    /// its owner, and the resolved path must fit in `sun_path`.
    fn resolve(path: &Path) -> Result<Target> {
        let bytes = path.as_os_str().as_bytes();
        if bytes.is_empty() {
            return Err(Error::invalid("the socket path is empty"));
        }
        // The last component as written: `Path` drops a final `.` (so "d/x/." would be
        // "d/x"), and a final `/` or `..` names a directory, never a socket file.
        let last = bytes.rsplit(|&b| b == b'/').next().unwrap_or(bytes);
        let name = match path.file_name() {
            Some(name) if name.as_bytes() == last => name,
            _ => {
                return Err(Error::invalid(format!(
                    "{} does not end in a file name",
                    show(path)
                )));
            }
        };
        let name = name::socket_name(Some(name))?;
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("/"),
        };
        let euid = crate::owner::caller()?;
        let parent = parent::open_checked(dir, euid)?;
        check_well_known_dir(parent.stat(), parent.path()).map_err(|e| {
            Error::new(
                ErrorKind::Unsafe,
                format!(
                    "cannot use {} as a well-known socket path: {}",
                    show(path),
                    e.message()
                ),
            )
        })?;
        let target = Target {
            lock_name: lock_name(&name),
            name,
            parent,
            euid,
        };
        let len = target.real().as_os_str().len();
        if len > crate::MAX_SOCKET_PATH {
            return Err(too_long(
                format_args!("socket path {}", show(&target.real())),
                len,
            ));
        }
        Ok(target)
    }

    /// The resolved path: what usock binds and connects to.
    fn real(&self) -> PathBuf {
        self.parent
            .path()
            .join(OsStr::from_bytes(self.name.to_bytes()))
    }

    /// How long a name beside the path may be while its full path still fits in `sun_path`
    /// (the path itself fits, so at least as long as its own name).
    fn temp_name_room(&self) -> usize {
        let dir = self.parent.path().as_os_str().len();
        let beside = crate::MAX_SOCKET_PATH.saturating_sub(dir + usize::from(dir > 1));
        beside.max(self.name.as_bytes().len())
    }

    fn entry(&self, name: &CStr) -> PathBuf {
        self.parent.path().join(OsStr::from_bytes(name.to_bytes()))
    }

    fn at(&self) -> At<'_> {
        At::Fd(self.parent.fd())
    }

    fn lock(&self) -> Result<PathLock> {
        PathLock::acquire(
            self.parent.fd(),
            &self.lock_name,
            &self.entry(&self.lock_name),
            self.euid,
        )
    }

    /// Under the lock: what is at the path, and may a new socket go there? Nothing there, or a
    /// stale socket of the user: yes. A live server: only in replace mode. Anything else is
    /// [`ErrorKind::InUse`]. Nothing is removed here: a socket at the path is replaced by a
    /// rename once the new one listens (see [`Room`]).
    fn examine(&self, mode: BindMode) -> Result<Room> {
        let path = self.real();
        let st = match sys::lstat_at(self.at(), &self.name) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Room::Free),
            Err(e) => {
                return Err(Error::system(
                    format_args!("cannot stat {}", show(&path)),
                    &e,
                ));
            }
        };
        let in_use = |what: String| {
            Error::new(
                ErrorKind::InUse,
                format!("cannot bind {}: {what}; it was left in place", show(&path)),
            )
        };
        if st.kind() != FileKind::Socket {
            return Err(in_use(format!("it is {}", st.kind().describe())));
        }
        if !crate::owner::is_callers(st.uid, self.euid) {
            let owner = crate::owner::shown(st.uid);
            return Err(in_use(format!("it is a socket owned by {owner}")));
        }
        let found = probe(path.as_os_str().as_bytes()).map_err(|e| {
            Error::system(
                format_args!("cannot probe the socket at {}", show(&path)),
                &e,
            )
        })?;
        match (found, mode) {
            (Probe::Answers(_), BindMode::Replace) => Ok(Room::Live),
            (Probe::Answers(ty), BindMode::Exclusive) => Err(in_use(format!(
                "a server answers there ({}); pass the replace mode to take over from it",
                ty.c_name()
            ))),
            (Probe::Stale, _) => {
                // Pinned until the rename (where the system can pin a file): while the pin is
                // open, the inode number cannot go to a file that replaced it meanwhile, so the
                // identity checked before the rename is still this socket's.
                let pin = sys::pin_file(self.at(), &self.name).ok().flatten();
                if let Some(pin) = &pin {
                    if !sys::fstat(pin.as_fd()).is_ok_and(|now| now.same_file(&st)) {
                        return Err(in_use("it changed while it was examined".to_owned()));
                    }
                }
                Ok(Room::Stale { id: st, _pin: pin })
            }
        }
    }

    /// Removes temporary sockets that binds at paths in this directory left when they died between
    /// their bind and their rename (a crash, `SIGKILL`): names of a dot and 13 characters of
    /// usock's alphabet, sockets of the user, unchanged for a minute ([`hooks::leftover_age`]),
    /// that refuse connections. A younger one may be another path's bind in progress (each path has
    /// its own lock), bound and not yet listening. A well-known path's own socket is never one: not
    /// this path's, nor one with a lock file beside it (a name of that pattern given as a path).
    /// Called under the lock before a temporary name is used; best effort: what cannot be examined
    /// stays.
    fn remove_leftovers(&self) {
        let names = sys::open_dir_read(self.at(), c".")
            .and_then(sys::DirHandle::new)
            .and_then(|mut dir| dir.list())
            .unwrap_or_default();
        let locked = |name: &CStr| names.iter().any(|other| **other == *lock_name(name));
        for name in &names {
            if !name::is_temp_name(name.to_bytes()) || **name == *self.name || locked(name) {
                continue;
            }
            let Ok(st) = sys::lstat_at(self.at(), name) else {
                continue;
            };
            if st.kind() != FileKind::Socket
                || !crate::owner::is_callers(st.uid, self.euid)
                || sys::now_seconds().saturating_sub(st.changed) < hooks::leftover_age()
            {
                continue;
            }
            let path = self.entry(name);
            if matches!(probe(path.as_os_str().as_bytes()), Ok(Probe::Stale))
                && sys::lstat_at(self.at(), name).is_ok_and(|now| now.same_file(&st))
            {
                let _ = sys::unlink_at(self.at(), name, false);
            }
        }
    }

    /// Binds `fd` at `name` in the directory, makes the file 0600 and listens; returns the
    /// file's identity and its pin. After the bind, a failure removes the file again. The
    /// caller's mistakes (a socket bound or connected meanwhile) name the path asked for, not
    /// a temporary name.
    fn bind_at(
        &self,
        name: &CStr,
        fd: BorrowedFd<'_>,
        ty: SocketType,
        backlog: Option<u32>,
    ) -> Result<Bound> {
        let path = self.entry(name);
        sys::preset_socket_mode(fd, 0o600);
        sys::bind_unix(fd, &[path.as_os_str().as_bytes()]).map_err(|e| {
            if e.raw_os_error() == Some(libc::EADDRINUSE) {
                Error::new(
                    ErrorKind::InUse,
                    format!("cannot bind {}: the name was taken meanwhile", show(&path)),
                )
                .with_errno(&e)
            } else if e.raw_os_error() == Some(libc::EINVAL) {
                // The caller's mistake: named by the path asked for, not a temporary name.
                Error::invalid(format!(
                    "cannot bind {}: the socket is already bound (a socket binds once)",
                    show(&self.real())
                ))
                .with_errno(&e)
            } else {
                Error::system(format_args!("cannot bind {}", show(&path)), &e)
            }
        })?;
        let secured = self.secure(name, &path).and_then(|bound| {
            if ty != SocketType::Datagram {
                sys::listen(fd, listen_backlog(backlog))
                    .map_err(|e| crate::socket_type::listen_failed(fd, &self.real(), &e))?;
            }
            Ok(bound)
        });
        if secured.is_err() {
            let _ = sys::unlink_at(self.at(), name, false);
        }
        secured
    }

    /// Makes the socket file at `name` mode 0600 and returns its identity and its pin (see
    /// [`BoundPath`]'s `pin`). The identity is the pin's `fstat` where the system can pin a
    /// file: opened with `O_NOFOLLOW`, a link would be pinned as the link, so this is the same
    /// check as an `lstat` of the name (which the other systems make), in one call fewer.
    fn secure(&self, name: &CStr, path: &Path) -> Result<Bound> {
        let pin = sys::pin_file(self.at(), name).ok().flatten();
        let stat = |pin: &Option<OwnedFd>| {
            match pin {
                Some(pin) => sys::fstat(pin.as_fd()),
                None => sys::lstat_at(self.at(), name),
            }
            .map_err(|e| Error::system(format_args!("cannot stat {}", show(path)), &e))
        };
        let mut id = stat(&pin)?;
        if id.kind() == FileKind::Socket && id.perms() != 0o600 {
            sys::chmod_at(self.at(), name, 0o600).map_err(|e| {
                Error::system(format_args!("cannot set mode 0600 on {}", show(path)), &e)
            })?;
            id = stat(&pin)?;
        }
        if !crate::owner::is_callers_file(&id, FileKind::Socket, Some(0o600), self.euid) {
            return Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "{} is {} with mode {:04o} owned by {}, not a socket of uid {} with mode 0600",
                    show(path),
                    id.kind().describe(),
                    id.perms(),
                    crate::owner::shown(id.uid),
                    self.euid
                ),
            ));
        }
        Ok(Bound { id, pin })
    }

    /// Binds and listens at a fresh name beside the path, as long as `sun_path` allows (a dot
    /// and 13 random characters where they fit), then renames it over the path: replace mode,
    /// and a stale socket in either mode. A stale socket must still be the file examined
    /// (`stale`) when the rename comes; if anything else is there by then, the new socket is
    /// removed and the path left as it is ([`ErrorKind::InUse`]).
    fn bind_and_rename(
        &self,
        shown: &Path,
        fd: BorrowedFd<'_>,
        ty: SocketType,
        backlog: Option<u32>,
        stale: Option<&Stat>,
    ) -> Result<Bound> {
        let mut attempts = 0;
        let (temp, bound) = loop {
            attempts += 1;
            let temp = name::random_temp_name(self.temp_name_room())
                .map_err(|e| Error::system("cannot read the OS random source", &e))?;
            match self.bind_at(&temp, fd, ty, backlog) {
                Ok(bound) => break (temp, bound),
                Err(e) if e.kind() == ErrorKind::InUse && attempts < 16 => continue,
                Err(e) => return Err(e),
            }
        };
        hooks::at(Point::BeforeRename, shown);
        if let Some(stale) = stale {
            // Only the user can change entries here, and the lock keeps the user's other usock
            // processes out: this catches the user's own other code.
            match sys::lstat_at(self.at(), &self.name) {
                Ok(now) if now.same_file(stale) => {}
                _ => {
                    let _ = sys::unlink_at(self.at(), &temp, false);
                    return Err(Error::new(
                        ErrorKind::InUse,
                        format!(
                            "cannot bind {}: the stale socket there changed while it was examined; it was left in place",
                            show(&self.real())
                        ),
                    ));
                }
            }
        }
        if let Err(e) = sys::rename_at(self.at(), &temp, &self.name) {
            let _ = sys::unlink_at(self.at(), &temp, false);
            return Err(Error::system(
                format_args!(
                    "cannot rename {} over {}",
                    show(&self.entry(&temp)),
                    show(&self.real())
                ),
                &e,
            ));
        }
        // The pin follows the file: it is the same inode under its new name.
        Ok(bound)
    }
}

/// What is at a well-known path, under its lock, when a new socket may go there.
enum Room {
    /// Nothing: the new socket binds at the name itself (exclusive mode).
    Free,
    /// A stale socket of the user, this file (pinned where the system can): the new socket
    /// listens beside it first and is renamed over it, so that a bind or listen that fails (a
    /// descriptor the caller shares, connected or bound meanwhile by another holder) leaves it
    /// in place.
    Stale { id: Stat, _pin: Option<OwnedFd> },
    /// A live server, in replace mode: the new socket is renamed over it.
    Live,
}

/// A socket file just bound: its identity, and the handle that pins it where the system has
/// one (see [`BoundPath`]'s `pin`).
struct Bound {
    id: Stat,
    pin: Option<OwnedFd>,
}

/// `path` made absolute against the current directory when it is relative (an empty path stays
/// empty, for [`Target::resolve`] to refuse).
fn absolute(path: &Path) -> Result<PathBuf> {
    if path.is_relative() && !path.as_os_str().is_empty() {
        Ok(std::env::current_dir()
            .map_err(|e| Error::system("cannot read the current directory", &e))?
            .join(path))
    } else {
        Ok(path.to_owned())
    }
}

fn listen_backlog(backlog: Option<u32>) -> libc::c_int {
    match backlog {
        None | Some(0) => libc::SOMAXCONN,
        Some(n) => libc::c_int::try_from(n).unwrap_or(libc::c_int::MAX),
    }
}

impl BoundPath {
    /// Creates a socket of `ty` (close-on-exec), binds it at `path`, sets the file's mode to
    /// 0600 and listens with `backlog` (`None` or 0: `SOMAXCONN`; datagram sockets do not
    /// listen). Returns the handle that removes the path again, and the socket.
    ///
    /// The path's directory must pass the checks of
    /// [`PrivateDir::in_parent`](crate::PrivateDir::in_parent) and be writable by nobody but its
    /// owner ([`ErrorKind::Unsafe`] otherwise). The resolved path must fit in `sun_path`
    /// ([`ErrorKind::TooLong`]). Under the lock `<path>.lock`: a stale socket of the user (one that
    /// refuses connections) is replaced, by a rename of the new socket once it listens beside it; a
    /// live server is [`ErrorKind::InUse`] unless `mode` is [`BindMode::Replace`]; anything else at
    /// the path (a file, another user's socket) is [`ErrorKind::InUse`] and left alone. A bind that
    /// died between its bind and its rename leaves its socket at a temporary name (a dot and 13
    /// random characters) beside the path; a later bind in the directory that uses a temporary name
    /// removes it once it is a minute old and refuses connections (a name shortened to fit
    /// `sun_path` stays).
    ///
    /// To tell a live server from a stale socket, usock connects to it: a live server at the
    /// path sees one connection that closes at once, without a byte (the probe). A server must
    /// survive a peer that hangs up (`EPIPE`, `ECONNRESET`, end of file on that connection).
    pub fn bind(
        path: impl AsRef<Path>,
        ty: SocketType,
        backlog: Option<u32>,
        mode: BindMode,
    ) -> Result<(BoundPath, OwnedFd)> {
        let fd = sys::unix_socket(ty.raw())
            .map_err(|e| Error::system("cannot create a Unix domain socket", &e))?;
        let bound = BoundPath::bind_typed(absolute(path.as_ref())?, fd.as_fd(), ty, backlog, mode)?;
        Ok((bound, fd))
    }

    /// [`bind`](BoundPath::bind) for a socket the caller made (an unbound `AF_UNIX` socket of
    /// any type), which stays the caller's. A socket already bound, or a connected stream or
    /// seqpacket socket (which cannot listen), is [`ErrorKind::Invalid`] before anything is
    /// made (not even the lock file). Whatever happens to the descriptor meanwhile (it may be
    /// shared), a call that fails leaves a stale socket at the path in place: it is replaced
    /// only by a rename of the new socket once that listens.
    pub fn bind_socket(
        path: impl AsRef<Path>,
        fd: BorrowedFd<'_>,
        backlog: Option<u32>,
        mode: BindMode,
    ) -> Result<BoundPath> {
        let path = absolute(path.as_ref())?;
        let ty = crate::socket_type::socket_type_to_bind(fd, &path)?;
        BoundPath::bind_typed(path, fd, ty, backlog, mode)
    }

    /// [`bind_socket`](BoundPath::bind_socket) at the absolute `path` for a socket of type
    /// `ty`, checked or just made.
    fn bind_typed(
        path: PathBuf,
        fd: BorrowedFd<'_>,
        ty: SocketType,
        backlog: Option<u32>,
        mode: BindMode,
    ) -> Result<BoundPath> {
        let target = Target::resolve(&path).map_err(|e| e.or_path(&path))?;
        let Bound { id, pin } = {
            let _lock = target.lock().map_err(|e| e.or_path(&path))?;
            let room = target.examine(mode).map_err(|e| e.or_path(&path))?;
            hooks::at(Point::AfterProbe, &path);
            // Beside the path and renamed over it, unless nothing is there in exclusive mode;
            // over a stale socket, its identity checked first (`room` keeps its pin till then).
            let rename_over = match &room {
                Room::Free if mode == BindMode::Exclusive => None,
                Room::Stale { id, .. } => Some(Some(id)),
                Room::Free | Room::Live => Some(None),
            };
            match rename_over {
                None => target.bind_at(&target.name, fd, ty, backlog),
                Some(stale) => {
                    target.remove_leftovers();
                    target.bind_and_rename(&path, fd, ty, backlog, stale)
                }
            }
            .map_err(|e| e.or_path(&path))?
        };
        Ok(BoundPath {
            path,
            target,
            id,
            pin,
            creator: Creator::current(),
            done: false,
        })
    }

    /// A listening stream socket at `path`, as a `std` listener: [`bind`](BoundPath::bind)
    /// with [`SocketType::Stream`] and the default backlog.
    pub fn listener(path: impl AsRef<Path>, mode: BindMode) -> Result<(BoundPath, UnixListener)> {
        let (bound, fd) = BoundPath::bind(path, SocketType::Stream, None, mode)?;
        Ok((bound, UnixListener::from(fd)))
    }

    /// The path, as given (made absolute against the current directory when it was relative).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the path, under its lock, if it is still the socket this server bound (same
    /// device and inode); a socket that another server renamed over it since is left alone,
    /// and so is anything else. Nothing is removed in a process other than the one that bound it
    /// (a child after `fork`). The lock file stays.
    ///
    /// Fails with [`ErrorKind::InUse`] when another process holds the lock for over a second;
    /// the path is then left in place.
    pub fn unbind(mut self) -> Result<()> {
        self.unbind_now().map_err(|e| e.or_path(&self.path))
    }

    fn unbind_now(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.done, true) || !self.creator.is_current() {
            return Ok(());
        }
        // Held until the check below is done: the inode it pins cannot be another file's.
        let _pin = self.pin.take();
        let target = &self.target;
        let _lock = target.lock()?;
        match sys::lstat_at(target.at(), &target.name) {
            Ok(st) if st.kind() == FileKind::Socket && st.same_file(&self.id) => {
                sys::unlink_at(target.at(), &target.name, false).map_err(|e| {
                    Error::system(format_args!("cannot remove {}", show(&target.real())), &e)
                })
            }
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            Err(e) => Err(Error::system(
                format_args!("cannot stat {}", show(&target.real())),
                &e,
            )),
        }
    }
}

impl Drop for BoundPath {
    /// [`unbind`](BoundPath::unbind), ignoring errors.
    fn drop(&mut self) {
        let _ = self.unbind_now();
    }
}
