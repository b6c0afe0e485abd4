"""Figures for SECURITY.md: a test named in its module's SECURITY_ROWS that passed appends its row
to the file $USOCK_FIGURES names (make test sets it), as the other batteries do."""

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    figures = os.environ.get("USOCK_FIGURES")
    rows = getattr(item.module, "SECURITY_ROWS", {})
    if report.when != "call" or not report.passed or not figures or item.name not in rows:
        return
    kind, what, times = rows[item.name]
    where = f"{os.path.relpath(item.fspath, os.getcwd())}::{item.name}"
    with open(figures, "a", encoding="utf-8") as f:
        f.write(f"{kind}\t{what}\t{times}\t{times}\t{where}\n")
