//! Who is at the other end: the peer's credentials, and an accept that admits only the
//! connections a policy allows.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, ErrorKind, Result};
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

/// Who an [`AcceptPolicy`] admits. No policy admits a peer whose uid is the overflow uid
/// ([`overflow_uid`]), and none counts the overflow gid ([`overflow_gid`]) as a group: those
/// are what the kernel shows for anyone it could not map into this user namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Allow {
    /// Only the effective user of this process (the default). A server whose effective uid is
    /// the overflow uid (running as `nobody`, or in a user namespace that does not map its
    /// user) admits no one under it.
    SameUser,
    /// Members of the group: its effective gid or a supplementary group. Fails closed where
    /// the system cannot tell a peer's supplementary groups (OpenBSD, NetBSD): the policy
    /// cannot be made there. A policy for the overflow gid admits no one.
    Group(u32),
    /// These uids (never the overflow uid, even if listed).
    Uids(Vec<u32>),
}

/// An accept that admits only the connections `allow` allows. A connection from anyone else is
/// closed before the caller sees it, and counted ([`refused`](AcceptPolicy::refused)).
#[derive(Debug)]
pub struct AcceptPolicy {
    allow: Allow,
    euid: u32,
    /// The overflow uid and gid, read when the policy was made.
    overflow: (u32, u32),
    refused: AtomicU64,
    /// The last refused uid, plus one (0: none yet).
    last_refused: AtomicU64,
}

impl Default for AcceptPolicy {
    fn default() -> AcceptPolicy {
        AcceptPolicy::new(Allow::SameUser).expect("same-user policies work everywhere")
    }
}

impl AcceptPolicy {
    /// A policy; [`ErrorKind::Invalid`] for [`Allow::Group`] where the system cannot tell a
    /// peer's supplementary groups.
    pub fn new(allow: Allow) -> Result<AcceptPolicy> {
        if let Allow::Group(gid) = allow {
            if !sys::PEER_GROUPS_KNOWN {
                return Err(Error::invalid(format!(
                    "a group policy (gid {gid}) cannot be enforced here: this system does not tell a socket's peer its supplementary groups, so membership cannot be checked"
                )));
            }
        }
        Ok(AcceptPolicy {
            allow,
            euid: sys::geteuid(),
            overflow: (overflow_uid(), overflow_gid()),
            refused: AtomicU64::new(0),
            last_refused: AtomicU64::new(0),
        })
    }

    /// Who the policy admits.
    pub fn allow(&self) -> &Allow {
        &self.allow
    }

    /// Does the policy admit the peer of the connected socket `fd`? `Err` when the peer cannot
    /// be known (which admits nobody). The overflow uid is never admitted, and the overflow gid
    /// never makes a member, whatever the policy names.
    pub fn admits(&self, fd: BorrowedFd<'_>) -> Result<(bool, Peer)> {
        let peer = peer(fd)?;
        let (overflow_uid, overflow_gid) = self.overflow;
        if peer.uid == overflow_uid {
            return Ok((false, peer));
        }
        let ok = match &self.allow {
            Allow::SameUser => peer.uid == self.euid,
            Allow::Uids(uids) => uids.contains(&peer.uid),
            Allow::Group(gid) if *gid == overflow_gid => false,
            Allow::Group(gid) => {
                peer.gid == *gid
                    || match sys::peer_groups(fd) {
                        Ok(Some(groups)) => groups.contains(gid),
                        Ok(None) => false,
                        Err(e) => {
                            return Err(Error::system("cannot read the peer's groups", &e));
                        }
                    }
            }
        };
        Ok((ok, peer))
    }

    /// Accepts connections on `listener` until one the policy admits arrives, and returns it
    /// (close-on-exec) with its peer. Each refused connection is closed at once and counted.
    /// On a non-blocking listener, no admissible connection waiting is `EAGAIN`
    /// ([`ErrorKind::System`]), as `accept()` says it.
    pub fn accept(&self, listener: BorrowedFd<'_>) -> Result<(OwnedFd, Peer)> {
        loop {
            let conn = sys::accept(listener)
                .map_err(|e| Error::system("cannot accept a connection", &e))?;
            match self.admits(conn.as_fd()) {
                Ok((true, peer)) => return Ok((conn, peer)),
                Ok((false, peer)) => self.refuse(Some(peer.uid)),
                Err(_) => self.refuse(None),
            }
        }
    }

    /// Checks a connection accepted by other code (an event loop, another socket library)
    /// and returns its peer when the policy admits it. A refusal is counted and is
    /// [`ErrorKind::Unsafe`]: close the connection without reading from it.
    pub fn screen(&self, conn: BorrowedFd<'_>) -> Result<Peer> {
        match self.admits(conn) {
            Ok((true, peer)) => Ok(peer),
            Ok((false, peer)) => {
                self.refuse(Some(peer.uid));
                Err(Error::new(
                    ErrorKind::Unsafe,
                    format!(
                        "a connection from uid {} (gid {}) is not admitted by the policy ({})",
                        peer.uid,
                        peer.gid,
                        self.describe()
                    ),
                ))
            }
            Err(e) => {
                self.refuse(None);
                Err(Error::new(
                    ErrorKind::Unsafe,
                    format!(
                        "a connection whose peer cannot be identified is refused: {}",
                        e.message()
                    ),
                ))
            }
        }
    }

    fn describe(&self) -> String {
        let (overflow_uid, overflow_gid) = self.overflow;
        let never = format!("never the overflow uid {overflow_uid}");
        match &self.allow {
            Allow::SameUser => format!("uid {} only, {never}", self.euid),
            Allow::Group(gid) => {
                format!(
                    "members of group {gid}, {never} nor through the overflow gid {overflow_gid}"
                )
            }
            Allow::Uids(uids) => format!("uids {uids:?}, {never}"),
        }
    }

    /// Counts a refusal (the caller closes the connection).
    fn refuse(&self, uid: Option<u32>) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if let Some(uid) = uid {
            self.last_refused
                .store(u64::from(uid) + 1, Ordering::Relaxed);
        }
    }

    /// How many connections were refused, and the uid of the last one refused (`None` before
    /// any, or when no uid could be read).
    pub fn refused(&self) -> (u64, Option<u32>) {
        let last = self.last_refused.load(Ordering::Relaxed);
        (
            self.refused.load(Ordering::Relaxed),
            last.checked_sub(1).map(|u| u as u32),
        )
    }
}

/// Which server a client accepts (the connect option of [`ConnectOptions::server`](crate::ConnectOptions::server)).
/// A check never accepts a server whose uid is the overflow uid ([`overflow_uid`]), even when
/// it is this process's own or the one named: it stands for anyone the kernel could not map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Server {
    /// Any server (no check).
    #[default]
    Any,
    /// The effective user of this process, or root.
    SelfOrRoot,
    /// Exactly this uid.
    Uid(u32),
}

impl Server {
    /// Checks the server at the other end of the connected socket `fd`; [`ErrorKind::Unsafe`]
    /// when it is someone else, or cannot be known.
    pub(crate) fn check(self, fd: BorrowedFd<'_>, path: &std::path::Path) -> Result<()> {
        if self == Server::Any {
            return Ok(());
        }
        let shown = crate::error::show(path);
        let who = peer(fd).map_err(|e| {
            Error::new(
                ErrorKind::Unsafe,
                format!(
                    "the server at {shown} cannot be identified ({}), so the connection was closed",
                    e.message()
                ),
            )
        })?;
        let overflow = overflow_uid();
        if who.uid == overflow {
            return Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "the server at {shown} runs as uid {overflow}, the overflow uid, which the kernel shows for any user it cannot map into this user namespace and so proves nothing; the connection was closed"
                ),
            ));
        }
        let euid = sys::geteuid();
        let (ok, wanted) = match self {
            Server::Any => (true, String::new()),
            Server::SelfOrRoot if euid == 0 => (who.uid == 0, "root (uid 0)".to_owned()),
            Server::SelfOrRoot => (
                who.uid == euid || who.uid == 0,
                format!("uid {euid} or root"),
            ),
            Server::Uid(uid) => (who.uid == uid, format!("uid {uid}")),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::Unsafe,
                format!(
                    "the server at {shown} runs as uid {}, not {wanted}; the connection was closed",
                    who.uid
                ),
            ))
        }
    }
}
