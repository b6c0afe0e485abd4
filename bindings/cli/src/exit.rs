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
  13   a directory or peer failed a safety check (USOCK_ERR_UNSAFE; usock connect: the
       server runs as another user than --server-uid allows)
  14   no usable parent directory (USOCK_ERR_NO_DIR)
  15   name or path in use (USOCK_ERR_IN_USE)
  16   random names kept colliding (USOCK_ERR_EXHAUSTED)
  17   cleanup found something usock did not make and left it (USOCK_ERR_CHANGED)
  18   a system call failed (USOCK_ERR_SYSTEM)
  21   usock connect: nothing at the path (ENOENT)
  22   usock connect: nobody listening there, or not a socket (ECONNREFUSED)
  23   usock connect: permission denied (EACCES, EPERM)
  24   usock connect: the server closed the connection before it took all of standard input
  126  usock run: the command cannot be executed
  127  usock run: the command was not found";

/// `usock connect`'s own codes, for what the library reports as one `USOCK_ERR_SYSTEM` but a
/// script wants to tell apart (in the table above).
pub const NOTHING_THERE: u8 = 21;
pub const REFUSED: u8 = 22;
pub const DENIED: u8 = 23;
pub const CLOSED_EARLY: u8 = 24;

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
