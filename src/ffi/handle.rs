//! The C handle of a private directory, and the count of calls in flight on it.
//!
//! C gives no lifetimes: a binding that frees a handle from one thread (an exit hook, a garbage
//! collector) while another thread is still inside `usock_bind` with it would have that call
//! write into freed memory. Every export that takes a handle enters it first; `usock_cleanup`
//! refuses new calls, waits until the last call in flight has left, and only then removes the
//! directory and frees the handle.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::args::Out;
use crate::PrivateDir;
use crate::error::Error;

/// The closing bit of [`UsockDir::calls`]; the bits below count calls in flight.
const CLOSING: usize = 1 << (usize::BITS - 1);

/// A private socket directory (opaque). Made by `usock_create_dir`, freed by `usock_cleanup`.
pub struct UsockDir {
    pub(crate) inner: PrivateDir,
    /// Calls in flight, and whether cleanup has begun. An atomic, not a lock: a lock that a
    /// thread of the parent held at `fork` would stay locked in the child forever.
    calls: AtomicUsize,
}

/// Proof that a call is in flight on a handle; leaving drops it.
pub struct Entered<'a> {
    handle: &'a UsockDir,
}

/// What `usock_cleanup` may do with a handle, once [`UsockDir::close`] returns.
pub(crate) enum Closed {
    /// No call is in flight and none can begin: clean up and free it.
    Free,
    /// Another `usock_cleanup` of the same handle began first; it frees the handle.
    AlreadyClosing,
    /// A forked child whose count includes calls that were in flight in its parent's threads
    /// at `fork` (they never finish here, so waiting would never end). A child removes nothing
    /// anyway; the handle is left allocated rather than freed under a call that might be real.
    LeftInChild,
}

impl UsockDir {
    pub(crate) fn new(inner: PrivateDir) -> UsockDir {
        UsockDir {
            inner,
            calls: AtomicUsize::new(0),
        }
    }

    /// Counts a call in; fails once `usock_cleanup` has begun on this handle.
    pub(crate) fn enter(&self) -> Result<Entered<'_>, Error> {
        if self.calls.fetch_add(1, Ordering::AcqRel) & CLOSING != 0 {
            self.calls.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::invalid(format!(
                "the handle of {} is being cleaned up by another thread",
                crate::error::show(self.inner.path())
            )));
        }
        Ok(Entered { handle: self })
    }

    /// Refuses new calls and waits until every call in flight has left (calls are a few
    /// system calls long: polling costs nothing that matters).
    pub(crate) fn close(&self) -> Closed {
        let before = self.calls.fetch_or(CLOSING, Ordering::AcqRel);
        if before & CLOSING != 0 {
            return Closed::AlreadyClosing;
        }
        if before != 0 && !self.inner.in_creator() {
            return Closed::LeftInChild;
        }
        let mut pause = Duration::from_micros(10);
        while self.calls.load(Ordering::Acquire) != CLOSING {
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
        Closed::Free
    }
}

impl std::ops::Deref for Entered<'_> {
    type Target = PrivateDir;

    fn deref(&self) -> &PrivateDir {
        &self.handle.inner
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.handle.calls.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Hands a new directory handle to the caller in `*out_dir`: the tail of every export that
/// makes a handle (create, create shared, take over).
pub(crate) fn hand_out(made: PrivateDir, out_dir: Out<'_, *mut UsockDir>) {
    out_dir.write(Box::into_raw(Box::new(UsockDir::new(made))));
}
