//! Handing a private directory to a program started with `exec`, and taking it over there.
//!
//! [`PrivateDir::hand_off`] ends a handle without removing anything and gives the caller a
//! descriptor of the directory that survives `exec` and keeps the directory's lock (so that a
//! sweep leaves it alone); [`PrivateDir::take_over`] makes a handle for an existing usock
//! directory again, with the same checks as creation, so that the successor cleans it up.

use std::ffi::{CString, OsStr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::lock::lock_dir;
use crate::dir::{PrivateDir, looks_made_by_usock};
use crate::error::{Error, ErrorKind, Result, show};
use crate::owner;
use crate::parent;
use crate::sys::{self, At, Lock};

impl PrivateDir {
    /// Ends this handle without removing anything and returns a descriptor of the directory
    /// that is *not* close-on-exec and shares the directory's lock: pass it (its number, for
    /// example in an environment variable, with the directory's path) to a program started
    /// with `exec`, which calls [`take_over`](PrivateDir::take_over). While any process holds
    /// it, a sweep leaves the directory alone. Close it if no successor takes it.
    pub fn hand_off(self) -> Result<OwnedFd> {
        let fd = self.lock_for_successor()?;
        self.forget();
        Ok(fd)
    }

    /// The descriptor [`hand_off`](PrivateDir::hand_off) returns, leaving the handle as it is.
    pub(crate) fn lock_for_successor(&self) -> Result<OwnedFd> {
        sys::dup_inheritable(self.dir.fd())
            .map_err(|e| Error::system(format_args!("cannot hand off {}", show(self.path())), &e))
    }

    /// Ends the handle without removing anything.
    pub(crate) fn forget(mut self) {
        self.done = true;
    }

    /// Takes an existing usock directory at `path` under management again, for a program
    /// that was handed it: checked as at creation (a name usock makes, a directory owned by the
    /// effective user with mode 0700, or 0710 when shared with a group, in a parent that passes
    /// the safety checks). `lock`: the descriptor from [`hand_off`](PrivateDir::hand_off), if
    /// the caller inherited one; it must refer to that very directory, and the handle keeps it
    /// (close-on-exec again). Without one, the directory is opened and locked anew.
    ///
    /// The handle cleans up as one made by [`new`](PrivateDir::new) does; sockets of the user
    /// already in the directory are removed by listing it. Fails with [`ErrorKind::Unsafe`] when
    /// a check fails, [`ErrorKind::Invalid`] for a `lock` that is not this directory, and
    /// [`ErrorKind::InUse`] when a sweep holds the directory for over a second.
    pub fn take_over(path: impl AsRef<Path>, lock: Option<OwnedFd>) -> Result<PrivateDir> {
        let path = path.as_ref();
        PrivateDir::take_over_at(path, lock, Lock::Shared).map_err(|e| e.or_path(path))
    }

    /// [`take_over`](PrivateDir::take_over) (without a lock descriptor) for removing a
    /// directory that nothing holds: one left by [`keep`](PrivateDir::keep) (`usock dir`,
    /// `usock path`), or by a process that died. The handle holds the directory's lock
    /// exclusively, so it fails with [`ErrorKind::InUse`] while a live handle (of any process,
    /// this one included) or an inherited hand-off descriptor holds the directory; nothing is
    /// changed then. `usock clean` calls it (and `take_over` with `--force`).
    pub fn take_over_unheld(path: impl AsRef<Path>) -> Result<PrivateDir> {
        let path = path.as_ref();
        PrivateDir::take_over_at(path, None, Lock::Exclusive).map_err(|e| e.or_path(path))
    }

    fn take_over_at(path: &Path, lock: Option<OwnedFd>, how: Lock) -> Result<PrivateDir> {
        let (Some(name), Some(dir)) = (path.file_name(), path.parent()) else {
            return Err(Error::invalid(format!(
                "{} does not name a directory in a parent",
                show(path)
            )));
        };
        if path.is_relative() {
            return Err(Error::invalid(format!(
                "{} is not an absolute path",
                show(path)
            )));
        }
        let name = CString::new(name.as_bytes()).map_err(|_| {
            Error::invalid(format!("{}: a path cannot contain a NUL byte", show(path)))
        })?;
        let euid = owner::caller()?;
        let parent = parent::open_checked(dir, euid)?;
        let shown = parent.path().join(OsStr::from_bytes(name.to_bytes()));
        let at = At::Fd(parent.fd());
        let st = sys::lstat_at(at, &name)
            .map_err(|e| Error::system(format_args!("cannot stat {}", show(&shown)), &e))?;
        looks_made_by_usock(name.as_bytes(), &st, euid).map_err(|why| {
            Error::new(
                ErrorKind::Unsafe,
                format!("cannot take over {}: {why}", show(&shown)),
            )
        })?;
        let fd = match lock {
            Some(fd) => {
                let held = sys::fstat(fd.as_fd())
                    .map_err(|e| Error::system("cannot stat the inherited lock descriptor", &e))?;
                if !held.same_file(&st) {
                    return Err(Error::invalid(format!(
                        "the lock descriptor given is not the directory {}",
                        show(&shown)
                    )));
                }
                sys::set_cloexec(fd.as_fd())
                    .map_err(|e| Error::system("cannot set close-on-exec", &e))?;
                fd
            }
            None => sys::open_dir_read(at, &name)
                .map_err(|e| Error::system(format_args!("cannot open {}", show(&shown)), &e))?,
        };
        lock_dir(fd.as_fd(), how, &shown)?;
        // Checked again through the descriptor, and the name again: a sweep that removed the
        // directory before we locked it leaves a descriptor of a deleted directory.
        let now = sys::fstat(fd.as_fd())
            .map_err(|e| Error::system(format_args!("cannot stat {}", show(&shown)), &e))?;
        let still_named = sys::lstat_at(at, &name).is_ok_and(|named| named.same_file(&now));
        if !now.same_file(&st) || !still_named {
            return Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "{} changed while it was taken over (removed or replaced)",
                    show(&shown)
                ),
            ));
        }
        let dir = sys::DirHandle::new(fd)
            .map_err(|e| Error::system(format_args!("cannot open {}", show(&shown)), &e))?;
        Ok(PrivateDir::assemble(parent, name, dir, now, euid))
    }
}
