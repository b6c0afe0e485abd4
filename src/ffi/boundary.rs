//! What every export goes through: the panic boundary, argument checks, and the calling
//! thread's last error.

use std::any::Any;
use std::cell::RefCell;
use std::ffi::{c_char, c_int};

use crate::error::{Error, ErrorKind};

/// Wraps the body of every `extern "C"` function: runs it under `catch_unwind`, so that no
/// panic crosses into C, and turns a panic into the return type's failure value
/// (`USOCK_ERR_PANIC` for a status, NULL for a pointer) with a message in `usock_last_error()`.
/// `ffi_boundary!(on_panic = VALUE; body)` chooses another failure value.
/// `ffi_boundary!(result; body)` is for a body that returns `crate::Result<()>` and uses `?`:
/// `Ok` becomes `USOCK_OK`, an error its status, with the message, path and errno recorded for
/// `usock_last_error()`.
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
    (result; $($body:tt)*) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> $crate::Result<()> { $($body)* },
        )) {
            Ok(result) => $crate::ffi::boundary::status(result),
            Err(payload) => {
                $crate::ffi::boundary::record_panic(payload);
                $crate::ffi::boundary::OnPanic::on_panic()
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

/// Room for one message, NUL included; a longer one is cut at a character boundary with "…".
const MESSAGE_CAP: usize = 2048;

/// The calling thread's last failure. A fixed buffer, so that the thread-local needs no
/// destructor: it stays usable after the C library has run the thread's (or, at `exit`, the
/// process's) thread-local destructors, so `usock_cleanup` from an `atexit` handler or a
/// `pthread_key` destructor still returns its real status and message, and a pointer from
/// `usock_last_error()` stays valid for the thread's life.
struct LastError {
    message: [u8; MESSAGE_CAP],
    errno: c_int,
    /// The path the failure concerns, NUL-terminated ("" for none).
    path: [u8; PATH_CAP],
}

/// Room for one path, NUL included: `PATH_MAX` on Linux; a longer one is recorded as "".
const PATH_CAP: usize = 4096;

// No destructor may be registered for it (see LastError).
const _: () = assert!(!std::mem::needs_drop::<RefCell<LastError>>());

thread_local! {
    // (It is const; clippy asks again where thread-locals are emulated, as on OpenBSD.)
    #[allow(clippy::missing_const_for_thread_local)]
    static LAST_ERROR: RefCell<LastError> =
        const { RefCell::new(LastError { message: [0; MESSAGE_CAP], errno: 0, path: [0; PATH_CAP] }) };
}

/// Remembers `err` as this thread's last failure and returns its status code.
pub fn fail(err: &Error) -> c_int {
    LAST_ERROR.with(|last| {
        let mut last = last.borrow_mut();
        write_message(&mut last.message, err.message());
        last.errno = err.raw_os_error().unwrap_or(0);
        let path = err
            .path()
            .map_or(&b""[..], |p| p.as_os_str().as_encoded_bytes());
        let fits = path.len() < PATH_CAP && !path.contains(&0);
        let path = if fits { path } else { b"" };
        last.path[..path.len()].copy_from_slice(path);
        last.path[path.len()] = 0;
    });
    err.kind().code()
}

/// Copies `text` into `buf` NUL-terminated: NUL bytes shown as `\\0` (C would stop there),
/// and a text too long for the buffer cut at a character boundary and ended with "…".
fn write_message(buf: &mut [u8; MESSAGE_CAP], text: &str) {
    const MORE: &str = "…";
    let escaped = text.replace('\0', "\\0");
    let room = MESSAGE_CAP - 1;
    let (head, tail) = if escaped.len() <= room {
        (escaped.as_str(), "")
    } else {
        let mut end = room - MORE.len();
        while !escaped.is_char_boundary(end) {
            end -= 1;
        }
        (&escaped[..end], MORE)
    };
    buf[..head.len()].copy_from_slice(head.as_bytes());
    buf[head.len()..head.len() + tail.len()].copy_from_slice(tail.as_bytes());
    buf[head.len() + tail.len()] = 0;
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
    // Recording must not panic again: fail() only formats and touches a thread-local.
    let _ = std::panic::catch_unwind(|| {
        fail(&Error::new(
            ErrorKind::Panic,
            format!("internal error caught at the usock boundary: {what}"),
        ))
    });
}

/// Pointer to this thread's last failure message; valid until the thread's next failure.
pub fn last_message() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().message.as_ptr().cast())
}

/// Pointer to this thread's last failure's path ("" for none); valid like [`last_message`].
pub fn last_path() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().path.as_ptr().cast())
}

pub fn last_errno() -> c_int {
    LAST_ERROR.with(|last| last.borrow().errno)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

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
    fn long_messages_are_cut_at_a_character_boundary_and_nuls_shown() {
        let mut buf = [0xffu8; MESSAGE_CAP];
        write_message(&mut buf, "a\0b");
        assert_eq!(CStr::from_bytes_until_nul(&buf).unwrap(), c"a\\0b");
        let long = "é".repeat(MESSAGE_CAP);
        write_message(&mut buf, &long);
        let text = CStr::from_bytes_until_nul(&buf).unwrap().to_str().unwrap();
        assert!(
            text.ends_with('…') && text.len() < MESSAGE_CAP,
            "{}",
            text.len()
        );
        assert!(text.trim_end_matches('…').chars().all(|c| c == 'é'));
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
