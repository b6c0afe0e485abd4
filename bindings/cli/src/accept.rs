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
    let outcome = accept_until_stopped(
        &listeners,
        &launches,
        opts,
        (policy, &mut refusals),
        waited,
        &mut fleet,
    );
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
    for s in listeners {
        set_nonblocking(s.fd.as_raw_fd(), true);
    }
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

/// Refusals reported one by one before the rest are only counted.
const REFUSALS_SHOWN: u32 = 10;
/// How often, at most, the count of the refusals not shown is reported.
const REFUSAL_COUNT_EVERY: Duration = Duration::from_secs(60);

/// The reports of refused connections: the first [`REFUSALS_SHOWN`] one by one, then a count at
/// most every [`REFUSAL_COUNT_EVERY`] (and the total at exit), so that a peer the policy
/// refuses cannot fill usock's standard error (a log, a disk) by connecting in a loop.
#[derive(Default)]
struct Refusals {
    shown: u32,
    last_count: Option<Instant>,
}

impl Refusals {
    fn report(&mut self, why: &str, policy: &AcceptPolicy) {
        if self.shown < REFUSALS_SHOWN {
            self.shown += 1;
            eprintln!("usock: refused: {why}");
            if self.shown == REFUSALS_SHOWN {
                eprintln!(
                    "usock: further refusals are only counted: the count is reported at most every {} s, and at exit",
                    REFUSAL_COUNT_EVERY.as_secs()
                );
                self.last_count = Some(Instant::now());
            }
            return;
        }
        if self
            .last_count
            .is_some_and(|at| at.elapsed() < REFUSAL_COUNT_EVERY)
        {
            return;
        }
        self.last_count = Some(Instant::now());
        let (refused, last) = policy.refused();
        let last = last.map_or_else(String::new, |uid| format!(", the last from uid {uid}"));
        eprintln!("usock: {refused} connection(s) refused so far{last}");
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

fn set_nonblocking(fd: RawFd, on: bool) {
    // SAFETY: fcntl on our descriptor.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        let flags = if on {
            flags | libc::O_NONBLOCK
        } else {
            flags & !libc::O_NONBLOCK
        };
        libc::fcntl(fd, libc::F_SETFL, flags);
    }
}

/// The commands started in accept mode and still running.
#[derive(Default)]
struct Fleet {
    live: Vec<libc::pid_t>,
    /// The stop signal that reached the commands (passed on, or from the terminal): ending by
    /// it is no failure to report.
    passed_on: Option<libc::c_int>,
}

impl Fleet {
    /// Reaps the commands that ended; a failure is reported on standard error. A command
    /// ended by the stop signal that usock passed on, or that usock has pending (sent to the
    /// whole group at once), did not fail.
    fn reap(&mut self, waited: &Waited) {
        let passed_on = self.passed_on.or_else(|| waited.pending_stop());
        self.live.retain(|&pid| match reap(pid, libc::WNOHANG) {
            None => true,
            Some(status) => {
                let stopped = passed_on.is_some_and(|sig| i32::from(status) == 128 + sig);
                if status != 0 && !stopped {
                    eprintln!("usock: command pid {pid} ended with status {status}");
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
                return;
            }
            if let Some(signal) = waited.next() {
                self.forward(signal);
            }
        }
    }
}
