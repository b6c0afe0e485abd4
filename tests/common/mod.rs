//! Helpers shared by the integration tests.
//!
//! Process-wide state (umask, environment, uid, descriptor counts) is never changed in a test
//! thread: such tests re-run this test binary as a child process that runs exactly one
//! `#[ignore]`d test, with the state set by `Command` before `exec`.
#![allow(dead_code)]

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Set in the environment of a child run by [`run_child`]; child tests do nothing without it.
pub const CHILD_ENV: &str = "USOCK_TEST_CHILD";

/// An unprivileged user that exists on every Debian system.
pub const NOBODY: u32 = 65534;
/// A second unprivileged uid with no passwd entry.
pub const OTHER_UID: u32 = 54321;

/// True inside a child started by [`run_child`].
pub fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Runs the `#[ignore]`d test `name` of this binary in a child process, after `setup` has
/// adjusted the command (environment, umask through `pre_exec`...). Panics with the child's
/// output if it fails.
pub fn run_child(name: &str, setup: impl FnOnce(&mut Command)) -> String {
    run_child_exe(&std::env::current_exe().unwrap(), name, setup)
}

/// [`run_child`] as another user (groups cleared, gid = uid). The test binary is copied to a
/// scratch directory first: where the checkout lives (under `/root`, say) another user may not
/// be able to reach it.
pub fn run_child_as(uid: u32, name: &str, setup: impl FnOnce(&mut Command)) -> String {
    use std::os::unix::process::CommandExt;
    let place = Scratch::new("exe");
    let exe = place.path().join("test-binary");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    run_child_exe(&exe, name, |cmd| {
        cmd.uid(uid).gid(uid);
        setup(cmd);
    })
}

/// The command that runs only the `#[ignore]`d test `name` of the test binary `exe`, as a child
/// (with [`CHILD_ENV`] set).
pub fn child_command(exe: &Path, name: &str) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args([
        name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1");
    cmd
}

/// [`run_child`] with another copy of the test binary (a setuid one, say).
pub fn run_child_exe(exe: &Path, name: &str, setup: impl FnOnce(&mut Command)) -> String {
    let mut cmd = child_command(exe, name);
    cmd.env("RUST_BACKTRACE", "1");
    setup(&mut cmd);
    // A copy just written (run_child_as) can be briefly "busy" (ETXTBSY): a child that another
    // test thread forked at that moment holds the write descriptor until it execs.
    let mut tries = 0;
    let out = loop {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            result => break result.expect("run the test binary as a child"),
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "child test {name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

/// Sets the child's umask before it runs.
pub fn with_umask(cmd: &mut Command, mask: u32) {
    // SAFETY: umask is async-signal-safe and touches nothing but the child's own state.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask as libc::mode_t);
            Ok(())
        });
    }
}

/// The permission bits of `path` itself (not a symlink's target).
pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

pub fn owner(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().uid()
}

/// A scratch directory for one test, under `/tmp`, made safe (0755, root) and removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).unwrap();
        let hex = u64::from_ne_bytes(random);
        let path = PathBuf::from(format!("/tmp/usock-test-{tag}-{hex:016x}"));
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A subdirectory with `mode`, owned by `uid`.
    pub fn subdir(&self, name: &str, mode: u32, uid: u32) -> PathBuf {
        let path = self.0.join(name);
        fs::create_dir(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        chown(&path, uid);
        path
    }

    /// The names in the scratch directory's subdirectory `sub` (or itself for "").
    pub fn entries(&self, sub: &str) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.0.join(sub))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

pub fn cstring(path: &Path) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

/// The number of descriptors this process has open.
pub fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd").unwrap().count()
}

/// What another user sees: forks, drops privileges to `uid` (groups cleared, gid = uid), and
/// reports the errno of each step (0: it worked): connecting to `socket`, listing `dir`,
/// creating a file in `dir`, entering `dir` (looking up `dir/.`). Only async-signal-safe calls run in the child, on buffers made
/// before `fork`.
#[derive(Debug, PartialEq, Eq)]
pub struct Access {
    pub connect: i32,
    pub list_dir: i32,
    pub create_file: i32,
    pub enter_dir: i32,
}

pub fn access_as(uid: u32, dir: &Path, socket: &Path) -> Access {
    let dir_c = cstring(dir);
    let file_c = cstring(&dir.join("intruder"));
    let inside_c = cstring(&dir.join("."));
    let socket_bytes = cstring(socket);
    // SAFETY: zeroed sockaddr_un is valid; filled before fork.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(socket_bytes.as_bytes()) {
        *d = *s as libc::c_char;
    }
    let mut pipe = [0; 2];
    // SAFETY: plain system calls; the child only makes async-signal-safe calls and _exits.
    unsafe {
        assert_eq!(libc::pipe(pipe.as_mut_ptr()), 0);
        let pid = libc::fork();
        assert!(pid >= 0);
        if pid == 0 {
            libc::close(pipe[0]);
            let errno = || std::io::Error::last_os_error().raw_os_error().unwrap_or(-1);
            let mut result = [0i32; 4];
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(uid) != 0
                || libc::setuid(uid) != 0
                || libc::geteuid() != uid
            {
                libc::_exit(99);
            }
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            result[0] = if libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) == 0 {
                0
            } else {
                errno()
            };
            let d = libc::open(dir_c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            result[1] = if d >= 0 { 0 } else { errno() };
            let f = libc::open(
                file_c.as_ptr(),
                libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL,
                0o600,
            );
            result[2] = if f >= 0 { 0 } else { errno() };
            let mut st: libc::stat = std::mem::zeroed();
            result[3] = if libc::stat(inside_c.as_ptr(), &mut st) == 0 {
                0
            } else {
                errno()
            };
            libc::write(
                pipe[1],
                result.as_ptr().cast(),
                std::mem::size_of_val(&result),
            );
            libc::_exit(0);
        }
        libc::close(pipe[1]);
        let mut result = [0i32; 4];
        let n = libc::read(
            pipe[0],
            result.as_mut_ptr().cast(),
            std::mem::size_of_val(&result),
        );
        libc::close(pipe[0]);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child could not drop privileges to uid {uid} (status {status})"
        );
        assert_eq!(n as usize, std::mem::size_of_val(&result));
        Access {
            connect: result[0],
            list_dir: result[1],
            create_file: result[2],
            enter_dir: result[3],
        }
    }
}

/// Records one row of SECURITY.md's figures when `$USOCK_FIGURES` names a file (the Makefile
/// sets it): category, what was tried, how many times, how many held, and the test's name.
/// Called after the test's assertions passed, so a row is only written for a check that held.
pub fn figure(category: &str, what: &str, tried: usize, held: usize, test: &str) {
    use std::io::Write;
    if let Some(path) = std::env::var_os("USOCK_FIGURES") {
        let line = format!("{category}\t{what}\t{tried}\t{held}\t{test}\n");
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(line.as_bytes()).unwrap();
    }
}

/// In a child process: a private mount namespace (mounts made now stay in this process and its
/// children).
#[cfg(target_os = "linux")]
pub fn private_mount_namespace() {
    // SAFETY: plain system calls, in a child process made for this.
    unsafe {
        assert_eq!(
            libc::unshare(libc::CLONE_NEWNS),
            0,
            "unshare a mount namespace"
        );
        let null = std::ptr::null();
        let private = libc::MS_REC | libc::MS_PRIVATE;
        assert_eq!(
            libc::mount(c"none".as_ptr(), c"/".as_ptr(), null, private, null.cast()),
            0
        );
    }
}

/// In a child process: a private mount namespace and a tmpfs with `options` at `target`.
#[cfg(target_os = "linux")]
pub fn mount_tmpfs(target: &Path, options: &str, read_only: bool) {
    private_mount_namespace();
    mount_tmpfs_here(target, options, read_only);
}

/// A tmpfs with `options` at `target`, in the mount namespace the process already has.
#[cfg(target_os = "linux")]
pub fn mount_tmpfs_here(target: &Path, options: &str, read_only: bool) {
    let target_c = cstring(target);
    let data = CString::new(options).unwrap();
    let flags = if read_only { libc::MS_RDONLY } else { 0 };
    let fs = c"tmpfs".as_ptr();
    // SAFETY: NUL-terminated strings; a plain system call.
    let ret = unsafe { libc::mount(fs, target_c.as_ptr(), fs, flags, data.as_ptr().cast()) };
    assert_eq!(ret, 0, "mount tmpfs at {target:?}");
}

/// Remounts the file system at `target` read-only.
#[cfg(target_os = "linux")]
pub fn remount_read_only(target: &Path) {
    let target_c = cstring(target);
    let flags = libc::MS_REMOUNT | libc::MS_RDONLY;
    let null = std::ptr::null();
    // SAFETY: NUL-terminated string; a plain system call.
    let ret = unsafe { libc::mount(null, target_c.as_ptr(), null, flags, null.cast()) };
    assert_eq!(ret, 0, "remount {target:?} read-only");
}

/// In a child process: from now on, system call `nr` fails with `errno` in this thread (a
/// seccomp filter, as a container runtime or an old kernel would have it).
#[cfg(target_os = "linux")]
pub fn deny_syscall(nr: libc::c_long, errno: i32) {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, sock_filter};
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    // seccomp_data: nr at offset 0, arch at offset 4.
    let filter = [
        stmt(BPF_LD | BPF_W | BPF_ABS, 4),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(BPF_LD | BPF_W | BPF_ABS, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, 0, 1),
        stmt(
            BPF_RET | BPF_K,
            libc::SECCOMP_RET_ERRNO | (errno as u32 & libc::SECCOMP_RET_DATA),
        ),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut sock_filter,
    };
    // SAFETY: prog points to a valid filter that outlives the call (the kernel copies it).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        assert_eq!(
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const libc::sock_fprog
            ),
            0,
            "install a seccomp filter"
        );
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
const AUDIT_ARCH: u32 = 0xc000_00b7;

/// In a child process: drops root to `uid` (groups cleared, gid = uid), for good.
pub fn become_user(uid: u32) {
    // SAFETY: plain system calls; glibc applies them to every thread of the process.
    unsafe {
        assert_eq!(libc::setgroups(0, std::ptr::null()), 0);
        assert_eq!(libc::setgid(uid), 0);
        assert_eq!(libc::setuid(uid), 0);
    }
}

/// Runs `f` in a forked child and says whether it returned normally (a panic or an assertion
/// that fails there is reported as `false`, never unwound into the caller). Call it only from a
/// single-threaded process, such as a child made by [`run_child`].
pub fn in_forked_child(f: impl FnOnce()) -> bool {
    // SAFETY: the caller promises a single-threaded process.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
        // SAFETY: leaves the child at once, running no destructor or exit handler of the parent's.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    wait_ok(pid)
}

/// Waits for child `pid`; true when it exited with status 0.
pub fn wait_ok(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: plain system call on our own child.
    let ret = unsafe { libc::waitpid(pid, &mut status, 0) };
    ret == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

/// The descriptor numbers open now, probed with `fcntl` (which opens nothing itself).
pub fn open_fd_numbers() -> Vec<u64> {
    (0..4096)
        // SAFETY: F_GETFD only reads the descriptor's flags.
        .filter(|&fd| unsafe { libc::fcntl(fd as libc::c_int, libc::F_GETFD) } >= 0)
        .collect()
}

/// Sets `RLIMIT_NOFILE` so that exactly `free` more descriptors can be opened (inherited
/// descriptors may sit anywhere, so the gaps are counted); returns the old limit.
pub fn limit_descriptors_to(free: u64) -> libc::rlimit {
    let open = open_fd_numbers();
    let mut seen = 0;
    let limit = (0..)
        .find(|n| {
            if seen == free {
                return true;
            }
            if !open.contains(n) {
                seen += 1;
            }
            false
        })
        .unwrap();
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls with valid pointers.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut old);
        let lim = libc::rlimit {
            rlim_cur: limit as _,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    old
}

pub fn restore_descriptor_limit(old: libc::rlimit) {
    // SAFETY: plain system call with a valid pointer.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) }, 0);
}
