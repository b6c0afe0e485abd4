//! Test builds only (feature `test-hooks`): points inside usock's multi-step operations where a
//! test can hold one process or thread, to make an interleaving happen every time instead of
//! hoping for it. In other builds [`at`] compiles to nothing.

/// Where an operation can be held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Point {
    /// Under the lock, after the path was examined (a stale socket is still there, to be
    /// replaced by a rename), before `bind`.
    AfterProbe,
    /// Under the lock, with the new socket listening at its temporary name, before the
    /// `rename` over the path (replace mode, or a stale socket at the path in either mode).
    BeforeRename,
    /// A new private directory was made and opened, and is not locked yet (the path is the new
    /// directory's).
    DirMade,
    /// A new private directory was made (`mkdir`) and is not opened yet (the path is the new
    /// directory's).
    DirNamed,
    /// Cleanup found a socket to remove and has not unlinked it yet (the path is the socket's).
    BeforeSocketRemoved,
}

#[cfg(feature = "test-hooks")]
mod imp {
    use super::Point;
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    type Hook = Arc<dyn Fn(Point, &Path) + Send + Sync>;
    static HOOK: Mutex<Option<Hook>> = Mutex::new(None);

    /// Calls `hook(point, path)` at every [`Point`] of every operation in this process (the
    /// path is the well-known path as the caller gave it, or the new directory: filter on it,
    /// tests run in parallel);
    /// `None` removes it.
    pub fn set_hook(hook: Option<Hook>) {
        *HOOK.lock().unwrap_or_else(|e| e.into_inner()) = hook;
    }

    pub(crate) fn at(point: Point, path: &Path) {
        let hook = HOOK.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(hook) = hook {
            hook(point, path);
        }
    }
}

#[cfg(feature = "test-hooks")]
pub use imp::set_hook;

#[cfg(feature = "test-hooks")]
pub(crate) use imp::at;

/// [`at`] for a path that costs something to make: `path` is called only in test builds.
#[inline(always)]
pub(crate) fn at_with(point: Point, path: impl FnOnce() -> std::path::PathBuf) {
    #[cfg(feature = "test-hooks")]
    imp::at(point, &path());
    #[cfg(not(feature = "test-hooks"))]
    let _ = (point, path);
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn at(_point: Point, _path: &std::path::Path) {}

/// How old, in seconds, a temporary socket left beside a well-known path must be before a later
/// bind removes it: a minute, or what a test set with [`set_leftover_age`] (a test cannot make
/// a file's change time older).
pub(crate) fn leftover_age() -> i64 {
    #[cfg(feature = "test-hooks")]
    if let Some(age) = *LEFTOVER_AGE.lock().unwrap_or_else(|e| e.into_inner()) {
        return age;
    }
    60
}

#[cfg(feature = "test-hooks")]
static LEFTOVER_AGE: std::sync::Mutex<Option<i64>> = std::sync::Mutex::new(None);

/// Test builds only: the age [`leftover_age`] gives (`None`: a minute again).
#[cfg(feature = "test-hooks")]
pub fn set_leftover_age(age: Option<i64>) {
    *LEFTOVER_AGE.lock().unwrap_or_else(|e| e.into_inner()) = age;
}
