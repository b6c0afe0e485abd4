//! Who is at the other end: the peer's credentials (here), an accept that admits only the
//! connections a policy allows (`policy.rs`), and the client's check of the server
//! (`server.rs`). No check admits the overflow uid or counts the overflow gid.

mod policy;
mod server;

pub use policy::{AcceptPolicy, Allow};
pub use server::Server;

use std::os::fd::AsFd;

use crate::error::{Error, Result};
use crate::sys;

/// The uid an unmapped user of another user namespace appears as, where the system does not
/// say another: Linux's default `/proc/sys/kernel/overflowuid`, `nobody` on most systems
/// (`overflow_uid()` in Rust, `usock_overflow_ids` in C, read the one in force). No policy
/// admits it, and no client check accepts a server running as it: it stands for anyone the
/// kernel could not name.
pub const OVERFLOW_UID: u32 = 65534;

/// The gid an unmapped group appears as, where the system does not say another: Linux's
/// default `/proc/sys/kernel/overflowgid` (`overflow_gid()` in Rust, `usock_overflow_ids` in
/// C, read the one in force). A group policy never admits through it.
pub const OVERFLOW_GID: u32 = 65534;

/// The overflow uid in force: Linux's `/proc/sys/kernel/overflowuid` (read once), else
/// [`OVERFLOW_UID`].
pub fn overflow_uid() -> u32 {
    sys::overflow_ids().uid.unwrap_or(OVERFLOW_UID)
}

/// The overflow gid in force: Linux's `/proc/sys/kernel/overflowgid` (read once), else
/// [`OVERFLOW_GID`].
pub fn overflow_gid() -> u32 {
    sys::overflow_ids().gid.unwrap_or(OVERFLOW_GID)
}

/// The credentials the kernel recorded for the other end of a connected socket: for a server's
/// accepted connection, the client at `connect()`; for a client, the server at `listen()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
    /// The process id, where the system reports it (Linux, macOS, FreeBSD 13+, OpenBSD,
    /// NetBSD); `None` elsewhere.
    pub pid: Option<i32>,
}

/// The peer of the connected Unix domain socket `fd`. Fails where the system cannot say (a
/// datagram socket has no peer credentials): it never guesses.
pub fn peer(fd: impl AsFd) -> Result<Peer> {
    let fd = fd.as_fd();
    sys::peer_cred(fd)
        .map(|c| Peer {
            uid: c.uid,
            gid: c.gid,
            pid: c.pid,
        })
        .map_err(|e| Error::system("cannot read the peer's credentials", &e))
}
