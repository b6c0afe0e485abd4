//! The C ABI, called as C would: NULL and bad arguments to every function, out-parameters left
//! alone on failure, messages and errnos, many threads at once.

mod common;

use std::ffi::{CStr, CString, c_char, c_int};
use std::os::fd::{FromRawFd, OwnedFd};
use std::ptr;

use common::*;
use usock::testing::ffi::*;

fn last_error() -> String {
    unsafe { CStr::from_ptr(usock_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn create(parent: &CStr) -> *mut UsockDir {
    let mut dir = ptr::null_mut();
    let rc = unsafe { usock_create_dir(parent.as_ptr(), 0, &mut dir) };
    assert_eq!(rc, USOCK_OK, "{}", last_error());
    assert!(!dir.is_null());
    dir
}

fn dir_path(dir: *const UsockDir) -> String {
    unsafe { CStr::from_ptr(usock_dir_path(dir)) }
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn full_cycle_through_the_c_abi() {
    let scratch = Scratch::new("ffi");
    let parent = cstring(scratch.path());
    let dir = create(&parent);
    let path = dir_path(dir);
    assert!(path.starts_with(&format!("{}/usock-", scratch.path().display())));
    assert_eq!(mode(std::path::Path::new(&path)), 0o700);

    let mut buf = [0 as c_char; USOCK_PATH_MAX];
    assert_eq!(
        unsafe { usock_socket_path(dir, ptr::null(), buf.as_mut_ptr(), buf.len()) },
        USOCK_OK
    );
    let sock = unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(sock, format!("{path}/sock"));

    let mut fd = -1;
    assert_eq!(
        unsafe { usock_bind(dir, ptr::null(), 0, 0, &mut fd) },
        USOCK_OK
    );
    assert!(fd >= 0);
    let listener = std::os::unix::net::UnixListener::from(unsafe { OwnedFd::from_raw_fd(fd) });
    std::os::unix::net::UnixStream::connect(&sock).unwrap();
    listener.accept().unwrap();
    assert_eq!(mode(std::path::Path::new(&sock)), 0o600);

    assert_eq!(unsafe { usock_cleanup(dir) }, USOCK_OK);
    assert!(scratch.entries("").is_empty());
    // cleanup closes no descriptor the caller owns
    assert!(unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0);
    drop(listener);
}

#[test]
fn null_and_bad_arguments_to_every_function() {
    let scratch = Scratch::new("null");
    let parent = cstring(scratch.path());
    let sentinel: *mut UsockDir = ptr::dangling_mut();
    unsafe {
        // usock_create_dir
        assert_eq!(
            usock_create_dir(parent.as_ptr(), 0, ptr::null_mut()),
            USOCK_ERR_INVALID
        );
        assert!(last_error().contains("out_dir is NULL"), "{}", last_error());
        let mut out = sentinel;
        assert_eq!(
            usock_create_dir(parent.as_ptr(), 2, &mut out),
            USOCK_ERR_INVALID
        );
        assert!(last_error().contains("unknown flags 0x2"));
        assert_eq!(
            usock_create_dir(parent.as_ptr(), 0x8000_0000, &mut out),
            USOCK_ERR_INVALID
        );
        assert_eq!(
            usock_create_dir(c"".as_ptr(), 0, &mut out),
            USOCK_ERR_INVALID
        );
        assert_eq!(out, sentinel, "out_dir written on failure");
        assert!(scratch.entries("").is_empty());

        // usock_dir_path
        assert!(usock_dir_path(ptr::null()).is_null());

        let dir = create(&parent);
        // usock_socket_path
        let mut buf = [b'#' as c_char; USOCK_PATH_MAX];
        assert_eq!(
            usock_socket_path(ptr::null(), ptr::null(), buf.as_mut_ptr(), buf.len()),
            USOCK_ERR_INVALID
        );
        assert!(last_error().contains("dir is NULL"));
        assert_eq!(
            usock_socket_path(dir, ptr::null(), ptr::null_mut(), 100),
            USOCK_ERR_INVALID
        );
        for bad in [c"", c"a/b", c".", c".."] {
            assert_eq!(
                usock_socket_path(dir, bad.as_ptr(), buf.as_mut_ptr(), buf.len()),
                USOCK_ERR_INVALID
            );
        }
        let needed = dir_path(dir).len() + "/sock".len() + 1;
        assert_eq!(
            usock_socket_path(dir, ptr::null(), buf.as_mut_ptr(), needed - 1),
            USOCK_ERR_BUFFER
        );
        assert!(
            last_error().contains(&format!("buffer of {} bytes is too small", needed - 1)),
            "{}",
            last_error()
        );
        assert_eq!(
            usock_socket_path(dir, ptr::null(), buf.as_mut_ptr(), 0),
            USOCK_ERR_BUFFER
        );
        let long = CString::new("x".repeat(200)).unwrap();
        assert_eq!(
            usock_socket_path(dir, long.as_ptr(), buf.as_mut_ptr(), buf.len()),
            USOCK_ERR_TOO_LONG
        );
        assert!(
            buf.iter().all(|&b| b == b'#' as c_char),
            "buf written on failure"
        );
        assert_eq!(
            usock_socket_path(dir, ptr::null(), buf.as_mut_ptr(), needed),
            USOCK_OK
        );

        // usock_bind
        let mut fd: c_int = -7;
        assert_eq!(
            usock_bind(ptr::null_mut(), ptr::null(), 0, 0, &mut fd),
            USOCK_ERR_INVALID
        );
        assert_eq!(
            usock_bind(dir, ptr::null(), 0, 0, ptr::null_mut()),
            USOCK_ERR_INVALID
        );
        for ty in [
            -1,
            3,
            99,
            libc::SOCK_RAW,
            #[cfg(not(target_vendor = "apple"))]
            (libc::SOCK_STREAM | libc::SOCK_NONBLOCK),
            #[cfg(not(target_vendor = "apple"))]
            (libc::SOCK_STREAM | libc::SOCK_CLOEXEC),
        ] {
            assert_eq!(
                usock_bind(dir, ptr::null(), ty, 0, &mut fd),
                USOCK_ERR_INVALID,
                "type {ty}"
            );
        }
        assert!(last_error().contains("unknown socket type"));
        for bad in [c"", c"a/b", c".", c".."] {
            assert_eq!(
                usock_bind(dir, bad.as_ptr(), 0, 0, &mut fd),
                USOCK_ERR_INVALID
            );
        }
        assert_eq!(
            usock_bind(dir, long.as_ptr(), 0, 0, &mut fd),
            USOCK_ERR_TOO_LONG
        );
        assert_eq!(fd, -7, "out_fd written on failure");
        assert_eq!(
            usock_bind(dir, ptr::null(), libc::SOCK_STREAM, -5, &mut fd),
            USOCK_OK
        );
        let first = OwnedFd::from_raw_fd(fd);
        let mut again: c_int = -7;
        assert_eq!(
            usock_bind(dir, ptr::null(), libc::SOCK_STREAM, 1, &mut again),
            USOCK_ERR_IN_USE
        );
        assert_eq!(usock_last_errno(), libc::EADDRINUSE);
        assert_eq!(again, -7);
        drop(first);

        // usock_adopt
        assert_eq!(usock_adopt(ptr::null_mut(), ptr::null()), USOCK_ERR_INVALID);
        assert_eq!(usock_adopt(dir, c"a/b".as_ptr()), USOCK_ERR_INVALID);
        assert_eq!(usock_adopt(dir, c"nothing-here".as_ptr()), USOCK_ERR_SYSTEM);
        assert_eq!(usock_last_errno(), libc::ENOENT);
        assert_eq!(usock_adopt(dir, ptr::null()), USOCK_OK); // the socket bound above

        // usock_cleanup
        assert_eq!(usock_cleanup(ptr::null_mut()), USOCK_OK);
        assert_eq!(usock_cleanup(dir), USOCK_OK);
        assert!(scratch.entries("").is_empty());
    }
}

#[test]
fn explicit_parent_failures_report_path_reason_and_errno() {
    let scratch = Scratch::new("errs");
    let world = scratch.subdir("world", 0o777, 0);
    let mut out = ptr::null_mut();
    unsafe {
        assert_eq!(
            usock_create_dir(cstring(&world).as_ptr(), 0, &mut out),
            USOCK_ERR_UNSAFE
        );
        assert!(last_error().contains(&format!("directory {} has mode 0777", world.display())));
        assert_eq!(usock_last_errno(), 0);
        let missing = scratch.path().join("missing");
        assert_eq!(
            usock_create_dir(cstring(&missing).as_ptr(), 0, &mut out),
            USOCK_ERR_SYSTEM
        );
        assert_eq!(usock_last_errno(), libc::ENOENT);
        assert!(last_error().contains(missing.to_str().unwrap()));
        let long = scratch.path().join("l".repeat(80));
        std::fs::create_dir(&long).unwrap();
        assert_eq!(
            usock_create_dir(cstring(&long).as_ptr(), 0, &mut out),
            USOCK_ERR_TOO_LONG
        );
        assert!(
            last_error().contains("the limit here is 107"),
            "{}",
            last_error()
        );
    }
    assert!(out.is_null());
    assert!(scratch.entries("world").is_empty());
    assert!(scratch.entries(&"l".repeat(80)).is_empty());
}

#[test]
fn strerror_version_and_last_error_per_thread() {
    let codes = [
        (USOCK_OK, "success"),
        (USOCK_ERR_INVALID, "invalid argument"),
        (USOCK_ERR_TOO_LONG, "socket path too long for sun_path"),
        (USOCK_ERR_UNSAFE, "directory failed a safety check"),
        (USOCK_ERR_NO_DIR, "no usable parent directory found"),
        (USOCK_ERR_IN_USE, "socket name already in use"),
        (USOCK_ERR_EXHAUSTED, "random directory names kept colliding"),
        (
            USOCK_ERR_CHANGED,
            "cleanup found files usock did not make and left them",
        ),
        (USOCK_ERR_SYSTEM, "system call failed"),
        (USOCK_ERR_BUFFER, "buffer too small"),
        (
            USOCK_ERR_PANIC,
            "internal error caught at the usock boundary",
        ),
        (1, "unknown usock status code"),
        (-11, "unknown usock status code"),
        (c_int::MIN, "unknown usock status code"),
    ];
    for (code, text) in codes {
        assert_eq!(
            unsafe { CStr::from_ptr(usock_strerror(code)) }
                .to_str()
                .unwrap(),
            text
        );
    }
    let version = unsafe { CStr::from_ptr(usock_version()) }.to_str().unwrap();
    assert_eq!(
        version,
        format!("{USOCK_VERSION_MAJOR}.{USOCK_VERSION_MINOR}.{USOCK_VERSION_PATCH}")
    );
    assert_eq!(version, env!("CARGO_PKG_VERSION"));

    // A fresh thread has no last error; a failure in one thread is not seen by another.
    std::thread::spawn(|| {
        assert_eq!(last_error(), "");
        assert_eq!(usock_last_errno(), 0);
        unsafe { usock_create_dir(ptr::null(), 0, ptr::null_mut()) };
        assert!(last_error().contains("out_dir is NULL"));
        std::thread::spawn(|| assert_eq!(last_error(), ""))
            .join()
            .unwrap();
    })
    .join()
    .unwrap();
}

/// Many threads creating, binding and cleaning up at once: unique paths, nothing left, and the
/// process's descriptor count unchanged (checked in a child process, where no other test opens
/// descriptors meanwhile).
#[test]
fn many_threads_at_once() {
    run_child("child_many_threads", |_| {});
}

#[test]
#[ignore = "run in a child process by many_threads_at_once"]
fn child_many_threads() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("threads");
    let parent = cstring(scratch.path());
    let before = open_fds();
    let paths: Vec<Vec<String>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut seen = Vec::new();
                    for _ in 0..200 {
                        let dir = create(&parent);
                        seen.push(dir_path(dir));
                        let mut fd = -1;
                        assert_eq!(
                            unsafe { usock_bind(dir, ptr::null(), 0, 0, &mut fd) },
                            USOCK_OK
                        );
                        unsafe { libc::close(fd) };
                        assert_eq!(unsafe { usock_cleanup(dir) }, USOCK_OK, "{}", last_error());
                    }
                    seen
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let all: std::collections::HashSet<_> = paths.iter().flatten().collect();
    assert_eq!(all.len(), 8 * 200);
    assert!(scratch.entries("").is_empty());

    // Several threads binding in one shared directory.
    let dir = create(&parent);
    let shared = dir as usize;
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                for i in 0..25 {
                    let name = CString::new(format!("t{t}-{i}")).unwrap();
                    let mut fd = -1;
                    let rc = unsafe {
                        usock_bind(shared as *mut UsockDir, name.as_ptr(), 0, 0, &mut fd)
                    };
                    assert_eq!(rc, USOCK_OK);
                    unsafe { libc::close(fd) };
                }
            });
        }
    });
    let name = std::path::Path::new(&dir_path(dir))
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(scratch.entries(&name).len(), 200);
    assert_eq!(unsafe { usock_cleanup(dir) }, USOCK_OK);
    assert!(scratch.entries("").is_empty());
    assert_eq!(open_fds(), before, "descriptors leaked");
}

#[test]
fn dir_idle_only_when_a_socket_is_there_and_none_answers() {
    let scratch = Scratch::new("idle");
    let parent = cstring(scratch.path());
    let dir = create(&parent);
    let path = dir_path(dir);
    let at = |name: &str| format!("{path}/{name}");
    let idle = || unsafe { usock_dir_idle(dir) };
    let kept_because = |why: &str| {
        assert_eq!(idle(), USOCK_ERR_IN_USE);
        assert!(last_error().contains(why), "{}", last_error());
        assert!(last_error().contains(&path), "{}", last_error());
    };
    // Nothing bound: a path handed out may still be bound.
    kept_because("nothing is bound");
    // A stream server answers; once closed, its socket file stays and refuses.
    let stream = std::os::unix::net::UnixListener::bind(at("s")).unwrap();
    kept_because("answers (SOCK_STREAM)");
    drop(stream);
    assert_eq!(idle(), USOCK_OK, "{}", last_error());
    // A datagram socket answers too.
    let dgram = std::os::unix::net::UnixDatagram::bind(at("d")).unwrap();
    kept_because("answers (SOCK_DGRAM)");
    drop(dgram);
    assert_eq!(idle(), USOCK_OK, "{}", last_error());
    // A server whose backlog is full (EAGAIN) counts as alive.
    let name = CString::new("busy").unwrap();
    let mut fd = -1;
    assert_eq!(
        unsafe { usock_bind(dir, name.as_ptr(), 0, 1, &mut fd) },
        USOCK_OK
    );
    let busy = unsafe { OwnedFd::from_raw_fd(fd) };
    let target = cstring(std::path::Path::new(&at("busy")));
    let mut clients = Vec::new();
    for _ in 0..64 {
        let mut c = -1;
        let rc = unsafe {
            usock_connect(
                target.as_ptr(),
                0,
                USOCK_CONNECT_NONBLOCK,
                USOCK_SERVER_ANY,
                &mut c,
            )
        };
        if rc != USOCK_OK {
            assert_eq!(usock_last_errno(), libc::EAGAIN, "{}", last_error());
            break;
        }
        clients.push(unsafe { OwnedFd::from_raw_fd(c) });
    }
    kept_because("answers (SOCK_STREAM)");
    drop(clients);
    drop(busy);
    assert_eq!(idle(), USOCK_OK, "{}", last_error());
    // Anything but a socket of the user: left to cleanup to judge.
    std::fs::write(at("f"), b"").unwrap();
    kept_because("a regular file");
    std::fs::remove_file(at("f")).unwrap();
    // The check changed nothing; cleanup removes the lot.
    let name = std::path::Path::new(&path).file_name().unwrap();
    assert_eq!(scratch.entries(name.to_str().unwrap()), ["busy", "d", "s"]);
    assert_eq!(unsafe { usock_cleanup(dir) }, USOCK_OK);
    assert!(scratch.entries("").is_empty());
    assert_eq!(unsafe { usock_dir_idle(ptr::null()) }, USOCK_ERR_INVALID);
}

/// `usock_dir_idle` takes only the caller's own sockets for its judgement: a stale socket of
/// another user, or a FIFO of the caller, keeps the directory (and is left as it was), where
/// the caller's own stale socket alone does not.
#[test]
fn dir_idle_keeps_a_directory_with_another_users_stale_socket_or_a_fifo() {
    let scratch = Scratch::new("idle-owner");
    let parent = cstring(scratch.path());
    let dir = create(&parent);
    let path = dir_path(dir);
    let at = |name: &str| std::path::PathBuf::from(format!("{path}/{name}"));
    drop(std::os::unix::net::UnixListener::bind(at("mine")).unwrap());
    assert_eq!(unsafe { usock_dir_idle(dir) }, USOCK_OK, "{}", last_error());
    drop(std::os::unix::net::UnixListener::bind(at("theirs")).unwrap());
    chown(&at("theirs"), NOBODY);
    assert_eq!(unsafe { usock_dir_idle(dir) }, USOCK_ERR_IN_USE);
    assert!(
        last_error().contains("theirs (a socket owned by uid 65534)"),
        "{}",
        last_error()
    );
    assert_eq!(owner(&at("theirs")), NOBODY, "the check changed nothing");
    std::fs::remove_file(at("theirs")).unwrap();
    assert_eq!(
        unsafe { libc::mkfifo(cstring(&at("fifo")).as_ptr(), 0o600) },
        0
    );
    assert_eq!(unsafe { usock_dir_idle(dir) }, USOCK_ERR_IN_USE);
    assert!(last_error().contains("fifo (a FIFO"), "{}", last_error());
    std::fs::remove_file(at("fifo")).unwrap();
    assert_eq!(unsafe { usock_dir_idle(dir) }, USOCK_OK, "{}", last_error());
    assert_eq!(unsafe { usock_cleanup(dir) }, USOCK_OK);
    assert!(scratch.entries("").is_empty());
}
