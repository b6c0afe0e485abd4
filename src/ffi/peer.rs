//! Exports for who may connect: peer credentials, the accept policy, directories shared with a
//! group.

use std::ffi::c_int;
use std::os::fd::IntoRawFd;

use super::args::{self, borrow_fd, null_arg, opt_out};
use super::boundary::ffi_boundary;
use crate::error::Error;
use crate::{AcceptPolicy, Allow, Peer};

/// `usock_policy_new`: admit only this process's effective user (never the overflow uid: a
/// server running as `nobody`, or in a user namespace that does not map its user, admits no
/// one).
pub const USOCK_ALLOW_SAME_USER: c_int = 0;
/// `usock_policy_new`: admit members of one group (`ids[0]`), supplementary groups included
/// (never through the overflow gid, never the overflow uid).
pub const USOCK_ALLOW_GROUP: c_int = 1;
/// `usock_policy_new`: admit the uids in `ids` (never the overflow uid).
pub const USOCK_ALLOW_UIDS: c_int = 2;

/// The credentials of the other end of a connected socket. `pid` is -1 where the system does
/// not report it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct UsockPeer {
    pub uid: u32,
    pub gid: u32,
    pub pid: i32,
}

impl From<Peer> for UsockPeer {
    fn from(p: Peer) -> UsockPeer {
        UsockPeer {
            uid: p.uid,
            gid: p.gid,
            pid: p.pid.unwrap_or(-1),
        }
    }
}

/// An accept policy (opaque). Made by `usock_policy_new`, freed by `usock_policy_free`.
pub struct UsockPolicy {
    inner: AcceptPolicy,
}

/// The policy `policy` points to, or for NULL the same-user policy (kept in `same_user`).
///
/// # Safety
/// `policy` is NULL or a live policy.
unsafe fn policy_or_same_user(
    policy: *const UsockPolicy,
    same_user: &mut Option<AcceptPolicy>,
) -> &AcceptPolicy {
    // SAFETY: the caller passes NULL or a live policy.
    match unsafe { policy.as_ref() } {
        Some(p) => &p.inner,
        None => same_user.insert(AcceptPolicy::default()),
    }
}

/// Writes the credentials of the peer of the connected Unix domain socket `fd` into `*out`:
/// `SO_PEERCRED` on Linux and OpenBSD, `LOCAL_PEERCRED` on macOS and FreeBSD, `LOCAL_PEEREID`
/// on NetBSD, `getpeereid` as the floor. A server's accepted connection gives the client (at
/// `connect()`); a client's socket gives the server (at `listen()`).
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (`out` NULL, `fd` negative); `USOCK_ERR_SYSTEM`
/// when the system cannot say (`ENOTCONN` for a datagram socket, `ENOTSOCK`...): it never
/// guesses. Thread-safe.
///
/// # Safety
/// `out` is NULL or points to a writable `usock_peer`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_peer_of(fd: c_int, out: *mut UsockPeer) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let out = unsafe { args::out(out, "out") }?;
        // SAFETY: as this function's contract.
        let fd = unsafe { borrow_fd(fd, || format!("fd {fd} is not a descriptor")) }?;
        out.write(crate::peer(fd)?.into());
        Ok(())
    }
}

/// The overflow uid and gid in force (`*out_uid`, `*out_gid`; either may be NULL): what the
/// kernel shows for a user or group it cannot map into this user namespace. Linux's
/// `/proc/sys/kernel/overflowuid` and `overflowgid`, read once; `OVERFLOW_UID` and
/// `OVERFLOW_GID` (65534) where the system does not say. No policy admits the overflow uid or
/// counts the overflow gid as a group, and no client check accepts a server running as the
/// overflow uid.
///
/// Returns `USOCK_OK`. Thread-safe.
///
/// # Safety
/// The out-pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_overflow_ids(out_uid: *mut u32, out_gid: *mut u32) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        if let Some(out_uid) = unsafe { opt_out(out_uid) } {
            out_uid.write(crate::overflow_uid());
        }
        // SAFETY: as this function's contract.
        if let Some(out_gid) = unsafe { opt_out(out_gid) } {
            out_gid.write(crate::overflow_gid());
        }
        Ok(())
    }
}

/// Makes an accept policy in `*out_policy`: `allow` is `USOCK_ALLOW_SAME_USER` (`ids` unused),
/// `USOCK_ALLOW_GROUP` (`ids[0]` the gid, `n_ids` 1) or `USOCK_ALLOW_UIDS` (`ids[0..n_ids]`).
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (an unknown `allow`, `ids` NULL or `n_ids` wrong, or
/// a group policy on a system that cannot tell a peer's supplementary groups: OpenBSD and
/// NetBSD, where it fails closed). Thread-safe.
///
/// # Safety
/// `ids` is NULL or readable for `n_ids` entries; `out_policy` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_policy_new(
    allow: c_int,
    ids: *const u32,
    n_ids: usize,
    out_policy: *mut *mut UsockPolicy,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let out_policy = unsafe { args::out(out_policy, "out_policy") }?;
        let ids: &[u32] = if n_ids == 0 {
            &[]
        } else if ids.is_null() {
            return Err(null_arg("ids"));
        } else {
            // SAFETY: ids is non-NULL and readable for n_ids entries, as the caller promises.
            unsafe { std::slice::from_raw_parts(ids, n_ids) }
        };
        let allow = match (allow, ids) {
            (USOCK_ALLOW_SAME_USER, _) => Allow::SameUser,
            (USOCK_ALLOW_GROUP, [gid]) => Allow::Group(*gid),
            (USOCK_ALLOW_UIDS, uids) => Allow::Uids(uids.to_vec()),
            (USOCK_ALLOW_GROUP, _) => {
                return Err(Error::invalid(format!("a group policy takes one gid, not {n_ids}")));
            }
            (other, _) => {
                return Err(Error::invalid(format!(
                    "unknown policy {other}: use USOCK_ALLOW_SAME_USER, USOCK_ALLOW_GROUP or USOCK_ALLOW_UIDS"
                )));
            }
        };
        let inner = AcceptPolicy::new(allow)?;
        out_policy.write(Box::into_raw(Box::new(UsockPolicy { inner })));
        Ok(())
    }
}

/// Accepts a connection on `listen_fd` that `policy` admits (NULL: the same user only) and
/// returns it in `*out_fd` (close-on-exec), its peer in `*out_peer` (if not NULL). Every
/// connection from anyone else is closed before this returns, and counted in the policy
/// (`usock_policy_refused`). On a non-blocking listener, no admissible connection waiting is
/// `USOCK_ERR_SYSTEM` with `EAGAIN`, as `accept()` would say.
///
/// Returns `USOCK_OK`; `USOCK_ERR_INVALID` (`out_fd` NULL, `listen_fd` negative);
/// `USOCK_ERR_SYSTEM` (`accept()` failed). Thread-safe: several threads may accept with one
/// policy.
///
/// # Safety
/// `policy` is NULL or a live policy; `out_peer` is NULL or writable; `out_fd` is NULL or
/// points to a writable `int`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_accept(
    policy: *const UsockPolicy,
    listen_fd: c_int,
    out_peer: *mut UsockPeer,
    out_fd: *mut c_int,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let out_fd = unsafe { args::out(out_fd, "out_fd") }?;
        // SAFETY: as this function's contract.
        let listener =
            // SAFETY: as this function's contract.
            unsafe { borrow_fd(listen_fd, || format!("listen_fd {listen_fd} is not a descriptor")) }?;
        let mut same_user = None;
        // SAFETY: the caller passes NULL or a live policy.
        let policy = unsafe { policy_or_same_user(policy, &mut same_user) };
        let (fd, peer) = policy.accept(listener)?;
        // SAFETY: as this function's contract.
        if let Some(out_peer) = unsafe { opt_out(out_peer) } {
            out_peer.write(peer.into());
        }
        out_fd.write(fd.into_raw_fd());
        Ok(())
    }
}

/// Checks a connection accepted by other code (an event loop, another socket library) against
/// `policy` (NULL: the same user only). Admitted: `USOCK_OK`, and its peer in `*out_peer` (if
/// not NULL). Refused: `USOCK_ERR_UNSAFE`, counted in the policy; close the connection without
/// reading from it. `USOCK_ERR_INVALID` for a negative `fd`. Thread-safe.
///
/// # Safety
/// `policy` is NULL or a live policy; `out_peer` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_policy_check(
    policy: *const UsockPolicy,
    fd: c_int,
    out_peer: *mut UsockPeer,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: as this function's contract.
        let fd = unsafe { borrow_fd(fd, || format!("fd {fd} is not a descriptor")) }?;
        let mut same_user = None;
        // SAFETY: the caller passes NULL or a live policy.
        let policy = unsafe { policy_or_same_user(policy, &mut same_user) };
        let peer = policy.screen(fd)?;
        // SAFETY: as this function's contract.
        if let Some(out_peer) = unsafe { opt_out(out_peer) } {
            out_peer.write(peer.into());
        }
        Ok(())
    }
}

/// How many connections `policy` refused (`*out_count`), and the uid of the last refused one
/// (`*out_last_uid`, -1 before any or when its uid could not be read). Either may be NULL.
///
/// Returns `USOCK_OK`, or `USOCK_ERR_INVALID` for a NULL policy. Thread-safe.
///
/// # Safety
/// `policy` is NULL or a live policy; the out-pointers are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_policy_refused(
    policy: *const UsockPolicy,
    out_count: *mut u64,
    out_last_uid: *mut i64,
) -> c_int {
    ffi_boundary! { result;
        // SAFETY: the caller passes NULL or a live policy.
        let policy = unsafe { policy.as_ref() }.ok_or_else(|| null_arg("policy"))?;
        let (count, last) = policy.inner.refused();
        // SAFETY: as this function's contract.
        if let Some(out_count) = unsafe { opt_out(out_count) } {
            out_count.write(count);
        }
        // SAFETY: as this function's contract.
        if let Some(out_last_uid) = unsafe { opt_out(out_last_uid) } {
            out_last_uid.write(last.map_or(-1, i64::from));
        }
        Ok(())
    }
}

/// Frees a policy. NULL is a no-op. Not while another thread is inside `usock_accept` with it.
///
/// # Safety
/// `policy` is NULL or a live policy from `usock_policy_new`, which this call consumes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn usock_policy_free(policy: *mut UsockPolicy) -> c_int {
    ffi_boundary! { result;
        if !policy.is_null() {
            // SAFETY: the caller hands over a live policy made by Box::into_raw.
            drop(unsafe { Box::from_raw(policy) });
        }
        Ok(())
    }
}
