//! Faults: read-only and full file systems, descriptor exhaustion at each step, a parent removed
//! between calls, signals interrupting calls, thousands of cycles on 8 threads. Each must end in
//! a clear error or success, with nothing left behind and no descriptor leaked.
//!
//! Mounts and resource limits are process-wide, so each test runs in a child process; mounts
//! are made in a private mount namespace of that child (root only, as the suite runs).

// Namespaces, mounts, seccomp and /proc: this battery runs on Linux (macOS and the BSDs
// type-check the library and the portable tests only).
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::path::Path;

use common::*;
use usock::{ErrorKind, PrivateDir};

/// The number a child test printed as `steps: N` (after libtest's `test name ... `).
fn child_steps(out: &str) -> usize {
    out.lines()
        .find_map(|l| l.split("steps: ").nth(1))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("the child printed no `steps:` line:\n{out}"))
}

/// A complete create-bind-cleanup cycle; on failure, what failed.
fn cycle(parent: &Path) -> Result<(), usock::Error> {
    let dir = PrivateDir::in_parent(parent)?;
    let listener = dir.listener(None);
    let result = listener.map(drop);
    let cleaned = dir.cleanup();
    result.and(cleaned)
}

#[test]
fn read_only_file_system() {
    run_child("child_read_only", |_| {});
    figure(
        "fault",
        "read-only parent file system: explicit parent fails with EROFS, nothing left",
        1,
        1,
        "tests/faults.rs::read_only_file_system",
    );
}

#[test]
#[ignore = "run in a child process by read_only_file_system"]
fn child_read_only() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("rofs");
    let ro = scratch.subdir("ro", 0o755, 0);
    mount_tmpfs(&ro, "mode=0755", true);
    let before = open_fds();
    let err = PrivateDir::in_parent(&ro).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::System);
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    assert!(err.message().contains(ro.to_str().unwrap()), "{err}");
    assert!(fs::read_dir(&ro).unwrap().next().is_none());
    assert_eq!(open_fds(), before);
}

#[test]
fn full_file_system() {
    let out = run_child("child_full", |_| {});
    let steps = child_steps(&out);
    figure(
        "fault",
        "file system out of inodes with 0, 1 and 2 inodes free (mkdir and bind fail with a clear ENOSPC until both fit), then out of data space (it works: directories and sockets need no data blocks on tmpfs): nothing left, no descriptor leaked",
        steps,
        steps,
        "tests/faults.rs::full_file_system",
    );
}

#[test]
#[ignore = "run in a child process by full_file_system"]
fn child_full() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("full");
    let mnt = scratch.subdir("mnt", 0o755, 0);
    // nr_inodes counts the root too; fill the rest with files, then free 0, 1 or 2 of them so
    // that mkdir, or bind, or nothing runs out.
    mount_tmpfs(&mnt, "mode=0755,nr_inodes=16,size=64k", false);
    let filler = mnt.join("filler");
    fs::create_dir(&filler).unwrap();
    let mut made = Vec::new();
    for i in 0.. {
        let f = filler.join(i.to_string());
        match fs::write(&f, b"") {
            Ok(()) => made.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
                break;
            }
        }
    }
    let before = open_fds();
    let mut steps = 0;
    for free in 0..3 {
        for f in made.drain(..free) {
            fs::remove_file(f).unwrap();
        }
        let result = cycle(&mnt);
        match free {
            0 | 1 => {
                let err = result.unwrap_err();
                assert_eq!(err.kind(), ErrorKind::System, "{free}: {err}");
                assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{free}: {err}");
            }
            _ => result.unwrap(),
        }
        let left: Vec<_> = fs::read_dir(&mnt)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["filler"], "free {free}: left {left:?}");
        assert_eq!(open_fds(), before);
        steps += 1;
        // Put the inodes back for the next step.
        for i in 0..free {
            let f = filler.join(format!("again-{free}-{i}"));
            fs::write(&f, b"").unwrap();
            made.push(f);
        }
        made.rotate_left(0);
    }
    // Out of space (blocks): a large file fills the data pages; directories and sockets need
    // none on tmpfs, so usock still works there, cleanly.
    for f in made.drain(..4) {
        fs::remove_file(f).unwrap();
    }
    let big = filler.join("big");
    let err = fs::write(&big, vec![0u8; 1 << 20]).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    cycle(&mnt).unwrap();
    assert_eq!(open_fds(), before);
    steps += 1;
    println!("steps: {steps}");
}

/// `RLIMIT_NOFILE` set so that the next descriptor fails at each step of create and bind in
/// turn: every attempt either succeeds or fails with EMFILE, leaving nothing and leaking nothing.
#[test]
fn descriptor_exhaustion_at_each_step() {
    let out = run_child("child_nofile", |_| {});
    let steps = child_steps(&out);
    figure(
        "fault",
        "RLIMIT_NOFILE set 0 to 11 descriptors above those open, one try each, through create, bind and cleanup (walk of /, parent, directory, socket, listing at cleanup): each try works or fails with EMFILE, nothing left, no descriptor leaked",
        steps,
        steps,
        "tests/faults.rs::descriptor_exhaustion_at_each_step",
    );
}

#[test]
#[ignore = "run in a child process by descriptor_exhaustion_at_each_step"]
fn child_nofile() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("nofile");
    let base = open_fds();
    let mut failures = 0;
    let mut steps = 0;
    for extra in 0..12 {
        let old = limit_descriptors_to(extra);
        let result = PrivateDir::in_parent(scratch.path()).and_then(|dir| {
            let bound = dir.listener(None).map(drop);
            let cleaned = dir.cleanup();
            bound.and(cleaned)
        });
        restore_descriptor_limit(old);
        steps += 1;
        match result {
            Ok(()) => {}
            Err(e) => {
                failures += 1;
                assert_eq!(e.kind(), ErrorKind::System, "{e}");
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
            }
        }
        assert!(
            scratch.entries("").is_empty(),
            "left behind at limit +{extra}"
        );
        assert_eq!(open_fds(), base, "descriptor leaked at limit +{extra}");
    }
    assert!(
        failures >= 3,
        "only {failures} steps failed: the limits did not bite"
    );
    assert!(failures < steps, "no step succeeded");
    println!(
        "failed with EMFILE: {failures}, succeeded: {}",
        steps - failures
    );
    println!("steps: {steps}");
}

#[test]
fn parent_removed_between_calls() {
    let scratch = Scratch::new("gone");
    let parent = scratch.subdir("p", 0o755, 0);
    let dir = PrivateDir::in_parent(&parent).unwrap();
    let path = dir.path().to_path_buf();
    fs::remove_dir_all(&parent).unwrap();
    let err = dir.listener(None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::System);
    assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    assert!(err.message().contains(path.to_str().unwrap()), "{err}");
    let err = dir.cleanup().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Changed, "{err}");
    assert!(scratch.entries("").is_empty());
    figure(
        "fault",
        "parent removed between create and bind: bind fails with ENOENT, cleanup reports the directory gone",
        1,
        1,
        "tests/faults.rs::parent_removed_between_calls",
    );
}

/// Signals delivered without SA_RESTART while cycles run: no EINTR reaches the caller.
#[test]
fn signals_interrupting_calls() {
    run_child("child_signals", |_| {});
    figure(
        "fault",
        "SIGUSR1 (no SA_RESTART) sent every 20 µs to a thread running 2000 create-bind-cleanup cycles: no EINTR reaches the caller",
        2000,
        2000,
        "tests/faults.rs::signals_interrupting_calls",
    );
}

extern "C" fn on_signal(_: libc::c_int) {}

#[test]
#[ignore = "run in a child process by signals_interrupting_calls"]
fn child_signals() {
    if !in_child() {
        return;
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    let scratch = Scratch::new("signals");
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as *const () as usize;
        action.sa_flags = 0; // no SA_RESTART: interrupted calls return EINTR
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
    let done = AtomicBool::new(false);
    let thread_id = std::sync::OnceLock::new();
    let sent = std::thread::scope(|s| {
        let worker = s.spawn(|| {
            thread_id.set(unsafe { libc::pthread_self() }).unwrap();
            for _ in 0..2000 {
                cycle(scratch.path()).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        });
        let target = *thread_id.wait();
        let mut sent = 0u64;
        while !done.load(Ordering::SeqCst) {
            unsafe { libc::pthread_kill(target, libc::SIGUSR1) };
            sent += 1;
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
        worker.join().unwrap();
        sent
    });
    assert!(sent > 100, "only {sent} signals sent");
    assert!(scratch.entries("").is_empty());
}

/// Thousands of cycles on 8 threads: unique paths, nothing left, descriptor count unchanged.
#[test]
fn thousands_of_cycles_on_eight_threads() {
    run_child("child_eight_threads", |_| {});
    figure(
        "fault",
        "8 threads × 500 create-bind-cleanup cycles at once: 4000 unique paths, nothing left, open descriptors unchanged",
        4000,
        4000,
        "tests/faults.rs::thousands_of_cycles_on_eight_threads",
    );
}

#[test]
#[ignore = "run in a child process by thousands_of_cycles_on_eight_threads"]
fn child_eight_threads() {
    if !in_child() {
        return;
    }
    let scratch = Scratch::new("eight");
    let before = open_fds();
    let paths: Vec<_> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    (0..500)
                        .map(|_| {
                            let dir = PrivateDir::in_parent(scratch.path()).unwrap();
                            let listener = dir.listener(None).unwrap();
                            let path = dir.path().to_path_buf();
                            drop(listener);
                            dir.cleanup().unwrap();
                            path
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let unique: std::collections::HashSet<_> = paths.iter().collect();
    assert_eq!(unique.len(), 4000);
    assert!(scratch.entries("").is_empty());
    assert_eq!(open_fds(), before);
}
