/*  Prolog contenders for `make bench`: µs per create-bind-listen-close-cleanup cycle.

        swipl cycles.pl usock|mqi|shell PARENT N

    usock: this pack.  mqi: SWI-Prolog MQI's shipped recipe (library(mqi) 9.0.4,
    unix_domain_socket_path/2 and its cleanup), with tmp_dir set to PARENT.  shell: shelling
    out to `mkdir -m 700` for each socket, as MQI's first version did.
*/
:- use_module(library(socket)).
:- use_module(library(filesex)).
:- use_module('../../bindings/prolog/prolog/usock').

:- initialization(main, main).

usock_cycle(Parent) :-
    usock_create_dir(Dir, [parent(Parent)]),
    usock_bind(Dir, S, [backlog(128)]),
    tcp_close_socket(S),
    usock_cleanup(Dir).

mqi_cycle(_Parent) :-
    tmp_file(udsock, Dir),
    make_directory(Dir),
    chmod(Dir, urwx),
    setup_call_cleanup(( current_prolog_flag(tmp_dir, Save),
                         set_prolog_flag(tmp_dir, Dir) ),
                       tmp_file_stream(Path, Stream, []),
                       set_prolog_flag(tmp_dir, Save)),
    close(Stream),
    unix_domain_socket(S),
    catch(delete_file(Path), error(_, _), true),
    tcp_bind(S, Path),
    tcp_listen(S, 128),
    tcp_close_socket(S),
    catch(delete_directory_and_contents(Dir), error(_, _), true).

shell_cycle(Parent) :-
    uuid(UUID),
    format(atom(Dir), '~w/~w', [Parent, UUID]),
    format(atom(Cmd), 'mkdir -m 700 ~w', [Dir]),
    shell(Cmd, 0),
    directory_file_path(Dir, sock, Path),
    unix_domain_socket(S),
    tcp_bind(S, Path),
    tcp_listen(S, 128),
    tcp_close_socket(S),
    delete_file(Path),
    delete_directory(Dir).

main([Mode, Parent, NA]) :-
    atom_number(NA, N),
    atom_concat(Mode, '_cycle', Name),
    Goal =.. [Name, Parent],
    set_prolog_flag(tmp_dir, Parent),
    forall(between(1, 20, _), Goal),
    get_time(T0),
    forall(between(1, N, _), Goal),
    get_time(T1),
    Us is (T1 - T0) * 1e6 / N,
    format("~3f~n", [Us]).
