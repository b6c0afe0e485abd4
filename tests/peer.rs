//! Who may connect: peer credentials both ways, the accept policy and group sharing, with
//! clients that really run as other users (root drops privileges in a child before `exec`).
//! The tests that need another user return early when not run as root.

mod common;

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use common::{NOBODY, OTHER_UID, Scratch, in_child, mode};
use usock::{AcceptPolicy, Allow, ConnectOptions, ErrorKind, PrivateDir, Server, SocketType};

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A client started by [`client_as`], with the copy of the test binary it runs.
struct Client {
    child: std::process::Child,
    _exe: Scratch,
}

/// Starts this binary's `child_client` as `uid` with primary group `gid` and supplementary
/// `groups`, connecting to `socket`.
fn client_as(uid: u32, gid: u32, groups: &[u32], socket: &Path) -> Client {
    spawn_as(
        uid,
        gid,
        groups,
        "child_client",
        &[("USOCK_TEST_SOCKET", socket)],
    )
}

/// Starts this binary's child test `name` as `uid` with primary group `gid` and supplementary
/// `groups` (exactly those), with `env` set and its output piped. The binary is copied where
/// other users can run it.
fn spawn_as(uid: u32, gid: u32, groups: &[u32], name: &str, env: &[(&str, &Path)]) -> Client {
    let place = Scratch::new("exe");
    let exe = place.path().join("test-binary");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
    let groups: Vec<libc::gid_t> = groups.to_vec();
    let mut cmd = common::child_command(&exe, name);
    cmd.envs(env.iter().copied()).stdout(Stdio::piped());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setgroups(groups.len() as _, groups.as_ptr()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // A copy just written can be briefly "busy" while another test thread's fork holds it.
    for _ in 0..100 {
        match cmd.spawn() {
            Ok(child) => return Client { child, _exe: place },
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("spawn: {e}"),
        }
    }
    panic!("the test binary stayed busy");
}

/// What a client run by [`client_as`] saw: "answered", "closed" (refused: the server closed the
/// connection at once), or "error <errno>" when it could not connect.
fn outcome(client: Client) -> String {
    let out = client.child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.find("OUTCOME ").map(|at| l[at + 8..].to_owned()))
        .unwrap_or_else(|| panic!("no outcome: {text}"))
}

#[test]
#[ignore = "run by the tests below as another user"]
fn child_client() {
    if !in_child() {
        return;
    }
    let socket = std::env::var_os("USOCK_TEST_SOCKET").unwrap();
    let outcome = match UnixStream::connect(&socket) {
        Ok(mut s) => {
            let _ = s.write_all(b"?");
            let mut b = [0u8; 1];
            match s.read(&mut b) {
                Ok(1) => "answered".to_owned(),
                _ => "closed".to_owned(),
            }
        }
        Err(e) => format!("error {}", e.raw_os_error().unwrap_or(0)),
    };
    println!("OUTCOME {outcome}");
}

/// A listener anyone can reach (mode 0777 in a 0755 directory), for clients of other users.
fn open_listener(scratch: &Scratch) -> (UnixListener, std::path::PathBuf) {
    let path = scratch.path().join("open.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    (listener, path)
}

/// Serves `listener` with `policy` (answering each admitted connection) until every client has
/// finished; returns the admitted peers and each client's outcome, in order. Order of arrival
/// does not matter: refused connections are closed whenever they come.
fn serve(
    listener: &UnixListener,
    policy: &AcceptPolicy,
    clients: Vec<Client>,
) -> (Vec<usock::Peer>, Vec<String>) {
    listener.set_nonblocking(true).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let server = s.spawn(|| {
            let mut admitted = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                match policy.accept(listener.as_fd()) {
                    Ok((conn, peer)) => {
                        let mut s = UnixStream::from(conn);
                        s.set_nonblocking(false).unwrap();
                        let mut b = [0u8; 1];
                        s.read_exact(&mut b).unwrap();
                        s.write_all(b"!").unwrap();
                        admitted.push(peer);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            admitted
        });
        let outcomes = clients.into_iter().map(outcome).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        (server.join().unwrap(), outcomes)
    })
}

#[test]
fn peer_credentials_of_a_client_in_this_process_are_ours() {
    let dir = PrivateDir::new().unwrap();
    let listener = dir.listener(None).unwrap();
    let client = UnixStream::connect(dir.socket_path(None).unwrap()).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    let peer = usock::peer(&server_side).unwrap();
    // SAFETY: plain getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!(
        (peer.uid, peer.gid, peer.pid),
        (uid, gid, Some(std::process::id() as i32))
    );
    // And the other way: the client learns who listens.
    assert_eq!(usock::peer(&client).unwrap().uid, uid);
    // A datagram socket has none: an error, never a guess.
    let dgram = dir.datagram(Some("d".as_ref())).unwrap();
    assert_eq!(usock::peer(&dgram).unwrap_err().kind(), ErrorKind::System);
    drop((client, server_side, listener, dgram));
    dir.cleanup().unwrap();
}

#[test]
fn the_default_policy_admits_the_same_user_and_refuses_nobody() {
    if !is_root() {
        return;
    }
    let scratch = Scratch::new("policy");
    let (listener, path) = open_listener(&scratch);
    let policy = AcceptPolicy::default();
    let clients = vec![
        client_as(NOBODY, NOBODY, &[], &path),
        client_as(0, 0, &[], &path),
    ];
    let (admitted, outcomes) = serve(&listener, &policy, clients);
    assert_eq!(outcomes, ["closed", "answered"]);
    assert_eq!(admitted.iter().map(|p| p.uid).collect::<Vec<_>>(), [0]);
    assert_eq!(policy.refused(), (1, Some(NOBODY)));
    common::figure(
        "attack",
        "a client of another user (uid 65534) at a server with the default accept policy: closed before the server saw it, counted",
        1,
        1,
        "tests/peer.rs::the_default_policy_admits_the_same_user_and_refuses_nobody",
    );
}

#[test]
fn a_group_policy_admits_a_member_by_a_supplementary_group_only() {
    if !is_root() {
        return;
    }
    const GROUP: u32 = 4242;
    let scratch = Scratch::new("group");
    let (listener, path) = open_listener(&scratch);
    let policy = AcceptPolicy::new(Allow::Group(GROUP)).unwrap();
    let clients = vec![
        client_as(OTHER_UID, OTHER_UID, &[], &path),
        client_as(OTHER_UID, OTHER_UID, &[GROUP], &path),
    ];
    let (admitted, outcomes) = serve(&listener, &policy, clients);
    assert_eq!(outcomes, ["closed", "answered"]);
    assert_eq!(admitted.len(), 1);
    let peer = admitted[0];
    assert_eq!(
        (peer.uid, peer.gid),
        (OTHER_UID, OTHER_UID),
        "admitted by the supplementary group"
    );
    assert_eq!(policy.refused(), (1, Some(OTHER_UID)));
    common::figure(
        "attack",
        "a group policy: a member by a supplementary group admitted, a non-member of the same uid refused",
        2,
        2,
        "tests/peer.rs::a_group_policy_admits_a_member_by_a_supplementary_group_only",
    );
}

#[test]
fn a_uid_list_never_admits_the_overflow_uid() {
    if !is_root() {
        return;
    }
    let scratch = Scratch::new("overflow");
    let (listener, path) = open_listener(&scratch);
    // 65534 is listed, and is what an unmapped user of another user namespace appears as: it
    // stands for anyone, so it is refused anyway. 54321 is listed and admitted.
    let policy = AcceptPolicy::new(Allow::Uids(vec![usock::OVERFLOW_UID, OTHER_UID])).unwrap();
    assert_eq!(usock::OVERFLOW_UID, NOBODY);
    let clients = vec![
        client_as(NOBODY, NOBODY, &[], &path),
        client_as(OTHER_UID, OTHER_UID, &[], &path),
    ];
    let (admitted, outcomes) = serve(&listener, &policy, clients);
    assert_eq!(outcomes, ["closed", "answered"]);
    assert_eq!(
        admitted.iter().map(|p| p.uid).collect::<Vec<_>>(),
        [OTHER_UID]
    );
    assert_eq!(policy.refused(), (1, Some(NOBODY)));
    common::figure(
        "attack",
        "the overflow uid 65534 in a uid list: refused; a listed uid admitted",
        2,
        2,
        "tests/peer.rs::a_uid_list_never_admits_the_overflow_uid",
    );
}

#[test]
fn a_client_refuses_a_server_of_the_wrong_uid() {
    let dir = PrivateDir::new().unwrap();
    let _listener = dir.listener(None).unwrap();
    let path = dir.socket_path(None).unwrap();
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let opts = |s| ConnectOptions::default().server(s);
    assert!(usock::connect_with(&path, SocketType::Stream, opts(Server::SelfOrRoot)).is_ok());
    assert!(usock::connect_with(&path, SocketType::Stream, opts(Server::Uid(me))).is_ok());
    let err =
        usock::connect_with(&path, SocketType::Stream, opts(Server::Uid(me + 1))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
    assert!(
        err.message().contains(&format!("runs as uid {me}")),
        "{err}"
    );
    let err =
        usock::connect_with(&path, SocketType::Datagram, opts(Server::SelfOrRoot)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid);
    dir.cleanup().unwrap();
}

#[test]
fn a_client_of_another_user_checks_the_server_is_root() {
    if !is_root() {
        return;
    }
    let scratch = Scratch::new("client-check");
    let (_listener, path) = open_listener(&scratch);
    let out = common::run_child_as(NOBODY, "child_check_server", |cmd| {
        cmd.env("USOCK_TEST_SOCKET", &path);
    });
    assert!(out.contains("checked"), "{out}");
}

#[test]
#[ignore = "run by a_client_of_another_user_checks_the_server_is_root"]
fn child_check_server() {
    if !in_child() {
        return;
    }
    let path = std::env::var_os("USOCK_TEST_SOCKET").unwrap();
    let opts = |s| ConnectOptions::default().server(s);
    // The server is root: fine for "myself or root", not for "exactly me".
    assert!(usock::connect_with(&path, SocketType::Stream, opts(Server::SelfOrRoot)).is_ok());
    let err =
        usock::connect_with(&path, SocketType::Stream, opts(Server::Uid(NOBODY))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
    println!("checked");
}

#[test]
fn a_directory_shared_with_a_group_lets_members_in_and_keeps_others_out() {
    if !is_root() {
        return;
    }
    const GROUP: u32 = 4343;
    let scratch = Scratch::new("shared");
    // Not a member: refused, nothing made.
    let err = PrivateDir::shared_with_group(Some(scratch.path()), GROUP).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Invalid, "{err}");
    assert_eq!(scratch.entries(""), Vec::<String>::new());
    // Root's own group 0 is one it belongs to.
    let dir = PrivateDir::shared_with_group(Some(scratch.path()), 0).unwrap();
    assert_eq!(mode(dir.path()), 0o710);
    let listener = dir.listener(None).unwrap();
    let path = dir.socket_path(None).unwrap();
    assert_eq!(mode(&path), 0o660);
    let policy = AcceptPolicy::new(Allow::Group(0)).unwrap();
    let clients = vec![
        client_as(OTHER_UID, OTHER_UID, &[0], &path),
        client_as(NOBODY, NOBODY, &[], &path),
    ];
    let (admitted, outcomes) = serve(&listener, &policy, clients);
    assert_eq!(
        outcomes,
        ["answered".to_owned(), format!("error {}", libc::EACCES)]
    );
    assert_eq!(
        admitted.iter().map(|p| p.uid).collect::<Vec<_>>(),
        [OTHER_UID]
    );
    drop(listener);
    dir.cleanup().unwrap();
    common::figure(
        "attack",
        "a directory shared with a group (0710, sockets 0660): a member connects, uid 65534 gets EACCES",
        2,
        2,
        "tests/peer.rs::a_directory_shared_with_a_group_lets_members_in_and_keeps_others_out",
    );
}

#[test]
fn a_server_running_as_the_overflow_uid_refuses_its_own_uid_under_the_same_user_policy() {
    if !is_root() {
        return;
    }
    let overflow = usock::overflow_uid();
    let scratch = Scratch::new("overflow-server");
    let place = scratch.subdir("srv", 0o755, overflow);
    let out = common::run_child_as(overflow, "child_overflow_server", |cmd| {
        cmd.env("USOCK_TEST_DIR", &place);
    });
    assert!(out.contains("refused its own uid"), "{out}");
    common::figure(
        "attack",
        "a server running as the overflow uid (nobody) with the same-user policy: a peer of that uid (its own) refused, counted",
        1,
        1,
        "tests/peer.rs::a_server_running_as_the_overflow_uid_refuses_its_own_uid_under_the_same_user_policy",
    );
}

#[test]
#[ignore = "run as the overflow uid by a_server_running_as_the_overflow_uid_refuses_its_own_uid_under_the_same_user_policy"]
fn child_overflow_server() {
    if !in_child() {
        return;
    }
    let place = std::path::PathBuf::from(std::env::var_os("USOCK_TEST_DIR").unwrap());
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    assert_eq!(me, usock::overflow_uid());
    let path = place.join("server.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let policy = AcceptPolicy::default();
    let _client = UnixStream::connect(&path).unwrap();
    let (conn, _) = listener.accept().unwrap();
    // The kernel says the peer's uid is the server's own: the overflow uid, which stands for
    // anyone it could not map, so it proves nothing.
    assert_eq!(usock::peer(&conn).unwrap().uid, me);
    let err = policy.screen(conn.as_fd()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
    assert!(err.message().contains("overflow uid"), "{err}");
    assert_eq!(policy.refused(), (1, Some(me)));
    println!("refused its own uid");
}

#[test]
fn a_client_refuses_a_server_running_as_the_overflow_uid() {
    if !is_root() {
        return;
    }
    let overflow = usock::overflow_uid();
    let scratch = Scratch::new("overflow-check");
    let place = scratch.subdir("srv", 0o755, overflow);
    let out = common::run_child_as(overflow, "child_check_overflow_server", |cmd| {
        cmd.env("USOCK_TEST_DIR", &place);
    });
    assert!(out.contains("refused the overflow server"), "{out}");
    common::figure(
        "attack",
        "a client's check of the server (itself or root; the overflow uid by name) against a server running as the overflow uid: refused both ways",
        2,
        2,
        "tests/peer.rs::a_client_refuses_a_server_running_as_the_overflow_uid",
    );
}

#[test]
#[ignore = "run as the overflow uid by a_client_refuses_a_server_running_as_the_overflow_uid"]
fn child_check_overflow_server() {
    if !in_child() {
        return;
    }
    let place = std::path::PathBuf::from(std::env::var_os("USOCK_TEST_DIR").unwrap());
    let overflow = usock::overflow_uid();
    let path = place.join("server.sock");
    let _listener = UnixListener::bind(&path).unwrap();
    let opts = |s| ConnectOptions::default().server(s);
    // The server runs as this process's own uid, the overflow uid: "myself" proves nothing.
    for server in [Server::SelfOrRoot, Server::Uid(overflow)] {
        let err = usock::connect_with(&path, SocketType::Stream, opts(server)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsafe, "{server:?}: {err}");
        assert!(err.message().contains("overflow uid"), "{err}");
    }
    // Unchecked, the same server is there to connect to.
    assert!(usock::connect_with(&path, SocketType::Stream, opts(Server::Any)).is_ok());
    println!("refused the overflow server");
}

#[test]
fn a_group_policy_for_the_overflow_gid_admits_no_one() {
    if !is_root() {
        return;
    }
    let overflow = usock::overflow_gid();
    let scratch = Scratch::new("overflow-group");
    let (listener, path) = open_listener(&scratch);
    let policy = AcceptPolicy::new(Allow::Group(overflow)).unwrap();
    let clients = vec![
        client_as(OTHER_UID, overflow, &[], &path),
        client_as(OTHER_UID, OTHER_UID, &[overflow], &path),
    ];
    let (admitted, outcomes) = serve(&listener, &policy, clients);
    assert_eq!(outcomes, ["closed", "closed"]);
    assert_eq!(admitted, []);
    assert_eq!(policy.refused(), (2, Some(OTHER_UID)));
    common::figure(
        "attack",
        "a group policy naming the overflow gid: clients with it as primary or supplementary group refused",
        2,
        2,
        "tests/peer.rs::a_group_policy_for_the_overflow_gid_admits_no_one",
    );
}

#[test]
#[cfg(target_os = "linux")] // user namespaces
fn a_server_in_a_user_namespace_refuses_a_peer_it_cannot_map() {
    if !is_root() {
        return;
    }
    let scratch = Scratch::new("userns");
    let (listener, path) = open_listener(&scratch);
    let client = client_as(OTHER_UID, OTHER_UID, &[], &path);
    let (conn, _) = listener.accept().unwrap();
    // A server in a new user namespace that maps no one: there both it and the client appear
    // as the overflow uid. The connection is handed to it as descriptor 10.
    let raw = std::os::fd::AsRawFd::as_raw_fd(&conn);
    let mut cmd = common::child_command(
        &std::env::current_exe().unwrap(),
        "child_screen_in_user_namespace",
    );
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWUSER) != 0 || libc::dup2(raw, 10) != 10 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = match cmd.output() {
        Err(e)
            if e.raw_os_error() == Some(libc::EPERM) || e.raw_os_error() == Some(libc::ENOSPC) =>
        {
            // (A chroot, as the fresh-machine runs use, refuses CLONE_NEWUSER with EPERM.)
            // The client is reaped, not dropped: dropping it closed its output pipe, and it
            // died writing its outcome ("failed printing to stdout: Broken pipe").
            eprintln!("skipped: no user namespace here ({e})");
            drop(conn);
            assert_eq!(outcome(client), "closed");
            return;
        }
        result => result.unwrap(),
    };
    drop(conn);
    assert_eq!(outcome(client), "closed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("refused the unmapped peer"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::figure(
        "attack",
        "a server in a user namespace that maps no one (its own uid the overflow uid), same-user policy: a client of another user, seen as the overflow uid, refused",
        1,
        1,
        "tests/peer.rs::a_server_in_a_user_namespace_refuses_a_peer_it_cannot_map",
    );
}

#[test]
#[ignore = "run in a user namespace by a_server_in_a_user_namespace_refuses_a_peer_it_cannot_map"]
fn child_screen_in_user_namespace() {
    if !in_child() {
        return;
    }
    // SAFETY: descriptor 10 was handed to this process for it to own.
    let conn = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(10) };
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    let overflow = usock::overflow_uid();
    assert_eq!(me, overflow, "an unmapped user appears as the overflow uid");
    assert_eq!(usock::peer(&conn).unwrap().uid, overflow);
    let policy = AcceptPolicy::default();
    let err = policy.screen(conn.as_fd()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsafe, "{err}");
    println!("refused the unmapped peer");
}

/// The users of the shared-group tests: a server user (not root) and a client user, each with
/// its own primary group, both in the shared group only as a supplementary group; and a user
/// outside it.
const SERVER_USER: u32 = 40001;
const MEMBER: u32 = 40002;
const OUTSIDER: u32 = 40003;
const SHARED_GROUP: u32 = 40100;

/// A child started by [`spawn_as`] that is killed if the test ends before it does.
struct Running(Option<Client>);

impl Running {
    /// Reads the child's output up to a line starting with `prefix`; returns the rest of it.
    fn line(&mut self, prefix: &str) -> String {
        use std::io::BufRead;
        let stdout = self.0.as_mut().unwrap().child.stdout.as_mut().unwrap();
        let mut reader = std::io::BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "no {prefix} line");
            if let Some(at) = line.find(prefix) {
                return line[at + prefix.len()..].trim_end().to_owned();
            }
        }
    }

    fn finish(mut self) -> String {
        outcome_line(self.0.take().unwrap())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut client) = self.0.take() {
            let _ = client.child.kill();
            let _ = client.child.wait();
        }
    }
}

/// Waits for a child and returns its whole output, asserting it passed.
fn outcome_line(client: Client) -> String {
    let out = client.child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("1 passed"), "{text}");
    text
}

#[test]
fn a_member_by_a_supplementary_group_connects_to_a_shared_directory() {
    if !is_root() {
        return;
    }
    let scratch = Scratch::new("shared-member");
    let parent = scratch.subdir("parent", 0o755, SERVER_USER);
    // The server is not root and has the group as a supplementary group only.
    let mut server = Running(Some(spawn_as(
        SERVER_USER,
        SERVER_USER,
        &[SHARED_GROUP],
        "child_shared_server",
        &[("USOCK_TEST_DIR", &parent)],
    )));
    let path = std::path::PathBuf::from(server.line("SOCKET "));
    let st = std::fs::symlink_metadata(&path).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (st.uid(), st.gid(), st.mode() & 0o7777),
        (SERVER_USER, SHARED_GROUP, 0o660),
        "the socket belongs to the shared group, not the server's own"
    );
    let outsider = outcome(client_as(OUTSIDER, OUTSIDER, &[], &path));
    let member = outcome(client_as(MEMBER, MEMBER, &[SHARED_GROUP], &path));
    assert_eq!(
        (outsider, member),
        (format!("error {}", libc::EACCES), "answered".to_owned())
    );
    let out = server.finish();
    assert!(out.contains(&format!("ADMITTED {MEMBER}")), "{out}");
    assert_eq!(
        scratch.entries("parent"),
        Vec::<String>::new(),
        "cleaned up"
    );
    common::figure(
        "attack",
        "a directory shared with a group by a non-root server: a client whose only tie is a supplementary group connects, a non-member gets EACCES",
        2,
        2,
        "tests/peer.rs::a_member_by_a_supplementary_group_connects_to_a_shared_directory",
    );
}

#[test]
#[ignore = "run as SERVER_USER by a_member_by_a_supplementary_group_connects_to_a_shared_directory"]
fn child_shared_server() {
    if !in_child() {
        return;
    }
    let parent = std::path::PathBuf::from(std::env::var_os("USOCK_TEST_DIR").unwrap());
    let dir = PrivateDir::shared_with_group(Some(&parent), SHARED_GROUP).unwrap();
    let listener = dir.listener(None).unwrap();
    println!("SOCKET {}", dir.socket_path(None).unwrap().display());
    let policy = AcceptPolicy::new(Allow::Group(SHARED_GROUP)).unwrap();
    let (conn, peer) = policy.accept(listener.as_fd()).unwrap();
    let mut conn = UnixStream::from(conn);
    let mut b = [0u8; 1];
    conn.read_exact(&mut b).unwrap();
    conn.write_all(b"!").unwrap();
    println!("ADMITTED {}", peer.uid);
    drop((conn, listener));
    dir.cleanup().unwrap();
}

#[test]
fn every_way_of_binding_in_a_shared_directory_gives_the_socket_the_group() {
    if !is_root() {
        return;
    }
    let scratch = Scratch::new("shared-binds");
    let parent = scratch.subdir("parent", 0o755, SERVER_USER);
    // Deep enough that a socket path does not fit in sun_path: long paths (Linux).
    let mut deep = parent.clone();
    while deep.as_os_str().len() < 120 {
        deep = deep.join("d".repeat(30));
        std::fs::create_dir(&deep).unwrap();
        std::fs::set_permissions(&deep, std::fs::Permissions::from_mode(0o755)).unwrap();
        common::chown(&deep, SERVER_USER);
    }
    let server = spawn_as(
        SERVER_USER,
        SERVER_USER,
        &[SHARED_GROUP],
        "child_shared_binds",
        &[("USOCK_TEST_DIR", &parent), ("USOCK_TEST_DEEP", &deep)],
    );
    let out = outcome_line(server);
    assert!(out.contains("ALL IN THE GROUP"), "{out}");
}

#[test]
#[ignore = "run as SERVER_USER by every_way_of_binding_in_a_shared_directory_gives_the_socket_the_group"]
fn child_shared_binds() {
    use std::os::unix::fs::MetadataExt;
    if !in_child() {
        return;
    }
    let var = |name| std::path::PathBuf::from(std::env::var_os(name).unwrap());
    let dir = PrivateDir::shared_with_group(Some(&var("USOCK_TEST_DIR")), SHARED_GROUP).unwrap();
    let group_and_mode = |path: &Path| {
        let st = std::fs::symlink_metadata(path).unwrap();
        (st.gid(), st.mode() & 0o7777)
    };
    let shared = (SHARED_GROUP, 0o660);
    // usock binds the socket.
    let _stream = dir.listener(Some("stream".as_ref())).unwrap();
    let _dgram = dir.datagram(Some("dgram".as_ref())).unwrap();
    // usock binds a socket the caller made (usock_bind_fd, Python's bind).
    let own = usock_socket();
    dir.bind_socket(Some("fd".as_ref()), own.as_fd(), None)
        .unwrap();
    // The caller binds, usock adopts (Prolog's usock_bind/3).
    let adopted = dir.socket_path(Some("adopted".as_ref())).unwrap();
    let _bound = UnixListener::bind(&adopted).unwrap();
    dir.adopt(Some("adopted".as_ref())).unwrap();
    for name in ["stream", "dgram", "fd", "adopted"] {
        let path = dir.socket_path(Some(name.as_ref())).unwrap();
        assert_eq!(group_and_mode(&path), shared, "{name}");
    }
    drop((_stream, _dgram, own, _bound));
    dir.cleanup().unwrap();
    // A path longer than sun_path, bound through /proc (Linux; elsewhere such paths are
    // refused).
    if cfg!(all(target_os = "linux", not(usock_portable))) {
        let options = usock::DirOptions::default()
            .long_paths(true)
            .share_with_group(SHARED_GROUP);
        let deep = PrivateDir::create_with(Some(&var("USOCK_TEST_DEEP")), &options).unwrap();
        let long = deep.listener(None).unwrap();
        let path = deep.socket_path(None).unwrap();
        assert!(path.as_os_str().len() > usock::MAX_SOCKET_PATH);
        assert_eq!(group_and_mode(&path), shared, "long path");
        drop(long);
        deep.cleanup().unwrap();
    }
    println!("ALL IN THE GROUP");
}

/// A fresh, unbound Unix domain stream socket.
fn usock_socket() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: plain system call; the result is a new descriptor we own.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
    assert!(fd >= 0);
    // SAFETY: plain system call on the descriptor just made (macOS has no SOCK_CLOEXEC).
    unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    // SAFETY: socket returned a fresh descriptor nothing else owns.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}
