//! `usock run`: bind listening sockets, start a command with them from descriptor 3 under the
//! socket-activation protocol (or, with `--accept`, one command per connection), pass on
//! SIGTERM, SIGHUP and a SIGINT that a process sent, wait, clean up, and exit with the
//! command's status. The options and their meaning are `systemd-socket-activate`'s.
//!
//! `std::process::Command` cannot do it: the environment is fixed before `fork`, and
//! `LISTEN_PID` must be the pid of the command itself. So the command is started by hand: every
//! allocation (argument vector, environment, the path found on `PATH`) happens before `fork`, and
//! the child only asks for a signal when usock dies, fills the digits of `LISTEN_PID` into a
//! buffer made for them, resets its signals, moves the sockets to descriptors 3 and up, closes
//! every other descriptor above 2, and calls `execve`.

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use usock::{AcceptPolicy, Allow};

use crate::sockets::{self, Made, Socket, Usage};
pub use crate::sockets::{Layout, Spec};

/// What `usock run` was asked for, besides the sockets.
pub struct Options {
    pub layout: Layout,
    /// Whether some `-l`/`--listen` was given: then the command starts on the first
    /// connection or datagram, unless `now`.
    pub listen: bool,
    pub now: bool,
    pub accept: bool,
    pub inetd: bool,
    /// `-E`/`--setenv` assignments (`VAR` alone takes usock's own value, or empty).
    pub setenv: Vec<OsString>,
    /// `--fdname`: every name given, in order (each option split at `:`).
    pub fdnames: Option<Vec<OsString>>,
    pub max_instances: usize,
    /// `--allow`, as given.
    pub allow: Option<String>,
    /// `--group`, as given.
    pub group: Option<OsString>,
}

pub fn run(mut opts: Options, command: Vec<OsString>) -> usock::Result<ExitCode> {
    let policy = match usage(&mut opts) {
        Ok(policy) => policy,
        Err(why) => {
            eprintln!("usock: {why}");
            return Ok(ExitCode::from(2));
        }
    };
    // Before anything is made: a SIGTERM, SIGHUP or SIGINT that comes during the setup waits
    // for us instead of killing usock with its sockets left behind.
    let waited = Waited::block();
    let inherited = match sockets::inherited() {
        Ok(inherited) => inherited,
        Err(why) => {
            eprintln!("usock: {why}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut made = Made::default();
    let status = match sockets::bind(&opts.layout, &mut made) {
        Ok(own) => serve(&opts, &command, inherited, own, &made, policy, &waited),
        Err(e) => {
            made.clean();
            return Ok(bind_failure(&e, opts.layout.replace));
        }
    };
    made.clean();
    Ok(status)
}

/// The library's message for a failed bind; for a live server at a well-known path, the
/// library's advice ("pass the replace mode ...") gives way to the option that does it.
fn bind_failure(err: &usock::Error, replace: bool) -> ExitCode {
    const LIBRARY_ADVICE: &str = "; pass the replace mode to take over from it";
    let message = err.message();
    let live_server = message.contains("a server answers there");
    if err.kind() == usock::ErrorKind::InUse && live_server && !replace {
        eprintln!("usock: {}", message.replacen(LIBRARY_ADVICE, "", 1));
        eprintln!("usock: to take over from a live server at -l/--path, add --replace");
        return crate::exit::code(err.kind());
    }
    crate::exit::failure(err)
}

/// Checks the options before anything is made; the accept policy when `--accept`.
fn usage(opts: &mut Options) -> Result<Option<AcceptPolicy>, Usage> {
    if opts.now && opts.accept {
        return Err(
            "--now and --accept cannot be combined: --accept starts a command per connection"
                .into(),
        );
    }
    if opts.accept && opts.layout.ty == usock::SocketType::Datagram {
        return Err("datagram sockets do not accept connections: --datagram and --accept cannot be combined".into());
    }
    if opts.max_instances == 0 {
        return Err("--max-instances must be at least 1".into());
    }
    if let Some(group) = &opts.group {
        opts.layout.group = Some(sockets::group_id(group)?);
    }
    for name in opts.fdnames.iter().flatten() {
        sockets::check_fd_name("--fdname", name)?;
    }
    sockets::check(&opts.layout)?;
    if !opts.accept {
        return Ok(None);
    }
    let allow = parse_allow(opts.allow.as_deref().unwrap_or("self-or-root"))?;
    AcceptPolicy::new(allow)
        .map(Some)
        .map_err(|e| e.message().to_owned())
}

/// `--allow`: `self-or-root` (the default), `self`, `uid:N[,N...]`, `group:NAME|GID`.
fn parse_allow(spec: &str) -> Result<Allow, Usage> {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let bad = || format!("--allow {spec}: expected self-or-root, self, uid:N[,N...] or group:NAME");
    Ok(match spec.split_once(':') {
        None if spec == "self-or-root" => {
            let mut uids = vec![euid, 0];
            uids.dedup();
            Allow::Uids(uids)
        }
        None if spec == "self" => Allow::SameUser,
        Some(("uid", list)) => Allow::Uids(
            list.split(',')
                .map(|u| u.parse().map_err(|_| bad()).and_then(admissible_uid))
                .collect::<Result<_, _>>()?,
        ),
        Some(("group", group)) if !group.is_empty() => {
            let gid = sockets::group_id(OsStr::new(group))?;
            if gid == usock::overflow_gid() {
                return Err(format!(
                    "--allow {spec}: gid {gid} is the overflow gid, which the kernel shows for any group it cannot map: no policy admits it"
                ));
            }
            Allow::Group(gid)
        }
        _ => return Err(bad()),
    })
}

/// Why no check of a peer or server can ever match `uid`: the overflow uid (the kernel shows
/// it for any user it cannot map, so the library never admits it), or `(uid_t)-1` (no user).
pub fn unmatchable_uid(uid: u32) -> Option<&'static str> {
    if uid == usock::overflow_uid() {
        Some("the overflow uid, which the kernel shows for any user it cannot map")
    } else if uid == u32::MAX {
        Some("(uid_t)-1, which is no user")
    } else {
        None
    }
}

/// A uid a policy can admit (see [`unmatchable_uid`]).
fn admissible_uid(uid: u32) -> Result<u32, Usage> {
    match unmatchable_uid(uid) {
        Some(why) => Err(format!("--allow uid:{uid}: {why}: no policy admits it")),
        None => Ok(uid),
    }
}

/// Starts the command as the options say, once every socket is bound.
fn serve(
    opts: &Options,
    command: &[OsString],
    inherited: Vec<Socket>,
    own: Vec<Socket>,
    made: &Made,
    policy: Option<AcceptPolicy>,
    waited: &Waited,
) -> ExitCode {
    let dir = made.dir.as_ref().map(|d| d.path().to_owned());
    let all: Vec<Socket> = inherited.into_iter().chain(own).collect();
    if opts.inetd && !opts.accept && all.len() != 1 {
        eprintln!(
            "usock: --inetd without --accept passes exactly one socket; there are {}",
            all.len()
        );
        return ExitCode::from(2);
    }
    if let Some(policy) = policy {
        return crate::accept::accepting(opts, command, all, dir.as_deref(), &policy, waited);
    }
    let env = Env::new(opts, &all, dir.as_deref(), None);
    let launch = match Launch::prepare(command, &env, opts) {
        Ok(launch) => launch,
        Err(code) => return code,
    };
    if opts.listen && !opts.now {
        if let Some(sig) = wait_for_traffic(&sockets::raw(&all), waited) {
            return ExitCode::from(128 + sig as u8);
        }
    }
    launch.start_and_wait(all, opts.inetd, waited)
}

/// The variables the command gets on top of usock's environment, in order; `-E` last.
pub(crate) struct Env {
    vars: Vec<(OsString, OsString)>,
}

impl Env {
    /// For `sockets` from descriptor 3; `conn_of`: in accept mode, the listener whose
    /// connection is passed (then one descriptor).
    pub(crate) fn new(
        opts: &Options,
        sockets: &[Socket],
        dir: Option<&Path>,
        conn_of: Option<usize>,
    ) -> Env {
        let mut vars: Vec<(OsString, OsString)> = Vec::new();
        let mut set = |k: &str, v: &OsStr| vars.push((k.into(), v.to_owned()));
        let passed: Vec<&Socket> = match conn_of {
            Some(i) => vec![&sockets[i]],
            None => sockets.iter().collect(),
        };
        if !opts.inetd {
            set("LISTEN_FDS", OsStr::new(&passed.len().to_string()));
            set(
                "LISTEN_FDNAMES",
                &fd_names(opts.fdnames.as_deref(), &passed),
            );
        }
        let paths: Vec<(usize, &PathBuf)> = passed
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.path.as_ref().map(|p| (i, p)))
            .collect();
        if let Some((_, first)) = paths.first() {
            set("USOCK_PATH", first.as_os_str());
        }
        if !opts.inetd {
            for (i, path) in &paths {
                set(&format!("USOCK_PATH_{}", 3 + i), path.as_os_str());
            }
        }
        if let Some(dir) = dir {
            set("USOCK_DIR", dir.as_os_str());
        }
        for assignment in &opts.setenv {
            vars.push(setenv(assignment));
        }
        Env { vars }
    }
}

/// `LISTEN_FDNAMES`: with `--fdname`, what `systemd-socket-activate` sets (the names given,
/// one name repeated for every descriptor, a warning when the counts differ); without, each
/// socket's own name.
fn fd_names(given: Option<&[OsString]>, passed: &[&Socket]) -> OsString {
    let names: Vec<OsString> = match given {
        Some([one]) => vec![one.clone(); passed.len()],
        Some(names) => {
            if names.len() != passed.len() {
                let plural = |n: usize, one: &'static str, many: &'static str| {
                    format!("{n} {}", if n == 1 { one } else { many })
                };
                eprintln!(
                    "usock: {} given with --fdname for {}",
                    plural(names.len(), "name", "names"),
                    plural(passed.len(), "descriptor", "descriptors")
                );
            }
            names.to_vec()
        }
        None => passed.iter().map(|s| s.name.clone()).collect(),
    };
    names.join(OsStr::new(":"))
}

/// `-E VAR=VALUE`, or `-E VAR`: usock's own value of VAR, empty when unset (as systemd).
fn setenv(assignment: &OsStr) -> (OsString, OsString) {
    let bytes = assignment.as_bytes();
    match bytes.iter().position(|&b| b == b'=') {
        Some(eq) => (
            OsStr::from_bytes(&bytes[..eq]).to_owned(),
            OsStr::from_bytes(&bytes[eq + 1..]).to_owned(),
        ),
        None => (
            assignment.to_owned(),
            std::env::var_os(assignment).unwrap_or_default(),
        ),
    }
}

/// Waits until one of `fds` has a connection or a datagram (not taken: the command takes it).
/// A SIGTERM, SIGHUP or SIGINT while waiting is returned: nothing is started.
fn wait_for_traffic(fds: &[RawFd], waited: &Waited) -> Option<libc::c_int> {
    let mut polled: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        if let Some(sig) = waited.pending_stop() {
            return Some(sig);
        }
        if poll(&mut polled, 100) > 0 {
            return None;
        }
    }
}

/// poll(2) on `fds` for `ms` milliseconds: how many are ready (0 on a timeout or an error).
pub(crate) fn poll(fds: &mut [libc::pollfd], ms: libc::c_int) -> usize {
    // SAFETY: fds is a valid array of pollfd of the length given.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    n.max(0) as usize
}

/// Everything `execve` needs, made before `fork`.
pub(crate) struct Launch {
    program: CString,
    argv: Vec<CString>,
    env: Vec<CString>,
    /// Index in `env` of `LISTEN_PID=` followed by room for the digits (none with --inetd).
    listen_pid: Option<usize>,
}

const LISTEN_PID: &[u8] = b"LISTEN_PID=";
/// Room for the digits of any pid.
const PID_DIGITS: usize = 20;

impl Launch {
    pub(crate) fn prepare(
        command: &[OsString],
        extra: &Env,
        opts: &Options,
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
        let ours = |k: &OsStr| {
            let k = k.as_bytes();
            k.starts_with(b"LISTEN_")
                || k.starts_with(b"USOCK_PATH_")
                || k == b"USOCK_PATH"
                || k == b"USOCK_DIR"
                || extra.vars.iter().any(|(e, _)| e.as_bytes() == k)
        };
        let assign = |k: &OsStr, v: &OsStr| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring(OsStr::from_bytes(&kv))
        };
        let mut env: Vec<CString> = std::env::vars_os()
            .filter(|(k, _)| !ours(k))
            .map(|(k, v)| assign(&k, &v))
            .collect::<Result<_, _>>()?;
        let mut listen_pid = None;
        if !opts.inetd && !extra.vars.iter().any(|(k, _)| k == "LISTEN_PID") {
            // "LISTEN_PID=" and 20 bytes the child overwrites with its pid and a NUL.
            let mut placeholder = LISTEN_PID.to_vec();
            placeholder.extend(std::iter::repeat_n(b'0', PID_DIGITS));
            env.push(CString::new(placeholder).expect("no NUL"));
            listen_pid = Some(env.len() - 1);
        }
        let mut seen: Vec<&OsStr> = Vec::new();
        // The last assignment of a name wins (-E after usock's own, as systemd).
        for (k, v) in extra.vars.iter().rev() {
            if !seen.contains(&k.as_os_str()) {
                seen.push(k);
                env.push(assign(k, v)?);
            }
        }
        Ok(Launch {
            program,
            argv,
            env,
            listen_pid,
        })
    }

    /// Starts the command with `sockets`, waits for it, passing on the signals `waited` says,
    /// and returns its status as an exit code. Call it from the main thread: on Linux the
    /// command's parent-death signal comes when the thread that forked it ends, not the
    /// process.
    fn start_and_wait(&self, sockets: Vec<Socket>, inetd: bool, waited: &Waited) -> ExitCode {
        // A stop signal that came during the setup: the command is not started at all.
        if let Some(sig) = waited.pending_stop() {
            return ExitCode::from(128 + sig as u8);
        }
        let pid = match self.spawn(&sockets::raw(&sockets), inetd) {
            Ok(pid) => pid,
            Err(code) => return code,
        };
        drop(sockets); // the command has them now
        wait_and_forward(pid, waited)
    }

    /// Forks and starts the command with `fds` from descriptor 3 (with `inetd`: the one of
    /// them as standard input and output). Returns its pid once `execve` succeeded.
    pub(crate) fn spawn(&self, fds: &[RawFd], inetd: bool) -> Result<libc::pid_t, ExitCode> {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let digits = self.listen_pid.map_or(std::ptr::null_mut(), |i| {
            // SAFETY: the entry is LISTEN_PID= and PID_DIGITS bytes of room.
            unsafe { (self.env[i].as_ptr() as *mut u8).add(LISTEN_PID.len()) }
        });
        let (err_read, err_write) = error_pipe()?;
        // Above every descriptor in play: the child copies the sockets there first.
        let base = fds
            .iter()
            .chain([&err_write.as_raw_fd(), &(2 + fds.len() as RawFd)])
            .max()
            .copied()
            .unwrap_or(2)
            + 1;
        // SAFETY: getpid cannot fail.
        let runner = unsafe { libc::getpid() };
        // SAFETY: the child calls only async-signal-safe functions on memory prepared above.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            eprintln!("usock: cannot fork: {}", std::io::Error::last_os_error());
            return Err(ExitCode::from(18));
        }
        if pid == 0 {
            let place = Placement {
                fds: fds.as_ptr(),
                count: fds.len(),
                base,
                inetd,
            };
            // SAFETY: in the child; see child() for what it does.
            unsafe {
                child(
                    runner,
                    &place,
                    err_write.as_raw_fd(),
                    digits,
                    self.program.as_ptr(),
                    argv.as_ptr(),
                    envp.as_ptr(),
                )
            }
        }
        drop(err_write);
        match self.exec_failure(err_read, pid) {
            Some(code) => Err(code),
            None => Ok(pid),
        }
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
            return ExitCode::from(status);
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
pub(crate) fn passed_on(sig: libc::c_int, sender: Sender) -> bool {
    match sig {
        libc::SIGTERM | libc::SIGHUP => true,
        libc::SIGINT => sender == Sender::Process,
        _ => false,
    }
}

/// Who sent a signal, as far as the system tells.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sender {
    /// kill, sigqueue or a thread kill from a process.
    Process,
    /// The kernel (a terminal's Ctrl-C), or a system that does not say.
    Other,
}

/// SIGTERM, SIGHUP or SIGINT, when one is pending for this thread (blocked, not yet taken).
pub(crate) fn pending_stop() -> Option<libc::c_int> {
    // SAFETY: sigpending fills a valid set, emptied first; sigismember reads it.
    unsafe {
        let mut pending: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut pending);
        libc::sigpending(&mut pending);
        [libc::SIGTERM, libc::SIGHUP, libc::SIGINT]
            .into_iter()
            .find(|&sig| libc::sigismember(&pending, sig) == 1)
    }
}

/// The signals `usock run` takes by `sigwait` rather than by their action: blocked from the
/// start of `usock run` (the child unblocks everything before `execve`).
pub(crate) struct Waited {
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
    pub(crate) fn pending_stop(&self) -> Option<libc::c_int> {
        pending_stop()
    }

    /// A pending SIGTERM, SIGHUP or SIGINT, taken, with who sent it (a pending SIGCHLD taken
    /// on the way is of no use: commands are reaped by polling).
    pub(crate) fn take_stop(&self) -> Option<(libc::c_int, Sender)> {
        self.pending_stop()?;
        loop {
            match self.next() {
                Some((libc::SIGCHLD, _)) | None => continue,
                stop => return stop,
            }
        }
    }

    /// The next signal of the set and who sent it: by `sigwaitinfo`'s `si_code` where it
    /// tells a process from the kernel (Linux, FreeBSD).
    #[cfg(any(target_os = "linux", target_os = "freebsd"))]
    pub(crate) fn next(&self) -> Option<(libc::c_int, Sender)> {
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
    pub(crate) fn next(&self) -> Option<(libc::c_int, Sender)> {
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

/// Where the child puts the sockets: `count` descriptors at `fds` go to 3 and up (with
/// `inetd`: the one to 0 and 1), through copies from `base` up, above all of them.
struct Placement {
    fds: *const libc::c_int,
    count: usize,
    base: libc::c_int,
    inetd: bool,
}

/// The child, between `fork` and `execve`: async-signal-safe calls only.
///
/// # Safety
/// Call only in the child of `fork`, with pointers prepared before it (`digits`: null, or the
/// room after `LISTEN_PID=`).
unsafe fn child(
    runner: libc::pid_t,
    place: &Placement,
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

        if !digits.is_null() {
            write_pid(digits);
        }
        let report = place_sockets(place, err_write);
        libc::execve(program, argv, envp);
        let errno = *errno_location();
        let bytes = errno.to_ne_bytes();
        libc::write(report, bytes.as_ptr().cast(), 4);
        libc::_exit(127);
    }
}

/// Moves the sockets where `place` says (dup2 clears close-on-exec on the copies) and the
/// error pipe `err_write` above them, closes every other descriptor above 2, and returns the
/// error pipe's new number.
///
/// # Safety
/// Only in the child before `execve`, with `place.fds` valid for `place.count`.
unsafe fn place_sockets(place: &Placement, err_write: libc::c_int) -> libc::c_int {
    unsafe {
        let n = place.count as libc::c_int;
        let report = place.base + n;
        libc::dup2(err_write, report);
        libc::fcntl(report, libc::F_SETFD, libc::FD_CLOEXEC);
        for i in 0..n {
            libc::dup2(*place.fds.add(i as usize), place.base + i);
        }
        if place.inetd {
            libc::dup2(place.base, 0);
            libc::dup2(place.base, 1);
            close_from(3, report);
        } else {
            for i in 0..n {
                libc::dup2(place.base + i, 3 + i);
            }
            close_from(3 + n, report);
        }
        report
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

/// Waits for `pid` (with `flags`); its status as an exit code once it has ended (18 when it
/// cannot be waited for).
pub(crate) fn reap(pid: libc::pid_t, flags: libc::c_int) -> Option<u8> {
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
            return Some(18);
        }
    }
    if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status) as u8)
    } else if libc::WIFSIGNALED(status) {
        Some(128 + libc::WTERMSIG(status) as u8)
    } else {
        None
    }
}

fn wait_for(pid: libc::pid_t) -> Option<u8> {
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
