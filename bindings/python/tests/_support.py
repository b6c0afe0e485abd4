"""Helpers the test modules share (imported as `_readme` is: pytest puts this directory on
sys.path)."""
import os
import stat


def mode(path):
    """The permission bits of `path` itself (a link is not followed)."""
    return stat.S_IMODE(os.lstat(path).st_mode)


def figure_writer(test_file):
    """A `figure(category, what, tried, held, test)` for the tests of `test_file`: it writes a
    row of SECURITY.md's figures when $USOCK_FIGURES names a file (make test sets it); call it
    after the test's assertions held."""
    def figure(category, what, tried, held, test):
        target = os.environ.get("USOCK_FIGURES")
        if target:
            with open(target, "a", encoding="utf-8") as f:
                f.write(f"{category}\t{what}\t{tried}\t{held}\tbindings/python/tests/{test_file}::{test}\n")
    return figure
