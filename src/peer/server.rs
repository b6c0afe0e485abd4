//! Which server a client accepts: the check [`connect_with`](crate::connect_with) makes of the
//! server's credentials.

use std::os::fd::BorrowedFd;

use super::{overflow_uid, peer};
use crate::error::{Error, ErrorKind, Result};
use crate::sys;

/// Which server a client accepts (the connect option of
/// [`ConnectOptions::server`](crate::ConnectOptions::server)). A check never accepts a server whose
/// uid is the overflow uid ([`overflow_uid`]), even when it is this process's own or the one named:
/// it stands for anyone the kernel could not map.
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
