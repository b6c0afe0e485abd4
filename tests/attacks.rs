//! Attacks: pre-emption of names in the parent, hostile parents given explicitly or through
//! the environment, and umask extremes while other threads work. (Another user's access is in
//! tests/socket.rs, swaps at cleanup in tests/cleanup.rs.)

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use usock::{ErrorKind, PrivateDir, testing};

const FORCED: [u8; 9] = [0x5a; 9];

/// The directory name the forced bytes make, found by making (and removing) one.
fn forced_name(parent: &Path) -> String {
    testing::force_random(FORCED, 1);
    let dir = PrivateDir::in_parent(parent).unwrap();
    let name = dir
        .path()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    dir.cleanup().unwrap();
    name
}

/// Runs `f` on a thread and fails the test if it has not returned within a minute: a guard
/// against a hang, not a timing measurement.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()).unwrap());
    rx.recv_timeout(Duration::from_secs(60))
        .expect("usock did not return: it must give up after a bounded number of names")
}

#[test]
fn names_taken_in_the_parent_are_never_used_or_followed() {
    let scratch = Scratch::new("preempt");
    let name = forced_name(scratch.path());
    let elsewhere = scratch.subdir("elsewhere", 0o777, NOBODY);
    let kinds = [
        "directory owned by another user",
        "regular file",
        "symlink to a directory",
        "dangling symlink",
        "socket",
        "FIFO",
    ];
    let mut listener = None;
    for kind in kinds {
        let parent = scratch.subdir(&format!("p{}", kind.len()), 0o755, 0);
        let taken = parent.join(&name);
        match kind {
            "directory owned by another user" => {
                fs::create_dir(&taken).unwrap();
                fs::set_permissions(&taken, fs::Permissions::from_mode(0o777)).unwrap();
                chown(&taken, NOBODY);
            }
            "regular file" => fs::write(&taken, b"planted").unwrap(),
            "symlink to a directory" => symlink(&elsewhere, &taken).unwrap(),
            "dangling symlink" => symlink(parent.join("nowhere"), &taken).unwrap(),
            "socket" => listener = Some(UnixListener::bind(&taken).unwrap()),
            _ => assert_eq!(unsafe { libc::mkfifo(cstring(&taken).as_ptr(), 0o600) }, 0),
        }
        let before = fs::symlink_metadata(&taken).unwrap();
        let p = parent.clone();
        let err = within_a_minute(move || {
            testing::force_random(FORCED, usize::MAX);
            PrivateDir::in_parent(&p).unwrap_err()
        });
        assert_eq!(err.kind(), ErrorKind::Exhausted, "{kind}: {err}");
        assert!(err.message().contains("16 fresh random names"), "{err}");
        // The planted object is untouched, nothing was created through it or beside it.
        let after = fs::symlink_metadata(&taken).unwrap();
        assert_eq!(
            (before.mode(), before.uid(), before.ino()),
            (after.mode(), after.uid(), after.ino()),
            "{kind}"
        );
        assert_eq!(fs::read_dir(&parent).unwrap().count(), 1, "{kind}");
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

        // Taken a few times, then fresh: usock moves on to a new name.
        let p = parent.clone();
        let dir = within_a_minute(move || {
            testing::force_random(FORCED, 3);
            PrivateDir::in_parent(&p).unwrap()
        });
        assert_ne!(dir.path().file_name().unwrap().to_str().unwrap(), name);
        assert_eq!(mode(dir.path()), 0o700);
        dir.cleanup().unwrap();
    }
    drop(listener);
    figure(
        "attack",
        "pre-emption: the next name taken in the parent by a directory, file, symlink, dangling symlink, socket or FIFO; random source forced to repeat",
        kinds.len(),
        kinds.len(),
        "tests/attacks.rs::names_taken_in_the_parent_are_never_used_or_followed",
    );
}

use std::os::unix::fs::MetadataExt;

/// The hostile parents of the battery, each made in `scratch`: (what, path, the directory the
/// message must name).
fn hostile_parents(scratch: &Scratch) -> Vec<(&'static str, PathBuf, PathBuf)> {
    let world = scratch.subdir("world", 0o777, 0);
    let group = scratch.subdir("group", 0o770, 0);
    let other = scratch.subdir("other", 0o700, NOBODY);
    let ancestor = scratch.subdir("ancestor", 0o777, 0);
    let below = ancestor.join("below");
    fs::create_dir(&below).unwrap();
    let safe = scratch.subdir("safe", 0o755, 0);
    let planted = scratch.path().join("planted");
    symlink(&safe, &planted).unwrap();
    chown(&planted, NOBODY);
    let other_ancestor = scratch.subdir("theirs", 0o755, OTHER_UID);
    let deep = other_ancestor.join("mine");
    fs::create_dir(&deep).unwrap();
    vec![
        (
            "world-writable without the sticky bit",
            world.clone(),
            world,
        ),
        (
            "group-writable without the sticky bit",
            group.clone(),
            group,
        ),
        ("owned by another user", other.clone(), other),
        ("an unsafe ancestor", below, ancestor),
        (
            "a symlink planted by another user",
            planted.clone(),
            planted,
        ),
        ("an ancestor owned by another user", deep, other_ancestor),
    ]
}

/// None of the hostile parents (the planted symlink's target included) received anything.
fn nothing_created_in(parents: &[(&'static str, PathBuf, PathBuf)]) {
    for (what, parent, _) in parents {
        let entries: Vec<_> = fs::read_dir(parent).unwrap().collect();
        assert!(entries.is_empty(), "{what}: {parent:?} holds {entries:?}");
    }
}

#[test]
fn hostile_parents_given_explicitly_are_refused() {
    let scratch = Scratch::new("hostile-explicit");
    let parents = hostile_parents(&scratch);
    for (what, parent, named) in &parents {
        let err = PrivateDir::in_parent(parent).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsafe, "{what}: {err}");
        assert!(
            err.message().contains(named.to_str().unwrap()),
            "{what}: {err}"
        );
    }
    nothing_created_in(&parents);
    figure(
        "attack",
        "hostile explicit parent: world- or group-writable without sticky bit, another user's, unsafe ancestor, planted symlink, another user's ancestor",
        parents.len(),
        parents.len(),
        "tests/attacks.rs::hostile_parents_given_explicitly_are_refused",
    );
}

#[test]
fn hostile_parents_in_the_environment_are_skipped() {
    let scratch = Scratch::new("hostile-env");
    let parents = hostile_parents(&scratch);
    for (what, parent, _) in &parents {
        for var in ["XDG_RUNTIME_DIR", "TMPDIR"] {
            let out = run_child("child_automatic_parent", |cmd| {
                cmd.env_remove("XDG_RUNTIME_DIR")
                    .env_remove("TMPDIR")
                    .env(var, parent);
            });
            assert!(out.contains("chose /tmp"), "{what} in ${var}: {out}");
        }
    }
    nothing_created_in(&parents);
    figure(
        "attack",
        "hostile parent in $XDG_RUNTIME_DIR or $TMPDIR (the same six kinds): skipped, /tmp used",
        parents.len() * 2,
        parents.len() * 2,
        "tests/attacks.rs::hostile_parents_in_the_environment_are_skipped",
    );
}

/// How one public constructor of a private directory (Rust or C) fares with `parent`.
type Constructor = (&'static str, fn(&Path) -> Result<(), String>);

/// The C exports' outcome as a result: `Ok` (the directory is cleaned up at once), or the
/// error's code and message.
fn c_outcome(rc: i32, out: *mut usock::testing::ffi::UsockDir) -> Result<(), String> {
    use usock::testing::ffi::*;
    if rc == USOCK_OK {
        assert_eq!(unsafe { usock_cleanup(out) }, USOCK_OK);
        return Ok(());
    }
    let message = unsafe { std::ffi::CStr::from_ptr(usock_last_error()) };
    Err(format!("code {rc}: {}", message.to_string_lossy()))
}

fn rust_outcome(made: usock::Result<PrivateDir>) -> Result<(), String> {
    match made {
        Ok(dir) => {
            dir.cleanup().unwrap();
            Ok(())
        }
        Err(e) => Err(format!("{:?}: {}", e.kind(), e.message())),
    }
}

/// Every public way to make a new private directory in an explicit parent: the Rust
/// constructors (with and without long paths, with and without a group) and both C exports
/// (with and without `USOCK_LONG_PATHS`). The group is the caller's own effective group, so
/// that only the parent decides.
fn every_constructor() -> Vec<Constructor> {
    use usock::DirOptions;
    use usock::testing::ffi::*;
    fn own_group() -> u32 {
        unsafe { libc::getegid() }
    }
    fn c_dir(parent: &Path, flags: u32) -> Result<(), String> {
        let mut out = std::ptr::null_mut();
        let rc = unsafe { usock_create_dir(cstring(parent).as_ptr(), flags, &mut out) };
        c_outcome(rc, out)
    }
    fn c_shared(parent: &Path, flags: u32) -> Result<(), String> {
        let mut out = std::ptr::null_mut();
        let rc = unsafe {
            usock_create_shared_dir(cstring(parent).as_ptr(), own_group(), flags, &mut out)
        };
        c_outcome(rc, out)
    }
    vec![
        ("in_parent", |p| rust_outcome(PrivateDir::in_parent(p))),
        ("create", |p| rust_outcome(PrivateDir::create(Some(p)))),
        ("create_with(default)", |p| {
            rust_outcome(PrivateDir::create_with(Some(p), &DirOptions::default()))
        }),
        ("create_with(long_paths)", |p| {
            let options = DirOptions::default().long_paths(true);
            rust_outcome(PrivateDir::create_with(Some(p), &options))
        }),
        ("create_with(group)", |p| {
            let options = DirOptions::default().share_with_group(own_group());
            rust_outcome(PrivateDir::create_with(Some(p), &options))
        }),
        ("create_with(long_paths, group)", |p| {
            let options = DirOptions::default()
                .long_paths(true)
                .share_with_group(own_group());
            rust_outcome(PrivateDir::create_with(Some(p), &options))
        }),
        ("shared_with_group", |p| {
            rust_outcome(PrivateDir::shared_with_group(Some(p), own_group()))
        }),
        ("usock_create_dir(0)", |p| c_dir(p, 0)),
        ("usock_create_dir(USOCK_LONG_PATHS)", |p| {
            c_dir(p, USOCK_LONG_PATHS)
        }),
        ("usock_create_shared_dir(0)", |p| c_shared(p, 0)),
        ("usock_create_shared_dir(USOCK_LONG_PATHS)", |p| {
            c_shared(p, USOCK_LONG_PATHS)
        }),
    ]
}

/// The one constructor path (PrivateDir::build, ffi::dir::create_dir) keeps the parent checks
/// for every public constructor and both C exports, whatever the options: each hostile parent
/// is refused as unsafe, named in the message, and receives nothing. (The battery above tries
/// `in_parent` only.)
#[test]
fn hostile_parents_are_refused_by_every_constructor_and_both_c_exports() {
    let scratch = Scratch::new("hostile-every");
    let parents = hostile_parents(&scratch);
    let safe = scratch.subdir("control", 0o755, 0);
    let constructors = every_constructor();
    for (how, make) in &constructors {
        make(&safe).unwrap_or_else(|e| panic!("{how} in a safe parent: {e}"));
        for (what, parent, named) in &parents {
            let err = make(parent).expect_err(&format!("{how} accepted {what}"));
            assert!(
                err.starts_with("Unsafe:") || err.starts_with("code -3:"),
                "{how}, {what}: {err}"
            );
            assert!(
                err.contains(named.to_str().unwrap()),
                "{how}, {what}: {err}"
            );
        }
    }
    nothing_created_in(&parents);
    assert_eq!(
        fs::read_dir(&safe).unwrap().count(),
        0,
        "cleanup left something"
    );
    figure(
        "attack",
        "hostile explicit parent (the six kinds) through every public constructor and both C exports, with and without long paths and a group",
        parents.len() * constructors.len(),
        parents.len() * constructors.len(),
        "tests/attacks.rs::hostile_parents_are_refused_by_every_constructor_and_both_c_exports",
    );
}

/// Every shared constructor (Rust and C, explicit and automatic parent) checks the group's
/// membership before anything is made: run as another user with no supplementary groups,
/// sharing with group 0 fails as invalid and neither the explicit parent nor the automatic one
/// ($TMPDIR) receives anything.
#[test]
fn every_shared_constructor_checks_membership_before_making_anything() {
    let scratch = Scratch::new("not-member");
    let explicit = scratch.subdir("explicit", 0o700, OTHER_UID);
    let automatic = scratch.subdir("automatic", 0o700, OTHER_UID);
    let out = run_child_as(OTHER_UID, "child_shared_not_member", |cmd| {
        cmd.env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", &automatic)
            .env("USOCK_TEST_PARENT", &explicit);
    });
    assert!(out.contains("refused 10"), "{out}");
    for parent in [&explicit, &automatic] {
        let entries: Vec<_> = fs::read_dir(parent).unwrap().collect();
        assert!(entries.is_empty(), "{parent:?} holds {entries:?}");
    }
}

#[test]
#[ignore = "run in a child process by every_shared_constructor_checks_membership_before_making_anything"]
fn child_shared_not_member() {
    use usock::DirOptions;
    use usock::testing::ffi::*;
    if !in_child() {
        return;
    }
    let explicit = PathBuf::from(std::env::var_os("USOCK_TEST_PARENT").unwrap());
    let mut refused = 0;
    for parent in [Some(explicit.as_path()), None] {
        let shared = DirOptions::default().share_with_group(0);
        let long = shared.clone().long_paths(true);
        for made in [
            PrivateDir::shared_with_group(parent, 0),
            PrivateDir::create_with(parent, &shared),
            PrivateDir::create_with(parent, &long),
        ] {
            let err = made.expect_err("shared with a group the caller is not in");
            assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
            assert!(err.message().contains("not a member"), "{err}");
            refused += 1;
        }
        let c_parent = parent.map(cstring);
        let ptr = c_parent.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        for flags in [0, USOCK_LONG_PATHS] {
            let mut out = std::ptr::null_mut();
            let rc = unsafe { usock_create_shared_dir(ptr, 0, flags, &mut out) };
            assert_eq!(rc, USOCK_ERR_INVALID, "{}", last_c_error());
            assert!(
                last_c_error().contains("not a member"),
                "{}",
                last_c_error()
            );
            assert!(out.is_null(), "a failed call wrote out_dir");
            refused += 1;
        }
    }
    println!("refused {refused}");
}

fn last_c_error() -> String {
    let message = unsafe { std::ffi::CStr::from_ptr(usock::testing::ffi::usock_last_error()) };
    message.to_string_lossy().into_owned()
}

#[test]
#[ignore = "run in a child process by hostile_parents_in_the_environment_are_skipped"]
fn child_automatic_parent() {
    if !in_child() {
        return;
    }
    let dir = PrivateDir::new().unwrap();
    println!("chose {}", dir.path().parent().unwrap().display());
    dir.cleanup().unwrap();
}

/// Under each umask, while other threads create files, the modes are exactly 0700 and 0600 and
/// the process umask is what it was.
#[test]
fn umask_extremes_while_other_threads_create_files() {
    let masks = [0o000, 0o022, 0o077, 0o777];
    for mask in masks {
        run_child("child_umask_with_threads", |cmd| {
            with_umask(cmd, mask);
            cmd.env("USOCK_TEST_UMASK", format!("{mask:o}"));
        });
    }
    figure(
        "attack",
        "umask 0, 022, 077, 0777 while 4 other threads create files: 200 directories (0700) and sockets (0600) each, process umask unchanged",
        masks.len() * 200,
        masks.len() * 200,
        "tests/attacks.rs::umask_extremes_while_other_threads_create_files",
    );
}

#[test]
#[ignore = "run in a child process by umask_extremes_while_other_threads_create_files"]
fn child_umask_with_threads() {
    if !in_child() {
        return;
    }
    let mask = u32::from_str_radix(&std::env::var("USOCK_TEST_UMASK").unwrap(), 8).unwrap();
    let scratch = Scratch::new("umask-threads");
    let busy = scratch.subdir("busy", 0o777, 0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (busy, stop) = (&busy, &stop);
            s.spawn(move || {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let f = busy.join(format!("{t}-{i}"));
                    fs::write(&f, b"x").unwrap();
                    fs::remove_file(&f).unwrap();
                    i += 1;
                }
            });
        }
        for _ in 0..200 {
            let dir = PrivateDir::in_parent(scratch.path()).unwrap();
            let listener = dir.listener(None).unwrap();
            assert_eq!(mode(dir.path()), 0o700);
            assert_eq!(mode(&dir.socket_path(None).unwrap()), 0o600);
            drop(listener);
            dir.cleanup().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let now = unsafe { libc::umask(0o022) };
    assert_eq!(now as u32, mask, "the process umask changed");
}
