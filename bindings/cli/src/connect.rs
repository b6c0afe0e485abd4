//! `usock connect`: a client for shell scripts, like `nc -U` or `socat`, but checked. It
//! connects with the library (long paths, the server's uid checked), then copies standard
//! input to the socket and the socket to standard output in one `poll(2)` loop.
//!
//! Stream and seqpacket: EOF on standard input shuts down the socket's write side, and the
//! socket's EOF ends the command. Datagram: each read of standard input (up to 64 KiB) is one
//! datagram, each datagram received is written out as it came, and the command ends when
//! standard input has ended and no datagram has come for the linger time.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use usock::{ConnectOptions, PrivateDir, Server, SocketType};

use crate::exit;

/// What one read of standard input may take: one datagram or packet at most.
const INPUT_CHUNK: usize = 64 * 1024;
/// What one read of the socket may take: larger than the largest datagram Linux sends by
/// default (212 992 bytes), so that none is cut.
const SOCKET_CHUNK: usize = 256 * 1024;

/// `--server-uid`: who the server must be.
#[derive(Clone, Copy, Debug)]
pub enum ServerUid {
    /// The user running `usock connect`, or root (the default).
    SelfOrRoot,
    /// Exactly the user running `usock connect`.
    Me,
    /// Exactly this uid (`root` is 0).
    Uid(u32),
    /// Anyone: no check (the only choice for datagrams, which carry no credentials).
    Any,
}

/// Parses `self`, `root`, `any`, a uid or a user name (looked up in the user database).
pub fn parse_server_uid(text: &str) -> Result<ServerUid, String> {
    match text {
        "self" => Ok(ServerUid::Me),
        "root" => Ok(ServerUid::Uid(0)),
        "any" => Ok(ServerUid::Any),
        _ => {
            let uid = text
                .parse()
                .ok()
                .or_else(|| user_uid(text))
                .ok_or_else(|| format!("{text:?} is not self, root, any, a user name or a uid"))?;
            match crate::run::unmatchable_uid(uid) {
                Some(why) => Err(format!(
                    "{text:?} is uid {uid}, {why}: no check accepts it (--server-uid any skips the check)"
                )),
                None => Ok(ServerUid::Uid(uid)),
            }
        }
    }
}

/// The uid of the user called `name`, if the user database has one.
fn user_uid(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 * 1024];
    // SAFETY: an all-zero passwd (null pointers, zero ids) is a valid value to overwrite.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: getpwnam_r with a NUL-terminated name, our record and buffer (its length given);
    // only the uid is read, and only when an entry was found.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    (rc == 0 && !found.is_null()).then_some(entry.pw_uid)
}

impl ServerUid {
    fn check(self) -> Server {
        match self {
            ServerUid::SelfOrRoot => Server::SelfOrRoot,
            ServerUid::Me => Server::Uid(euid()),
            ServerUid::Uid(uid) => Server::Uid(uid),
            ServerUid::Any => Server::Any,
        }
    }
}

/// The effective uid of this process.
fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// How to connect, from the command line.
pub struct Options {
    pub ty: SocketType,
    pub server: ServerUid,
    /// Datagrams: how long to wait for replies once standard input has ended.
    pub linger: Duration,
}

/// `usock connect PATH`.
pub fn connect(path: &Path, options: &Options) -> ExitCode {
    if options.ty == SocketType::Datagram && !matches!(options.server, ServerUid::Any) {
        eprintln!(
            "usock: a datagram socket carries no credentials, so the server at {} cannot be checked: give --server-uid any to send anyway",
            path.display()
        );
        return ExitCode::from(2);
    }
    let checked = ConnectOptions::default().server(options.server.check());
    let fd = match usock::connect_with(path, options.ty, checked) {
        Ok(fd) => fd,
        Err(e) => return connect_failure(&e),
    };
    let outcome = match options.ty {
        SocketType::Datagram => datagrams(path, fd, options.linger),
        _ => stream(fd),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(end) => end.report(),
    }
}

/// The exit status for a failed connection: the command's own code for nothing there, refused
/// and permission denied; the library's for the rest (a server of another user is 13).
fn connect_failure(err: &usock::Error) -> ExitCode {
    eprintln!("usock: {}", err.message());
    match (err.kind(), err.raw_os_error()) {
        (usock::ErrorKind::System, Some(errno)) => errno_code(errno),
        (kind, _) => exit::code(kind),
    }
}

fn errno_code(errno: i32) -> ExitCode {
    match errno {
        libc::ENOENT => ExitCode::from(exit::NOTHING_THERE),
        libc::ECONNREFUSED => ExitCode::from(exit::REFUSED),
        libc::EACCES | libc::EPERM => ExitCode::from(exit::DENIED),
        _ => exit::code(usock::ErrorKind::System),
    }
}

/// Why the copying stopped early.
enum End {
    /// The server closed (or reset) the connection before it took all of standard input.
    ClosedEarly,
    /// A datagram server went away (`ECONNREFUSED` on a send).
    Gone,
    /// Standard input, standard output or the socket failed: what, and how.
    Io(&'static str, io::Error),
    /// The library refused (the private directory for datagram replies).
    Library(usock::Error),
    /// A stop signal came (datagrams): it ends the command once the directory is removed.
    Stopped(libc::c_int),
}

impl End {
    fn report(self) -> ExitCode {
        match self {
            End::ClosedEarly => {
                eprintln!(
                    "usock: the server closed the connection before it took all of standard input"
                );
                ExitCode::from(exit::CLOSED_EARLY)
            }
            End::Gone => {
                eprintln!("usock: nobody is listening any more: the datagram was refused");
                ExitCode::from(exit::REFUSED)
            }
            End::Io(what, e) => {
                eprintln!("usock: {what}: {e}");
                exit::code(usock::ErrorKind::System)
            }
            End::Library(e) => exit::failure(&e),
            // Only when the signal did not end the command as it was unblocked.
            End::Stopped(sig) => ExitCode::from(128 + sig as u8),
        }
    }
}

/// A stream or seqpacket connection: standard input to the socket (a packet per read for
/// seqpacket), the socket to standard output, until the socket's EOF.
fn stream(fd: OwnedFd) -> Result<(), End> {
    let mut socket = UnixStream::from(fd);
    socket
        .set_nonblocking(true)
        .map_err(|e| End::Io("cannot make the socket non-blocking", e))?;
    let mut pending: Vec<u8> = Vec::new();
    let mut input_open = true;
    let mut buf = vec![0; SOCKET_CHUNK];
    loop {
        let read_input = input_open && pending.is_empty();
        let [input, sock] = wait(read_input, socket.as_fd(), !pending.is_empty(), None)?;
        if sock.readable {
            match socket.read(&mut buf) {
                Ok(0) => return ended_by_server(&socket, &pending, input_open),
                Ok(n) => write_out(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => {
                    return Err(End::ClosedEarly);
                }
                Err(e) => return Err(End::Io("cannot read from the socket", e)),
            }
        }
        if input.readable {
            pending = read_input_chunk()?;
            if pending.is_empty() {
                input_open = false;
                match socket.shutdown(Shutdown::Write) {
                    // macOS says ENOTCONN when the server has closed already: its EOF follows.
                    Err(e) if e.raw_os_error() != Some(libc::ENOTCONN) => {
                        return Err(End::Io("cannot shut down the socket's write side", e));
                    }
                    _ => {}
                }
            }
        }
        if sock.writable && !pending.is_empty() {
            match socket.write(&pending) {
                Ok(n) => drop(pending.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if closed_by_peer(&e) => return drain_then_closed_early(socket, &mut buf),
                Err(e) => return Err(End::Io("cannot write to the socket", e)),
            }
        }
    }
}

/// The server's EOF: the end, unless it came with input left that it never took (read from
/// standard input but not yet sent, or already waiting there), which is [`End::ClosedEarly`]:
/// a server that takes only what has come and closes cleanly causes no reset, and the rest
/// would be dropped with status 0.
fn ended_by_server(socket: &UnixStream, pending: &[u8], input_open: bool) -> Result<(), End> {
    if !pending.is_empty() {
        return Err(End::ClosedEarly);
    }
    if input_open {
        let [input, _] = wait(true, socket.as_fd(), false, Some(Instant::now()))?;
        if input.readable && !read_input_chunk()?.is_empty() {
            return Err(End::ClosedEarly);
        }
    }
    Ok(())
}

/// The server closed while input was left: what it sent before is still shown, then
/// [`End::ClosedEarly`].
fn drain_then_closed_early(mut socket: UnixStream, buf: &mut [u8]) -> Result<(), End> {
    if socket.set_nonblocking(false).is_ok() {
        while let Ok(n @ 1..) = socket.read(buf) {
            write_out(&buf[..n])?;
        }
    }
    Err(End::ClosedEarly)
}

/// Parses `--linger`: seconds, a fraction allowed.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_nan() => Err(format!("{text:?} is not a number of seconds")),
        Ok(s) if s < 0.0 => Err(format!("{text} is negative: give 0 seconds or more")),
        Ok(s) => Duration::try_from_secs_f64(s).map_err(|_| format!("{text} seconds is too long")),
        Err(_) => Err(format!("{text:?} is not a number of seconds")),
    }
}

/// Datagrams: the socket bound in a private directory of its own, so that the server can reply,
/// and connected to `path`; `fd` (connected by the library, which checked the path) is only
/// dropped. The directory is removed on return.
fn datagrams(path: &Path, fd: OwnedFd, linger: Duration) -> Result<(), End> {
    drop(fd);
    // Declared first, so dropped last: a stop signal ends the command once the directory is gone.
    let stops = StopSignals::block();
    let dir = PrivateDir::create(None).map_err(End::Library)?;
    let socket = dir.datagram(None).map_err(End::Library)?;
    connect_datagram(&socket, path)?;
    socket
        .set_nonblocking(true)
        .map_err(|e| End::Io("cannot make the socket non-blocking", e))?;
    let result = pump_datagrams(&socket, linger, &stops);
    drop(socket);
    drop(dir);
    result
}

/// How often a datagram client that waits looks for a stop signal.
const STOP_CHECK: Duration = Duration::from_millis(200);

/// SIGTERM, SIGINT and SIGHUP, blocked while a datagram client has its reply directory: one
/// that comes ends the copying, the directory is removed, and the signal, unblocked when this
/// is dropped, ends the command as it would have (a killed client left its directory behind).
struct StopSignals {
    set: libc::sigset_t,
}

impl StopSignals {
    fn block() -> StopSignals {
        // SAFETY: a zeroed sigset_t is emptied by sigemptyset before use; sigaddset and
        // pthread_sigmask take valid pointers to it.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut set, sig);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            StopSignals { set }
        }
    }

    /// The stop signal that came, if one did (left pending: it is delivered on drop).
    fn pending(&self) -> Option<libc::c_int> {
        crate::run::pending_stop()
    }
}

impl Drop for StopSignals {
    fn drop(&mut self) {
        // SAFETY: unblocks the set blocked in block(); a pending signal is delivered here.
        unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &self.set, std::ptr::null_mut()) };
    }
}

/// Connects `socket` to `path`; a path too long for `sun_path` through its directory's
/// descriptor (`/proc/self/fd`, Linux).
fn connect_datagram(socket: &UnixDatagram, path: &Path) -> Result<(), End> {
    let connected = if path.as_os_str().len() < usock::MAX_SOCKET_PATH {
        socket.connect(path)
    } else {
        connect_long(socket, path)
    };
    connected.map_err(|e| match e.raw_os_error() {
        Some(libc::ECONNREFUSED) => End::Gone,
        _ => End::Io("cannot connect the datagram socket", e),
    })
}

#[cfg(target_os = "linux")]
fn connect_long(socket: &UnixDatagram, path: &Path) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    };
    let dir = std::fs::File::open(dir)?;
    let mut short = std::path::PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    short.push(name);
    socket.connect(short)
}

#[cfg(not(target_os = "linux"))]
fn connect_long(_socket: &UnixDatagram, _path: &Path) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG))
}

fn pump_datagrams(socket: &UnixDatagram, linger: Duration, stops: &StopSignals) -> Result<(), End> {
    let mut pending: Vec<u8> = Vec::new();
    let mut input_ended: Option<Instant> = None;
    let mut buf = vec![0; SOCKET_CHUNK];
    loop {
        let deadline = input_ended.map(|since| since + linger);
        let read_input = input_ended.is_none() && pending.is_empty();
        let check = Instant::now() + STOP_CHECK;
        let woken = Some(deadline.map_or(check, |d| d.min(check)));
        let [input, sock] = wait(read_input, socket.as_fd(), !pending.is_empty(), woken)?;
        if let Some(sig) = stops.pending() {
            return Err(End::Stopped(sig));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) && !sock.readable {
            return Ok(());
        }
        if sock.readable {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    write_out(&buf[..n])?;
                    input_ended = input_ended.map(|_| Instant::now());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => return Err(End::Gone),
                Err(e) => return Err(End::Io("cannot receive from the socket", e)),
            }
        }
        if input.readable {
            pending = read_input_chunk()?;
            if pending.is_empty() {
                input_ended = Some(Instant::now());
            }
        }
        if sock.writable && !pending.is_empty() {
            match socket.send(&pending) {
                Ok(_) => pending.clear(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {}
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => return Err(End::Gone),
                Err(e) => return Err(End::Io("cannot send to the socket", e)),
            }
        }
    }
}

fn closed_by_peer(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET))
}

/// One read of standard input (empty at EOF).
fn read_input_chunk() -> Result<Vec<u8>, End> {
    let mut chunk = vec![0; INPUT_CHUNK];
    loop {
        match io::stdin().lock().read(&mut chunk) {
            Ok(n) => {
                chunk.truncate(n);
                return Ok(chunk);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(End::Io("cannot read standard input", e)),
        }
    }
}

/// Writes all of `data` to standard output, at once (no buffering: a reply is seen when it
/// comes). A reader that went away is `EPIPE` here, not a signal: Rust ignores SIGPIPE.
fn write_out(data: &[u8]) -> Result<(), End> {
    let mut out = io::stdout().lock();
    out.write_all(data)
        .and_then(|()| out.flush())
        .map_err(|e| End::Io("cannot write to standard output", e))
}

/// What `poll` found on a descriptor.
#[derive(Clone, Copy, Default)]
struct Ready {
    readable: bool,
    writable: bool,
}

/// Waits until standard input is readable (when `read_input`), or the socket is readable, or
/// writable (when `write_socket`), or `deadline` passes. Readable includes hang-up and error:
/// the read that follows says which.
fn wait(
    read_input: bool,
    socket: BorrowedFd<'_>,
    write_socket: bool,
    deadline: Option<Instant>,
) -> Result<[Ready; 2], End> {
    let stdin = io::stdin();
    let input_fd = if read_input {
        stdin.as_fd().as_raw_fd()
    } else {
        -1
    };
    let socket_events = libc::POLLIN | if write_socket { libc::POLLOUT } else { 0 };
    let mut fds = [
        libc::pollfd {
            fd: input_fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: socket.as_raw_fd(),
            events: socket_events,
            revents: 0,
        },
    ];
    let timeout = deadline.map_or(-1, |d| {
        let left = d.saturating_duration_since(Instant::now());
        libc::c_int::try_from(left.as_millis() + 1).unwrap_or(libc::c_int::MAX)
    });
    loop {
        // SAFETY: `fds` is an array of two initialised pollfd that lives across the call, and
        // its length is passed with it; poll writes only their revents.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(End::Io("poll failed", e));
        }
    }
    let ready = |p: &libc::pollfd| Ready {
        readable: p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0,
        writable: p.revents & (libc::POLLOUT | libc::POLLERR) != 0,
    };
    Ok([ready(&fds[0]), ready(&fds[1])])
}
