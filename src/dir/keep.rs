//! Keeping a directory nothing holds: the mark [`PrivateDir::keep`] leaves inside it, and what
//! a sweep makes of it.
//!
//! A directory printed by `usock dir` or `usock path` is held by no process once the command
//! exits, so a sweep would take it for one left by a crash once it is quiet for the grace
//! period, and in a sticky parent another user could then make the same name. The mark is a
//! file that only the directory's owner can make (the directory is 0700): every sweep keeps a
//! directory whose mark is younger than [`KEEP_FOR`], and reads its age from the mark itself
//! (through the directory's descriptor, no symbolic link followed).

use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::dir::PrivateDir;
use crate::error::{Error, Result, show};
use crate::name::KEEP_MARK;
use crate::sys::{self, At, FileKind, Stat};

/// How long every sweep keeps a directory after [`PrivateDir::keep`] marked it: a day.
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 60 * 60);

impl PrivateDir {
    /// Ends the handle without removing anything, for a directory that outlives its process
    /// with nothing holding it (`usock dir` and `usock path`, whose caller is a shell), and
    /// returns its path. Leaves a mark in it (`.usock-keep`, mode 0600, made with `O_EXCL`,
    /// never through a symbolic link) that makes every sweep keep the directory for
    /// [`KEEP_FOR`], a day, after this call. Remove it before then with
    /// [`take_over_unheld`](PrivateDir::take_over_unheld) and
    /// [`cleanup`](PrivateDir::cleanup) (`usock clean`), which remove the mark too.
    ///
    /// Fails, and removes the directory as dropping the handle would, when the mark cannot be
    /// made.
    pub fn keep(self) -> Result<PathBuf> {
        let path = self.path().to_owned();
        sys::create_new_file(At::Fd(self.dir.fd()), KEEP_MARK, 0o600).map_err(|e| {
            Error::system(format_args!("cannot mark {} to be kept", show(&path)), &e).or_path(&path)
        })?;
        self.forget();
        Ok(path)
    }
}

/// The mark in the directory `dir`, for a sweep: `Err` (why to keep the directory) while it is
/// younger than [`KEEP_FOR`]; `Ok(Some(mark))` for a mark that has expired, to be removed with
/// the directory; `Ok(None)` when there is no mark. Anything at the mark's name that is not a
/// regular file of `euid` is no mark (the sweep then finds it among the entries and keeps the
/// directory for it).
pub(crate) fn check_mark(
    dir: BorrowedFd<'_>,
    euid: u32,
) -> std::result::Result<Option<Stat>, String> {
    let mark = match sys::lstat_at(At::Fd(dir), KEEP_MARK) {
        Ok(mark) if crate::owner::is_callers_file(&mark, FileKind::Regular, None, euid) => mark,
        Ok(_) => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot stat its mark: {}",
                crate::error::strip_os_error_suffix(&e)
            ));
        }
    };
    let age = sys::now_seconds().saturating_sub(mark.modified);
    let keep_for = KEEP_FOR.as_secs() as i64;
    if age < keep_for {
        return Err(format!(
            "marked {age} s ago by usock dir or usock path, which keeps it from sweeps for a day ({keep_for} s); usock clean removes it"
        ));
    }
    Ok(Some(mark))
}

/// Is `name` the mark's name?
pub(crate) fn is_mark(name: &std::ffi::CStr) -> bool {
    name == KEEP_MARK
}
