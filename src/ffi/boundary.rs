//! What every export goes through: the panic boundary, argument checks, and the calling
//! thread's last error.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int};

use crate::error::{Error, ErrorKind};

/// Wraps the body of every `extern "C"` function: runs it under `catch_unwind`, so that no
/// panic crosses into C, and turns a panic into the return type's failure value
/// (`USOCK_ERR_PANIC` for a status, NULL for a pointer) with a message in `usock_last_error()`.
/// `ffi_boundary!(on_panic = VALUE; body)` chooses another failure value.
///
/// The signature stays outside the macro, where cbindgen can read it; a test checks that every
/// export's body starts with this macro.
macro_rules! ffi_boundary {
    (on_panic = $fallback:expr; $($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(value) => value,
            Err(payload) => {
                $crate::ffi::boundary::record_panic(payload);
                $fallback
            }
        }
    };
    ($($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| { $($body)* })) {
            Ok(value) => value,
            Err(payload) => {
                $crate::ffi::boundary::record_panic(payload);
                $crate::ffi::boundary::OnPanic::on_panic()
            }
        }
    };
}
pub(crate) use ffi_boundary;

/// The value an export returns when its body panicked.
pub trait OnPanic {
    fn on_panic() -> Self;
}

impl OnPanic for c_int {
    fn on_panic() -> c_int {
        ErrorKind::Panic.code()
    }
}

impl OnPanic for *const c_char {
    fn on_panic() -> *const c_char {
        std::ptr::null()
    }
}

struct LastError {
    message: CString,
    errno: c_int,
}

thread_local! {
    static LAST_ERROR: RefCell<LastError> =
        RefCell::new(LastError { message: CString::default(), errno: 0 });
}

/// Remembers `err` as this thread's last failure and returns its status code.
pub fn fail(err: &Error) -> c_int {
    let text = err.message().replace('\0', "\\0");
    let message = CString::new(text).unwrap_or_default();
    let errno = err.raw_os_error().unwrap_or(0);
    LAST_ERROR.with(|last| *last.borrow_mut() = LastError { message, errno });
    err.kind().code()
}

/// `USOCK_OK` for success; otherwise records the failure and returns its code.
pub fn status(result: crate::Result<()>) -> c_int {
    match result {
        Ok(()) => super::USOCK_OK,
        Err(err) => fail(&err),
    }
}

pub fn record_panic(payload: Box<dyn Any + Send>) {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string());
    // Recording must not panic again: fail() only allocates and touches a thread-local.
    let _ = std::panic::catch_unwind(|| {
        fail(&Error::new(
            ErrorKind::Panic,
            format!("internal error caught at the usock boundary: {what}"),
        ))
    });
}

/// Pointer to this thread's last failure message; valid until the thread's next failure.
pub fn last_message() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().message.as_ptr())
}

pub fn last_errno() -> c_int {
    LAST_ERROR.with(|last| last.borrow().errno)
}

/// An `Invalid` error for a NULL argument that may not be NULL.
pub fn null_arg(name: &str) -> Error {
    Error::invalid(format!("argument {name} is NULL"))
}

/// Reads an optional C string argument: `None` for NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to a NUL-terminated string that lives for `'a`.
pub unsafe fn opt_cstr<'a>(ptr: *const c_char) -> Option<&'a CStr> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
        Some(unsafe { CStr::from_ptr(ptr) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panicking_status() -> c_int {
        ffi_boundary! {
            if true {
                panic!("boom in a status function");
            }
            0
        }
    }

    fn panicking_pointer() -> *const c_char {
        ffi_boundary! {
            panic!("boom in a pointer function")
        }
    }

    fn panicking_with_fallback() -> *const c_char {
        ffi_boundary! { on_panic = c"fallback".as_ptr();
            panic!("boom with a fallback")
        }
    }

    fn message() -> String {
        // SAFETY: last_message points to this thread's NUL-terminated message.
        unsafe { CStr::from_ptr(last_message()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn a_panic_becomes_the_failure_value_and_a_message() {
        // (The panic messages go to this test's captured output, shown only if it fails.)
        let status = panicking_status();
        let status_message = message();
        let pointer = panicking_pointer();
        let fallback = panicking_with_fallback();

        assert_eq!(status, super::super::USOCK_ERR_PANIC);
        assert!(
            status_message
                .contains("internal error caught at the usock boundary: boom in a status function"),
            "{status_message}"
        );
        assert!(pointer.is_null());
        // SAFETY: the fallback is a static C string.
        assert_eq!(unsafe { CStr::from_ptr(fallback) }, c"fallback");
        assert!(message().contains("boom with a fallback"));
    }
}
