/*  Runs the plunit suite non-interactively: prints "N passed, N failed" and exits 1 on any
    failure.   swipl test/run.pl                                                          */
:- initialization(main, main).

:- prolog_load_context(directory, Here), asserta(test_dir(Here)).

main :-
    test_dir(Here),
    forall(member(File, ['test_usock.pl', 'test_usock_mqi.pl']),
           ( directory_file_path(Here, File, Tests),
             load_files(Tests, []) )),
    (   run_tests -> true ; true ),
    plunit:test_summary(_, Summary),
    Failed is Summary.failed + Summary.failed_assertions + Summary.sto,
    format("~d passed, ~d failed~n", [Summary.passed, Failed]),
    (   Failed =:= 0 -> halt(0) ; halt(1) ).
