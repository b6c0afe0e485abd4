/*  The usock demo server: a SWI-Prolog server gets a private socket from usock at the
    automatic location, serves one connection from each client program given on the command
    line (each started in its own process with the socket path as its last argument), then
    shuts down and shows that cleanup left nothing.

        swipl demo_server.pl -- 'python3 client.py' './usock-client'
*/
:- use_module(library(socket)).
:- use_module(library(process)).
:- use_module(library(readutil)).
:- use_module('../prolog/usock').

:- initialization(main, main).

main(Clients) :-
    usock_create_dir(Dir, []),
    usock_dir_path(Dir, DirPath),
    usock_bind(Dir, Listener, [path(Path)]),
    format("prolog server: listening on ~w~n", [Path]),
    show_modes([DirPath, Path]),
    maplist(serve_client(Listener, Path), Clients),
    tcp_close_socket(Listener),
    usock_cleanup(Dir),
    (   exists_directory(DirPath)
    ->  format("prolog server: cleanup FAILED: ~w is still there~n", [DirPath]),
        halt(1)
    ;   format("prolog server: cleanup done: ~w and everything in it are gone~n", [DirPath])
    ).

show_modes(Paths) :-
    process_create(path(stat), ['-c', 'prolog server:   %A (%a) owner %U  %n'|Paths], []).

serve_client(Listener, Path, Command) :-
    split_string(Command, " ", "", [Exe|Args0]),
    append(Args0, [Path], Args),
    (   ( sub_string(Exe, 0, _, _, "/") ; sub_string(Exe, 0, _, _, ".") )
    ->  Program = Exe
    ;   atom_string(ExeAtom, Exe),
        Program = path(ExeAtom)
    ),
    process_create(Program, Args, [process(Pid)]),
    tcp_accept(Listener, Socket, _Peer),
    setup_call_cleanup(
        tcp_open_socket(Socket, Stream),
        ( read_line_to_string(Stream, Line),
          format("prolog server: received \"~w\"~n", [Line]),
          format(Stream, "hello from the Prolog server~n", []),
          flush_output(Stream)
        ),
        close(Stream)),
    process_wait(Pid, Status),
    (   Status == exit(0)
    ->  true
    ;   format("prolog server: client ~w ended with ~w~n", [Command, Status]),
        halt(1)
    ).
