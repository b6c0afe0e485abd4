//! The crash sweep: removing private directories whose processes died without cleaning up.
//!
//! A directory is removed only when every one of these holds: it looks like a usock directory of
//! the user (a usock name, owner, mode 0700, or 0710 when shared with a group); it has not changed
//! for the grace period (checked before it is locked, so that a sweep never locks a directory the
//! grace period protects, and again under the lock); its exclusive lock can be taken (every live
//! handle holds a shared one, so no live process, forked child or `exec`ed successor that was
//! handed it has it); and each entry in it is a socket of the user that refuses a connection of
//! its own type. A directory marked by
//! [`PrivateDir::keep`](crate::PrivateDir::keep) (`usock dir`, `usock path`) is kept for
//! [`KEEP_FOR`](crate::KEEP_FOR) after the mark was made, whatever the grace period; after that the
//! mark is removed with the directory. Its sockets and then the directory are removed under that
//! lock, each checked by device and inode, nothing followed.

use std::ffi::{CStr, CString, OsStr};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::connect::{Probe, probe};
use crate::dir::keep;
use crate::dir::{looks_made_by_usock, still_named};
use crate::error::{Error, Result, show, show_bytes};
use crate::name::{self, KEEP_MARK};
use crate::owner;
use crate::parent::{self, Parent};
use crate::sys::{self, At, FileKind, Lock, Stat};

/// The grace period a sweep gives a directory by default: one that changed less than a minute
/// ago is kept, so that a directory handed to a server that has not bound yet is safe.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);

/// What a [`sweep`] did: the directories it removed, and the usock directories it kept, each
/// with the reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub removed: Vec<PathBuf>,
    pub kept: Vec<(PathBuf, String)>,
}

/// Removes the private directories left by processes that died (see the module documentation) in
/// `parent`, or, for `None`, in each automatic candidate (`$XDG_RUNTIME_DIR`, `$TMPDIR`, `/tmp`,
/// `/var/tmp`; on macOS the per-user temporary directory first) that passes the checks. Directories
/// that changed less than `grace` ago are kept; [`DEFAULT_GRACE`] is a sensible value. Entries
/// without a usock name are not looked at, and are not in the report.
///
/// A server that is alive sees a connection that closes at once for each of its sockets.
/// Fails only for a `parent` that cannot be used or listed; what happens to each directory is
/// in the report.
pub fn sweep(parent: Option<&Path>, grace: Duration) -> Result<SweepReport> {
    let euid = owner::caller()?;
    let mut report = SweepReport::default();
    match parent {
        Some(path) => {
            let parent = parent::open_checked(path, euid).map_err(|e| e.or_path(path))?;
            sweep_parent(&parent, euid, grace, &mut report).map_err(|e| e.or_path(path))?;
        }
        None => {
            let mut seen = Vec::new();
            for candidate in parent::candidates() {
                let Some(path) = candidate.path.filter(|_| candidate.ignored.is_none()) else {
                    continue;
                };
                let Ok(parent) = parent::open_checked(Path::new(&path), euid) else {
                    continue;
                };
                let Ok(st) = sys::fstat(parent.fd()) else {
                    continue;
                };
                if seen.iter().any(|s: &Stat| s.same_file(&st)) {
                    continue;
                }
                seen.push(st);
                let _ = sweep_parent(&parent, euid, grace, &mut report);
            }
        }
    }
    Ok(report)
}

fn sweep_parent(
    parent: &Parent,
    euid: u32,
    grace: Duration,
    report: &mut SweepReport,
) -> Result<()> {
    let listing = sys::open_dir_read(At::Fd(parent.fd()), c".")
        .and_then(sys::DirHandle::new)
        .and_then(|mut dir| dir.list())
        .map_err(|e| Error::system(format_args!("cannot list {}", show(parent.path())), &e))?;
    let grace = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    for name in listing {
        if !name::is_dir_name(name.to_bytes()) {
            continue;
        }
        let path = parent.path().join(OsStr::from_bytes(name.to_bytes()));
        match sweep_dir(parent, &name, &path, euid, grace) {
            Ok(()) => report.removed.push(path),
            Err(why) => report.kept.push((path, why)),
        }
    }
    Ok(())
}

/// Why a sweep keeps a directory.
type Kept = std::result::Result<(), String>;

/// "cannot <what>: <the OS's reason>".
fn failed(what: &str, e: std::io::Error) -> String {
    format!("cannot {what}: {}", crate::error::strip_os_error_suffix(&e))
}

/// Removes one directory if it is safe to; `Err` says why it was kept.
///
/// The grace period is checked first, on the entry itself (`fstatat`, no symlink followed), so
/// that a directory it protects is never locked: a directory between its creation and its
/// creator's lock is that young. Then the directory is locked and everything checked again.
fn sweep_dir(parent: &Parent, name: &CStr, path: &Path, euid: u32, grace: i64) -> Kept {
    let in_parent = At::Fd(parent.fd());
    let st = sys::lstat_at(in_parent, name).map_err(|e| failed("stat it", e))?;
    looks_made_by_usock(name.to_bytes(), &st, euid)?;
    check_age(&st, grace)?;
    let fd = sys::open_dir_read(in_parent, name).map_err(|e| failed("open it", e))?;
    keep::check_mark(fd.as_fd(), euid)?;
    match sys::flock(fd.as_fd(), Lock::Exclusive) {
        Ok(()) => {}
        Err(e) if sys::is_would_block(&e) => {
            return Err("in use: a live process holds its lock".to_owned());
        }
        Err(e) => return Err(failed("lock it", e)),
    }
    let now = sys::fstat(fd.as_fd()).map_err(|e| failed("stat it", e))?;
    if !now.same_file(&st) {
        return Err("it was replaced while it was examined".to_owned());
    }
    check_age(&now, grace)?;
    // Again under the lock: `keep` marks a directory while its handle still holds it.
    let expired_mark = keep::check_mark(fd.as_fd(), euid)?;
    let mut dir = sys::DirHandle::new(fd).map_err(|e| failed("open it", e))?;
    let mut stale = stale_sockets(&mut dir, path, euid, expired_mark.is_some())?;
    stale.extend(expired_mark.map(|mark| (KEEP_MARK.to_owned(), mark)));
    let inside = At::Fd(dir.fd());
    for (entry, est) in stale {
        if still_named(inside, &entry, &est) {
            sys::unlink_at(inside, &entry, false)
                .map_err(|e| failed(&format!("remove {}", show_bytes(entry.to_bytes())), e))?;
        }
    }
    if !still_named(in_parent, name, &st) {
        return Err("its name no longer refers to the directory examined".to_owned());
    }
    sys::unlink_at(in_parent, name, true).map_err(|e| failed("remove it", e))
}

/// Keeps a directory (as `st` describes it) that changed less than `grace` seconds ago.
fn check_age(st: &Stat, grace: i64) -> Kept {
    let age = sys::now_seconds().saturating_sub(st.changed);
    if age < grace {
        return Err(format!(
            "changed {age} s ago, within the grace period of {grace} s"
        ));
    }
    Ok(())
}

/// The entries of the locked directory `dir` (at `path`), each a socket of the user that
/// refuses a connection (the keep mark left out when `expired_mark`); `Err` (keep the
/// directory) names the first entry that is not.
fn stale_sockets(
    dir: &mut sys::DirHandle,
    path: &Path,
    euid: u32,
    expired_mark: bool,
) -> std::result::Result<Vec<(CString, Stat)>, String> {
    let entries = dir.list().map_err(|e| failed("list it", e))?;
    let inside = At::Fd(dir.fd());
    let mut stale = Vec::with_capacity(entries.len());
    for entry in entries {
        if expired_mark && keep::is_mark(&entry) {
            continue;
        }
        let shown = path.join(OsStr::from_bytes(entry.to_bytes()));
        let est = sys::lstat_at(inside, &entry)
            .map_err(|e| failed(&format!("stat {}", show(&shown)), e))?;
        if !owner::is_callers_file(&est, FileKind::Socket, None, euid) {
            return Err(format!(
                "it holds {} ({}{}), which a sweep does not remove",
                show_bytes(entry.to_bytes()),
                est.kind().describe(),
                if est.kind() == FileKind::Socket {
                    format!(" owned by {}", owner::shown(est.uid))
                } else {
                    String::new()
                }
            ));
        }
        match probe(shown.as_os_str().as_bytes()) {
            Ok(Probe::Stale) => stale.push((entry, est)),
            Ok(Probe::Answers(ty)) => {
                return Err(format!(
                    "its socket {} answers ({})",
                    show_bytes(entry.to_bytes()),
                    ty.c_name()
                ));
            }
            Err(e) => return Err(failed(&format!("probe {}", show(&shown)), e)),
        }
    }
    Ok(stale)
}
