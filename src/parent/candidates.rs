//! The places automatic choice tries, in order.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use crate::error::show_bytes;
use crate::sys;

/// One place automatic choice may use, and where it came from ("$TMPDIR", "/tmp").
pub struct Candidate {
    pub origin: &'static str,
    pub path: Option<OsString>,
    /// Why the candidate is not even looked at (an environment variable in a setuid program).
    pub ignored: Option<&'static str>,
}

/// The candidates, in order: on macOS the per-user temporary directory (which the system makes
/// for each user, 0700, and the environment cannot steer), then `$XDG_RUNTIME_DIR`, `$TMPDIR`,
/// `/tmp`, `/var/tmp`.
///
/// In a program running with `AT_SECURE` (setuid, setgid, file capabilities) the environment
/// belongs to whoever started it, so both variables are ignored: glibc strips `TMPDIR` for such
/// programs, but not `XDG_RUNTIME_DIR`.
pub fn candidates() -> Vec<Candidate> {
    let secure = sys::secure_execution();
    let from_env = |origin: &'static str| Candidate {
        origin,
        path: if secure {
            None
        } else {
            std::env::var_os(&origin[1..])
        },
        ignored: secure.then_some("ignored in a setuid or setgid program"),
    };
    let fixed = |origin: &'static str| Candidate {
        origin,
        path: Some(origin.into()),
        ignored: None,
    };
    let mut candidates = Vec::with_capacity(5);
    if sys::HAS_USER_TEMP_DIR {
        candidates.push(Candidate {
            origin: USER_TEMP_DIR,
            path: sys::user_temp_dir(),
            ignored: None,
        });
    }
    candidates.extend([
        from_env("$XDG_RUNTIME_DIR"),
        from_env("$TMPDIR"),
        fixed("/tmp"),
        fixed("/var/tmp"),
    ]);
    candidates
}

/// macOS's per-user temporary directory, by the name of the call that finds it.
const USER_TEMP_DIR: &str = "confstr(_CS_DARWIN_USER_TEMP_DIR)";

impl Candidate {
    /// Words for the "none fits" message: "$TMPDIR (/x/y)" or "/tmp".
    pub fn label(&self) -> String {
        match &self.path {
            Some(path) if self.origin.starts_with('$') || self.origin == USER_TEMP_DIR => {
                format!("{} ({})", self.origin, show_bytes(path.as_bytes()))
            }
            _ => self.origin.to_string(),
        }
    }
}
