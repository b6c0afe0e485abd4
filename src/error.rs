//! The one error type of usock: a kind (which maps one-to-one onto the C status codes), a message
//! that names the path and the reason, and the operating system's errno when one caused it.

use std::ffi::CStr;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong, in the categories a caller handles differently.
///
/// The discriminants are the C ABI's status codes (`USOCK_ERR_*`) and are stable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A bad argument: an unknown flag or socket type, a bad socket name.
    Invalid = -1,
    /// The socket path would not fit in `sockaddr_un.sun_path` (NUL included).
    TooLong = -2,
    /// A directory failed a safety check (owner, mode, symlink, sticky bit).
    Unsafe = -3,
    /// Automatic choice found no usable parent directory.
    NoDir = -4,
    /// That socket name is already taken in the directory.
    InUse = -5,
    /// Fresh random names kept colliding.
    Exhausted = -6,
    /// Cleanup found something usock did not make; it was left in place.
    Changed = -7,
    /// A system call failed; [`Error::raw_os_error`] has the errno.
    System = -8,
    /// The caller's buffer is too small (C ABI only).
    Buffer = -9,
    /// An internal error was caught at the C boundary (C ABI only).
    Panic = -10,
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

    /// [`describe`](ErrorKind::describe) as a C string, for `usock_strerror`.
    pub(crate) fn describe_c(self) -> &'static CStr {
        match self {
            ErrorKind::Invalid => c"invalid argument",
            ErrorKind::TooLong => c"socket path too long for sun_path",
            ErrorKind::Unsafe => c"directory failed a safety check",
            ErrorKind::NoDir => c"no usable parent directory found",
            ErrorKind::InUse => c"socket name already in use",
            ErrorKind::Exhausted => c"random directory names kept colliding",
            ErrorKind::Changed => c"cleanup found files usock did not make and left them",
            ErrorKind::System => c"system call failed",
            ErrorKind::Buffer => c"buffer too small",
            ErrorKind::Panic => c"internal error caught at the usock boundary",
        }
    }

    /// The C name of the status code, e.g. `c"USOCK_ERR_TOO_LONG"`, for `usock_status_name`.
    pub(crate) fn name_c(self) -> &'static CStr {
        match self {
            ErrorKind::Invalid => c"USOCK_ERR_INVALID",
            ErrorKind::TooLong => c"USOCK_ERR_TOO_LONG",
            ErrorKind::Unsafe => c"USOCK_ERR_UNSAFE",
            ErrorKind::NoDir => c"USOCK_ERR_NO_DIR",
            ErrorKind::InUse => c"USOCK_ERR_IN_USE",
            ErrorKind::Exhausted => c"USOCK_ERR_EXHAUSTED",
            ErrorKind::Changed => c"USOCK_ERR_CHANGED",
            ErrorKind::System => c"USOCK_ERR_SYSTEM",
            ErrorKind::Buffer => c"USOCK_ERR_BUFFER",
            ErrorKind::Panic => c"USOCK_ERR_PANIC",
        }
    }

    /// The kind with status code `code`, if usock defines one.
    pub fn from_code(code: i32) -> Option<ErrorKind> {
        const ALL: [ErrorKind; 10] = [
            ErrorKind::Invalid,
            ErrorKind::TooLong,
            ErrorKind::Unsafe,
            ErrorKind::NoDir,
            ErrorKind::InUse,
            ErrorKind::Exhausted,
            ErrorKind::Changed,
            ErrorKind::System,
            ErrorKind::Buffer,
            ErrorKind::Panic,
        ];
        ALL.into_iter().find(|kind| kind.code() == code)
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

    /// A failed system call: `what` says what was being done, e.g. "cannot create directory /tmp/x".
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
        let kind = match err.kind {
            ErrorKind::Invalid => io::ErrorKind::InvalidInput,
            ErrorKind::TooLong => io::ErrorKind::InvalidInput,
            ErrorKind::Unsafe => io::ErrorKind::PermissionDenied,
            ErrorKind::NoDir => io::ErrorKind::NotFound,
            ErrorKind::InUse => io::ErrorKind::AddrInUse,
            ErrorKind::Exhausted => io::ErrorKind::AlreadyExists,
            ErrorKind::System => match err.errno {
                Some(errno) => io::Error::from_raw_os_error(errno).kind(),
                None => io::ErrorKind::Other,
            },
            _ => io::ErrorKind::Other,
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
