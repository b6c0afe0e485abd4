//! Exit codes: usock's statuses (negative numbers in the C ABI) as distinct small codes.

use std::process::ExitCode;
use std::sync::LazyLock;

use usock::{Error, ErrorKind};

/// The table printed by `--help` (and in the man page, which test_cli.sh holds to it): the
/// command's own codes around one row per status of the library, made from its table of kinds
/// ([`ErrorKind::all`]), so that a new kind cannot be left out.
pub static EXIT_CODES: LazyLock<String> = LazyLock::new(exit_code_table);

/// The rows before the library's statuses.
const HEAD: &str = "\
Exit codes:
  0    success (usock run: the command's own status, which can be any number,
       these below included; 128+n when signal n killed it)
  2    bad usage";

/// The rows after them: `usock connect`'s and `usock run`'s own.
const TAIL: &str = "  21   usock connect: nothing at the path (ENOENT)
  22   usock connect: nobody listening there, or not a socket (ECONNREFUSED)
  23   usock connect: permission denied (EACCES, EPERM)
  24   usock connect: the server closed the connection before it took all of standard input
  126  usock run: the command cannot be executed
  127  usock run: the command was not found";

/// What the command adds to a status's row (after its C name).
fn note(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Unsafe => {
            "; usock connect: also when the\n       server runs as another user than --server-uid allows"
        }
        ErrorKind::InUse => {
            "; also a --path another server holds,\n       or a directory usock clean finds held by a live process\n       or served by a socket in it"
        }
        _ => "",
    }
}

fn exit_code_table() -> String {
    let mut table = String::from(HEAD);
    for &kind in ErrorKind::all().iter().filter(|kind| kind.in_rust_api()) {
        let row = format!("{} ({}{})", kind.describe(), kind.name(), note(kind));
        table.push_str(&format!("\n  {:<5}{row}", exit_code(kind)));
    }
    table.push('\n');
    table.push_str(TAIL);
    table
}

/// `usock connect`'s own codes, for what the library reports as one `USOCK_ERR_SYSTEM` but a
/// script wants to tell apart (in the table above).
pub const NOTHING_THERE: u8 = 21;
pub const REFUSED: u8 = 22;
pub const DENIED: u8 = 23;
pub const CLOSED_EARLY: u8 = 24;

/// The exit code for an error of `kind`: 10 + |status|.
pub fn code(kind: ErrorKind) -> ExitCode {
    ExitCode::from(exit_code(kind))
}

fn exit_code(kind: ErrorKind) -> u8 {
    let status = kind.code().unsigned_abs().min(20);
    10 + status as u8
}

/// Prints the library's message and returns the exit code for it.
pub fn failure(err: &Error) -> ExitCode {
    eprintln!("usock: {}", err.message());
    code(err.kind())
}
