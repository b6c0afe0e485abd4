//! Exit codes: usock's statuses (negative numbers in the C ABI) as distinct small codes.

use std::process::ExitCode;

use usock::{Error, ErrorKind};

/// The table printed by `--help` (and in the man page).
pub const EXIT_CODES: &str = "\
Exit codes:
  0    success (usock run: the command's own status; 128+n when signal n killed it)
  2    bad usage
  11   invalid argument (USOCK_ERR_INVALID)
  12   path too long for sun_path (USOCK_ERR_TOO_LONG)
  13   a directory or peer failed a safety check (USOCK_ERR_UNSAFE)
  14   no usable parent directory (USOCK_ERR_NO_DIR)
  15   name or path in use (USOCK_ERR_IN_USE)
  16   random names kept colliding (USOCK_ERR_EXHAUSTED)
  17   cleanup found something usock did not make and left it (USOCK_ERR_CHANGED)
  18   a system call failed (USOCK_ERR_SYSTEM)
  126  usock run: the command cannot be executed
  127  usock run: the command was not found";

/// The exit code for an error of `kind`: 10 + |status|.
pub fn code(kind: ErrorKind) -> ExitCode {
    let status = kind.code().unsigned_abs().min(20);
    ExitCode::from(10 + status as u8)
}

/// Prints the library's message and returns the exit code for it.
pub fn failure(err: &Error) -> ExitCode {
    eprintln!("usock: {}", err.message());
    code(err.kind())
}
