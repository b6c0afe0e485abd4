//! Who is at the other end of a connected Unix domain socket: each system's own call, and
//! `getpeereid` as the floor. Where a system cannot say something, the answer is "unknown",
//! never a guess (tmux once fell back to the process's own uid).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use super::cvt;

/// The credentials the kernel recorded for the peer (at `connect()` for a client, at `listen()`
/// for a server). `pid` is `None` where the system does not report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

/// `getsockopt(fd, level, option)` into a `T`; the length the kernel wrote.
fn getsockopt<T>(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    option: libc::c_int,
    value: &mut T,
) -> io::Result<usize> {
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: value is writable for size_of::<T>() bytes; len says so.
    cvt(unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            option,
            (value as *mut T).cast(),
            &mut len,
        )
    })?;
    Ok(len as usize)
}

/// The peer's credentials.
#[cfg(target_os = "linux")]
pub fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, &mut cred)?;
    if cred.uid == u32::MAX {
        // No credentials recorded: a datagram socket, or one not connected.
        return Err(io::Error::from_raw_os_error(libc::ENOTCONN));
    }
    Ok(PeerCred {
        uid: cred.uid,
        gid: cred.gid,
        pid: (cred.pid > 0).then_some(cred.pid),
    })
}

#[cfg(target_os = "openbsd")]
pub fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let mut cred = libc::sockpeercred {
        uid: 0,
        gid: 0,
        pid: 0,
    };
    getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED, &mut cred)?;
    Ok(PeerCred {
        uid: cred.uid,
        gid: cred.gid,
        pid: (cred.pid > 0).then_some(cred.pid),
    })
}

#[cfg(any(apple, target_os = "freebsd"))]
pub fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let cred = xucred(fd)?;
    let gid = if cred.cr_ngroups > 0 {
        cred.cr_groups[0]
    } else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    #[cfg(apple)]
    let pid = {
        let mut pid: libc::pid_t = 0;
        getsockopt(fd, 0, libc::LOCAL_PEERPID, &mut pid)
            .ok()
            .filter(|_| pid > 0)
            .map(|_| pid)
    };
    #[cfg(target_os = "freebsd")]
    // SAFETY: the kernel fills cr_pid (FreeBSD 13 and later; 0 before, read as unknown).
    let pid = Some(unsafe { cred.cr_pid__c_anonymous_union.cr_pid }).filter(|&p| p > 0);
    Ok(PeerCred {
        uid: cred.cr_uid,
        gid,
        pid,
    })
}

/// `LOCAL_PEERCRED`: the peer's uid and groups (the first is its effective gid).
#[cfg(any(apple, target_os = "freebsd"))]
fn xucred(fd: BorrowedFd<'_>) -> io::Result<libc::xucred> {
    // SAFETY: an all-zero xucred is valid.
    let mut cred: libc::xucred = unsafe { std::mem::zeroed() };
    cred.cr_version = libc::XUCRED_VERSION;
    getsockopt(fd, 0, libc::LOCAL_PEERCRED, &mut cred)?;
    if cred.cr_version != libc::XUCRED_VERSION {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(cred)
}

#[cfg(target_os = "netbsd")]
pub fn peer_cred(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let mut id = libc::unpcbid {
        unp_pid: 0,
        unp_euid: 0,
        unp_egid: 0,
    };
    match getsockopt(fd, 0, libc::LOCAL_PEEREID, &mut id) {
        Ok(_) => Ok(PeerCred {
            uid: id.unp_euid,
            gid: id.unp_egid,
            pid: (id.unp_pid > 0).then_some(id.unp_pid),
        }),
        Err(_) => getpeereid(fd),
    }
}

/// `getpeereid`: uid and gid only; NetBSD's floor when `LOCAL_PEEREID` does not answer (the
/// other systems' own calls always report at least as much).
#[cfg(target_os = "netbsd")]
fn getpeereid(fd: BorrowedFd<'_>) -> io::Result<PeerCred> {
    let (mut uid, mut gid) = (0, 0);
    // SAFETY: both out-pointers are valid.
    cvt(unsafe { libc::getpeereid(fd.as_raw_fd(), &mut uid, &mut gid) })?;
    Ok(PeerCred {
        uid,
        gid,
        pid: None,
    })
}

/// The peer's supplementary groups (its effective gid may or may not be among them), or `None`
/// where the system cannot say (OpenBSD and NetBSD record no group list for a socket).
#[cfg(target_os = "linux")]
pub fn peer_groups(fd: BorrowedFd<'_>) -> io::Result<Option<Vec<u32>>> {
    /// `SO_PEERGROUPS` (Linux 4.13); the libc crate does not define it.
    #[cfg(target_arch = "sparc64")]
    const SO_PEERGROUPS: libc::c_int = 0x003d;
    #[cfg(not(target_arch = "sparc64"))]
    const SO_PEERGROUPS: libc::c_int = 59;
    let mut groups = vec![0u32; 64];
    loop {
        let mut len = (groups.len() * 4) as libc::socklen_t;
        // SAFETY: groups is writable for len bytes.
        let ret = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if ret == 0 {
            groups.truncate(len as usize / 4);
            return Ok(Some(groups));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            // The kernel says how much room it needs.
            Some(libc::ERANGE) if (len as usize / 4) > groups.len() => {
                groups.resize(len as usize / 4, 0)
            }
            Some(libc::ENOPROTOOPT) => return Ok(None),
            _ => return Err(err),
        }
    }
}

#[cfg(any(apple, target_os = "freebsd"))]
pub fn peer_groups(fd: BorrowedFd<'_>) -> io::Result<Option<Vec<u32>>> {
    let cred = xucred(fd)?;
    let n = usize::try_from(cred.cr_ngroups)
        .unwrap_or(0)
        .min(cred.cr_groups.len());
    Ok(Some(cred.cr_groups[..n].to_vec()))
}

/// Can this system tell a socket's peer's supplementary groups? OpenBSD and NetBSD cannot.
pub const PEER_GROUPS_KNOWN: bool = cfg!(not(netbsdlike));

#[cfg(netbsdlike)]
pub fn peer_groups(_fd: BorrowedFd<'_>) -> io::Result<Option<Vec<u32>>> {
    Ok(None)
}

/// The calling process's effective gid and supplementary groups.
#[allow(clippy::unnecessary_cast)] // gid_t is u32 on most systems, not all
pub fn own_groups() -> io::Result<Vec<u32>> {
    // SAFETY: getegid cannot fail.
    let mut groups = vec![unsafe { libc::getegid() }];
    // SAFETY: with 0 and NULL, getgroups returns the count only.
    let n = cvt(unsafe { libc::getgroups(0, std::ptr::null_mut()) })?;
    let mut extra = vec![0 as libc::gid_t; n as usize];
    // SAFETY: extra is writable for n entries.
    let n = cvt(unsafe { libc::getgroups(n, extra.as_mut_ptr()) })?;
    extra.truncate(n as usize);
    groups.extend(extra.iter().map(|&g| g as u32));
    Ok(groups)
}

/// `accept` a connection on `listener`, close-on-exec (atomically where the system can).
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    super::retry(|| {
        #[cfg(atomic_cloexec)]
        // SAFETY: NULL address pointers are allowed; the result is a new descriptor we own.
        let fd = cvt(unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        })?;
        #[cfg(not(atomic_cloexec))]
        let fd = {
            // SAFETY: as above.
            let fd = cvt(unsafe {
                libc::accept(
                    listener.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                )
            })?;
            // SAFETY: plain fcntl on the descriptor just made.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            fd
        };
        // SAFETY: accept returned a fresh descriptor that nothing else owns.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    })
}

/// The ids the kernel shows for a user and a group it cannot map into this process's user
/// namespace, as the system says them: Linux's `/proc/sys/kernel/overflowuid` and
/// `overflowgid`. `None` where the system does not say (elsewhere, or `/proc` unreadable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OverflowIds {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// [`OverflowIds`], read once and kept: the values are system-wide and set at boot. A read that
/// fails (`/proc` not mounted, no descriptor left) is not kept, so a later call tries again.
pub fn overflow_ids() -> OverflowIds {
    static READ: std::sync::OnceLock<OverflowIds> = std::sync::OnceLock::new();
    if let Some(ids) = READ.get() {
        return *ids;
    }
    let ids = read_overflow_ids();
    if ids.uid.is_some() && ids.gid.is_some() {
        let _ = READ.set(ids);
    }
    ids
}

#[cfg(target_os = "linux")]
fn read_overflow_ids() -> OverflowIds {
    let read = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok())
    };
    OverflowIds {
        uid: read("overflowuid"),
        gid: read("overflowgid"),
    }
}

/// Other systems have no user namespaces, and no file that says.
#[cfg(not(target_os = "linux"))]
fn read_overflow_ids() -> OverflowIds {
    OverflowIds::default()
}

/// How many user ids this process's user namespace maps: the sum of the counts in Linux's
/// `/proc/self/uid_map` (4294967295, every id, in the initial namespace; 0 in a namespace whose
/// map was never written). Read at each call: a process can enter a new namespace (`unshare`)
/// at any time. Other systems have no user namespaces: every id is mapped.
#[cfg(target_os = "linux")]
pub fn mapped_uid_count() -> io::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/uid_map")?;
    let mut count = 0u64;
    for line in text.lines() {
        let n = line
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unreadable line {line:?}"),
                )
            })?;
        count += n;
    }
    Ok(count)
}

/// Other systems have no user namespaces: every id is mapped.
#[cfg(not(target_os = "linux"))]
pub fn mapped_uid_count() -> io::Result<u64> {
    Ok(u64::from(u32::MAX))
}
