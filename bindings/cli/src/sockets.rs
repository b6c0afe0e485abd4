//! The sockets `usock run` passes on: those it inherited through `LISTEN_FDS`, then its own,
//! in command-line order (`-l`/`--listen` and `--path` at well-known paths, `--name` in a private
//! directory), with their names for `LISTEN_FDNAMES` and their paths for `USOCK_PATH_<fd>`.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use usock::{BindMode, BoundPath, DirOptions, PrivateDir, SocketType};

/// One socket asked for on the command line, in its order.
pub enum Spec {
    /// `-l`/`--listen ADDR`: a file path (the other forms systemd takes are refused).
    Listen(OsString),
    /// `--path PATH`: a well-known path, as `-l PATH`.
    Path(PathBuf),
    /// `--name NAME`: a socket in the private directory.
    Name(OsString),
}

/// Where the sockets go and of what type.
pub struct Layout {
    pub specs: Vec<Spec>,
    pub parent: Option<PathBuf>,
    /// `--group`: the private directory shared with this group (its gid).
    pub group: Option<u32>,
    pub replace: bool,
    pub ty: SocketType,
}

/// A socket to pass on at the next descriptor.
pub struct Socket {
    pub fd: OwnedFd,
    /// Its name in `LISTEN_FDNAMES` when no `--fdname` is given.
    pub name: OsString,
    /// Its path, for the sockets usock bound.
    pub path: Option<PathBuf>,
}

/// What usock made, removed when the command is done.
#[derive(Default)]
pub struct Made {
    pub dir: Option<PrivateDir>,
    paths: Vec<BoundPath>,
}

impl Made {
    pub fn clean(self) {
        let dir = self.dir.map(PrivateDir::cleanup);
        let paths = self.paths.into_iter().map(BoundPath::unbind);
        for result in dir.into_iter().chain(paths) {
            if let Err(e) = result {
                eprintln!("usock: {}", e.message());
            }
        }
    }
}

/// A usage error: the message, for exit status 2.
pub type Usage = String;

/// Checks the command line's sockets before anything is made.
pub fn check(layout: &Layout) -> Result<(), Usage> {
    let mut private = false;
    for spec in &layout.specs {
        match spec {
            Spec::Listen(addr) => {
                listen_path(addr)?;
            }
            Spec::Path(_) => {}
            Spec::Name(name) => {
                check_fd_name("--name", name)?;
                private = true;
            }
        }
    }
    if !private && (layout.parent.is_some() || layout.group.is_some()) {
        return Err("--parent and --group apply to the private directory, which only --name (or no socket option at all) makes".into());
    }
    let well_known = layout.specs.iter().any(|s| !matches!(s, Spec::Name(_)));
    if layout.replace && !well_known {
        return Err("--replace applies to -l/--listen or --path".into());
    }
    Ok(())
}

/// The path that `-l ADDR` names, or why usock does not take the form.
fn listen_path(addr: &OsStr) -> Result<PathBuf, Usage> {
    let bytes = addr.as_bytes();
    let shown = addr.to_string_lossy();
    let refused = |form: &str| {
        Err(format!(
            "-l {shown}: {form} is not a Unix domain socket path; usock run listens on file paths only"
        ))
    };
    let all_digits = |b: &[u8]| !b.is_empty() && b.iter().all(u8::is_ascii_digit);
    if bytes.is_empty() {
        return Err("-l needs a path".into());
    }
    if bytes[0] == b'/' || bytes.starts_with(b"./") || bytes.starts_with(b"../") {
        return Ok(PathBuf::from(addr));
    }
    if bytes[0] == b'@' {
        return refused("an abstract socket (@NAME)");
    }
    if bytes.starts_with(b"vsock:") {
        return refused("a vsock address");
    }
    if all_digits(bytes) {
        return refused("a port number");
    }
    if bytes[0] == b'[' {
        return refused("an IPv6 address and port");
    }
    if let Some(colon) = bytes.iter().rposition(|&b| b == b':') {
        if all_digits(&bytes[colon + 1..]) {
            return refused("a host:port address");
        }
    }
    Ok(PathBuf::from(addr))
}

/// The longest descriptor name systemd takes (`FDNAME_MAX`).
const FD_NAME_MAX: usize = 255;

/// systemd's rule for a name in `LISTEN_FDNAMES` (`fdname_is_valid`): printable ASCII without
/// `:`, the list's separator, and at most 255 bytes. Anything else would corrupt the list.
pub fn check_fd_name(option: &str, name: &OsStr) -> Result<(), Usage> {
    let bytes = name.as_bytes();
    let shown = bytes.escape_ascii();
    if bytes.len() > FD_NAME_MAX {
        return Err(format!(
            "{option} is {} bytes, the limit of a descriptor name in LISTEN_FDNAMES is {FD_NAME_MAX}",
            bytes.len()
        ));
    }
    match bytes
        .iter()
        .position(|&b| b == b':' || !(0x20..0x7f).contains(&b))
    {
        Some(at) => Err(format!(
            "{option} \"{shown}\": byte {at} is \"{}\"; a descriptor name in LISTEN_FDNAMES takes printable ASCII except ':'",
            [bytes[at]].escape_ascii()
        )),
        None => Ok(()),
    }
}

/// The sockets passed to `usock run` itself: `LISTEN_FDS` descriptors from 3 when
/// `LISTEN_PID` is this process, named from `LISTEN_FDNAMES` (`unknown` where it has no
/// name, as `sd_listen_fds_with_names` says). Made close-on-exec here; the command gets them
/// back at the same numbers.
pub fn inherited() -> Result<Vec<Socket>, Usage> {
    let var = |k: &str| std::env::var(k).ok();
    if var("LISTEN_PID").and_then(|p| p.parse::<u32>().ok()) != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let count: RawFd = match var("LISTEN_FDS").map(|n| n.parse()) {
        None => 0,
        Some(Ok(n)) if (0..=4096).contains(&n) => n,
        Some(_) => return Err("LISTEN_FDS is not a count of descriptors".into()),
    };
    let names = var("LISTEN_FDNAMES").unwrap_or_default();
    let mut names = names.split(':').filter(|_| !names.is_empty());
    (3..3 + count)
        .map(|fd| {
            let name = names.next().unwrap_or("unknown").into();
            adopt(fd).map(|fd| Socket {
                fd,
                name,
                path: None,
            })
        })
        .collect()
}

/// Takes the inherited descriptor `fd`, close-on-exec from now on.
fn adopt(fd: RawFd) -> Result<OwnedFd, Usage> {
    // SAFETY: fcntl on a number: fails with EBADF when nothing is open there.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(format!(
            "LISTEN_FDS names descriptor {fd}, which is not open"
        ));
    }
    // SAFETY: the socket-activation protocol hands descriptors 3..3+LISTEN_FDS to this
    // process; nothing else in it owns them.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Binds usock's own sockets in command-line order; `made` gets what to clean up.
pub fn bind(layout: &Layout, made: &mut Made) -> usock::Result<Vec<Socket>> {
    let mode = if layout.replace {
        BindMode::Replace
    } else {
        BindMode::Exclusive
    };
    let mut sockets = Vec::new();
    for spec in &layout.specs {
        let socket = match spec {
            Spec::Listen(addr) => {
                let path = listen_path(addr).expect("checked before");
                bind_path(&path, layout.ty, mode, made)?
            }
            Spec::Path(path) => bind_path(path, layout.ty, mode, made)?,
            Spec::Name(name) => {
                if made.dir.is_none() {
                    made.dir = Some(make_dir(layout)?);
                }
                let dir = made.dir.as_ref().expect("just made");
                Socket {
                    fd: dir.bind(Some(name), layout.ty, None)?,
                    name: name.clone(),
                    path: Some(dir.socket_path(Some(name))?),
                }
            }
        };
        sockets.push(socket);
    }
    Ok(sockets)
}

fn make_dir(layout: &Layout) -> usock::Result<PrivateDir> {
    let mut options = DirOptions::default();
    if let Some(gid) = layout.group {
        options = options.share_with_group(gid);
    }
    PrivateDir::create_with(layout.parent.as_deref(), &options)
}

/// A well-known path's socket, named in `LISTEN_FDNAMES` after its file name (`unknown` when
/// that is not a valid descriptor name).
fn bind_path(
    path: &Path,
    ty: SocketType,
    mode: BindMode,
    made: &mut Made,
) -> usock::Result<Socket> {
    // `./x.sock` binds as `x.sock` (the library makes it absolute): no `/./` in the paths
    // the command sees. A path that does not end in a name (`d/`, `d/.`) goes as it is, for
    // the library to refuse before it makes anything: rebuilt from its components it would
    // name the directory `d`, and leave `d.lock` beside it.
    let ends_in_name = path
        .file_name()
        .is_some_and(|name| path.as_os_str().as_bytes().ends_with(name.as_bytes()));
    let path: PathBuf = if ends_in_name {
        path.components()
            .filter(|c| *c != std::path::Component::CurDir)
            .collect()
    } else {
        path.to_owned()
    };
    let (bound, fd) = BoundPath::bind(&path, ty, None, mode)?;
    let path = bound.path().to_owned();
    made.paths.push(bound);
    let name = path
        .file_name()
        .filter(|n| check_fd_name("", n).is_ok())
        .map_or_else(|| OsString::from("unknown"), OsStr::to_owned);
    Ok(Socket {
        fd,
        name,
        path: Some(path),
    })
}

/// The gid of group `group`: a number, or a name looked up in the group database.
pub fn group_id(group: &OsStr) -> Result<u32, Usage> {
    if let Some(gid) = group.to_str().and_then(|g| g.parse().ok()) {
        return Ok(gid);
    }
    let not_found = || format!("group {}: no such group", group.to_string_lossy());
    let name = std::ffi::CString::new(group.as_bytes()).map_err(|_| not_found())?;
    // SAFETY: getgrnam with a NUL-terminated name; the record is read at once, before any
    // other call could reuse its static storage (usock run is single-threaded here).
    let gid = unsafe {
        let entry = libc::getgrnam(name.as_ptr());
        (!entry.is_null()).then(|| (*entry).gr_gid)
    };
    gid.ok_or_else(not_found)
}

/// The raw descriptors of `sockets`, in order.
pub fn raw(sockets: &[Socket]) -> Vec<RawFd> {
    sockets.iter().map(|s| s.fd.as_raw_fd()).collect()
}
