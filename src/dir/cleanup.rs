//! Cleanup: removing the sockets in a private directory, then the directory, and nothing that
//! usock did not make.
//!
//! The fast path removes the sockets usock recorded (checked by device and inode) and then the
//! directory. Only when the directory is not empty afterwards is it listed, through the
//! descriptor the handle holds (so cleanup opens nothing, even at the descriptor limit), and
//! each entry judged on its own.

use std::collections::BTreeSet;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::connect::{Probe, probe};
use crate::dir::keep;
use crate::dir::{Bound, PrivateDir};
use crate::error::{Error, ErrorKind, Result, errno_of, show, strip_os_error_suffix};
use crate::owner;
use crate::sys::{self, At, FileKind};

impl PrivateDir {
    /// Removes the sockets in the directory, then the directory itself.
    ///
    /// A socket is removed when usock bound it (same device and inode) or when it is owned by
    /// the effective user (bound by the caller at [`socket_path`](PrivateDir::socket_path)); so
    /// is the mark [`keep`](PrivateDir::keep) leaves, a regular file of the effective user.
    /// Anything else (a regular file, a subdirectory, a FIFO, a symlink, an object swapped in) is
    /// left in place, nothing is followed or deleted recursively, and the result is
    /// [`ErrorKind::Changed`] naming what was left. The directory is removed only while its name
    /// in the parent still refers to the directory usock made. In a process other than the one
    /// that made the directory (a child after `fork`, whatever its pid), nothing is removed.
    ///
    /// A failed system call is [`ErrorKind::System`] with the errno of the first one that failed.
    pub fn cleanup(mut self) -> Result<()> {
        self.cleanup_now().map_err(|e| e.or_path(self.path()))
    }

    pub(crate) fn cleanup_now(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.done, true) || !self.creator.is_current() {
            return Ok(());
        }
        let bound = std::mem::take(self.bound.get_mut().unwrap_or_else(|e| e.into_inner()));
        let mut report = Report::default();

        self.remove_recorded_sockets(&bound, &mut report);
        let still_ours = self.name_is_ours()?;
        if still_ours && report.problems.is_empty() && self.remove_dir(&mut report, true) {
            return Ok(());
        }
        self.remove_listed_sockets(&bound, &mut report)?;
        if still_ours && report.is_clean() && self.remove_dir(&mut report, false) {
            return Ok(());
        }
        Err(report.into_error(self.path(), still_ours))
    }

    /// Removes each socket usock recorded that is still the very file it bound.
    fn remove_recorded_sockets(&self, bound: &Bound, report: &mut Report) {
        let dir = At::Fd(self.dir.fd());
        for (name, id) in bound {
            if let Ok(st) = sys::lstat_at(dir, name) {
                if st.kind() == FileKind::Socket && st.same_file(id) {
                    self.remove_entry(name, report);
                }
            }
        }
    }

    /// Lists the directory and removes what is ours: sockets usock recorded, and sockets of the
    /// effective user. Everything else is noted as left in place.
    fn remove_listed_sockets(&mut self, bound: &Bound, report: &mut Report) -> Result<()> {
        let recorded: BTreeSet<(u64, u64)> = bound.values().map(|id| (id.dev, id.ino)).collect();
        let names = match self.dir.list() {
            Ok(names) => names,
            // The directory itself was removed (by its owner): nothing in it to judge.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Vec::new(),
            Err(e) => {
                let what = format!("cannot list {}", show(self.path()));
                return Err(Error::system(what, &e));
            }
        };
        let dir = At::Fd(self.dir.fd());
        for name in names {
            let st = match sys::lstat_at(dir, &name) {
                Ok(st) => st,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                Err(e) => {
                    report.problem(format!("cannot stat {}", self.entry(&name)), &e);
                    continue;
                }
            };
            let ours = recorded.contains(&(st.dev, st.ino));
            let our_mark = keep::is_mark(&name)
                && owner::is_callers_file(&st, FileKind::Regular, None, self.euid);
            let our_socket =
                st.kind() == FileKind::Socket && (ours || owner::is_callers(st.uid, self.euid));
            if our_mark || our_socket {
                self.remove_entry(&name, report);
            } else if st.kind() == FileKind::Socket {
                report.left.push(format!(
                    "{} (a socket owned by {})",
                    self.entry(&name),
                    owner::shown(st.uid)
                ));
            } else {
                let what = st.kind().describe();
                report.left.push(format!("{} ({what})", self.entry(&name)));
            }
        }
        Ok(())
    }

    /// Unlinks one entry judged ours. One already gone is no problem: its owner removed it at
    /// the same time (MQI's server thread deletes its socket as it ends, while a halt hook cleans
    /// up), and the directory can still go.
    fn remove_entry(&self, name: &CStr, report: &mut Report) {
        crate::hooks::at_with(crate::hooks::Point::BeforeSocketRemoved, || {
            self.path().join(OsStr::from_bytes(name.to_bytes()))
        });
        match sys::unlink_at(At::Fd(self.dir.fd()), name, false) {
            Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
                report.problem(format!("cannot remove {}", self.entry(name)), &e);
            }
            _ => {}
        }
    }

    /// Removes the (empty) directory by its name in the parent; true when it is gone. A
    /// directory that is not empty is a problem only when `expect_not_empty` is false.
    fn remove_dir(&self, report: &mut Report, expect_not_empty: bool) -> bool {
        match sys::unlink_at(At::Fd(self.parent.as_fd()), &self.name, true) {
            Ok(()) => true,
            Err(e)
                if expect_not_empty
                    && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY | libc::EEXIST)) =>
            {
                false
            }
            Err(e) => {
                report.problem(format!("cannot remove directory {}", show(self.path())), &e);
                false
            }
        }
    }

    /// Does the directory's name in the parent still refer to the directory we made?
    fn name_is_ours(&self) -> Result<bool> {
        match sys::lstat_at(At::Fd(self.parent.as_fd()), &self.name) {
            Ok(st) => Ok(st.kind() == FileKind::Directory && st.same_file(&self.id)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(Error::system(
                format_args!("cannot stat {}", show(self.path())),
                &e,
            )),
        }
    }

    /// Checks that nothing in the directory serves any more, by the rule [`crate::sweep`]
    /// applies to a directory (without its lock and grace period: the handle is the caller's):
    /// it holds at least one socket, every entry is a socket of the effective user, and none
    /// answers a connection of any type. Each socket is probed without waiting (a full backlog
    /// is an answer), so a live server sees a connection that closes at once. An empty
    /// directory is in use: a path handed out from it may still be bound. A stream socket that
    /// is bound but not yet listening refuses as a closed one does: a caller that removes on
    /// this answer confirms it first at a later look.
    ///
    /// [`ErrorKind::InUse`] says why the directory must stay; [`ErrorKind::System`] that it
    /// could not be examined. Nothing is changed either way.
    pub(crate) fn check_idle(&self) -> Result<()> {
        let names = self.names()?;
        let in_use = |why: String| {
            Error::new(
                ErrorKind::InUse,
                format!("{} is kept: {why}", show(self.path())),
            )
        };
        if names.is_empty() {
            return Err(in_use(
                "nothing is bound in it (a path handed out from it may still be bound)".into(),
            ));
        }
        for name in &names {
            let st = sys::lstat_at(At::Fd(self.dir.fd()), name)
                .map_err(|e| Error::system(format_args!("cannot stat {}", self.entry(name)), &e))?;
            if !owner::is_callers_file(&st, FileKind::Socket, None, self.euid) {
                let what = st.kind().describe();
                return Err(in_use(format!(
                    "it holds {} ({what} owned by {}), which only a cleanup judges",
                    self.entry(name),
                    owner::shown(st.uid)
                )));
            }
            let path = self.path().join(OsStr::from_bytes(name.to_bytes()));
            match probe(path.as_os_str().as_bytes()) {
                Ok(Probe::Stale) => {}
                Ok(Probe::Answers(ty)) => {
                    return Err(in_use(format!(
                        "its socket {} answers ({})",
                        show(&path),
                        ty.c_name()
                    )));
                }
                Err(e) => {
                    return Err(Error::system(
                        format_args!("cannot probe {}", show(&path)),
                        &e,
                    ));
                }
            }
        }
        Ok(())
    }

    /// The first socket of the user in the directory that answers a connection (of any type,
    /// probed without waiting: a full backlog answers), if any: a server still uses the
    /// directory even when no handle holds it (one that `usock path` printed). `usock clean`
    /// refuses such a directory without `--force`. A live server sees a connection that closes
    /// at once.
    pub fn answering_socket(&self) -> Result<Option<PathBuf>> {
        let names = self.names()?;
        for name in &names {
            let st = sys::lstat_at(At::Fd(self.dir.fd()), name)
                .map_err(|e| Error::system(format_args!("cannot stat {}", self.entry(name)), &e))?;
            if !owner::is_callers_file(&st, FileKind::Socket, None, self.euid) {
                continue;
            }
            let path = self.path().join(OsStr::from_bytes(name.to_bytes()));
            match probe(path.as_os_str().as_bytes()) {
                Ok(Probe::Stale) => {}
                Ok(Probe::Answers(_)) => return Ok(Some(path)),
                Err(e) => {
                    return Err(Error::system(
                        format_args!("cannot probe {}", show(&path)),
                        &e,
                    ));
                }
            }
        }
        Ok(None)
    }

    /// The names in the directory, listed through a new descriptor of it (the handle's own
    /// serves the cleanup's listing).
    fn names(&self) -> Result<Vec<CString>> {
        sys::open_dir_read(At::Fd(self.dir.fd()), c".")
            .and_then(sys::DirHandle::new)
            .and_then(|mut dir| dir.list())
            .map_err(|e| Error::system(format_args!("cannot list {}", show(self.path())), &e))
    }

    /// `<dir>/<name>`, for messages.
    fn entry(&self, name: &CStr) -> String {
        show(&self.path().join(OsStr::from_bytes(name.to_bytes())))
    }
}

impl Drop for PrivateDir {
    /// Cleans up a directory that was not cleaned explicitly, ignoring errors. Use
    /// [`PrivateDir::cleanup`] to see them.
    fn drop(&mut self) {
        let _ = self.cleanup_now();
    }
}

/// What went wrong during one cleanup: failed system calls (the first one's errno kept) and
/// entries left in place because usock did not make them.
#[derive(Default)]
struct Report {
    problems: Vec<String>,
    errno: Option<i32>,
    left: Vec<String>,
}

impl Report {
    fn problem(&mut self, what: String, err: &io::Error) {
        self.errno.get_or_insert(errno_of(err));
        self.problems
            .push(format!("{what}: {}", strip_os_error_suffix(err)));
    }

    fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.left.is_empty()
    }

    /// [`ErrorKind::System`] (with its errno) when a call failed, else [`ErrorKind::Changed`].
    fn into_error(self, dir: &Path, still_ours: bool) -> Error {
        let mut message = self.problems;
        if !still_ours {
            message.push(format!(
                "{} no longer names the directory usock made (it was moved, removed or replaced); it was left alone",
                show(dir)
            ));
        }
        if !self.left.is_empty() {
            message.push(format!(
                "left in place, not made by usock: {}; so directory {} was kept",
                self.left.join(", "),
                show(dir)
            ));
        }
        if message.is_empty() {
            message.push(format!(
                "directory {} was not empty after its sockets were removed; it was kept",
                show(dir)
            ));
        }
        match self.errno {
            Some(errno) => Error::system_errno(message.join("; "), errno),
            None => Error::new(ErrorKind::Changed, message.join("; ")),
        }
    }
}
