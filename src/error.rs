//! The one error type of usock: a kind (which maps one-to-one onto the C status codes), a message
//! that names the path and the reason, and the operating system's errno when one caused it.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The one table of status kinds: for each, its doc, variant, C status code, C name, the fixed
/// description `usock_strerror` returns, and the closest `io::ErrorKind`. [`ErrorKind`], its
/// [`code`](ErrorKind::code), [`from_code`](ErrorKind::from_code),
/// [`describe`](ErrorKind::describe) and the C names are generated from it. (The header's
/// `USOCK_ERR_*` constants are written out in `ffi/mod.rs`, where cbindgen reads them; a test holds
/// them to this table.)
macro_rules! status_kinds {
    ($($(#[doc = $doc:literal])* $kind:ident = $code:literal, $name:literal, $describe:literal, $io:ident;)*) => {
        /// What went wrong, in the categories a caller handles differently.
        ///
        /// The discriminants are the C ABI's status codes (`USOCK_ERR_*`) and are stable.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(i32)]
        #[non_exhaustive]
        pub enum ErrorKind {
            $($(#[doc = $doc])* $kind = $code,)*
        }

        impl ErrorKind {
            /// Every kind, in the order of their codes (-1 down).
            pub(crate) const ALL: &'static [ErrorKind] = &[$(ErrorKind::$kind),*];

            /// [`describe`](ErrorKind::describe) as a C string, for `usock_strerror`.
            pub(crate) fn describe_c(self) -> &'static CStr {
                match self {
                    $(ErrorKind::$kind => $describe,)*
                }
            }

            /// The closest [`io::ErrorKind`] (a `System` error takes its errno's instead).
            fn io_kind(self) -> io::ErrorKind {
                match self {
                    $(ErrorKind::$kind => io::ErrorKind::$io,)*
                }
            }

            /// The C name of the status code, e.g. `c"USOCK_ERR_TOO_LONG"`, for
            /// `usock_status_name`.
            pub(crate) fn name_c(self) -> &'static CStr {
                match self {
                    $(ErrorKind::$kind => $name,)*
                }
            }
        }
    };
}

status_kinds! {
    /// A bad argument: an unknown flag or socket type, a bad socket name.
    Invalid = -1, c"USOCK_ERR_INVALID", c"invalid argument", InvalidInput;
    /// The socket path would not fit in `sockaddr_un.sun_path` (NUL included).
    TooLong = -2, c"USOCK_ERR_TOO_LONG", c"socket path too long for sun_path", InvalidInput;
    /// A directory failed a safety check (owner, mode, symlink, sticky bit).
    Unsafe = -3, c"USOCK_ERR_UNSAFE", c"directory failed a safety check", PermissionDenied;
    /// Automatic choice found no usable parent directory.
    NoDir = -4, c"USOCK_ERR_NO_DIR", c"no usable parent directory found", NotFound;
    /// That socket name is already taken in the directory.
    InUse = -5, c"USOCK_ERR_IN_USE", c"socket name already in use", AddrInUse;
    /// Fresh random names kept colliding.
    Exhausted = -6, c"USOCK_ERR_EXHAUSTED", c"random directory names kept colliding", AlreadyExists;
    /// Cleanup found something usock did not make; it was left in place.
    Changed = -7, c"USOCK_ERR_CHANGED", c"cleanup found files usock did not make and left them",
        Other;
    /// A system call failed; [`Error::raw_os_error`] has the errno.
    System = -8, c"USOCK_ERR_SYSTEM", c"system call failed", Other;
    /// The caller's buffer is too small (C ABI only).
    Buffer = -9, c"USOCK_ERR_BUFFER", c"buffer too small", Other;
    /// An internal error was caught at the C boundary (C ABI only).
    Panic = -10, c"USOCK_ERR_PANIC", c"internal error caught at the usock boundary", Other;
}

impl ErrorKind {
    /// The status code of the C ABI.
    pub fn code(self) -> i32 {
        self as i32
    }

    /// A short, fixed description of the kind, e.g. "socket path too long for sun_path".
    pub fn describe(self) -> &'static str {
        self.describe_c().to_str().expect("descriptions are ASCII")
    }

    /// Every kind, in the order of their codes (-1, -2, ...): the one table the command's exit
    /// codes and the bindings' names are made from.
    pub fn all() -> &'static [ErrorKind] {
        ErrorKind::ALL
    }

    /// The C name of the status code, e.g. "USOCK_ERR_TOO_LONG" (what `usock_status_name`
    /// returns).
    pub fn name(self) -> &'static str {
        self.name_c().to_str().expect("names are ASCII")
    }

    /// Whether the Rust API can return this kind: [`ErrorKind::Buffer`] and
    /// [`ErrorKind::Panic`] belong to the C ABI alone.
    pub fn in_rust_api(self) -> bool {
        !matches!(self, ErrorKind::Buffer | ErrorKind::Panic)
    }

    /// The kind with status code `code`, if usock defines one.
    pub fn from_code(code: i32) -> Option<ErrorKind> {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.code() == code)
    }
}

/// An error from usock: a kind, a message with the path and the reason, and the errno if any.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    errno: Option<i32>,
    path: Option<PathBuf>,
}

/// `Result` with usock's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error of `kind`, with the errno `usock_last_errno()` promises for it (`EADDRINUSE`
    /// for [`ErrorKind::InUse`], `ENAMETOOLONG` for [`ErrorKind::TooLong`]) and none for the
    /// others. A [`ErrorKind::System`] error always has one: make it with [`Error::system`] or
    /// [`Error::system_errno`].
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        debug_assert!(kind != ErrorKind::System, "System errors carry an errno");
        let errno = match kind {
            ErrorKind::InUse => Some(libc::EADDRINUSE),
            ErrorKind::TooLong => Some(libc::ENAMETOOLONG),
            _ => None,
        };
        Error {
            kind,
            message: message.into(),
            errno,
            path: None,
        }
    }

    /// A failed system call: `what` says what was being done, e.g. "cannot create directory
    /// /tmp/x".
    pub(crate) fn system(what: impl fmt::Display, err: &io::Error) -> Error {
        Error::system_errno(
            format!("{what}: {}", strip_os_error_suffix(err)),
            errno_of(err),
        )
    }

    /// A [`ErrorKind::System`] error with a message already composed and the errno behind it.
    pub(crate) fn system_errno(message: impl Into<String>, errno: i32) -> Error {
        Error {
            kind: ErrorKind::System,
            message: message.into(),
            errno: Some(errno),
            path: None,
        }
    }

    /// The same error naming `path` as the path concerned, unless it names one already (the
    /// innermost call knows best which path failed).
    pub(crate) fn or_path(mut self, path: impl AsRef<Path>) -> Error {
        if self.path.is_none() {
            self.path = Some(path.as_ref().to_path_buf());
        }
        self
    }

    /// The same error with `context: ` before its message.
    pub(crate) fn with_context(mut self, context: impl fmt::Display) -> Error {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub(crate) fn with_errno(mut self, err: &io::Error) -> Error {
        self.errno = err.raw_os_error();
        self
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, message)
    }

    /// Which kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message: what was checked, on which path, what was found.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The errno behind the failure, when a system call caused it (`ENAMETOOLONG` for
    /// [`ErrorKind::TooLong`]).
    pub fn raw_os_error(&self) -> Option<i32> {
        self.errno
    }

    /// The path the failure concerns: the parent that was asked for, the directory, or the
    /// socket, as given or made (the message may name a component inside it).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// The errno of an I/O error; for one usock made itself (no errno), the closest: `ENOENT` for
/// "not found", `EIO` for anything else. So a [`ErrorKind::System`] error always carries one.
pub(crate) fn errno_of(err: &io::Error) -> i32 {
    err.raw_os_error().unwrap_or(match err.kind() {
        io::ErrorKind::NotFound => libc::ENOENT,
        _ => libc::EIO,
    })
}

/// `io::Error`'s Display appends " (os error N)"; our messages read better without it.
pub(crate) fn strip_os_error_suffix(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match (err.kind, err.errno) {
            (ErrorKind::System, Some(errno)) => io::Error::from_raw_os_error(errno).kind(),
            (kind, _) => kind.io_kind(),
        };
        io::Error::new(kind, err)
    }
}

/// Paths in messages: shown as they are, with bytes that are not UTF-8 escaped.
pub(crate) fn show(path: &Path) -> String {
    show_bytes(path.as_os_str().as_encoded_bytes())
}

/// Bytes for messages: UTF-8 as it is, anything else as `\xNN`.
pub(crate) fn show_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}
