:- module(usock,
          [ usock_create_dir/2,         % -Dir, +Options
            usock_dir_path/2,           % +Dir, -Path
            usock_socket_path/3,        % +Dir, ?Name, -Path
            usock_bind/3,               % +Dir, -Socket, +Options
            usock_adopt/2,              % +Dir, +Name
            usock_cleanup/1             % +Dir
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
process made with fork/1 (nor by one that has its creator's pid in another pid namespace). When
the blob of a directory is garbage-collected before that, the directory is removed at once only
if no socket path was handed out from it: once usock_bind/3 or usock_socket_path/3 was used, a
socket in it may still be serving (a blob is garbage as soon as no term refers to it, whatever
became of its sockets), so it is left alone until halt. Call usock_cleanup/1 when you are done.
After halt has begun, a directory made by a thread that is still running is removed at once
and usock_create_dir/2 raises a permission_error.

Errors of the library are ISO error terms where one fits, with usock's own account in the
context: `error(Formal, context(usock:Pred/Arity, usock(Code, Message, Errno)))`, where Code is
one of `invalid`, `too_long`, `unsafe`, `no_dir`, `in_use`, `exhausted`, `changed`, `system`,
Message names the path and the reason, and Errno is the system's error number (0 for none).
Formal is:

  | usock's code               | Formal                                                  |
  |----------------------------|---------------------------------------------------------|
  | `system`, errno ENOENT     | existence_error(directory, Path) (file for a socket)     |
  | `system`, EACCES or EPERM  | permission_error(Action, directory, Path)                |
  | `unsafe`                   | permission_error(use, directory, Path)                   |
  | `too_long`                 | representation_error(unix_socket_path_length)            |
  | `exhausted`                | resource_error(random_directory_names)                   |
  | `no_dir`                   | existence_error(directory, usock_parent)                 |
  | `in_use`                   | permission_error(bind, unix_socket, Path)                |
  | anything else              | usock_error(Code)                                        |

The toplevel prints them as "usock: Message". Bad arguments raise type_error or domain_error
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
%       `$TMPDIR`, `/tmp` and `/var/tmp` is chosen.
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
    '$usock_create_dir'(Parent, Dir).
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
    '$usock_create_dir'(Parent, Dir).

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
%   Sockets bound at such paths are removed by usock_cleanup/1.
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
%   Socket is a library(socket) Unix domain stream socket bound in Dir with tcp_bind/2,
%   its file set to mode 0600 whatever the umask, and listening. Use tcp_accept/3 on it.
%   Options:
%
%     - name(+Name)
%       Socket name in the directory; default `sock`.
%     - backlog(+Count)
%       Listen backlog; default the system's `SOMAXCONN`.
%     - path(-Path)
%       Unified with the socket's path, to give to clients.
%
%   @error permission_error(bind, unix_socket, Path) if the name is taken (the file there is
%          left alone).

usock_bind(Dir, Socket, Options) :-
    must_be(var, Socket),
    must_be(list, Options),
    option(name(Name), Options, sock),
    check_name(Name),
    (   option(backlog(Backlog), Options)
    ->  must_be(nonneg, Backlog)
    ;   '$usock_somaxconn'(Backlog)
    ),
    '$usock_socket_path_string'(Dir, Name, Path),
    unix_domain_socket(S),
    Bound = bound(false),                   % nb_setarg/3 survives the exception's undoing
    catch(( tcp_bind(S, Path),
            nb_setarg(1, Bound, true),
            '$usock_adopt'(Dir, Name, 3),
            tcp_listen(S, Backlog)
          ),
          E,
          ( tcp_close_socket(S),
            arg(1, Bound, WasBound),
            bound_error(E, WasBound, Path, Error),
            throw(Error)
          )),
    Socket = S,
    (   option(path(P), Options)
    ->  atom_string(P, Path)
    ;   true
    ).

bound_error(error(socket_error(eaddrinuse, _), _), false, Path, Error) :-
    !,
    '$usock_in_use'(Path, Error).
bound_error(E, true, Path, E) :-
    !,
    % Bound but not usable: remove the socket we made (only that: it was bound a moment ago in a
    % directory nobody else can write to).
    catch(delete_file(Path), _, true).
bound_error(E, false, _, E).

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
    '$usock_adopt'(Dir, Name, 2).

%!  usock_cleanup(+Dir) is det.
%
%   Remove the sockets in Dir (those bound by usock_bind/3 and other sockets of this user)
%   and the directory itself. Anything else found there (a regular file, a subdirectory, an
%   object swapped in) is left in place with the directory, and usock_error(changed) (with
%   usock(changed, Message, 0) in the context)
%   names it. A second call does nothing. Close sockets with tcp_close_socket/1 first.

usock_cleanup(Dir) :-
    '$usock_cleanup'(Dir).

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

prolog:message(error(_, context(usock:_, usock(Code, Message, _)))) -->
    [ 'usock: ~w (~w)'-[Message, Code] ].
