//! Socket paths longer than `sun_path` (Linux, opt-in): bound through `/proc/self/fd/<dir>`,
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
                address.starts_with("/proc/self/fd/"),
                "{}",
                address.display()
            );
            let reported = listener.local_addr().unwrap();
            assert!(
                reported
                    .as_pathname()
                    .unwrap()
                    .starts_with("/proc/self/fd/")
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
