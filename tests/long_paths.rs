//! Socket paths longer than `sun_path` (Linux, opt-in): bound through `/proc/thread-self/fd/<dir>`,
//! connected through a descriptor of their directory, reported by their real path.

mod common;

use std::path::PathBuf;

use common::Scratch;
use usock::{DirOptions, ErrorKind, PrivateDir};

/// A parent of about `len` bytes under `scratch`, made of nested 0755 directories.
fn deep_parent(scratch: &Scratch, len: usize) -> PathBuf {
    let mut path = scratch.path().join(format!("L{len}"));
    std::fs::create_dir(&path).unwrap();
    let mut i = 0;
    while path.as_os_str().len() < len {
        let room = len - path.as_os_str().len() - 1;
        path.push(format!("{i}{}", "d".repeat(room.clamp(1, 40) - 1)));
        std::fs::create_dir(&path).unwrap();
        i += 1;
    }
    path
}

#[test]
fn without_the_flag_a_deep_parent_is_too_long() {
    let scratch = Scratch::new("long-no");
    let parent = deep_parent(&scratch, 150);
    let err = PrivateDir::in_parent(&parent).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLong, "{err}");
}

/// Where long paths work: Linux (through /proc) and FreeBSD (bindat, connectat; type-checked
/// here, not run).
#[cfg(any(all(target_os = "linux", not(usock_portable)), target_os = "freebsd"))]
mod supported {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::path::Path;
    use usock::SocketType;

    #[test]
    fn long_paths_bind_and_connect_beyond_sun_path() {
        let scratch = Scratch::new("long");
        for len in [155, 167, 230] {
            let parent = deep_parent(&scratch, len);
            let dir =
                PrivateDir::create_with(Some(&parent), &DirOptions::default().long_paths(true))
                    .unwrap();
            let listener = dir.listener(None).unwrap();
            let path = dir.socket_path(None).unwrap();
            assert!(
                path.as_os_str().len() > usock::MAX_SOCKET_PATH,
                "{}",
                path.display()
            );
            assert!(path.starts_with(&parent), "the real path is reported");
            assert_eq!(common::mode(&path), 0o600);
            // The in-process address goes through /proc; the kernel reports that one too.
            let address = dir.socket_address(None).unwrap();
            assert!(
                address.starts_with("/proc/thread-self/fd/"),
                "{}",
                address.display()
            );
            let reported = listener.local_addr().unwrap();
            assert!(
                reported
                    .as_pathname()
                    .unwrap()
                    .starts_with("/proc/thread-self/fd/")
            );
            // A client by the real path, through its directory's descriptor.
            let mut client = UnixStream::from(usock::connect(&path, SocketType::Stream).unwrap());
            let (mut server, _) = listener.accept().unwrap();
            client.write_all(b"x").unwrap();
            let mut b = [0u8; 1];
            server.read_exact(&mut b).unwrap();
            drop((client, server));
            let made = dir.path().to_owned();
            drop(listener);
            dir.cleanup().unwrap();
            assert!(!made.exists());
        }
        common::figure(
            "fault",
            "socket paths of 155, 167 and 230 bytes (sun_path holds 108): bound, mode 0600, connected by their real path, cleaned up",
            3,
            3,
            "tests/long_paths.rs::long_paths_bind_and_connect_beyond_sun_path",
        );
    }

    /// Makes a directory in `parent` one public way (Rust or C), binds its default socket and
    /// cleans up: `Ok` with the socket's real path, or the error.
    type Make = fn(&Path) -> Result<PathBuf, String>;

    /// The mode of a socket bound in `dir`: 0660 in a shared (0710) directory, 0600 otherwise.
    fn socket_mode(dir: &Path) -> u32 {
        if common::mode(dir) == 0o710 {
            0o660
        } else {
            0o600
        }
    }

    fn rust(made: usock::Result<PrivateDir>) -> Result<PathBuf, String> {
        let dir = made.map_err(|e| format!("{:?}: {e}", e.kind()))?;
        let listener = dir.listener(None).unwrap();
        let path = dir.socket_path(None).unwrap();
        assert_eq!(
            common::mode(&path),
            socket_mode(dir.path()),
            "{}",
            path.display()
        );
        drop(listener);
        dir.cleanup().unwrap();
        Ok(path)
    }

    fn c(rc: i32, dir: *mut usock::testing::ffi::UsockDir) -> Result<PathBuf, String> {
        use std::ffi::CStr;
        use usock::testing::ffi::*;
        if rc != USOCK_OK {
            let why = unsafe { CStr::from_ptr(usock_last_error()) };
            return Err(format!("code {rc}: {}", why.to_string_lossy()));
        }
        let mut fd = -1;
        let bound = unsafe { usock_bind(dir, std::ptr::null(), libc::SOCK_STREAM, 0, &mut fd) };
        assert_eq!(bound, USOCK_OK);
        let made = unsafe { CStr::from_ptr(usock_dir_path(dir)) }
            .to_str()
            .unwrap();
        let path = Path::new(made).join("sock");
        assert_eq!(
            common::mode(&path),
            socket_mode(Path::new(made)),
            "{}",
            path.display()
        );
        unsafe { libc::close(fd) };
        assert_eq!(unsafe { usock_cleanup(dir) }, USOCK_OK);
        Ok(path)
    }

    fn c_dir(parent: &Path, flags: u32) -> Result<PathBuf, String> {
        let mut dir = std::ptr::null_mut();
        let parent = common::cstring(parent);
        let rc = unsafe { usock::testing::ffi::usock_create_dir(parent.as_ptr(), flags, &mut dir) };
        c(rc, dir)
    }

    fn c_shared(parent: &Path, flags: u32) -> Result<PathBuf, String> {
        let mut dir = std::ptr::null_mut();
        let parent = common::cstring(parent);
        let gid = unsafe { libc::getegid() };
        let rc = unsafe {
            usock::testing::ffi::usock_create_shared_dir(parent.as_ptr(), gid, flags, &mut dir)
        };
        c(rc, dir)
    }

    fn own_group() -> DirOptions {
        DirOptions::default().share_with_group(unsafe { libc::getegid() })
    }

    /// Long paths through the one constructor path: every public way that asks for them
    /// (`DirOptions::long_paths`, `USOCK_LONG_PATHS`, with a group or without) gets a socket
    /// path beyond `sun_path` in a deep parent; every way that does not is refused as too long
    /// and leaves nothing there.
    #[test]
    fn every_constructor_honours_long_paths_exactly_when_asked() {
        use usock::testing::ffi::USOCK_LONG_PATHS;
        let scratch = Scratch::new("long-every");
        let parent = deep_parent(&scratch, 150);
        let asked: [(&str, Make); 4] = [
            ("create_with(long_paths)", |p| {
                rust(PrivateDir::create_with(
                    Some(p),
                    &DirOptions::default().long_paths(true),
                ))
            }),
            ("create_with(long_paths, group)", |p| {
                rust(PrivateDir::create_with(
                    Some(p),
                    &own_group().long_paths(true),
                ))
            }),
            ("usock_create_dir(USOCK_LONG_PATHS)", |p| {
                c_dir(p, USOCK_LONG_PATHS)
            }),
            ("usock_create_shared_dir(USOCK_LONG_PATHS)", |p| {
                c_shared(p, USOCK_LONG_PATHS)
            }),
        ];
        let not_asked: [(&str, Make); 8] = [
            ("in_parent", |p| rust(PrivateDir::in_parent(p))),
            ("create", |p| rust(PrivateDir::create(Some(p)))),
            ("create_with(default)", |p| {
                rust(PrivateDir::create_with(Some(p), &DirOptions::default()))
            }),
            ("create_with(group)", |p| {
                rust(PrivateDir::create_with(Some(p), &own_group()))
            }),
            ("shared_with_group", |p| {
                rust(PrivateDir::shared_with_group(Some(p), unsafe {
                    libc::getegid()
                }))
            }),
            ("usock_create_dir(0)", |p| c_dir(p, 0)),
            ("usock_create_shared_dir(0)", |p| c_shared(p, 0)),
            ("DirOptions::long_paths(false)", |p| {
                rust(PrivateDir::create_with(
                    Some(p),
                    &DirOptions::default().long_paths(false),
                ))
            }),
        ];
        for (how, make) in asked {
            let path = make(&parent).unwrap_or_else(|e| panic!("{how}: {e}"));
            assert!(
                path.as_os_str().len() > usock::MAX_SOCKET_PATH,
                "{how}: {}",
                path.display()
            );
            assert!(path.starts_with(&parent), "{how}: {}", path.display());
        }
        for (how, make) in not_asked {
            let err = make(&parent).expect_err(how);
            assert!(
                err.starts_with("TooLong:") || err.starts_with("code -2:"),
                "{how}: {err}"
            );
        }
        assert_eq!(
            std::fs::read_dir(&parent).unwrap().count(),
            0,
            "left behind"
        );
    }

    #[test]
    fn a_name_too_long_even_through_proc_is_refused() {
        let scratch = Scratch::new("long-name");
        let parent = deep_parent(&scratch, 120);
        let dir = PrivateDir::create_with(Some(&parent), &DirOptions::default().long_paths(true))
            .unwrap();
        let name = "n".repeat(100);
        let err = dir
            .bind(Some(name.as_ref()), SocketType::Stream, None)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLong, "{err}");
        let err = usock::connect(
            Path::new(&format!("{}/{name}", dir.path().display())),
            SocketType::Stream,
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLong, "{err}");
        dir.cleanup().unwrap();
    }
}

#[test]
#[cfg(not(any(all(target_os = "linux", not(usock_portable)), target_os = "freebsd")))]
fn elsewhere_the_flag_changes_nothing() {
    let scratch = Scratch::new("long-port");
    let parent = deep_parent(&scratch, 150);
    let err = PrivateDir::create_with(Some(&parent), &DirOptions::default().long_paths(true))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLong, "{err}");
}

/// A thread with a descriptor table of its own (`unshare(CLONE_FILES)`): its long-path binds and
/// connects go through its own table, not the process's (`/proc/self/fd` names the thread-group
/// leader's), where the same numbers are filled with a decoy directory holding a decoy server.
#[test]
#[cfg(all(target_os = "linux", not(usock_portable)))]
fn a_thread_with_its_own_descriptor_table_binds_and_connects_through_it() {
    common::run_child("child_long_paths_in_an_unshared_table", |_| {});
    common::figure(
        "attack",
        "long-path bind and connect from a thread with its own descriptor table (unshare CLONE_FILES), the process's table filled with a decoy directory and server at the same numbers: the thread's own socket, never the decoy",
        2,
        2,
        "tests/long_paths.rs::a_thread_with_its_own_descriptor_table_binds_and_connects_through_it",
    );
}

#[test]
#[ignore = "run by a_thread_with_its_own_descriptor_table_binds_and_connects_through_it"]
#[cfg(all(target_os = "linux", not(usock_portable)))]
fn child_long_paths_in_an_unshared_table() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::os::unix::net::UnixListener;
    use std::sync::mpsc::channel;
    if !common::in_child() {
        return;
    }
    let scratch = Scratch::new("long-unshare");
    let parent = deep_parent(&scratch, 160);
    let long = DirOptions::default().long_paths(true);
    // The real server, bound from the shared table.
    let served = PrivateDir::create_with(Some(&parent), &long).unwrap();
    let server = served.listener(Some("s".as_ref())).unwrap();
    server.set_nonblocking(true).unwrap();
    let target = served.socket_path(Some("s".as_ref())).unwrap();
    // The decoy: a short directory with a server at the same name.
    let decoy = scratch.path().join("decoy");
    std::fs::create_dir(&decoy).unwrap();
    let decoy_server = UnixListener::bind(decoy.join("s")).unwrap();
    decoy_server.set_nonblocking(true).unwrap();

    let (unshared, wait_unshared) = channel();
    let (go, wait_go) = channel::<()>();
    let thread = std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_FILES) gives this thread a copy of the table; nothing else.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_FILES) }, 0);
        unshared.send(()).unwrap();
        wait_go.recv().unwrap();
        // Everything opened here is in this thread's table: used and closed here.
        let mine = PrivateDir::create_with(Some(&parent), &long).unwrap();
        let bound = mine.listener(Some("t".as_ref())).map_err(|e| e.to_string());
        let at_t = std::fs::symlink_metadata(mine.path().join("t"));
        let bound_here = at_t.map(|m| m.file_type().is_socket() && m.mode() & 0o777 == 0o600);
        let client = usock::connect(&target, usock::SocketType::Stream).map(drop);
        drop(bound);
        mine.cleanup().unwrap();
        (
            bound_here.unwrap_or(false),
            client.map_err(|e| e.to_string()),
        )
    });
    wait_unshared.recv().unwrap();
    // Every number free in the shared table now names the decoy there.
    let decoy_dir = std::fs::File::open(&decoy).unwrap();
    let mut filled = Vec::new();
    for n in 3..256 {
        // SAFETY: F_GETFD only asks whether n is open; dup2 onto a free number opens it.
        unsafe {
            if libc::fcntl(n, libc::F_GETFD) == -1 && libc::dup2(decoy_dir.as_raw_fd(), n) == n {
                filled.push(n);
            }
        }
    }
    go.send(()).unwrap();
    let (bound_here, client) = thread.join().unwrap();
    for n in filled {
        // SAFETY: closing the duplicates made above, which nothing else uses.
        unsafe { libc::close(n) };
    }
    let decoy_entries: Vec<_> = std::fs::read_dir(&decoy)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(decoy_entries, vec!["s"], "a socket was bound in the decoy");
    assert!(
        bound_here,
        "no socket of mode 0600 at t in the thread's directory"
    );
    client.expect("the thread's client connects");
    assert!(
        decoy_server.accept().is_err(),
        "the client reached the decoy server"
    );
    server.accept().expect("the client reached the real server");
    drop(server);
    served.cleanup().unwrap();
}
