//! Creating private directories: names, modes, owners, parents (explicit and automatic),
//! path lengths. Through the Rust API; tests/ffi.rs repeats the essentials through the C ABI.

mod common;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use common::*;
use usock::{ErrorKind, MAX_SOCKET_PATH, PrivateDir};

#[test]
fn directory_is_fresh_private_and_ours() {
    let scratch = Scratch::new("fresh");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let path = dir.path().to_path_buf();
    assert_eq!(path.parent().unwrap(), scratch.path());
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("usock-") && name.len() == 19, "{name}");
    assert!(fs::symlink_metadata(&path).unwrap().is_dir());
    assert_eq!(mode(&path), 0o700);
    assert_eq!(owner(&path), unsafe { libc::geteuid() });
    dir.cleanup().unwrap();
    assert!(!path.exists());
    assert!(scratch.entries("").is_empty());
}

#[test]
fn names_are_unique_over_thousands_of_creations() {
    let scratch = Scratch::new("unique");
    let mut seen = HashSet::new();
    let mut dirs = Vec::new();
    for _ in 0..3000 {
        let dir = PrivateDir::in_parent(scratch.path()).unwrap();
        assert!(
            seen.insert(dir.path().to_path_buf()),
            "repeated {:?}",
            dir.path()
        );
        dirs.push(dir);
    }
    assert_eq!(scratch.entries("").len(), 3000);
    for dir in dirs {
        dir.cleanup().unwrap();
    }
    assert!(scratch.entries("").is_empty());
}

/// Mode bits stay exactly 0700 (directory) and 0600 (socket) whatever the umask.
#[test]
fn modes_under_umask_0_022_077_0777() {
    for mask in [0o000, 0o022, 0o077, 0o777] {
        run_child("child_modes_under_umask", |cmd| {
            with_umask(cmd, mask);
            cmd.env("USOCK_TEST_UMASK", format!("{mask:o}"));
        });
    }
}

#[test]
#[ignore = "run in a child process by modes_under_umask_0_022_077_0777"]
fn child_modes_under_umask() {
    if !in_child() {
        return;
    }
    let expected = u32::from_str_radix(&std::env::var("USOCK_TEST_UMASK").unwrap(), 8).unwrap();
    let scratch = Scratch::new("umask");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    assert_eq!(mode(dir.path()), 0o700);
    let listener = dir.listener(None).unwrap();
    let sock = dir.socket_path(None).unwrap();
    assert_eq!(mode(&sock), 0o600);
    // The process umask is untouched.
    let now = unsafe { libc::umask(0o022) };
    assert_eq!(now as u32, expected);
    drop(listener);
    dir.cleanup().unwrap();
}

#[test]
fn hostile_explicit_parents_are_refused_and_nothing_is_created() {
    let scratch = Scratch::new("hostile");
    let world = scratch.subdir("world", 0o777, 0);
    let other = scratch.subdir("other", 0o755, NOBODY);
    let group = scratch.subdir("group", 0o775, 0);
    let bad_ancestor = scratch.subdir("ancestor", 0o777, 0);
    let below = bad_ancestor.join("ok");
    fs::create_dir(&below).unwrap();
    fs::set_permissions(&below, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let sticky = scratch.subdir("sticky", 0o1777, 0);

    for (parent, words) in [
        (&world, "writable by group or others without the sticky bit"),
        (&other, "owned by uid 65534"),
        (&group, "writable by group or others without the sticky bit"),
        (&below, "ancestor"),
    ] {
        let err = PrivateDir::in_parent(parent).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsafe, "{parent:?}: {err}");
        let shown = if words == "ancestor" {
            bad_ancestor.to_str().unwrap()
        } else {
            words
        };
        assert!(err.message().contains(shown), "{err}");
        assert!(fs::read_dir(parent).unwrap().next().is_none() || parent == &bad_ancestor);
    }
    assert_eq!(scratch.entries("ancestor"), ["ok"]);
    assert!(scratch.entries("ancestor/ok").is_empty());
    // A world-writable directory with the sticky bit, like /tmp, is fine.
    PrivateDir::in_parent(&sticky).unwrap().cleanup().unwrap();
}

#[test]
fn symlinks_in_the_parent_are_resolved_and_must_be_trusted() {
    let scratch = Scratch::new("links");
    let real = scratch.subdir("real", 0o755, 0);
    let ours = scratch.path().join("ours");
    std::os::unix::fs::symlink(&real, &ours).unwrap();
    let dir = PrivateDir::in_parent(&ours).unwrap();
    // The returned path has no symlink in it.
    assert_eq!(dir.path().parent().unwrap(), real);
    dir.cleanup().unwrap();

    // A link another user planted is refused even though its target is safe.
    let planted = scratch.path().join("planted");
    std::os::unix::fs::symlink(&real, &planted).unwrap();
    chown(&planted, NOBODY);
    let err = PrivateDir::in_parent(&planted).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsafe);
    assert!(err.message().contains("symbolic link"), "{err}");
    assert!(scratch.entries("real").is_empty());

    // Relative paths and `..` resolve too.
    let dotted = real.join("..").join("real");
    let dir = PrivateDir::in_parent(&dotted).unwrap();
    assert_eq!(dir.path().parent().unwrap(), real);
    dir.cleanup().unwrap();
}

#[test]
fn parents_that_are_not_usable_directories() {
    let scratch = Scratch::new("notdir");
    let file = scratch.path().join("file");
    fs::write(&file, b"x").unwrap();
    let err = PrivateDir::in_parent(&file).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::System);
    assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
    assert!(err.message().contains("a regular file"), "{err}");

    let missing = scratch.path().join("missing");
    let err = PrivateDir::in_parent(&missing).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::System);
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert!(err.message().contains(missing.to_str().unwrap()), "{err}");

    assert_eq!(
        PrivateDir::in_parent("").unwrap_err().kind(),
        ErrorKind::Invalid
    );
}

/// A parent whose path leaves no room for `<dir>/sock` is refused before anything is made.
#[test]
fn too_long_explicit_parent() {
    let scratch = Scratch::new("long");
    // /tmp/usock-test-long-<16 hex> is 37 bytes; grow it past the 82-byte room for a parent.
    let mut long = scratch.path().to_path_buf();
    let mut first = None;
    while long.as_os_str().len() <= 90 {
        long.push("dddddddddd");
        first.get_or_insert(long.clone());
    }
    fs::create_dir_all(&long).unwrap();
    let err = PrivateDir::in_parent(&long).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooLong, "{err}");
    assert!(err.message().contains("the limit here is 107"), "{err}");
    let deepest = fs::read_dir(&long).unwrap().count();
    assert_eq!(deepest, 0, "nothing created");

    // Exactly at the limit: parent + "/usock-XXXXXXXXXXXXX/sock" is 107 bytes.
    let room = MAX_SOCKET_PATH - "/usock-xxxxxxxxxxxxx/sock".len();
    let base = scratch.path().join("e");
    let pad = room - base.as_os_str().len();
    let exact = PathBuf::from(format!("{}{}", base.display(), "e".repeat(pad)));
    fs::create_dir(&exact).unwrap();
    let dir = PrivateDir::in_parent(&exact).unwrap();
    assert_eq!(
        dir.socket_path(None).unwrap().as_os_str().len(),
        MAX_SOCKET_PATH
    );
    let listener = dir.listener(None).unwrap();
    drop(listener);
    dir.cleanup().unwrap();
    let one_more = PathBuf::from(format!("{}e", exact.display()));
    fs::create_dir(&one_more).unwrap();
    assert_eq!(
        PrivateDir::in_parent(&one_more).unwrap_err().kind(),
        ErrorKind::TooLong
    );
    let _ = first;
}

#[test]
fn parent_paths_that_are_not_utf8() {
    let scratch = Scratch::new("bytes");
    let raw = scratch.path().join(OsStr::from_bytes(b"caf\xe9-\xff"));
    fs::create_dir(&raw).unwrap();
    let dir = PrivateDir::in_parent(&raw).unwrap();
    assert_eq!(dir.path().parent().unwrap(), raw);
    let listener = dir.listener(None).unwrap();
    let path = dir.socket_path(None).unwrap();
    std::os::unix::net::UnixStream::connect(&path).unwrap();
    drop(listener);
    dir.cleanup().unwrap();
    assert!(fs::read_dir(&raw).unwrap().next().is_none());

    // Messages show such bytes escaped.
    let bad = scratch.path().join(OsStr::from_bytes(b"w\xff"));
    fs::create_dir(&bad).unwrap();
    fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let err = PrivateDir::in_parent(&bad).unwrap_err();
    assert!(err.message().contains("w\\xff"), "{err}");
}

/// Automatic choice: each test sets the environment in a child process.
fn auto_child(xdg: Option<&Path>, tmpdir: Option<&Path>, expect: &str) {
    run_child("child_automatic_choice", |cmd| {
        cmd.env_remove("XDG_RUNTIME_DIR").env_remove("TMPDIR");
        if let Some(x) = xdg {
            cmd.env("XDG_RUNTIME_DIR", x);
        }
        if let Some(t) = tmpdir {
            cmd.env("TMPDIR", t);
        }
        cmd.env("USOCK_TEST_EXPECT", expect);
    });
}

#[test]
#[ignore = "run in a child process by the automatic_* tests"]
fn child_automatic_choice() {
    if !in_child() {
        return;
    }
    let expect = PathBuf::from(std::env::var("USOCK_TEST_EXPECT").unwrap());
    let dir = PrivateDir::new().unwrap();
    assert_eq!(dir.path().parent().unwrap(), expect);
    assert_eq!(mode(dir.path()), 0o700);
    dir.cleanup().unwrap();
}

#[test]
fn automatic_prefers_xdg_runtime_dir_then_tmpdir() {
    let scratch = Scratch::new("auto");
    let xdg = scratch.subdir("xdg", 0o700, 0);
    let tmp = scratch.subdir("tmp", 0o1777, 0);
    auto_child(Some(&xdg), Some(&tmp), xdg.to_str().unwrap());
    auto_child(None, Some(&tmp), tmp.to_str().unwrap());
    auto_child(None, None, "/tmp");
    assert!(scratch.entries("xdg").is_empty() && scratch.entries("tmp").is_empty());
}

#[test]
fn automatic_skips_unsafe_missing_relative_and_too_long_candidates() {
    let scratch = Scratch::new("skip");
    let unsafe_xdg = scratch.subdir("xdg", 0o777, 0);
    let mut long = scratch.path().join("t");
    while long.as_os_str().len() <= 90 {
        long.push("tttttttttt");
    }
    fs::create_dir_all(&long).unwrap();
    auto_child(Some(&unsafe_xdg), Some(&long), "/tmp");
    auto_child(
        Some(Path::new("relative/dir")),
        Some(&scratch.path().join("gone")),
        "/tmp",
    );
    let other = scratch.subdir("other", 0o700, NOBODY);
    auto_child(Some(&other), None, "/tmp");
    assert!(scratch.entries("xdg").is_empty());
    assert!(fs::read_dir(&long).unwrap().next().is_none());
}

/// When no candidate fits, the error names every candidate and why it was skipped. The child
/// gets a private mount namespace with read-only file systems over /tmp and /var/tmp.
#[test]
#[cfg(target_os = "linux")]
fn no_dir_error_lists_every_candidate() {
    run_child("child_no_dir", |cmd| {
        cmd.env("XDG_RUNTIME_DIR", "relative")
            .env("TMPDIR", "/nonexistent-usock-test");
    });
}

#[test]
#[ignore = "run in a child process by no_dir_error_lists_every_candidate"]
#[cfg(target_os = "linux")]
fn child_no_dir() {
    if !in_child() {
        return;
    }
    private_mount_namespace();
    mount_tmpfs_here(Path::new("/tmp"), "", true);
    mount_tmpfs_here(Path::new("/var/tmp"), "", true);
    let err = PrivateDir::new().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoDir, "{err}");
    let msg = err.message();
    for part in [
        "$XDG_RUNTIME_DIR (relative): not an absolute path",
        "$TMPDIR (/nonexistent-usock-test): cannot use /nonexistent-usock-test as a parent",
        "/tmp: cannot create a directory in /tmp: Read-only file system",
        "/var/tmp: cannot create a directory in /var/tmp: Read-only file system",
    ] {
        assert!(msg.contains(part), "missing {part:?} in {msg}");
    }
}

/// What a live handle costs: two descriptors (the parent and the directory), none after cleanup,
/// and binding adds none but the socket's own. (Counted in a child process: other test threads
/// open descriptors too.)
#[test]
fn a_live_directory_holds_two_descriptors() {
    run_child("child_descriptor_cost", |_| {});
}

#[test]
#[ignore = "run in a child process"]
fn child_descriptor_cost() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("fdcost");
    let before = open_fd_numbers().len();
    let dirs: Vec<PrivateDir> = (0..10)
        .map(|_| PrivateDir::in_parent(scratch.path()).unwrap())
        .collect();
    assert_eq!(open_fd_numbers().len(), before + 20);
    let listeners: Vec<_> = dirs.iter().map(|d| d.listener(None).unwrap()).collect();
    assert_eq!(open_fd_numbers().len(), before + 30);
    drop(listeners);
    for dir in dirs {
        dir.cleanup().unwrap();
    }
    assert_eq!(open_fd_numbers().len(), before);
}

/// A parent path with a NUL byte (which the C ABI cannot even express) is refused, not cut.
#[test]
fn a_parent_with_a_nul_byte_is_invalid() {
    let err = PrivateDir::in_parent(Path::new(OsStr::from_bytes(b"/tmp\0/x"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert!(err.message().contains("NUL"), "{err}");
}
