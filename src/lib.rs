//! # usock: a safe private place for a Unix domain socket
//!
//! A server that listens on a Unix domain socket needs a path that does not exist yet, that
//! nobody else can reach or pre-empt, and that fits in `sockaddr_un.sun_path`. usock makes a
//! fresh directory with an unpredictable name (65 bits from the OS random source) and mode 0700
//! in a parent it has checked, binds sockets inside it, checks path lengths before creating
//! anything, and removes exactly what it made when you are done.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//!
//! let dir = usock::PrivateDir::new()?;            // e.g. /run/user/1000/usock-k3m9…
//! let listener = dir.listener(None)?;             // bound at <dir>/sock, mode 0600, listening
//! let path = dir.socket_path(None)?;
//! let mut client = UnixStream::connect(&path)?;
//! let (mut server, _) = listener.accept()?;
//! client.write_all(b"ping")?;
//! let mut buf = [0; 4];
//! server.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"ping");
//! drop(listener);
//! dir.cleanup()?;                                 // removes the socket and the directory
//! assert!(!path.exists());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same operations are exported as a C ABI (`include/usock.h`), which the Python and
//! SWI-Prolog bindings call.

mod connect;
mod dir;
mod error;
mod ffi;
mod hooks;
mod limits;
mod name;
mod owner;
mod parent;
mod peer;
mod socket_type;
mod sys;
mod wellknown;

pub use connect::{ConnectOptions, connect, connect_with};
pub use dir::keep::KEEP_FOR;
pub use dir::sweep::{DEFAULT_GRACE, SweepReport, sweep};
pub use dir::{AutomaticCandidate, DirOptions, PrivateDir, Verdict, explain_automatic};
pub use error::{Error, ErrorKind, Result};
pub use limits::MAX_SOCKET_PATH;
pub use name::{DEFAULT_SOCKET_NAME, DIR_PREFIX};
pub use parent::{CheckStep, ParentCheck};
pub use socket_type::SocketType;
pub use wellknown::{BindMode, BoundPath};

/// Explains, directory by directory from `/`, whether `path` passes the checks a parent of
/// [`PrivateDir::in_parent`] must pass, and why not: the walk usock itself makes, with what it
/// found at each step (the `usock check` command prints it).
pub fn explain_parent(path: impl AsRef<std::path::Path>) -> ParentCheck {
    parent::explain(path.as_ref(), sys::geteuid())
}
pub use peer::{
    AcceptPolicy, Allow, OVERFLOW_GID, OVERFLOW_UID, Peer, Server, overflow_gid, overflow_uid, peer,
};

/// Test builds only (feature `test-hooks`): force the random source, hold operations at
/// chosen points.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod testing {
    pub use crate::hooks::{Point, set_hook, set_leftover_age};
    pub use crate::name::testing::force_random;

    /// The C ABI's functions, types and constants as Rust items, for tests that call them
    /// from Rust (the C ABI itself is `include/usock.h`; it is not part of the Rust API).
    pub mod ffi {
        pub use crate::ffi::*;
    }
}
