//! The C handle of a private directory, and the count of calls in flight on it.
//!
//! C gives no lifetimes: a binding that frees a handle from one thread (an exit hook, a garbage
//! collector) while another thread is still inside `usock_bind` with it would have that call
//! write into freed memory. Every export that takes a handle enters it first; `usock_cleanup`
//! refuses new calls, waits until the last call in flight has left, and only then removes the
//! directory and frees the handle.

use std::sync::{Condvar, Mutex, MutexGuard};

use crate::PrivateDir;
use crate::error::Error;

/// A private socket directory (opaque). Made by `usock_create_dir`, freed by `usock_cleanup`.
pub struct UsockDir {
    pub(crate) inner: PrivateDir,
    calls: Mutex<Calls>,
    drained: Condvar,
}

#[derive(Default)]
struct Calls {
    in_flight: usize,
    closing: bool,
}

/// Proof that a call is in flight on a handle; leaving drops it.
pub struct Entered<'a> {
    handle: &'a UsockDir,
}

impl UsockDir {
    pub(crate) fn new(inner: PrivateDir) -> UsockDir {
        UsockDir {
            inner,
            calls: Mutex::new(Calls::default()),
            drained: Condvar::new(),
        }
    }

    fn calls(&self) -> MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a call in; fails once `usock_cleanup` has begun on this handle.
    pub(crate) fn enter(&self) -> Result<Entered<'_>, Error> {
        let mut calls = self.calls();
        if calls.closing {
            return Err(Error::invalid(format!(
                "the handle of {} is being cleaned up by another thread",
                crate::error::show(self.inner.path())
            )));
        }
        calls.in_flight += 1;
        Ok(Entered { handle: self })
    }

    /// Refuses new calls and waits until every call in flight has left. False when another
    /// `usock_cleanup` already began on this handle (it will free it; this one must not).
    pub(crate) fn close(&self) -> bool {
        let mut calls = self.calls();
        if std::mem::replace(&mut calls.closing, true) {
            return false;
        }
        while calls.in_flight > 0 {
            calls = self.drained.wait(calls).unwrap_or_else(|e| e.into_inner());
        }
        true
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
        let mut calls = self.handle.calls();
        calls.in_flight -= 1;
        if calls.closing && calls.in_flight == 0 {
            self.handle.drained.notify_all();
        }
    }
}
