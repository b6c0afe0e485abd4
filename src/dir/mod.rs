//! The private directory: made with an unpredictable name and mode 0700 in a checked parent,
//! and removed again with nothing but what usock made.
//!
//! This folder is the directory and what lives in it: this file creates it and owns the
//! handle's fields (private to `dir/`); [`bind`] binds and adopts sockets in it, [`cleanup`]
//! removes it, [`keep`] marks it kept, [`handoff`] hands it to another process, [`share`]
//! shares it with a group, [`sweep`] removes those left behind in a parent, and [`lock`]
//! is the lock every live handle holds. Below it: `parent` (the walk), `limits`, `connect`
//! (the probe) and `sys`.

mod bind;
mod cleanup;
pub(crate) mod handoff;
pub(crate) mod keep;
mod lock;
mod share;
pub(crate) mod sweep;

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Result, show, show_bytes};
use crate::limits::{LONG_PATHS, MAX_SOCKET_PATH, check_parent_len, too_long};
use crate::name::{self, DEFAULT_SOCKET_NAME, DIR_NAME_LEN};
use crate::owner;
use crate::parent::{self, Parent};
use crate::sys::process::Creator;
use crate::sys::{self, At, FileKind, Stat};

/// The mode of a directory shared with a group: its members can reach a socket whose name they
/// know, but cannot list the directory or create anything in it.
pub(crate) const SHARED_DIR_MODE: u32 = 0o710;

/// How to make a private directory: [`PrivateDir::create_with`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirOptions {
    long_paths: bool,
    group: Option<u32>,
}

impl DirOptions {
    /// Allow socket paths longer than `sun_path` (a directory under a deep parent): usock binds
    /// them through `/proc/thread-self/fd/<dir>/<name>` (the calling thread's descriptor table;
    /// `/proc/self/task/<tid>/fd` before Linux 3.17), so the name must fit in `sun_path` after
    /// that prefix, and [`connect`](crate::connect) reaches them through a descriptor of their
    /// directory. On FreeBSD they are bound with `bindat` and reached with `connectat`. Linux
    /// and FreeBSD only; elsewhere the flag changes nothing
    /// and such paths are [`ErrorKind::TooLong`].
    pub fn long_paths(mut self, on: bool) -> DirOptions {
        self.long_paths = on;
        self
    }

    /// Share the directory with group `gid` ([`PrivateDir::shared_with_group`]).
    pub fn share_with_group(mut self, gid: u32) -> DirOptions {
        self.group = Some(gid);
        self
    }
}

/// Fresh names tried when a name is taken before giving up with [`ErrorKind::Exhausted`].
/// With 65 random bits a single collision is already astronomically unlikely, so hitting this
/// means the random source is broken or someone can predict it: stop rather than loop.
const MAX_ATTEMPTS: usize = 16;

/// `mkdir` errors that make automatic choice move on to the next candidate: this place cannot
/// take a directory, another might.
const SKIPPABLE: &[i32] = &[
    libc::EACCES,
    libc::EPERM,
    libc::EROFS,
    libc::ENOSPC,
    libc::EDQUOT,
];

/// The sockets usock bound or adopted: name in the directory → identity of the file, so that
/// cleanup removes that file and no other. Binding again at a name replaces its entry. (A
/// B-tree, not a hash map: std's hash seeding would keep a descriptor of its own random source.)
pub(crate) type Bound = BTreeMap<CString, Stat>;

/// A private directory for Unix domain sockets.
///
/// Made by [`PrivateDir::new`] (automatic location) or [`PrivateDir::in_parent`]: a fresh
/// directory with an unpredictable name and mode 0700, owned by the effective user. Bind
/// sockets in it with [`bind`](PrivateDir::bind), or get a path for another socket library with
/// [`socket_path`](PrivateDir::socket_path). [`cleanup`](PrivateDir::cleanup) (or dropping
/// the value) removes the sockets and the directory, and nothing that usock did not make.
///
/// A `PrivateDir` may be shared between threads. After `fork`, the child's copy removes nothing
/// (also in a child that has its creator's pid number in another pid namespace).
///
/// Each holds two descriptors for its life: the parent (to remove the directory by name and
/// check that name) and the directory itself, open for reading, so that cleanup can list it
/// without opening anything, even at the process's descriptor limit.
#[derive(Debug)]
pub struct PrivateDir {
    /// The directory's path, NUL-terminated for the C ABI; [`PrivateDir::path`] borrows it.
    path_c: CString,
    name: CString,
    parent: OwnedFd,
    /// The directory, open for reading (listing, and the `*at` calls inside it).
    dir: sys::DirHandle,
    id: Stat,
    creator: Creator,
    euid: u32,
    bound: Mutex<Bound>,
    /// The mode of socket files: 0600, or 0660 in a directory shared with a group.
    socket_mode: u32,
    /// The group of socket files in a directory shared with a group: that group.
    socket_group: Option<u32>,
    /// Socket paths longer than `sun_path` are bound through `/proc/thread-self/fd` (Linux) or
    /// with `bindat` (FreeBSD).
    long_paths: bool,
    done: bool,
}

/// What automatic choice makes of one candidate before creating anything in it.
enum Screened {
    /// It passes the checks: automatic choice creates the directory there.
    Fits(Parent),
    /// Skipped, and why.
    Skipped(String),
}

/// The rule of automatic choice for one candidate: set, absolute, passing the parent checks,
/// with room for a socket path. An error other than an unsafe or unreadable parent stops the
/// choice.
fn screen(candidate: &parent::Candidate, euid: u32, long_paths: bool) -> Result<Screened> {
    if let Some(why) = candidate.ignored {
        return Ok(Screened::Skipped(why.to_string()));
    }
    let Some(path) = candidate.path.as_ref().filter(|p| !p.is_empty()) else {
        return Ok(Screened::Skipped("not set".to_string()));
    };
    let path = Path::new(path);
    if path.is_relative() {
        return Ok(Screened::Skipped("not an absolute path".to_string()));
    }
    let parent = match parent::open_checked(path, euid) {
        Ok(parent) => parent,
        Err(e) if e.kind() == ErrorKind::Unsafe || e.kind() == ErrorKind::System => {
            return Ok(Screened::Skipped(e.to_string()));
        }
        Err(e) => return Err(e),
    };
    Ok(match check_parent_len(parent.path(), long_paths) {
        Ok(()) => Screened::Fits(parent),
        Err(e) => Screened::Skipped(e.to_string()),
    })
}

/// One candidate of automatic choice ([`PrivateDir::create`] without a parent) and what the
/// choice makes of it: [`explain_automatic`].
#[derive(Debug)]
pub struct AutomaticCandidate {
    /// Where it comes from, with its value for a variable: "$XDG_RUNTIME_DIR (/run/user/1000)",
    /// "/tmp".
    pub label: String,
    /// What automatic choice makes of it.
    pub verdict: Verdict,
}

/// What automatic choice makes of a candidate.
#[derive(Debug)]
pub enum Verdict {
    /// Taken: the directory would be made here (the checked parent). Creating can still fail
    /// there (a read-only or full file system), and then the next candidate is tried.
    Taken(PathBuf),
    /// Skipped, and why (the words of [`ErrorKind::NoDir`]'s message).
    Skipped(String),
    /// The choice stops here with this error.
    Stops(Error),
}

/// Explains automatic choice, candidate by candidate in its order (`$XDG_RUNTIME_DIR`,
/// `$TMPDIR`, `/tmp`, `/var/tmp`; on macOS the per-user temporary directory first): each one
/// skipped and why, up to the one taken (or the error that stops the choice). Nothing is
/// created. The same rule as [`PrivateDir::create`] without a parent, which the `usock check`
/// command prints.
pub fn explain_automatic() -> Vec<AutomaticCandidate> {
    let euid = sys::geteuid();
    let mut out = Vec::new();
    for candidate in parent::candidates() {
        let verdict = match screen(&candidate, euid, false) {
            Ok(Screened::Fits(parent)) => Verdict::Taken(parent.into_path()),
            Ok(Screened::Skipped(why)) => Verdict::Skipped(why),
            Err(e) => Verdict::Stops(e),
        };
        let last = !matches!(verdict, Verdict::Skipped(_));
        out.push(AutomaticCandidate {
            label: candidate.label(),
            verdict,
        });
        if last {
            break;
        }
    }
    out
}

impl PrivateDir {
    /// Is this the process that created the directory (not a child forked from it)?
    pub(crate) fn in_creator(&self) -> bool {
        self.creator.is_current()
    }

    /// Makes a private directory at the automatic location: the first of `$XDG_RUNTIME_DIR`,
    /// `$TMPDIR`, `/tmp` and `/var/tmp` (on macOS, the per-user temporary directory first) that
    /// exists, passes the safety checks, leaves room for a socket path, and accepts a new
    /// directory. In a program running setuid or setgid
    /// (`AT_SECURE`), the two environment variables are ignored: the invoker sets them.
    ///
    /// Fails with [`ErrorKind::NoDir`] naming every candidate and why it was skipped.
    pub fn new() -> Result<PrivateDir> {
        PrivateDir::build(None, &DirOptions::default())
    }

    /// Makes a private directory in `parent`, which must pass the safety checks: it and every
    /// ancestor owned by root or the effective user, and any writable by group or others sticky.
    /// In a user namespace that does not map every uid, an owner shown as the overflow uid is
    /// neither, and running as that uid is refused.
    ///
    /// Fails with [`ErrorKind::Unsafe`] or [`ErrorKind::TooLong`] before creating anything.
    pub fn in_parent(parent: impl AsRef<Path>) -> Result<PrivateDir> {
        PrivateDir::build(Some(parent.as_ref()), &DirOptions::default())
    }

    /// A private directory in `parent` (`None`: the automatic location) with `options`: long
    /// socket paths (Linux, FreeBSD), sharing with a group.
    pub fn create_with(parent: Option<&Path>, options: &DirOptions) -> Result<PrivateDir> {
        PrivateDir::build(parent, options)
    }

    /// `new()` for `None`, `in_parent(p)` for `Some(p)`.
    pub fn create(parent: Option<&Path>) -> Result<PrivateDir> {
        PrivateDir::build(parent, &DirOptions::default())
    }

    /// The one constructor of a new private directory, which every public one forwards to: the
    /// group's membership checked before anything is made, the parent given (checked) or chosen
    /// automatically, the directory made in it ([`create_in`](PrivateDir::create_in)), then
    /// shared with the group if asked. (Taking over a directory another process made is
    /// [`handoff`]'s, through [`assemble`](PrivateDir::assemble).)
    fn build(parent: Option<&Path>, options: &DirOptions) -> Result<PrivateDir> {
        let long_paths = options.long_paths && LONG_PATHS;
        if let Some(gid) = options.group {
            share::check_member(gid)?;
        }
        let mut dir = match parent {
            Some(parent) => PrivateDir::in_given_parent(parent, long_paths)?,
            None => PrivateDir::in_automatic_parent(long_paths)?,
        };
        dir.long_paths = long_paths;
        if let Some(gid) = options.group {
            // On failure `dir` is dropped, which removes it.
            dir.share_with(gid).map_err(|e| e.or_path(dir.path()))?;
        }
        Ok(dir)
    }

    /// Automatic choice: the first candidate that passes [`screen`] and accepts a new directory.
    fn in_automatic_parent(long_paths: bool) -> Result<PrivateDir> {
        let euid = owner::caller()?;
        let mut skipped = Vec::new();
        for candidate in parent::candidates() {
            let label = candidate.label();
            let parent = match screen(&candidate, euid, long_paths)? {
                Screened::Fits(parent) => parent,
                Screened::Skipped(why) => {
                    skipped.push(format!("{label}: {why}"));
                    continue;
                }
            };
            match PrivateDir::create_in(parent, euid) {
                Err(e)
                    if e.kind() == ErrorKind::System
                        && e.raw_os_error().is_some_and(|n| SKIPPABLE.contains(&n)) =>
                {
                    skipped.push(format!("{label}: {e}"));
                }
                result => return result,
            }
        }
        Err(Error::new(
            ErrorKind::NoDir,
            format!(
                "no usable parent directory for a private socket directory: {}",
                skipped.join("; ")
            ),
        ))
    }

    /// The parent the caller gave: checked, with room for a socket path.
    fn in_given_parent(parent: &Path, long_paths: bool) -> Result<PrivateDir> {
        if parent.as_os_str().is_empty() {
            return Err(Error::invalid("the parent directory is an empty path"));
        }
        let euid = owner::caller().map_err(|e| e.or_path(parent))?;
        let checked = parent::open_checked(parent, euid).map_err(|e| e.or_path(parent))?;
        check_parent_len(checked.path(), long_paths).map_err(|e| e.or_path(parent))?;
        PrivateDir::create_in(checked, euid).map_err(|e| e.or_path(parent))
    }

    fn create_in(parent: Parent, euid: u32) -> Result<PrivateDir> {
        let mut lost = 0;
        loop {
            let name = make_fresh_dir(&parent)?;
            let path = parent.path().join(OsStr::from_bytes(name.to_bytes()));
            match open_and_lock_new_dir(&parent, &name, &path, euid) {
                Ok((dir, id)) => return Ok(PrivateDir::assemble(parent, name, dir, id, euid)),
                Err(NewDir::Removed(_)) if lost + 1 < MAX_LOST_RACES => lost += 1,
                Err(NewDir::Removed(e) | NewDir::Failed(e)) => return Err(e.or_path(&path)),
            }
        }
    }

    /// A handle on the directory `name` in `parent`, open as `dir` (with identity `id`), made or
    /// taken over by the calling process, which holds its lock already: the shared lock that
    /// tells a sweep the directory is in use. The open file holds it until every descriptor of
    /// it is closed, so it ends by itself when the process dies, and a forked child that keeps
    /// the descriptor holds it too. (A file system without locks leaves the directory unlocked;
    /// a sweep cannot lock it either, and keeps it.)
    pub(crate) fn assemble(
        parent: Parent,
        name: CString,
        dir: sys::DirHandle,
        id: Stat,
        euid: u32,
    ) -> PrivateDir {
        let path = parent.path().join(OsStr::from_bytes(name.to_bytes()));
        // A directory too deep for its default socket path was made (or is taken over) with
        // long paths; only Linux and FreeBSD can have one.
        let long_paths =
            LONG_PATHS && path.as_os_str().len() + 1 + DEFAULT_SOCKET_NAME.len() > MAX_SOCKET_PATH;
        PrivateDir {
            path_c: CString::new(path.into_os_string().into_vec()).expect("paths have no NUL"),
            name,
            parent: parent.into_fd(),
            dir,
            id,
            creator: Creator::current(),
            euid,
            bound: Mutex::new(Bound::new()),
            socket_mode: if id.perms() == SHARED_DIR_MODE {
                0o660
            } else {
                0o600
            },
            socket_group: (id.perms() == SHARED_DIR_MODE).then_some(id.gid),
            long_paths,
            done: false,
        }
    }

    /// The directory's path: absolute, with no symbolic links in it.
    pub fn path(&self) -> &Path {
        Path::new(OsStr::from_bytes(self.path_c.to_bytes()))
    }

    /// [`path`](PrivateDir::path) as a C string, for the C ABI.
    pub(crate) fn path_c(&self) -> &std::ffi::CStr {
        &self.path_c
    }

    /// Checks that `<dir>/<name>` fits in `sun_path` without building it.
    pub(crate) fn check_socket_path_len(&self, name: &CString) -> Result<()> {
        let len = self.path_c.as_bytes().len() + 1 + name.as_bytes().len();
        if self.long_paths && len > MAX_SOCKET_PATH {
            // Bound through the directory's descriptor: the name must fit there.
            if !sys::fits_in_dir(self.dir.fd(), name.as_bytes()) {
                return Err(too_long(
                    format_args!(
                        "socket name {} (even through its directory's descriptor)",
                        show_bytes(name.as_bytes())
                    ),
                    name.as_bytes().len(),
                ));
            }
            return Ok(());
        }
        if len > MAX_SOCKET_PATH {
            return Err(too_long(
                format_args!(
                    "socket path {}/{}",
                    show(self.path()),
                    show_bytes(name.as_bytes())
                ),
                len,
            ));
        }
        Ok(())
    }

    /// The path of socket `name` inside the directory (`None`: `sock`), for callers that bind
    /// with their own socket library. Fails with [`ErrorKind::Invalid`] for a name that is not
    /// one path component, and [`ErrorKind::TooLong`] when the path would not fit `sun_path`.
    pub fn socket_path(&self, name: Option<&OsStr>) -> Result<PathBuf> {
        let name = name::socket_name(name)?;
        self.socket_path_of(&name)
            .map_err(|e| e.or_path(self.path().join(OsStr::from_bytes(name.as_bytes()))))
    }

    pub(crate) fn socket_path_of(&self, name: &CString) -> Result<PathBuf> {
        let path = self.path().join(OsStr::from_bytes(name.to_bytes()));
        let len = path.as_os_str().len();
        if len > MAX_SOCKET_PATH {
            if self.long_paths {
                self.check_socket_path_len(name)?;
                return Ok(path);
            }
            return Err(too_long(format_args!("socket path {}", show(&path)), len));
        }
        Ok(path)
    }

    /// The address to bind or connect to socket `name` *in this process*: its path when that
    /// fits in `sun_path`, else (a directory made with long paths, Linux) the same socket
    /// through this handle's descriptor, `/proc/thread-self/fd/<fd>/<name>`: use that only in
    /// the calling thread or a thread that shares its descriptor table, and never hand it to
    /// another process: there it names another file, or none. On FreeBSD, which binds such paths
    /// with `bindat`, no path reaches them: [`ErrorKind::TooLong`] (bind through usock instead).
    pub fn socket_address(&self, name: Option<&OsStr>) -> Result<PathBuf> {
        let name = name::socket_name(name)?;
        let path = self.socket_path_of(&name)?;
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            if let Some(through) =
                sys::long_address(self.dir.fd(), OsStr::from_bytes(name.to_bytes()))
            {
                return Ok(through);
            }
            return Err(too_long(
                format_args!(
                    "socket path {} (no other path reaches it here: bind it through usock)",
                    show(&path)
                ),
                path.as_os_str().len(),
            ));
        }
        Ok(path)
    }
}

/// Times creation starts again with a fresh name when its new directory was removed before it
/// was locked (which only a sweep with grace period 0 does) before giving up with
/// [`ErrorKind::InUse`].
const MAX_LOST_RACES: usize = 4;

/// Makes a directory with a fresh random name and mode 0700 in `parent`; returns its name.
fn make_fresh_dir(parent: &Parent) -> Result<CString> {
    let at = At::Fd(parent.fd());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let name = name::random_dir_name()
            .map_err(|e| Error::system("cannot read the OS random source", &e))?;
        match sys::mkdir_at(at, &name, 0o700) {
            Ok(()) => return Ok(name),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && attempt < MAX_ATTEMPTS => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                return Err(Error::new(
                    ErrorKind::Exhausted,
                    format!(
                        "{MAX_ATTEMPTS} fresh random names in {} were all taken; the random source may be broken",
                        show(parent.path())
                    ),
                )
                .with_errno(&e)
                .or_path(parent.path()));
            }
            Err(e) => {
                return Err(Error::system(
                    format_args!("cannot create a directory in {}", show(parent.path())),
                    &e,
                )
                .or_path(parent.path()));
            }
        }
    }
}

/// Why a new directory could not be taken into a handle: it was removed (by a sweep) before it
/// was locked, or another failure. Either way nothing of it is left behind.
enum NewDir {
    Removed(Error),
    Failed(Error),
}

/// Opens and secures the directory `name` just made in `parent` ([`secure_new_dir`]), then takes
/// its shared lock and checks that the name still is that directory: a sweep (grace period 0)
/// that locked it before us may have removed it, and in a sticky parent another user may have
/// made the same name since. On failure, removes the directory if the name still is the one made.
fn open_and_lock_new_dir(
    parent: &Parent,
    name: &CString,
    path: &Path,
    euid: u32,
) -> std::result::Result<(sys::DirHandle, Stat), NewDir> {
    let at = At::Fd(parent.fd());
    crate::hooks::at(crate::hooks::Point::DirNamed, path);
    let (fd, id) = secure_new_dir(parent, name, path, euid).map_err(|e| {
        match sys::lstat_at(at, name) {
            // Removed before it could be opened.
            Err(gone) if gone.raw_os_error() == Some(libc::ENOENT) => {
                NewDir::Removed(removed_by_a_sweep(path))
            }
            // rmdir removes only an empty directory, and the name is ours (random, just made,
            // in a parent where others cannot rename entries).
            _ => {
                let _ = sys::unlink_at(at, name, true);
                NewDir::Failed(e)
            }
        }
    })?;
    crate::hooks::at(crate::hooks::Point::DirMade, path);
    let locked = lock::lock_dir(fd.as_fd(), sys::Lock::Shared, path);
    let named = still_named(at, name, &id);
    let undo = |e| {
        if named {
            let _ = sys::unlink_at(at, name, true);
        }
        NewDir::Failed(e)
    };
    locked.map_err(undo)?;
    if !named {
        return Err(NewDir::Removed(removed_by_a_sweep(path)));
    }
    let dir = sys::DirHandle::new(fd)
        .map_err(|e| Error::system(format_args!("cannot open {}", show(path)), &e))
        .map_err(undo)?;
    Ok((dir, id))
}

/// The error when a new directory was removed before it could be locked, as often as creation
/// tries (a sweep with grace period 0 in a loop): in use, whichever step lost the race.
fn removed_by_a_sweep(path: &Path) -> Error {
    Error::new(
        ErrorKind::InUse,
        format!(
            "new directory {} was removed (by a sweep with grace period 0) before it could be locked, {MAX_LOST_RACES} times",
            show(path)
        ),
    )
}

/// Does `name` in `at` still refer to the file `id` (not following a symlink)?
pub(crate) fn still_named(at: At<'_>, name: &CStr, id: &Stat) -> bool {
    sys::lstat_at(at, name).is_ok_and(|named| named.same_file(id))
}

/// Opens the directory just made for reading, without following symlinks, and makes sure it is
/// what we asked for: a directory, owned by us, mode exactly 0700 (set through the descriptor
/// when the umask took bits away or the parent's setgid bit added one).
fn secure_new_dir(
    parent: &Parent,
    name: &CString,
    path: &Path,
    euid: u32,
) -> Result<(OwnedFd, Stat)> {
    let at = At::Fd(parent.fd());
    let cannot_open = |e| Error::system(format_args!("cannot open {}", show(path)), &e);
    let cannot_chmod =
        |e| Error::system(format_args!("cannot set mode 0700 on {}", show(path)), &e);
    let stat = |dir: &OwnedFd| {
        let st = sys::fstat(dir.as_fd())
            .map_err(|e| Error::system(format_args!("cannot stat {}", show(path)), &e))?;
        if !owner::is_callers_file(&st, FileKind::Directory, None, euid) {
            return Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "{} is {} owned by {}, not a directory owned by uid {euid}",
                    show(path),
                    st.kind().describe(),
                    owner::shown(st.uid)
                ),
            ));
        }
        Ok(st)
    };
    let dir = match sys::open_dir_read(at, name) {
        Ok(dir) => dir,
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            // The umask took the owner's read or search bit: set the mode of exactly this
            // directory without opening it for reading (the name is ours, in a parent where
            // nobody else can rename entries), then open it.
            sys::chmod_new_dir(parent.fd(), name, 0o700).map_err(cannot_chmod)?;
            sys::open_dir_read(at, name).map_err(cannot_open)?
        }
        Err(e) => return Err(cannot_open(e)),
    };
    let mut st = stat(&dir)?;
    if st.perms() != 0o700 {
        sys::fchmod(dir.as_fd(), 0o700).map_err(cannot_chmod)?;
        st = stat(&dir)?;
        if st.perms() != 0o700 {
            return Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "{} has mode {:04o} after setting 0700",
                    show(path),
                    st.perms()
                ),
            ));
        }
    }
    Ok((dir, st))
}

/// Does the entry `name` (with `lstat` result `st`) look like a directory usock made for the
/// user `euid`: a usock name, a directory, owned by `euid`, mode 0700 (0710 when shared with a
/// group)? `Err` says why not.
pub(crate) fn looks_made_by_usock(
    name: &[u8],
    st: &Stat,
    euid: u32,
) -> std::result::Result<(), String> {
    if !name::is_dir_name(name) {
        return Err(format!(
            "\"{}\" is not a name usock makes ({} and {} random characters)",
            show_bytes(name),
            name::DIR_PREFIX,
            DIR_NAME_LEN - name::DIR_PREFIX.len()
        ));
    }
    if st.kind() != FileKind::Directory {
        return Err(format!("it is {}, not a directory", st.kind().describe()));
    }
    if !owner::is_callers(st.uid, euid) {
        return Err(format!(
            "it is owned by {}, not uid {euid}",
            owner::shown(st.uid)
        ));
    }
    if st.perms() != 0o700 && st.perms() != SHARED_DIR_MODE {
        return Err(format!(
            "it has mode {:04o}, not the 0700 usock gives (0710 when shared with a group)",
            st.perms()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// explain_automatic takes the parent that automatic creation uses, and every candidate
    /// before it is skipped with a reason.
    #[test]
    fn explain_automatic_agrees_with_automatic_creation() {
        let explained = explain_automatic();
        let (last, earlier) = explained.split_last().expect("at least one candidate");
        for c in earlier {
            match &c.verdict {
                Verdict::Skipped(why) => assert!(!why.is_empty(), "{}", c.label),
                other => panic!("{}: {other:?} before the last", c.label),
            }
        }
        let Verdict::Taken(taken) = &last.verdict else {
            panic!("{}: {:?}", last.label, last.verdict);
        };
        let dir = PrivateDir::create(None).expect("automatic creation");
        assert_eq!(dir.path().parent(), Some(taken.as_path()));
        dir.cleanup().expect("cleanup");
    }
}
