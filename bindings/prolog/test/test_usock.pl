/*  plunit tests of the usock pack. Run with test/run.pl, which prints "N passed, N failed"
    and exits non-zero on any failure. $USOCK_PYTHON names a Python with swiplserver for the
    Python client and MQI tests (default python3).
*/
:- use_module(library(plunit)).
:- use_module(library(socket)).
:- use_module(library(process)).
:- use_module(library(readutil)).
:- use_module(library(filesex)).
:- use_module(library(unix)).
:- use_module(library(mqi)).
:- use_module(library(prolog_pack)).     % its check of pack.pl terms
:- use_module('../prolog/usock').

:- dynamic scratch_dir/2.

%   A safe scratch parent for explicit-parent tests, 0755, removed at the end by the process
%   that made it (halt/1 in a forked child unwinds through the unit's cleanup too).
scratch(Dir) :-
    scratch_dir(Dir, _), !.
scratch(Dir) :-
    current_prolog_flag(pid, Pid),
    R is random(1<<40),
    format(atom(Dir), '/tmp/usock-pltest-~w-~16r', [Pid, R]),   % not tmp_file/2: it is
    make_directory(Dir),                                       % removed at halt, also in
    chmod(Dir, 0o755),                                         % a forked child
    assertz(scratch_dir(Dir, Pid)).

remove_scratch :-
    current_prolog_flag(pid, Pid),
    (   scratch_dir(Dir, Pid)
    ->  retractall(scratch_dir(_, _)),
        delete_directory_and_contents(Dir)
    ;   true
    ).

mode_of(Path, Mode) :-
    process_create(path(stat), ['-c', '%a', Path], [stdout(pipe(Out))]),
    read_line_to_string(Out, S),
    close(Out),
    number_codes(Mode, S).

python(Py) :-
    (   getenv('USOCK_PYTHON', Py)
    ->  true
    ;   Py = python3
    ).

%   Run a Python snippet with Args; Output is its stdout as a string.
run_python(Code, Args, Output) :-
    python(Py),
    (   sub_atom(Py, 0, _, _, '/') -> Exe = Py ; Exe = path(Py) ),
    process_create(Exe, ['-c', Code|Args], [stdout(pipe(Out)), process(Pid)]),
    read_string(Out, _, Output),
    close(Out),
    process_wait(Pid, Status),
    assertion(Status == exit(0)).

serve_one(Listener, Reply) :-
    tcp_accept(Listener, Client, _Peer),
    setup_call_cleanup(
        tcp_open_socket(Client, Stream),
        ( read_line_to_string(Stream, Line),
          string_concat(Reply, Line, Answer),
          format(Stream, "~w~n", [Answer]),
          flush_output(Stream)
        ),
        close(Stream)).

%   A row of SECURITY.md's figures, written when $USOCK_FIGURES names a file (make test sets it).
figure(Category, What, Tried, Held, Test) :-
    (   getenv('USOCK_FIGURES', File)
    ->  setup_call_cleanup(open(File, append, S),
                           format(S, "~w\t~w\t~w\t~w\tbindings/prolog/test/test_usock.pl::~w~n",
                                  [Category, What, Tried, Held, Test]),
                           close(S))
    ;   true
    ).

empty_dir(Dir) :-
    directory_files(Dir, Entries),
    subtract(Entries, ['.', '..'], []).

:- begin_tests(usock, [cleanup(remove_scratch)]).

test(prolog_client_through_tcp_accept, Reply == "echo: hello") :-
    usock_create_dir(Dir, []),
    usock_bind(Dir, Listener, [path(Path)]),
    thread_create(serve_one(Listener, "echo: "), Server, []),
    unix_domain_socket(C),
    tcp_connect(C, Path),
    tcp_open_socket(C, Stream),
    format(Stream, "hello~n", []),
    flush_output(Stream),
    read_line_to_string(Stream, Reply),
    close(Stream),
    thread_join(Server, true),
    tcp_close_socket(Listener),
    usock_dir_path(Dir, DirPath),
    usock_cleanup(Dir),
    assertion(\+ exists_directory(DirPath)).

test(python_client, Out == "python got: from python\n") :-
    usock_create_dir(Dir, []),
    usock_bind(Dir, Listener, [name('py.sock'), path(Path)]),
    thread_create(serve_one(Listener, "python got: "), Server, []),
    run_python("import socket, sys\nc = socket.socket(socket.AF_UNIX)\nc.connect(sys.argv[1])\nc.sendall(b'from python\\n')\nprint(c.makefile().readline(), end='')",
               [Path], Out),
    thread_join(Server, true),
    tcp_close_socket(Listener),
    usock_cleanup(Dir).

test(mode_bits) :-
    scratch(Parent),
    usock_create_dir(Dir, [parent(Parent)]),
    usock_dir_path(Dir, DirPath),
    file_directory_name(DirPath, Parent),
    usock_bind(Dir, S, [path(Path), backlog(3)]),
    mode_of(DirPath, DirMode),
    mode_of(Path, SockMode),
    assertion(DirMode == 700),
    assertion(SockMode == 600),
    tcp_close_socket(S),
    usock_cleanup(Dir),
    assertion(empty_dir(Parent)).

test(mode_bits_under_umask_0777, Out == "700\n600\n") :-
    % a fresh swipl process under umask 0777: the directory is still 0700, the socket 0600
    module_property(usock, file(File)),
    format(atom(Goal),
           "use_module('~w'), usock_create_dir(D,[]), usock_bind(D,S,[path(P)]), usock_dir_path(D,DP), \c
            process_create(path(stat),['-c','%a',DP,P],[]), tcp_close_socket(S), usock_cleanup(D), halt",
           [File]),
    process_create(path(sh), ['-c', 'umask 0777 && exec swipl -q -g "$0"', Goal],
                   [stdout(pipe(O)), process(Pid)]),
    read_string(O, _, Out), close(O),
    process_wait(Pid, exit(0)).

test(socket_path_default_and_named) :-
    usock_create_dir(Dir, []),
    usock_dir_path(Dir, D),
    usock_socket_path(Dir, Name, P1),
    assertion(Name == sock),
    atomic_list_concat([D, '/sock'], P1),
    usock_socket_path(Dir, "api.sock", P2),
    atomic_list_concat([D, '/api.sock'], P2),
    usock_cleanup(Dir).

test(socket_bound_by_caller_is_removed) :-
    scratch(Parent),
    usock_create_dir(Dir, [parent(Parent)]),
    usock_socket_path(Dir, own, Path),
    unix_domain_socket(S),
    tcp_bind(S, Path),
    tcp_close_socket(S),
    usock_cleanup(Dir),
    assertion(empty_dir(Parent)).

test(cleanup_twice_is_harmless) :-
    usock_create_dir(Dir, []),
    usock_cleanup(Dir),
    usock_cleanup(Dir).

% Errors -----------------------------------------------------------------------------------

test(type_error_options, error(type_error(list, foo))) :-
    usock_create_dir(_, foo).

test(type_error_handle, error(type_error(usock_dir, foo))) :-
    usock_dir_path(foo, _).

test(type_error_parent, error(type_error(text, 42))) :-
    usock_create_dir(_, [parent(42)]).

test(domain_error_name, error(domain_error(usock_socket_name, 'a/b'))) :-
    usock_create_dir(Dir, []),
    call_cleanup(usock_socket_path(Dir, 'a/b', _), usock_cleanup(Dir)).

test(domain_error_dotdot, error(domain_error(usock_socket_name, '..'))) :-
    usock_create_dir(Dir, []),
    call_cleanup(usock_bind(Dir, _, [name('..')]), usock_cleanup(Dir)).

test(nul_in_name_socket_path, error(domain_error(usock_socket_name, 'a\0\b'))) :-
    usock_create_dir(Dir, []),
    call_cleanup(usock_socket_path(Dir, 'a\0\b', _), usock_cleanup(Dir)).

test(nul_in_name_bind_binds_nothing) :-
    usock_create_dir(Dir, []),
    usock_dir_path(Dir, D),
    catch(usock_bind(Dir, _, [name("a\0\b")]), E, true),
    assertion(E = error(domain_error(usock_socket_name, _), _)),
    assertion(empty_dir(D)),
    % the glue refuses it too, whoever calls it
    catch(usock:'$usock_socket_path'(Dir, 'a\0\b', _), E2, true),
    assertion(E2 = error(domain_error(usock_socket_name, _), _)),
    usock_cleanup(Dir),
    figure(attack, 'Prolog: a NUL byte inside a socket name (which C would cut short), through usock_bind/3 and the glue: refused, nothing bound', 2, 2,
           nul_in_name_bind_binds_nothing).

test(nul_in_parent, error(domain_error(directory, _))) :-
    scratch(Parent),
    atom_concat(Parent, '\0\x', Bad),
    usock_create_dir(_, [parent(Bad)]).

test(domain_error_backlog, error(type_error(nonneg, -1))) :-
    usock_create_dir(Dir, []),
    call_cleanup(usock_bind(Dir, _, [backlog(-1)]), usock_cleanup(Dir)).

test(unsafe_parent, [error(permission_error(use, directory, World),
                            context(usock:usock_create_dir/2, usock(unsafe, Msg, 0)))]) :-
    scratch(Parent),
    directory_file_path(Parent, world, World),
    make_directory(World),
    chmod(World, 0o777),
    call_cleanup(usock_create_dir(_, [parent(World)]),
                 ( assertion(empty_dir(World)), delete_directory(World) )),
    sub_string(Msg, _, _, _, "sticky").

test(missing_parent, [error(existence_error(directory, Missing),
                             context(usock:usock_create_dir/2, usock(system, Msg, 2)))]) :-
    scratch(Parent),
    directory_file_path(Parent, 'missing/deeper', Missing),
    usock_create_dir(_, [parent(Missing)]),
    sub_string(Msg, _, _, _, "does not exist").

test(error_messages_name_path_and_reason) :-
    scratch(Parent),
    directory_file_path(Parent, missing, Missing),
    catch(usock_create_dir(_, [parent(Missing)]), E, true),
    phrase('$messages':translate_message(E), Lines),
    with_output_to(string(Text), print_message_lines(current_output, '', Lines)),
    assertion(sub_string(Text, _, _, _, "usock: cannot use")),
    assertion(sub_string(Text, _, _, _, "does not exist (system)")).

%   The text print_message/2 prints for the error Goal raises (Goal a string, read here and in
%   a child), in this process (usock loaded) and in a fresh swipl without the pack.
error_text(Goal, Here, Plain) :-
    format(string(Print),
           "catch(~w, E, true), phrase('$messages':translate_message(E), L), \c
            print_message_lines(current_output, '', L)", [Goal]),
    term_string(G, Print),
    with_output_to(string(Here), G),
    process_create(path(swipl), ['-q', '-g', Print, '-t', halt], [stdout(pipe(O)), process(Pid)]),
    read_string(O, _, Plain),
    close(O),
    process_wait(Pid, exit(0)).

test(other_errors_print_as_without_the_pack) :-
    % The hook matched any error with an unbound context (must_be/2's): "usock: _ (_)".
    forall(member(Goal, ["must_be(integer, a)",
                         "atom_length(_, _)",
                         "throw(error(domain_error(d, x), context(usock:p/1, _)))",
                         "throw(error(type_error(t, x), context(usock:p/1, usock(c, 1, 2))))"]),
           ( error_text(Goal, Here, Plain),
             assertion(Here == Plain),
             assertion(\+ sub_string(Here, _, _, _, "usock: ")) )),
    error_text("must_be(integer, a)", Text, _),
    assertion(sub_string(Text, _, _, _, "Type error: `integer' expected, found `a'")).

test(usock_errors_print_usock_message) :-
    scratch(Parent),
    directory_file_path(Parent, missing, Missing),
    format(string(Goal), "usock:usock_create_dir(_, [parent('~w')])", [Missing]),
    error_text(Goal, Text, _),
    assertion(sub_string(Text, 0, _, _, "usock: cannot use ")),
    assertion(sub_string(Text, _, _, _, "does not exist (system)")).

test(in_use_caught_as_library_socket_s_and_printed_by_usock) :-
    usock_create_dir(Dir, []),
    usock_bind(Dir, S, []),
    catch(usock_bind(Dir, _, []), E, true),
    tcp_close_socket(S), usock_cleanup(Dir),
    assertion(E = error(socket_error(eaddrinuse, _), _)),
    phrase('$messages':translate_message(E), Lines),
    with_output_to(string(Text), print_message_lines(current_output, '', Lines)),
    assertion(sub_string(Text, 0, _, _, "usock: cannot bind ")),
    assertion(sub_string(Text, _, _, _, "the name is taken")),
    assertion(sub_string(Text, _, _, _, "(in_use)")),
    % library(socket)'s own socket_error still prints as library(socket) prints it
    error_text("(use_module(library(socket)), unix_domain_socket(S), \c
                 tcp_bind(S, '/nonexistent/usock-test'))", Here, Plain),
    assertion(sub_string(Here, 0, _, _, "Socket error: ")),
    assertion(Here == Plain).

test(too_long_parent, [error(representation_error(unix_socket_path_length),
                             context(_, usock(too_long, _, _)))]) :-
    scratch(Parent),
    length(Cs, 90), maplist(=(0'd), Cs), atom_codes(Long, Cs),
    directory_file_path(Parent, Long, Deep),
    make_directory(Deep),
    call_cleanup(usock_create_dir(_, [parent(Deep)]),
                 ( assertion(empty_dir(Deep)), delete_directory(Deep) )).

test(too_long_name, [error(representation_error(unix_socket_path_length),
                           context(usock:usock_socket_path/3, usock(too_long, Msg, _)))]) :-
    usock_create_dir(Dir, []),
    length(Cs, 120), maplist(=(0'n), Cs), atom_codes(Name, Cs),
    call_cleanup(usock_socket_path(Dir, Name, _), usock_cleanup(Dir)),
    sub_string(Msg, _, _, _, "the limit here is 107").

test(in_use, [error(socket_error(eaddrinuse, _),
                   context(usock:usock_bind/3, usock(in_use, _, _)))]) :-
    usock_create_dir(Dir, []),
    usock_bind(Dir, S, []),
    call_cleanup(usock_bind(Dir, _, []),
                 ( tcp_close_socket(S), usock_cleanup(Dir) )).

test(in_use_leaves_file) :-
    usock_create_dir(Dir, []),
    usock_socket_path(Dir, notes, Path),
    setup_call_cleanup(open(Path, write, Out), format(Out, "keep", []), close(Out)),
    catch(usock_bind(Dir, _, [name(notes)]), error(_, context(_, usock(Code, _, _))), true),
    assertion(Code == in_use),
    read_file_to_string(Path, Text, []),
    assertion(Text == "keep"),
    delete_file(Path),
    usock_cleanup(Dir).

test(bind_errors_are_the_library_s) :-
    % usock_bind/3 binds through libusock's usock_bind_fd, as Python does: its errors are the
    % library's, naming what holds the name, and each names usock_bind/3.
    usock_create_dir(Dir, []),
    usock_socket_path(Dir, notes, Path),
    setup_call_cleanup(open(Path, write, Out), format(Out, "keep", []), close(Out)),
    catch(usock_bind(Dir, _, [name(notes)]), InUse, true),
    assertion(InUse = error(socket_error(eaddrinuse, _),
                            context(usock:usock_bind/3, usock(in_use, _, _)))),
    InUse = error(_, context(_, usock(_, Msg, _))),
    assertion(sub_string(Msg, _, _, _, "taken by a regular file")),
    read_file_to_string(Path, Text, []),
    assertion(Text == "keep"),
    length(Cs, 120), maplist(=(0'n), Cs), atom_codes(Long, Cs),
    catch(usock_bind(Dir, _, [name(Long)]), TooLong, true),
    assertion(TooLong = error(representation_error(unix_socket_path_length),
                              context(usock:usock_bind/3, usock(too_long, _, _)))),
    delete_file(Path),
    usock_dir_path(Dir, D),
    assertion(empty_dir(D)),
    usock_cleanup(Dir).

test(changed, [error(usock_error(changed), context(usock:usock_cleanup/1, usock(changed, Msg, 0)))]) :-
    usock_create_dir(Dir, []),
    usock_dir_path(Dir, D),
    directory_file_path(D, 'dropped.txt', F),
    setup_call_cleanup(open(F, write, Out), true, close(Out)),
    call_cleanup(usock_cleanup(Dir), ( delete_file(F), delete_directory(D) )),
    sub_string(Msg, _, _, _, "dropped.txt (a regular file)").

%   True when running as root (some tests make mount namespaces).
is_root :-
    process_create(path(id), ['-u'], [stdout(pipe(O))]),
    read_line_to_string(O, Uid),
    close(O),
    Uid == "0".

test(no_dir, [condition(is_root),
              error(existence_error(directory, usock_parent), context(_, usock(no_dir, _Msg, _)))]) :-
    % $XDG_RUNTIME_DIR and $TMPDIR unusable, /tmp and /var/tmp read-only in a private mount
    % namespace of a child process (as root). The pack may itself live under /tmp (a CI clone),
    % so the shell opens it as descriptor 3 before mounting, and swipl loads it through
    % /proc/self/fd/3, which still names the directory hidden by the mount.
    module_property(usock, file(File)),
    file_directory_name(File, PrologDir),
    file_directory_name(PrologDir, PackDir),
    Goal = "use_module('/proc/self/fd/3/prolog/usock'), \c
            catch(usock_create_dir(_,[]), E, (format('~q.~n',[E]), halt(0))), halt(1)",
    process_create(path(unshare),
                   ['--mount', 'sh', '-c',
                    'exec 3<"$0" && mount -t tmpfs -o ro tmpfs /tmp && mount -t tmpfs -o ro tmpfs /var/tmp && \c
                     XDG_RUNTIME_DIR=relative TMPDIR=/nonexistent exec swipl -q -g "$1"',
                    PackDir, Goal],
                   [stdout(pipe(O)), process(Pid)]),
    read_term(O, E, []), close(O),
    process_wait(Pid, exit(0)),
    throw(E).

test(exhausted, [error(resource_error(random_directory_names), context(_, usock(exhausted, _Msg, _)))]) :-
    % A broken random source, for real: a preloaded getrandom() that always returns the same
    % bytes, in a child swipl. Its first directory takes the one name; the second cannot.
    scratch(Scratch),
    directory_file_path(Scratch, 'repeat.c', Source),
    directory_file_path(Scratch, 'repeat.so', Shim),
    directory_file_path(Scratch, exhaust, Parent),
    make_directory(Parent),
    setup_call_cleanup(open(Source, write, Out),
                       format(Out, "#include <string.h>~n#include <sys/types.h>~n\c
                                    ssize_t getrandom(void *b, size_t n, unsigned f) \c
                                    { (void)f; memset(b, 0x5a, n); return (ssize_t)n; }~n", []),
                       close(Out)),
    process_create(path(cc), ['-shared', '-fPIC', '-o', Shim, Source], [process(CC)]),
    process_wait(CC, exit(0)),
    module_property(usock, file(File)),
    format(atom(Goal),
           "use_module('~w'), usock_create_dir(D1, [parent('~w')]), \c
            catch(usock_create_dir(_, [parent('~w')]), E, true), \c
            usock_cleanup(D1), format('~~q.~~n', [E]), halt",
           [File, Parent, Parent]),
    (   getenv('LD_PRELOAD', Pre) -> atomic_list_concat([Pre, ' ', Shim], Preload) ; Preload = Shim ),
    process_create(path(swipl), ['-q', '-g', Goal],
                   [stdout(pipe(O)), environment(['LD_PRELOAD'=Preload]), process(Pid)]),
    read_term(O, E, []), close(O),
    process_wait(Pid, exit(0)),
    assertion(empty_dir(Parent)),
    nonvar(E),                          % the second creation failed
    throw(E).

test(adopt_a_socket_bound_with_tcp_bind) :-
    usock_create_dir(Dir, []),
    usock_socket_path(Dir, mine, Path),
    unix_domain_socket(S),
    tcp_bind(S, Path),
    chmod(Path, 0o777),                 % as a permissive umask would have left it
    usock_adopt(Dir, mine),
    mode_of(Path, Mode),
    assertion(Mode == 600),
    tcp_listen(S, 5),
    catch(usock_adopt(Dir, missing), E, true),
    assertion(E = error(existence_error(file, _), context(usock:usock_adopt/2, usock(system, _, 2)))),
    tcp_close_socket(S),
    usock_dir_path(Dir, D),
    usock_cleanup(Dir),
    assertion(\+ exists_directory(D)).

test(use_after_cleanup, error(existence_error(usock_dir, _))) :-
    usock_create_dir(Dir, []),
    usock_cleanup(Dir),
    usock_dir_path(Dir, _).

% Lifetimes --------------------------------------------------------------------------------

make_and_forget(Path) :-
    usock_create_dir(Dir, []),
    usock_dir_path(Dir, Path).

test(garbage_collection_cleans_up) :-
    % Made in a thread that has ended, so that no stack of ours still holds a blob (atom
    % garbage collection is conservative about the running thread's own stacks).
    thread_create(( findall(P, (between(1, 20, _), make_and_forget(P)), Paths),
                    thread_exit(Paths) ), T, []),
    thread_join(T, exited(Paths)),
    length(Paths, 20),
    garbage_collect,
    garbage_collect_atoms,
    include(exists_directory, Paths, Left),
    assertion(Left == []).

test(garbage_collection_leaves_a_directory_whose_socket_serves, Out == "served\ngone\n") :-
    % In a fresh process: the blob is forgotten while its socket stays open; atom garbage
    % collection must not remove the socket (a client still connects); halt removes it.
    module_property(usock, file(File)),
    format(atom(Goal),
           "use_module(library(socket)), use_module('~w'), \c
            thread_create(( usock_create_dir(D, []), usock_bind(D, S, [path(P)]), \c
                            thread_exit(S-P) ), T, []), \c
            thread_join(T, exited(S-P)), \c
            garbage_collect, garbage_collect_atoms, \c
            unix_domain_socket(C), tcp_connect(C, P), tcp_close_socket(C), \c
            writeln(served), file_directory_name(P, Dir), writeln(Dir), tcp_close_socket(S), halt",
           [File]),
    process_create(path(swipl), ['-q', '-g', Goal, '-t', 'halt(1)'],
                   [stdout(pipe(O)), process(Pid)]),
    read_line_to_string(O, Served),
    read_line_to_string(O, Dir),
    close(O),
    process_wait(Pid, exit(0)),
    (   exists_directory(Dir) -> Gone = "kept" ; Gone = "gone" ),
    format(string(Out), "~w~n~w~n", [Served, Gone]),
    figure(fault, 'Prolog: atom garbage collection of a directory blob while its socket serves: the socket still answers, halt removes it', 1, 1,
           garbage_collection_leaves_a_directory_whose_socket_serves).

%   Collections that release directory blobs, as in a server that drops directories: N
%   directories made and dropped in a thread that has ended, then garbage collection of the
%   stacks and atoms.
collect_with_drops(N) :-
    thread_create(forall(between(1, N, _), usock_create_dir(_, [])), T, []),
    thread_join(T, true),
    garbage_collect,
    garbage_collect_atoms.

%   A blob of the directory Dir is still alive (not yet collected).
dir_blob(Dir) :-
    current_blob(B, usock_dir),
    format(string(S), "~w", [B]),
    sub_string(S, _, _, _, Dir),
    !.

%   In a thread that has ended (so that no stack of ours holds the blob): a directory, its
%   socket path P, and Goal run with P bound; Dir is the directory's path, Out Goal's result.
dropped_dir(Goal, P, Out, Dir) :-
    thread_create(( usock_create_dir(D, []), usock_socket_path(D, sock, P), call(Goal),
                    usock_dir_path(D, Dir0), thread_exit(Dir0-Out) ), T, []),
    thread_join(T, exited(Dir-Out)).

%   Accepts and closes the connections queued at listener S (In its stream): N of them.
accept_pending(S, In, N0, N) :-
    wait_for_input([In], [_], 0),
    !,
    tcp_accept(S, C, _),
    tcp_close_socket(C),
    N1 is N0 + 1,
    accept_pending(S, In, N1, N).
accept_pending(_, _, N, N).

%   The time in seconds Goal took (monotonic enough for "less than a second").
timed(Goal, Seconds) :-
    get_time(T0),
    call(Goal),
    get_time(T1),
    Seconds is T1 - T0.

%   Collects (N directory blobs released) right away: if that took well under the second two
%   idle looks must be apart, the idle directory Dir must still be there.
collect_within_a_second(N, Dir) :-
    timed(collect_with_drops(N), Seconds),
    (   Seconds < 0.8
    ->  assertion(exists_directory(Dir))
    ;   true    % too slow to tell (a loaded machine): the later checks still hold
    ).

test(garbage_collection_removes_a_directory_whose_sockets_are_closed) :-
    dropped_dir(( unix_domain_socket(S), tcp_bind(S, P), tcp_listen(S, 5), tcp_close_socket(S) ),
                P, _, Dir),
    directory_files(Dir, Entries),
    assertion(memberchk(sock, Entries)),    % library(socket) leaves the socket file behind
    collect_with_drops(1),
    assertion(\+ dir_blob(Dir)),
    assertion(exists_directory(Dir)),       % one idle look is not enough
    sleep(1.1),
    collect_with_drops(1),                  % the second, a second later: removed
    assertion(\+ exists_directory(Dir)).

test(garbage_collection_keeps_a_bound_socket_that_listens_later) :-
    % The socket is bound but not yet listening when its blob is collected: it refuses
    % connections exactly as a closed one, yet the directory must stay (the server is between
    % tcp_bind/2 and tcp_listen/2), serve once it listens, and go only after two idle looks
    % a second apart once it is closed.
    dropped_dir(( unix_domain_socket(S), tcp_bind(S, P) ), P, S, Dir),
    collect_with_drops(3),
    assertion(\+ dir_blob(Dir)),
    assertion(exists_directory(Dir)),
    tcp_listen(S, 5),
    sleep(1.1),
    collect_with_drops(3),
    assertion(exists_directory(Dir)),
    directory_file_path(Dir, sock, Path),
    unix_domain_socket(C), tcp_connect(C, Path), tcp_close_socket(C),   % it serves
    tcp_close_socket(S),
    collect_within_a_second(70, Dir),       % a first idle look (or more), all within a second
    sleep(1.1),
    collect_with_drops(70),
    assertion(\+ exists_directory(Dir)),
    figure(attack, 'Prolog: garbage collection of a directory whose socket is bound but not yet listening: kept, serves once it listens, removed only by two idle looks a second apart after it closes', 1, 1,
           garbage_collection_keeps_a_bound_socket_that_listens_later).

test(garbage_collection_starts_over_when_a_socket_file_is_replaced) :-
    % Idle at the first look; then the socket file is replaced by another one, bound and not
    % yet listening: a look a second later sees a changed directory, not the same idle socket,
    % and keeps it.
    dropped_dir(( unix_domain_socket(S), tcp_bind(S, P) ), P, S, Dir),
    collect_with_drops(3),
    assertion(exists_directory(Dir)),
    directory_file_path(Dir, sock, Path),
    tcp_close_socket(S),
    delete_file(Path),
    unix_domain_socket(S2), tcp_bind(S2, Path),
    sleep(1.1),
    collect_with_drops(3),
    assertion(exists_directory(Dir)),
    tcp_listen(S2, 5),
    unix_domain_socket(C), tcp_connect(C, Path), tcp_close_socket(C),   % it serves
    tcp_close_socket(S2).                   % a later collection or halt removes it

test(garbage_collection_keeps_a_serving_directory_until_its_socket_closes) :-
    dropped_dir(( unix_domain_socket(S), tcp_bind(S, P), tcp_listen(S, 5) ), P, S, Dir),
    directory_file_path(Dir, sock, Path),
    forall(between(1, 5, _), collect_with_drops(3)),
    assertion(\+ dir_blob(Dir)),
    assertion(exists_directory(Dir)),
    % Each look at the directory is a probe connection: not one at each of the 15 releases
    % (the wait doubles: about 5), but more than the first.
    tcp_open_socket(S, In),
    accept_pending(S, In, 0, Probes),
    assertion(between(2, 7, Probes)),
    unix_domain_socket(C), tcp_connect(C, Path), tcp_close_socket(C),   % it still serves
    close(In),
    between(1, 10, Round),
    (   Round > 1 -> sleep(0.5) ; true ),   % two idle looks a second apart remove it
    collect_with_drops(10),
    \+ exists_directory(Dir),
    !,
    figure(fault, 'Prolog: garbage collection of a directory blob whose socket serves: kept while it answers, removed at a later collection once it is closed', 1, 1,
           garbage_collection_keeps_a_serving_directory_until_its_socket_closes),
    assertion(Round > 0).

test(garbage_collection_keeps_a_directory_whose_path_was_never_bound) :-
    dropped_dir(true, _, _, Dir),
    forall(between(1, 3, _), collect_with_drops(10)),
    assertion(\+ dir_blob(Dir)),
    assertion(exists_directory(Dir)).   % halt removes it

test(halt_removes_directories_garbage_collection_kept) :-
    module_property(usock, file(File)),
    format(atom(Goal),
           "use_module(library(socket)), use_module('~w'), \c
            thread_create(( usock_create_dir(D1, []), usock_bind(D1, S, []), \c
                            usock_dir_path(D1, P1), \c
                            usock_create_dir(D2, []), usock_socket_path(D2, sock, _), \c
                            usock_dir_path(D2, P2), thread_exit(S-P1-P2) ), T, []), \c
            thread_join(T, exited(S-P1-P2)), nb_setval(listener, S), \c
            garbage_collect, garbage_collect_atoms, \c
            \\+ (current_blob(B, usock_dir), format(string(X), '~~w', [B]), \c
                 sub_string(X, _, _, _, P1)), \c
            exists_directory(P1), exists_directory(P2), \c
            format('~~w~~n~~w~~n', [P1, P2]), halt",
           [File]),
    process_create(path(swipl), ['-q', '-g', Goal, '-t', 'halt(1)'],
                   [stdout(pipe(O)), process(Pid)]),
    read_line_to_string(O, Serving),
    read_line_to_string(O, Unbound),
    close(O),
    process_wait(Pid, exit(0)),
    assertion(sub_string(Serving, _, _, _, "usock-")),
    assertion(\+ exists_directory(Serving)),
    assertion(\+ exists_directory(Unbound)).

test(halt_with_busy_threads_leaves_nothing) :-
    % Threads keep creating (and binding) while the main thread halts, five times over.
    scratch(Scratch),
    directory_file_path(Scratch, busy, Parent),
    make_directory(Parent),
    module_property(usock, file(File)),
    format(atom(Goal),
           "use_module('~w'), \c
            forall(between(1, 4, _), \c
                   thread_create(forall(between(1, inf, _), \c
                                        catch(( usock_create_dir(D, [parent('~w')]), \c
                                                usock_bind(D, S, []), tcp_close_socket(S) ), \c
                                              _, true)), \c
                                 _, [detached(true)])), \c
            sleep(0.2), halt",
           [File, Parent]),
    forall(between(1, 5, _),
           ( process_create(path(swipl), ['-q', '-g', Goal], [process(Pid)]),
             process_wait(Pid, _) )),
    directory_files(Parent, Entries),
    subtract(Entries, ['.', '..'], Left),
    assertion(Left == []),
    figure(fault, 'Prolog: halt while 4 threads keep creating and binding, 5 runs: nothing left', 5, 5,
           halt_with_busy_threads_leaves_nothing).

test(at_halt_cleans_up) :-
    module_property(usock, file(File)),
    format(atom(Goal),
           "use_module('~w'), usock_create_dir(D,[]), usock_dir_path(D,P), format('~~w~~n',[P]), halt",
           [File]),
    process_create(path(swipl), ['-q', '-g', Goal], [stdout(pipe(O)), process(Pid)]),
    read_line_to_string(O, Path), close(O),
    process_wait(Pid, exit(0)),
    assertion(sub_string(Path, _, _, _, "usock-")),
    assertion(\+ exists_directory(Path)).

test(forked_child_removes_nothing) :-
    usock_create_dir(Dir, []),
    usock_bind(Dir, S, [path(Path)]),
    fork(Pid),
    (   Pid == child
    ->  usock_cleanup(Dir),
        halt(0)                 % at_halt runs in the child too: it must remove nothing
    ;   wait(Pid, exited(0)),
        assertion(exists_file(Path) ; true),
        unix_domain_socket(C),
        tcp_connect(C, Path),   % the parent's socket is still there and answers
        tcp_close_socket(C),
        tcp_close_socket(S),
        usock_dir_path(Dir, D),
        usock_cleanup(Dir),
        assertion(\+ exists_directory(D))
    ).

cycle(N, Paths) :-
    findall(P,
            ( between(1, N, _),
              usock_create_dir(Dir, []),
              usock_bind(Dir, S, [path(P)]),
              tcp_close_socket(S),
              usock_cleanup(Dir)
            ),
            Paths).

test(concurrent_threads) :-
    length(Ids, 4),
    maplist([Id]>>thread_create(cycle(50, _), Id, []), Ids),
    maplist([Id]>>thread_join(Id, true), Ids),
    % and one directory shared by several threads
    usock_create_dir(Dir, []),
    numlist(1, 4, Ns),
    maplist([N, T]>>thread_create(( format(atom(Name), "t~w", [N]),
                                    usock_bind(Dir, S, [name(Name)]),
                                    tcp_close_socket(S) ), T, []),
            Ns, Ts),
    maplist([T]>>thread_join(T, true), Ts),
    usock_dir_path(Dir, D),
    directory_files(D, Entries),
    length(Entries, 6),
    usock_cleanup(Dir),
    assertion(\+ exists_directory(D)).

% Packaging ----------------------------------------------------------------------------------

%   A pack directory as a clean clone has it: the pack's files with the crate's links resolved
%   (as pack_install/1 copies them), and nothing built.
clean_pack_copy(Dir) :-
    module_property(usock, file(File)),
    file_directory_name(File, PrologDir),
    file_directory_name(PrologDir, PackSource),
    process_create(path(cp), ['-RL', PackSource, Dir], [process(P)]),
    process_wait(P, exit(0)),
    directory_file_path(Dir, lib, Lib),
    (   exists_directory(Lib) -> delete_directory_and_contents(Lib) ; true ),
    directory_file_path(Dir, 'c/usock.h', H),
    (   exists_file(H) -> delete_file(H) ; true ).

%   Runs Goal in a fresh swipl that knows only the packs in Packs; fails unless it prints Out.
in_fresh_swipl(Packs, Goal, Env, Out) :-
    format(atom(G), "attach_packs('~w', [search(first)]), ~w", [Packs, Goal]),
    process_create(path(swipl), ['-q', '-g', G, '-t', 'halt(1)'],
                   [stdout(pipe(O)), environment(Env), process(P)]),
    read_string(O, _, Out), close(O),
    process_wait(P, Status),
    assertion(Status == exit(0)).

use_installed(Packs, Out) :-
    format(atom(Use),
           "use_module(library(usock)), module_property(usock, file(F)), sub_atom(F, 0, _, _, '~w'), \c
            usock_create_dir(D, []), usock_bind(D, S, []), tcp_close_socket(S), usock_cleanup(D), \c
            use_module(library(usock_mqi)), module_property(usock_mqi, file(F2)), \c
            sub_atom(F2, 0, _, _, '~w'), use_module(library(mqi)), \c
            usock_mqi_start([unix_domain_socket(P), server_thread(T)]), \c
            file_directory_name(P, PD), exists_directory(PD), mqi_stop(T), \c
            writeln('installed pack works'), halt",
           [Packs, Packs]),
    in_fresh_swipl(Packs, Use, [], Out).

%   pack_install(Spec) into Packs in a fresh swipl, with Env. (SWI-Prolog 9.0.4 takes an archive
%   by its plain path, a directory by a file:// URL.)
install_pack(Spec, Packs, Env) :-
    format(atom(Install),
           "pack_install('~w', [package_directory('~w'), interactive(false), inquiry(false), silent(true)]), halt",
           [Spec, Packs]),
    process_create(path(swipl), ['-q', '-g', Install, '-t', 'halt(1)'],
                   [environment(Env), process(P)]),
    process_wait(P, exit(0)).

pack_env(Scratch, ['USOCK_PACK_TARGET_DIR'=Target]) :-
    % one cargo build for the tests below, kept between them (a user's is removed)
    directory_file_path(Scratch, 'pack-cargo-target', Target).

test(pack_install_from_a_clean_checkout_and_pack_rebuild, Outs == ["installed pack works\n", "installed pack works\n"]) :-
    scratch(Scratch),
    directory_file_path(Scratch, 'clean-pack', Source),
    clean_pack_copy(Source),
    directory_file_path(Scratch, packs, Packs),
    make_directory(Packs),
    pack_env(Scratch, Env),
    atom_concat('file://', Source, URL),
    install_pack(URL, Packs, Env),
    use_installed(Packs, Out1),
    % pack_rebuild (which SWI-Prolog also runs after an upgrade): distclean, then build again
    in_fresh_swipl(Packs, "pack_rebuild(usock), halt", Env, _),
    use_installed(Packs, Out2),
    Outs = [Out1, Out2],
    figure(fault, 'Prolog pack installed from a clean checkout (libusock built from the crate it carries), then pack_rebuild: loads and works both times', 2, 2,
           pack_install_from_a_clean_checkout_and_pack_rebuild).

test(pack_install_from_the_archive, Out == "installed pack works\n") :-
    module_property(usock, file(File)),
    file_directory_name(File, PrologDir),
    file_directory_name(PrologDir, PackSource),
    file_directory_name(PackSource, Bindings),
    file_directory_name(Bindings, Repo),
    process_create(path(make), ['-s', '-C', Repo, 'prolog-pack'], [stdout(null), process(PM)]),
    process_wait(PM, exit(0)),
    pack_version(Version),
    format(atom(Archive), "~w/target/usock-~w.tgz", [Repo, Version]),
    scratch(Scratch),
    directory_file_path(Scratch, 'archive-packs', Packs),
    make_directory(Packs),
    pack_env(Scratch, Env),
    install_pack(Archive, Packs, Env),
    use_installed(Packs, Out).

%   The shell line of README.md's install section that ends with Comment, as written.
readme_line(Comment, Line) :-
    repo_root(Repo),
    directory_file_path(Repo, 'README.md', Readme),
    read_file_to_string(Readme, Text, []),
    split_string(Text, "\n", "", Lines),
    member(Line, Lines),
    sub_string(Line, 0, _, _, "swipl "),
    sub_string(Line, _, _, 0, Comment),
    !.

repo_root(Repo) :-
    module_property(usock, file(File)),
    file_directory_name(File, PrologDir),
    file_directory_name(PrologDir, PackSource),
    file_directory_name(PackSource, Bindings),
    file_directory_name(Bindings, Repo).

%   Runs the shell line Line in Dir with only Env and stdin from /dev/null; Status and stderr.
run_line(Line, Dir, Env, Status, Out, Err) :-
    tmp_file_stream(text, ErrFile, ErrStream),
    process_create(path(sh), ['-c', Line],
                   [cwd(Dir), env(Env), stdin(null), stdout(pipe(O)), stderr(stream(ErrStream)),
                    process(P)]),
    close(ErrStream),
    read_string(O, _, Out), close(O),
    process_wait(P, Status),
    read_file_to_string(ErrFile, Err, []),
    delete_file(ErrFile).

%   Status must be exit(0); else the test fails showing what the line wrote to stderr.
exited_ok(Status, Err) :-
    (   Status == exit(0)
    ->  true
    ;   format(user_error, "~w:~n~s~n", [Status, Err]),
        fail
    ).

%   A clone as a first-time user has it: Clone/bindings/prolog the pack's files, nothing built.
fresh_clone(Scratch, Clone) :-
    directory_file_path(Scratch, clone, Clone),
    directory_file_path(Clone, bindings, Bindings),
    make_directory_path(Bindings),
    directory_file_path(Bindings, prolog, Source),
    clean_pack_copy(Source).

test(readme_install_one_liner_works_for_a_first_time_user) :-
    % HOME an empty directory (no pack directory yet), no terminal: the line must neither ask
    % nor stop, and the pack must then load and work.
    readme_line("# from the clone", Install),
    readme_line("usock_cleanup(D)\" -t halt", Use),
    scratch(Scratch),
    fresh_clone(Scratch, Clone),
    directory_file_path(Scratch, 'first-home', Home),
    make_directory(Home),
    pack_env(Scratch, [Target]),
    getenv('PATH', Path),
    rust_homes(RustHomes),
    append(['HOME'=Home, 'PATH'=Path, Target], RustHomes, Env),
    run_line(Install, Clone, Env, Status, _, Err),
    assertion(exited_ok(Status, Err)),
    directory_file_path(Home, '.local/share/swi-prolog/pack/usock/pack.pl', Installed),
    assertion(exists_file(Installed)),
    run_line(Use, Clone, Env, Status2, Out, Err2),
    assertion(exited_ok(Status2, Err2)),
    split_string(Out, "\n", "", [Made|_]),
    assertion(sub_string(Made, _, _, _, "/usock-")),
    assertion(\+ exists_directory(Made)).

%   rustup's and cargo's homes as they are here (by default under the real HOME), for a child
%   whose HOME is another directory: the user's Rust stays where it was installed.
rust_homes(['RUSTUP_HOME'=Rustup, 'CARGO_HOME'=Cargo]) :-
    expand_file_name('~', [RealHome]),
    (   getenv('RUSTUP_HOME', Rustup) -> true ; directory_file_path(RealHome, '.rustup', Rustup) ),
    (   getenv('CARGO_HOME', Cargo) -> true ; directory_file_path(RealHome, '.cargo', Cargo) ).

%   A directory of links to every program on PATH but cargo and the rest of Rust's tools.
path_without_cargo(Scratch, NoCargo) :-
    directory_file_path(Scratch, 'no-cargo-bin', NoCargo),
    make_directory(NoCargo),
    getenv('PATH', Path),
    atomic_list_concat(Dirs, :, Path),
    forall(( member(D, Dirs), D \== '', exists_directory(D),
             directory_files(D, Fs), member(F, Fs), \+ memberchk(F, ['.', '..']),
             \+ sub_atom(F, 0, _, _, cargo), \+ memberchk(F, [rustc, rustup, rustdoc]),
             directory_file_path(NoCargo, F, Link), \+ exists_file(Link),
             \+ read_link(Link, _, _) ),
           ( directory_file_path(D, F, Target), link_file(Target, Link, symbolic) )).

test(pack_rebuild_after_an_install_without_cargo, Out == "installed pack works\n") :-
    scratch(Scratch),
    directory_file_path(Scratch, 'cargo-later', Source),
    clean_pack_copy(Source),
    directory_file_path(Scratch, 'cargo-later-packs', Packs),
    make_directory(Packs),
    path_without_cargo(Scratch, NoCargo),
    pack_env(Scratch, Env),
    atom_concat('file://', Source, URL),
    format(atom(Install),
           "pack_install('~w', [package_directory('~w'), interactive(false)]), halt",
           [URL, Packs]),
    getenv('HOME', Home),
    run_line("swipl -g \"$GOAL\" -t 'halt(1)'", Scratch,
             ['PATH'=NoCargo, 'HOME'=Home, 'GOAL'=Install|Env], Status, _, Err),
    assertion(Status \== exit(0)),
    assertion(sub_string(Err, _, _, _, "needs Rust's cargo, which is not on PATH")),
    assertion(sub_string(Err, _, _, _, "pack_rebuild(usock)")),
    % cargo back on PATH: pack_rebuild, as the message says, makes the pack work
    in_fresh_swipl(Packs, "pack_rebuild(usock), halt", Env, _),
    use_installed(Packs, Out).

test(pack_rebuild_never_removes_what_it_cannot_rebuild) :-
    % A pack whose crate is gone (installed from elsewhere) and no cargo on PATH: distclean
    % keeps the vendored libusock.
    scratch(Scratch),
    directory_file_path(Scratch, 'no-sources', Dir),
    clean_pack_copy(Dir),
    directory_file_path(Dir, 'lib/x', LibX),
    make_directory_path(LibX),
    directory_file_path(LibX, 'libusock.so.0', Vendored),
    setup_call_cleanup(open(Vendored, write, S), write(S, x), close(S)),
    directory_file_path(Dir, crate, Crate),
    delete_directory_and_contents(Crate),
    process_create(path(make), ['-s', '-C', Dir, distclean, 'PACKSODIR=lib/x', 'CARGO=/nonexistent/cargo'],
                   [stdout(null), process(P)]),
    process_wait(P, exit(0)),
    assertion(exists_file(Vendored)).

%   pack.pl links to no page that does not exist: every URL or address in it is one of these
%   (none today: usock has no web page of its own yet), and each term is one that
%   library(prolog_pack) accepts (its own check, as pack_install/1 runs it).
allowed_pack_link(_) :- fail.

test(pack_pl_links_to_no_page_that_does_not_exist) :-
    module_property(usock, file(File)),
    file_directory_name(File, PrologDir),
    file_directory_name(PrologDir, PackSource),
    directory_file_path(PackSource, 'pack.pl', PackPl),
    read_file_to_terms(PackPl, Terms, []),
    assertion(memberchk(name(usock), Terms)),
    forall(member(T, Terms),
           ( assertion(prolog_pack:valid_info_term(T)),
             forall(( sub_term(A, T), atom(A), link_like(A) ),
                    assertion(allowed_pack_link(A))) )).

link_like(A) :- sub_atom(A, _, _, _, '://').
link_like(A) :- sub_atom(A, _, _, _, '@').
link_like(A) :- sub_atom(A, _, _, _, 'docs.rs').

pack_version(Version) :-
    module_property(usock, file(File)),
    file_directory_name(File, PrologDir),
    file_directory_name(PrologDir, PackSource),
    directory_file_path(PackSource, 'pack.pl', PackPl),
    setup_call_cleanup(open(PackPl, read, In),
                       ( repeat, read_term(In, T, []), ( T = version(Version) ; T == end_of_file ), ! ),
                       close(In)),
    atom(Version).

% MQI --------------------------------------------------------------------------------------

test(mqi_on_a_usock_path, Out == "[{'X': 'a'}, {'X': 'b'}]\n") :-
    usock_create_dir(Dir, []),
    usock_socket_path(Dir, mqi, Path),
    Password = 'usock test password',
    mqi_start([unix_domain_socket(Path), password(Password), server_thread(T)]),
    run_python("import sys\nfrom swiplserver import PrologMQI\nwith PrologMQI(launch_mqi=False, unix_domain_socket=sys.argv[1], password=sys.argv[2]) as m:\n    with m.create_thread() as t:\n        print(t.query('member(X, [a, b])'))",
               [Path, Password], Out),
    mqi_stop(T),
    usock_dir_path(Dir, D),
    usock_cleanup(Dir),
    assertion(\+ exists_directory(D)).

:- end_tests(usock).

:- begin_tests(usock_lifecycle, [cleanup(remove_scratch)]).

%   A directory only this user can write to, for well-known paths.
home(Home) :-
    usock_create_dir(Home, []).

%   Lock files stay beside well-known paths for good; a test's home is cleaned up without them.
remove_locks(Home) :-
    usock_dir_path(Home, H),
    directory_files(H, Entries),
    forall(( member(E, Entries), file_name_extension(_, lock, E) ),
           ( directory_file_path(H, E, F), delete_file(F) )).

%   Anything at Path, socket included (exists_file/1 is for regular files).
present(Path) :-
    access_file(Path, exist).

test(bind_path_serves_through_tcp_accept_and_unbinds, Reply == "echo: hi") :-
    home(Home), usock_dir_path(Home, H),
    atom_concat(H, '/app.sock', Path),
    usock_bind_path(Path, Listener, Bound, []),
    mode_of(Path, Mode), assertion(Mode == 600),
    atom_concat(Path, '.lock', Lock), mode_of(Lock, LockMode), assertion(LockMode == 600),
    thread_create(serve_one(Listener, "echo: "), Server, []),
    usock_connect(Path, Stream, []),
    format(Stream, "hi~n", []), flush_output(Stream),
    read_line_to_string(Stream, Reply),
    close(Stream),
    thread_join(Server, true),
    usock_unbind_path(Bound),
    usock_unbind_path(Bound),                   % a second call does nothing
    assertion(\+ present(Path)),
    tcp_close_socket(Listener),
    remove_locks(Home),
    usock_cleanup(Home).

test(a_live_server_is_in_use_unless_replaced) :-
    home(Home), usock_dir_path(Home, H),
    atom_concat(H, '/live.sock', Path),
    usock_bind_path(Path, L1, B1, []),
    catch(usock_bind_path(Path, _, _, []), E, true),
    assertion(E = error(socket_error(eaddrinuse, _),
                        context(usock:usock_bind_path/4, usock(in_use, _, _)))),
    usock_bind_path(Path, L2, B2, [replace(true)]),
    usock_unbind_path(B1),                      % leaves the replacement in place
    assertion(present(Path)),
    tcp_close_socket(L1),
    usock_connect(Path, S, []), close(S),
    tcp_accept(L2, C, _), tcp_close_socket(C),
    usock_unbind_path(B2),
    tcp_close_socket(L2),
    assertion(\+ present(Path)),
    remove_locks(Home),
    usock_cleanup(Home).

test(a_stale_socket_is_replaced) :-
    home(Home), usock_dir_path(Home, H),
    atom_concat(H, '/stale.sock', Path),
    unix_domain_socket(Old), tcp_bind(Old, Path), tcp_close_socket(Old),
    usock_bind_path(Path, L, B, []),
    usock_unbind_path(B), tcp_close_socket(L),
    remove_locks(Home),
    usock_cleanup(Home).

test(bind_path_in_a_shared_directory, [error(permission_error(use, directory, _),
                                            context(_, usock(unsafe, Msg, _)))]) :-
    catch(usock_bind_path('/tmp/usock-prolog-test.sock', _, _, []), E,
          ( E = error(_, context(_, usock(_, Msg, _))),
            assertion(sub_string(Msg, _, _, _, "another user can create")),
            throw(E) )).

test(connect_errors) :-
    home(Home), usock_dir_path(Home, H),
    atom_concat(H, '/none', None),
    catch(usock_connect(None, _, []), E1, true),
    assertion(E1 = error(existence_error(file, None), context(_, usock(system, _, 2)))),
    atom_concat(H, '/stale', Stale),
    unix_domain_socket(Old), tcp_bind(Old, Stale), tcp_close_socket(Old),
    catch(usock_connect(Stale, _, []), E2, true),
    assertion(E2 = error(socket_error(econnrefused, _), context(_, usock(system, _, 111)))),
    length(L, 200), maplist(=(0'x), L), atom_codes(Long, [0'/|L]),
    catch(usock_connect(Long, _, []), E3, true),
    assertion(E3 = error(representation_error(unix_socket_path_length), _)),
    remove_locks(Home),
    usock_cleanup(Home).

%   What library(socket) raises for Goal (on a fresh Unix domain socket S), and what usock raises
%   for the same failure: the formal parts must be the same term, so that a handler written for
%   tcp_connect/2 or tcp_bind/2 catches usock's.
socket_formal(S, Goal, Formal) :-
    unix_domain_socket(S),
    catch(Goal, error(Formal, _), true),
    tcp_close_socket(S),
    nonvar(Formal).

usock_formal(Goal, Formal, Context) :-
    catch(Goal, error(Formal, Context), true),
    nonvar(Formal).

test(errors_are_library_socket_s) :-
    home(Home), usock_dir_path(Home, H),
    atom_concat(H, '/refused', Refused),
    unix_domain_socket(Old), tcp_bind(Old, Refused), tcp_close_socket(Old),
    socket_formal(S1, tcp_connect(S1, Refused), F1),
    usock_formal(usock_connect(Refused, _, []), U1, C1),
    assertion(F1 = socket_error(econnrefused, _)),
    assertion(U1 == F1),
    assertion(C1 = context(usock:usock_connect/3, usock(system, _, 111))),
    atom_concat(H, '/nothing', Nothing),
    socket_formal(S2, tcp_connect(S2, Nothing), F2),
    usock_formal(usock_connect(Nothing, _, []), U2, _),
    assertion(U2 == F2),
    atom_concat(H, '/live', Live),
    usock_bind_path(Live, L, B, []),
    socket_formal(S3, tcp_bind(S3, Live), F3),
    usock_formal(usock_bind_path(Live, _, _, []), U3, C3),
    assertion(F3 = socket_error(eaddrinuse, _)),
    assertion(U3 == F3),
    assertion(C3 = context(usock:usock_bind_path/4, usock(in_use, _, _))),
    usock_unbind_path(B), tcp_close_socket(L),
    atom_concat(H, '/no/such/dir/s', Missing),
    socket_formal(S4, tcp_bind(S4, Missing), F4),
    usock_formal(usock_bind_path(Missing, _, _, []), U4, _),
    assertion(F4 = socket_error(enoent, _)),
    assertion(U4 == F4),
    remove_locks(Home),
    usock_cleanup(Home).

test(sweep_hand_off_and_take_over) :-
    home(Parent), usock_dir_path(Parent, P),
    usock_create_dir(Dir, [parent(P)]),
    usock_dir_path(Dir, Path),
    usock_sweep(Removed0, Kept0, [parent(P), grace(0)]),
    assertion(Removed0 == []),
    assertion(( memberchk(Path-Why0, Kept0), sub_string(Why0, _, _, _, "holds its lock") )),
    usock_hand_off(Dir, Fd),
    assertion(exists_directory(Path)),
    catch(usock_dir_path(Dir, _), E, true),
    assertion(E = error(existence_error(usock_dir, _), _)),
    usock_take_over(Path, Again, [lock_fd(Fd)]),
    usock_sweep(_, Kept1, [parent(P), grace(0)]),
    assertion(memberchk(Path-_, Kept1)),
    usock_hand_off(Again, Fd2),
    % Nobody but this process holds the directory now: close the descriptor through a
    % take-over and a hand-off to nobody is not possible from Prolog, so take it over again
    % and clean up.
    usock_take_over(Path, Third, [lock_fd(Fd2)]),
    usock_cleanup(Third),
    assertion(\+ exists_directory(Path)),
    catch(usock_take_over(P, _, []), E2, true),
    assertion(E2 = error(permission_error(use, directory, _), _)),
    usock_cleanup(Parent).

test(sweep_removes_what_a_killed_process_left) :-
    home(Parent), usock_dir_path(Parent, P),
    python(Py),
    (   sub_atom(Py, 0, _, _, '/') -> Exe = Py ; Exe = path(Py) ),
    format(string(Code),
           "import os, socket, sys, time~n\c
            d = ~q + '/usock-' + 'abcdefghijkmn'~n\c
            os.mkdir(d, 0o700)~n\c
            s = socket.socket(socket.AF_UNIX); s.bind(d + '/sock'); s.listen()~n\c
            print(d, flush=True); time.sleep(600)~n", [P]),
    process_create(Exe, ['-c', Code], [stdout(pipe(Out)), process(Pid)]),
    read_line_to_string(Out, Dir),
    usock_sweep(_, Kept, [parent(P), grace(0)]),
    atom_string(DirA, Dir),
    assertion(( memberchk(DirA-Why, Kept), sub_string(Why, _, _, _, "answers") )),
    process_kill(Pid, 9), process_wait(Pid, _), close(Out),
    usock_sweep(Removed, _, [parent(P), grace(0)]),
    assertion(Removed == [DirA]),
    usock_cleanup(Parent).

:- end_tests(usock_lifecycle).

:- begin_tests(usock_peers, [cleanup(remove_scratch)]).

uid(Uid) :-
    process_create(path(id), ['-u'], [stdout(pipe(Out))]),
    read_line_to_string(Out, S), close(Out),
    number_string(Uid, S).

is_root :- uid(0).

%   A client run as uid 65534 by the test Python: connects to Path, sends "?", prints what
%   came back ("answered" or "closed").
nobody_client(Path, Pid, Out) :-
    python(Py),
    (   sub_atom(Py, 0, _, _, '/') -> Exe = Py ; Exe = path(Py) ),
    Code = "import os, socket, sys\nos.setgroups([]); os.setgid(65534); os.setuid(65534)\ns = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\ntry:\n    s.sendall(b'?'); print('answered' if s.recv(1) == b'!' else 'closed', flush=True)\nexcept OSError:\n    print('closed', flush=True)\n",
    process_create(Exe, ['-c', Code, Path], [stdout(pipe(Out)), process(Pid), cwd('/')]).

wait_refused(Policy, N) :-                  % up to 5 s
    between(1, 500, _),
    (   usock_policy_refused(Policy, N, _)
    ->  true
    ;   sleep(0.01), fail
    ),
    !.
wait_refused(Policy, N) :-
    usock_policy_refused(Policy, Count, _),
    format(user_error, "refused ~w, not ~w~n", [Count, N]),
    fail.

test(peer_of_a_connection_in_this_process) :-
    usock_create_dir(Dir, []),
    usock_bind(Dir, L, [path(Path)]),
    usock_connect(Path, S, [server(self_or_root)]),
    tcp_accept(L, C, _),
    usock_peer(C, peer(Uid, _Gid, Pid)),
    uid(Me),
    current_prolog_flag(pid, MyPid),
    assertion(Uid == Me), assertion(Pid == MyPid),
    usock_peer(S, peer(ServerUid, _, _)),
    assertion(ServerUid == Me),
    Other is Me + 1,
    catch(usock_connect(Path, _, [server(Other)]), E, true),
    assertion(E = error(permission_error(connect, socket, _), context(_, usock(unsafe, _, _)))),
    close(S), tcp_close_socket(C), tcp_close_socket(L),
    usock_cleanup(Dir).

test(policy_refuses_another_user_and_counts, [condition(is_root)]) :-
    scratch(Scratch),
    directory_file_path(Scratch, 'open.sock', Path),
    unix_domain_socket(L), tcp_bind(L, Path), chmod(Path, 0o777), tcp_listen(L, 5),
    usock_policy(same_user, Policy),
    thread_create(( usock_accept(L, Policy, C0, peer(U0, _, _)),
                    thread_exit(got(C0, U0)) ), Server, []),
    nobody_client(Path, Pid, Out),
    wait_refused(Policy, 1),                % the stranger first, then us
    usock_connect(Path, S, []),
    format(S, "?", []), flush_output(S),
    thread_join(Server, exited(got(C, Uid))),
    tcp_open_socket(C, CS), get_char(CS, _), format(CS, "!", []), close(CS),
    get_char(S, Ch), close(S),
    assertion(Ch == '!'),
    read_line_to_string(Out, Seen), close(Out), process_wait(Pid, _),
    uid(MyUid),
    assertion(Uid == MyUid),
    assertion(Seen == "closed"),
    usock_policy_refused(Policy, Count, Last),
    assertion(Count == 1), assertion(Last == 65534),
    tcp_close_socket(L),
    delete_file(Path).

test(shared_directory_mode, [condition(is_root)]) :-
    usock_create_dir(Dir, [share_group(0)]),
    usock_dir_path(Dir, P), mode_of(P, Mode), assertion(Mode == 710),
    usock_bind(Dir, L, [path(SP)]), mode_of(SP, SMode), assertion(SMode == 660),
    tcp_close_socket(L),
    usock_cleanup(Dir).

test(long_paths) :-
    scratch(Scratch),
    atom_concat(Scratch, '/', S0),
    deep(S0, 190, Deep),
    catch(usock_create_dir(_, [parent(Deep)]), E, true),
    assertion(E = error(representation_error(unix_socket_path_length), _)),
    usock_create_dir(Dir, [parent(Deep), long_paths(true)]),
    usock_dir_path(Dir, DirPath),             % whole, not cut at sun_path's size
    assertion(exists_directory(DirPath)),
    format(atom(Shown), "~w", [Dir]), assertion(sub_atom(Shown, _, _, _, DirPath)),
    usock_bind(Dir, L, [path(Path)]),
    atom_length(Path, Len), assertion(Len > 108),
    assertion(atom_concat(DirPath, '/sock', Path)),
    thread_create(serve_one(L, "long: "), Server, []),
    usock_connect(Path, S, []),
    format(S, "hi~n", []), flush_output(S),
    read_line_to_string(S, Reply), close(S),
    thread_join(Server, true),
    assertion(Reply == "long: hi"),
    tcp_close_socket(L),
    usock_cleanup(Dir).

deep(Path, Len, Path) :-
    atom_length(Path, N), N >= Len, !.
deep(Path0, Len, Path) :-
    atom_concat(Path0, 'dddddddddddddddddddddddddddddddddddddddd', P1),
    make_directory(P1),
    atom_concat(P1, '/', P2),
    deep(P2, Len, P3),
    (   sub_atom(P3, _, 1, 0, '/') -> sub_atom(P3, 0, _, 1, Path) ; Path = P3 ).

test(policy_domain, error(domain_error(usock_policy, everyone))) :-
    usock_policy(everyone, _).

:- end_tests(usock_peers).
