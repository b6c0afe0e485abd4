//! Parent directories: resolving a path without trusting anything along it, checking each
//! directory the way OpenSSH's StrictModes does, and choosing one automatically.
//!
//! Every directory from `/` down to the parent must be owned by root or the effective user and,
//! if writable by group or others, have the sticky bit. The common case (an absolute path with
//! no symbolic links) checks the ancestors with one `lstat` each and opens the parent with one
//! `openat2(RESOLVE_NO_SYMLINKS)`, then checks the descriptor it got ([`open_plain`]). Anything
//! else goes through [`walk`]: `/` and then each component opened with `O_PATH | O_NOFOLLOW`
//! relative to the one before and checked with `fstat`, symbolic links resolved by hand (at most
//! 40), each required to be owned by root or the effective user, so that a link another user
//! planted cannot steer usock. Either way the descriptor returned is the very directory that was
//! checked, and the path returned has no symbolic links, `.` or `..` in it.

use std::collections::VecDeque;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result, show, show_bytes};
use crate::sys::{self, At, FileKind, Stat};

/// Symbolic links followed in one walk before giving up, as the kernel does (`ELOOP`).
const MAX_SYMLINKS: usize = 40;

/// A parent directory that passed the checks: its path with no symlinks, `.` or `..` in it, and
/// an `O_PATH` descriptor on exactly the directory that was checked.
#[derive(Debug)]
pub struct Parent {
    pub path: PathBuf,
    pub fd: OwnedFd,
}

/// Is `st` (the directory at `path`) safe to hold a private directory, or an ancestor of one?
/// Owned by root or the effective user, and not writable by group or others unless sticky.
fn check_dir(st: &Stat, path: &Path, euid: u32) -> Result<()> {
    if st.uid != 0 && st.uid != euid {
        return Err(Error::new(
            ErrorKind::Unsafe,
            format!(
                "directory {} is owned by uid {}, neither root nor the effective user (uid {euid})",
                show(path),
                st.uid
            ),
        ));
    }
    let writable_by_others = st.perms() & 0o022 != 0;
    let sticky = st.perms() & libc::S_ISVTX != 0;
    if writable_by_others && !sticky {
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
    match open_plain(path, euid) {
        Ok(Some(parent)) => Ok(parent),
        Ok(None) => walk(path, euid),
        // Name the parent that was asked for, then the directory at fault.
        Err(e) => Err(e.with_context(format_args!("cannot use {} as a parent", show(path)))),
    }
}

/// The fast path, for the common case of an absolute path of plain components with no symbolic
/// links: each ancestor is checked with one `lstat` by path, then the directory itself is opened
/// with one `openat2(RESOLVE_NO_SYMLINKS)` and checked with `fstat`.
///
/// Checking the ancestors by path before opening is sound because each one that passes can only
/// be changed by root or the effective user: it is owned by one of them, and its own parent,
/// checked before it, lets nobody else rename or replace its entries (not writable by others,
/// or sticky). `None` hands over to [`walk`]: for symbolic links (resolved and checked one by
/// one), `.` and `..`, relative paths, and for every error, which the walk reports precisely.
fn open_plain(path: &Path, euid: u32) -> Result<Option<Parent>> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.first() != Some(&b'/') {
        return Ok(None);
    }
    // The canonical path, built with a NUL after it so that each prefix can be handed to the
    // kernel in place: `/` and each ancestor are checked, the last component opened below.
    let mut buf = Vec::with_capacity(bytes.len() + 2);
    buf.push(b'/');
    let mut parts = bytes
        .split(|&b| b == b'/')
        .filter(|p| !p.is_empty())
        .peekable();
    while let Some(part) = parts.next() {
        if part == b"." || part == b".." {
            return Ok(None);
        }
        buf.push(0);
        let st = match sys::lstat_at(At::Cwd, CStr::from_bytes_with_nul(&buf).expect("one NUL")) {
            Ok(st) if st.kind() == FileKind::Directory => st,
            _ => return Ok(None),
        };
        buf.pop();
        check_dir(&st, Path::new(OsStr::from_bytes(&buf)), euid)?;
        if buf.len() > 1 {
            buf.push(b'/');
        }
        buf.extend_from_slice(part);
        if parts.peek().is_none() {
            break;
        }
    }
    let canonical = CString::new(buf).expect("components have no NUL");
    let Ok(fd) = sys::open_dir_no_symlinks(&canonical) else {
        return Ok(None);
    };
    let path = PathBuf::from(OsString::from_vec(canonical.into_bytes()));
    let st = sys::fstat(fd.as_fd())
        .map_err(|e| Error::system(format_args!("cannot stat {}", show(&path)), &e))?;
    check_dir(&st, &path, euid)?;
    Ok(Some(Parent { path, fd }))
}

/// The general path: opens `/` and each component relative to the one before with
/// `O_PATH | O_NOFOLLOW`, resolving symbolic links by hand.
///
/// A symbolic link is followed only when it is owned by root or the effective user and the
/// directory it was found in is not writable by group or others. The owner of a link's inode
/// says nothing about who put the name there: with `fs.protected_hardlinks=0` anyone can
/// hard-link root's (or the user's own) symlink into a sticky directory such as `/tmp`.
fn walk(path: &Path, euid: u32) -> Result<Parent> {
    let mut pending: VecDeque<OsString> = VecDeque::new();
    if path.is_relative() {
        let cwd = std::env::current_dir()
            .map_err(|e| Error::system("cannot read the current directory", &e))?;
        push_components(&mut pending, cwd.as_os_str(), false);
    }
    push_components(&mut pending, path.as_os_str(), false);
    // Every failure names the parent that was asked for, then the component at fault.
    let context = format!("cannot use {} as a parent", show(path));
    let cannot_use = |why: std::fmt::Arguments<'_>| format!("{context}: {why}");
    let root = sys::open_dir_path(At::Cwd, c"/")
        .map_err(|e| Error::system(format_args!("{context}: cannot open /"), &e))?;
    let st = sys::fstat(root.as_fd())
        .map_err(|e| Error::system(format_args!("{context}: cannot stat /"), &e))?;
    check_dir(&st, Path::new("/"), euid).map_err(|e| e.with_context(&context))?;

    // The directories walked so far, `/` first, each with what fstat said of it; the path is
    // rebuilt from their names.
    let mut stack: Vec<(OwnedFd, OsString, Stat)> = vec![(root, OsString::from("/"), st)];
    let mut links = 0;
    let current_path = |stack: &Vec<(OwnedFd, OsString, Stat)>| -> PathBuf {
        stack.iter().map(|(_, name, _)| name.as_os_str()).collect()
    };

    while let Some(component) = pending.pop_front() {
        match component.as_bytes() {
            b"" | b"." => continue,
            b".." => {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            _ => {}
        }
        let name = CString::new(component.as_bytes()).expect("path components have no NUL");
        let (dir, _, dir_st) = stack.last().expect("root stays");
        let dir = dir.as_fd();
        let dir_path = current_path(&stack);
        let here = dir_path.join(&component);
        let st = sys::lstat_at(At::Fd(dir), &name).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOENT) {
                let missing = format!("{} does not exist", show(&here));
                Error::system_errno(cannot_use(format_args!("{missing}")), libc::ENOENT)
            } else {
                Error::system(
                    cannot_use(format_args!("cannot look up {}", show(&here))),
                    &e,
                )
            }
        })?;
        match st.kind() {
            FileKind::Symlink => {
                if st.uid != 0 && st.uid != euid {
                    return Err(Error::new(
                        ErrorKind::Unsafe,
                        cannot_use(format_args!(
                            "symbolic link {} is owned by uid {}, neither root nor the effective user (uid {euid})",
                            show(&here),
                            st.uid
                        )),
                    ));
                }
                if dir_st.perms() & 0o022 != 0 {
                    return Err(Error::new(
                        ErrorKind::Unsafe,
                        cannot_use(format_args!(
                            "symbolic link {} is in {}, which others can write to (mode {:04o}), so it is not followed whoever owns it",
                            show(&here),
                            show(&dir_path),
                            dir_st.perms()
                        )),
                    ));
                }
                links += 1;
                if links > MAX_SYMLINKS {
                    let err = io::Error::from_raw_os_error(libc::ELOOP);
                    return Err(Error::system(
                        cannot_use(format_args!("more than {MAX_SYMLINKS} symbolic links")),
                        &err,
                    ));
                }
                let target = sys::readlink_at(At::Fd(dir), &name).map_err(|e| {
                    Error::system(
                        cannot_use(format_args!("cannot read link {}", show(&here))),
                        &e,
                    )
                })?;
                if target.first() == Some(&b'/') {
                    stack.truncate(1);
                }
                push_components(&mut pending, OsStr::from_bytes(&target), true);
            }
            FileKind::Directory => {
                let fd = sys::open_dir_path(At::Fd(dir), &name).map_err(|e| {
                    Error::system(
                        cannot_use(format_args!("cannot open directory {}", show(&here))),
                        &e,
                    )
                })?;
                // Check what was opened, not what was looked at a moment before.
                let st = sys::fstat(fd.as_fd()).map_err(|e| {
                    Error::system(cannot_use(format_args!("cannot stat {}", show(&here))), &e)
                })?;
                check_dir(&st, &here, euid).map_err(|e| e.with_context(&context))?;
                stack.push((fd, component, st));
            }
            other => {
                let err = io::Error::from_raw_os_error(libc::ENOTDIR);
                return Err(Error::system(
                    cannot_use(format_args!("{} is {}", show(&here), other.describe())),
                    &err,
                ));
            }
        }
    }
    let path = current_path(&stack);
    let (fd, _, _) = stack.pop().expect("root stays");
    Ok(Parent { path, fd })
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

/// One place automatic choice may use, and where it came from ("$TMPDIR", "/tmp").
pub struct Candidate {
    pub origin: &'static str,
    pub path: Option<OsString>,
    /// Why the candidate is not even looked at (an environment variable in a setuid program).
    pub ignored: Option<&'static str>,
}

/// The candidates, in order: `$XDG_RUNTIME_DIR`, `$TMPDIR`, `/tmp`, `/var/tmp`.
///
/// In a program running with `AT_SECURE` (setuid, setgid, file capabilities) the environment
/// belongs to whoever started it, so both variables are ignored: glibc strips `TMPDIR` for such
/// programs, but not `XDG_RUNTIME_DIR`.
pub fn candidates() -> Vec<Candidate> {
    let secure = sys::secure_execution();
    let from_env = |origin: &'static str| Candidate {
        origin,
        path: if secure {
            None
        } else {
            std::env::var_os(&origin[1..])
        },
        ignored: secure.then_some("ignored in a setuid or setgid program"),
    };
    let fixed = |origin: &'static str| Candidate {
        origin,
        path: Some(origin.into()),
        ignored: None,
    };
    vec![
        from_env("$XDG_RUNTIME_DIR"),
        from_env("$TMPDIR"),
        fixed("/tmp"),
        fixed("/var/tmp"),
    ]
}

impl Candidate {
    /// Words for the "none fits" message: "$TMPDIR (/x/y)" or "/tmp".
    pub fn label(&self) -> String {
        match &self.path {
            Some(path) if self.origin.starts_with('$') => {
                format!("{} ({})", self.origin, show_bytes(path.as_bytes()))
            }
            _ => self.origin.to_string(),
        }
    }
}
