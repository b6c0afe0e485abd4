//! `usock run --accept`: usock accepts, checks each peer with the library's accept policy, and
//! starts one command per admitted connection, at most `--max-instances` at a time.

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use usock::AcceptPolicy;

use crate::run::{Env, Launch, Options, Sender, Waited, passed_on, poll, reap};
use crate::sockets::{self, Socket};

/// `--accept`: one command per admitted connection, at most `--max-instances` at a time, until
/// SIGTERM, SIGHUP or SIGINT, which goes on to the running commands; usock then waits for them
/// and exits with 128+n.
pub fn accepting(
    opts: &Options,
    command: &[OsString],
    listeners: Vec<Socket>,
    dir: Option<&Path>,
    policy: &AcceptPolicy,
    waited: &Waited,
) -> ExitCode {
    let mut launches = Vec::new();
    for i in 0..listeners.len() {
        match Launch::prepare(command, &Env::new(opts, &listeners, dir, Some(i)), opts) {
            Ok(launch) => launches.push(launch),
            Err(code) => return code,
        }
    }
    let mut fleet = Fleet::default();
    let mut refusals = Refusals::default();
    // Non-blocking while usock accepts (poll, then accept, must not hang when another process
    // sharing an inherited socket took the connection first); afterwards as they were, since an
    // inherited socket's flags are those of the manager that passed it, which keeps it.
    let were_blocking: Vec<bool> = listeners
        .iter()
        .map(|s| set_nonblocking(s.fd.as_raw_fd(), true))
        .collect();
    let outcome = accept_until_stopped(
        &listeners,
        &launches,
        opts,
        (policy, &mut refusals),
        waited,
        &mut fleet,
    );
    for (s, blocking) in listeners.iter().zip(were_blocking) {
        if blocking {
            set_nonblocking(s.fd.as_raw_fd(), false);
        }
    }
    drop(listeners);
    fleet.finish(waited);
    let (refused, _) = policy.refused();
    if refused > 0 {
        eprintln!("usock: {refused} connection(s) refused by the --allow policy");
    }
    outcome
}

/// The accept loop: returns the exit status once a stop signal came (or a listener cannot
/// accept at all).
fn accept_until_stopped(
    listeners: &[Socket],
    launches: &[Launch],
    opts: &Options,
    (policy, refusals): (&AcceptPolicy, &mut Refusals),
    waited: &Waited,
    fleet: &mut Fleet,
) -> ExitCode {
    let mut polled: Vec<libc::pollfd> = sockets::raw(listeners)
        .into_iter()
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // The stop first: a manager that signals the whole group (systemd's control group) stops
        // the commands too, and their deaths by that signal are no failures to report.
        if let Some(sig) = waited.take_stop() {
            fleet.forward(sig);
            return ExitCode::from(128 + sig.0 as u8);
        }
        fleet.reap(waited);
        if fleet.live.len() >= opts.max_instances {
            poll(&mut [], 100);
            continue;
        }
        if poll(&mut polled, 100) == 0 {
            continue;
        }
        for (i, p) in polled.iter().enumerate() {
            if p.revents == 0 {
                continue;
            }
            let conn = match admit(&listeners[i].fd, policy, refusals) {
                Ok(Some(conn)) => conn,
                Ok(None) => continue,
                Err(code) => return code,
            };
            // A command that cannot start (its reason is on stderr) costs this connection only,
            // which is closed, as under systemd-socket-activate: the service goes on.
            if let Ok(pid) = launches[i].spawn(&[conn.as_raw_fd()], opts.inetd) {
                fleet.live.push(pid);
            }
        }
    }
}

/// Accepts one connection on `listener` and returns it when the policy admits its peer; a
/// refused one is closed at once and reported (see [`Refusals`]). A listener that cannot accept at all (an
/// inherited datagram socket) ends the loop with status 18, as it ends
/// `systemd-socket-activate`.
fn admit(
    listener: &OwnedFd,
    policy: &AcceptPolicy,
    refusals: &mut Refusals,
) -> Result<Option<OwnedFd>, ExitCode> {
    let cannot = |e: std::io::Error| {
        eprintln!("usock: cannot accept a connection: {e}");
        ExitCode::from(18)
    };
    let listener = UnixListener::from(listener.try_clone().map_err(cannot)?);
    let conn = match listener.accept() {
        Ok((conn, _)) => OwnedFd::from(conn),
        Err(e) if passing(&e) => return Ok(None),
        Err(e) => return Err(cannot(e)),
    };
    match policy.screen(conn.as_fd()) {
        Ok(_) => {
            set_nonblocking(conn.as_raw_fd(), false);
            Ok(Some(conn))
        }
        Err(e) => {
            refusals.report(e.message(), policy);
            Ok(None)
        }
    }
}

/// Events of one kind (refused connections, failed commands) reported one by one before the
/// rest are only counted.
const SHOWN_ONE_BY_ONE: u32 = 10;
/// How often, at most, the count of the events not shown is reported.
const COUNT_EVERY: Duration = Duration::from_secs(60);

/// The reports of one kind of event that a peer can cause at will (a refused peer connecting in
/// a loop; an admitted one hanging up at once, so that its command dies of SIGPIPE): the first
/// [`SHOWN_ONE_BY_ONE`] one by one, then a count at most every [`COUNT_EVERY`] (and the total at
/// exit), so that a peer cannot fill usock's standard error (a log, a disk).
struct Throttled {
    /// What is counted, in the plural: "refusals", "failures of commands".
    events: &'static str,
    shown: u32,
    hidden: u64,
    last_count: Option<Instant>,
}

impl Throttled {
    fn new(events: &'static str) -> Throttled {
        Throttled {
            events,
            shown: 0,
            hidden: 0,
            last_count: None,
        }
    }

    /// Reports one event: `line` while they are shown one by one, else, at most every
    /// [`COUNT_EVERY`], `count(hidden)`, the number of events not shown so far.
    fn report(&mut self, line: impl FnOnce() -> String, count: impl FnOnce(u64) -> String) {
        if self.shown < SHOWN_ONE_BY_ONE {
            self.shown += 1;
            eprintln!("usock: {}", line());
            if self.shown == SHOWN_ONE_BY_ONE {
                eprintln!(
                    "usock: further {} are only counted: the count is reported at most every {} s, and at exit",
                    self.events,
                    COUNT_EVERY.as_secs()
                );
                self.last_count = Some(Instant::now());
            }
            return;
        }
        self.hidden += 1;
        if self.last_count.is_some_and(|at| at.elapsed() < COUNT_EVERY) {
            return;
        }
        self.last_count = Some(Instant::now());
        eprintln!("usock: {}", count(self.hidden));
    }
}

/// Refused connections: each refusal's reason, then the policy's own count.
struct Refusals(Throttled);

impl Default for Refusals {
    fn default() -> Refusals {
        Refusals(Throttled::new("refusals"))
    }
}

impl Refusals {
    fn report(&mut self, why: &str, policy: &AcceptPolicy) {
        self.0.report(
            || format!("refused: {why}"),
            |_| {
                let (refused, last) = policy.refused();
                let last =
                    last.map_or_else(String::new, |uid| format!(", the last from uid {uid}"));
                format!("{refused} connection(s) refused so far{last}")
            },
        );
    }
}

/// An accept error that is about one connection, not the listener: nothing waiting any more,
/// a connection aborted before it was taken, or a signal.
fn passing(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAGAIN | libc::EINTR | libc::ECONNABORTED)
    ) || e.kind() == std::io::ErrorKind::WouldBlock
}

/// Sets or clears `O_NONBLOCK` on `fd`; true when it was clear before.
fn set_nonblocking(fd: RawFd, on: bool) -> bool {
    // SAFETY: fcntl on our descriptor.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        let new = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        if flags >= 0 && new != flags {
            libc::fcntl(fd, libc::F_SETFL, new);
        }
        flags >= 0 && flags & libc::O_NONBLOCK == 0
    }
}

/// The commands started in accept mode and still running.
struct Fleet {
    live: Vec<libc::pid_t>,
    /// The stop signal that reached the commands (passed on, or from the terminal): ending by
    /// it is no failure to report.
    passed_on: Option<libc::c_int>,
    /// Commands that ended with a failure status.
    failures: Throttled,
}

impl Default for Fleet {
    fn default() -> Fleet {
        Fleet {
            live: Vec::new(),
            passed_on: None,
            failures: Throttled::new("failures of commands"),
        }
    }
}

impl Fleet {
    /// Reaps the commands that ended; a failure is reported on standard error. A command
    /// ended by the stop signal that usock passed on, or that usock has pending (sent to the
    /// whole group at once), did not fail.
    fn reap(&mut self, waited: &Waited) {
        let passed_on = self.passed_on.or_else(|| waited.pending_stop());
        let failures = &mut self.failures;
        self.live.retain(|&pid| match reap(pid, libc::WNOHANG) {
            None => true,
            Some(status) => {
                let stopped = passed_on.is_some_and(|sig| i32::from(status) == 128 + sig);
                if status != 0 && !stopped {
                    failures.report(
                        || format!("command pid {pid} ended with status {status}"),
                        |hidden| format!("{hidden} more command(s) ended with a failure status so far, the last pid {pid} with status {status}"),
                    );
                }
                false
            }
        });
    }

    fn forward(&mut self, (sig, sender): (libc::c_int, Sender)) {
        // A stop, passed on or not (a terminal's Ctrl-C reached them already): they got it.
        if matches!(sig, libc::SIGTERM | libc::SIGHUP | libc::SIGINT) {
            self.passed_on = Some(sig);
        }
        if passed_on(sig, sender) {
            for &pid in &self.live {
                // SAFETY: plain kill of our child, not yet reaped.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }

    /// Waits for every command, passing on the signals that come meanwhile.
    fn finish(mut self, waited: &Waited) {
        loop {
            self.reap(waited);
            if self.live.is_empty() {
                // The total at exit, as for refusals, however few failed.
                if self.failures.shown > 0 {
                    eprintln!(
                        "usock: {} command(s) ended with a failure status",
                        u64::from(self.failures.shown) + self.failures.hidden
                    );
                }
                return;
            }
            if let Some(signal) = waited.next() {
                self.forward(signal);
            }
        }
    }
}
