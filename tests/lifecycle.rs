//! Server lifecycle: connecting, well-known paths (stale sockets, live servers, replace mode,
//! races held at chosen points), the crash sweep and the hand-off across `exec`. None of these
//! need root, except the one that drops privileges to show `EACCES`.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::{Scratch, in_child, mode};
use usock::testing::{self, Point};
use usock::{BindMode, BoundPath, ErrorKind, PrivateDir, SocketType};

fn errno(err: &usock::Error) -> i32 {
    err.raw_os_error().unwrap_or(0)
}

// ---------------------------------------------------------------- connecting

#[test]
fn connect_reaches_a_listener_and_keeps_each_failures_errno() {
    let dir = PrivateDir::new().unwrap();
    let listener = dir.listener(None).unwrap();
    let path = dir.socket_path(None).unwrap();
    let fd = usock::connect(&path, SocketType::Stream).unwrap();
    let (mut server, _) = listener.accept().unwrap();
    let mut client = UnixStream::from(fd);
    client.write_all(b"hi").unwrap();
    let mut buf = [0; 2];
    server.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    // close-on-exec
    // SAFETY: plain fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(client.as_raw_fd(), libc::F_GETFD) };
    assert_ne!(flags & libc::FD_CLOEXEC, 0);

    // nothing there
    let err = usock::connect(dir.path().join("none"), SocketType::Stream).unwrap_err();
    assert_eq!((err.kind(), errno(&err)), (ErrorKind::System, libc::ENOENT));
    assert!(err.message().contains("nothing is there"), "{err}");
    // not a socket
    fs::write(dir.path().join("file"), b"").unwrap();
    let err = usock::connect(dir.path().join("file"), SocketType::Stream).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::System);
    assert!(
        err.message().contains("a regular file, not a socket"),
        "{err}"
    );
    fs::remove_file(dir.path().join("file")).unwrap();
    // nobody listening (stale)
    let stale = dir
        .bind(Some("stale".as_ref()), SocketType::Stream, None)
        .unwrap();
    drop(stale);
    let err = usock::connect(dir.path().join("stale"), SocketType::Stream).unwrap_err();
    assert_eq!(errno(&err), libc::ECONNREFUSED, "{err}");
    assert!(err.message().contains("nobody is listening"), "{err}");
    // wrong type
    let _dgram = dir.datagram(Some("dgram".as_ref())).unwrap();
    let err = usock::connect(dir.path().join("dgram"), SocketType::Stream).unwrap_err();
    assert_eq!(errno(&err), libc::EPROTOTYPE, "{err}");
    assert!(usock::connect(dir.path().join("dgram"), SocketType::Datagram).is_ok());
    // too long
    let long = format!("/tmp/{}", "x".repeat(usock::MAX_SOCKET_PATH));
    let err = usock::connect(&long, SocketType::Stream).unwrap_err();
    assert_eq!(
        (err.kind(), errno(&err)),
        (ErrorKind::TooLong, libc::ENAMETOOLONG)
    );
    assert_eq!(err.path(), Some(Path::new(&long)));
    // bad input
    let err = usock::connect("", SocketType::Stream).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    drop(listener);
    dir.cleanup().unwrap();
}

#[test]
#[cfg(all(target_os = "linux", not(usock_portable)))]
fn a_full_backlog_is_eagain_without_waiting() {
    let dir = PrivateDir::new().unwrap();
    let fd = dir.bind(None, SocketType::Stream, Some(1)).unwrap();
    let path = dir.socket_path(None).unwrap();
    let options = usock::ConnectOptions::default().nonblocking(true);
    let mut held = Vec::new();
    let err = loop {
        match usock::connect_with(&path, SocketType::Stream, options) {
            Ok(c) => held.push(c),
            Err(e) => break e,
        }
        assert!(held.len() < 100, "the backlog never filled");
    };
    assert_eq!(errno(&err), libc::EAGAIN, "{err}");
    assert!(err.message().contains("backlog is full"), "{err}");
    drop(fd);
}

#[test]
fn connecting_without_permission_is_eacces() {
    if !is_root() {
        return; // needs to drop privileges; `make test` runs it as root
    }
    let scratch = Scratch::new("eacces");
    let socket = scratch.path().join("root.sock");
    let _listener = UnixListener::bind(&socket).unwrap();
    fs::set_permissions(&socket, fs::Permissions::from_mode(0o600)).unwrap();
    common::run_child_as(common::NOBODY, "child_connect_eacces", |cmd| {
        cmd.env("USOCK_TEST_SOCKET", &socket);
    });
}

#[test]
#[ignore = "run by connecting_without_permission_is_eacces"]
fn child_connect_eacces() {
    if !in_child() {
        return;
    }
    let socket = std::env::var_os("USOCK_TEST_SOCKET").unwrap();
    let err = usock::connect(&socket, SocketType::Stream).unwrap_err();
    assert_eq!(errno(&err), libc::EACCES, "{err}");
    assert!(err.message().contains("permission denied"), "{err}");
}

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

// ---------------------------------------------------------------- well-known paths

/// A directory only the user can write to, for well-known paths.
fn home() -> Scratch {
    Scratch::new("wk")
}

fn accept_one(listener: &UnixListener) {
    listener.set_nonblocking(false).unwrap();
    let (mut s, _) = listener.accept().unwrap();
    let _ = s.write_all(b"x");
}

#[test]
fn a_well_known_path_is_bound_0600_with_a_lock_file_and_removed_at_unbind() {
    let home = home();
    let path = home.path().join("app.sock");
    let (bound, listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    assert_eq!(bound.path(), path);
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());
    assert_eq!(mode(&path), 0o600);
    let lock = home.path().join("app.sock.lock");
    assert!(fs::symlink_metadata(&lock).unwrap().is_file());
    assert_eq!(mode(&lock), 0o600);
    let mut client = UnixStream::connect(&path).unwrap();
    accept_one(&listener);
    let mut b = [0; 1];
    client.read_exact(&mut b).unwrap();
    bound.unbind().unwrap();
    assert!(!path.exists(), "unbind removes the socket");
    assert!(lock.exists(), "the lock file is never removed");
}

/// The identity a handle records is its own socket's, taken once it is bound (from its pin's
/// `fstat` where the system can pin a file, from `lstat` elsewhere): in both modes, over nothing
/// and over a live server, unbind removes exactly that socket and the replaced server's leaves it.
#[test]
fn the_identity_recorded_at_bind_is_the_new_socket_in_both_modes() {
    let home = home();
    let path = home.path().join("id.sock");
    for mode in [BindMode::Exclusive, BindMode::Replace] {
        let (bound, _listener) = BoundPath::listener(&path, mode).unwrap();
        bound.unbind().unwrap();
        assert!(!path.exists(), "{mode:?}: unbind left its own socket");
    }
    let (old, _old_listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    let (new, _new_listener) = BoundPath::listener(&path, BindMode::Replace).unwrap();
    old.unbind().unwrap();
    assert!(
        path.exists(),
        "the replaced server's unbind removed its successor"
    );
    new.unbind().unwrap();
    assert!(!path.exists(), "the successor's unbind left its own socket");
}

#[test]
fn a_live_server_is_never_displaced_without_replace_mode() {
    let home = home();
    let path = home.path().join("live.sock");
    let (first, listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    for ty in [
        SocketType::Stream,
        SocketType::SeqPacket,
        SocketType::Datagram,
    ] {
        let err = BoundPath::bind(&path, ty, None, BindMode::Exclusive).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
        assert_eq!(errno(&err), libc::EADDRINUSE, "{err}");
        assert!(err.message().contains("a server answers"), "{err}");
    }
    // Still the first server's socket, and it still answers.
    let client = UnixStream::connect(&path).unwrap();
    accept_one(&listener);
    drop(client);
    first.unbind().unwrap();
    common::figure(
        "fault",
        "a live stream server at a well-known path, asked for by stream, seqpacket and datagram binds: never displaced",
        3,
        3,
        "tests/lifecycle.rs::a_live_server_is_never_displaced_without_replace_mode",
    );
}

/// Found by the fuzzer: usock_last_errno promises EADDRINUSE after USOCK_ERR_IN_USE, and
/// usock_bind_path's refusal of a live server gave 0.
#[test]
fn a_refused_well_known_path_is_eaddrinuse_through_the_c_abi() {
    use std::ffi::CString;
    use usock::testing::ffi::*;
    let home = home();
    let path = home.path().join("busy.sock");
    let (first, _listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    let c_path = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: socket() takes no pointers; the new descriptor is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0)) };
    let mut out = std::ptr::null_mut();
    // SAFETY: a NUL-terminated path, an open socket and a writable out-pointer.
    let rc = unsafe { usock_bind_path(c_path.as_ptr(), fd.as_raw_fd(), 0, 0, &mut out) };
    assert_eq!(rc, USOCK_ERR_IN_USE);
    assert!(out.is_null(), "out_bound written on failure");
    assert_eq!(usock_last_errno(), libc::EADDRINUSE);
    first.unbind().unwrap();
}

/// Found by the fuzzer. A server's socket went stale (its descriptor closed, no unbind yet); a
/// second server replaced it; then the first handle's unbind removed the second server's live
/// socket: the stale file's inode was freed when it was removed, the file system (ext4 here)
/// gave the number to the new socket, and unbind tells files apart by device and inode. Now the
/// handle pins its file (`O_PATH`), so the number cannot be reused while it lives.
#[test]
#[cfg_attr(
    usock_portable,
    ignore = "macOS and the BSDs cannot open a socket file to pin it (no O_PATH): SECURITY.md"
)]
fn unbind_after_a_stale_socket_was_replaced_leaves_the_successor() {
    let home = home();
    let path = home.path().join("reused.sock");
    for mode in [BindMode::Exclusive, BindMode::Replace] {
        let (first, listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
        drop(listener);
        let (second, successor) = BoundPath::listener(&path, mode).unwrap();
        first.unbind().unwrap();
        assert!(
            fs::symlink_metadata(&path).is_ok(),
            "{mode:?}: the first handle's unbind removed the successor's socket"
        );
        let _client = UnixStream::connect(&path).unwrap();
        accept_one(&successor);
        second.unbind().unwrap();
    }
    common::figure(
        "attack",
        "a handle's socket gone stale, a successor binding at the path (exclusive and replace) with the inode number freed: the old handle's unbind leaves the successor's socket",
        2,
        2,
        "tests/lifecycle.rs::unbind_after_a_stale_socket_was_replaced_leaves_the_successor",
    );
}

/// Found by the fuzzer. A socket that is bound already cannot be bound at a well-known path;
/// the call used to find that out only at `bind`, after it had removed the stale socket at the
/// path: a failed call changed what was there. It is refused before anything is touched, in
/// both modes, for a socket bound by name and (Linux) one bound to an abstract name.
#[test]
fn an_already_bound_socket_is_refused_before_a_stale_socket_is_removed() {
    let home = home();
    let path = home.path().join("kept.sock");
    let elsewhere = home.path().join("elsewhere.sock");
    #[cfg_attr(not(target_os = "linux"), allow(unused_mut))]
    let mut sockets = vec![UnixListener::bind(&elsewhere).unwrap()];
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("usock-test-{}", std::process::id());
        let abstract_name = std::os::unix::net::SocketAddr::from_abstract_name(name).unwrap();
        sockets.push(UnixListener::bind_addr(&abstract_name).unwrap());
    }
    let mut tried = 0;
    for bound_already in &sockets {
        for mode in [BindMode::Exclusive, BindMode::Replace] {
            let (stale, listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
            drop(listener);
            let id = fs::symlink_metadata(&path).unwrap().ino();
            let err = BoundPath::bind_socket(&path, bound_already.as_fd(), None, mode)
                .expect_err("a bound socket cannot be bound again");
            assert_eq!(err.kind(), ErrorKind::Invalid, "{mode:?}: {err}");
            assert!(err.message().contains("already bound"), "{err}");
            assert_eq!(
                fs::symlink_metadata(&path).map(|m| m.ino()).ok(),
                Some(id),
                "{mode:?}: the failed call removed the stale socket at the path"
            );
            stale.unbind().unwrap();
            tried += 1;
        }
    }
    common::figure(
        "attack",
        "a socket already bound (by path, or to an abstract name) given for a well-known path with a stale socket there, both modes: refused as invalid before anything at the path is touched",
        tried,
        tried,
        "tests/lifecycle.rs::an_already_bound_socket_is_refused_before_a_stale_socket_is_removed",
    );
}

/// Found by the fuzzer. A connected stream or seqpacket socket binds but cannot listen; given
/// for a well-known path with a stale socket, the call removed the stale socket, bound, failed
/// at `listen()` and returned an error: a failed call changed what was there. It is refused
/// before the stale socket is removed, in both modes, with the same error as when nothing was
/// stale (where the bound file is removed again), and a connected datagram socket still binds.
#[test]
fn a_connected_socket_is_refused_before_a_stale_socket_is_removed() {
    let home = home();
    let path = home.path().join("kept.sock");
    let server = home.path().join("server.sock");
    let _server = UnixListener::bind(&server).unwrap();
    let fresh = home.path().join("fresh.sock");
    let mut tried = 0;
    for mode in [BindMode::Exclusive, BindMode::Replace] {
        let client = UnixStream::connect(&server).unwrap();
        let (stale, listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
        drop(listener);
        let id = fs::symlink_metadata(&path).unwrap().ino();
        let err = BoundPath::bind_socket(&path, client.as_fd(), None, mode)
            .expect_err("a connected socket cannot listen");
        assert_eq!(err.kind(), ErrorKind::Invalid, "{mode:?}: {err}");
        assert!(err.message().contains("connected socket"), "{err}");
        assert_eq!(
            fs::symlink_metadata(&path).map(|m| m.ino()).ok(),
            Some(id),
            "{mode:?}: the failed call removed the stale socket at the path"
        );
        stale.unbind().unwrap();
        // Nothing stale: the same error, naming the path asked for (not replace mode's
        // temporary name), and nothing made: no file, no lock file, the socket not bound.
        let err = BoundPath::bind_socket(&fresh, client.as_fd(), None, mode)
            .expect_err("a connected socket cannot listen");
        assert_eq!(err.kind(), ErrorKind::Invalid, "{mode:?}: {err}");
        assert!(err.message().contains("connected socket"), "{err}");
        assert!(
            err.message().contains(&*fresh.to_string_lossy()),
            "{mode:?}: {err}"
        );
        assert!(!fresh.exists(), "{mode:?}: the failed call left a file");
        assert!(
            !home.path().join("fresh.sock.lock").exists(),
            "{mode:?}: the failed call made a lock file"
        );
        assert!(
            client.local_addr().unwrap().is_unnamed(),
            "{mode:?}: the failed call bound the caller's socket"
        );
        tried += 1;
    }
    // In a private directory: the same error, and nothing left at the name.
    let client = UnixStream::connect(&server).unwrap();
    let dir = PrivateDir::in_parent(home.path()).unwrap();
    let err = dir
        .bind_socket(None, client.as_fd(), None)
        .expect_err("a connected socket cannot listen");
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.message().contains("connected socket"), "{err}");
    assert!(
        !dir.path().join("sock").exists(),
        "the failed bind left a file"
    );
    assert!(
        client.local_addr().unwrap().is_unnamed(),
        "the failed bind bound the caller's socket"
    );
    dir.cleanup().unwrap();
    // A connected datagram socket does not listen: it binds as before.
    let peer = home.path().join("peer.dgram");
    let _peer = UnixDatagram::bind(&peer).unwrap();
    let dgram = UnixDatagram::unbound().unwrap();
    dgram.connect(&peer).unwrap();
    let bound = BoundPath::bind_socket(
        home.path().join("d.sock"),
        dgram.as_fd(),
        None,
        BindMode::Exclusive,
    )
    .unwrap();
    bound.unbind().unwrap();
    common::figure(
        "attack",
        "a connected stream socket given for a well-known path with a stale socket there, both modes: refused as invalid before anything at the path is touched (and, with nothing there, nothing made: no file, no lock file, the socket left unbound)",
        tried,
        tried,
        "tests/lifecycle.rs::a_connected_socket_is_refused_before_a_stale_socket_is_removed",
    );
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_datagram_socket_is_not() {
    let home = home();
    let path = home.path().join("stale.sock");
    // A server that crashed: the socket file stays, nobody listens.
    let crashed = UnixListener::bind(&path).unwrap();
    drop(crashed);
    let (bound, listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    let _c = UnixStream::connect(&path).unwrap();
    accept_one(&listener);
    bound.unbind().unwrap();

    let dgram_path = home.path().join("dgram.sock");
    let _live = UnixDatagram::bind(&dgram_path).unwrap();
    let err = BoundPath::listener(&dgram_path, BindMode::Exclusive).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse);
    assert!(err.message().contains("SOCK_DGRAM"), "{err}");
}

#[test]
fn what_is_not_a_socket_of_the_user_is_in_use_and_left_alone() {
    let home = home();
    let file = home.path().join("file.sock");
    fs::write(&file, b"data").unwrap();
    let link = home.path().join("link.sock");
    std::os::unix::fs::symlink("/tmp/elsewhere", &link).unwrap();
    let sub = home.path().join("dir.sock");
    fs::create_dir(&sub).unwrap();
    for (path, what) in [
        (&file, "a regular file"),
        (&link, "a symbolic link"),
        (&sub, "a directory"),
    ] {
        for mode in [BindMode::Exclusive, BindMode::Replace] {
            let err = BoundPath::listener(path, mode).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
            assert_eq!(errno(&err), libc::EADDRINUSE, "{err}");
            assert!(err.message().contains(what), "{err}");
            assert!(err.message().contains("left in place"), "{err}");
        }
    }
    assert_eq!(fs::read(&file).unwrap(), b"data");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        PathBuf::from("/tmp/elsewhere")
    );
    assert!(sub.is_dir());
    common::figure(
        "attack",
        "a regular file, a symlink or a directory at a well-known path, in both modes: refused, left alone",
        6,
        6,
        "tests/lifecycle.rs::what_is_not_a_socket_of_the_user_is_in_use_and_left_alone",
    );
}

#[test]
fn a_symlink_at_the_lock_file_is_refused_and_not_followed() {
    let home = home();
    let target = home.path().join("victim");
    fs::write(&target, b"keep").unwrap();
    let path = home.path().join("app.sock");
    std::os::unix::fs::symlink(&target, home.path().join("app.sock.lock")).unwrap();
    let err = BoundPath::listener(&path, BindMode::Exclusive).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
    assert!(err.message().contains("symbolic link"), "{err}");
    assert_eq!(fs::read(&target).unwrap(), b"keep");
    assert!(!path.exists());
    common::figure(
        "attack",
        "a symlink planted at P.lock (to a file that must survive): refused, not followed",
        1,
        1,
        "tests/lifecycle.rs::a_symlink_at_the_lock_file_is_refused_and_not_followed",
    );
}

/// The well-known directory's mode is judged on the directory the path resolves to (the parent
/// walk's own `fstat` of what it opened, reused since issue 20), never on a symbolic link, an
/// ancestor or a component that `..` left: reached through a link, or through `sub/..`, a
/// sticky world-writable directory is refused, and a 0755 directory inside it is accepted.
#[test]
fn the_well_known_directory_judged_is_the_one_the_path_resolves_to() {
    use std::os::unix::fs::symlink;
    let home = home();
    let open = home.path().join("open");
    let closed = home.path().join("closed");
    let sub = open.join("sub");
    for (dir, perms) in [(&open, 0o1777), (&closed, 0o755), (&sub, 0o755)] {
        fs::create_dir(dir).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(perms)).unwrap();
    }
    symlink(&open, home.path().join("to-open")).unwrap();
    symlink(&closed, home.path().join("to-closed")).unwrap();
    for refused in [
        "to-open/app.sock",
        "closed/../open/app.sock",
        "open/sub/../app.sock",
    ] {
        let err = BoundPath::listener(home.path().join(refused), BindMode::Exclusive).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsafe, "{refused}: {err}");
        assert!(
            err.message().contains(open.to_str().unwrap()),
            "{refused}: {err}"
        );
        assert_eq!(home.entries("open"), vec!["sub".to_owned()], "{refused}");
    }
    for (accepted, real) in [
        ("to-closed/app.sock", closed.join("app.sock")),
        ("to-open/sub/app.sock", sub.join("app.sock")),
        ("open/sub/../sub/app.sock", sub.join("app.sock")),
    ] {
        let (bound, _listener) =
            BoundPath::listener(home.path().join(accepted), BindMode::Exclusive)
                .unwrap_or_else(|e| panic!("{accepted}: {e}"));
        assert!(
            fs::symlink_metadata(&real).unwrap().file_type().is_socket(),
            "{accepted}"
        );
        assert_eq!(mode(&real), 0o600, "{accepted}");
        bound.unbind().unwrap();
        assert!(!real.exists(), "{accepted}");
    }
}

#[test]
fn a_directory_others_can_write_to_is_refused_even_when_sticky() {
    let home = home();
    for perms in [0o1777, 0o775, 0o757] {
        let dir = home.path().join(format!("d{perms:o}"));
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(perms)).unwrap();
        let err = BoundPath::listener(dir.join("app.sock"), BindMode::Exclusive).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsafe, "{perms:o}: {err}");
        let why = if perms & 0o1000 != 0 {
            "another user can create a file there"
        } else {
            "writable by group or others"
        };
        assert!(err.message().contains(why), "{err}");
        assert!(!dir.join("app.sock").exists());
        assert!(!dir.join("app.sock.lock").exists(), "nothing is created");
    }
    common::figure(
        "attack",
        "a well-known path in a directory others can write to (1777, 0775, 0757): refused, nothing created",
        3,
        3,
        "tests/lifecycle.rs::a_directory_others_can_write_to_is_refused_even_when_sticky",
    );
}

#[test]
fn a_path_too_long_or_malformed_is_refused_before_anything_is_made() {
    let home = home();
    let room = usock::MAX_SOCKET_PATH - home.path().as_os_str().len() - 1;
    let path = home.path().join("x".repeat(room + 1));
    let err = BoundPath::listener(&path, BindMode::Exclusive).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLong, "{err}");
    assert_eq!(home.entries(""), Vec::<String>::new());
    let path = home.path().join("y".repeat(room));
    let (bound, _l) = BoundPath::listener(&path, BindMode::Replace).unwrap();
    bound.unbind().unwrap();
    for bad in ["", "/"] {
        assert_eq!(
            BoundPath::listener(bad, BindMode::Exclusive)
                .unwrap_err()
                .kind(),
            ErrorKind::Invalid
        );
    }
    // A path whose last component is not a file name names a directory, never a socket in it
    // (the fuzzer found "DIR/x/." bound as "DIR/x"): refused, nothing made.
    let before = home.entries("");
    for tail in ["x/.", "x/..", "x/", "."] {
        let bad = format!("{}/{tail}", home.path().display());
        let err = BoundPath::listener(&bad, BindMode::Exclusive).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{bad}: {err}");
    }
    assert_eq!(home.entries(""), before);
    let s = home.path().join("s");
    let (bound, _l) = BoundPath::listener(&s, BindMode::Replace).unwrap();
    let (bound2, _l2) = BoundPath::listener(&s, BindMode::Replace).unwrap();
    drop(bound);
    bound2.unbind().unwrap();
}

#[test]
fn replace_mode_takes_over_with_no_failed_connection() {
    let _hooks = hooks_serial();
    let home = home();
    let path = home.path().join("svc.sock");
    let (old, old_listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let connects = Arc::new(AtomicUsize::new(0));
    // Both servers accept whatever arrives.
    let serve = |l: UnixListener, stop: Arc<AtomicBool>| {
        l.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(b"k");
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
            // Drain what is left in the backlog before stopping.
            while let Ok((mut s, _)) = l.accept() {
                let _ = s.write_all(b"k");
            }
        })
    };
    let old_stop = Arc::new(AtomicBool::new(false));
    let old_server = serve(old_listener, old_stop.clone());
    let client = {
        let (path, stop, failures, connects) = (
            path.clone(),
            stop.clone(),
            failures.clone(),
            connects.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match UnixStream::connect(&path) {
                    Ok(mut c) => {
                        let mut b = [0; 1];
                        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                        if c.read_exact(&mut b).is_err() {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                        connects.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    let mut servers = vec![(old, old_stop, old_server)];
    for _ in 0..20 {
        let (new, new_listener) = BoundPath::listener(&path, BindMode::Replace).unwrap();
        let new_stop = Arc::new(AtomicBool::new(false));
        let new_server = serve(new_listener, new_stop.clone());
        // The old server stops (after draining its backlog) and unbinds, which leaves the
        // new server's socket in place.
        let (old, old_stop, old_server) = servers.pop().unwrap();
        old.unbind().unwrap();
        old_stop.store(true, Ordering::Relaxed);
        old_server.join().unwrap();
        servers.push((new, new_stop, new_server));
        std::thread::sleep(Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    let (last, last_stop, last_server) = servers.pop().unwrap();
    assert!(path.exists(), "the last server's socket is in place");
    last.unbind().unwrap();
    last_stop.store(true, Ordering::Relaxed);
    last_server.join().unwrap();
    assert!(connects.load(Ordering::Relaxed) > 20);
    assert_eq!(failures.load(Ordering::Relaxed), 0, "a connection failed");
    assert!(!path.exists());
    common::figure(
        "fault",
        "20 replacements while a client connects in a loop (tried: the connections made meanwhile): no failed connection",
        connects.load(Ordering::Relaxed),
        connects.load(Ordering::Relaxed),
        "tests/lifecycle.rs::replace_mode_takes_over_with_no_failed_connection",
    );
}

/// The library's test hook is one per process: tests that set it run one at a time.
fn hooks_serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Holds the operation on `path` at `point` until the returned sender is dropped or sent to,
/// and reports through the barrier when it got there.
fn hold_at(point: Point, path: &Path) -> (Arc<Barrier>, std::sync::mpsc::Sender<()>) {
    let reached = Arc::new(Barrier::new(2));
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let wait = Mutex::new(Some(wait));
    let (target, barrier) = (path.to_owned(), reached.clone());
    let previous = Mutex::new(());
    testing::set_hook(Some(Arc::new(move |p, at: &Path| {
        let _serial = previous.lock().unwrap();
        if p == point && at == target {
            if let Some(wait) = wait.lock().unwrap().take() {
                barrier.wait();
                let _ = wait.recv();
            }
        }
    })));
    (reached, release)
}

/// The hook is process-wide: tests that set it take turns.
static HOOKED: Mutex<()> = Mutex::new(());

/// Found by the attacker review. A descriptor shared with another thread or process can change
/// while the call waits for the lock or after it examined the path: connected, or bound
/// elsewhere. The call removed the stale socket first and then failed at `bind` or `listen`.
/// Now the new socket listens beside the stale one before it is renamed over it, so whatever
/// the descriptor became, the failed call leaves the stale socket where it was, and nothing
/// else behind.
#[test]
fn a_shared_descriptor_changed_meanwhile_leaves_the_stale_socket_in_place() {
    let _hooks = hooks_serial();
    let _turn = HOOKED.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let path = home.path().join("shared.sock");
    let server = home.path().join("server.sock");
    let _server = UnixListener::bind(&server).unwrap();
    let mut tried = 0;
    for mode in [BindMode::Exclusive, BindMode::Replace] {
        for change in ["connected", "bound"] {
            let id = crashed_servers_socket(&path);
            // An unbound, unconnected stream socket, and a second descriptor of it.
            // SAFETY: a plain system call; the result is checked and owned at once.
            let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
            assert!(fd >= 0);
            // SAFETY: fd was just made and is owned by nobody else.
            let socket = unsafe { OwnedFd::from_raw_fd(fd) };
            let other_holder = socket.try_clone().unwrap();
            let (reached, release) = hold_at(Point::AfterProbe, &path);
            let binder = {
                let path = path.clone();
                std::thread::spawn(move || {
                    BoundPath::bind_socket(&path, socket.as_fd(), None, mode).map(|_| ())
                })
            };
            reached.wait(); // examined: stale; under the lock, before the bind
            match change {
                "connected" => {
                    connect_to(other_holder.as_fd(), &server);
                }
                _ => {
                    let name = format!("usock-test-{}-{tried}", std::process::id());
                    bind_abstract(other_holder.as_fd(), name.as_bytes());
                }
            }
            drop(release);
            let err = binder
                .join()
                .unwrap()
                .expect_err("the descriptor cannot listen now");
            testing::set_hook(None);
            assert_eq!(err.kind(), ErrorKind::Invalid, "{mode:?}, {change}: {err}");
            assert!(
                err.message().contains(&*path.to_string_lossy()),
                "{mode:?}, {change}: the message names the path asked for: {err}"
            );
            let context = format!("{mode:?}, {change}: {err}");
            assert_only_the_stale_socket_is_left(&home, &path, id, &context);
            tried += 1;
        }
    }
    common::figure(
        "attack",
        "a descriptor shared with another holder, connected or bound by it while usock_bind_path holds the lock over a stale socket, both modes: the call fails as invalid, naming the path, and the stale socket stays where it was, nothing left beside it",
        tried,
        tried,
        "tests/lifecycle.rs::a_shared_descriptor_changed_meanwhile_leaves_the_stale_socket_in_place",
    );
}

/// Found by the second attacker review. Another program of the user (no usock, no lock) that
/// removes the stale socket while usock holds the lock and binds its own server there: on
/// ext4 the new socket could get the freed inode number, pass the identity check and be
/// renamed over, though exclusive mode never replaces a live server. The stale socket is
/// pinned from the probe to the rename, so its number cannot pass on: the call is
/// `InUse` and the other server keeps its path.
#[test]
#[cfg(target_os = "linux")] // a socket file can be pinned (O_PATH) only there
#[cfg_attr(
    usock_portable,
    ignore = "macOS and the BSDs cannot open a socket file to pin it (no O_PATH): SECURITY.md"
)]
fn a_server_that_took_the_stale_sockets_place_meanwhile_is_not_renamed_over() {
    let _hooks = hooks_serial();
    let _turn = HOOKED.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let path = home.path().join("taken.sock");
    let mut tried = 0;
    for _ in 0..5 {
        drop(UnixListener::bind(&path).unwrap()); // a crashed server's socket: stale
        let (reached, release) = hold_at(Point::AfterProbe, &path);
        let binder = {
            let path = path.clone();
            std::thread::spawn(move || BoundPath::listener(&path, BindMode::Exclusive).map(drop))
        };
        reached.wait(); // examined: stale, under the lock
        fs::remove_file(&path).unwrap();
        let live = UnixListener::bind(&path).unwrap();
        let live_ino = fs::symlink_metadata(&path).unwrap().ino();
        drop(release);
        let result = binder.join().unwrap();
        testing::set_hook(None);
        let err = result.expect_err("exclusive mode renamed over a live server");
        assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
        assert!(err.message().contains("changed"), "{err}");
        assert_eq!(fs::symlink_metadata(&path).unwrap().ino(), live_ino);
        let _client = UnixStream::connect(&path).unwrap();
        accept_one(&live);
        assert_eq!(
            home.entries(""),
            vec!["taken.sock".to_owned(), "taken.sock.lock".to_owned()],
            "the new socket was left at its temporary name"
        );
        fs::remove_file(&path).unwrap();
        tried += 1;
    }
    common::figure(
        "attack",
        "exclusive mode over a stale socket, another program of the user binding its own server at the path while usock holds the lock (the stale socket's inode number free for reuse): never renamed over, InUse, nothing left beside the path",
        tried,
        tried,
        "tests/lifecycle.rs::a_server_that_took_the_stale_sockets_place_meanwhile_is_not_renamed_over",
    );
}

/// Found by the second attacker review. A bind killed between binding at its temporary name
/// and the rename leaves that socket beside the path; nothing removed it. A later bind in the
/// directory that uses a temporary name removes such sockets once they are old enough (a
/// minute; a test sets 0), and only those: the user's sockets named like usock's temporary
/// names that refuse connections. A live one (another path's bind in progress), a socket of
/// another name, and another user's are left.
#[test]
fn a_temporary_socket_left_by_a_killed_bind_is_removed_by_a_later_one() {
    let _hooks = hooks_serial();
    let _turn = HOOKED.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let path = home.path().join("app.sock");
    let at = |name: &str| home.path().join(name);
    drop(UnixListener::bind(&path).unwrap()); // the stale socket the killed bind was to replace
    drop(UnixListener::bind(at(".abcdefghijkmn")).unwrap()); // its temporary socket
    let _in_progress = UnixListener::bind(at(".bcdefghijkmnp")).unwrap();
    drop(UnixListener::bind(at(".other-socket1")).unwrap());
    drop(UnixListener::bind(at(".cdefghijkmnpq")).unwrap());
    let others = is_root();
    if others {
        common::chown(&at(".cdefghijkmnpq"), 1001);
    } else {
        fs::remove_file(at(".cdefghijkmnpq")).unwrap();
    }
    // Younger than a minute: kept.
    let (bound, listener) = BoundPath::listener(&path, BindMode::Replace).unwrap();
    assert!(
        at(".abcdefghijkmn").exists(),
        "a young leftover was removed"
    );
    drop(listener);
    std::mem::forget(bound); // stale again, as after a crash
    testing::set_leftover_age(Some(0));
    let result = BoundPath::listener(&path, BindMode::Exclusive);
    testing::set_leftover_age(None);
    let (bound, _listener) = result.unwrap();
    let mut want = vec![
        ".bcdefghijkmnp".to_owned(),
        ".other-socket1".to_owned(),
        "app.sock".to_owned(),
        "app.sock.lock".to_owned(),
    ];
    if others {
        want.insert(0, ".cdefghijkmnpq".to_owned());
    }
    want.sort();
    assert_eq!(home.entries(""), want);
    bound.unbind().unwrap();
    // A well-known path named like a temporary name (found by the third attacker review: its
    // own stale socket was taken for a leftover and removed, and the bind failed): replaced as
    // any stale socket; and a sibling path of that pattern, its lock file beside it, is left.
    let (odd, sibling) = (at(".aaaaaaaaaaaaa"), at(".bbbbbbbbbbbbb"));
    drop(UnixListener::bind(&odd).unwrap());
    drop(UnixListener::bind(&sibling).unwrap());
    fs::write(at(".bbbbbbbbbbbbb.lock"), b"").unwrap();
    testing::set_leftover_age(Some(0));
    let result = BoundPath::listener(&odd, BindMode::Exclusive);
    testing::set_leftover_age(None);
    let (odd_bound, _odd_listener) = result.unwrap();
    let _client = UnixStream::connect(&odd).unwrap();
    assert!(
        sibling.exists(),
        "a sibling well-known path's socket was removed"
    );
    odd_bound.unbind().unwrap();
    common::figure(
        "fault",
        "a bind killed between its temporary name and the rename: its socket there removed by a later bind in the directory once old enough; a live one, one of another name, another user's, the path's own and a sibling well-known path's left",
        1,
        1,
        "tests/lifecycle.rs::a_temporary_socket_left_by_a_killed_bind_is_removed_by_a_later_one",
    );
}

/// Found by the attacker review. Where a sandbox denies `getpeername`, a connected socket is
/// not seen before the bind; it fails at `listen`, and that failure removed the stale socket.
/// Now it leaves it in place (the new socket was beside it).
#[test]
#[cfg(target_os = "linux")] // seccomp
fn with_getpeername_denied_a_connected_socket_leaves_the_stale_socket_in_place() {
    let home = home();
    let path = home.path().join("sandboxed.sock");
    let server = home.path().join("server.sock");
    let _server = UnixListener::bind(&server).unwrap();
    let mut tried = 0;
    for mode in [BindMode::Exclusive, BindMode::Replace] {
        let id = crashed_servers_socket(&path);
        let client = UnixStream::connect(&server).unwrap();
        // The filter holds in this one thread (seccomp without TSYNC), which ends here.
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                common::deny_syscall(libc::SYS_getpeername, libc::EPERM);
                BoundPath::bind_socket(&path, client.as_fd(), None, mode).map(|_| ())
            })
            .join()
            .unwrap()
        });
        let err = result.expect_err("a connected socket cannot listen");
        assert_ne!(err.kind(), ErrorKind::InUse, "{mode:?}: {err}");
        assert_only_the_stale_socket_is_left(&home, &path, id, &format!("{mode:?}: {err}"));
        tried += 1;
    }
    common::figure(
        "fault",
        "getpeername denied by seccomp, a connected socket given for a well-known path with a stale socket there, both modes: the call fails and the stale socket stays where it was, nothing left beside it",
        tried,
        tried,
        "tests/lifecycle.rs::with_getpeername_denied_a_connected_socket_leaves_the_stale_socket_in_place",
    );
}

/// A crashed server's socket at `path` (bound, then closed: nobody listens); its inode number.
fn crashed_servers_socket(path: &Path) -> u64 {
    drop(UnixListener::bind(path).unwrap());
    fs::symlink_metadata(path).unwrap().ino()
}

/// After a failed bind at `path` over the stale socket `id`: that socket is still there, and
/// beside it only the lock file and `server.sock` (no temporary name). Removes it, for the next
/// round.
fn assert_only_the_stale_socket_is_left(home: &Scratch, path: &Path, id: u64, context: &str) {
    assert_eq!(
        fs::symlink_metadata(path).map(|m| m.ino()).ok(),
        Some(id),
        "{context}: the failed call removed the stale socket"
    );
    let name = path.file_name().unwrap().to_str().unwrap();
    let mut want = vec![
        name.to_owned(),
        format!("{name}.lock"),
        "server.sock".to_owned(),
    ];
    want.sort();
    assert_eq!(
        home.entries(""),
        want,
        "{context}: something was left beside the path"
    );
    fs::remove_file(path).unwrap();
}

/// `connect(2)` of the socket `fd` to `path` (std connects only sockets it makes).
fn connect_to(fd: std::os::fd::BorrowedFd<'_>, path: &Path) {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in sun
        .sun_path
        .iter_mut()
        .zip(path.as_os_str().as_encoded_bytes())
    {
        *d = *s as libc::c_char;
    }
    // SAFETY: sun is a valid sockaddr_un of the size given.
    let ret = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&sun as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
        )
    };
    assert_eq!(ret, 0, "connect: {}", std::io::Error::last_os_error());
}

/// Binds `fd` to the abstract name `name` (Linux), or to a file in a scratch directory
/// elsewhere: either way, bound.
fn bind_abstract(fd: std::os::fd::BorrowedFd<'_>, name: &[u8]) {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut sun: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    sun.sun_family = libc::AF_UNIX as libc::sa_family_t;
    #[cfg(target_os = "linux")]
    let (offset, bytes) = (1, name.to_vec());
    #[cfg(not(target_os = "linux"))]
    let (offset, bytes) = (0, {
        let dir = std::env::temp_dir().join(std::str::from_utf8(name).unwrap());
        let _ = fs::remove_file(&dir);
        dir.as_os_str().as_encoded_bytes().to_vec()
    });
    for (d, s) in sun.sun_path[offset..].iter_mut().zip(&bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + offset + bytes.len();
    // SAFETY: sun is a valid sockaddr_un; len covers the family and the name.
    let ret = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sun as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    };
    assert_eq!(ret, 0, "bind: {}", std::io::Error::last_os_error());
}

#[test]
fn a_second_server_held_between_probe_and_bind_keeps_the_first_out() {
    let _hooks = hooks_serial();
    let _turn = HOOKED.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let path = home.path().join("race.sock");
    let (reached, release) = hold_at(Point::AfterProbe, &path);
    let held = {
        let path = path.clone();
        std::thread::spawn(move || BoundPath::listener(&path, BindMode::Exclusive))
    };
    reached.wait(); // the held server has probed (nothing there) and holds the lock
    let other = {
        let path = path.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            (
                BoundPath::listener(&path, BindMode::Exclusive),
                started.elapsed(),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !path.exists(),
        "nobody bound while the first holds the lock"
    );
    drop(release);
    let (bound, listener) = held.join().unwrap().unwrap();
    let (result, waited) = other.join().unwrap();
    testing::set_hook(None);
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
    assert!(
        err.message().contains("a server answers"),
        "the second waited for the lock and then found the first live: {err}"
    );
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    let _c = UnixStream::connect(&path).unwrap();
    accept_one(&listener);
    bound.unbind().unwrap();
}

#[test]
fn a_close_racing_a_replace_leaves_the_replacement() {
    let _hooks = hooks_serial();
    let _turn = HOOKED.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let path = home.path().join("swap.sock");
    let (old, _old_listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    let (reached, release) = hold_at(Point::BeforeRename, &path);
    let replacer = {
        let path = path.clone();
        std::thread::spawn(move || BoundPath::listener(&path, BindMode::Replace))
    };
    reached.wait(); // the replacement listens at its temporary name, under the lock
    let closer = std::thread::spawn(move || old.unbind());
    std::thread::sleep(Duration::from_millis(100));
    assert!(path.exists(), "the old server's unbind waits for the lock");
    drop(release);
    let (new, new_listener) = replacer.join().unwrap().unwrap();
    closer.join().unwrap().unwrap();
    testing::set_hook(None);
    assert!(
        path.exists(),
        "the old server's unbind left the replacement"
    );
    let _c = UnixStream::connect(&path).unwrap();
    accept_one(&new_listener);
    assert_eq!(
        home.entries(""),
        vec!["swap.sock".to_owned(), "swap.sock.lock".to_owned()],
        "no temporary name is left"
    );
    new.unbind().unwrap();
    assert!(!path.exists());
}

/// The identity a replace-mode handle records is the socket it bound, taken before the rename
/// (its pin's `fstat` at the temporary name), not whatever the rename carried over the path: a
/// socket swapped in at the temporary name while the rename is held is renamed over the path,
/// and the handle's unbind leaves it (it is not the socket this server bound).
#[test]
fn a_socket_swapped_in_at_the_temporary_name_is_not_taken_for_the_bound_one() {
    use std::os::unix::fs::MetadataExt;
    let _hooks = hooks_serial();
    let _turn = HOOKED.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let path = home.path().join("swapped.sock");
    let (reached, release) = hold_at(Point::BeforeRename, &path);
    let replacer = {
        let path = path.clone();
        std::thread::spawn(move || BoundPath::listener(&path, BindMode::Replace))
    };
    reached.wait(); // the new socket listens at its temporary name, under the lock
    let temps: Vec<String> = home
        .entries("")
        .into_iter()
        .filter(|e| e != "swapped.sock" && e != "swapped.sock.lock")
        .collect();
    assert_eq!(temps.len(), 1, "{temps:?}");
    let temp = home.path().join(&temps[0]);
    let bound_ino = fs::symlink_metadata(&temp).unwrap().ino();
    fs::remove_file(&temp).unwrap();
    let impostor = UnixListener::bind(&temp).unwrap();
    let impostor_ino = fs::symlink_metadata(&temp).unwrap().ino();
    assert_ne!(bound_ino, impostor_ino);
    drop(release);
    let (bound, _listener) = replacer.join().unwrap().unwrap();
    testing::set_hook(None);
    assert_eq!(
        fs::symlink_metadata(&path).unwrap().ino(),
        impostor_ino,
        "the rename carried the swapped-in socket over the path"
    );
    bound.unbind().unwrap();
    assert!(
        path.exists(),
        "unbind removed a socket its handle did not bind"
    );
    let _c = UnixStream::connect(&path).unwrap();
    accept_one(&impostor);
}

#[test]
fn replace_modes_temporary_name_is_as_long_as_fits_even_for_a_one_byte_name() {
    let _hooks = hooks_serial();
    let _turn = HOOKED.lock().unwrap_or_else(|e| e.into_inner());
    let home = home();
    let path = home.path().join("s");
    let (old, _old_listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    let (reached, release) = hold_at(Point::BeforeRename, &path);
    let replacer = {
        let path = path.clone();
        std::thread::spawn(move || BoundPath::listener(&path, BindMode::Replace))
    };
    reached.wait(); // the replacement listens at its temporary name
    let temps: Vec<String> = home
        .entries("")
        .into_iter()
        .filter(|e| e != "s" && e != "s.lock")
        .collect();
    drop(release);
    let (new, _new_listener) = replacer.join().unwrap().unwrap();
    testing::set_hook(None);
    // A dot and 13 random characters (65 bits), not one character (32 choices).
    assert_eq!(temps.len(), 1, "{temps:?}");
    assert_eq!(temps[0].len(), 14, "{temps:?}");
    assert!(temps[0].starts_with('.'), "{temps:?}");
    drop(old);
    new.unbind().unwrap();
}

#[test]
fn exactly_one_of_two_racing_servers_wins_every_round() {
    let home = home();
    let path = home.path().join("duel.sock");
    for round in 0..100 {
        let start = Arc::new(Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (path, start) = (path.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    BoundPath::listener(&path, BindMode::Exclusive)
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::InUse, "round {round}: {e}");
            }
        }
        for r in results.into_iter().flatten() {
            r.0.unbind().unwrap();
        }
        assert!(!path.exists());
    }
    common::figure(
        "fault",
        "two servers starting at one well-known path at once: exactly one binds",
        100,
        100,
        "tests/lifecycle.rs::exactly_one_of_two_racing_servers_wins_every_round",
    );
}

#[test]
fn unbind_in_a_forked_child_removes_nothing() {
    let home = home();
    let path = home.path().join("fork.sock");
    common::run_child("child_unbind_after_fork", |cmd| {
        cmd.env("USOCK_TEST_PATH", &path);
    });
    assert!(!path.exists());
}

#[test]
#[ignore = "run by unbind_in_a_forked_child_removes_nothing"]
fn child_unbind_after_fork() {
    if !in_child() {
        return;
    }
    let path = PathBuf::from(std::env::var_os("USOCK_TEST_PATH").unwrap());
    let (bound, _listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    let ok = common::in_forked_child(|| {
        // SAFETY: reading the handle's fields only; the child leaves with _exit.
        let bound = unsafe { std::ptr::read(&bound) };
        bound.unbind().unwrap();
    });
    assert!(ok);
    assert!(
        path.exists(),
        "the child's unbind removed its parent's socket"
    );
    bound.unbind().unwrap();
}

// ---------------------------------------------------------------- processes killed

/// Starts the `#[ignore]`d test `name` of this binary as a child that prints a line
/// `READY <text>` and then waits to be killed; returns the child and the text.
// The caller waits for the child (kill9 or wait); clippy cannot see that across the return.
#[allow(clippy::zombie_processes)]
fn spawn_ready(name: &str, env: &[(&str, &Path)]) -> (Child, String) {
    let mut cmd = common::child_command(&std::env::current_exe().unwrap(), name);
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!("{name} ended before it was ready ({status})");
        }
        // The harness may have begun the line ("test name ... ") before the child printed.
        if let Some(at) = line.find("READY ") {
            let text = line[at + "READY ".len()..].trim_end().to_owned();
            // Keep reading so the child never blocks on a full pipe.
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return (child, text);
        }
    }
}

fn kill9(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

fn env_path(name: &str) -> PathBuf {
    PathBuf::from(std::env::var_os(name).unwrap())
}

fn wait_forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn a_stale_socket_after_kill_9_is_reused() {
    let home = home();
    let path = home.path().join("killed.sock");
    let (mut server, _) = spawn_ready("child_serve_at_path", &[("USOCK_TEST_PATH", &path)]);
    assert!(UnixStream::connect(&path).is_ok());
    let err = BoundPath::listener(&path, BindMode::Exclusive).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
    kill9(&mut server);
    assert!(path.exists(), "kill -9 leaves the socket file");
    let (bound, listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    let _c = UnixStream::connect(&path).unwrap();
    accept_one(&listener);
    bound.unbind().unwrap();
    common::figure(
        "fault",
        "a well-known path left by a server killed with SIGKILL: reused",
        1,
        1,
        "tests/lifecycle.rs::a_stale_socket_after_kill_9_is_reused",
    );
}

#[test]
#[ignore = "run by a_stale_socket_after_kill_9_is_reused"]
fn child_serve_at_path() {
    if !in_child() {
        return;
    }
    let (_bound, _listener) =
        BoundPath::listener(env_path("USOCK_TEST_PATH"), BindMode::Exclusive).unwrap();
    println!("READY bound");
    wait_forever();
}

// ---------------------------------------------------------------- sweep

fn swept(parent: &Path, grace: Duration) -> usock::SweepReport {
    usock::sweep(Some(parent), grace).unwrap()
}

fn kept_reason(report: &usock::SweepReport, dir: &Path) -> String {
    report
        .kept
        .iter()
        .find(|(p, _)| p == dir)
        .map(|(_, why)| why.clone())
        .unwrap_or_else(|| panic!("{} not kept: {report:?}", dir.display()))
}

#[test]
fn sweep_removes_the_directory_of_a_killed_creator_and_nothing_else() {
    let parent = Scratch::new("sweep-killed");
    let (mut creator, dir) = spawn_ready(
        "child_create_bind_and_wait",
        &[("USOCK_TEST_PARENT", parent.path())],
    );
    let dir = PathBuf::from(dir);
    assert!(dir.join("sock").exists());
    // Alive: kept, whatever the grace period.
    let report = swept(parent.path(), Duration::ZERO);
    assert!(
        kept_reason(&report, &dir).contains("holds its lock"),
        "{report:?}"
    );
    // Not usock's: never looked at.
    fs::create_dir(parent.path().join("usock-notarandomnam")).unwrap();
    fs::create_dir(parent.path().join("other")).unwrap();
    kill9(&mut creator);
    // Younger than the grace period: kept.
    let report = swept(parent.path(), Duration::from_secs(3600));
    assert!(
        kept_reason(&report, &dir).contains("grace period"),
        "{report:?}"
    );
    assert!(dir.exists());
    let report = swept(parent.path(), Duration::ZERO);
    assert_eq!(report.removed, vec![dir.clone()], "{report:?}");
    assert!(!dir.exists());
    assert_eq!(parent.entries(""), vec!["other", "usock-notarandomnam"]);
    common::figure(
        "fault",
        "sweep after the creator was killed with SIGKILL: removed; while alive or within the grace period: kept",
        3,
        3,
        "tests/lifecycle.rs::sweep_removes_the_directory_of_a_killed_creator_and_nothing_else",
    );
}

#[test]
#[ignore = "run by the sweep tests"]
fn child_create_bind_and_wait() {
    if !in_child() {
        return;
    }
    let dir = PrivateDir::in_parent(env_path("USOCK_TEST_PARENT")).unwrap();
    let _listener = dir.listener(None).unwrap();
    println!("READY {}", dir.path().display());
    wait_forever();
}

#[test]
fn sweep_keeps_a_directory_whose_forked_child_lives() {
    let parent = Scratch::new("sweep-fork");
    let (mut creator, text) = spawn_ready(
        "child_create_fork_and_die",
        &[("USOCK_TEST_PARENT", parent.path())],
    );
    let (dir, grandchild) = text.split_once(' ').unwrap();
    let (dir, grandchild): (PathBuf, i32) = (dir.into(), grandchild.parse().unwrap());
    creator.wait().unwrap(); // the creator is gone; its forked child holds the descriptor
    let report = swept(parent.path(), Duration::ZERO);
    assert!(
        kept_reason(&report, &dir).contains("holds its lock"),
        "{report:?}"
    );
    // SAFETY: plain kill of the grandchild this test made.
    unsafe { libc::kill(grandchild, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = swept(parent.path(), Duration::ZERO);
        if report.removed == vec![dir.clone()] {
            break;
        }
        assert!(Instant::now() < deadline, "{report:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "run by sweep_keeps_a_directory_whose_forked_child_lives"]
fn child_create_fork_and_die() {
    if !in_child() {
        return;
    }
    let dir = PrivateDir::in_parent(env_path("USOCK_TEST_PARENT")).unwrap();
    let _listener = dir.listener(None).unwrap();
    // SAFETY: the child only sleeps and is killed; it touches no lock.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        loop {
            // SAFETY: async-signal-safe.
            unsafe { libc::pause() };
        }
    }
    println!("READY {} {pid}", dir.path().display());
    std::io::stdout().flush().unwrap();
    // Die without cleaning up, as a crash would.
    // SAFETY: ends the process at once.
    unsafe { libc::_exit(0) };
}

#[test]
fn sweep_keeps_what_an_exec_successor_holds_and_a_live_datagram_socket() {
    let parent = Scratch::new("sweep-exec");
    // A successor started by exec holds the handed-off descriptor.
    let (mut successor, dir) = spawn_ready(
        "child_hand_off_and_exec_sleep",
        &[("USOCK_TEST_PARENT", parent.path())],
    );
    let dir = PathBuf::from(dir);
    let report = swept(parent.path(), Duration::ZERO);
    assert!(
        kept_reason(&report, &dir).contains("holds its lock"),
        "{report:?}"
    );
    kill9(&mut successor);
    let report = swept(parent.path(), Duration::ZERO);
    assert_eq!(report.removed, vec![dir.clone()], "{report:?}");

    // Nobody holds the lock, but a datagram socket in it is alive.
    let made = PrivateDir::in_parent(parent.path()).unwrap();
    let dgram = made.datagram(None).unwrap();
    let path = made.path().to_owned();
    drop(made.hand_off().unwrap()); // lock released, nothing removed
    let report = swept(parent.path(), Duration::ZERO);
    assert!(
        kept_reason(&report, &path).contains("answers (SOCK_DGRAM)"),
        "{report:?}"
    );
    drop(dgram);
    let report = swept(parent.path(), Duration::ZERO);
    assert_eq!(report.removed, vec![path.clone()], "{report:?}");
    assert_eq!(parent.entries(""), Vec::<String>::new());
}

#[test]
#[ignore = "run by sweep_keeps_what_an_exec_successor_holds_and_a_live_datagram_socket"]
fn child_hand_off_and_exec_sleep() {
    use std::os::unix::process::CommandExt;
    if !in_child() {
        return;
    }
    let dir = PrivateDir::in_parent(env_path("USOCK_TEST_PARENT")).unwrap();
    let path = dir.path().to_owned();
    let lock = dir.hand_off().unwrap();
    println!("READY {}", path.display());
    std::io::stdout().flush().unwrap();
    let err = Command::new("sleep")
        .arg("600")
        .env("USOCK_LOCK_FD", lock.as_raw_fd().to_string())
        .exec();
    panic!("exec: {err}");
}

#[test]
fn sweep_keeps_a_directory_with_something_else_in_it() {
    let parent = Scratch::new("sweep-file");
    let made = PrivateDir::in_parent(parent.path()).unwrap();
    let path = made.path().to_owned();
    fs::write(path.join("notes"), b"keep").unwrap();
    drop(made.hand_off().unwrap());
    let report = swept(parent.path(), Duration::ZERO);
    assert!(
        kept_reason(&report, &path).contains("a regular file"),
        "{report:?}"
    );
    assert_eq!(fs::read(path.join("notes")).unwrap(), b"keep");
    fs::remove_file(path.join("notes")).unwrap();
    fs::remove_dir(&path).unwrap();
}

// ---------------------------------------------------------------- kept directories (usock dir)

/// Sets the modification time of `path` itself to `ago` before now (`utimensat`, no symlink
/// followed).
fn set_mtime_ago(path: &Path, ago: Duration) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let then = libc::timespec {
        tv_sec: (now - ago).as_secs() as libc::time_t,
        tv_nsec: 0,
    };
    let times = [then, then];
    let c = common::cstring(path);
    // SAFETY: c is NUL-terminated and times holds the two timespecs utimensat reads.
    let ret = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(ret, 0, "utimensat {}", path.display());
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn sweep_keeps_a_kept_directory_for_a_day_then_removes_it_with_its_mark() {
    let parent = Scratch::new("sweep-keep");
    let path = PrivateDir::in_parent(parent.path())
        .unwrap()
        .keep()
        .unwrap();
    let mark = path.join(".usock-keep");
    assert_eq!(mode(&mark), 0o600);
    assert!(!is_locked(&path), "nothing holds a kept directory");
    // Any grace period, even 0: kept, and the report says why.
    let report = swept(parent.path(), Duration::ZERO);
    let why = kept_reason(&report, &path);
    assert!(
        why.contains("marked") && why.contains("usock clean"),
        "{why}"
    );
    set_mtime_ago(&mark, 23 * HOUR);
    let report = swept(parent.path(), Duration::ZERO);
    assert!(
        kept_reason(&report, &path).contains("marked 828"),
        "{report:?}"
    );
    assert!(path.is_dir());
    // Its mark older than a day: removed, mark and all.
    set_mtime_ago(&mark, 25 * HOUR);
    let report = swept(parent.path(), Duration::ZERO);
    assert_eq!(report.removed, vec![path.clone()], "{report:?}");
    assert!(!path.exists());
    assert!(parent.entries("").is_empty());
    common::figure(
        "attack",
        "a directory usock dir/usock path printed, nothing holding it, swept with grace 0 at once and 23 h later: kept; 25 h later: removed with its mark",
        3,
        3,
        "tests/lifecycle.rs::sweep_keeps_a_kept_directory_for_a_day_then_removes_it_with_its_mark",
    );
}

#[test]
fn a_kept_directory_with_a_stale_socket_is_kept_and_then_removed() {
    let parent = Scratch::new("sweep-keep-sock");
    let dir = PrivateDir::in_parent(parent.path()).unwrap();
    drop(UnixListener::bind(dir.socket_path(None).unwrap()).unwrap());
    let path = dir.keep().unwrap();
    let report = swept(parent.path(), Duration::ZERO);
    assert!(kept_reason(&report, &path).contains("marked"), "{report:?}");
    set_mtime_ago(&path.join(".usock-keep"), 25 * HOUR);
    let report = swept(parent.path(), Duration::ZERO);
    assert_eq!(report.removed, vec![path.clone()], "{report:?}");
    assert!(parent.entries("").is_empty());
}

#[test]
fn take_over_unheld_removes_a_kept_directory_and_refuses_a_held_one() {
    let parent = Scratch::new("unheld");
    let path = PrivateDir::in_parent(parent.path())
        .unwrap()
        .keep()
        .unwrap();
    PrivateDir::take_over_unheld(&path)
        .unwrap()
        .cleanup()
        .unwrap();
    assert!(!path.exists(), "the mark is removed with the directory");
    // Held by a live handle (of this process too), or by a hand-off descriptor: refused.
    let live = PrivateDir::in_parent(parent.path()).unwrap();
    let _listener = live.listener(None).unwrap();
    let err = PrivateDir::take_over_unheld(live.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
    assert!(live.path().join("sock").exists(), "left alone");
    let handed = PrivateDir::in_parent(parent.path()).unwrap();
    let handed_path = handed.path().to_owned();
    let lock = handed.hand_off().unwrap();
    let err = PrivateDir::take_over_unheld(&handed_path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
    drop(lock);
    PrivateDir::take_over_unheld(&handed_path)
        .unwrap()
        .cleanup()
        .unwrap();
    live.cleanup().unwrap();
    assert!(parent.entries("").is_empty());
}

#[test]
fn the_keep_marks_name_is_no_socket_name() {
    let _hooks = hooks_serial();
    let dir = PrivateDir::new().unwrap();
    let err = dir.socket_path(Some(".usock-keep".as_ref())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
}

// ---------------------------------------------------------------- sweep beside creation

/// Is the directory at `dir` locked by someone (a live handle's shared lock)? Tried from a new
/// open file, as a sweep does: `LOCK_EX | LOCK_NB` fails with `EWOULDBLOCK`.
fn is_locked(dir: &Path) -> bool {
    let file = fs::File::open(dir).unwrap();
    // SAFETY: plain system call on a descriptor we own.
    let ret = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    let err = std::io::Error::last_os_error();
    ret == -1 && err.raw_os_error() == Some(libc::EWOULDBLOCK)
}

/// Runs `create` with `at_dir_made` called once, in the creating thread, at the first new
/// directory in `parent` between its `mkdir` and its lock.
fn create_held<T>(
    parent: &Path,
    at_dir_made: impl Fn(&Path) + Send + Sync + 'static,
    create: impl FnOnce() -> T,
) -> T {
    let done = AtomicBool::new(false);
    let parent = parent.to_owned();
    testing::set_hook(Some(Arc::new(move |p, at: &Path| {
        if p == Point::DirMade && at.parent() == Some(&parent) && !done.swap(true, Ordering::SeqCst)
        {
            at_dir_made(at);
        }
    })));
    let result = create();
    testing::set_hook(None);
    result
}

#[test]
fn a_sweep_between_mkdir_and_lock_leaves_no_handle_on_a_removed_directory() {
    let _hooks = hooks_serial();
    let _turn = HOOKED.lock().unwrap_or_else(|e| e.into_inner());
    let parent = Scratch::new("sweep-mkdir");
    let removed = Arc::new(Mutex::new(Vec::new()));
    let dir = {
        let (path, removed) = (parent.path().to_owned(), removed.clone());
        create_held(
            parent.path(),
            move |_| {
                let report = usock::sweep(Some(&path), Duration::ZERO).unwrap();
                removed.lock().unwrap().extend(report.removed);
            },
            || PrivateDir::in_parent(parent.path()),
        )
    };
    let dir = dir.unwrap();
    let removed = removed.lock().unwrap().clone();
    assert_eq!(removed.len(), 1, "the held sweep removed the new directory");
    assert_ne!(dir.path(), removed[0], "a handle on the removed directory");
    assert!(dir.path().is_dir(), "{} is gone", dir.path().display());
    assert!(
        is_locked(dir.path()),
        "{} is not locked",
        dir.path().display()
    );
    // A later sweep keeps it.
    let report = swept(parent.path(), Duration::ZERO);
    assert!(kept_reason(&report, dir.path()).contains("holds its lock"));
    dir.cleanup().unwrap();
    assert!(parent.entries("").is_empty());
    common::figure(
        "attack",
        "a sweep with grace 0 held between creation's mkdir and its lock: the removed directory is never handed out, the handle's directory exists and is locked",
        1,
        1,
        "tests/lifecycle.rs::a_sweep_between_mkdir_and_lock_leaves_no_handle_on_a_removed_directory",
    );
}

#[test]
fn a_sweep_holding_the_lock_at_creation_leaves_no_unlocked_handle() {
    let _hooks = hooks_serial();
    let _turn = HOOKED.lock().unwrap_or_else(|e| e.into_inner());
    let parent = Scratch::new("sweep-held");
    let releaser = Arc::new(Mutex::new(None));
    let dir = {
        let releaser = releaser.clone();
        create_held(
            parent.path(),
            move |new_dir| {
                // What a sweep does: lock the directory exclusively, briefly.
                let file = fs::File::open(new_dir).unwrap();
                // SAFETY: plain system call on a descriptor we own.
                let ret = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                assert_eq!(ret, 0);
                *releaser.lock().unwrap() = Some(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(100));
                    drop(file);
                }));
            },
            || PrivateDir::in_parent(parent.path()),
        )
    };
    let released = releaser.lock().unwrap().take().expect("the hook ran");
    released.join().unwrap();
    let dir = dir.unwrap();
    assert!(dir.path().is_dir());
    assert!(
        is_locked(dir.path()),
        "{} is not locked once the sweep let go",
        dir.path().display()
    );
    dir.cleanup().unwrap();
    common::figure(
        "attack",
        "a sweep's exclusive lock held on a new directory when creation locks it: creation waits, its handle is locked",
        1,
        1,
        "tests/lifecycle.rs::a_sweep_holding_the_lock_at_creation_leaves_no_unlocked_handle",
    );
}

#[test]
fn a_new_directory_removed_before_it_is_opened_every_time_is_in_use_and_leaves_nothing() {
    let _hooks = hooks_serial();
    // A grace-0 sweep that removes each new directory between its mkdir and its open, as often
    // as creation tries: in use (as when it loses after the open), not a system error.
    let parent = Scratch::new("removed-before-open");
    let inside = parent.path().to_owned();
    testing::set_hook(Some(Arc::new(move |p, at: &Path| {
        if p == Point::DirNamed && at.parent() == Some(&inside) {
            fs::remove_dir(at).unwrap();
        }
    })));
    let made = PrivateDir::in_parent(parent.path());
    testing::set_hook(None);
    let err = made.expect_err("every new directory was removed");
    assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
    assert_eq!(fs::read_dir(parent.path()).unwrap().count(), 0);
}

#[test]
fn a_sweep_loop_beside_a_create_loop_leaves_every_handle_locked() {
    const ROUNDS: usize = 400;
    let parent = Scratch::new("sweep-loop");
    let stop = Arc::new(AtomicBool::new(false));
    let sweeper = {
        let (parent, stop) = (parent.path().to_owned(), stop.clone());
        std::thread::spawn(move || {
            let mut sweeps = 0usize;
            while !stop.load(Ordering::SeqCst) {
                usock::sweep(Some(&parent), Duration::ZERO).unwrap();
                sweeps += 1;
            }
            sweeps
        })
    };
    let mut unlocked = Vec::new();
    for _ in 0..ROUNDS {
        // Creation holds its lock or fails cleanly: a grace-0 sweep loop may remove the new
        // directory before it is locked every time creation tries (then InUse, nothing left).
        let dir = match PrivateDir::in_parent(parent.path()) {
            Ok(dir) => dir,
            Err(e) if e.kind() == ErrorKind::InUse => continue,
            Err(e) => panic!("{e}"),
        };
        if !dir.path().is_dir() || !is_locked(dir.path()) {
            unlocked.push(dir.path().to_owned());
        }
    }
    stop.store(true, Ordering::SeqCst);
    let sweeps = sweeper.join().unwrap();
    assert!(unlocked.is_empty(), "unlocked or removed: {unlocked:?}");
    assert!(sweeps > 0);
    common::figure(
        "attack",
        "sweep loop (grace 0) beside a create loop: every handle's directory exists and is locked",
        ROUNDS,
        ROUNDS - unlocked.len(),
        "tests/lifecycle.rs::a_sweep_loop_beside_a_create_loop_leaves_every_handle_locked",
    );
}

// ---------------------------------------------------------------- hand-off

#[test]
fn a_directory_handed_across_exec_is_taken_over_and_cleaned_up() {
    let parent = Scratch::new("handoff");
    let out = common::run_child("child_hand_off_then_exec_successor", |cmd| {
        cmd.env("USOCK_TEST_PARENT", parent.path());
    });
    assert!(out.contains("successor cleaned up"), "{out}");
    assert_eq!(parent.entries(""), Vec::<String>::new(), "nothing is left");
}

#[test]
#[ignore = "run by a_directory_handed_across_exec_is_taken_over_and_cleaned_up"]
fn child_hand_off_then_exec_successor() {
    use std::os::unix::process::CommandExt;
    if !in_child() {
        return;
    }
    let dir = PrivateDir::in_parent(env_path("USOCK_TEST_PARENT")).unwrap();
    let listener = dir.listener(None).unwrap();
    let path = dir.path().to_owned();
    let lock = dir.hand_off().unwrap();
    // The successor inherits the lock descriptor and the listening socket.
    // SAFETY: clearing close-on-exec on a descriptor we own.
    unsafe { libc::fcntl(listener.as_raw_fd(), libc::F_SETFD, 0) };
    let err = common::child_command(&std::env::current_exe().unwrap(), "child_successor")
        .env("USOCK_DIR", &path)
        .env("USOCK_LOCK_FD", lock.into_raw_fd().to_string())
        .env("USOCK_LISTEN_FD", listener.into_raw_fd().to_string())
        .exec();
    panic!("exec: {err}");
}

#[test]
#[ignore = "run by child_hand_off_then_exec_successor"]
fn child_successor() {
    if !in_child() {
        return;
    }
    let path = env_path("USOCK_DIR");
    let fd_of = |name: &str| -> OwnedFd {
        let n: i32 = std::env::var(name).unwrap().parse().unwrap();
        // SAFETY: the predecessor handed this descriptor over for us to own.
        unsafe { OwnedFd::from_raw_fd(n) }
    };
    let lock = fd_of("USOCK_LOCK_FD");
    let listener = UnixListener::from(fd_of("USOCK_LISTEN_FD"));
    // The directory is still locked while we hold it: a sweep keeps it.
    let report = usock::sweep(path.parent(), Duration::ZERO).unwrap();
    assert!(kept_reason(&report, &path).contains("holds its lock"));
    // A lock descriptor of another directory is refused.
    let other = PrivateDir::in_parent(path.parent().unwrap()).unwrap();
    let wrong = other.hand_off().unwrap();
    let err = PrivateDir::take_over(&path, Some(wrong.try_clone().unwrap())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    let dir = PrivateDir::take_over(&path, Some(lock)).unwrap();
    assert_eq!(dir.path(), path);
    let _c = UnixStream::connect(path.join("sock")).unwrap();
    let _s = listener.accept().unwrap();
    drop(listener);
    dir.cleanup().unwrap();
    assert!(!path.exists());
    // The other directory, handed off to nobody: taken over without its lock descriptor.
    let other_path = other_path_of(&wrong);
    drop(wrong);
    PrivateDir::take_over(&other_path, None)
        .unwrap()
        .cleanup()
        .unwrap();
    println!("successor cleaned up");
}

#[test]
fn take_over_checks_as_creation_does() {
    let parent = Scratch::new("takeover");
    // Not a usock name, wrong mode, a symlink: all refused.
    let plain = parent.path().join("plain");
    fs::create_dir(&plain).unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o700)).unwrap();
    let err = PrivateDir::take_over(&plain, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsafe);
    assert!(err.message().contains("not a name usock makes"), "{err}");

    let made = PrivateDir::in_parent(parent.path()).unwrap();
    let path = made.path().to_owned();
    drop(made.hand_off().unwrap());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    let err = PrivateDir::take_over(&path, None).unwrap_err();
    assert!(err.message().contains("mode 0755"), "{err}");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
    let link = parent.path().join("usock-abcdefghijkmn");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let err = PrivateDir::take_over(&link, None).unwrap_err();
    assert!(err.message().contains("symbolic link"), "{err}");
    assert_eq!(err.kind(), ErrorKind::Unsafe);
    fs::remove_file(&link).unwrap();
    let err = PrivateDir::take_over("relative/usock-abcdefghijkmn", None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);

    // Taken over without a lock descriptor: it cleans up as its own, sockets included.
    let dir = PrivateDir::take_over(&path, None).unwrap();
    let _l = UnixListener::bind(path.join("by-hand")).unwrap();
    let report = swept(parent.path(), Duration::ZERO);
    assert!(kept_reason(&report, &path).contains("holds its lock"));
    dir.cleanup().unwrap();
    assert_eq!(parent.entries(""), vec!["plain"]);
}

/// The path of the directory a hand-off descriptor refers to (through /proc, Linux only; the
/// portable build runs on Linux too).
fn other_path_of(fd: &OwnedFd) -> PathBuf {
    fs::read_link(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd())).unwrap()
}

#[test]
fn hand_off_keeps_one_descriptor_and_removes_nothing() {
    let parent = Scratch::new("handoff-fds");
    let dir = PrivateDir::in_parent(parent.path()).unwrap();
    let path = dir.path().to_owned();
    let fd = dir.hand_off().unwrap();
    // SAFETY: plain fcntl on a descriptor we own.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert_eq!(flags & libc::FD_CLOEXEC, 0, "the descriptor survives exec");
    assert!(fd.as_raw_fd() >= 3);
    assert!(path.is_dir(), "hand-off removes nothing");
    assert_eq!(other_path_of(&fd), path);
    drop(fd);
    PrivateDir::take_over(&path, None)
        .unwrap()
        .cleanup()
        .unwrap();
    assert_eq!(parent.entries(""), Vec::<String>::new());
}

// ---------------------------------------------------------------- attacks on well-known paths

#[test]
fn another_users_socket_or_lock_file_at_the_path_is_left_alone() {
    if !is_root() {
        return; // making files of another user needs root; `make test` runs it as root
    }
    let home = home();
    let path = home.path().join("theirs.sock");
    let theirs = UnixListener::bind(&path).unwrap();
    common::chown(&path, common::OTHER_UID);
    drop(theirs); // stale, but not ours to remove
    for mode in [BindMode::Exclusive, BindMode::Replace] {
        let err = BoundPath::listener(&path, mode).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InUse, "{err}");
        assert!(err.message().contains("owned by uid 54321"), "{err}");
    }
    assert_eq!(common::owner(&path), common::OTHER_UID);

    let mine = home.path().join("mine.sock");
    let lock = home.path().join("mine.sock.lock");
    fs::write(&lock, b"").unwrap();
    common::chown(&lock, common::OTHER_UID);
    let err = BoundPath::listener(&mine, BindMode::Exclusive).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
    assert!(err.message().contains("owned by uid 54321"), "{err}");
    assert!(!mine.exists());
    common::figure(
        "fault",
        "another user's stale socket at a well-known path, or their lock file beside it: refused, left alone",
        3,
        3,
        "tests/lifecycle.rs::another_users_socket_or_lock_file_at_the_path_is_left_alone",
    );
}

#[test]
fn unbind_after_the_directory_was_replaced_touches_only_its_own_socket() {
    let home = home();
    let sub = home.path().join("sub");
    fs::create_dir(&sub).unwrap();
    let path = sub.join("app.sock");
    let (bound, listener) = BoundPath::listener(&path, BindMode::Exclusive).unwrap();
    // The directory is moved away and another takes its name, with a socket of its own.
    let moved = home.path().join("moved");
    fs::rename(&sub, &moved).unwrap();
    fs::create_dir(&sub).unwrap();
    let _other = UnixListener::bind(&path).unwrap();
    bound.unbind().unwrap();
    assert!(
        path.exists(),
        "the socket in the new directory was left alone"
    );
    assert!(
        !moved.join("app.sock").exists(),
        "its own socket, followed through the directory it bound in, was removed"
    );
    drop(listener);
    common::figure(
        "attack",
        "the directory of a well-known path renamed away and replaced, with another socket at the name: unbind leaves it",
        1,
        1,
        "tests/lifecycle.rs::unbind_after_the_directory_was_replaced_touches_only_its_own_socket",
    );
}

#[test]
fn cleanup_removes_the_directory_when_its_socket_went_at_the_same_time() {
    let _hooks = hooks_serial();
    // Another remover (MQI's server thread deleting its socket as it ends, while a halt hook
    // cleans up) unlinks the socket between cleanup's look and its unlink: the directory must
    // still go, and the cleanup succeed.
    let parent = Scratch::new("socket-gone-at-cleanup");
    let dir = PrivateDir::in_parent(parent.path()).unwrap();
    let listener = dir
        .bind(Some("s".as_ref()), SocketType::Stream, None)
        .unwrap();
    let sock = dir.socket_path(Some("s".as_ref())).unwrap();
    let watched = sock.clone();
    testing::set_hook(Some(Arc::new(move |p, at: &Path| {
        if p == Point::BeforeSocketRemoved && at == watched {
            fs::remove_file(at).unwrap();
        }
    })));
    let result = dir.cleanup();
    testing::set_hook(None);
    result.expect("a socket removed by someone else at the same time is no failure");
    assert_eq!(
        fs::read_dir(parent.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
    drop(listener);
}

/// A child made by `clone(CLONE_VM)` shares its creator's memory, so the kernel does not wipe
/// the wipe-on-fork page in it and it carries the creator's token; its pid differs. Such a
/// child (here with `CLONE_VFORK`, so the creator waits) that ends a private directory's or a
/// bound path's handle removes nothing: the pid is checked beside the token.
#[cfg(target_os = "linux")]
#[test]
fn a_child_sharing_the_creators_memory_removes_nothing() {
    common::run_child("child_clone_vm", |_| {});
}

/// What the `CLONE_VM` child is given: the handles to end (read out of the creator's memory,
/// which the creator then forgets) and whether that went without a panic.
#[cfg(target_os = "linux")]
struct Handles {
    dir: std::mem::ManuallyDrop<PrivateDir>,
    bound: std::mem::ManuallyDrop<BoundPath>,
}

#[cfg(target_os = "linux")]
extern "C" fn end_handles(arg: *mut libc::c_void) -> libc::c_int {
    let ended = std::panic::catch_unwind(|| {
        // SAFETY: arg is the creator's Handles, which it forgets after this child is done.
        let handles = unsafe { &mut *(arg as *mut Handles) };
        // SAFETY: taken once, here; the creator never uses or drops them again.
        let dir = unsafe { std::mem::ManuallyDrop::take(&mut handles.dir) };
        let bound = unsafe { std::mem::ManuallyDrop::take(&mut handles.bound) };
        let _ = dir.cleanup();
        let _ = bound.unbind();
    });
    if ended.is_ok() { 0 } else { 1 }
}

#[cfg(target_os = "linux")]
#[test]
#[ignore = "run in a child process by a_child_sharing_the_creators_memory_removes_nothing"]
fn child_clone_vm() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("clonevm");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let dir_path = dir.path().to_path_buf();
    let _listener = dir.listener(None).unwrap();
    let well_known = scratch.path().join("wk.sock");
    let (bound, _bound_listener) = BoundPath::listener(&well_known, BindMode::Exclusive).unwrap();
    let mut handles = Handles {
        dir: std::mem::ManuallyDrop::new(dir),
        bound: std::mem::ManuallyDrop::new(bound),
    };
    let mut stack = vec![0u8; 4 << 20];
    // SAFETY: the stack is 4 MiB and outlives the child (CLONE_VFORK: this thread waits until
    // the child has exited); the child only runs end_handles on the handles given.
    let pid = unsafe {
        libc::clone(
            end_handles,
            stack.as_mut_ptr().add(stack.len()).cast(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut handles as *mut Handles).cast(),
        )
    };
    assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
    assert!(common::wait_ok(pid), "the child failed");
    // The child ended the handles (their memory is shared); `handles` holds them as
    // ManuallyDrop, so nothing of them is dropped or used again here.
    assert!(
        dir_path.exists(),
        "a CLONE_VM child's cleanup removed the creator's directory"
    );
    assert!(
        well_known.exists(),
        "a CLONE_VM child's unbind removed the creator's socket"
    );
    fs::remove_file(dir_path.join("sock")).unwrap();
    fs::remove_dir(&dir_path).unwrap();
    fs::remove_file(&well_known).unwrap();
}
