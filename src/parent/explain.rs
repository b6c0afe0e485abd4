//! The walk, explained: every directory and symbolic link it looked at from `/` down, with what
//! it found (`usock check`, [`explain_parent`](crate::explain_parent)).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Parent, Walk, check_well_known_dir};
use crate::error::{Error, Result};
use crate::sys;

/// One step of [`explain_parent`](crate::explain_parent): a directory or symbolic link the walk
/// looked at, and what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckStep {
    pub path: PathBuf,
    /// What was found and the verdict, e.g. "directory, owner uid 0, mode 1777: passes (sticky)".
    pub found: String,
}

/// What [`explain_parent`](crate::explain_parent) found: each directory and link from `/` down, and
/// the outcome (the resolved path, or the error `usock_create_dir` would give).
#[derive(Debug)]
pub struct ParentCheck {
    pub steps: Vec<CheckStep>,
    /// The parent's path without symbolic links, or why `usock_create_dir` refuses it.
    pub result: Result<PathBuf>,
    /// For a parent that passes: whether it leaves room for a private directory's socket
    /// path (`/usock-…/sock` within `sun_path`).
    pub room: Option<Result<()>>,
    /// For a parent that passes: whether it may hold a well-known socket path
    /// ([`BoundPath`](crate::BoundPath)): nobody but its owner may write to it.
    pub well_known: Option<Result<()>>,
}

/// Walks `path` as [`open_checked`] does, recording every directory and symbolic link it looks
/// at with what it found: the explanation a person needs when a parent is refused.
pub fn explain(path: &Path, euid: u32) -> ParentCheck {
    if path.as_os_str().as_bytes().contains(&0) {
        return ParentCheck {
            steps: Vec::new(),
            result: Err(Error::invalid("a path cannot contain a NUL byte")),
            room: None,
            well_known: None,
        };
    }
    let mut walk = Walk::new(path, euid);
    walk.steps = Some(std::cell::RefCell::new(Vec::new()));
    let parent = walk.run();
    let (mut room, mut well_known) = (None, None);
    if let Ok(parent) = &parent {
        room = Some(crate::limits::check_parent_len(parent.path(), false));
        well_known = Some(
            sys::fstat(parent.fd())
                .map_err(|e| Error::system("cannot stat it", &e))
                .and_then(|st| check_well_known_dir(&st, parent.path())),
        );
    }
    ParentCheck {
        steps: walk
            .steps
            .take()
            .map(|s| s.into_inner())
            .unwrap_or_default(),
        result: parent.map(Parent::into_path),
        room,
        well_known,
    }
}
