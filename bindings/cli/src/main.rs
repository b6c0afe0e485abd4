//! `usock`: private places for Unix domain sockets from the shell, and a socket-activation
//! front for any server. A thin layer over the usock library: every check is the library's.

mod accept;
mod connect;
mod exit;
mod run;
mod sockets;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use std::os::unix::ffi::OsStrExt;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use exit::{EXIT_CODES, failure};

#[derive(Parser)]
#[command(
    name = "usock",
    version,
    about = "Private places for Unix domain sockets: for shell scripts, and for any server by socket activation",
    after_help = EXIT_CODES.as_str()
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make a fresh private directory (mode 0700, unpredictable name) and print its path.
    ///
    /// No process holds it afterwards, so it is marked: every sweep keeps it for a day (24
    /// hours from now), whatever its grace period. Remove it with `usock clean`.
    #[command(after_help = EXIT_CODES.as_str())]
    Dir {
        /// The parent to make it in (default: $XDG_RUNTIME_DIR, $TMPDIR, /tmp, /var/tmp; on
        /// macOS the per-user temporary directory first).
        #[arg(long)]
        parent: Option<PathBuf>,
    },
    /// Make a fresh private directory and print the path of a socket in it, for a program
    /// that binds by itself. Kept from sweeps for a day, as with `usock dir`.
    #[command(after_help = EXIT_CODES.as_str())]
    Path {
        /// The socket's name in the directory (no control characters: the path is printed as
        /// one line).
        #[arg(long, default_value = "sock")]
        name: String,
        /// The parent to make the directory in.
        #[arg(long)]
        parent: Option<PathBuf>,
    },
    /// Remove a directory that usock made (its sockets, then it), with the library's checks:
    /// anything that is not a usock directory of yours is refused, and so is one that a live
    /// process holds (exit code 15) unless --force. One from `usock dir` or `usock path` is
    /// held by nothing.
    #[command(after_help = EXIT_CODES.as_str())]
    Clean {
        /// The directory, as `usock dir` printed it.
        dir: PathBuf,
        /// Remove it even while a live process holds it (a server that still uses it).
        #[arg(long)]
        force: bool,
    },
    /// Remove directories left by processes that died: usock directories of yours that no
    /// process holds, unchanged for the grace period, whose sockets all refuse connections.
    #[command(after_help = EXIT_CODES.as_str())]
    Sweep {
        /// The parent to sweep (default: each automatic location); the same as --parent.
        #[arg(value_name = "PARENT", conflicts_with = "parent")]
        parent_arg: Option<PathBuf>,
        /// The parent to sweep, as with `usock dir --parent` (default: each automatic location).
        #[arg(long)]
        parent: Option<PathBuf>,
        /// Keep directories changed less than this many seconds ago.
        #[arg(long, value_name = "SECONDS", default_value = "60", allow_negative_numbers = true, value_parser = parse_grace)]
        grace: u64,
    },
    /// Explain, directory by directory from /, whether a parent (or a socket path's parent)
    /// passes usock's checks, and why not. Without PATH: explain the automatic choice, each
    /// candidate in turn ($XDG_RUNTIME_DIR, $TMPDIR, /tmp, /var/tmp; on macOS the per-user
    /// temporary directory first), which one is taken and
    /// why each earlier one is skipped.
    #[command(after_help = EXIT_CODES.as_str())]
    Check {
        /// A directory or a symbolic link (checked as `usock dir --parent` would take it), or a
        /// socket path (its parent is checked).
        path: Option<PathBuf>,
    },
    /// Bind listening sockets, then run CMD with them from descriptor 3 (socket activation:
    /// LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES; also USOCK_PATH, USOCK_PATH_<fd> and USOCK_DIR),
    /// wait, clean up, and exit with CMD's status (128+n when signal n killed it). The options
    /// of systemd-socket-activate, with the same spelling and meaning.
    ///
    /// Sockets: those passed to usock run itself (LISTEN_FDS, LISTEN_PID) first, then each
    /// -l/--listen, --path and --name in command-line order; with none of these three, one
    /// socket `sock` in a private directory. -l and --path follow usock's well-known-path rules
    /// (directory writable by you alone, a live server refused, a stale socket replaced, mode
    /// 0600, removed at the end); --name sockets go in a private directory (0700, or 0710 with
    /// --group). With some -l and no --now, CMD starts on the first connection or datagram;
    /// otherwise at once.
    ///
    /// SIGTERM and SIGHUP sent to `usock run` are passed to CMD, and so is a SIGINT that a
    /// process sent (Linux, FreeBSD); Ctrl-C in a terminal reaches CMD by itself. CMD gets
    /// SIGKILL if `usock run` dies (Linux, FreeBSD). A CMD that daemonizes and exits makes
    /// `usock run` clean up while the daemon still serves: run servers in the foreground.
    ///
    /// With --accept, usock accepts: one CMD per admitted connection (as descriptor 3 with
    /// LISTEN_FDS=1, or standard input and output with --inetd), at most --max-instances at a
    /// time; it runs until SIGTERM, SIGHUP or SIGINT, passes it on to every running CMD, waits
    /// for them and exits with 128+n. A CMD that fails is reported on standard error: the
    /// first ten one by one, then a count at most once a minute, and the total at exit.
    #[command(after_help = EXIT_CODES.as_str())]
    Run {
        /// Listen on this socket path (absolute, or relative to the current directory), as
        /// systemd-socket-activate -l; may be repeated. Ports, host:port, @abstract and vsock:
        /// addresses are refused (status 2).
        #[arg(short = 'l', long, value_name = "PATH")]
        listen: Vec<std::ffi::OsString>,
        /// Listen at this well-known path, as -l (may be repeated), but without -l CMD starts at
        /// once (with -l it waits for the first connection, as -l does).
        #[arg(long)]
        path: Vec<PathBuf>,
        /// A socket of this name in the private directory (may be repeated), also its name in
        /// LISTEN_FDNAMES: printable ASCII without ':', at most 255 bytes.
        #[arg(long)]
        name: Vec<std::ffi::OsString>,
        /// The parent to make the private directory in.
        #[arg(long)]
        parent: Option<PathBuf>,
        /// Share the private directory with this group (a name or a gid): directory 0710,
        /// sockets 0660.
        #[arg(long, value_name = "GROUP")]
        group: Option<std::ffi::OsString>,
        /// With -l or --path: take over from a live server there (rename over it).
        #[arg(long)]
        replace: bool,
        /// Datagram sockets (SOCK_DGRAM) instead of stream sockets.
        #[arg(short = 'd', long, conflicts_with = "seqpacket")]
        datagram: bool,
        /// SOCK_SEQPACKET sockets instead of stream sockets.
        #[arg(long)]
        seqpacket: bool,
        /// Accept connections: one CMD per connection.
        #[arg(short = 'a', long)]
        accept: bool,
        /// The socket (with --accept: the connection) as standard input and output, without
        /// LISTEN_* variables.
        #[arg(long)]
        inetd: bool,
        /// Start CMD at once even with -l (refused with --accept).
        #[arg(long)]
        now: bool,
        /// Set VAR for CMD (VAR alone: usock's own value of VAR, empty when unset); may be
        /// repeated.
        #[arg(short = 'E', long, value_name = "VAR[=VALUE]")]
        setenv: Vec<std::ffi::OsString>,
        /// Names for LISTEN_FDNAMES, in descriptor order (one name: every descriptor), as
        /// systemd-socket-activate sets them; may be repeated.
        #[arg(long, value_name = "NAME[:NAME...]")]
        fdname: Vec<std::ffi::OsString>,
        /// With --accept: at most N commands at a time; at the bound, usock stops accepting
        /// until one ends.
        #[arg(long, value_name = "N", default_value_t = 64, requires = "accept")]
        max_instances: usize,
        /// With --accept: who may connect: self-or-root (default), self, uid:N[,N...],
        /// group:NAME. A refused peer is closed at once and reported on standard error (the
        /// first ten one by one, then a count at most once a minute, and the total at exit).
        #[arg(long, value_name = "WHO", requires = "accept")]
        allow: Option<String>,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true)]
        command: Vec<std::ffi::OsString>,
    },
    /// Connect to the socket at PATH, check who serves it, then copy standard input to it and
    /// it to standard output: a checked `nc -U` for scripts.
    ///
    /// The server must run as you or root (--server-uid says otherwise), by its credentials at
    /// listen(); anyone else is refused (exit 13) before a byte is sent. Stream and seqpacket:
    /// EOF on standard input shuts down the socket's write side, and the server's EOF ends the
    /// command (exit 0). Seqpacket and datagram: each read of standard input (at most 64 KiB;
    /// one line typed, or one write into a pipe) is one packet. Datagram: a datagram carries no
    /// credentials, so --server-uid any is required; replies come to a socket in a private
    /// directory of its own (removed on exit), and the command ends --linger seconds after
    /// standard input ended and the last reply came. Paths longer than sun_path work (Linux,
    /// FreeBSD; datagram: Linux).
    #[command(after_help = EXIT_CODES.as_str())]
    Connect {
        /// The socket.
        path: PathBuf,
        /// A datagram socket (SOCK_DGRAM); needs --server-uid any.
        #[arg(short = 'd', long, conflicts_with = "seqpacket")]
        datagram: bool,
        /// A sequenced-packet socket (SOCK_SEQPACKET).
        #[arg(long)]
        seqpacket: bool,
        /// Who must serve: self (you), root, a uid, a user name, or any (no check). Default: you or
        /// root.
        #[arg(long, value_name = "self|root|UID|USER|any", value_parser = connect::parse_server_uid)]
        server_uid: Option<connect::ServerUid>,
        /// Datagram: seconds to wait for replies after standard input ends and after each reply.
        #[arg(long, value_name = "SECONDS", default_value = "1", allow_negative_numbers = true, value_parser = connect::parse_seconds)]
        linger: Duration,
    },
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Dir { parent } => make(parent, None),
        Command::Path { name, parent } => match check_printable_name(&name) {
            Ok(()) => make(parent, Some(name)),
            Err(why) => {
                eprintln!("usock: --name {why}");
                return ExitCode::from(2);
            }
        },
        Command::Clean { dir, force } => clean(&dir, force),
        Command::Sweep {
            parent_arg,
            parent,
            grace,
        } => sweep(parent.or(parent_arg), grace),
        Command::Check { path: Some(path) } => Ok(check(&path)),
        Command::Check { path: None } => Ok(check_automatic()),
        Command::Run { .. } => {
            let sub = matches
                .subcommand_matches("run")
                .expect("the run subcommand");
            let (options, command) = run_options(cli.command, sub);
            if options.layout.parent.is_none()
                && options
                    .layout
                    .specs
                    .iter()
                    .any(|s| matches!(s, run::Spec::Name(_)))
            {
                note_fallback();
            }
            run::run(options, command)
        }
        Command::Connect {
            path,
            datagram,
            seqpacket,
            server_uid,
            linger,
        } => {
            let ty = match (datagram, seqpacket) {
                (true, _) => usock::SocketType::Datagram,
                (_, true) => usock::SocketType::SeqPacket,
                _ => usock::SocketType::Stream,
            };
            let server = server_uid.unwrap_or(connect::ServerUid::SelfOrRoot);
            Ok(connect::connect(
                &path,
                &connect::Options { ty, server, linger },
            ))
        }
    };
    result.unwrap_or_else(|e| failure(&e))
}

/// `usock run`'s options; its sockets in command-line order (clap keeps each option's values
/// apart, their indices tell the order).
fn run_options(
    command: Command,
    sub: &clap::ArgMatches,
) -> (run::Options, Vec<std::ffi::OsString>) {
    let Command::Run {
        listen,
        path,
        name,
        parent,
        group,
        replace,
        datagram,
        seqpacket,
        accept,
        inetd,
        now,
        setenv,
        fdname,
        max_instances,
        allow,
        command,
    } = command
    else {
        unreachable!("run_options is called for usock run")
    };
    let at = |id: &str| {
        sub.indices_of(id)
            .map(Iterator::collect::<Vec<_>>)
            .unwrap_or_default()
    };
    let mut specs: Vec<(usize, run::Spec)> = Vec::new();
    let listening = !listen.is_empty();
    specs.extend(
        at("listen")
            .into_iter()
            .zip(listen.into_iter().map(run::Spec::Listen)),
    );
    specs.extend(
        at("path")
            .into_iter()
            .zip(path.into_iter().map(run::Spec::Path)),
    );
    specs.extend(
        at("name")
            .into_iter()
            .zip(name.into_iter().map(run::Spec::Name)),
    );
    specs.sort_by_key(|(i, _)| *i);
    let mut specs: Vec<run::Spec> = specs.into_iter().map(|(_, s)| s).collect();
    if specs.is_empty() {
        specs.push(run::Spec::Name("sock".into()));
    }
    let ty = match (datagram, seqpacket) {
        (true, _) => usock::SocketType::Datagram,
        (_, true) => usock::SocketType::SeqPacket,
        _ => usock::SocketType::Stream,
    };
    let fdnames = (!fdname.is_empty()).then(|| {
        fdname
            .iter()
            .flat_map(|f| f.as_encoded_bytes().split(|&b| b == b':'))
            .map(|n| std::ffi::OsStr::from_bytes(n).to_owned())
            .collect()
    });
    let options = run::Options {
        layout: run::Layout {
            specs,
            parent,
            group: None,
            replace,
            ty,
        },
        listen: listening,
        now,
        accept,
        inetd,
        setenv,
        fdnames,
        max_instances,
        allow,
        group,
    };
    (options, command)
}

/// `usock path --name`: a name whose path prints as one line. A newline or another control
/// character would split it for `$(usock path)`, `read` and every line-based reader. Checked
/// here rather than by clap, whose message would echo the name with its control characters.
fn check_printable_name(text: &str) -> Result<(), String> {
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "{text:?} contains a control character ({c:?}): the path printed would not be one line"
        )),
        None => Ok(()),
    }
}

/// `usock dir` and `usock path`: the directory stays, held by nothing, marked to be kept from
/// sweeps for a day.
fn make(parent: Option<PathBuf>, name: Option<String>) -> usock::Result<ExitCode> {
    if parent.is_none() {
        note_fallback();
    }
    let dir = usock::PrivateDir::create(parent.as_deref())?;
    let out = match &name {
        Some(name) => dir.socket_path(Some(name.as_ref()))?,
        None => dir.path().to_owned(),
    };
    // The path first, the mark after: a directory whose path never reached anyone is removed
    // (the handle's drop), not kept from every sweep for a day.
    if let Err(e) = deliver(&out) {
        eprintln!(
            "usock: cannot write {} to standard output: {e}; removed it",
            out.display()
        );
        return Ok(exit::code(usock::ErrorKind::System));
    }
    dir.keep()?;
    Ok(ExitCode::SUCCESS)
}

/// Is standard output `/dev/null`? A closed one is too: Rust's start-up code opens `/dev/null`
/// on a closed descriptor 0, 1 or 2.
fn stdout_is_null() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let out = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from);
    match (
        out.and_then(|f| f.metadata()),
        std::fs::metadata("/dev/null"),
    ) {
        (Ok(out), Ok(null)) => {
            !out.is_file() && !out.is_dir() && out.rdev() == null.rdev() && out.dev() == null.dev()
        }
        _ => false,
    }
}

/// Writes `path` and a newline to standard output, and says when it did not get there: a
/// closed or null standard output, or a reader that went away (`EPIPE`, where `println!` would
/// panic).
fn deliver(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::ffi::OsStrExt;
    if stdout_is_null() {
        return Err(std::io::Error::other(
            "it is closed or /dev/null, so the path would reach nobody",
        ));
    }
    let mut out = std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?);
    let mut line = path.as_os_str().as_bytes().to_vec();
    line.push(b'\n');
    out.write_all(&line)
}

/// `usock clean DIR [--force]`: without --force, a directory a live process holds is refused.
fn clean(dir: &std::path::Path, force: bool) -> usock::Result<ExitCode> {
    let taken = if force {
        usock::PrivateDir::take_over(dir, None)
    } else {
        usock::PrivateDir::take_over_unheld(dir)
    };
    match taken {
        // The library takes the directory over to remove it; the user asked to clean it.
        Err(e) => {
            let message = e.message();
            let said = message
                .strip_prefix("cannot take over ")
                .map_or_else(|| message.to_owned(), |rest| format!("cannot clean {rest}"));
            eprintln!("usock: {said}");
            if e.kind() == usock::ErrorKind::InUse && !force {
                eprintln!("usock: --force removes it anyway");
            }
            Ok(exit::code(e.kind()))
        }
        Ok(dir) if !force => match dir.answering_socket()? {
            Some(socket) => {
                eprintln!(
                    "usock: {} is in use: a server answers at {}",
                    dir.path().display(),
                    socket.display()
                );
                eprintln!("usock: --force removes it anyway");
                // Leave it as it is: dropping the handle would clean it up. The process exits
                // at once, and its descriptors with it.
                std::mem::forget(dir);
                Ok(exit::code(usock::ErrorKind::InUse))
            }
            None => dir.cleanup().map(|()| ExitCode::SUCCESS),
        },
        taken => taken?.cleanup().map(|()| ExitCode::SUCCESS),
    }
}

/// `--grace`: whole seconds, 0 or more (a negative number is named as such, not taken for an
/// option).
fn parse_grace(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(seconds) => Ok(seconds),
        Err(_) if text.parse::<i128>().is_ok_and(|n| n < 0) => Err(format!(
            "{text} is negative: a grace period is 0 seconds or more"
        )),
        Err(_) => Err(format!("{text:?} is not a whole number of seconds")),
    }
}

fn sweep(parent: Option<PathBuf>, grace: u64) -> usock::Result<ExitCode> {
    let report = usock::sweep(parent.as_deref(), Duration::from_secs(grace))?;
    for path in &report.removed {
        println!("removed {}", path.display());
    }
    for (path, why) in &report.kept {
        println!("kept {}: {why}", path.display());
    }
    println!(
        "{} removed, {} kept",
        report.removed.len(),
        report.kept.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Automatic choice passes over a `$XDG_RUNTIME_DIR` that is set: one line on stderr says why
/// (the library's rule, through `explain_automatic`).
fn note_fallback() {
    let explained = usock::explain_automatic();
    let xdg = explained
        .iter()
        .find(|c| c.label.starts_with("$XDG_RUNTIME_DIR"));
    if let Some(c) = xdg {
        if let usock::Verdict::Skipped(why) = &c.verdict {
            if why != "not set" {
                eprintln!("usock: {} not used, falling back: {why}", c.label);
            }
        }
    }
}

/// `usock check` without a path: the automatic choice, candidate by candidate.
fn check_automatic() -> ExitCode {
    for c in usock::explain_automatic() {
        match c.verdict {
            usock::Verdict::Skipped(why) => println!("{}: skipped: {why}", c.label),
            usock::Verdict::Taken(path) => {
                println!(
                    "{}: taken: private directories go in {}",
                    c.label,
                    path.display()
                );
                return ExitCode::SUCCESS;
            }
            usock::Verdict::Stops(e) => {
                println!("{}: refused: {}", c.label, e.message());
                return exit::code(e.kind());
            }
        }
    }
    println!("no candidate fits: usock dir without --parent fails (give one with --parent)");
    exit::code(usock::ErrorKind::NoDir)
}

/// What the library offers for socket paths longer than `sun_path`, which the command's `dir`,
/// `path` and `run` do not make (`connect` connects to them).
fn long_paths_hint() {
    if cfg!(any(target_os = "linux", target_os = "freebsd")) {
        println!(
            "long socket paths: the usock library can bind and connect them through a descriptor \
             of the directory when asked (Rust DirOptions::long_paths, C USOCK_LONG_PATHS, \
             Python PrivateDir(long_paths=True)); usock dir, path and run do not make them \
             (usock connect connects to them): give them a shorter --parent"
        );
    }
}

/// `usock check`: a directory, or a symbolic link, as `usock dir --parent` would take it (the
/// library's walk decides whether a link is followed), or the parent of anything else.
fn check(path: &std::path::Path) -> ExitCode {
    let found = std::fs::symlink_metadata(path);
    let as_parent = found.as_ref().is_ok_and(|m| m.is_dir() || m.is_symlink());
    let target = if as_parent || path.as_os_str().is_empty() {
        path.to_owned()
    } else {
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
        let what = match found {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist",
            _ => "is neither a directory nor a symbolic link",
        };
        println!("{} {what}: checking its parent", path.display());
        parent.map_or_else(|| PathBuf::from("."), |p| p.to_owned())
    };
    let report = usock::explain_parent(&target);
    for step in &report.steps {
        println!("{}: {}", step.path.display(), step.found);
    }
    match &report.result {
        Ok(resolved) => {
            println!("{}: passes usock's parent checks", resolved.display());
            match &report.room {
                Some(Ok(())) => println!(
                    "it leaves room in sun_path for a private directory and a socket in it"
                ),
                Some(Err(e)) => {
                    println!("but: {}", e.message());
                    long_paths_hint();
                }
                None => {}
            }
            match &report.well_known {
                Some(Ok(())) => {
                    println!("it may also hold a well-known socket path (usock run --path)")
                }
                Some(Err(e)) => println!("not for a well-known socket path: {}", e.message()),
                None => {}
            }
            if let Some(status) = socket_path_too_long(path, as_parent, "but") {
                return status;
            }
            match &report.room {
                Some(Err(e)) => exit::code(e.kind()),
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            println!("refused: {}", e.message());
            // A socket path that cannot fit is 12 whatever its parent (as the docs say).
            socket_path_too_long(path, as_parent, "and").unwrap_or_else(|| exit::code(e.kind()))
        }
    }
}

/// `usock check PATH` for a socket path (not a directory) longer than `sun_path` allows: says
/// so (after `word`, "but" or "and") and gives status 12; `None` for any other path.
fn socket_path_too_long(path: &std::path::Path, as_parent: bool, word: &str) -> Option<ExitCode> {
    let len = path.as_os_str().len();
    if as_parent || len <= usock::MAX_SOCKET_PATH {
        return None;
    }
    println!(
        "{word} {} is {len} bytes, longer than sun_path allows ({})",
        path.display(),
        usock::MAX_SOCKET_PATH
    );
    long_paths_hint();
    Some(exit::code(usock::ErrorKind::TooLong))
}
