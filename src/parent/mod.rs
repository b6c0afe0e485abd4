//! Parent directories: resolving a path without trusting anything along it, checking each
//! directory the way OpenSSH's StrictModes does, and choosing one automatically.
//!
//! Every directory from `/` down to the parent must be owned by root or the effective user and,
//! if writable by group or others, have the sticky bit. The walk looks at each component with
//! `lstat` on its absolute path, resolving symbolic links by hand (at most 40): a link is
//! followed only when it is owned by root or the effective user and sits in a directory that
//! group and others cannot write to. The parent itself is opened by its resolved path with
//! `O_NOFOLLOW | O_DIRECTORY` (`O_PATH` on Linux, for reading elsewhere) and checked again
//! through the descriptor, so the directory usock creates in is the one it checked.
//!
//! Checking ancestors by path is sound because each one that passes can only be changed by root
//! or the effective user: it is owned by one of them, and its own parent, checked before it,
//! lets nobody else rename or replace its entries. It needs search permission only, so
//! execute-only ancestors (mode 0711) are fine on every system. The path returned has no
//! symbolic links, `.` or `..` in it.

mod candidates;
mod explain;

pub use candidates::{Candidate, candidates};
pub use explain::{CheckStep, ParentCheck, explain};

use std::collections::VecDeque;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result, show, show_bytes};
use crate::owner;
use crate::sys::{self, At, FileKind, Stat};

/// Symbolic links followed in one walk before giving up, as the kernel does (`ELOOP`).
const MAX_SYMLINKS: usize = 40;

/// A parent directory that passed the checks: its path with no symlinks, `.` or `..` in it, an
/// `O_PATH` descriptor on exactly the directory that was checked, and what `fstat` of that
/// descriptor found (the checks' input, for a caller's further checks without another call).
#[derive(Debug)]
pub struct Parent {
    path: PathBuf,
    fd: OwnedFd,
    stat: Stat,
}

impl Parent {
    /// The parent's path, with no symbolic links, `.` or `..` in it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The descriptor on the directory that was checked, for `*at` calls in it.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// What `fstat` of the descriptor found when it was checked.
    pub fn stat(&self) -> &Stat {
        &self.stat
    }

    /// The path alone, the descriptor closed (a parent chosen, not yet used).
    pub fn into_path(self) -> PathBuf {
        self.path
    }

    /// The descriptor alone, for a handle that keeps it (the path is known by then).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

/// Is `st` (the directory at `path`) safe to hold a private directory, or an ancestor of one?
/// Owned by root or the effective user, and not writable by group or others unless sticky.
fn check_dir(st: &Stat, path: &Path, euid: u32) -> Result<()> {
    if !owner::is_root_or_callers(st.uid, euid) {
        return Err(Error::new(
            ErrorKind::Unsafe,
            format!(
                "directory {} is owned by {}, neither root nor the effective user (uid {euid})",
                show(path),
                owner::shown(st.uid)
            ),
        ));
    }
    if owner::others_can_write(st) && !owner::is_sticky(st) {
        return Err(Error::new(
            ErrorKind::Unsafe,
            format!(
                "directory {} has mode {:04o}: writable by group or others without the sticky bit",
                show(path),
                st.perms()
            ),
        ));
    }
    Ok(())
}

/// Resolves `path` and checks it and every ancestor; see the module documentation. `euid` is
/// the effective user id, read once by the caller.
pub fn open_checked(path: &Path, euid: u32) -> Result<Parent> {
    if path.as_os_str().as_bytes().contains(&0) {
        return Err(Error::invalid(format!(
            "cannot use {} as a parent: a path cannot contain a NUL byte",
            show(path)
        )));
    }
    Walk::new(path, euid).run()
}

/// One resolution of a parent path, component by component.
struct Walk<'a> {
    /// Set by [`explain`]: every directory and link looked at, with what was found.
    steps: Option<std::cell::RefCell<Vec<CheckStep>>>,
    asked: &'a Path,
    euid: u32,
    /// "cannot use <asked> as a parent", the start of every message.
    context: String,
    /// Components still to resolve (a symlink's target goes in front).
    pending: VecDeque<OsString>,
    /// The directories resolved so far, `/` first, each with what was found there.
    resolved: Vec<(OsString, Stat)>,
    links: usize,
}

impl Walk<'_> {
    fn new(asked: &Path, euid: u32) -> Walk<'_> {
        Walk {
            steps: None,
            asked,
            euid,
            context: format!("cannot use {} as a parent", show(asked)),
            pending: VecDeque::new(),
            resolved: Vec::new(),
            links: 0,
        }
    }

    fn run(&mut self) -> Result<Parent> {
        if self.asked.is_relative() {
            let cwd = std::env::current_dir()
                .map_err(|e| Error::system("cannot read the current directory", &e))?;
            push_components(&mut self.pending, cwd.as_os_str(), false);
        }
        push_components(&mut self.pending, self.asked.as_os_str(), false);
        let root = sys::lstat_at(At::Cwd, c"/")
            .map_err(|e| Error::system(format_args!("{}: cannot stat /", self.context), &e))?;
        self.check(&root, Path::new("/"))?;
        self.resolved.push((OsString::from("/"), root));

        while let Some(component) = self.pending.pop_front() {
            match component.as_bytes() {
                b"" | b"." => continue,
                b".." => {
                    if self.resolved.len() > 1 {
                        self.resolved.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let here = self.current().join(&component);
            let here_c = CString::new(here.as_os_str().as_bytes()).expect("checked for NUL");
            // The last component is opened straight away (one call instead of two in the
            // common case); only when that fails is it looked at to learn why.
            if self.pending.is_empty() {
                if let Ok(fd) = sys::open_dir_search(At::Cwd, &here_c) {
                    return self.opened(fd, here);
                }
            }
            let st = sys::lstat_at(At::Cwd, &here_c).map_err(|e| self.lookup_error(&here, &e))?;
            match st.kind() {
                FileKind::Symlink => self.follow(&here, &here_c, &st)?,
                FileKind::Directory => {
                    self.check(&st, &here)?;
                    self.resolved.push((component, st));
                }
                other => return Err(self.not_a_directory(&here, other)),
            }
        }
        // The path ended in `..` or `/`, or a symlink's target was a directory already walked.
        let path = self.current();
        let path_c = CString::new(path.as_os_str().as_bytes()).expect("checked for NUL");
        let fd = sys::open_dir_search(At::Cwd, &path_c).map_err(|e| {
            Error::system(
                format_args!("{}: cannot open directory {}", self.context, show(&path)),
                &e,
            )
        })?;
        self.opened(fd, path)
    }

    /// The directory the walk has reached, rebuilt from the components resolved.
    fn current(&self) -> PathBuf {
        self.resolved
            .iter()
            .map(|(name, _)| name.as_os_str())
            .collect()
    }

    /// Checks the directory just opened (what was opened, not what was looked at before).
    ///
    /// Opening by the full path is sound: every ancestor passed [`check_dir`], so only root or
    /// the effective user can rename or replace anything along it, and the last component is
    /// opened with `O_NOFOLLOW | O_DIRECTORY`.
    fn opened(&self, fd: OwnedFd, path: PathBuf) -> Result<Parent> {
        let st = sys::fstat(fd.as_fd()).map_err(|e| {
            Error::system(
                format_args!("{}: cannot stat {}", self.context, show(&path)),
                &e,
            )
        })?;
        self.check(&st, &path)?;
        Ok(Parent { path, fd, stat: st })
    }

    fn check(&self, st: &Stat, path: &Path) -> Result<()> {
        let verdict = check_dir(st, path, self.euid);
        if let Some(steps) = &self.steps {
            let how = match &verdict {
                Ok(()) if owner::others_can_write(st) && owner::is_sticky(st) => {
                    "passes (others may write, but it is sticky)".to_owned()
                }
                Ok(()) => "passes".to_owned(),
                Err(e) => format!("REFUSED: {}", e.message()),
            };
            steps.borrow_mut().push(CheckStep {
                path: path.to_owned(),
                found: format!(
                    "directory, owner uid {}, mode {:04o}: {how}",
                    st.uid,
                    st.perms()
                ),
            });
        }
        verdict.map_err(|e| e.with_context(&self.context))
    }

    fn record(&self, path: &Path, found: String) {
        if let Some(steps) = &self.steps {
            steps.borrow_mut().push(CheckStep {
                path: path.to_owned(),
                found,
            });
        }
    }

    /// Follows the symbolic link at `here`, if it may be followed: owned by root or the
    /// effective user, in a directory that group and others cannot write to, and not the 41st.
    fn follow(&mut self, here: &Path, here_c: &CStr, st: &Stat) -> Result<()> {
        let unsafe_link = |why: String| {
            self.record(
                here,
                format!("symbolic link, owner uid {}: REFUSED: it {why}", st.uid),
            );
            Error::new(
                ErrorKind::Unsafe,
                format!("{}: symbolic link {} {why}", self.context, show(here)),
            )
        };
        if !owner::is_root_or_callers(st.uid, self.euid) {
            return Err(unsafe_link(format!(
                "is owned by {}, neither root nor the effective user (uid {})",
                owner::shown(st.uid),
                self.euid
            )));
        }
        let (_, container) = self.resolved.last().expect("root stays");
        if owner::others_can_write(container) {
            return Err(unsafe_link(format!(
                "is in {}, which others can write to (mode {:04o}), so it is not followed whoever owns it",
                show(&self.current()),
                container.perms()
            )));
        }
        self.links += 1;
        if self.links > MAX_SYMLINKS {
            let err = io::Error::from_raw_os_error(libc::ELOOP);
            return Err(Error::system(
                format_args!("{}: more than {MAX_SYMLINKS} symbolic links", self.context),
                &err,
            ));
        }
        let target = sys::readlink_at(At::Cwd, here_c).map_err(|e| {
            Error::system(
                format_args!("{}: cannot read link {}", self.context, show(here)),
                &e,
            )
        })?;
        self.record(
            here,
            format!(
                "symbolic link to {}, owner uid {}: followed",
                show_bytes(&target),
                st.uid
            ),
        );
        if target.first() == Some(&b'/') {
            self.resolved.truncate(1);
        }
        push_components(&mut self.pending, OsStr::from_bytes(&target), true);
        Ok(())
    }

    fn lookup_error(&self, here: &Path, err: &io::Error) -> Error {
        self.record(
            here,
            format!("REFUSED: {}", crate::error::strip_os_error_suffix(err)),
        );
        if err.raw_os_error() == Some(libc::ENOENT) {
            let message = format!("{}: {} does not exist", self.context, show(here));
            Error::system_errno(message, libc::ENOENT)
        } else {
            Error::system(
                format_args!("{}: cannot look up {}", self.context, show(here)),
                err,
            )
        }
    }

    fn not_a_directory(&self, here: &Path, kind: FileKind) -> Error {
        self.record(
            here,
            format!("{}: REFUSED: not a directory", kind.describe()),
        );
        let err = io::Error::from_raw_os_error(libc::ENOTDIR);
        Error::system(
            format_args!("{}: {} is {}", self.context, show(here), kind.describe()),
            &err,
        )
    }
}

/// Queues the components of `path`; `front` puts them before what is already queued (a
/// symlink's target replaces the link in the walk).
fn push_components(pending: &mut VecDeque<OsString>, path: &OsStr, front: bool) {
    let parts: Vec<OsString> = path
        .as_bytes()
        .split(|&b| b == b'/')
        .filter(|part| !part.is_empty())
        .map(|part| OsString::from_vec(part.to_vec()))
        .collect();
    if front {
        for part in parts.into_iter().rev() {
            pending.push_front(part);
        }
    } else {
        pending.extend(parts);
    }
}

/// May the directory `dir` (with `fstat` result `st`, already through the parent checks) hold a
/// well-known socket path? Only when nobody but its owner can write to it.
pub(crate) fn check_well_known_dir(st: &Stat, dir: &Path) -> Result<()> {
    if owner::others_can_write(st) {
        return Err(Error::new(
            ErrorKind::Unsafe,
            format!(
                "its directory {} has mode {:04o}, so another user can create a file there, and take a fixed name first, even with the sticky bit; use a directory only you can write to (such as $XDG_RUNTIME_DIR), or a private directory from usock",
                show(dir),
                st.perms()
            ),
        ));
    }
    Ok(())
}
