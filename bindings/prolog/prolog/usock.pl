:- module(usock,
          [ usock_create_dir/2,         % -Dir, +Options
            usock_dir_path/2,           % +Dir, -Path
            usock_socket_path/3,        % +Dir, ?Name, -Path
            usock_bind/3,               % +Dir, -Socket, +Options
            usock_adopt/2,              % +Dir, +Name
            usock_cleanup/1,            % +Dir
            usock_connect/3,            % +Path, -StreamPair, +Options
            usock_bind_path/4,          % +Path, -Socket, -Bound, +Options
            usock_unbind_path/1,        % +Bound
            usock_sweep/3,              % -Removed, -Kept, +Options
            usock_hand_off/2,           % +Dir, -Fd
            usock_take_over/3,          % +Path, -Dir, +Options
            usock_peer/2,               % +SocketOrStream, -Peer
            usock_policy/2,             % +Allow, -Policy
            usock_accept/4,             % +Listener, +Policy, -Client, -Peer
            usock_policy_refused/3      % +Policy, -Count, -LastUid
          ]).
:- use_module(library(socket)).
:- use_module(library(error)).
:- use_module(library(option)).

/** <module> A safe private place for a Unix domain socket

This library gives a SWI-Prolog server a Unix domain socket path that nobody else can reach or
pre-empt, without shelling out to `mkdir`: a fresh directory with an unpredictable name and
mode 0700 in a parent whose ownership and mode were checked, made by libusock. Sockets are
ordinary library(socket) sockets, so tcp_accept/3, tcp_open_socket/2,3 and everything built on
them work unchanged.

```
?- usock_create_dir(Dir, []),
   usock_bind(Dir, Socket, [path(Path)]),      % bound and listening, mode 0600
   tcp_accept(Socket, Client, _Peer),
   ...
   tcp_close_socket(Socket),
   usock_cleanup(Dir).                          % removes the socket file and the directory
```

Directories that are never cleaned up are removed at halt, exactly once, and never by a child
process made with fork/1 (nor by one that has its creator's pid in another pid namespace).
When the blob of a directory is garbage-collected (atom garbage collection:
garbage_collect_atoms/0, or the collector's own runs) before that:

  - a directory that never handed out a socket path is removed at once;
  - once usock_bind/3 or usock_socket_path/3 was used, a socket in it may still be serving, or
    be bound and about to listen (a blob is garbage as soon as no term refers to it, whatever
    became of its sockets). It is idle when it holds at least one socket, nothing but sockets
    of yours, and none of them answers a connection (the rule of usock_sweep/3; datagram
    sockets included; a socket whose backlog is full counts as answering). A stream socket
    that is bound but not yet listening refuses like a closed one, so one idle look is not
    enough: the directory is removed only when two looks, at least a second apart and at
    different collections, both find it idle and find the same directory (its inode and its
    modification and change times: no socket file made, removed or replaced in between).
    It is looked at when its blob is collected, then at every collection of a directory blob
    while it is idle, and while a socket answers after twice as many collections of directory
    blobs as the time before (at most 64);
  - a directory whose socket path was handed out but never bound stays until halt: the path
    may still be bound by other code (removing the directory would free its name for another
    user).

Each look probes the sockets without waiting, in the collector's thread: a live server sees a
connection that closes at once. Call usock_cleanup/1 when you are done. After halt has begun, a
directory made by a thread that is still running is removed at once and usock_create_dir/2
raises a permission_error.

Errors of the library are those of library(socket) where it has one for the same failure (so
code written for tcp_connect/2 and tcp_bind/2 keeps working), else ISO error terms where one
fits, with usock's own account in the context:
`error(Formal, context(usock:Pred/Arity, usock(Code, Message, Errno)))`, where Code is
the library's name for the status in lower case (the foreign part reads it from
usock_status_name()): one of `invalid`, `too_long`, `unsafe`, `no_dir`, `in_use`, `exhausted`,
`changed`, `system`, `buffer`, `panic` (the last two only on an internal error),
Message names the path and the reason, and Errno is the system's error number (0 for none).
Formal is:

  | usock's code                          | Formal                                        |
  |---------------------------------------|-----------------------------------------------|
  | `in_use` (any predicate: a taken name in usock_bind/3 and usock_bind_path/4, a directory a sweep or another process holds elsewhere) | socket_error(eaddrinuse, Message) |
  | `system`, ECONNREFUSED (usock_connect/3)   | socket_error(econnrefused, Message)      |
  | `system`, ENOENT (usock_connect/3)         | existence_error(file, Path)              |
  | `system`, EACCES or EPERM (usock_connect/3) | permission_error(read, file, Path)      |
  | `system`, ENOENT, EACCES, EPERM (usock_bind_path/4) | socket_error(enoent, Message) ... |
  | `system`, errno ENOENT (others)       | existence_error(directory, Path) (file for a socket) |
  | `system`, EACCES or EPERM (others)    | permission_error(Action, Type, Path): Type `file` for usock_bind/3, usock_adopt/2, usock_socket_path/3, usock_unbind_path/1, `socket` for usock_peer/2, usock_accept/4, else `directory` |
  | `unsafe` (usock_connect/3)            | permission_error(connect, socket, Path)       |
  | `unsafe` (others)                     | permission_error(use, directory, Path)        |
  | `too_long`                            | representation_error(unix_socket_path_length) |
  | `exhausted`                           | resource_error(random_directory_names)        |
  | `no_dir`                              | existence_error(directory, usock_parent)      |
  | anything else                         | usock_error(Code)                             |

As in library(socket), Message in socket_error/2 is the system's text for the error
('Connection refused'); usock's own message, naming the path, is in the context.

The toplevel prints them as "usock: Message (Code)". Bad arguments raise type_error or domain_error
before the library is called. (0.1 raised `usock_error(Code, Message)`: see CHANGELOG.md.)
*/

% Loading straight from the repository (after `make`): the foreign library is built into
% ../lib/<arch> beside this file, as in an installed pack.
:- multifile user:file_search_path/2.
:- dynamic user:file_search_path/2.
:- prolog_load_context(directory, Dir),
   current_prolog_flag(arch, Arch),
   atomic_list_concat([Dir, '/../lib/', Arch], LibDir),
   (   user:file_search_path(foreign, LibDir)
   ->  true
   ;   assertz(user:file_search_path(foreign, LibDir))
   ).

:- use_foreign_library(foreign(usock4pl)).

:- at_halt('$usock_cleanup_all').

%!  usock_create_dir(-Dir, +Options) is det.
%
%   Create a private directory for Unix domain sockets. Dir is a blob handle; pass it to
%   usock_cleanup/1 when done. Options:
%
%     - parent(+Path)
%       Create the directory in Path, which must be safe (it and every ancestor owned by root
%       or the effective user; any writable by group or others has the sticky bit) and short
%       enough for a socket path. Without it, the first usable of `$XDG_RUNTIME_DIR`,
%       `$TMPDIR`, `/tmp` and `/var/tmp` is chosen (on macOS, the per-user temporary
%       directory first).
%     - long_paths(+Boolean)
%       Allow socket paths longer than `sun_path` under a deep parent (Linux and FreeBSD):
%       usock_bind/3 binds them through `/proc/thread-self/fd` (FreeBSD: with `bindat`),
%       and its path(P) gives the real path, which usock_connect/3 reaches (library(socket)'s
%       tcp_connect/2 cannot take such a path). Default `false`.
%     - share_group(+Gid)
%       Give the directory to group Gid with mode 0710: its members can reach sockets whose
%       names they know (sockets get the group too, with mode 0660, so a member by a
%       supplementary group connects) but cannot list it. You must be a member.
%       Pair it with usock_policy(group(Gid), Policy).
%
%   @error permission_error(use, directory, Path) for an unsafe parent,
%          existence_error(directory, Path) for a missing one,
%          representation_error(unix_socket_path_length) when it leaves no room for a socket
%          path, existence_error(directory, usock_parent) when no automatic candidate fits
%          (see the module documentation for the rest)

usock_create_dir(Dir, Options) :-              % the common cases, without option processing
    var(Dir),
    (   Options == []
    ->  Parent = []
    ;   Options = [parent(Parent)],
        atom(Parent),
        Parent \== '',
        Parent \== []
    ),
    !,
    '$usock_create_dir'(Parent, 0, Dir).
usock_create_dir(Dir, Options) :-
    must_be(var, Dir),
    must_be(list, Options),
    (   option(parent(Parent), Options)
    ->  must_be(text, Parent),
        (   memberchk(Parent, ['', "", []])
        ->  domain_error(directory, Parent)
        ;   true
        )
    ;   Parent = []
    ),
    option(long_paths(Long), Options, false),
    must_be(boolean, Long),
    (   Long == true -> Flags = 1 ; Flags = 0 ),     % USOCK_LONG_PATHS
    (   option(share_group(Gid), Options)
    ->  must_be(nonneg, Gid),
        '$usock_create_shared_dir'(Parent, Gid, Flags, Dir)
    ;   '$usock_create_dir'(Parent, Flags, Dir)
    ).

%!  usock_dir_path(+Dir, -Path) is det.
%
%   Path is the directory's absolute path (an atom, no symbolic links in it).

usock_dir_path(Dir, Path) :-
    '$usock_dir_path'(Dir, Path).

%!  usock_socket_path(+Dir, ?Name, -Path) is det.
%
%   Path is the path of socket Name in Dir, for code that binds by itself, such as
%   mqi_start/1 with `unix_domain_socket(Path)`. If Name is unbound, it is unified with the
%   default name `sock`. A name is one path component: not empty, no `/`, not `.` or `..`.
%   Sockets bound at such paths are removed by usock_cleanup/1. Once a path was handed out,
%   garbage collection of Dir removes the directory only when its sockets have not answered
%   at two looks a second apart (see the module documentation): bind and listen within that.
%
%   @error representation_error(unix_socket_path_length) if the path would not fit in
%          `sun_path`.

usock_socket_path(Dir, Name, Path) :-
    (   var(Name)
    ->  Name = sock
    ;   check_name(Name)
    ),
    '$usock_socket_path'(Dir, Name, Path).

%!  usock_bind(+Dir, -Socket, +Options) is det.
%
%   Socket is a library(socket) Unix domain stream socket bound in Dir by libusock's
%   usock_bind_fd (as the Python binding binds), its file set to mode 0600 whatever the umask,
%   and listening. Use tcp_accept/3 on it. Options:
%
%     - name(+Name)
%       Socket name in the directory; default `sock`.
%     - backlog(+Count)
%       Listen backlog; default (and 0) the system's `SOMAXCONN`.
%     - path(-Path)
%       Unified with the socket's path, to give to clients.
%
%   @error socket_error(eaddrinuse, Message) if the name is taken (the file there is left
%          alone), as tcp_bind/2 raises it.

usock_bind(Dir, Socket, Options) :-
    must_be(var, Socket),
    must_be(list, Options),
    option(name(Name), Options, sock),
    check_name(Name),
    (   option(backlog(Backlog), Options)
    ->  must_be(nonneg, Backlog)
    ;   Backlog = 0
    ),
    unix_domain_socket(S),
    tcp_getopt(S, file_no(Fd)),
    catch('$usock_bind'(Dir, Name, Fd, Backlog, Path),
          E,
          ( tcp_close_socket(S), throw(E) )),
    Socket = S,
    (   option(path(P), Options)
    ->  atom_string(P, Path)
    ;   true
    ).

%!  usock_adopt(+Dir, +Name) is det.
%
%   Take a socket you bound yourself at usock_socket_path(Dir, Name, Path) (with tcp_bind/2,
%   or by another program) into usock's care: check that it is a socket you own, set its mode
%   to 0600 whatever the umask, and have usock_cleanup/1 remove exactly it. Call it after
%   binding and before listening, so that no client connects under another mode.
%
%   @error existence_error(file, Path) when nothing is there; usock_error(invalid) when it is
%          not a socket; permission_error(use, directory, Path) when another user owns it.

usock_adopt(Dir, Name) :-
    check_name(Name),
    '$usock_adopt'(Dir, Name).

%!  usock_cleanup(+Dir) is det.
%
%   Remove the sockets in Dir (those bound by usock_bind/3 and other sockets of this user)
%   and the directory itself. Anything else found there (a regular file, a subdirectory, an
%   object swapped in) is left in place with the directory, and usock_error(changed) (with
%   usock(changed, Message, 0) in the context)
%   names it. A second call does nothing. Close sockets with tcp_close_socket/1 first.

usock_cleanup(Dir) :-
    '$usock_cleanup'(Dir).

%!  usock_connect(+Path, -StreamPair, +Options) is det.
%
%   Connect to the Unix domain stream socket at Path with libusock's connect, and unify
%   StreamPair with a stream pair on the connection (close it with close/1). Options:
%
%     - server(+Who)
%       Connect only if the server (by its credentials at listen()) is Who: `self_or_root`,
%       or a uid. Anyone else raises permission_error(connect, socket, Path) (usock code
%       `unsafe`) and the connection is closed.
%
%   Failures are what tcp_connect/2 raises, with the system's errno in the context: nothing
%   there is existence_error(file, Path), nobody listening is socket_error(econnrefused,
%   Message) (usock's message in the context says whether the file is a socket at all), no
%   permission is permission_error(read, file, Path). A path longer than `sun_path` is reached
%   through a descriptor of its directory on Linux (with /proc) and FreeBSD; elsewhere, or when
%   the socket's name alone does not fit, it is representation_error(unix_socket_path_length).

usock_connect(Path, StreamPair, Options) :-
    must_be(var, StreamPair),
    must_be(list, Options),
    check_path(Path),
    (   option(server(Who), Options)
    ->  (   Who == self_or_root
        ->  Server = -2
        ;   must_be(nonneg, Who),
            Server = Who
        )
    ;   Server = -1
    ),
    '$usock_connect'(Path, Server, In, Out),
    stream_pair(StreamPair, In, Out).

%!  usock_bind_path(+Path, -Socket, -Bound, +Options) is det.
%
%   A server at the well-known path Path: Socket is a library(socket) stream socket bound at
%   Path with mode 0600 and listening (use tcp_accept/3), and Bound the handle that removes the
%   path again (usock_unbind_path/1). Path's directory must pass usock's checks and be
%   writable by nobody but you (not `/tmp`: a fixed name there can be taken first). Every change
%   at Path happens under a lock on `Path.lock`. A stale socket (nobody listening, left by a
%   crash) is replaced; a live server raises socket_error(eaddrinuse, Message) unless
%   replace(true) is given, which binds beside Path and renames over it, so that clients never
%   find Path without a server (the old server should drain its queue, then unbind).
%   Options:
%
%     - replace(+Boolean)
%       Take over from a live server; default `false`.
%     - backlog(+Count)
%       Listen backlog; default the system's `SOMAXCONN`.
%
%   Paths still bound at halt are unbound then; garbage collection of Bound does not unbind
%   (the socket may still be serving).

usock_bind_path(Path, Socket, Bound, Options) :-
    must_be(var, Socket),
    must_be(var, Bound),
    must_be(list, Options),
    check_path(Path),
    option(replace(Replace), Options, false),
    must_be(boolean, Replace),
    (   option(backlog(Backlog), Options)
    ->  must_be(nonneg, Backlog)
    ;   Backlog = 0
    ),
    unix_domain_socket(S),
    tcp_getopt(S, file_no(Fd)),
    catch('$usock_bind_path'(Path, Fd, Backlog, Replace, B),
          E,
          ( tcp_close_socket(S), throw(E) )),
    Socket = S,
    Bound = B.

%!  usock_unbind_path(+Bound) is det.
%
%   Remove the well-known path of Bound if it is still this server's socket (a server that
%   replaced it keeps it), under its lock. A second call does nothing. The socket stays open:
%   close it with tcp_close_socket/1.

usock_unbind_path(Bound) :-
    '$usock_unbind_path'(Bound).

%!  usock_sweep(-Removed, -Kept, +Options) is det.
%
%   Remove the private directories that processes which died left behind: only usock
%   directories of yours that no live process holds, unchanged for the grace period, whose
%   sockets all refuse connections. Removed is the list of directories removed, Kept a list of
%   Dir-Reason (Reason a string) for the usock directories kept. A live server sees a
%   connection that closes at once. Options:
%
%     - parent(+Dir)
%       Sweep Dir; default: each automatic location (as usock_create_dir/2 chooses them).
%     - grace(+Seconds)
%       Keep directories changed less than Seconds ago; default 60.

usock_sweep(Removed, Kept, Options) :-
    must_be(list, Options),
    (   option(parent(Parent), Options)
    ->  check_path(Parent)
    ;   Parent = []
    ),
    option(grace(Grace), Options, 60),
    must_be(nonneg, Grace),
    '$usock_sweep'(Parent, Grace, Removed, Kept).

%!  usock_hand_off(+Dir, -Fd) is det.
%
%   End Dir's handle without removing anything, for a program you start with exec: Fd is a
%   descriptor of the directory that survives exec and keeps it locked (so usock_sweep/3 leaves
%   it alone). Give the successor Fd and the path (usock_dir_path/2, read before), and it calls
%   usock_take_over/3.

usock_hand_off(Dir, Fd) :-
    must_be(var, Fd),
    '$usock_hand_off'(Dir, Fd).

%!  usock_take_over(+Path, -Dir, +Options) is det.
%
%   Take the usock directory at Path, handed over by another process, under management again:
%   checked as at creation (a usock name, yours, mode 0700, or 0710 when shared with a group, in
%   a safe parent), cleaned up as one made here. Options: lock_fd(+Fd), the descriptor
%   usock_hand_off/2 gave, when this process inherited it (on success Dir keeps a close-on-exec
%   duplicate of it and Fd itself is closed).
%
%   @error permission_error(use, directory, Path) when a check fails.

usock_take_over(Path, Dir, Options) :-
    must_be(var, Dir),
    must_be(list, Options),
    check_path(Path),
    option(lock_fd(Fd), Options, -1),
    must_be(integer, Fd),
    '$usock_take_over'(Path, Fd, Dir).

%!  usock_peer(+SocketOrStream, -Peer) is det.
%
%   Peer is peer(Uid, Gid, Pid) for the other end of a connected library(socket) socket or
%   stream: for a server's connection the client, for a client the server. Pid is `unknown`
%   where the system does not report it. Raises an error where the system cannot say: it never
%   guesses.

usock_peer(SocketOrStream, Peer) :-
    file_no(SocketOrStream, Fd),
    '$usock_peer_of'(Fd, Peer).

file_no(S, Fd) :-
    (   is_stream(S)
    ->  stream_property(S, file_no(Fd))
    ;   tcp_getopt(S, file_no(Fd))
    ).

%!  usock_policy(+Allow, -Policy) is det.
%
%   Policy admits connections from: `same_user` (this process's effective user), `group(Gid)`
%   (members, supplementary groups included; systems that cannot tell them, OpenBSD and NetBSD,
%   raise an error instead), or `uids(List)`. No policy admits the overflow uid or counts the
%   overflow gid as a group (what the kernel shows for anyone it cannot map into this user
%   namespace: Linux's /proc/sys/kernel/overflowuid and overflowgid, else 65534): a server
%   running as `nobody` admits no one under `same_user`.

usock_policy(Allow, Policy) :-
    must_be(var, Policy),
    (   Allow == same_user
    ->  Kind = 0, Ids = []
    ;   Allow = group(Gid)
    ->  must_be(nonneg, Gid), Kind = 1, Ids = [Gid]
    ;   Allow = uids(Ids)
    ->  must_be(list(nonneg), Ids), Kind = 2
    ;   domain_error(usock_policy, Allow)
    ),
    '$usock_policy_new'(Kind, Ids, Policy).

%!  usock_accept(+Listener, +Policy, -Client, -Peer) is det.
%
%   tcp_accept/3 for connections Policy admits: Client is the library(socket) socket of the
%   first admitted connection and Peer its peer(Uid, Gid, Pid). Each refused connection is
%   closed at once and counted (usock_policy_refused/3).

usock_accept(Listener, Policy, Client, Peer) :-
    must_be(var, Client),
    repeat,
    tcp_accept(Listener, C, _),
    tcp_getopt(C, file_no(Fd)),
    (   '$usock_policy_check'(Policy, Fd, P)
    ->  !, Client = C, Peer = P
    ;   tcp_close_socket(C),
        fail
    ).

%!  usock_policy_refused(+Policy, -Count, -LastUid) is det.
%
%   Count connections were refused so far; LastUid is the uid of the last one, or `none`.

usock_policy_refused(Policy, Count, LastUid) :-
    '$usock_policy_refused'(Policy, Count, Last),
    (   Last < 0 -> LastUid = none ; LastUid = Last ).

check_path(Path) :-
    must_be(text, Path),
    atom_string(A, Path),
    (   A == ''
    ->  domain_error(path, Path)
    ;   sub_atom(A, _, _, _, '\0\')
    ->  domain_error(path, Path)
    ;   true
    ).

check_name(sock) :-
    !.
check_name(Name) :-
    must_be(text, Name),
    atom_string(A, Name),
    (   A == ''
    ->  domain_error(usock_socket_name, Name)
    ;   sub_atom(A, _, _, _, '\0\')             % C would cut the name there
    ->  domain_error(usock_socket_name, Name)
    ;   sub_atom(A, _, _, _, '/')
    ->  domain_error(usock_socket_name, Name)
    ;   memberchk(A, ['.', '..'])
    ->  domain_error(usock_socket_name, Name)
    ;   true
    ).

:- multifile prolog:message//1.

prolog:message(error(_, Context)) -->
    { usock_context(Context, Code, Message) },
    [ 'usock: ~w (~w)'-[Message, Code] ].

%   usock_context(@Context, -Code, -Message): Context is the context of an error usock raised,
%   context(usock:Pred/Arity, usock(Code, Message, Errno)) as the foreign part builds it. Only
%   matched, never bound: the hook sees every error printed, most with an unbound context
%   (must_be/2's), which unification would turn into usock's.
usock_context(Context, Code, Message) :-
    subsumes_term(context(usock:_/_, usock(_, _, _)), Context),
    Context = context(usock:Pred/Arity, usock(Code, Message, Errno)),
    atom(Pred),
    integer(Arity),
    atom(Code),
    string(Message),
    integer(Errno).
