//! Who owns a file, as far as this process can tell: every ownership check of usock (parents,
//! ancestors, symbolic links, the new directory, take-over, the sweep, cleanup, locks, bound
//! paths) asks here.
//!
//! In a user namespace the kernel shows every user it cannot map into it as the overflow uid
//! ([`overflow_uid`](crate::overflow_uid), usually 65534): another user's files and real root's
//! all look owned by that one uid. So a file owned by the overflow uid counts as the caller's or
//! root's only when the namespace maps every uid (the initial namespace does, `0 0 4294967295`
//! in `/proc/self/uid_map`, so a real `nobody` keeps working). A map that covers the overflow
//! uid itself is not enough: the users it leaves out still show as that uid. And a caller whose
//! own effective uid is such an ambiguous overflow uid is refused before anything is looked at.

use crate::error::{Error, ErrorKind, Result};
use crate::sys::{self, FileKind, Stat};

/// The uid `/proc/self/uid_map` counts when it maps every one: all but `(uid_t)-1`.
const EVERY_UID: u64 = u32::MAX as u64;

/// The effective uid, for the ownership checks of one operation. Fails with
/// [`ErrorKind::Unsafe`] when it is the overflow uid in a user namespace that does not map every
/// uid: running as an unmapped user, whose own files cannot be told from anyone else's.
pub(crate) fn caller() -> Result<u32> {
    let euid = sys::geteuid();
    match ambiguity(euid) {
        None => Ok(euid),
        Some(why) => Err(Error::new(
            ErrorKind::Unsafe,
            format!(
                "running as an unmapped user in a user namespace: file owners cannot be told \
                 apart (the effective uid {euid} is the overflow uid, which the kernel shows for \
                 every user this namespace does not map, and /proc/self/uid_map {why})"
            ),
        )),
    }
}

/// Is a file owned by `uid` the caller's (effective uid `euid`)?
pub(crate) fn is_callers(uid: u32, euid: u32) -> bool {
    uid == euid && ambiguity(uid).is_none()
}

/// The one owner-and-mode check of the files usock makes or removes: is `st` of `kind`, owned by
/// the caller (effective uid `euid`, as [`is_callers`] tells), and with exactly the permission
/// bits `mode` when one is given? The caller words its own refusal.
pub(crate) fn is_callers_file(st: &Stat, kind: FileKind, mode: Option<u32>, euid: u32) -> bool {
    st.kind() == kind && mode.is_none_or(|mode| st.perms() == mode) && is_callers(st.uid, euid)
}

/// May group or others write to `st` (a directory: create, rename or remove entries in it)?
pub(crate) fn others_can_write(st: &Stat) -> bool {
    st.perms() & 0o022 != 0
}

/// Has `st` the sticky bit (in a directory: only an entry's owner may remove or rename it)?
pub(crate) fn is_sticky(st: &Stat) -> bool {
    #[allow(clippy::unnecessary_cast)] // mode_t is u16 on some systems
    let sticky = libc::S_ISVTX as u32;
    st.perms() & sticky != 0
}

/// Is a file owned by `uid` root's or the caller's (effective uid `euid`)?
pub(crate) fn is_root_or_callers(uid: u32, euid: u32) -> bool {
    (uid == 0 || uid == euid) && ambiguity(uid).is_none()
}

/// The owner `uid` as a message shows it: "uid 40002", or, for an overflow uid that stands for
/// every unmapped user, says so.
pub(crate) fn shown(uid: u32) -> String {
    match ambiguity(uid) {
        None => format!("uid {uid}"),
        Some(_) => format!(
            "uid {uid} (the overflow uid: any user this user namespace does not map, root included)"
        ),
    }
}

/// Why an owner shown as `uid` may be any of several users (`None`: it names one user). Only
/// the overflow uid can, and only when the namespace leaves some uid unmapped; the map is read
/// only then.
fn ambiguity(uid: u32) -> Option<String> {
    if uid != crate::overflow_uid() {
        return None;
    }
    match sys::mapped_uid_count() {
        Ok(n) if n >= EVERY_UID => None,
        Ok(0) => Some("maps no uid".to_owned()),
        Ok(n) => Some(format!("maps {n} of the {EVERY_UID} uids")),
        Err(e) => Some(format!("cannot be read ({e})")),
    }
}

#[cfg(test)]
#[allow(clippy::unnecessary_cast)] // mode_t is u16 on some systems
mod tests {
    use super::*;

    fn stat(mode: u32, uid: u32) -> Stat {
        Stat {
            dev: 1,
            ino: 2,
            mode,
            uid,
            gid: 0,
            changed: 0,
            modified: 0,
        }
    }

    /// Kind, owner and mode each decide on their own; root is not the caller unless it is.
    #[test]
    fn is_callers_file_wants_kind_owner_and_exact_mode() {
        let me = 4242;
        let sock = libc::S_IFSOCK as u32;
        let dir = libc::S_IFDIR as u32;
        assert!(is_callers_file(
            &stat(sock | 0o600, me),
            FileKind::Socket,
            Some(0o600),
            me
        ));
        assert!(is_callers_file(
            &stat(sock | 0o644, me),
            FileKind::Socket,
            None,
            me
        ));
        assert!(!is_callers_file(
            &stat(sock | 0o644, me),
            FileKind::Socket,
            Some(0o600),
            me
        ));
        assert!(!is_callers_file(
            &stat(sock | 0o4600, me),
            FileKind::Socket,
            Some(0o600),
            me
        ));
        assert!(!is_callers_file(
            &stat(dir | 0o600, me),
            FileKind::Socket,
            Some(0o600),
            me
        ));
        assert!(!is_callers_file(
            &stat(sock | 0o600, me + 1),
            FileKind::Socket,
            Some(0o600),
            me
        ));
        assert!(!is_callers_file(
            &stat(sock | 0o600, 0),
            FileKind::Socket,
            None,
            me
        ));
    }

    #[test]
    fn others_can_write_is_group_or_other_write_and_sticky_is_its_own_bit() {
        let dir = libc::S_IFDIR as u32;
        for (perms, writable, sticky) in [
            (0o755, false, false),
            (0o775, true, false),
            (0o757, true, false),
            (0o1777, true, true),
            (0o1755, false, true),
            (0o700, false, false),
        ] {
            let st = stat(dir | perms, 0);
            assert_eq!(others_can_write(&st), writable, "{perms:o}");
            assert_eq!(is_sticky(&st), sticky, "{perms:o}");
        }
    }
}
