/*  plunit tests of library(usock_mqi): the Machine Query Interface on a usock path, with a
    Python client (swiplserver, in $USOCK_PYTHON, default python3) in standalone mode. Loaded
    by test/run.pl after test_usock.pl.
*/
:- module(test_usock_mqi, []).
:- use_module(library(plunit)).
:- use_module(library(process)).
:- use_module(library(readutil)).
:- use_module(library(filesex)).
:- use_module(library(unix)).
:- use_module(library(mqi)).
:- use_module('../prolog/usock').
:- use_module('../prolog/usock_mqi').

:- dynamic scratch_dir/2.

%   A safe parent, 0755, made afresh for each test and removed after it.
scratch(Dir) :-
    current_prolog_flag(pid, Pid),
    R is random(1<<40),
    format(atom(Dir), '/tmp/usock-mqitest-~w-~16r', [Pid, R]),
    make_directory(Dir),
    chmod(Dir, 0o755),
    assertz(scratch_dir(Dir, Pid)).

remove_scratch :-
    current_prolog_flag(pid, Pid),
    forall(retract(scratch_dir(Dir, Pid)),
           catch(delete_directory_and_contents(Dir), _, true)).

mode_of(Path, Mode) :-
    process_create(path(stat), ['-c', '%a', Path], [stdout(pipe(Out))]),
    read_line_to_string(Out, S),
    close(Out),
    number_codes(Mode, S).

%   Polls until Goal holds, for up to ten seconds (mqi_stop/1 does not wait for its thread).
eventually(Goal) :-
    between(1, 200, _),
    (   call(Goal) -> ! ; sleep(0.05), fail ).

gone(Path) :-
    \+ access_file(Path, exist).

empty(Dir) :-
    directory_files(Dir, Entries),
    subtract(Entries, ['.', '..'], []).

python(Py) :-
    (   getenv('USOCK_PYTHON', Py) -> true ; Py = python3 ).

python_exe(Exe) :-
    python(Py),
    (   sub_atom(Py, 0, _, _, '/') -> Exe = Py ; Exe = path(Py) ).

%   The condition of the tests with a Python client: says why when they are skipped.
have_swiplserver :-
    python_exe(Exe),
    (   catch(( process_create(Exe, ['-c', 'import swiplserver'],
                               [stdout(null), stderr(null), process(P)]),
                process_wait(P, exit(0)) ),
              _, fail)
    ->  true
    ;   format(user_error, "skipped: ~w has no swiplserver (pip install swiplserver; \c
                            $USOCK_PYTHON names the Python)~n", [Exe]),
        fail
    ).

%   A query from Python's swiplserver in standalone mode, over the socket at Path.
python_query(Path, Password, Output) :-
    python_exe(Exe),
    process_create(Exe, ['-c', "import sys\nfrom swiplserver import PrologMQI\nwith PrologMQI(launch_mqi=False, unix_domain_socket=sys.argv[1], password=sys.argv[2]) as m:\n    with m.create_thread() as t:\n        print(t.query('member(X, [a, b])'))",
                         Path, Password],
                   [stdout(pipe(Out)), process(Pid)]),
    read_string(Out, _, Output),
    close(Out),
    process_wait(Pid, Status),
    assertion(Status == exit(0)).

%   A child swipl that loads usock_mqi and runs Goal; Out is its stdout, Pid its process.
child_swipl(Goal, Out, Pid) :-
    module_property(usock_mqi, file(Library)),
    format(atom(G), "use_module('~w'), ~w", [Library, Goal]),
    process_create(path(swipl), ['-q', '-g', G, '-t', 'halt'],
                   [stdout(pipe(Out)), process(Pid)]).

%   A row of SECURITY.md's figures, written when $USOCK_FIGURES names a file (make test sets it).
figure(Category, What, Tried, Held, Test) :-
    (   getenv('USOCK_FIGURES', File)
    ->  setup_call_cleanup(open(File, append, S),
                           format(S, "~w\t~w\t~w\t~w\tbindings/prolog/test/test_usock_mqi.pl::~w~n",
                                  [Category, What, Tried, Held, Test]),
                           close(S))
    ;   true
    ).

no_thread(T) :-
    \+ catch(thread_property(T, status(_)), _, fail).

:- begin_tests(usock_mqi, [cleanup(remove_scratch)]).

test(python_client_on_a_private_socket_then_stop_leaves_nothing,
     [ condition(have_swiplserver),
       Reply == "[{'X': 'a'}, {'X': 'b'}]\n" ]) :-
    scratch(Scratch),
    Password = 'usock mqi test',
    usock_mqi_start([unix_domain_socket(Path), password(Password), server_thread(T),
                     parent(Scratch)]),
    file_directory_name(Path, Dir),
    mode_of(Dir, DirMode),                      % at once after the start
    mode_of(Path, SocketMode),
    assertion(DirMode == 700),
    assertion(SocketMode == 600),
    assertion(file_base_name(Path, mqi)),
    assertion(file_directory_name(Dir, Scratch)),
    python_query(Path, Password, Reply),
    mqi_stop(T),
    assertion(eventually(gone(Dir))),
    assertion(empty(Scratch)),
    figure(attack, 'Prolog usock_mqi_start/1: socket 0600 in a 0700 directory as the call returns (MQI alone binds it with the umask\'s mode), a swiplserver client connects, nothing left after mqi_stop/1', 1, 1,
           python_client_on_a_private_socket_then_stop_leaves_nothing).

test(automatic_location) :-
    usock_mqi_start([unix_domain_socket(Path), server_thread(T)]),
    file_directory_name(Path, Dir),
    file_base_name(Dir, Name),
    assertion(sub_atom(Name, 0, _, _, 'usock-')),
    mode_of(Path, Mode),
    assertion(Mode == 600),
    mqi_stop(T),
    assertion(eventually(gone(Dir))).

test(too_long_fails_before_starting,
     [ error(representation_error(unix_socket_path_length)) ]) :-
    scratch(Scratch),
    length(Parts, 4), maplist(=('dddddddddddddddddddddd'), Parts),
    atomic_list_concat([Scratch|Parts], '/', Deep),
    make_directory_path(Deep),
    catch(usock_mqi_start([unix_domain_socket(_), server_thread(usock_mqi_long), parent(Deep)]),
          Error,
          ( assertion(no_thread(usock_mqi_long)),
            assertion(\+ mqi:mqi_thread(usock_mqi_long, _, _)),
            assertion(empty(Deep)),
            throw(Error) )).

test(failed_start_leaves_nothing) :-
    scratch(Scratch),
    thread_create(thread_get_message(_), Busy, [alias(usock_mqi_busy)]),
    catch(usock_mqi_start([unix_domain_socket(_), server_thread(usock_mqi_busy),
                           parent(Scratch)]),
          Error, true),
    assertion(nonvar(Error)),                   % the alias is taken: thread_create/3 raised
    assertion(empty(Scratch)),
    assertion(\+ usock_mqi:server_dir(usock_mqi_busy, _, _)),
    retractall(mqi:mqi_thread(usock_mqi_busy, _, _)),   % MQI's record of the socket it bound
    thread_send_message(Busy, done),
    thread_join(Busy, _).

test(bad_options_leave_nothing, error(type_error(atom, 42))) :-
    scratch(Scratch),
    catch(usock_mqi_start([unix_domain_socket(_), server_thread(42), parent(Scratch)]),
          Error,
          ( assertion(empty(Scratch)), throw(Error) )).

test(bound_path_and_port_are_mqi_start) :-
    usock_create_dir(Mine, []),
    usock_socket_path(Mine, mine, Path),
    usock_mqi_start([unix_domain_socket(Path), server_thread(T1)]),
    assertion(\+ usock_mqi:server_dir(T1, _, _)),
    assertion(access_file(Path, exist)),
    mqi_stop(T1),
    usock_mqi_start([port(Port), server_thread(T2)]),
    assertion(integer(Port)),
    assertion(\+ usock_mqi:server_dir(T2, _, _)),
    mqi_stop(T2),
    assertion(eventually(gone(Path))),
    usock_cleanup(Mine).

test(blocking_start_waits_and_cleans_up, Status == true) :-
    scratch(Scratch),
    thread_create(usock_mqi_start([unix_domain_socket(_), server_thread(usock_mqi_blocking),
                                   run_server_on_thread(false), parent(Scratch)]),
                  Caller, []),
    assertion(eventually(usock_mqi:server_dir(usock_mqi_blocking, _, _))),
    usock_mqi:server_dir(usock_mqi_blocking, Dir, _),
    usock_socket_path(Dir, mqi, Path),
    assertion(eventually(access_file(Path, exist))),
    sleep(0.2),
    assertion(thread_property(Caller, status(running))),
    mqi_stop(usock_mqi_blocking),
    assertion(eventually(\+ thread_property(Caller, status(running)))),
    thread_join(Caller, Status),
    assertion(empty(Scratch)).

test(halt_removes_the_directory) :-
    scratch(Scratch),
    format(atom(Goal), "usock_mqi_start([unix_domain_socket(P), parent('~w')]), writeln(P)",
           [Scratch]),
    child_swipl(Goal, Out, Pid),
    read_line_to_string(Out, Path),
    read_string(Out, _, _),
    close(Out),
    process_wait(Pid, Status),
    assertion(Status == exit(0)),
    assertion(sub_string(Path, 0, _, _, Scratch)),
    assertion(empty(Scratch)).

test(killed_server_then_sweep_leaves_nothing, Removed == [Dir]) :-
    scratch(Scratch),
    format(atom(Goal),
           "usock_mqi_start([unix_domain_socket(P), parent('~w')]), writeln(P), flush_output, \c
            thread_get_message(_)",
           [Scratch]),
    child_swipl(Goal, Out, Pid),
    read_line_to_string(Out, Path),
    file_directory_name(Path, Dir),
    assertion(exists_directory(Dir)),
    process_kill(Pid, kill),
    process_wait(Pid, _),
    close(Out),
    assertion(exists_directory(Dir)),           % nobody was left to remove it
    usock_sweep(Removed, _Kept, [parent(Scratch), grace(0)]),
    assertion(empty(Scratch)),
    figure(fault, 'Prolog usock_mqi_start/1: the Prolog process killed (SIGKILL): a sweep removes its directory, nothing is left in the parent', 1, 1,
           killed_server_then_sweep_leaves_nothing).

:- end_tests(usock_mqi).
