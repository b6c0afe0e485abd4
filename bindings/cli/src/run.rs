//! `usock run`: bind a listening socket, start a command with it as descriptor 3 under the
//! socket-activation protocol, pass on SIGTERM and SIGHUP, wait, clean up, and exit with the
//! command's status.
//!
//! `std::process::Command` cannot do it: the environment is fixed before `fork`, and
//! `LISTEN_PID` must be the pid of the command itself. So the command is started by hand: every
//! allocation (argument vector, environment, the path found on `PATH`) happens before `fork`, and
//! the child only fills the digits of `LISTEN_PID` into a buffer made for them, resets its
//! signals, moves the socket to descriptor 3, closes every other descriptor above 2, and calls
//! `execve`. This is the one file of the command with `unsafe` in it.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use usock::{BindMode, BoundPath, PrivateDir, SocketType};

/// Where `usock run` listens: a private directory (in `parent`) or a well-known `path`.
pub struct Place {
    name: String,
    parent: Option<PathBuf>,
    path: Option<PathBuf>,
    replace: bool,
}

impl Place {
    pub fn new(
        name: String,
        parent: Option<PathBuf>,
        path: Option<PathBuf>,
        replace: bool,
    ) -> Place {
        Place {
            name,
            parent,
            path,
            replace,
        }
    }
}

/// What is bound, kept until the command is done, then cleaned up.
enum Bound {
    Dir(PrivateDir),
    Path(BoundPath),
}

impl Bound {
    fn clean(self) -> usock::Result<()> {
        match self {
            Bound::Dir(dir) => dir.cleanup(),
            Bound::Path(bound) => bound.unbind(),
        }
    }
}

pub fn run(place: Place, command: Vec<OsString>) -> usock::Result<ExitCode> {
    let (bound, socket, socket_path, dir_path) = match &place.path {
        Some(path) => {
            let mode = if place.replace {
                BindMode::Replace
            } else {
                BindMode::Exclusive
            };
            let (bound, fd) = BoundPath::bind(path, SocketType::Stream, None, mode)?;
            let path = bound.path().to_owned();
            let dir = path.parent().map(Path::to_owned).unwrap_or_default();
            (Bound::Path(bound), fd, path, dir)
        }
        None => {
            let dir = PrivateDir::create(place.parent.as_deref())?;
            let fd = dir.bind(Some(place.name.as_ref()), SocketType::Stream, None)?;
            let path = dir.socket_path(Some(place.name.as_ref()))?;
            let dir_path = dir.path().to_owned();
            (Bound::Dir(dir), fd, path, dir_path)
        }
    };
    let status = match Launch::prepare(&command, &place.name, &socket_path, &dir_path) {
        Ok(launch) => launch.start_and_wait(socket),
        Err(code) => {
            drop(socket);
            code
        }
    };
    if let Err(e) = bound.clean() {
        eprintln!("usock: {}", e.message());
    }
    Ok(status)
}

/// Everything `execve` needs, made before `fork`.
struct Launch {
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    /// Index in `env` of `LISTEN_PID=` followed by room for the digits.
    listen_pid: usize,
}

const LISTEN_PID: &[u8] = b"LISTEN_PID=";
/// Room for the digits of any pid.
const PID_DIGITS: usize = 20;

impl Launch {
    fn prepare(
        command: &[OsString],
        name: &str,
        socket_path: &Path,
        dir_path: &Path,
    ) -> Result<Launch, ExitCode> {
        let cstring = |s: &OsStr| CString::new(s.as_bytes()).map_err(|_| ExitCode::from(2));
        let program = find_program(&command[0]).ok_or_else(|| {
            eprintln!(
                "usock: {}: command not found",
                Path::new(&command[0]).display()
            );
            ExitCode::from(127)
        })?;
        let program = cstring(program.as_os_str())?;
        let argv = command
            .iter()
            .map(|a| cstring(a))
            .collect::<Result<Vec<_>, _>>()?;
        let ours = [
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
            "USOCK_PATH",
            "USOCK_DIR",
        ];
        let mut env: Vec<CString> = std::env::vars_os()
            .filter(|(k, _)| !ours.iter().any(|o| k == OsStr::new(o)))
            .map(|(k, v)| {
                let mut kv = k.into_vec();
                kv.push(b'=');
                kv.extend(v.into_vec());
                cstring(OsStr::from_bytes(&kv))
            })
            .collect::<Result<_, _>>()?;
        let assign = |k: &str, v: &[u8]| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v);
            cstring(OsStr::from_bytes(&kv))
        };
        env.push(assign("LISTEN_FDS", b"1")?);
        env.push(assign("LISTEN_FDNAMES", name.as_bytes())?);
        env.push(assign("USOCK_PATH", socket_path.as_os_str().as_bytes())?);
        env.push(assign("USOCK_DIR", dir_path.as_os_str().as_bytes())?);
        // "LISTEN_PID=" and 20 bytes the child overwrites with its pid and a NUL.
        let mut placeholder = LISTEN_PID.to_vec();
        placeholder.extend(std::iter::repeat_n(b'0', PID_DIGITS));
        env.push(CString::new(placeholder).expect("no NUL"));
        let listen_pid = env.len() - 1;
        Ok(Launch {
            program,
            argv,
            env,
            listen_pid,
        })
    }

    /// Forks, starts the command in the child, and waits for it in the parent, passing on
    /// SIGTERM and SIGHUP. Returns the command's status as an exit code.
    fn start_and_wait(self, socket: OwnedFd) -> ExitCode {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let pid_slot = self.env[self.listen_pid].as_ptr() as *mut u8;

        // A pipe on which the child reports a failed execve (close-on-exec: closed by a
        // successful one).
        let mut pipe = [-1; 2];
        // SAFETY: pipe is a valid array of two ints.
        if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
            eprintln!(
                "usock: cannot make a pipe: {}",
                std::io::Error::last_os_error()
            );
            return ExitCode::from(18);
        }
        // SAFETY: the two descriptors were just made and are ours.
        let (err_read, err_write) =
            unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
        for fd in [&err_read, &err_write] {
            // SAFETY: plain fcntl on our descriptors.
            unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }

        // The signals the parent waits for with sigwait, blocked before fork so none is lost;
        // the child unblocks everything before exec.
        let waited = signal_set(&[libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGCHLD]);
        // SAFETY: both sets are valid; the old mask is not needed (the process exits after).
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &waited, std::ptr::null_mut()) };

        // SAFETY: the child calls only async-signal-safe functions on memory prepared above.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            eprintln!("usock: cannot fork: {}", std::io::Error::last_os_error());
            return ExitCode::from(18);
        }
        if pid == 0 {
            // SAFETY: in the child; see child() for what it does.
            unsafe {
                child(
                    socket.as_raw_fd(),
                    err_write.as_raw_fd(),
                    pid_slot.add(LISTEN_PID.len()),
                    self.program.as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                )
            }
        }
        drop(socket); // the command has it now
        drop(err_write);
        let mut errno = [0u8; 4];
        // SAFETY: reading into a buffer of 4 bytes from our descriptor.
        let n = unsafe { libc::read(err_read.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
        if n == 4 {
            let errno = i32::from_ne_bytes(errno);
            let _ = wait_for(pid);
            eprintln!(
                "usock: cannot execute {}: {}",
                self.program.to_string_lossy(),
                std::io::Error::from_raw_os_error(errno)
            );
            return ExitCode::from(if errno == libc::ENOENT { 127 } else { 126 });
        }
        loop {
            if let Some(status) = reap(pid, libc::WNOHANG) {
                return status;
            }
            let mut sig: libc::c_int = 0;
            // SAFETY: waited is a valid set; sig a valid out-pointer.
            if unsafe { libc::sigwait(&waited, &mut sig) } != 0 {
                continue;
            }
            match sig {
                // Passed on. SIGINT is not: a terminal sends it to the whole foreground
                // process group, the command included, and a second one is a hard stop for
                // some servers (gunicorn).
                libc::SIGTERM | libc::SIGHUP => {
                    // SAFETY: plain kill of our child.
                    unsafe { libc::kill(pid, sig) };
                }
                _ => {}
            }
        }
    }
}

/// The child, between `fork` and `execve`: async-signal-safe calls only.
///
/// # Safety
/// Call only in the child of `fork`, with pointers prepared before it.
unsafe fn child(
    socket: libc::c_int,
    err_write: libc::c_int,
    digits: *mut u8,
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> ! {
    unsafe {
        // Dispositions back to default (ignored ones survive exec otherwise), then an empty mask.
        for sig in 1..max_signal() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                default_disposition(sig);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        // LISTEN_PID: this process's pid, written into the room left for it.
        let mut pid = libc::getpid() as u64;
        let mut tmp = [0u8; PID_DIGITS];
        let mut n = 0;
        loop {
            tmp[n] = b'0' + (pid % 10) as u8;
            n += 1;
            pid /= 10;
            if pid == 0 {
                break;
            }
        }
        for i in 0..n {
            *digits.add(i) = tmp[n - 1 - i];
        }
        *digits.add(n) = 0;

        // The socket to descriptor 3, without close-on-exec; the error pipe above every other.
        let mut report = err_write;
        if report == 3 {
            report = libc::fcntl(report, libc::F_DUPFD_CLOEXEC, 4);
        }
        if socket == 3 {
            libc::fcntl(3, libc::F_SETFD, 0);
        } else {
            libc::dup2(socket, 3); // dup2 clears close-on-exec on the copy
        }
        close_from(4, report);

        libc::execve(program, argv, envp);
        let errno = *errno_location();
        let bytes = errno.to_ne_bytes();
        libc::write(report, bytes.as_ptr().cast(), 4);
        libc::_exit(127);
    }
}

/// Closes every descriptor from `first` up, except `keep` (close-on-exec already).
///
/// # Safety
/// Only in the child before `execve`.
unsafe fn close_from(first: libc::c_int, keep: libc::c_int) {
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0
            && limit.rlim_cur != libc::RLIM_INFINITY
        {
            limit.rlim_cur.min(1 << 20) as libc::c_int
        } else {
            1 << 16
        };
        for fd in first..max {
            if fd != keep {
                libc::close(fd);
            }
        }
    }
}

/// Sets `sig` back to its default action. On Linux through the system call itself: the C
/// library refuses to touch the real-time signals it keeps for itself (32 and 33), which an
/// ignoring parent would otherwise leave ignored in the command.
///
/// # Safety
/// Only in the child before `execve`.
unsafe fn default_disposition(sig: libc::c_int) {
    #[cfg(target_os = "linux")]
    unsafe {
        // struct kernel_sigaction with the handler SIG_DFL (0), no flags and an empty mask:
        // all zeros, whatever the architecture's field order. The kernel's sigset is 8 bytes.
        let action = [0u64; 8];
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            action.as_ptr(),
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
    #[cfg(not(target_os = "linux"))]
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
    }
}

fn max_signal() -> libc::c_int {
    #[cfg(target_os = "linux")]
    {
        65
    }
    #[cfg(not(target_os = "linux"))]
    {
        33
    }
}

/// # Safety
/// Returns the calling thread's errno location.
unsafe fn errno_location() -> *mut libc::c_int {
    #[cfg(target_os = "linux")]
    // SAFETY: the calling thread's errno.
    unsafe {
        libc::__errno_location()
    }
    #[cfg(any(target_vendor = "apple", target_os = "freebsd"))]
    // SAFETY: as above.
    unsafe {
        libc::__error()
    }
    #[cfg(any(target_os = "openbsd", target_os = "netbsd"))]
    // SAFETY: as above.
    unsafe {
        libc::__errno()
    }
}

fn signal_set(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset adds valid signals.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Waits for `pid` (with `flags`); its status as an exit code once it has ended.
fn reap(pid: libc::pid_t, flags: libc::c_int) -> Option<ExitCode> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r == pid {
            break;
        }
        if r == 0 {
            return None;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return Some(ExitCode::from(18));
        }
    }
    if libc::WIFEXITED(status) {
        Some(ExitCode::from(libc::WEXITSTATUS(status) as u8))
    } else if libc::WIFSIGNALED(status) {
        Some(ExitCode::from(128 + libc::WTERMSIG(status) as u8))
    } else {
        None
    }
}

fn wait_for(pid: libc::pid_t) -> Option<ExitCode> {
    reap(pid, 0)
}

/// `program` itself when it has a `/`, else the first executable file of that name on `PATH`
/// (found before `fork`, so the child does not search).
fn find_program(program: &OsStr) -> Option<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Some(PathBuf::from(program));
    }
    let path =
        std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| {
            let c = CString::new(candidate.as_os_str().as_bytes()).unwrap_or_default();
            // SAFETY: c is NUL-terminated.
            candidate.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
        })
}
