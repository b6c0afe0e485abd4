:- module(usock_mqi,
          [ usock_mqi_start/1           % +Options
          ]).
:- use_module(library(mqi)).
:- use_module(library(error)).
:- use_module(library(option)).
:- use_module(library(lists)).
:- use_module(usock).

/** <module> The Machine Query Interface on a socket in a usock private directory

library(mqi) makes the directory for its Unix domain socket with tmp_file/2: a predictable name
(`/tmp/swipl_udsock_<pid>_<n>`), created with the default permissions and `chmod`ed afterwards,
so another user who creates that name first stops the server from starting, and the socket is
reachable by others until the `chmod`. usock_mqi_start/1 is mqi_start/1 with the socket in a
usock private directory instead:

```
?- usock_mqi_start([unix_domain_socket(Path), password(Pw), server_thread(T)]).
Path = '/run/user/1000/usock-k3m9.../mqi'.
?- mqi_stop(T).                % the server ends, and with it the directory
```

A client connects as to any MQI, e.g. Python's swiplserver:
`PrologMQI(launch_mqi=False, unix_domain_socket=Path, password=Pw)`.
*/

:- dynamic server_dir/3.        % ?ServerThread, ?Dir, ?Waiter

%!  usock_mqi_start(+Options) is semidet.
%
%   mqi_start/1, with Options as there. When `unix_domain_socket(Path)` is given with Path
%   unbound, Path is bound to `<dir>/mqi` in a fresh usock private directory (mode 0700, an
%   unpredictable name) made in the automatic location, or in the directory of the extra option
%   `parent(Dir)`. MQI binds the socket there; its mode is set to 0600 (MQI's bind leaves the
%   umask's mode, 0755 under umask 022) before usock_mqi_start/1 returns, and the directory is
%   removed when the server thread ends: after mqi_stop/1 (which ends it at once, without waiting
%   for it), or at halt. With run_server_on_thread(false) the server runs in a thread all the
%   same, and usock_mqi_start/1 waits until it ends, as mqi_start/1 would.
%
%   With Path bound, or without `unix_domain_socket(_)` (TCP, `port(_)`), this is mqi_start/1.
%
%   @error representation_error(unix_socket_path_length) when the socket path would not fit in
%          `sun_path` (108 bytes on Linux, 104 on macOS and the BSDs), raised before the server
%          starts; usock's errors for the parent (see usock_create_dir/2). Nothing is left
%          behind after an error or a failure.

usock_mqi_start(Options) :-
    must_be(list, Options),
    (   memberchk(unix_domain_socket(_), Options),      % as mqi_start/1 decides
        option(unix_domain_socket(Path), Options),
        var(Path)
    ->  start_in_private_dir(Path, Options)
    ;   mqi_start(Options)
    ).

start_in_private_dir(Path, Options) :-
    (   option(parent(Parent), Options)
    ->  DirOptions = [parent(Parent)]
    ;   DirOptions = []
    ),
    server_thread(Options, Thread),
    option(run_server_on_thread(OnThread), Options, true),
    (   OnThread == true -> Waiter = none ; thread_self(Waiter) ),
    usock_create_dir(Dir, DirOptions),          % checks that <dir>/sock fits in sun_path
    catch(usock_socket_path(Dir, mqi, Path), E0, (usock_cleanup(Dir), throw(E0))),
    assertz(server_dir(Thread, Dir, Waiter)),
    merge_options([server_thread(Thread), run_server_on_thread(true)], Options, MqiOptions),
    (   catch(mqi_start(MqiOptions), Error, (abandon(Thread, Dir), throw(Error)))
    ->  catch(usock_adopt(Dir, mqi), E, (mqi_stop(Thread), abandon(Thread, Dir), throw(E)))
    ;   abandon(Thread, Dir),
        fail
    ),
    (   Waiter == none
    ->  true
    ;   thread_get_message(usock_mqi_stopped(Thread))
    ).

server_thread(Options, Thread) :-
    option(server_thread(Thread), Options, Thread),
    (   var(Thread)
    ->  gensym(mqi, Thread)                    % as mqi_start/1 names it
    ;   must_be(atom, Thread)
    ).

%   A start that failed: nothing stays behind.
abandon(Thread, Dir) :-
    retractall(server_dir(Thread, Dir, _)),
    usock_cleanup(Dir).

%   Called in every thread that ends, after its at_exit goals (MQI's removes the socket file):
%   the directory of a server started here goes with its thread.
server_exited(_) :-
    thread_self(Thread),
    (   retract(server_dir(Thread, Dir, Waiter))
    ->  catch(usock_cleanup(Dir), Error, print_message(warning, Error)),
        (   Waiter == none
        ->  true
        ;   catch(thread_send_message(Waiter, usock_mqi_stopped(Thread)), _, true)
        )                                       % (a waiter that is gone waits for nothing)
    ;   true
    ).

:- prolog_unlisten(thread_exit, usock_mqi:server_exited).
:- prolog_listen(thread_exit, usock_mqi:server_exited).
