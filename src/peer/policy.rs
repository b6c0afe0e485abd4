//! Who may connect: [`Allow`], and the accept that admits only what it allows.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Peer, overflow_gid, overflow_uid, peer};
use crate::error::{Error, ErrorKind, Result};
use crate::sys;

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
