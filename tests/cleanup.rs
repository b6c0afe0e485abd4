//! Cleanup removes exactly what usock made, and says what it left.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::net::UnixListener;

use common::*;
use usock::{ErrorKind, PrivateDir};

#[test]
fn cleanup_removes_bound_and_caller_bound_sockets_and_the_directory() {
    let scratch = Scratch::new("clean");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let a = dir.listener(None).unwrap();
    let b = dir.datagram(Some(OsStr::new("b"))).unwrap();
    // A socket bound by the caller's own library at socket_path().
    let own = UnixListener::bind(dir.socket_path(Some(OsStr::new("own"))).unwrap()).unwrap();
    assert_eq!(
        scratch
            .entries(dir.path().file_name().unwrap().to_str().unwrap())
            .len(),
        3
    );
    dir.cleanup().unwrap();
    assert!(scratch.entries("").is_empty());
    drop((a, b, own));
}

#[test]
fn drop_cleans_up_too() {
    let scratch = Scratch::new("drop");
    {
        let dir = PrivateDir::in_parent(scratch.path()).unwrap();
        let _listener = dir.listener(None).unwrap();
    }
    assert!(scratch.entries("").is_empty());
}

#[test]
fn a_socket_swapped_for_another_object_is_left_in_place() {
    for (what, swap) in [
        ("a regular file", 0),
        ("a FIFO", 1),
        ("a symbolic link", 2),
        ("a directory", 3),
    ] {
        let scratch = Scratch::new("swap");
        let victim = scratch.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let dir = PrivateDir::in_parent(scratch.path()).unwrap();
        let listener = dir.listener(None).unwrap();
        let sock = dir.socket_path(None).unwrap();
        fs::remove_file(&sock).unwrap();
        match swap {
            0 => fs::write(&sock, b"not yours").unwrap(),
            1 => assert_eq!(unsafe { libc::mkfifo(cstring(&sock).as_ptr(), 0o600) }, 0),
            2 => std::os::unix::fs::symlink(&victim, &sock).unwrap(),
            _ => fs::create_dir(&sock).unwrap(),
        }
        let err = dir.cleanup().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Changed, "{what}: {err}");
        assert!(
            err.message()
                .contains(&format!("{} ({what})", sock.display())),
            "{err}"
        );
        // Left in place, with the directory; the symlink's target untouched.
        assert!(fs::symlink_metadata(&sock).is_ok(), "{what} removed");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        drop(listener);
    }
    figure(
        "attack",
        "socket swapped at cleanup for a regular file, a FIFO, a symlink (to a file that must survive) or a directory: left in place and named",
        4,
        4,
        "tests/cleanup.rs::a_socket_swapped_for_another_object_is_left_in_place",
    );
}

#[test]
fn a_file_dropped_into_the_directory_is_kept_but_our_sockets_go() {
    let scratch = Scratch::new("dropped");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let path = dir.path().to_path_buf();
    let listener = dir.listener(None).unwrap();
    fs::write(path.join("note.txt"), b"x").unwrap();
    fs::create_dir(path.join("sub")).unwrap();
    fs::write(path.join("sub/deep"), b"y").unwrap();
    let err = dir.cleanup().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Changed);
    assert!(err.message().contains("note.txt (a regular file)"), "{err}");
    assert!(err.message().contains("sub (a directory)"), "{err}");
    let mut left: Vec<_> = fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["note.txt", "sub"],
        "the socket was removed, the rest kept"
    );
    assert_eq!(fs::read(path.join("sub/deep")).unwrap(), b"y");
    drop(listener);
    figure(
        "attack",
        "a file and a non-empty subdirectory dropped into the directory: kept (nothing recursive), our socket removed",
        2,
        2,
        "tests/cleanup.rs::a_file_dropped_into_the_directory_is_kept_but_our_sockets_go",
    );
}

#[test]
fn a_socket_of_another_user_is_left() {
    let scratch = Scratch::new("othersock");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let foreign = UnixListener::bind(dir.path().join("theirs")).unwrap();
    chown(&dir.path().join("theirs"), NOBODY);
    let err = dir.cleanup().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Changed);
    assert!(
        err.message()
            .contains("theirs (a socket owned by uid 65534)"),
        "{err}"
    );
    drop(foreign);
    figure(
        "attack",
        "a socket of another user in the directory: left in place",
        1,
        1,
        "tests/cleanup.rs::a_socket_of_another_user_is_left",
    );
}

#[test]
fn a_directory_moved_away_and_replaced_is_left_alone() {
    let scratch = Scratch::new("moved");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let path = dir.path().to_path_buf();
    let listener = dir.listener(None).unwrap();
    let moved = scratch.path().join("moved-away");
    fs::rename(&path, &moved).unwrap();
    fs::create_dir(&path).unwrap();
    fs::write(path.join("impostor"), b"z").unwrap();
    let err = dir.cleanup().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Changed);
    assert!(
        err.message()
            .contains("no longer names the directory usock made"),
        "{err}"
    );
    // The impostor is untouched; our socket in the moved directory was removed by inode.
    assert_eq!(fs::read(path.join("impostor")).unwrap(), b"z");
    assert!(fs::read_dir(&moved).unwrap().next().is_none());
    drop(listener);
    figure(
        "attack",
        "the private directory renamed away and replaced by another: the replacement left alone",
        1,
        1,
        "tests/cleanup.rs::a_directory_moved_away_and_replaced_is_left_alone",
    );
}

#[test]
fn a_directory_removed_by_someone_else_is_reported() {
    let scratch = Scratch::new("removed");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    fs::remove_dir(dir.path()).unwrap();
    let err = dir.cleanup().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Changed);
    assert!(scratch.entries("").is_empty());
}

/// A forked child's cleanup removes nothing; the parent's still works. Forking a multi-threaded
/// test binary is unsafe, so this runs in a single-threaded child process.
#[test]
fn a_forked_child_removes_nothing() {
    run_child("child_fork", |_| {});
    figure(
        "fault",
        "fork in the middle of use: the child's cleanup removes nothing, the parent's socket still answers",
        1,
        1,
        "tests/cleanup.rs::a_forked_child_removes_nothing",
    );
}

#[test]
#[ignore = "run in a child process by a_forked_child_removes_nothing"]
fn child_fork() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("fork");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let listener = dir.listener(None).unwrap();
    let sock = dir.socket_path(None).unwrap();
    // SAFETY: this process has one thread.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ok = dir.cleanup().is_ok();
        let still = sock.exists();
        unsafe { libc::_exit(if ok && still { 0 } else { 1 }) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    assert!(sock.exists(), "the child removed the parent's socket");
    std::os::unix::net::UnixStream::connect(&sock).unwrap();
    drop(listener);
    dir.cleanup().unwrap();
    assert!(scratch.entries("").is_empty());
}

/// Cleanup removes the keep mark only when it is a regular file of the caller: another user's
/// regular file, or the caller's FIFO, directory or symbolic link at the mark's name, is left in
/// place (and the link's target with it); the caller's own mark goes with the directory.
#[test]
fn only_the_callers_regular_file_is_removed_as_the_keep_mark() {
    use std::os::unix::fs::{MetadataExt, symlink};
    let scratch = Scratch::new("keepmark");
    let target = scratch.path().join("target");
    fs::write(&target, b"t").unwrap();
    let kinds = [
        ("another user's regular file", "a regular file"),
        ("the caller's FIFO", "a FIFO"),
        ("the caller's directory", "a directory"),
        ("the caller's symbolic link", "a symbolic link"),
    ];
    for (what, described) in kinds {
        let dir = PrivateDir::in_parent(scratch.path()).unwrap();
        let path = dir.path().to_path_buf();
        let mark = path.join(".usock-keep");
        match what {
            "another user's regular file" => {
                fs::write(&mark, b"m").unwrap();
                chown(&mark, NOBODY);
            }
            "the caller's FIFO" => {
                assert_eq!(unsafe { libc::mkfifo(cstring(&mark).as_ptr(), 0o600) }, 0);
            }
            "the caller's directory" => fs::create_dir(&mark).unwrap(),
            _ => symlink(&target, &mark).unwrap(),
        }
        let before = fs::symlink_metadata(&mark).unwrap().ino();
        let err = dir.cleanup().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Changed, "{what}: {err}");
        assert!(
            err.message()
                .contains(&format!(".usock-keep ({described})")),
            "{what}: {err}"
        );
        assert_eq!(
            fs::symlink_metadata(&mark).unwrap().ino(),
            before,
            "{what}: removed"
        );
        assert_eq!(fs::read(&target).unwrap(), b"t");
    }
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let path = dir.path().to_path_buf();
    fs::write(path.join(".usock-keep"), b"").unwrap();
    dir.cleanup().unwrap();
    assert!(!path.exists(), "the caller's own mark was not removed");
    figure(
        "attack",
        "at the keep mark's name: another user's regular file, the caller's FIFO, directory or symbolic link: left in place by cleanup",
        kinds.len(),
        kinds.len(),
        "tests/cleanup.rs::only_the_callers_regular_file_is_removed_as_the_keep_mark",
    );
}
