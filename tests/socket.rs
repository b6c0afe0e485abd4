//! Binding sockets: who can connect, modes, names, types, names already taken.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixDatagram, UnixListener, UnixStream};

use common::*;
use usock::{ErrorKind, PrivateDir, SocketType};

#[test]
fn a_client_connects_and_exchanges_bytes() {
    let scratch = Scratch::new("echo");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let listener = dir.listener(Some(OsStr::new("api.sock"))).unwrap();
    let path = dir.socket_path(Some(OsStr::new("api.sock"))).unwrap();
    assert_eq!(path, dir.path().join("api.sock"));
    let client = std::thread::spawn(move || {
        let mut stream = UnixStream::connect(&path).unwrap();
        stream.write_all(b"hello").unwrap();
        let mut reply = [0; 5];
        stream.read_exact(&mut reply).unwrap();
        reply
    });
    let (mut conn, _) = listener.accept().unwrap();
    let mut got = [0; 5];
    conn.read_exact(&mut got).unwrap();
    conn.write_all(b"world").unwrap();
    assert_eq!(&got, b"hello");
    assert_eq!(&client.join().unwrap(), b"world");
    drop((conn, listener));
    dir.cleanup().unwrap();
    assert!(scratch.entries("").is_empty());
}

#[test]
fn socket_file_is_0600_and_descriptor_is_cloexec_and_listening() {
    let scratch = Scratch::new("mode");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let fd = dir.bind(None, SocketType::Stream, Some(7)).unwrap();
    let path = dir.socket_path(None).unwrap();
    assert_eq!(mode(&path), 0o600);
    use std::os::unix::fs::FileTypeExt;
    assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFD) };
    assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    let mut listening: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut listening as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(listening, 1);
    drop(fd);
    dir.cleanup().unwrap();
}

/// Root bypasses permissions, so the other side drops privileges for real.
#[test]
fn other_users_cannot_connect_list_or_create_but_the_owner_can() {
    let scratch = Scratch::new("users");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let listener = dir.listener(None).unwrap();
    let path = dir.socket_path(None).unwrap();
    for uid in [NOBODY, OTHER_UID] {
        let seen = access_as(uid, dir.path(), &path);
        assert_eq!(
            seen,
            Access {
                connect: libc::EACCES,
                list_dir: libc::EACCES,
                create_file: libc::EACCES,
                enter_dir: libc::EACCES,
            },
            "uid {uid}"
        );
    }
    // The owner connects.
    UnixStream::connect(&path).unwrap();
    listener.accept().unwrap();
    figure(
        "attack",
        "another user (uid 65534, uid 54321) connects to the socket, lists, enters or creates a file in the directory",
        8,
        8,
        "tests/socket.rs::other_users_cannot_connect_list_or_create_but_the_owner_can",
    );
    drop(listener);
    dir.cleanup().unwrap();
    assert!(scratch.entries("").is_empty());
}

/// The same check against a directory owned by the unprivileged user itself shows the probe
/// can succeed: the EACCES above comes from the modes, not from a broken probe.
#[test]
fn the_access_probe_can_succeed() {
    let scratch = Scratch::new("probe");
    let open = scratch.subdir("open", 0o777, 0);
    let listener = UnixListener::bind(open.join("s")).unwrap();
    fs::set_permissions(
        open.join("s"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let seen = access_as(NOBODY, &open, &open.join("s"));
    assert_eq!(
        seen,
        Access {
            connect: 0,
            list_dir: 0,
            create_file: 0,
            enter_dir: 0,
        }
    );
    drop(listener);
}

#[test]
fn seqpacket_and_datagram_sockets() {
    let scratch = Scratch::new("types");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let seq = dir
        .bind(Some(OsStr::new("seq")), SocketType::SeqPacket, None)
        .unwrap();
    let mut ty: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    unsafe {
        libc::getsockopt(
            seq.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut ty as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(ty, libc::SOCK_SEQPACKET);

    let server = dir.datagram(Some(OsStr::new("dgram"))).unwrap();
    let client = UnixDatagram::unbound().unwrap();
    client
        .send_to(b"ping", dir.socket_path(Some(OsStr::new("dgram"))).unwrap())
        .unwrap();
    let mut buf = [0; 4];
    assert_eq!(server.recv(&mut buf).unwrap(), 4);
    assert_eq!(&buf, b"ping");
    assert_eq!(mode(&dir.path().join("dgram")), 0o600);
    drop((seq, server));
    dir.cleanup().unwrap();
    assert!(scratch.entries("").is_empty());
}

#[test]
fn a_taken_name_is_in_use_and_left_alone() {
    let scratch = Scratch::new("inuse");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let first = dir.listener(None).unwrap();
    let err = dir.listener(None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse);
    assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE));
    assert!(err.message().contains("taken by a socket"), "{err}");
    // The first server still answers.
    UnixStream::connect(dir.socket_path(None).unwrap()).unwrap();
    first.accept().unwrap();

    // A regular file dropped at a name is never replaced.
    fs::write(dir.path().join("notes"), b"keep me").unwrap();
    let err = dir.listener(Some(OsStr::new("notes"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InUse);
    assert!(err.message().contains("a regular file"), "{err}");
    assert_eq!(fs::read(dir.path().join("notes")).unwrap(), b"keep me");
    fs::remove_file(dir.path().join("notes")).unwrap();
    drop(first);
    dir.cleanup().unwrap();
}

#[test]
fn bad_names_and_long_names() {
    let scratch = Scratch::new("names");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    for bad in ["", "a/b", ".", ".."] {
        let err = dir.listener(Some(OsStr::new(bad))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid, "{bad:?}");
        assert_eq!(
            dir.socket_path(Some(OsStr::new(bad))).unwrap_err().kind(),
            ErrorKind::Invalid
        );
    }
    let room = usock::MAX_SOCKET_PATH - dir.path().as_os_str().len() - 1;
    let fits = "n".repeat(room);
    let listener = dir.listener(Some(OsStr::new(&fits))).unwrap();
    let too_long = "n".repeat(room + 1);
    let err = dir.listener(Some(OsStr::new(&too_long))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLong);
    assert!(
        err.message()
            .contains("is 108 bytes; the limit here is 107"),
        "{err}"
    );
    assert_eq!(
        dir.socket_path(Some(OsStr::new(&too_long)))
            .unwrap_err()
            .kind(),
        ErrorKind::TooLong
    );
    drop(listener);
    dir.cleanup().unwrap();
    assert!(scratch.entries("").is_empty());
}

#[test]
fn socket_type_from_c_values() {
    assert_eq!(SocketType::try_from(0).unwrap(), SocketType::Stream);
    assert_eq!(
        SocketType::try_from(libc::SOCK_STREAM).unwrap(),
        SocketType::Stream
    );
    assert_eq!(
        SocketType::try_from(libc::SOCK_SEQPACKET).unwrap(),
        SocketType::SeqPacket
    );
    assert_eq!(
        SocketType::try_from(libc::SOCK_DGRAM).unwrap(),
        SocketType::Datagram
    );
    for bad in [
        libc::SOCK_RAW,
        #[cfg(not(target_vendor = "apple"))]
        (libc::SOCK_STREAM | libc::SOCK_NONBLOCK),
        -1,
        99,
    ] {
        assert_eq!(
            SocketType::try_from(bad).unwrap_err().kind(),
            ErrorKind::Invalid
        );
    }
}

/// A socket bound by the caller's own library and adopted: mode 0600 whatever the umask (here
/// the file starts 0777), removed at cleanup through the fast path; bad cases refused.
#[test]
fn adopting_a_socket_the_caller_bound() {
    let scratch = Scratch::new("adopt");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let path = dir.socket_path(Some(OsStr::new("own"))).unwrap();
    let own = UnixListener::bind(&path).unwrap();
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    dir.adopt(Some(OsStr::new("own"))).unwrap();
    assert_eq!(mode(&path), 0o600);
    dir.adopt(Some(OsStr::new("own"))).unwrap(); // twice is harmless
    UnixStream::connect(&path).unwrap();

    fs::write(dir.path().join("file"), b"x").unwrap();
    let err = dir.adopt(Some(OsStr::new("file"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    assert!(
        err.message().contains("a regular file, not a socket"),
        "{err}"
    );
    fs::remove_file(dir.path().join("file")).unwrap();

    let theirs = UnixListener::bind(dir.path().join("theirs")).unwrap();
    chown(&dir.path().join("theirs"), NOBODY);
    assert_eq!(
        dir.adopt(Some(OsStr::new("theirs"))).unwrap_err().kind(),
        ErrorKind::Unsafe
    );
    fs::remove_file(dir.path().join("theirs")).unwrap();
    drop(theirs);

    let err = dir.adopt(Some(OsStr::new("missing"))).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert_eq!(
        dir.adopt(Some(OsStr::new("a/b"))).unwrap_err().kind(),
        ErrorKind::Invalid
    );

    drop(own);
    dir.cleanup().unwrap();
    assert!(scratch.entries("").is_empty());
}

/// A socket the caller made (as a language runtime's socket object is): bound, 0600, listening,
/// still the caller's descriptor, removed by cleanup. Anything but an unbound Unix domain
/// socket is refused and nothing is made.
#[test]
fn binding_a_socket_the_caller_made() {
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    let scratch = Scratch::new("bindfd");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    // SAFETY: plain system call; the descriptor is owned right away.
    let stream = unsafe { OwnedFd::from_raw_fd(libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0)) };
    dir.bind_socket(Some(OsStr::new("s")), stream.as_fd(), Some(4))
        .unwrap();
    let path = dir.path().join("s");
    assert_eq!(mode(&path), 0o600);
    let listener = UnixListener::from(stream);
    let _client = UnixStream::connect(&path).unwrap();
    listener.accept().unwrap();

    let datagram = UnixDatagram::unbound().unwrap();
    dir.bind_socket(Some(OsStr::new("d")), datagram.as_fd(), None)
        .unwrap();
    assert_eq!(mode(&dir.path().join("d")), 0o600);
    UnixDatagram::unbound()
        .unwrap()
        .send_to(b"x", dir.path().join("d"))
        .unwrap();

    // Already bound, another family, not a socket: refused, nothing made.
    let err = dir
        .bind_socket(Some(OsStr::new("again")), listener.as_fd(), None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = dir
        .bind_socket(Some(OsStr::new("tcp")), tcp.as_fd(), None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.message().contains("not a Unix domain socket"), "{err}");
    let file = fs::File::open("/dev/null").unwrap();
    let err = dir
        .bind_socket(Some(OsStr::new("file")), file.as_fd(), None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert_eq!(
        scratch.entries(dir.path().file_name().unwrap().to_str().unwrap()),
        ["d", "s"]
    );
    drop(listener);
    dir.cleanup().unwrap();
    assert!(scratch.entries("").is_empty());
}
