//! What a sequence holds: at most one directory handle, the directories it handed off, its
//! descriptors, well-known paths and a policy; and the teardown that must leave nothing.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_int};
use std::path::PathBuf;
use std::ptr;

use usock::testing::ffi::*;

use crate::check::{self, CHANGED, OK};
use crate::scratch::{self, exists};

pub struct Dir {
    pub ptr: *mut UsockDir,
    pub path: CString,
    pub shared: bool,
    /// Something usock did not make was put in it: cleanup must say USOCK_ERR_CHANGED.
    pub planted: bool,
}

/// A directory passed on with `usock_hand_off`: its path and the descriptor that locks it.
pub struct Handed {
    pub path: CString,
    pub fd: Option<c_int>,
    pub shared: bool,
    pub planted: bool,
}

#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Kind {
    /// A listening stream or seqpacket socket (non-blocking); `big` when its backlog is at
    /// least 100, more connections than a sequence can queue, so a blocking connect to it
    /// cannot hang.
    Listener { big: bool },
    /// A connected stream or seqpacket socket whose other end is this process.
    Conn,
    /// Any other socket.
    Other,
}

pub struct Bound {
    pub ptr: *mut UsockBoundPath,
    pub path: CString,
    pub id: u32,
    /// The path spelled one way (the same file may be named `wk/a`, `wk//a`, `wk/./a`).
    pub key: PathBuf,
}

pub struct Policy {
    pub ptr: *mut UsockPolicy,
    pub admits_us: Option<bool>,
    pub refused_seen: u64,
}

#[derive(Default)]
pub struct World {
    pub dir: Option<Dir>,
    pub handed: Vec<Handed>,
    pub fds: Vec<(c_int, Kind)>,
    pub bound: Vec<Bound>,
    /// Which bound handle a well-known path belongs to now, and that socket's inode.
    pub owners: HashMap<PathBuf, (u32, u64)>,
    pub next_id: u32,
    pub policy: Option<Policy>,
}

impl World {
    pub fn dir_ptr(&self) -> *mut UsockDir {
        self.dir.as_ref().map_or(ptr::null_mut(), |d| d.ptr)
    }

    /// No listener with a small backlog is open, so a blocking connect cannot wait: by the
    /// model, and by the process's own descriptors (a listening socket the model does not know
    /// as big counts as small), so that a model that lost track of a listener cannot hang a
    /// campaign (two did, on target bugs of that kind).
    pub fn blocking_connect_is_safe(&self) -> bool {
        let known_big = |fd: c_int| {
            self.fds
                .iter()
                .any(|&(f, k)| f == fd && k == Kind::Listener { big: true })
        };
        !self
            .fds
            .iter()
            .any(|&(_, k)| k == Kind::Listener { big: false })
            && listening_fds().into_iter().all(known_big)
    }

    pub fn track(&mut self, fd: c_int, kind: Kind) {
        assert!(fd >= 0);
        self.fds.push((fd, kind));
    }

    /// Frees, unbinds, closes and cleans up everything, checking each step.
    pub fn tear_down(mut self) {
        if let Some(policy) = self.policy.take() {
            check::exactly(
                "usock_policy_free",
                unsafe { usock_policy_free(policy.ptr) },
                OK,
            );
        }
        while let Some(bound) = self.bound.pop() {
            unbind(&mut self, bound);
        }
        for (fd, _) in self.fds.drain(..) {
            // SAFETY: a descriptor this sequence owns.
            unsafe { libc::close(fd) };
        }
        for handed in std::mem::take(&mut self.handed) {
            take_back(handed);
        }
        if let Some(dir) = self.dir.take() {
            clean_up(dir);
        }
    }
}

/// `usock_unbind_path`: the path goes if it is still this handle's, else stays.
pub fn unbind(world: &mut World, bound: Bound) {
    if crate::trace() {
        eprintln!(
            "  unbinding handle {} of {:?}: the path's owner {:?}, something there: {}",
            bound.id,
            bound.key,
            world.owners.get(&bound.key),
            exists(&bound.path)
        );
    }
    let rc = unsafe { usock_unbind_path(bound.ptr) };
    check::exactly("usock_unbind_path", rc, OK);
    match world.owners.get(&bound.key) {
        Some(&(id, _)) if id == bound.id => {
            world.owners.remove(&bound.key);
            assert!(!exists(&bound.path), "unbind left {:?}", bound.path);
        }
        Some(_) => assert!(
            exists(&bound.path),
            "unbind removed a successor's {:?}",
            bound.path
        ),
        None => {}
    }
}

/// `usock_cleanup`: removes the directory, or says USOCK_ERR_CHANGED when something usock
/// did not make is in it (then the sequence removes it).
pub fn clean_up(dir: Dir) {
    let rc = unsafe { usock_cleanup(dir.ptr) };
    check::exactly("usock_cleanup", rc, if dir.planted { CHANGED } else { OK });
    if rc == OK {
        assert!(!exists(&dir.path), "cleanup left {:?}", dir.path);
    } else {
        assert!(
            exists(&dir.path),
            "cleanup said CHANGED but removed {:?}",
            dir.path
        );
        std::fs::remove_dir_all(os_path(&dir.path)).unwrap();
    }
}

/// Takes a handed-off directory back and cleans it up; one that was swept away is gone.
fn take_back(handed: Handed) {
    if !exists(&handed.path) {
        assert!(
            handed.fd.is_none(),
            "swept {:?} while its descriptor locked it",
            handed.path
        );
        return;
    }
    let lock = handed.fd.unwrap_or(-1);
    let sentinel: *mut UsockDir = ptr::dangling_mut();
    let mut out = sentinel;
    let rc = unsafe { usock_take_over(handed.path.as_ptr(), lock, 0, &mut out) };
    // Its own directory, as handed off (shared or not, with a file put in it or not), with
    // its descriptor or with none: taken back.
    check::exactly("usock_take_over", rc, OK);
    if rc == OK {
        let path = dir_path(out).expect("usock_dir_path of a live handle");
        assert_eq!(path, handed.path, "take-over changed the path");
        clean_up(Dir {
            ptr: out,
            path,
            shared: handed.shared,
            planted: handed.planted,
        });
    } else {
        assert_eq!(out, sentinel, "usock_take_over wrote out_dir on failure");
        if let Some(fd) = handed.fd {
            assert!(fd_is_open(fd), "usock_take_over closed lock_fd on failure");
            // SAFETY: the sequence still owns it.
            unsafe { libc::close(fd) };
        }
        std::fs::remove_dir_all(os_path(&handed.path)).unwrap();
    }
}

pub fn dir_path(dir: *const UsockDir) -> Option<CString> {
    let path = unsafe { usock_dir_path(dir) };
    // SAFETY: non-NULL results are NUL-terminated strings valid while the handle lives.
    (!path.is_null()).then(|| unsafe { CStr::from_ptr(path) }.to_owned())
}

pub fn os_path(path: &CStr) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()))
}

pub fn fd_is_open(fd: c_int) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

/// An integer socket option of `fd` at `SOL_SOCKET`, if the descriptor has it.
pub fn socket_option(fd: c_int, option: c_int) -> Option<c_int> {
    let mut value: c_int = 0;
    let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`; any descriptor may be asked.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&raw mut value).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// Whether `fd` is a listening socket.
pub fn is_listening(fd: c_int) -> bool {
    socket_option(fd, libc::SO_ACCEPTCONN).is_some_and(|on| on != 0)
}

/// The process's listening sockets (by /proc/self/fd).
fn listening_fds() -> Vec<c_int> {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| is_listening(fd))
        .collect()
}

pub fn is_cloexec(fd: c_int) -> bool {
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
}

pub fn set_nonblocking(fd: c_int) {
    // SAFETY: fcntl on a descriptor this sequence owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        assert!(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0);
    }
}

/// Checks the file at `path`: a socket (or directory) owned by us with `mode`.
pub fn assert_mode(path: &CStr, socket: bool, mode: u32) {
    let (kind, found, uid) = scratch::mode_of(path);
    let right_kind = if socket {
        scratch::is_socket(kind)
    } else {
        kind.is_dir()
    };
    assert!(right_kind, "{path:?} is a {kind:?}");
    assert_eq!(found, mode, "{path:?} has mode {found:o}, not {mode:o}");
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        uid,
        unsafe { libc::geteuid() },
        "{path:?} is owned by {uid}"
    );
}

/// `path` with its directory resolved: one key for every spelling of a bound path.
pub fn file_key(path: &CStr) -> PathBuf {
    let path = os_path(path);
    let dir = path.parent().expect("a bound path has a directory");
    let name = path.file_name().expect("a bound path ends in a name");
    std::fs::canonicalize(dir).unwrap().join(name)
}
