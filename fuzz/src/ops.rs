//! One operation of a sequence per export (and a few that a caller or an attacker does to the
//! files between calls). Each reads its arguments from the input, calls, and checks what the
//! documentation promises.
//!
//! Every usock call here passes NULL or valid pointers, live handles and NUL-terminated
//! strings, as the functions' `# Safety` sections ask; fuzzed values go only where C callers
//! may pass anything (numbers, flags, descriptors, path and name bytes).

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::ptr;

use usock::testing::ffi::*;

use crate::check::{self, INVALID, OK, UNSAFE};
use crate::input::Input;
use crate::scratch::{self, exists, scratch};
use crate::world::{
    self, Bound, Dir, Handed, Kind, Policy, World, assert_mode, dir_path, fd_is_open, is_cloexec,
    is_listening, set_nonblocking,
};

/// An operation: reads its arguments from the input, calls, checks.
pub type Op = fn(&mut World, &mut Input);

/// The operations, by the number an input picks them with.
pub const OPS: &[(&str, Op)] = &[
    ("create_dir", |w, i| create(w, i, false)),
    ("create_shared_dir", |w, i| create(w, i, true)),
    ("socket_path", socket_path),
    ("bind", bind),
    ("bind_fd", bind_fd),
    ("adopt", adopt),
    ("cleanup", cleanup),
    ("connect", connect),
    ("bind_path", bind_path),
    ("unbind_path", unbind_path),
    ("sweep", sweep),
    ("hand_off", hand_off),
    ("take_over", take_over),
    ("peer_of", peer_of),
    ("policy_new", policy_new),
    ("accept", accept),
    ("policy_check", policy_check),
    ("policy_refused", policy_refused),
    ("policy_free", policy_free),
    ("close", close),
    ("plant", plant),
    ("info", info),
    ("dir_idle", dir_idle),
    ("overflow_ids", overflow_ids),
];

fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

fn egid() -> u32 {
    // SAFETY: getegid cannot fail.
    unsafe { libc::getegid() }
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

/// A parent: automatic, one of the scratch parents, fuzzed bytes below the base, or empty.
fn parent(input: &mut Input) -> Option<CString> {
    let s = scratch();
    match input.pick(7) {
        0 => None,
        1 => Some(s.short.clone()),
        2 => Some(s.medium.clone()),
        3 => Some(s.deep.clone()),
        4 => Some(s.well_known.clone()),
        5 => Some(s.below(&input.text(120))),
        _ => Some(CString::default()),
    }
}

/// A socket name: the default (NULL), a few fixed ones, names of any length, bad ones.
fn name(input: &mut Input) -> Option<CString> {
    let fixed = |s: &str| Some(CString::new(s).unwrap());
    match input.pick(8) {
        0 => None,
        1 => fixed("sock"),
        2 => fixed("s1"),
        3 => fixed("s2"),
        4 => Some(CString::new(input.text(150)).unwrap()),
        5 => fixed(["", ".", "..", "a/b", "planted0"][input.pick(5) as usize]),
        6 => Some(CString::new("n".repeat(input.byte() as usize)).unwrap()),
        _ => fixed("sock"),
    }
}

fn sock_type(input: &mut Input) -> c_int {
    match input.pick(6) {
        0 => 0,
        1 | 5 => libc::SOCK_STREAM,
        2 => libc::SOCK_SEQPACKET,
        3 => libc::SOCK_DGRAM,
        _ => input.int(),
    }
}

fn is_datagram(ty: c_int) -> bool {
    ty == libc::SOCK_DGRAM
}

fn backlog(input: &mut Input) -> c_int {
    match input.pick(5) {
        0 => 0,
        1 => -1,
        2 => 1 + input.pick(3) as c_int,
        3 => 128,
        _ => input.int(),
    }
}

fn listener_kind(ty: c_int, backlog: c_int) -> Kind {
    if is_datagram(ty) {
        Kind::Other
    } else {
        Kind::Listener {
            big: backlog <= 0 || backlog >= 100,
        }
    }
}

/// A new Unix socket of `ty` (stream for an unknown type), non-blocking and close-on-exec.
fn fresh_socket(ty: c_int, family: c_int) -> c_int {
    let ty = if family == libc::AF_UNIX && [libc::SOCK_SEQPACKET, libc::SOCK_DGRAM].contains(&ty) {
        ty
    } else {
        libc::SOCK_STREAM
    };
    // SAFETY: socket() takes no pointers.
    let fd = unsafe { libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    fd
}

/// A descriptor: one the sequence holds (any kind), a handed-off directory's, or a number
/// that is negative or not open.
fn any_fd(w: &World, input: &mut Input) -> c_int {
    let n = w.fds.len() + w.handed.len();
    match input.pick(8) {
        0 => -1 - (input.byte() as c_int),
        1 => 100_000,
        _ if n == 0 => -1,
        _ => {
            let i = input.byte() as usize % n;
            match w.fds.get(i) {
                Some(&(fd, _)) => fd,
                None => w.handed[i - w.fds.len()].fd.unwrap_or(-1),
            }
        }
    }
}

/// The socket path of `name` in the handle's directory, whatever its length.
fn path_in_dir(dir: *mut UsockDir, name: &Option<CString>) -> Option<CString> {
    let mut buf = vec![0u8; 4096];
    let rc = unsafe { usock_socket_path(dir, opt_ptr(name), buf.as_mut_ptr().cast(), buf.len()) };
    (rc == OK).then(|| CStr::from_bytes_until_nul(&buf).unwrap().to_owned())
}

fn socket_mode(w: &World) -> u32 {
    if w.dir.as_ref().is_some_and(|d| d.shared) {
        0o660
    } else {
        0o600
    }
}

fn create(w: &mut World, input: &mut Input, shared: bool) {
    let parent = parent(input);
    let flags = match input.pick(4) {
        0 | 1 => 0,
        2 => USOCK_LONG_PATHS,
        _ => input.int() as u32,
    };
    let gid = if input.one_in(4) {
        input.int() as u32
    } else {
        egid()
    };
    // One handle at a time: with one live, only the NULL out_dir shape.
    let null_out = w.dir.is_some() || input.one_in(16);
    let sentinel: *mut UsockDir = ptr::dangling_mut();
    let mut out = sentinel;
    let out_ptr = if null_out { ptr::null_mut() } else { &mut out };
    let rc = unsafe {
        if shared {
            usock_create_shared_dir(opt_ptr(&parent), gid, flags, out_ptr)
        } else {
            usock_create_dir(opt_ptr(&parent), flags, out_ptr)
        }
    };
    let call = if shared {
        "usock_create_shared_dir"
    } else {
        "usock_create_dir"
    };
    if null_out {
        return check::exactly(call, rc, INVALID);
    }
    check::status(call, rc, check::CREATE);
    if rc != OK {
        assert_eq!(out, sentinel, "{call} wrote out_dir on failure");
        return;
    }
    assert_eq!(
        flags & !USOCK_LONG_PATHS,
        0,
        "{call} took unknown flags {flags:#x}"
    );
    assert!(
        parent.as_ref().is_none_or(|p| !p.is_empty()),
        "{call} took an empty parent"
    );
    let path = dir_path(out).expect("usock_dir_path of a live handle");
    if let Some(parent) = &parent {
        let made_in = world::os_path(&path)
            .parent()
            .map(std::path::Path::to_path_buf);
        let asked = std::fs::canonicalize(world::os_path(parent)).ok();
        assert_eq!(made_in, asked, "{call} made {path:?}, not in {parent:?}");
    }
    assert_mode(&path, false, if shared { 0o710 } else { 0o700 });
    w.dir = Some(Dir {
        ptr: out,
        path,
        shared,
        planted: false,
    });
}

fn socket_path(w: &mut World, input: &mut Input) {
    let address = input.one_in(2);
    let name = name(input);
    let len = match input.pick(4) {
        0 => 0,
        1 => USOCK_PATH_MAX,
        2 => input.byte() as usize,
        _ => 4096,
    };
    let null_buf = input.one_in(16);
    let mut buf = vec![0x55u8; 4096];
    let buf_ptr = if null_buf {
        ptr::null_mut()
    } else {
        buf.as_mut_ptr().cast()
    };
    let (call, rc) = unsafe {
        if address {
            (
                "usock_socket_address",
                usock_socket_address(w.dir_ptr(), opt_ptr(&name), buf_ptr, len),
            )
        } else {
            (
                "usock_socket_path",
                usock_socket_path(w.dir_ptr(), opt_ptr(&name), buf_ptr, len),
            )
        }
    };
    if w.dir.is_none() || null_buf {
        return check::exactly(call, rc, INVALID);
    }
    check::status(call, rc, check::SOCKET_PATH);
    if rc != OK {
        assert!(
            buf.iter().all(|&b| b == 0x55),
            "{call} wrote buf on failure"
        );
        return;
    }
    let path = CStr::from_bytes_until_nul(&buf).unwrap();
    assert!(
        path.to_bytes().len() < len,
        "{call}: {path:?} overran {len} bytes"
    );
    assert!(
        buf[path.to_bytes().len() + 1..].iter().all(|&b| b == 0x55),
        "{call} wrote past the NUL"
    );
    if address {
        assert!(
            path.to_bytes().len() < USOCK_PATH_MAX,
            "{call}: {path:?} does not fit sun_path"
        );
    } else {
        let dir = &w.dir.as_ref().unwrap().path;
        assert!(
            path.to_bytes().starts_with(dir.to_bytes()),
            "{path:?} not in {dir:?}"
        );
    }
}

fn bind(w: &mut World, input: &mut Input) {
    let name = name(input);
    let ty = sock_type(input);
    let backlog = backlog(input);
    let null_out = input.one_in(16);
    let mut fd = -77;
    let out = if null_out { ptr::null_mut() } else { &mut fd };
    let rc = unsafe { usock_bind(w.dir_ptr(), opt_ptr(&name), ty, backlog, out) };
    if w.dir.is_none() || null_out {
        return check::exactly("usock_bind", rc, INVALID);
    }
    check::status("usock_bind", rc, check::BIND);
    if rc != OK {
        assert_eq!(fd, -77, "usock_bind wrote out_fd on failure");
        return;
    }
    assert!(
        is_cloexec(fd),
        "usock_bind: descriptor {fd} is not close-on-exec"
    );
    set_nonblocking(fd);
    w.track(fd, listener_kind(ty, backlog));
    let path = path_in_dir(w.dir_ptr(), &name).expect("the path of a bound socket");
    assert_mode(&path, true, socket_mode(w));
}

fn bind_fd(w: &mut World, input: &mut Input) {
    let name = name(input);
    let ty = sock_type(input);
    let backlog = backlog(input);
    let (fd, fresh) = match input.pick(4) {
        0 | 1 => (fresh_socket(ty, libc::AF_UNIX), true),
        2 => (fresh_socket(ty, libc::AF_INET), true),
        _ => (any_fd(w, input), false),
    };
    let was_listening = is_listening(fd);
    let rc = unsafe { usock_bind_fd(w.dir_ptr(), opt_ptr(&name), fd, backlog) };
    assert!(
        rc == OK || is_listening(fd) == was_listening,
        "a failed usock_bind_fd changed whether descriptor {fd} listens"
    );
    let kind = if rc == OK {
        listener_kind(socket_type(fd), backlog)
    } else {
        Kind::Other
    };
    if fresh {
        w.track(fd, kind);
    } else if let Some(entry) = w.fds.iter_mut().find(|(f, _)| *f == fd) {
        assert!(
            rc != OK || entry.1 == Kind::Other,
            "usock_bind_fd bound a used socket"
        );
        // A failed call leaves the socket as it was: a listener stays a listener (the campaign
        // hung in a blocking connect to one it had forgotten, its backlog full).
        if rc == OK {
            entry.1 = kind;
        }
    }
    if w.dir.is_none() || fd < 0 {
        return check::exactly("usock_bind_fd", rc, INVALID);
    }
    check::status("usock_bind_fd", rc, check::BIND);
    if rc == OK {
        let path = path_in_dir(w.dir_ptr(), &name).expect("the path of a bound socket");
        assert_mode(&path, true, socket_mode(w));
    }
}

fn socket_type(fd: c_int) -> c_int {
    world::socket_option(fd, libc::SO_TYPE).unwrap_or_else(|| panic!("SO_TYPE of {fd}"))
}

/// Binds a socket of our own at the name (as another socket library would), then adopts it.
fn adopt(w: &mut World, input: &mut Input) {
    let name = name(input);
    if input.one_in(2) {
        bind_own_socket(w, &name);
    }
    let rc = unsafe { usock_adopt(w.dir_ptr(), opt_ptr(&name)) };
    if w.dir.is_none() {
        return check::exactly("usock_adopt", rc, INVALID);
    }
    check::status("usock_adopt", rc, check::ADOPT);
    if rc == OK {
        let path = path_in_dir(w.dir_ptr(), &name).expect("the path of an adopted socket");
        assert_mode(&path, true, socket_mode(w));
    }
}

/// Binds a socket of the sequence's own at the name, where the path fits in `sun_path`.
fn bind_own_socket(w: &mut World, name: &Option<CString>) {
    let path = path_in_dir(w.dir_ptr(), name).filter(|p| p.to_bytes().len() < USOCK_PATH_MAX);
    if let Some(path) = path {
        let fd = fresh_socket(libc::SOCK_STREAM, libc::AF_UNIX);
        bind_raw(fd, &path);
        w.track(fd, Kind::Other);
    }
}

fn bind_raw(fd: c_int, path: &CStr) {
    // SAFETY: sockaddr_un is plain data; all zeros is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &s) in addr.sun_path.iter_mut().zip(path.to_bytes()) {
        *d = s as c_char;
    }
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_un of len bytes. A failure (the name is taken) is fine.
    unsafe { libc::bind(fd, (&raw const addr).cast(), len) };
}

fn cleanup(w: &mut World, _: &mut Input) {
    match w.dir.take() {
        Some(dir) => world::clean_up(dir),
        None => check::exactly(
            "usock_cleanup",
            unsafe { usock_cleanup(ptr::null_mut()) },
            OK,
        ),
    }
}

/// A path to connect to: a socket of the directory (by path or address), a well-known path,
/// a handed-off directory, fuzzed bytes, or shapes that are refused.
fn target(w: &World, input: &mut Input) -> Option<CString> {
    let s = scratch();
    let name = name(input);
    match input.pick(8) {
        0 => path_in_dir(w.dir_ptr(), &name),
        1 => {
            let mut buf = [0u8; 4096];
            let rc = unsafe {
                usock_socket_address(w.dir_ptr(), opt_ptr(&name), buf.as_mut_ptr().cast(), 4096)
            };
            (rc == OK).then(|| CStr::from_bytes_until_nul(&buf).unwrap().to_owned())
        }
        2 => Some(well_known(input)),
        3 => w.handed.first().map(|h| h.path.clone()),
        4 => Some(s.below(&input.text(200))),
        5 => None,
        6 => Some(CString::default()),
        _ => Some(s.below(&vec![b'x'; 100 + input.pick(20) as usize])),
    }
}

fn well_known(input: &mut Input) -> CString {
    let wk = scratch().well_known.to_bytes();
    let tail: Vec<u8> = match input.pick(6) {
        0 | 1 => b"/a".to_vec(),
        2 => b"/b".to_vec(),
        3 => [b"/".as_slice(), &scratch::defuse(&input.text(100))].concat(),
        4 => b"/".to_vec(),
        _ => return CString::default(),
    };
    CString::new([wk, &tail].concat()).unwrap()
}

fn server(input: &mut Input) -> i64 {
    match input.pick(6) {
        0 | 1 => USOCK_SERVER_ANY,
        2 => USOCK_SERVER_SELF_OR_ROOT,
        3 => i64::from(euid()),
        4 => 4242,
        _ => i64::from(input.int()) * 3,
    }
}

fn connect(w: &mut World, input: &mut Input) {
    let path = target(w, input);
    let ty = sock_type(input);
    let mut flags = match input.pick(4) {
        0 | 1 => 0,
        2 => USOCK_CONNECT_NONBLOCK,
        _ => input.int() as u32,
    };
    if !w.blocking_connect_is_safe() {
        flags |= USOCK_CONNECT_NONBLOCK;
    }
    let server = server(input);
    let null_out = input.one_in(16);
    let mut fd = -77;
    let out = if null_out { ptr::null_mut() } else { &mut fd };
    let rc = unsafe { usock_connect(opt_ptr(&path), ty, flags, server, out) };
    if path.is_none() || null_out {
        return check::exactly("usock_connect", rc, INVALID);
    }
    check::status("usock_connect", rc, check::CONNECT);
    if rc != OK {
        assert_eq!(fd, -77, "usock_connect wrote out_fd on failure");
        return;
    }
    assert!(
        is_cloexec(fd),
        "usock_connect: descriptor {fd} is not close-on-exec"
    );
    let checked = server != USOCK_SERVER_ANY;
    assert!(
        !(checked && is_datagram(ty)),
        "usock_connect checked a datagram server"
    );
    assert!(
        server != 4242,
        "usock_connect accepted a server that is not uid 4242"
    );
    w.track(
        fd,
        if is_datagram(ty) {
            Kind::Other
        } else {
            Kind::Conn
        },
    );
}

fn bind_path(w: &mut World, input: &mut Input) {
    let path = if input.one_in(16) {
        None
    } else {
        Some(well_known(input))
    };
    let ty = sock_type(input);
    let backlog = backlog(input);
    let flags = match input.pick(4) {
        0 | 1 => 0,
        2 => USOCK_REPLACE,
        _ => input.int() as u32,
    };
    let (fd, fresh) = match input.pick(4) {
        0 | 1 => (fresh_socket(ty, libc::AF_UNIX), true),
        2 => (fresh_socket(ty, libc::AF_INET), true),
        _ => (any_fd(w, input), false),
    };
    let null_out = input.one_in(16);
    let sentinel: *mut UsockBoundPath = ptr::dangling_mut();
    let mut out = sentinel;
    let out_ptr = if null_out { ptr::null_mut() } else { &mut out };
    let was_listening = is_listening(fd);
    let rc = unsafe { usock_bind_path(opt_ptr(&path), fd, backlog, flags, out_ptr) };
    assert!(
        rc == OK || is_listening(fd) == was_listening,
        "a failed usock_bind_path changed whether descriptor {fd} listens"
    );
    let kind = if rc == OK {
        listener_kind(socket_type(fd), backlog)
    } else {
        Kind::Other
    };
    if fresh {
        w.track(fd, kind);
    } else if let Some(entry) = w.fds.iter_mut().find(|(f, _)| *f == fd) {
        assert!(
            rc != OK || entry.1 == Kind::Other,
            "usock_bind_path bound a used socket"
        );
        // As for usock_bind_fd: a failed call leaves the socket as it was (campaign 4 hung on a
        // listener this forgot).
        if rc == OK {
            entry.1 = kind;
        }
    }
    if path.is_none() || null_out || fd < 0 {
        return check::exactly("usock_bind_path", rc, INVALID);
    }
    check::status("usock_bind_path", rc, check::BIND_PATH);
    if rc != OK {
        assert_eq!(out, sentinel, "usock_bind_path wrote out_bound on failure");
        return;
    }
    assert_eq!(
        flags & !USOCK_REPLACE,
        0,
        "usock_bind_path took unknown flags {flags:#x}"
    );
    let path = path.unwrap();
    assert_mode(&path, true, 0o600);
    let ino = std::fs::symlink_metadata(world::os_path(&path))
        .unwrap()
        .ino();
    let id = w.next_id;
    w.next_id += 1;
    let key = world::file_key(&path);
    w.owners.insert(key.clone(), (id, ino));
    w.bound.push(Bound {
        key,
        ptr: out,
        path,
        id,
    });
}

fn unbind_path(w: &mut World, input: &mut Input) {
    if w.bound.is_empty() || input.one_in(8) {
        let rc = unsafe { usock_unbind_path(ptr::null_mut()) };
        return check::exactly("usock_unbind_path", rc, OK);
    }
    let i = input.byte() as usize % w.bound.len();
    let bound = w.bound.remove(i);
    world::unbind(w, bound);
}

/// One call of the sweep's report callback: path, removed, reason.
type Call = (Option<Vec<u8>>, c_int, Option<Vec<u8>>);

#[derive(Default)]
struct Report {
    calls: Vec<Call>,
}

unsafe extern "C" fn report(
    ctx: *mut c_void,
    path: *const c_char,
    removed: c_int,
    why: *const c_char,
) {
    // SAFETY: ctx is the Report that sweep() passed; the strings are NULL or valid for the call.
    let report = unsafe { &mut *ctx.cast::<Report>() };
    let text =
        |s: *const c_char| (!s.is_null()).then(|| unsafe { CStr::from_ptr(s) }.to_bytes().to_vec());
    report.calls.push((text(path), removed, text(why)));
}

fn sweep(w: &mut World, input: &mut Input) {
    let s = scratch();
    let parent = match input.pick(7) {
        0 => s.short.clone(),
        1 => s.medium.clone(),
        2 => s.deep.clone(),
        3 => s.well_known.clone(),
        4 => s.below(&input.text(100)),
        5 => CString::default(),
        _ => s.short.clone(),
    };
    let grace = match input.pick(3) {
        0 => 0,
        1 => -1,
        _ => i64::from(input.int()),
    };
    let flags = if input.one_in(16) {
        input.int() as u32 | 1
    } else {
        0
    };
    let with_report = !input.one_in(4);
    let mut collected = Report::default();
    let mut removed = usize::MAX;
    let out = if input.one_in(4) {
        ptr::null_mut()
    } else {
        &mut removed
    };
    let callback: UsockSweepFn = if with_report { Some(report) } else { None };
    let ctx = (&raw mut collected).cast::<c_void>();
    let rc = unsafe { usock_sweep(parent.as_ptr(), grace, flags, callback, ctx, out) };
    if flags != 0 || parent.is_empty() {
        return check::exactly("usock_sweep", rc, INVALID);
    }
    check::status("usock_sweep", rc, check::SWEEP);
    if rc != OK {
        assert!(
            collected.calls.is_empty(),
            "usock_sweep reported, then failed"
        );
        assert_eq!(
            removed,
            usize::MAX,
            "usock_sweep wrote out_removed on failure"
        );
        return;
    }
    let out_removed = (with_report && !out.is_null()).then_some(removed);
    check_report(&collected, &parent, out_removed);
    if let Some(dir) = &w.dir {
        assert!(
            exists(&dir.path),
            "usock_sweep removed a live handle's {:?}",
            dir.path
        );
    }
    for handed in &w.handed {
        let held = handed.fd.is_some();
        assert!(
            !held || exists(&handed.path),
            "usock_sweep removed locked {:?}",
            handed.path
        );
    }
    w.handed.retain(|h| exists(&h.path));
}

fn check_report(report: &Report, parent: &CStr, out_removed: Option<usize>) {
    let mut removed = 0;
    for (path, gone, why) in &report.calls {
        let path = path.as_ref().expect("usock_sweep reported a NULL path");
        let in_parent = std::path::Path::new(std::ffi::OsStr::from_bytes(path)).parent()
            == std::fs::canonicalize(world::os_path(parent))
                .ok()
                .as_deref();
        assert!(
            path.starts_with(parent.to_bytes()) || in_parent,
            "usock_sweep reported {path:?} outside {parent:?}"
        );
        match gone {
            1 => {
                assert!(why.is_none(), "usock_sweep gave a reason for a removal");
                let path = CString::new(path.clone()).unwrap();
                assert!(
                    !exists(&path),
                    "usock_sweep reported {path:?} removed, it is there"
                );
                removed += 1;
            }
            0 => assert!(
                why.as_ref().is_some_and(|w| !w.is_empty()),
                "kept without a reason"
            ),
            other => panic!("usock_sweep reported removed = {other}"),
        }
    }
    if let Some(n) = out_removed {
        assert_eq!(n, removed, "out_removed {n}, {removed} reported removed");
    }
}

fn hand_off(w: &mut World, input: &mut Input) {
    let null_out = input.one_in(8);
    let mut fd = -77;
    let out = if null_out { ptr::null_mut() } else { &mut fd };
    let rc = unsafe { usock_hand_off(w.dir_ptr(), out) };
    if w.dir.is_none() || null_out {
        // The handle stays valid after a failure: the sequence goes on with it.
        return check::exactly("usock_hand_off", rc, INVALID);
    }
    check::status("usock_hand_off", rc, check::HAND_OFF);
    if rc != OK {
        assert_eq!(fd, -77, "usock_hand_off wrote out_fd on failure");
        return;
    }
    assert!(
        !is_cloexec(fd),
        "usock_hand_off: descriptor {fd} is close-on-exec"
    );
    let dir = w.dir.take().unwrap();
    assert!(exists(&dir.path), "usock_hand_off removed {:?}", dir.path);
    w.handed.push(Handed {
        path: dir.path,
        fd: Some(fd),
        shared: dir.shared,
        planted: dir.planted,
    });
}

fn take_over(w: &mut World, input: &mut Input) {
    let which = (!w.handed.is_empty()).then(|| input.byte() as usize % w.handed.len());
    let path = match (input.pick(8), which) {
        (0, _) => None,
        (1, _) => Some(CString::new(input.text(60)).unwrap()),
        (2, _) => Some(scratch().below(&input.text(100))),
        (_, Some(i)) => Some(w.handed[i].path.clone()),
        (_, None) => Some(scratch().short.clone()),
    };
    let own_fd = which.and_then(|i| w.handed[i].fd);
    let lock_fd = match input.pick(4) {
        0 | 1 => own_fd.unwrap_or(-1),
        2 => -1,
        _ => any_fd(w, input),
    };
    let flags = if input.one_in(16) {
        input.int() as u32 | 1
    } else {
        0
    };
    let null_out = w.dir.is_some() || input.one_in(16);
    let sentinel: *mut UsockDir = ptr::dangling_mut();
    let mut out = sentinel;
    let out_ptr = if null_out { ptr::null_mut() } else { &mut out };
    let lock_was_open = lock_fd >= 0 && fd_is_open(lock_fd);
    let rc = unsafe { usock_take_over(opt_ptr(&path), lock_fd, flags, out_ptr) };
    if path.is_none() || null_out || flags != 0 || lock_fd < -1 {
        return check::exactly("usock_take_over", rc, INVALID);
    }
    check::status("usock_take_over", rc, check::TAKE_OVER);
    if rc != OK {
        assert_eq!(out, sentinel, "usock_take_over wrote out_dir on failure");
        if lock_was_open {
            assert!(
                fd_is_open(lock_fd),
                "usock_take_over closed lock_fd on failure"
            );
        }
        return;
    }
    let path = path.unwrap();
    let i = which
        .filter(|&i| w.handed[i].path == path)
        .expect("usock_take_over of a stranger");
    if lock_fd >= 0 {
        assert!(!fd_is_open(lock_fd), "usock_take_over left lock_fd open");
        w.fds.retain(|&(fd, _)| fd != lock_fd);
    }
    let handed = w.handed.remove(i);
    if let Some(fd) = handed.fd.filter(|&fd| fd != lock_fd) {
        // The inherited descriptor stays the sequence's: keep it to close later.
        w.track(fd, Kind::Other);
    }
    assert_eq!(
        dir_path(out).as_ref(),
        Some(&path),
        "take-over changed the path"
    );
    w.dir = Some(Dir {
        ptr: out,
        path,
        shared: handed.shared,
        planted: handed.planted,
    });
}

fn peer_of(w: &mut World, input: &mut Input) {
    let fd = any_fd(w, input);
    let null_out = input.one_in(16);
    let mut peer = UsockPeer {
        uid: 7,
        gid: 7,
        pid: 7,
    };
    let out = if null_out { ptr::null_mut() } else { &mut peer };
    let rc = unsafe { usock_peer_of(fd, out) };
    if null_out || fd < 0 {
        return check::exactly("usock_peer_of", rc, INVALID);
    }
    check::status("usock_peer_of", rc, check::PEER_OF);
    if rc != OK {
        assert_eq!(
            (peer.uid, peer.gid, peer.pid),
            (7, 7, 7),
            "usock_peer_of wrote out"
        );
    } else if w.fds.contains(&(fd, Kind::Conn)) {
        assert_is_us(&peer, "usock_peer_of");
    }
}

fn assert_is_us(peer: &UsockPeer, call: &str) {
    // SAFETY: getpid cannot fail.
    let pid = unsafe { libc::getpid() };
    assert_eq!(
        (peer.uid, peer.pid),
        (euid(), pid),
        "{call}: the peer is this process"
    );
}

fn policy_new(w: &mut World, input: &mut Input) {
    // Whether the policy admits this process: None where the sequence cannot tell (a fuzzed
    // group, which this process may belong to).
    let (allow, ids, admits_us): (c_int, Vec<u32>, Option<bool>) = match input.pick(7) {
        0 => (USOCK_ALLOW_SAME_USER, vec![], Some(true)),
        1 => (USOCK_ALLOW_GROUP, vec![egid()], Some(true)),
        2 => (USOCK_ALLOW_UIDS, vec![euid()], Some(true)),
        3 => (USOCK_ALLOW_UIDS, vec![4242, 65534], Some(false)),
        4 => (USOCK_ALLOW_GROUP, vec![egid(), 4242], Some(false)),
        5 => (USOCK_ALLOW_UIDS, vec![], Some(false)),
        _ => {
            let allow = input.int();
            let id = input.int() as u32;
            let admits = match allow {
                USOCK_ALLOW_SAME_USER => Some(true),
                USOCK_ALLOW_UIDS => Some(id == euid()),
                _ => None,
            };
            (allow, vec![id], admits)
        }
    };
    let null_ids = input.one_in(8);
    let ids_ptr = if null_ids { ptr::null() } else { ids.as_ptr() };
    let null_out = input.one_in(16);
    let sentinel: *mut UsockPolicy = ptr::dangling_mut();
    let mut out = sentinel;
    let out_ptr = if null_out { ptr::null_mut() } else { &mut out };
    let rc = unsafe { usock_policy_new(allow, ids_ptr, ids.len(), out_ptr) };
    if null_out || (null_ids && !ids.is_empty()) || !(0..=2).contains(&allow) {
        return check::exactly("usock_policy_new", rc, INVALID);
    }
    check::status("usock_policy_new", rc, check::POLICY_NEW);
    if rc != OK {
        assert_eq!(
            out, sentinel,
            "usock_policy_new wrote out_policy on failure"
        );
        return;
    }
    if let Some(old) = w.policy.take() {
        check::exactly(
            "usock_policy_free",
            unsafe { usock_policy_free(old.ptr) },
            OK,
        );
    }
    w.policy = Some(Policy {
        ptr: out,
        admits_us,
        refused_seen: 0,
    });
}

fn policy_ptr(w: &World, input: &mut Input) -> (*const UsockPolicy, Option<bool>) {
    match &w.policy {
        Some(p) if !input.one_in(4) => (p.ptr, p.admits_us),
        _ => (ptr::null(), Some(true)),
    }
}

fn accept(w: &mut World, input: &mut Input) {
    let (policy, admits_us) = policy_ptr(w, input);
    let listener = any_fd(w, input);
    let with_peer = !input.one_in(4);
    let null_out = input.one_in(16);
    let mut peer = UsockPeer {
        uid: 7,
        gid: 7,
        pid: 7,
    };
    let peer_ptr = if with_peer {
        &raw mut peer
    } else {
        ptr::null_mut()
    };
    let mut fd = -77;
    let out = if null_out { ptr::null_mut() } else { &mut fd };
    let rc = unsafe { usock_accept(policy, listener, peer_ptr, out) };
    if null_out || listener < 0 {
        return check::exactly("usock_accept", rc, INVALID);
    }
    check::status("usock_accept", rc, check::ACCEPT);
    if rc != OK {
        assert_eq!(
            (fd, peer.uid, peer.pid),
            (-77, 7, 7),
            "usock_accept wrote on failure"
        );
        return;
    }
    assert_ne!(
        admits_us,
        Some(false),
        "usock_accept admitted a peer the policy refuses"
    );
    assert!(
        is_cloexec(fd),
        "usock_accept: descriptor {fd} is not close-on-exec"
    );
    if with_peer {
        assert_is_us(&peer, "usock_accept");
    }
    w.track(fd, Kind::Conn);
}

fn refused(policy: *const UsockPolicy) -> u64 {
    let mut count = u64::MAX;
    let rc = unsafe { usock_policy_refused(policy, &mut count, ptr::null_mut()) };
    check::exactly("usock_policy_refused", rc, OK);
    count
}

fn policy_check(w: &mut World, input: &mut Input) {
    let (policy, admits_us) = policy_ptr(w, input);
    let fd = any_fd(w, input);
    let with_peer = !input.one_in(4);
    let mut peer = UsockPeer {
        uid: 7,
        gid: 7,
        pid: 7,
    };
    let peer_ptr = if with_peer {
        &raw mut peer
    } else {
        ptr::null_mut()
    };
    let before = (!policy.is_null()).then(|| refused(policy));
    let rc = unsafe { usock_policy_check(policy, fd, peer_ptr) };
    if fd < 0 {
        return check::exactly("usock_policy_check", rc, INVALID);
    }
    check::status("usock_policy_check", rc, check::POLICY_CHECK);
    if let (true, Some(admits)) = (w.fds.contains(&(fd, Kind::Conn)), admits_us) {
        check::exactly("usock_policy_check", rc, if admits { OK } else { UNSAFE });
    }
    if rc == OK && with_peer && w.fds.contains(&(fd, Kind::Conn)) {
        assert_is_us(&peer, "usock_policy_check");
    } else if rc != OK {
        assert_eq!(
            (peer.uid, peer.pid),
            (7, 7),
            "usock_policy_check wrote out_peer on failure"
        );
    }
    if let Some(before) = before {
        let counted = u64::from(rc == UNSAFE);
        assert_eq!(
            refused(policy),
            before + counted,
            "usock_policy_check miscounted"
        );
    }
}

fn policy_refused(w: &mut World, input: &mut Input) {
    let use_policy = !input.one_in(4);
    let policy = w.policy.as_mut().filter(|_| use_policy);
    let ptr = policy.as_ref().map_or(ptr::null(), |p| p.ptr.cast_const());
    let mut count = u64::MAX - 1;
    let mut last = i64::MIN;
    let rc = unsafe { usock_policy_refused(ptr, &mut count, &mut last) };
    let Some(policy) = policy else {
        check::exactly("usock_policy_refused", rc, INVALID);
        return assert_eq!(
            (count, last),
            (u64::MAX - 1, i64::MIN),
            "written on failure"
        );
    };
    check::exactly("usock_policy_refused", rc, OK);
    assert!(count >= policy.refused_seen, "refused count fell");
    assert!(count == 0 || last >= -1, "last refused uid {last}");
    assert!(count > 0 || last == -1, "no refusal but a last uid {last}");
    policy.refused_seen = count;
}

fn policy_free(w: &mut World, input: &mut Input) {
    let ptr = match w.policy.take() {
        Some(p) if !input.one_in(8) => p.ptr,
        kept => {
            w.policy = kept;
            ptr::null_mut()
        }
    };
    check::exactly("usock_policy_free", unsafe { usock_policy_free(ptr) }, OK);
}

fn close(w: &mut World, input: &mut Input) {
    let n = w.fds.len() + w.handed.len();
    if n == 0 {
        return;
    }
    let i = input.byte() as usize % n;
    let fd = if i < w.fds.len() {
        w.fds.remove(i).0
    } else {
        match w.handed[i - w.fds.len()].fd.take() {
            Some(fd) => fd,
            None => return,
        }
    };
    // SAFETY: a descriptor the sequence owned, now given up.
    assert_eq!(unsafe { libc::close(fd) }, 0, "close({fd})");
}

/// Puts a file or a directory that usock did not make into the directory.
fn plant(w: &mut World, input: &mut Input) {
    let Some(dir) = &mut w.dir else { return };
    let mut path = dir.path.to_bytes().to_vec();
    path.extend_from_slice(format!("/planted{}", input.pick(2)).as_bytes());
    let path = std::path::PathBuf::from(std::ffi::OsString::from(
        String::from_utf8(path).expect("usock paths here are ASCII"),
    ));
    let made = if input.one_in(2) {
        std::fs::create_dir(&path)
    } else {
        std::fs::File::create_new(&path).map(drop)
    };
    dir.planted |= made.is_ok();
}

fn info(w: &mut World, input: &mut Input) {
    let code = if input.one_in(2) {
        -(input.pick(12) as c_int)
    } else {
        input.int()
    };
    assert!(
        !usock_strerror(code).is_null(),
        "usock_strerror({code}) is NULL"
    );
    let named = !usock_status_name(code).is_null();
    assert_eq!(
        named,
        (USOCK_ERR_PANIC..=OK).contains(&code),
        "usock_status_name({code})"
    );
    // SAFETY: usock_version returns a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(usock_version()) }.to_str().unwrap();
    let due = format!("{USOCK_VERSION_MAJOR}.{USOCK_VERSION_MINOR}.{USOCK_VERSION_PATCH}");
    assert_eq!(version, due, "usock_version");
    assert_eq!(usock_path_max(), USOCK_PATH_MAX, "usock_path_max");
    assert!(!usock_last_error().is_null() && !usock_last_error_path().is_null());
    assert!(usock_last_errno() >= 0, "usock_last_errno");
    if let Some(dir) = &w.dir {
        assert_eq!(
            dir_path(dir.ptr).as_ref(),
            Some(&dir.path),
            "usock_dir_path changed"
        );
    }
    assert!(dir_path(ptr::null()).is_none(), "usock_dir_path(NULL)");
}

/// `usock_dir_idle`: looks, never changes. OK only when no socket in the directory answers a
/// connection of any type (the sweep's rule, datagram included); the entries and the handle's
/// path are the same after the call.
fn dir_idle(w: &mut World, _input: &mut Input) {
    let Some(dir) = &w.dir else {
        let rc = unsafe { usock_dir_idle(ptr::null()) };
        return check::exactly("usock_dir_idle", rc, INVALID);
    };
    let before = entries(&dir.path);
    let rc = unsafe { usock_dir_idle(dir.ptr) };
    check::status("usock_dir_idle", rc, check::DIR_IDLE);
    assert_eq!(
        entries(&dir.path),
        before,
        "usock_dir_idle changed the directory"
    );
    assert_eq!(
        dir_path(dir.ptr).as_ref(),
        Some(&dir.path),
        "usock_dir_idle changed the handle"
    );
    if rc != OK {
        return;
    }
    for (name, is_socket) in &before {
        let mut path = dir.path.to_bytes().to_vec();
        path.push(b'/');
        path.extend_from_slice(name);
        if *is_socket && path.len() < USOCK_PATH_MAX {
            assert!(
                !answers(&path),
                "usock_dir_idle said idle, but {} answers",
                String::from_utf8_lossy(&path)
            );
        }
    }
}

/// The directory's entries, by name, and whether each is a socket.
fn entries(dir: &CStr) -> Vec<(Vec<u8>, bool)> {
    let mut found: Vec<(Vec<u8>, bool)> = match std::fs::read_dir(world::os_path(dir)) {
        Ok(list) => list
            .map(|e| {
                let e = e.unwrap();
                let socket = e.file_type().is_ok_and(scratch::is_socket);
                (e.file_name().as_bytes().to_vec(), socket)
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}

/// Whether a socket at `path` (short enough for `sun_path`) takes a non-blocking connection of
/// any of the three types.
fn answers(path: &[u8]) -> bool {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sun.sun_path.iter_mut().zip(path) {
        *d = *s as c_char;
    }
    [libc::SOCK_STREAM, libc::SOCK_SEQPACKET, libc::SOCK_DGRAM]
        .into_iter()
        .any(|ty| {
            let fd = fresh_socket(ty, libc::AF_UNIX);
            // SAFETY: sun is a valid sockaddr_un of the size given; fd is ours, closed after.
            let (rc, err) = unsafe {
                let rc = libc::connect(
                    fd,
                    (&sun as *const libc::sockaddr_un).cast(),
                    std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
                );
                let err = std::io::Error::last_os_error().raw_os_error();
                libc::close(fd);
                (rc, err)
            };
            rc == 0 || err == Some(libc::EAGAIN) || err == Some(libc::EINPROGRESS)
        })
}

/// `usock_overflow_ids`: always OK; each out-pointer given gets the system's overflow id
/// (`/proc/sys/kernel/overflowuid` and `overflowgid` on Linux, 65534 where it does not say).
fn overflow_ids(_w: &mut World, input: &mut Input) {
    let (mut uid, mut gid) = (7u32, 7u32);
    let uid_ptr: *mut u32 = if input.one_in(4) {
        ptr::null_mut()
    } else {
        &mut uid
    };
    let gid_ptr: *mut u32 = if input.one_in(4) {
        ptr::null_mut()
    } else {
        &mut gid
    };
    let rc = unsafe { usock_overflow_ids(uid_ptr, gid_ptr) };
    check::exactly("usock_overflow_ids", rc, OK);
    let system = |name: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/{name}"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(65534u32)
    };
    if !uid_ptr.is_null() {
        assert_eq!(uid, system("overflowuid"), "usock_overflow_ids: uid");
    }
    if !gid_ptr.is_null() {
        assert_eq!(gid, system("overflowgid"), "usock_overflow_ids: gid");
    }
}
