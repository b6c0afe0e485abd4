//! The defects an outside security review found in 0.1, each attacked for real: pid namespaces
//! and `clone3` with `set_tid`, a seccomp filter taking `getrandom` and `fchmodat2` away, a
//! setuid-root program with a hostile environment, a hard-linked symlink in a sticky directory,
//! the descriptor limit at cleanup, a file system remounted read-only, no `/proc`, and a
//! missing parent. Each failed on 0.1.
//!
//! Namespaces, seccomp filters, mounts, uid changes and limits belong to a process, so each
//! test runs its body in a child process (see `common::run_child`).

// Namespaces, mounts, seccomp and /proc: this battery runs on Linux (macOS and the BSDs
// type-check the library and the portable tests only).
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::*;
use usock::{ErrorKind, PrivateDir};

// ---- Fork detection across pid namespaces -------------------------------------------------

/// A container's pid 1 forks a helper into a new pid namespace: the helper is pid 1 too.
#[test]
fn a_child_with_the_creators_pid_in_a_new_pid_namespace_removes_nothing() {
    run_child("child_pid_namespace", |_| {});
    figure(
        "fault",
        "fork into a new pid namespace where the child has its creator's pid (pid 1 forking a namespaced helper): the child's cleanup removes nothing",
        1,
        1,
        "tests/hardening.rs::a_child_with_the_creators_pid_in_a_new_pid_namespace_removes_nothing",
    );
}

#[test]
#[ignore = "run in a child process"]
fn child_pid_namespace() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("pidns");
    // SAFETY: plain system call in a single-threaded child; our children become pid 1 of it.
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWPID) }, 0);
    let container_init = in_forked_child(|| {
        assert_eq!(std::process::id(), 1);
        let dir = PrivateDir::in_parent(scratch.path()).unwrap();
        let listener = dir.listener(None).unwrap();
        let sock = dir.socket_path(None).unwrap();
        // SAFETY: as above; the helper is pid 1 of a nested namespace.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWPID) }, 0);
        let helper = in_forked_child(|| {
            assert_eq!(std::process::id(), 1, "the helper has its creator's pid");
            // SAFETY: the helper leaves with _exit and never drops its `dir`: this copy is the
            // only one this process drops.
            let copy: PrivateDir = unsafe { std::ptr::read(&dir) };
            copy.cleanup().unwrap();
        });
        assert!(helper, "the helper failed");
        assert!(sock.exists(), "the helper removed its creator's socket");
        UnixStream::connect(&sock).unwrap();
        drop(listener);
        dir.cleanup().unwrap();
    });
    assert!(container_init, "see the child's output");
    assert!(scratch.entries("").is_empty());
}

/// `clone3` with `set_tid` gives a child in a nested pid namespace any pid, its creator's too.
#[test]
fn a_child_given_its_creators_pid_with_clone3_set_tid_removes_nothing() {
    run_child("child_clone3_set_tid", |_| {});
    figure(
        "fault",
        "clone3 with set_tid gives a child its creator's pid (7) in a nested pid namespace: the child's cleanup removes nothing",
        1,
        1,
        "tests/hardening.rs::a_child_given_its_creators_pid_with_clone3_set_tid_removes_nothing",
    );
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// `clone3` like `fork`, with the child's pid in the innermost pid namespace set to `pid`.
/// Returns 0 in the child. Single-threaded callers only.
fn clone_with_pid(pid: libc::pid_t) -> libc::pid_t {
    let tids = [pid];
    let args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        set_tid: tids.as_ptr() as u64,
        set_tid_size: 1,
        ..CloneArgs::default()
    };
    // SAFETY: no CLONE_VM: the child gets a copy of this single-threaded process, as with fork.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    assert!(ret >= 0, "clone3: {}", std::io::Error::last_os_error());
    ret as libc::pid_t
}

#[test]
#[ignore = "run in a child process"]
fn child_clone3_set_tid() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("settid");
    // SAFETY: single-threaded child; its children go into a new pid namespace X.
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWPID) }, 0);
    let ok = in_forked_child(|| {
        // pid 1 of X makes the creator with pid 7 in X.
        let creator = clone_with_pid(7);
        if creator == 0 {
            let ok = std::panic::catch_unwind(|| {
                assert_eq!(std::process::id(), 7);
                let dir = PrivateDir::in_parent(scratch.path()).unwrap();
                let listener = dir.listener(None).unwrap();
                let sock = dir.socket_path(None).unwrap();
                // Children of the creator go into a nested namespace Y; its init keeps it alive.
                // SAFETY: single-threaded process.
                assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWPID) }, 0);
                // SAFETY: single-threaded process; the child only pauses.
                let init = unsafe { libc::fork() };
                if init == 0 {
                    // SAFETY: waits to be killed; exits without running anything of ours.
                    unsafe {
                        libc::pause();
                        libc::_exit(0);
                    }
                }
                let twin = clone_with_pid(7);
                if twin == 0 {
                    let same = std::process::id() == 7;
                    // SAFETY: the twin leaves with _exit and never drops its `dir`.
                    let copy: PrivateDir = unsafe { std::ptr::read(&dir) };
                    let cleaned = copy.cleanup().is_ok();
                    // SAFETY: leaves the child at once.
                    unsafe { libc::_exit(if same && cleaned { 0 } else { 1 }) };
                }
                assert!(
                    wait_ok(twin),
                    "the twin did not have pid 7 or its cleanup failed"
                );
                // SAFETY: our own child.
                unsafe { libc::kill(init, libc::SIGKILL) };
                wait_ok(init);
                assert!(
                    sock.exists(),
                    "a child with its creator's pid removed the socket"
                );
                UnixStream::connect(&sock).unwrap();
                drop(listener);
                dir.cleanup().unwrap();
            })
            .is_ok();
            // SAFETY: leaves the creator at once.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        assert!(wait_ok(creator), "see the creator's output");
    });
    assert!(ok, "see the child's output");
    assert!(scratch.entries("").is_empty());
}

// ---- Randomness without a kept descriptor ---------------------------------------------------

/// getrandom(2) refused (ENOSYS, as on old kernels; EPERM, as some seccomp profiles do): the
/// name still comes from the kernel's random device, opened and closed again each time.
#[test]
fn without_getrandom_the_name_comes_from_urandom_and_no_descriptor_is_kept() {
    for errno in [libc::ENOSYS, libc::EPERM] {
        run_child("child_no_getrandom", |cmd| {
            cmd.env("USOCK_TEST_ERRNO", errno.to_string());
        });
    }
    figure(
        "attack",
        "getrandom(2) refused by seccomp (ENOSYS, EPERM), then all descriptors closed and /dev/zero opened at the freed number: names stay random, no descriptor kept",
        2,
        2,
        "tests/hardening.rs::without_getrandom_the_name_comes_from_urandom_and_no_descriptor_is_kept",
    );
}

fn test_errno() -> i32 {
    std::env::var("USOCK_TEST_ERRNO").unwrap().parse().unwrap()
}

#[test]
#[ignore = "run in a child process"]
fn child_no_getrandom() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("norandom");
    deny_syscall(libc::SYS_getrandom, test_errno());
    let before = open_fd_numbers();
    let first = PrivateDir::in_parent(scratch.path()).unwrap();
    first.cleanup().unwrap();
    assert_eq!(open_fd_numbers(), before, "a descriptor was kept");

    // The application closes every descriptor it does not know and opens its own file.
    // SAFETY: plain system calls in a single-threaded child.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        assert_eq!(
            libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC),
            3
        );
    }
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let dir = PrivateDir::in_parent(scratch.path()).unwrap();
        let name = dir.path().file_name().unwrap().to_str().unwrap().to_owned();
        assert_ne!(name, "usock-aaaaaaaaaaaaa", "the name came from /dev/zero");
        names.insert(name);
        dir.cleanup().unwrap();
    }
    assert_eq!(names.len(), 20);
    assert!(scratch.entries("").is_empty());
}

/// Without getrandom(2), a /dev/urandom that is not the kernel's random device is refused.
#[test]
fn a_fake_dev_urandom_is_refused() {
    run_child("child_fake_urandom", |_| {});
    figure(
        "attack",
        "getrandom(2) refused and /dev/zero mounted over /dev/urandom: creation fails with an errno, nothing made",
        1,
        1,
        "tests/hardening.rs::a_fake_dev_urandom_is_refused",
    );
}

#[test]
#[ignore = "run in a child process"]
fn child_fake_urandom() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("fakerandom");
    private_mount_namespace();
    // SAFETY: NUL-terminated paths; a bind mount in this child's own namespace.
    let ret = unsafe {
        libc::mount(
            c"/dev/zero".as_ptr(),
            c"/dev/urandom".as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(ret, 0, "bind /dev/zero over /dev/urandom");
    deny_syscall(libc::SYS_getrandom, libc::ENOSYS);
    let err = PrivateDir::in_parent(scratch.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::System, "{err}");
    assert!(err.raw_os_error().is_some_and(|e| e != 0), "{err:?}");
    assert!(
        err.message().contains("not the kernel's random device"),
        "{err}"
    );
    assert!(scratch.entries("").is_empty());
}

// ---- setuid programs ------------------------------------------------------------------------

/// A setuid-root program started by another user with `XDG_RUNTIME_DIR` and `TMPDIR` pointing
/// at a root-only directory must not create its directory there.
#[test]
fn a_setuid_program_ignores_the_invokers_environment() {
    run_child("child_setuid_launcher", |_| {});
    figure(
        "attack",
        "setuid-root program run by uid 65534 with $XDG_RUNTIME_DIR and $TMPDIR at a root-only directory: both ignored, /tmp used",
        1,
        1,
        "tests/hardening.rs::a_setuid_program_ignores_the_invokers_environment",
    );
}

#[test]
#[ignore = "run in a child process"]
fn child_setuid_launcher() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("setuid");
    let bin = scratch.subdir("bin", 0o755, 0);
    let root_only = scratch.subdir("root-only", 0o755, 0);
    // Read before the mount: once this process has a mount namespace of its own, the path of
    // the test binary may no longer lead to it (in a chroot, say).
    let binary = fs::read(std::env::current_exe().unwrap()).unwrap();
    // A file system that honours setuid bits (the scratch directory's may be mounted nosuid).
    mount_tmpfs(&bin, "mode=0755", false);
    let helper = bin.join("setuid-helper");
    fs::write(&helper, binary).unwrap();
    fs::set_permissions(&helper, fs::Permissions::from_mode(0o4755)).unwrap();
    run_child_exe(&helper, "child_setuid_helper", |cmd| {
        cmd.env("XDG_RUNTIME_DIR", &root_only)
            .env("TMPDIR", &root_only)
            .uid(NOBODY)
            .gid(NOBODY);
    });
    assert!(
        fs::read_dir(&root_only).unwrap().next().is_none(),
        "the setuid program created its directory where the invoker pointed it"
    );
}

#[test]
#[ignore = "run setuid root by child_setuid_launcher"]
fn child_setuid_helper() {
    if !in_child() {
        return;
    }
    // SAFETY: reading the ids has no preconditions.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    assert_eq!((uid, euid), (NOBODY, 0), "not running setuid root");
    let dir = PrivateDir::new().unwrap();
    println!("made {}", dir.path().display());
    assert_eq!(
        dir.path().parent(),
        Some(Path::new("/tmp")),
        "made {}",
        dir.path().display()
    );
    dir.cleanup().unwrap();
}

// ---- Symbolic links in directories others can write to --------------------------------------

/// Root's own symlink hard-linked into a sticky, world-writable directory (as any user can with
/// `fs.protected_hardlinks=0`): the link's owner says nothing of who put it there.
#[test]
fn a_symlink_in_a_directory_others_can_write_is_never_followed() {
    let scratch = Scratch::new("hardlink");
    let shared = scratch.subdir("shared", 0o1777, 0);
    let target = scratch.subdir("target", 0o755, 0);
    let original = scratch.path().join("root-link");
    symlink(&target, &original).unwrap();
    let planted = shared.join("link");
    let (from, to) = (cstring(&original), cstring(&planted));
    // SAFETY: NUL-terminated paths; linkat without AT_SYMLINK_FOLLOW links the symlink itself.
    let ret = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            0,
        )
    };
    assert_eq!(ret, 0, "hard-link the symlink");
    assert_eq!(owner(&planted), 0);

    let err = PrivateDir::in_parent(&planted).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
    assert!(err.message().contains("which others can write to"), "{err}");
    assert!(fs::read_dir(&target).unwrap().next().is_none());
    // Through a link in a directory only root can write, the same target is fine.
    let dir = PrivateDir::in_parent(&original).unwrap();
    assert_eq!(dir.path().parent().unwrap(), target);
    dir.cleanup().unwrap();

    // The user's own symlink in a sticky directory is refused as well.
    run_child_as(OTHER_UID, "child_own_symlink_in_sticky_dir", |cmd| {
        cmd.env("USOCK_TEST_DIR", scratch.path());
    });
    figure(
        "attack",
        "a symlink in a sticky world-writable directory, owned by root (hard-linked there) or by the user: not followed",
        2,
        2,
        "tests/hardening.rs::a_symlink_in_a_directory_others_can_write_is_never_followed",
    );
}

#[test]
#[ignore = "run in a child process as another user"]
fn child_own_symlink_in_sticky_dir() {
    if !in_child() {
        return;
    }
    let scratch = std::path::PathBuf::from(std::env::var_os("USOCK_TEST_DIR").unwrap());
    let mine = scratch.join("shared").join("mine");
    fs::create_dir(&mine).unwrap();
    let link = scratch.join("shared").join("my-link");
    symlink(&mine, &link).unwrap();
    let err = PrivateDir::in_parent(&link).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
    assert!(fs::read_dir(&mine).unwrap().next().is_none());
    fs::remove_file(&link).unwrap();
    fs::remove_dir(&mine).unwrap();
}

// ---- Cleanup at the descriptor limit --------------------------------------------------------

/// A socket the caller bound itself (so cleanup must list the directory), and no descriptor
/// left to open: cleanup still removes everything.
#[test]
fn cleanup_at_the_descriptor_limit_removes_everything() {
    run_child("child_cleanup_at_fd_limit", |_| {});
    figure(
        "fault",
        "cleanup with RLIMIT_NOFILE reached, of a directory holding a socket the caller bound itself: everything removed",
        1,
        1,
        "tests/hardening.rs::cleanup_at_the_descriptor_limit_removes_everything",
    );
}

#[test]
#[ignore = "run in a child process"]
fn child_cleanup_at_fd_limit() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("fdlimit");
    let dir = PrivateDir::in_parent(scratch.path()).unwrap();
    let listener = UnixListener::bind(dir.socket_path(None).unwrap()).unwrap();
    let old = limit_descriptors_to(0);
    // SAFETY: plain system call; proves the limit bites.
    let probe = unsafe { libc::dup(0) };
    assert_eq!(probe, -1, "the descriptor limit does not bite");
    let result = dir.cleanup();
    restore_descriptor_limit(old);
    result.unwrap();
    drop(listener);
    assert!(scratch.entries("").is_empty());
}

// ---- Every SYSTEM error carries its errno ---------------------------------------------------

/// The file system holding the directory is remounted read-only before cleanup: a SYSTEM error
/// whose errno is EROFS, in Rust and through the C ABI.
#[test]
fn cleanup_on_a_read_only_file_system_reports_erofs() {
    run_child("child_cleanup_erofs", |_| {});
    figure(
        "fault",
        "cleanup after the file system was remounted read-only: USOCK_ERR_SYSTEM with errno EROFS (Rust and C ABI)",
        2,
        2,
        "tests/hardening.rs::cleanup_on_a_read_only_file_system_reports_erofs",
    );
}

#[test]
#[ignore = "run in a child process"]
fn child_cleanup_erofs() {
    use usock::testing::ffi::*;
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("erofs");
    let mnt = scratch.subdir("mnt", 0o755, 0);
    mount_tmpfs(&mnt, "mode=0755", false);
    let dir = PrivateDir::in_parent(&mnt).unwrap();
    let _listener = dir.listener(None).unwrap();
    let parent = cstring(&mnt);
    let mut handle = std::ptr::null_mut();
    let mut fd = -1;
    // SAFETY: valid arguments; the handle is consumed by usock_cleanup below.
    unsafe {
        assert_eq!(usock_create_dir(parent.as_ptr(), 0, &mut handle), USOCK_OK);
        assert_eq!(
            usock_bind(handle, std::ptr::null(), 0, 0, &mut fd),
            USOCK_OK
        );
    }
    remount_read_only(&mnt);

    let err = dir.cleanup().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::System, "{err}");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    // SAFETY: a live handle, consumed here.
    assert_eq!(unsafe { usock_cleanup(handle) }, USOCK_ERR_SYSTEM);
    assert_eq!(usock_last_errno(), libc::EROFS);
}

// ---- No /proc -------------------------------------------------------------------------------

/// Umask 0777 as an ordinary user, in a mount namespace without /proc: the directory's mode is
/// set without /proc (fchmodat2); where the kernel lacks fchmodat2 too (seccomp ENOSYS or
/// EPERM), the error says that /proc is missing. (Native Linux path only: the portable path's
/// `fchmodat(AT_SYMLINK_NOFOLLOW)` is emulated by glibc through /proc; macOS and the BSDs do it
/// in the kernel. `an_ordinary_user_under_umask_0777_gets_0700_and_0600` covers both builds.)
#[test]
#[cfg(not(usock_portable))]
fn without_proc_the_mode_is_set_or_the_error_says_proc_is_missing() {
    for errno in [0, libc::ENOSYS, libc::EPERM] {
        let scratch = Scratch::new("noproc");
        let parent = scratch.subdir("parent", 0o755, OTHER_UID);
        run_child("child_no_proc", |cmd| {
            cmd.env("USOCK_TEST_ERRNO", errno.to_string());
            cmd.env("USOCK_TEST_DIR", &parent);
        });
        assert!(scratch.entries("parent").is_empty());
    }
    figure(
        "fault",
        "umask 0777 as uid 54321 with no /proc mounted: mode 0700 set through fchmodat2; with fchmodat2 refused (ENOSYS, EPERM) a clear error naming /proc, nothing left",
        3,
        3,
        "tests/hardening.rs::without_proc_the_mode_is_set_or_the_error_says_proc_is_missing",
    );
}

#[test]
#[ignore = "run in a child process"]
#[cfg(not(usock_portable))]
fn child_no_proc() {
    if !in_child() {
        return;
    }
    let errno = test_errno();
    let parent = std::path::PathBuf::from(std::env::var_os("USOCK_TEST_DIR").unwrap());
    mount_tmpfs(Path::new("/proc"), "mode=0555", false);
    // Not uid 65534: without /proc/self/uid_map, the overflow uid cannot be told from the users
    // a user namespace leaves unmapped (see without_proc_the_overflow_uid_is_refused).
    become_user(OTHER_UID);
    // SAFETY: umask only changes this child process.
    unsafe { libc::umask(0o777) };
    if errno != 0 {
        deny_syscall(452, errno); // fchmodat2
    }
    match PrivateDir::in_parent(&parent) {
        Ok(dir) => {
            assert_eq!(errno, 0, "succeeded without fchmodat2 or /proc?");
            assert_eq!(mode(dir.path()), 0o700);
            dir.cleanup().unwrap();
        }
        Err(err) => {
            assert_ne!(errno, 0, "failed although fchmodat2 works: {err}");
            assert_eq!(err.kind(), ErrorKind::System, "{err}");
            assert!(err.message().contains("/proc is not mounted"), "{err}");
            assert_eq!(err.raw_os_error(), Some(libc::ENOENT), "{err}");
        }
    }
    assert!(fs::read_dir(&parent).unwrap().next().is_none());
}

/// Without /proc, usock cannot read /proc/self/uid_map, so it cannot tell whether the overflow
/// uid (65534 here) names one user or every user the user namespace leaves unmapped: running as
/// that uid is refused with a message that says so, rather than trusted.
#[test]
#[cfg(not(usock_portable))]
fn without_proc_the_overflow_uid_is_refused() {
    let scratch = Scratch::new("noproc-nobody");
    let parent = scratch.subdir("parent", 0o700, NOBODY);
    run_child("child_no_proc_nobody", |cmd| {
        cmd.env("USOCK_TEST_DIR", &parent);
    });
    assert!(scratch.entries("parent").is_empty());
}

#[test]
#[ignore = "run in a child process"]
#[cfg(not(usock_portable))]
fn child_no_proc_nobody() {
    if !in_child() {
        return;
    }
    let parent = std::path::PathBuf::from(std::env::var_os("USOCK_TEST_DIR").unwrap());
    mount_tmpfs(Path::new("/proc"), "mode=0555", false);
    become_user(NOBODY);
    let err = PrivateDir::in_parent(&parent).expect_err("refused without /proc");
    assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
    assert!(
        err.message().contains("/proc/self/uid_map cannot be read"),
        "{err}"
    );
}

// ---- Umask and execute-only ancestors as an ordinary user -----------------------------------

/// Umask 0777 as uid 65534 (root could open a mode-000 directory anyway): the directory still
/// gets 0700 and the socket 0600, through whichever mechanism the build uses.
#[test]
fn an_ordinary_user_under_umask_0777_gets_0700_and_0600() {
    let scratch = Scratch::new("umaskuser");
    let parent = scratch.subdir("parent", 0o755, NOBODY);
    run_child_as(NOBODY, "child_umask_0777_user", |cmd| {
        cmd.env("USOCK_TEST_DIR", &parent);
        with_umask(cmd, 0o777);
    });
    assert!(scratch.entries("parent").is_empty());
}

#[test]
#[ignore = "run in a child process"]
fn child_umask_0777_user() {
    if !in_child() {
        return;
    }
    let parent = std::path::PathBuf::from(std::env::var_os("USOCK_TEST_DIR").unwrap());
    let dir = PrivateDir::in_parent(&parent).unwrap();
    let listener = dir.listener(None).unwrap();
    assert_eq!(mode(dir.path()), 0o700);
    assert_eq!(mode(&dir.path().join("sock")), 0o600);
    UnixStream::connect(dir.path().join("sock")).unwrap();
    drop(listener);
    dir.cleanup().unwrap();
}

/// Ancestors that an ordinary user may search but not read (mode 0711, as home directories
/// often are): checked by path, without opening them, on every system.
#[test]
fn execute_only_ancestors_are_checked_without_being_opened() {
    let scratch = Scratch::new("execonly");
    let locked = scratch.subdir("locked", 0o711, 0);
    let parent = locked.join("parent");
    fs::create_dir(&parent).unwrap();
    chown(&parent, NOBODY);
    // and one reached through a symlink inside the execute-only directory
    symlink("parent", locked.join("link")).unwrap();
    run_child_as(NOBODY, "child_execute_only", |cmd| {
        cmd.env("USOCK_TEST_DIR", &locked);
    });
    assert!(fs::read_dir(&parent).unwrap().next().is_none());
    figure(
        "fault",
        "execute-only (0711) ancestor as uid 65534, directly and through a symlink inside it: checked by path, directory made, nothing left",
        2,
        2,
        "tests/hardening.rs::execute_only_ancestors_are_checked_without_being_opened",
    );
}

#[test]
#[ignore = "run in a child process"]
fn child_execute_only() {
    if !in_child() {
        return;
    }
    let locked = std::path::PathBuf::from(std::env::var_os("USOCK_TEST_DIR").unwrap());
    assert!(fs::read_dir(&locked).is_err(), "the ancestor is readable");
    for parent in [locked.join("parent"), locked.join("link")] {
        let dir = PrivateDir::in_parent(&parent).unwrap();
        assert_eq!(dir.path().parent().unwrap(), locked.join("parent"));
        let _listener = dir.listener(None).unwrap();
        dir.cleanup().unwrap();
    }
}

// ---- Errors name the path that was asked for ------------------------------------------------

#[test]
fn a_missing_parent_is_named_with_the_component_that_is_missing() {
    let scratch = Scratch::new("missing");
    let asked = scratch.path().join("a/does/not/exist");
    fs::create_dir(scratch.path().join("a")).unwrap();
    let err = PrivateDir::in_parent(&asked).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::System);
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    let expected = format!(
        "cannot use {} as a parent: {} does not exist",
        asked.display(),
        scratch.path().join("a/does").display()
    );
    assert_eq!(err.message(), expected);

    let file = scratch.path().join("a/file");
    fs::write(&file, b"").unwrap();
    let err = PrivateDir::in_parent(file.join("below")).unwrap_err();
    assert!(
        err.message().starts_with(&format!(
            "cannot use {} as a parent: {} is a regular file",
            file.join("below").display(),
            file.display()
        )),
        "{err}"
    );
}

// ---- User namespaces that do not map every user ---------------------------------------------

/// The victim of the user-namespace attack and the owner of the hostile parent.
const VICTIM: u32 = 40001;
const ATTACKER: u32 = 40002;

/// In a forked child: the victim's uid, then a new user namespace; with `map` (such as
/// "65534 40001 1") written to its uid_map, or none written (`None`: nobody is mapped, and the
/// effective uid shows as the overflow uid).
fn victim_in_user_namespace(map: Option<&str>) {
    become_user(VICTIM);
    // SAFETY: a plain system call, in a single-threaded forked child.
    assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWUSER) }, 0, "unshare");
    if let Some(map) = map {
        // Dropping root left the process not dumpable, which makes /proc/self root's.
        // SAFETY: a plain system call, in a forked child.
        assert_eq!(unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1) }, 0);
        fs::write("/proc/self/uid_map", map).expect("write uid_map");
    }
    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, usock::overflow_uid());
}

/// What a child test prints when this system lets no ordinary user make a user namespace
/// (a sandbox that forbids nested ones, `kernel.unprivileged_userns_clone=0`): the test that
/// ran it then skips, saying so.
const NO_USER_NAMESPACES: &str = "skipped: an ordinary user cannot make a user namespace here";

/// In a child test: can `uid` make a user namespace here? Prints [`NO_USER_NAMESPACES`] if not.
fn user_namespaces_for(uid: u32) -> bool {
    let can = in_forked_child(move || {
        become_user(uid);
        // SAFETY: a plain system call, in a single-threaded forked child.
        let made = unsafe { libc::unshare(libc::CLONE_NEWUSER) } == 0;
        // SAFETY: leaves the child at once.
        unsafe { libc::_exit(if made { 0 } else { 1 }) };
    });
    if !can {
        println!("{NO_USER_NAMESPACES}");
    }
    can
}

/// Runs the child test `name` with `setup`; false (and says so) when it found no user
/// namespaces to test with.
fn run_userns_child(name: &str, setup: impl FnOnce(&mut std::process::Command)) -> bool {
    let out = run_child(name, setup);
    if out.contains(NO_USER_NAMESPACES) {
        eprintln!("{name}: {NO_USER_NAMESPACES}");
        return false;
    }
    true
}

/// `PrivateDir::in_parent(parent)` in a user namespace (see [`victim_in_user_namespace`]):
/// refused as unsafe, with `wanted` in the message, and nothing made in `parent`.
fn refused_in_user_namespace(map: Option<&'static str>, parent: &Path, wanted: &str) {
    let parent = parent.to_owned();
    let wanted = wanted.to_owned();
    assert!(in_forked_child(move || {
        victim_in_user_namespace(map);
        let err = PrivateDir::in_parent(&parent).expect_err("another user's parent is refused");
        assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
        assert!(err.to_string().contains(&wanted), "{err}");
        assert_eq!(fs::read_dir(&parent).unwrap().count(), 0, "nothing made");
        // `usock check`'s walk, which takes no caller check first, refuses the owner itself.
        let check = usock::explain_parent(&parent);
        let err = check.result.expect_err("explain_parent refuses it too");
        assert!(err.to_string().contains("the overflow uid"), "{err}");
    }));
}

/// The outside attack (tests/attack/unmapped_userns_accepts_another_users_parent.sh): in
/// `unshare -U` with no map, the victim's effective uid is the overflow uid, and so is the
/// owner of every file of another user. Another user's sticky, world-writable directory looked
/// like the victim's own and was accepted as a parent, where its owner could rename the
/// victim's directory away and bind in its place. Refused now, naming the reason.
#[test]
fn an_unmapped_user_namespace_refuses_another_users_parent() {
    let scratch = Scratch::new("userns");
    let evil = scratch.subdir("evil", 0o1777, ATTACKER);
    if !run_userns_child("child_unmapped_user_namespace", |cmd| {
        cmd.env("EVIL", &evil);
    }) {
        return;
    }
    figure(
        "attack",
        "in a user namespace that maps nobody (unshare -U), another user's sticky world-writable directory (which shows as owned by the overflow uid, as the caller does) given as parent: refused (Unsafe, naming /proc/self/uid_map), nothing made; also when the map covers only the overflow uid",
        2,
        2,
        "tests/hardening.rs::an_unmapped_user_namespace_refuses_another_users_parent",
    );
}

#[test]
#[ignore = "run by an_unmapped_user_namespace_refuses_another_users_parent in a child process"]
fn child_unmapped_user_namespace() {
    if !in_child() {
        return;
    }
    if !user_namespaces_for(VICTIM) {
        return;
    }
    let evil = std::path::PathBuf::from(std::env::var_os("EVIL").unwrap());
    refused_in_user_namespace(None, &evil, "/proc/self/uid_map");
    // A map that covers the overflow uid (as the victim's own) does not help: the users it
    // leaves out (the attacker, root) still show as that uid.
    refused_in_user_namespace(Some("65534 40001 1"), &evil, "/proc/self/uid_map");
}

/// A crash sweep in a user namespace that maps nobody cannot tell whose directories it finds:
/// it is refused and removes nothing (here the victim's own stale directory, left by a process
/// that died: on 0.2 the sweep ran, taking every owner it saw for the victim).
#[test]
fn a_sweep_in_an_unmapped_user_namespace_removes_nothing() {
    let scratch = Scratch::new("userns-sweep");
    let shared = scratch.subdir("shared", 0o1777, 0);
    if !run_userns_child("child_sweep_unmapped", |cmd| {
        cmd.env("SHARED", &shared);
    }) {
        return;
    }
    assert_eq!(
        scratch.entries("shared").len(),
        1,
        "the stale directory is kept"
    );
}

#[test]
#[ignore = "run by a_sweep_in_an_unmapped_user_namespace_removes_nothing in a child process"]
fn child_sweep_unmapped() {
    if !in_child() {
        return;
    }
    if !user_namespaces_for(VICTIM) {
        return;
    }
    let shared = std::path::PathBuf::from(std::env::var_os("SHARED").unwrap());
    let parent = shared.clone();
    // The victim's server dies without cleaning up: a directory with a stale socket.
    assert!(in_forked_child(move || {
        become_user(VICTIM);
        let dir = PrivateDir::in_parent(&parent).unwrap();
        let listener = dir.listener(None).unwrap();
        std::mem::forget((dir, listener));
    }));
    assert!(in_forked_child(move || {
        victim_in_user_namespace(None);
        let err = usock::sweep(Some(&shared), std::time::Duration::ZERO)
            .expect_err("a sweep that cannot tell owners apart is refused");
        assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
    }));
}

/// Cleanup after the process entered a user namespace that maps nobody: a real `nobody` made
/// the directory, then `unshare -U`; every owner now shows as its own uid. Cleanup removes the
/// socket it recorded (by device and inode) and leaves the one it did not, whose owner it can no
/// longer tell (on 0.2 it was removed as "a socket of the effective user").
#[test]
fn cleanup_in_an_unmapped_user_namespace_removes_only_what_it_recorded() {
    let scratch = Scratch::new("userns-cleanup");
    let own = scratch.subdir("own", 0o700, NOBODY);
    run_userns_child("child_cleanup_unmapped", |cmd| {
        cmd.env("OWN", &own);
    });
}

#[test]
#[ignore = "run by cleanup_in_an_unmapped_user_namespace_removes_only_what_it_recorded in a child process"]
fn child_cleanup_unmapped() {
    if !in_child() {
        return;
    }
    if !user_namespaces_for(NOBODY) {
        return;
    }
    let own = std::path::PathBuf::from(std::env::var_os("OWN").unwrap());
    assert!(in_forked_child(move || {
        become_user(NOBODY);
        let dir = PrivateDir::in_parent(&own).unwrap();
        let recorded = dir.socket_path(None).unwrap();
        let _listener = dir.listener(None).unwrap();
        let unrecorded = dir.path().join("other");
        let _other = UnixListener::bind(&unrecorded).unwrap();
        // SAFETY: a plain system call, in a single-threaded forked child.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWUSER) }, 0, "unshare");
        let _ = dir.cleanup();
        assert!(!recorded.exists(), "the recorded socket is removed");
        assert!(
            unrecorded.exists(),
            "the socket it cannot attribute is left"
        );
    }));
}

/// The control: a real `nobody` (uid 65534 in the initial user namespace, which maps every
/// uid) is the overflow uid too, and still makes private directories in its own 0700
/// directory and in /tmp.
#[test]
fn the_real_nobody_still_makes_private_directories() {
    let scratch = Scratch::new("nobody");
    let own = scratch.subdir("own", 0o700, NOBODY);
    run_child("child_real_nobody", |cmd| {
        cmd.env("OWN", &own);
    });
    assert!(scratch.entries("own").is_empty(), "cleaned up");
}

#[test]
#[ignore = "run by the_real_nobody_still_makes_private_directories in a child process"]
fn child_real_nobody() {
    if !in_child() {
        return;
    }
    let own = std::path::PathBuf::from(std::env::var_os("OWN").unwrap());
    assert!(in_forked_child(move || {
        become_user(NOBODY);
        for parent in [own.as_path(), Path::new("/tmp")] {
            let dir = PrivateDir::in_parent(parent).unwrap();
            assert_eq!(mode(dir.path()), 0o700);
            assert_eq!(owner(dir.path()), NOBODY);
            let listener = dir.listener(None).unwrap();
            UnixStream::connect(dir.socket_path(None).unwrap()).unwrap();
            drop(listener);
            dir.cleanup().unwrap();
        }
    }));
}
