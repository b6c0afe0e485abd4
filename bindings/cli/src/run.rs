//! `usock run`: bind a listening socket, start a command with it as descriptor 3 under the
//! socket-activation protocol, pass on SIGTERM, SIGHUP and a SIGINT that a process sent, wait,
//! clean up, and exit with the command's status.
//!
//! `std::process::Command` cannot do it: the environment is fixed before `fork`, and
//! `LISTEN_PID` must be the pid of the command itself. So the command is started by hand: every
//! allocation (argument vector, environment, the path found on `PATH`) happens before `fork`, and
//! the child only asks for a signal when usock dies, fills the digits of `LISTEN_PID` into a
//! buffer made for them, resets its signals, moves the socket to descriptor 3, closes every other
//! descriptor above 2, and calls `execve`. This is the one file of the command with `unsafe` in it.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use usock::{BindMode, BoundPath, PrivateDir, SocketType};

/// Where `usock run` listens: a private directory (in `parent`) or a well-known `path`.
pub struct Place {
    name: OsString,
    parent: Option<PathBuf>,
    path: Option<PathBuf>,
    replace: bool,
}

impl Place {
    pub fn new(
        name: OsString,
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
    if let Err(why) = check_fd_name(&place.name) {
        eprintln!("usock: {why}");
        return Ok(ExitCode::from(2));
    }
    // Before anything is made: a SIGTERM, SIGHUP or SIGINT that comes during the setup waits
    // for us instead of killing usock with its directory left behind.
    let waited = Waited::block();
    let (bound, socket, socket_path, dir_path) = bind(&place)?;
    let status = match Launch::prepare(&command, &place.name, &socket_path, &dir_path) {
        Ok(launch) => launch.start_and_wait(socket, &waited),
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

/// Binds where `place` says: what to clean up, the listening socket, its path and directory.
fn bind(place: &Place) -> usock::Result<(Bound, OwnedFd, PathBuf, PathBuf)> {
    Ok(match &place.path {
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
            let fd = dir.bind(Some(&place.name), SocketType::Stream, None)?;
            let path = dir.socket_path(Some(&place.name))?;
            let dir_path = dir.path().to_owned();
            (Bound::Dir(dir), fd, path, dir_path)
        }
    })
}

/// The longest descriptor name systemd takes (`FDNAME_MAX`).
const FD_NAME_MAX: usize = 255;

/// systemd's rule for a name in `LISTEN_FDNAMES` (`fdname_is_valid`): printable ASCII without
/// `:`, the list's separator, and at most 255 bytes. Anything else would corrupt the list.
fn check_fd_name(name: &OsStr) -> Result<(), String> {
    let bytes = name.as_bytes();
    let shown = bytes.escape_ascii();
    if bytes.len() > FD_NAME_MAX {
        return Err(format!(
            "--name is {} bytes, the limit of a descriptor name in LISTEN_FDNAMES is {FD_NAME_MAX}",
            bytes.len()
        ));
    }
    match bytes
        .iter()
        .position(|&b| b == b':' || !(0x20..0x7f).contains(&b))
    {
        Some(at) => Err(format!(
            "--name \"{shown}\": byte {at} is \"{}\"; a descriptor name in LISTEN_FDNAMES takes printable ASCII except ':'",
            [bytes[at]].escape_ascii()
        )),
        None => Ok(()),
    }
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
        name: &OsStr,
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

    /// Forks, starts the command in the child, and waits for it in the parent, passing on the
    /// signals `waited` says. Returns the command's status as an exit code. Call it from the
    /// main thread: on Linux the command's parent-death signal comes when the thread that
    /// forked it ends, not the process.
    fn start_and_wait(self, socket: OwnedFd, waited: &Waited) -> ExitCode {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let pid_slot = self.env[self.listen_pid].as_ptr() as *mut u8;
        let (err_read, err_write) = match error_pipe() {
            Ok(pipe) => pipe,
            Err(code) => return code,
        };
        // A stop signal that came during the setup: the command is not started at all.
        if let Some(sig) = waited.pending_stop() {
            return ExitCode::from(128 + sig as u8);
        }
        // SAFETY: getpid cannot fail.
        let runner = unsafe { libc::getpid() };
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
                    runner,
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
        if let Some(code) = self.exec_failure(err_read, pid) {
            return code;
        }
        wait_and_forward(pid, waited)
    }

    /// The status to exit with when the child reported on `err_read` that `execve` failed.
    fn exec_failure(&self, err_read: OwnedFd, pid: libc::pid_t) -> Option<ExitCode> {
        let mut errno = [0u8; 4];
        // SAFETY: reading into a buffer of 4 bytes from our descriptor.
        let n = unsafe { libc::read(err_read.as_raw_fd(), errno.as_mut_ptr().cast(), 4) };
        if n != 4 {
            return None;
        }
        let errno = i32::from_ne_bytes(errno);
        let _ = wait_for(pid);
        eprintln!(
            "usock: cannot execute {}: {}",
            self.program.to_string_lossy(),
            std::io::Error::from_raw_os_error(errno)
        );
        Some(ExitCode::from(if errno == libc::ENOENT {
            127
        } else {
            126
        }))
    }
}

/// A pipe on which the child reports a failed `execve` (close-on-exec: closed by a successful
/// one).
fn error_pipe() -> Result<(OwnedFd, OwnedFd), ExitCode> {
    let mut pipe = [-1; 2];
    // SAFETY: pipe is a valid array of two ints.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        eprintln!(
            "usock: cannot make a pipe: {}",
            std::io::Error::last_os_error()
        );
        return Err(ExitCode::from(18));
    }
    // SAFETY: the two descriptors were just made and are ours.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    for fd in [&read, &write] {
        // SAFETY: plain fcntl on our descriptors.
        unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok((read, write))
}

/// Waits for the command `pid`, passing on SIGTERM, SIGHUP and a SIGINT that a process sent.
/// The command is reaped only once it has ended and nothing is sent after that, so a signal
/// never reaches another process that took its pid.
fn wait_and_forward(pid: libc::pid_t, waited: &Waited) -> ExitCode {
    loop {
        if let Some(status) = reap(pid, libc::WNOHANG) {
            return status;
        }
        let Some((sig, sender)) = waited.next() else {
            continue;
        };
        if passed_on(sig, sender) {
            // SAFETY: plain kill of our child, not yet reaped.
            unsafe { libc::kill(pid, sig) };
        }
    }
}

/// Whether `sig` from `sender` goes on to the command. SIGINT only when a process sent it to
/// usock: Ctrl-C in a terminal reaches the whole foreground process group, the command
/// included, and a second one is a hard stop for some servers (gunicorn). Where the sender
/// cannot be told, SIGINT is never passed on.
fn passed_on(sig: libc::c_int, sender: Sender) -> bool {
    match sig {
        libc::SIGTERM | libc::SIGHUP => true,
        libc::SIGINT => sender == Sender::Process,
        _ => false,
    }
}

/// Who sent a signal, as far as the system tells.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// kill, sigqueue or a thread kill from a process.
    Process,
    /// The kernel (a terminal's Ctrl-C), or a system that does not say.
    Other,
}

/// The signals `usock run` takes by `sigwait` rather than by their action: blocked from the
/// start of `usock run` (the child unblocks everything before `execve`).
struct Waited {
    set: libc::sigset_t,
}

impl Waited {
    /// Sets SIGCHLD back to its default action and blocks SIGTERM, SIGHUP, SIGINT and
    /// SIGCHLD. An ignored SIGCHLD (inherited across `exec` from some supervisors and shells)
    /// makes the kernel reap the command itself: its status would be lost.
    fn block() -> Waited {
        let set = signal_set(&[libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGCHLD]);
        // SAFETY: a zeroed sigaction is SIG_DFL with no flags and an empty mask (emptied again
        // below); set is valid; the old mask is not needed (the process exits after).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut());
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        Waited { set }
    }

    /// SIGTERM, SIGHUP or SIGINT, when one is pending (it came during the setup).
    fn pending_stop(&self) -> Option<libc::c_int> {
        // SAFETY: sigpending fills a valid set; sigismember reads it.
        unsafe {
            let mut pending: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut pending);
            libc::sigpending(&mut pending);
            [libc::SIGTERM, libc::SIGHUP, libc::SIGINT]
                .into_iter()
                .find(|&sig| libc::sigismember(&pending, sig) == 1)
        }
    }

    /// The next signal of the set and who sent it: by `sigwaitinfo`'s `si_code` where it
    /// tells a process from the kernel (Linux, FreeBSD).
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    fn next(&self) -> Option<(libc::c_int, Sender)> {
        // SAFETY: a zeroed siginfo_t is a valid out-buffer; set is valid.
        let (sig, info) = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            (libc::sigwaitinfo(&self.set, &mut info), info)
        };
        (sig > 0).then(|| (sig, sender(info.si_code)))
    }

    /// The next signal of the set; who sent it is not known (macOS and OpenBSD have no
    /// `sigwaitinfo`; NetBSD's `si_code` for a terminal's signal is not one usock relies on).
    #[cfg(not(any(target_os = "linux", target_os = "freebsd")))]
    fn next(&self) -> Option<(libc::c_int, Sender)> {
        let mut sig: libc::c_int = 0;
        // SAFETY: set is a valid set; sig a valid out-pointer.
        let r = unsafe { libc::sigwait(&self.set, &mut sig) };
        (r == 0).then_some((sig, Sender::Other))
    }
}

/// Who sent a signal, from its `si_code`: `SI_USER` (kill), `SI_QUEUE` (sigqueue) and
/// `SI_TKILL` (tgkill) are a process; `SI_KERNEL` (a terminal) and the rest are not.
#[cfg(target_os = "linux")]
fn sender(code: libc::c_int) -> Sender {
    match code {
        libc::SI_USER | libc::SI_QUEUE | libc::SI_TKILL => Sender::Process,
        _ => Sender::Other,
    }
}

/// Who sent a signal, from its `si_code`: `SI_USER` (kill), `SI_QUEUE` (sigqueue) and
/// `SI_LWP` (thr_kill) are a process; `SI_KERNEL` (a terminal) and the rest are not. The
/// values are FreeBSD's `<sys/signal.h>` (the libc crate does not have them).
#[cfg(target_os = "freebsd")]
fn sender(code: libc::c_int) -> Sender {
    const SI_USER: libc::c_int = 0x10001;
    const SI_QUEUE: libc::c_int = 0x10002;
    const SI_LWP: libc::c_int = 0x10007;
    match code {
        SI_USER | SI_QUEUE | SI_LWP => Sender::Process,
        _ => Sender::Other,
    }
}

/// The child, between `fork` and `execve`: async-signal-safe calls only.
///
/// # Safety
/// Call only in the child of `fork`, with pointers prepared before it.
unsafe fn child(
    runner: libc::pid_t,
    socket: libc::c_int,
    err_write: libc::c_int,
    digits: *mut u8,
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> ! {
    unsafe {
        die_with(runner);
        // Dispositions back to default (ignored ones survive exec otherwise), then an empty mask.
        for sig in 1..max_signal() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                default_disposition(sig);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        write_pid(digits);

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

/// The command must not outlive `usock run` (pid `runner`): SIGKILL to it when the runner dies,
/// where the system has a parent-death signal (Linux, FreeBSD), then a check that the runner
/// did not die before that was set. Elsewhere a runner killed by SIGKILL leaves the command.
///
/// # Safety
/// Only in the child before `execve`.
unsafe fn die_with(runner: libc::pid_t) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with an option and a signal number.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
    #[cfg(target_os = "freebsd")]
    // SAFETY: procctl on this process with a pointer to a signal number.
    unsafe {
        let mut sig = libc::SIGKILL;
        libc::procctl(
            libc::P_PID,
            0,
            libc::PROC_PDEATHSIG_CTL,
            (&mut sig as *mut libc::c_int).cast(),
        );
    }
    // SAFETY: getppid cannot fail; _exit ends the child at once.
    unsafe {
        if libc::getppid() != runner {
            libc::_exit(1);
        }
    }
}

/// Writes this process's pid in decimal and a NUL at `digits` (room for `PID_DIGITS`).
///
/// # Safety
/// Only in the child before `execve`, with `digits` the room left in `LISTEN_PID=`.
unsafe fn write_pid(digits: *mut u8) {
    // SAFETY: getpid cannot fail; at most 20 digits and a NUL fit in the room.
    unsafe {
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
